/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The model-based random test's runner and shrinker: each run in a forked
 * child (a crash, an abort or a hang is a failure like a failed check),
 * delta debugging over the operation list, and the text form of a list
 * for printing and replaying.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"

#if defined(__SANITIZE_ADDRESS__)
#define MODEL_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MODEL_LSAN 1
#endif
#endif
#ifdef MODEL_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/*
 * The child ends with _exit(), which skips LeakSanitizer's check at exit:
 * run it here (a leak is exit status 3).
 */
static int child_leak_check(void)
{
#ifdef MODEL_LSAN
    return __lsan_do_recoverable_leak_check() ? 3 : 0;
#else
    return 0;
#endif
}

static const char *const op_names[OP_KINDS] = {
    [OP_BH_NEW] = "bh_new",
    [OP_BH_SCHED] = "bh_schedule",
    [OP_BH_CANCEL] = "bh_cancel",
    [OP_BH_DELETE] = "bh_delete",
    [OP_ONESHOT] = "oneshot",
    [OP_TIMER_MOD] = "timer_mod",
    [OP_TIMER_DEL] = "timer_del",
    [OP_TIMER_ANTICIPATE] = "timer_anticipate",
    [OP_CLOCK_STEP] = "clock_step",
    [OP_FD_ADD] = "fd_add",
    [OP_FD_DEL] = "fd_del",
    [OP_FD_WRITE] = "fd_write",
    [OP_POLL] = "poll",
    [OP_POLL_BLOCK] = "poll_block",
    [OP_R_SCHED] = "remote_schedule",
    [OP_R_CANCEL] = "remote_cancel",
    [OP_R_DELETE] = "remote_delete",
    [OP_R_ONESHOT] = "remote_oneshot",
    [OP_R_ASYNC] = "remote_async",
    [OP_R_JOIN] = "remote_join",
};

static const char *const fail_names[MODEL_FAIL_KINDS] = {
    [MODEL_OK] = "ok",
    [MODEL_FAIL_BH_UNEXPECTED] = "bh-unexpected",
    [MODEL_FAIL_BH_EARLY] = "bh-early",
    [MODEL_FAIL_BH_ORDER] = "bh-order",
    [MODEL_FAIL_BH_MISSED] = "bh-missed",
    [MODEL_FAIL_TIMER_EARLY] = "timer-early",
    [MODEL_FAIL_TIMER_ORDER] = "timer-order",
    [MODEL_FAIL_TIMER_MISSED] = "timer-missed",
    [MODEL_FAIL_FD_UNEXPECTED] = "fd-unexpected",
    [MODEL_FAIL_FD_TWICE] = "fd-twice",
    [MODEL_FAIL_FD_MISSED] = "fd-missed",
    [MODEL_FAIL_PROGRESS] = "progress",
    [MODEL_FAIL_OUTSIDE] = "outside-poll",
    [MODEL_FAIL_SETUP] = "setup",
    [MODEL_FAIL_PENDING] = "pending",
};

const char *model_op_name(int kind)
{
    return kind >= 0 && kind < OP_KINDS ? op_names[kind] : "?";
}

const char *model_fail_name(int fail)
{
    if (fail >= 0 && fail < MODEL_FAIL_KINDS) {
        return fail_names[fail];
    }
    return fail >= 200 ? "exit" : "signal";
}

/* Set while shrinking: the attempts' sanitizer reports go nowhere. */
static bool quiet_children;
/* Set while shrinking a leak (exit status 3 of the child). */
static bool shrinking_leak;

int model_run_forked(const ModelOp *ops, size_t n, const ModelConfig *cfg,
                     unsigned timeout_s, ModelResult *res)
{
    ModelResult *shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pid, got;
    int status;

    if (shared == MAP_FAILED) {
        abort();
    }
    memset(shared, 0, sizeof(*shared));
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        abort();
    }
    if (pid == 0) {
        /* A hang ends as SIGALRM (whatever Check did with the signal). */
        signal(SIGALRM, SIG_DFL);
        alarm(timeout_s);
        if (quiet_children) {
            int null = open("/dev/null", O_WRONLY);

            if (null >= 0) {
                dup2(null, STDERR_FILENO);
                close(null);
            }
        }
        if (model_run(ops, n, cfg, shared)) {
            _exit(1);
        }
        /* Shrink attempts skip the slow leak scan unless a leak is hunted. */
        _exit(quiet_children && !shrinking_leak ? 0 : child_leak_check());
    }
    do {
        got = waitpid(pid, &status, 0);
    } while (got < 0 && errno == EINTR);
    *res = *shared;
    munmap(shared, sizeof(*shared));
    if (got < 0) {
        abort();
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);

        res->fail = 100 + sig;
        snprintf(res->msg, sizeof(res->msg), "op %zu: killed by signal %d (%s)",
                 res->fail_op, sig,
                 sig == SIGALRM ? "timeout: a hang" : strsignal(sig));
    } else if (WEXITSTATUS(status) != 0 && res->fail == MODEL_OK) {
        res->fail = 200 + WEXITSTATUS(status);
        snprintf(res->msg, sizeof(res->msg), "op %zu: exit status %d%s",
                 res->fail_op, WEXITSTATUS(status),
                 WEXITSTATUS(status) == 3 ? " (LeakSanitizer found leaks)"
                                          : "");
    }
    return res->fail;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Does cand[0..*n) fail the same way?  If so, cut it after the operation
 * that failed (nothing later can matter).
 */
