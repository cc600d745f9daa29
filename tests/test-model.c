/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
/*
 * Model-based random test: long random sequences of BH, timer, fd-handler,
 * nested-poll and cross-thread operations on a real AioContext, every
 * callback checked against a reference model (tests/model/).
 *
 * Environment:
 *   AIOCTX_MODEL_SEED=N        the seed (default: random, printed)
 *   AIOCTX_MODEL_OPS=N         operations (default 1000000; sanitizer
 *                              builds use AIOCTX_MODEL_DEFAULT_OPS, set
 *                              by tests/CMakeLists.txt: 500000 under
 *                              ASan+UBSan, 100000 under TSan, where the
 *                              shrinker's own test is left out too)
 *   AIOCTX_MODEL_REPLAY=file   run the operations of file (as printed on
 *                              a failure) instead of random ones
 *   AIOCTX_MODEL_SHRINK_SECS=N time limit of the shrinker (default 40)
 *
 * A failure prints the seed, the failed check and a shrunk sequence, and
 * writes that sequence to aioctx-model-<engine>-<seed>.ops in the current
 * directory for AIOCTX_MODEL_REPLAY.
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"
#include "test-util.h"

#ifndef AIOCTX_MODEL_DEFAULT_OPS
#define AIOCTX_MODEL_DEFAULT_OPS 1000000
#endif

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    char *end;
    unsigned long long x;

    if (!v || !*v) {
        return def;
    }
    x = strtoull(v, &end, 0);
    ck_assert_msg(*end == '\0', "%s=%s is not a number", name, v);
    return x;
}

static const char *engine_name(void)
{
    const char *e = getenv("AIOCTX_ENGINE");

    return e && *e ? e : "default";
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Shrink a failing sequence, print it and save it for replay. */
static void report_failure(ModelOp *ops, size_t n, const ModelConfig *cfg,
                           const ModelResult *first, uint64_t seed)
{
    unsigned budget = (unsigned)env_u64("AIOCTX_MODEL_SHRINK_SECS", 40);
    char path[128], cwd[512];
    unsigned attempts;
    ModelResult again;

    fprintf(stderr, "test-model: FAILED (engine %s, seed %llu): %s [%s]\n",
            engine_name(), (unsigned long long)seed, first->msg,
            model_fail_name(first->fail));
    if (first->fail_op + 1 < n) {
        n = first->fail_op + 1;
    }
    attempts = model_shrink(ops, &n, cfg, first->fail, budget);
    model_run_forked(ops, n, cfg, 10, &again);
    snprintf(path, sizeof(path), "aioctx-model-%s-%llu.ops", engine_name(),
             (unsigned long long)seed);
    fprintf(stderr,
            "test-model: shrunk to %zu ops in %u attempts; it fails with: %s\n",
            n, attempts, again.msg);
    model_print_ops(stderr, ops, n);
    if (model_write_ops(path, ops, n) == 0) {
        fprintf(stderr,
                "test-model: replay with AIOCTX_ENGINE=%s "
                "AIOCTX_MODEL_REPLAY=%s/%s tests/test-model\n",
                engine_name(), getcwd(cwd, sizeof(cwd)) ? cwd : ".", path);
    }
    ck_abort_msg("model check failed (seed %llu, engine %s): %s; shrunk to "
                 "%zu ops, saved in %s",
                 (unsigned long long)seed, engine_name(), first->msg, n, path);
}

START_TEST(test_model_random)
{
    const char *replay = getenv("AIOCTX_MODEL_REPLAY");
    ModelConfig cfg = { 0 };
    ModelResult res;
    ModelOp *ops;
    uint64_t seed = 0;
    size_t n;
    double t;

    if (replay && *replay) {
        ops = model_read_ops(replay, &n);
        ck_assert_msg(ops != NULL, "cannot read %s", replay);
        printf("test-model: engine %s replaying %zu ops from %s\n",
               engine_name(), n, replay);
    } else {
        if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
            seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
        }
        seed = env_u64("AIOCTX_MODEL_SEED", seed % 1000000000000ULL);
        n = env_u64("AIOCTX_MODEL_OPS", AIOCTX_MODEL_DEFAULT_OPS);
        ops = malloc((n ? n : 1) * sizeof(*ops));
        ck_assert(ops != NULL);
        model_generate(seed, ops, n);
    }
    t = now_s();
    model_run_forked(ops, n, &cfg, 30, &res);
    t = now_s() - t;
    printf("test-model: engine %s seed %llu: %zu ops, %llu callbacks, "
           "%.2f s: %s\n",
           engine_name(), (unsigned long long)seed, res.ops_run,
           (unsigned long long)res.callbacks, t, res.fail ? res.msg : "ok");
    printf(
        "test-model: %llu BH/one-shot runs (%llu not ordered by promise), "
        "%llu timer fires, %llu fd handler calls, %llu nested aio_poll, "
        "%llu helper-thread ops\n",
        (unsigned long long)res.bh_runs, (unsigned long long)res.bh_unordered,
        (unsigned long long)res.timer_fires, (unsigned long long)res.fd_calls,
        (unsigned long long)res.nested_polls,
        (unsigned long long)res.remote_ops);
    fflush(stdout);
    if (res.fail) {
        if (replay && *replay) {
            ck_abort_msg("replay of %s failed: %s", replay, res.msg);
        }
        report_failure(ops, n, &cfg, &res, seed);
    }
    /*
     * Ops queued for callbacks are dropped when the queue is full or the
     * run ends; most ran, and callbacks with them.
     */
    if (n >= 100000) {
        ck_assert_uint_ge(res.ops_run, n - n / 4);
        ck_assert_uint_gt(res.callbacks, n / 10);
    }
    free(ops);
}
END_TEST

#ifndef AIOCTX_MODEL_NO_SHRINK_TEST
static bool has_kind(const ModelOp *ops, size_t n, int kind)
{
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == kind) {
            return true;
        }
    }
    return false;
}

/*
 * A bug planted in the model (it forgets a home-thread qemu_bh_cancel())
 * must be found and shrunk to a few operations, which then pass with the
 * honest model and survive the text round trip.
 */
START_TEST(test_model_shrinks_planted_bug)
{
    enum { N = 5000 };
    ModelConfig planted = { .plant_bug = true }, honest = { 0 };
    ModelOp *ops = malloc(N * sizeof(*ops)), *back;
    char path[] = "/tmp/aioctx-model-XXXXXX";
    ModelResult res;
    size_t n = N, nback;
    unsigned attempts;
    int fd, want;

    ck_assert(ops != NULL);
    model_generate(42, ops, n);
    ck_assert_int_eq(model_run_forked(ops, n, &honest, 60, &res), MODEL_OK);
    /*
     * The model now expects the cancelled BH: either it "did not run" in
     * the next aio_poll, or aio_compute_timeout() before that poll
     * "wrongly" says that nothing is due.
     */
    want = model_run_forked(ops, n, &planted, 60, &res);
    ck_assert_msg(want == MODEL_FAIL_BH_MISSED || want == MODEL_FAIL_PENDING,
                  "%d: %s", want, res.msg);
    n = res.fail_op + 1;
    attempts = model_shrink(ops, &n, &planted, want, 40);
    printf("test-model: planted bug shrunk to %zu ops in %u attempts:\n", n,
           attempts);
    model_print_ops(stdout, ops, n);
    ck_assert_uint_lt(n, 10);
    /* bh_new, a schedule, the cancel the model forgets (the run ends with
     * an aio_poll of its own). */
    ck_assert(has_kind(ops, n, OP_BH_CANCEL));
    ck_assert(has_kind(ops, n, OP_BH_NEW));
    ck_assert(has_kind(ops, n, OP_BH_SCHED) || has_kind(ops, n, OP_R_SCHED));
    ck_assert_int_eq(model_run_forked(ops, n, &planted, 20, &res), want);
    ck_assert_msg(strstr(res.msg, want == MODEL_FAIL_PENDING
                                      ? "aio_compute_timeout() is"
                                      : "did not run") != NULL,
                  "%s", res.msg);
    ck_assert_int_eq(model_run_forked(ops, n, &honest, 20, &res), MODEL_OK);

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(model_write_ops(path, ops, n), 0);
    back = model_read_ops(path, &nback);
    unlink(path);
    ck_assert(back != NULL);
    ck_assert_uint_eq(nback, n);
    ck_assert_mem_eq(back, ops, n * sizeof(*ops));
    free(back);
    free(ops);
}
END_TEST
#endif

/* The replay parser refuses what it cannot read. */
START_TEST(test_model_replay_rejects_garbage)
{
    char path[] = "/tmp/aioctx-model-XXXXXX";
    int fd = mkstemp(path);
    size_t n;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "top bh_frobnicate 1 0\n", 22), 22);
    close(fd);
    ck_assert(model_read_ops(path, &n) == NULL);
    unlink(path);
    ck_assert(model_read_ops(path, &n) == NULL);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");

    /*
     * On a failure: the run (a hang ends after 30 s), the shrinker's
     * budget (40 s, attempts of at most 10 s) and one more run fit.
     */
    tcase_set_timeout(tc, 110);
    tcase_add_test(tc, test_model_random);
#ifndef AIOCTX_MODEL_NO_SHRINK_TEST
    /* Single-threaded test machinery: not worth TSan's slow forks. */
    tcase_add_test(tc, test_model_shrinks_planted_bug);
#endif
    tcase_add_test(tc, test_model_replay_rejects_garbage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_main(model_suite());
}