static bool still_fails(ModelOp *cand, size_t *n, const ModelConfig *cfg,
                        int want)
{
    ModelResult res;

    /*
     * Far above the time a run takes (a few us per op even under the
     * sanitizers), so that a hang shrinks at a few seconds an attempt.
     */
    unsigned timeout = 2 + (unsigned)(*n / 200000);

    if (model_run_forked(cand, *n, cfg, timeout, &res) != want) {
        return false;
    }
    if (res.fail_op + 1 < *n) {
        *n = res.fail_op + 1;
    }
    return true;
}

unsigned model_shrink(ModelOp *ops, size_t *n, const ModelConfig *cfg, int want,
                      unsigned budget_s)
{
    double end = now_s() + budget_s;
    ModelOp *cand = malloc((*n ? *n : 1) * sizeof(*cand));
    unsigned attempts = 0;
    size_t parts = 2;

    if (!cand) {
        abort();
    }
    quiet_children = true;
    shrinking_leak = want == 200 + 3;
    /* Complement-only ddmin: drop one of `parts` chunks while it fails. */
    while (*n >= 2 && now_s() < end) {
        size_t chunk = (*n + parts - 1) / parts;
        bool reduced = false;

        for (size_t start = 0; start < *n && now_s() < end; start += chunk) {
            size_t stop = start + chunk < *n ? start + chunk : *n;
            size_t m = 0;

            for (size_t i = 0; i < *n; i++) {
                if (i < start || i >= stop) {
                    cand[m++] = ops[i];
                }
            }
            attempts++;
            if (m && still_fails(cand, &m, cfg, want)) {
                memcpy(ops, cand, m * sizeof(*ops));
                *n = m;
                parts = parts > 2 ? parts - 1 : 2;
                reduced = true;
                break;
            }
        }
        if (!reduced) {
            if (parts >= *n) {
                break;
            }
            parts = parts * 2 < *n ? parts * 2 : *n;
        }
    }
    quiet_children = false;
    free(cand);
    return attempts;
}

void model_print_ops(FILE *f, const ModelOp *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s %s %u %d\n", ops[i].in_cb ? "cb" : "top",
                model_op_name(ops[i].kind), ops[i].slot, ops[i].arg);
    }
}

int model_write_ops(const char *path, const ModelOp *ops, size_t n)
{
    FILE *f = fopen(path, "w");

    if (!f) {
        return -errno;
    }
    fprintf(f, "# libaioctx model ops: where (top level, or queued for the "
               "next callback), op, slot, arg\n");
    model_print_ops(f, ops, n);
    if (fclose(f) != 0) {
        return -errno;
    }
    return 0;
}

ModelOp *model_read_ops(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    ModelOp *ops = NULL;
    size_t cap = 0;
    char line[128], where[8], name[32];

    if (!f) {
        return NULL;
    }
    *n = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned slot;
        int arg, kind;

        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (sscanf(line, "%7s %31s %u %d", where, name, &slot, &arg) != 4) {
            goto bad;
        }
        for (kind = 0; kind < OP_KINDS; kind++) {
            if (!strcmp(name, op_names[kind])) {
                break;
            }
        }
        if (kind == OP_KINDS || slot > 255 || arg < -128 || arg > 127 ||
            (strcmp(where, "cb") && strcmp(where, "top"))) {
            goto bad;
        }
        if (*n == cap) {
            ModelOp *grown;

            cap = cap ? cap * 2 : 64;
            grown = realloc(ops, cap * sizeof(*ops));
            if (!grown) {
                goto bad;
            }
            ops = grown;
        }
        ops[(*n)++] = (ModelOp){ .kind = kind,
                                 .in_cb = !strcmp(where, "cb"),
                                 .slot = slot,
                                 .arg = (int8_t)arg };
    }
    fclose(f);
    return ops ? ops : calloc(1, sizeof(*ops));
bad:
    fclose(f);
    free(ops);
    errno = EINVAL;
    return NULL;
}
