/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Allocation-failure sweep.  This executable defines malloc, calloc,
 * realloc, free and the aligned allocators itself; with glibc those
 * definitions take the place of libc's for the whole process, libaioctx
 * and libc's internal callers (strdup, vasprintf) included, and hand the
 * work to glibc's __libc_* entry points.  The wrapper counts live blocks
 * and can fail the Nth allocation from the moment it is armed.
 *
 * For each public call that can report failure, the sweep makes the call
 * with the 1st, 2nd, ... allocation failing until a run injects nothing.
 * Every run must end in a clean report (an Error with ENOMEM, -ENOMEM, a
 * callback with -ENOMEM, or for the void aio_set_fd_handler() a log
 * message and an unchanged registration) or in success; afterwards no
 * block may be left over, and a bottom half scheduled on a context made
 * before the sweep must still run.
 *
 * Not built with sanitizers: they replace malloc themselves.
 */
#define _GNU_SOURCE /* pipe2, dup2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "test-util.h"

/* ---- the interposed allocator ---- */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static long alloc_live;      /* blocks handed out and not freed */
static long alloc_countdown; /* > 0: armed; the allocation reaching 0 fails */
static long alloc_seen;      /* allocations while armed */
static long alloc_failed;    /* failures injected so far */

static bool alloc_should_fail(void)
{
    if (__atomic_load_n(&alloc_countdown, __ATOMIC_RELAXED) <= 0) {
        return false;
    }
    __atomic_fetch_add(&alloc_seen, 1, __ATOMIC_RELAXED);
    if (__atomic_sub_fetch(&alloc_countdown, 1, __ATOMIC_SEQ_CST) == 0) {
        __atomic_fetch_add(&alloc_failed, 1, __ATOMIC_RELAXED);
        errno = ENOMEM;
        return true;
    }
    return false;
}

static void *alloc_count(void *p)
{
    if (p) {
        __atomic_fetch_add(&alloc_live, 1, __ATOMIC_RELAXED);
    }
    return p;
}

void *malloc(size_t size)
{
    return alloc_should_fail() ? NULL : alloc_count(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
    return alloc_should_fail() ? NULL : alloc_count(__libc_calloc(n, size));
}

void *realloc(void *p, size_t size)
{
    void *q;

    if (!p) {
        return malloc(size);
    }
    if (size == 0) {
        free(p);
        return NULL;
    }
    if (alloc_should_fail()) {
        return NULL;
    }
    q = __libc_realloc(p, size);
    return q;
}

void free(void *p)
{
    if (p) {
        __atomic_fetch_sub(&alloc_live, 1, __ATOMIC_RELAXED);
        __libc_free(p);
    }
}

void *memalign(size_t align, size_t size)
{
    return alloc_should_fail() ? NULL
                               : alloc_count(__libc_memalign(align, size));
}

void *aligned_alloc(size_t align, size_t size)
{
    return memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p;

    if (align < sizeof(void *) || (align & (align - 1))) {
        return EINVAL;
    }
    p = memalign(align, size);
    if (!p) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

void *valloc(size_t size)
{
    return memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    return memalign(page, (size + page - 1) & ~(page - 1));
}

static void alloc_arm(long n)
{
    __atomic_store_n(&alloc_seen, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&alloc_countdown, n, __ATOMIC_SEQ_CST);
}

/* Disarm; true when the armed allocation was reached (and failed). */
static bool alloc_disarm(void)
{
    long left = __atomic_exchange_n(&alloc_countdown, 0, __ATOMIC_SEQ_CST);

    return left <= 0;
}

/* ---- the log hook ---- */

static int log_errors;
static char log_last[256];

static void log_hook(AioLogLevel level, const char *msg, void *opaque)
{
    (void)opaque;
    if (level == AIO_LOG_FATAL) {
        fprintf(stderr, "fatal: %s\n", msg); /* an abort follows */
    }
    if (level <= AIO_LOG_ERROR) {
        __atomic_fetch_add(&log_errors, 1, __ATOMIC_SEQ_CST);
        snprintf(log_last, sizeof(log_last), "%s", msg);
    }
}

/* ---- helpers ---- */

#define MAX_N 400

static void tick(void *opaque)
{
    (void)opaque;
}

/* Blocking polls, each bounded by a 10 ms timer, until *flag; <= 2 s. */
static bool poll_until(AioContext *ctx, const int *flag)
{
    QEMUTimer *bound =
        aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, tick, NULL);

    for (int i = 0; i < 200 && !__atomic_load_n(flag, __ATOMIC_ACQUIRE);
         i++) {
        timer_mod(bound, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
        aio_poll(ctx, true);
    }
    timer_free(bound);
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
}

static void count_cb(void *opaque)
{
    __atomic_fetch_add((int *)opaque, 1, __ATOMIC_RELEASE);
}

/* A BH scheduled on ctx runs: the context is still usable. */
static void assert_bh_runs(AioContext *ctx)
{
    int ran = 0;

    aio_bh_schedule_oneshot(ctx, count_cb, &ran);
    ck_assert(poll_until(ctx, &ran));
    ck_assert_int_eq(ran, 1);
}

static void assert_enomem_error(Error *err)
{
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(error_get_errno(err) == ENOMEM,
                  "expected an ENOMEM error, got \"%s\"",
                  error_get_pretty(err));
    ck_assert(strlen(error_get_pretty(err)) > 0);
}

/*
 * One swept call.  setup and finish run disarmed; call runs armed and
 * returns whether it succeeded.  finish checks the outcome (failed runs
 * reported cleanly, succeeded ones work) and releases everything.
 */
typedef struct Sweep Sweep;
struct Sweep {
    const char *name;
    void (*setup)(Sweep *s);
    bool (*call)(Sweep *s);
    void (*finish)(Sweep *s, bool ok, bool injected);
    AioContext *ctx; /* a fresh context from setup, if it makes one */
    int fds[2];
    int hi_fd;
    int hits_a, hits_b;
    int ret;
    Error *err;
    void *obj;
    EventNotifier notifier;
    char buf[16];
};

static AioContext *shared_ctx; /* made before the sweeps, checked after */

/*
 * Run s with N = 1, 2, ... until a run injects nothing; returns that run's
 * N (the number of allocations the call makes, plus one).
 */
static long sweep_run(Sweep *s)
{
    long n;

    aio_log_set_handler(log_hook, NULL, AIO_LOG_ERROR);
    /* A first, undisturbed run makes one-time allocations (caches). */
    if (s->setup) {
        s->setup(s);
    }
    ck_assert_msg(s->call(s), "%s fails without injected faults", s->name);
    s->finish(s, true, false);

    for (n = 1; n <= MAX_N; n++) {
        long before;
        bool ok, injected;

        before = __atomic_load_n(&alloc_live, __ATOMIC_SEQ_CST);
        if (s->setup) {
            s->setup(s);
        }
        log_errors = 0;
        alloc_arm(n);
        ok = s->call(s);
        injected = alloc_disarm();
        s->finish(s, ok, injected);
        ck_assert_msg(__atomic_load_n(&alloc_live, __ATOMIC_SEQ_CST) == before,
                      "%s with allocation %ld failing: %ld blocks leaked",
                      s->name, n,
                      __atomic_load_n(&alloc_live, __ATOMIC_SEQ_CST) - before);
        assert_bh_runs(shared_ctx);
        if (!injected) {
            ck_assert_msg(ok, "%s failed with nothing injected", s->name);
            break;
        }
    }
    ck_assert_msg(n <= MAX_N, "%s: more than %d allocations", s->name, MAX_N);
    printf("%s: N reached %ld (%ld failures injected in all)\n", s->name, n,
           alloc_failed);
    aio_log_set_handler(NULL, NULL, AIO_LOG_ERROR);
    return n;
}

static void fresh_ctx(Sweep *s)
{
    s->ctx = test_ctx_new();
    s->hits_a = s->hits_b = 0;
    s->err = NULL;
    s->obj = NULL;
    s->ret = 0;
}

static void drop_ctx(Sweep *s)
{
    aio_context_unref(s->ctx);
    s->ctx = NULL;
}

static void setup_shared(void)
{
    /* Check's own output buffers come first, outside any measurement. */
    printf("engine %s\n", getenv("AIOCTX_ENGINE") ? getenv("AIOCTX_ENGINE")
                                                  : "(default)");
    fflush(stdout);
    shared_ctx = test_ctx_new();
}

static void teardown_shared(void)
{
    assert_bh_runs(shared_ctx);
    aio_context_unref(shared_ctx);
}

/* ---- aio_context_new ---- */

static bool ctx_new_call(Sweep *s)
{
    s->err = NULL;
    s->ctx = aio_context_new(&s->err);
    return s->ctx != NULL;
}

static void ctx_new_finish(Sweep *s, bool ok, bool injected)
{
    (void)injected;
    if (!ok) {
        assert_enomem_error(s->err);
        error_free(s->err);
        return;
    }
    ck_assert_ptr_null(s->err);
    if (getenv("AIOCTX_ENGINE")) {
        ck_assert_str_eq(aio_context_get_engine_name(s->ctx),
                         getenv("AIOCTX_ENGINE"));
    }
    assert_bh_runs(s->ctx);
    drop_ctx(s);
}

START_TEST(test_sweep_context_new)
{
    Sweep s = { .name = "aio_context_new",
                .call = ctx_new_call,
                .finish = ctx_new_finish };

    ck_assert_int_gt(sweep_run(&s), 1);
}
END_TEST

/* ---- iothread_create ---- */

static bool iothread_call(Sweep *s)
{
    s->err = NULL;
    s->obj = iothread_create("sweep", &s->err);
    return s->obj != NULL;
}

static void iothread_finish(Sweep *s, bool ok, bool injected)
{
    int ran = 0;

    (void)injected;
    if (!ok) {
        ck_assert_ptr_nonnull(s->err);
        /* pthread_create() says EAGAIN when it cannot get its memory. */
        ck_assert_msg(error_get_errno(s->err) == ENOMEM ||
                          error_get_errno(s->err) == EAGAIN,
                      "iothread_create: %s", error_get_pretty(s->err));
        error_free(s->err);
        return;
    }
    aio_bh_schedule_oneshot(iothread_get_aio_context(s->obj), count_cb, &ran);
    for (int i = 0; i < 2000 && !__atomic_load_n(&ran, __ATOMIC_ACQUIRE);
         i++) {
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    ck_assert_int_eq(__atomic_load_n(&ran, __ATOMIC_ACQUIRE), 1);
    iothread_destroy(s->obj);
}

START_TEST(test_sweep_iothread_create)
{
    Sweep s = { .name = "iothread_create",
                .call = iothread_call,
                .finish = iothread_finish };

    ck_assert_int_gt(sweep_run(&s), 1);
}
END_TEST

/* ---- aio_set_fd_handler: a new fd (high number: the table grows) ---- */

static void read_a(void *opaque)
{
    Sweep *s = opaque;

    s->hits_a++;
    (void)!read(s->hi_fd, s->buf, sizeof(s->buf));
}

static void read_b(void *opaque)
{
    Sweep *s = opaque;

    s->hits_b++;
    (void)!read(s->hi_fd, s->buf, sizeof(s->buf));
}

static void fd_setup(Sweep *s)
{
    fresh_ctx(s);
    ck_assert_int_eq(pipe2(s->fds, O_NONBLOCK | O_CLOEXEC), 0);
    s->hi_fd = dup3(s->fds[0], 700, O_CLOEXEC);
    ck_assert_int_eq(s->hi_fd, 700);
}

static bool fd_add_call(Sweep *s)
{
    aio_set_fd_handler(s->ctx, s->hi_fd, read_a, NULL, NULL, NULL, s);
    return __atomic_load_n(&log_errors, __ATOMIC_SEQ_CST) == 0;
}

/* Make the pipe readable and give the loop 50 ms to react. */
static void fd_kick(Sweep *s)
{
    int dummy = 0;
    QEMUTimer *t =
        aio_timer_new(s->ctx, QEMU_CLOCK_REALTIME, SCALE_MS, count_cb, &dummy);

    ck_assert_int_eq(write(s->fds[1], "k", 1), 1);
    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 50);
    for (int i = 0; i < 100 && !dummy && !s->hits_a && !s->hits_b; i++) {
        aio_poll(s->ctx, true);
    }
    timer_free(t);
}

static void fd_teardown(Sweep *s)
{
    aio_set_fd_handler(s->ctx, s->hi_fd, NULL, NULL, NULL, NULL, NULL);
    close(s->hi_fd);
    close(s->fds[0]);
    close(s->fds[1]);
    drop_ctx(s);
}

static void assert_log_names_fd(Sweep *s)
{
    char want[64];

    ck_assert_int_eq(log_errors, 1);
    snprintf(want, sizeof(want), "out of memory watching fd %d", s->hi_fd);
    ck_assert_msg(strstr(log_last, want), "log said \"%s\"", log_last);
}

static void fd_add_finish(Sweep *s, bool ok, bool injected)
{
    (void)injected;
    fd_kick(s);
    if (ok) {
        ck_assert_int_eq(s->hits_a, 1);
    } else {
        /* Reported, and the fd stays unwatched. */
        assert_log_names_fd(s);
        ck_assert_int_eq(s->hits_a, 0);
    }
    fd_teardown(s);
}

START_TEST(test_sweep_fd_handler_add)
{
    Sweep s = { .name = "aio_set_fd_handler (new fd)",
                .setup = fd_setup,
                .call = fd_add_call,
                .finish = fd_add_finish };

    ck_assert_int_gt(sweep_run(&s), 1);
}
END_TEST

/* ---- aio_set_fd_handler: replacing a registration ---- */

static void fd_replace_setup(Sweep *s)
{
    fd_setup(s);
    aio_set_fd_handler(s->ctx, s->hi_fd, read_a, NULL, NULL, NULL, s);
}

static bool fd_replace_call(Sweep *s)
{
    aio_set_fd_handler(s->ctx, s->hi_fd, read_b, NULL, NULL, NULL, s);
    return __atomic_load_n(&log_errors, __ATOMIC_SEQ_CST) == 0;
}

static void fd_replace_finish(Sweep *s, bool ok, bool injected)
{
    (void)injected;
    fd_kick(s);
    if (ok) {
        ck_assert_int_eq(s->hits_a, 0);
        ck_assert_int_eq(s->hits_b, 1);
    } else {
        /* Reported, and the old handler is still the one called. */
        assert_log_names_fd(s);
        ck_assert_int_eq(s->hits_a, 1);
        ck_assert_int_eq(s->hits_b, 0);
    }
    fd_teardown(s);
}

START_TEST(test_sweep_fd_handler_replace)
{
    Sweep s = { .name = "aio_set_fd_handler (replace)",
                .setup = fd_replace_setup,
                .call = fd_replace_call,
                .finish = fd_replace_finish };

    ck_assert_int_gt(sweep_run(&s), 1);
}
END_TEST

/* ---- event notifiers ---- */

static void notifier_read(EventNotifier *e)
{
    Sweep *s = (Sweep *)((char *)e - offsetof(Sweep, notifier));

    event_notifier_test_and_clear(e);
    s->hits_a++;
}

static void notifier_setup(Sweep *s)
{
    fresh_ctx(s);
}

static bool notifier_call(Sweep *s)
{
    s->ret = event_notifier_init(&s->notifier, 0);
    if (s->ret < 0) {
        return false;
    }
    aio_set_event_notifier(s->ctx, &s->notifier, notifier_read, NULL, NULL);
    return __atomic_load_n(&log_errors, __ATOMIC_SEQ_CST) == 0;
}

static void notifier_finish(Sweep *s, bool ok, bool injected)
{
    int dummy = 0;
    QEMUTimer *t;

    (void)injected;
    ck_assert_int_eq(s->ret, 0); /* event_notifier_init allocates nothing */
    ck_assert_int_eq(event_notifier_set(&s->notifier), 0);
    t = aio_timer_new(s->ctx, QEMU_CLOCK_REALTIME, SCALE_MS, count_cb, &dummy);
    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 50);
    for (int i = 0; i < 100 && !dummy && !s->hits_a; i++) {
        aio_poll(s->ctx, true);
    }
    timer_free(t);
    if (ok) {
        ck_assert_int_eq(s->hits_a, 1);
    } else {
        ck_assert_int_eq(log_errors, 1);
        ck_assert_ptr_nonnull(strstr(log_last, "out of memory watching fd"));
        ck_assert_int_eq(s->hits_a, 0);
    }
    aio_set_event_notifier(s->ctx, &s->notifier, NULL, NULL, NULL);
    event_notifier_cleanup(&s->notifier);
    drop_ctx(s);
}

START_TEST(test_sweep_event_notifier)
{
    Sweep s = { .name = "event_notifier_init + aio_set_event_notifier",
                .setup = notifier_setup,
                .call = notifier_call,
                .finish = notifier_finish };

    ck_assert_int_gt(sweep_run(&s), 1);
}
END_TEST

/* ---- aio_context_add_signal ---- */

static void on_signal(int signo, void *opaque)
{
    ck_assert_int_eq(signo, SIGUSR1);
    ((Sweep *)opaque)->hits_a++;
}

static sigset_t signal_mask_before;

static void signal_setup(Sweep *s)
{
    fresh_ctx(s);
    pthread_sigmask(SIG_BLOCK, NULL, &signal_mask_before);
}

static bool signal_call(Sweep *s)
{
    s->err = NULL;
    s->ret = aio_context_add_signal(s->ctx, SIGUSR1, on_signal, s, &s->err);
    return s->ret == 0;
}

static void signal_finish(Sweep *s, bool ok, bool injected)
{
    sigset_t cur;

    (void)injected;
    if (!ok) {
        ck_assert_int_eq(s->ret, -ENOMEM);
        assert_enomem_error(s->err);
        error_free(s->err);
        /* The failed call left the signal mask as it found it. */
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        ck_assert_int_eq(sigismember(&cur, SIGUSR1),
                         sigismember(&signal_mask_before, SIGUSR1));
        drop_ctx(s);
        return;
    }
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert(poll_until(s->ctx, &s->hits_a));
    ck_assert_int_eq(s->hits_a, 1);
    aio_context_remove_signal(s->ctx, SIGUSR1);
    drop_ctx(s);
}

START_TEST(test_sweep_add_signal)
{
    Sweep s = { .name = "aio_context_add_signal",
                .setup = signal_setup,
                .call = signal_call,
                .finish = signal_finish };

    ck_assert_int_gt(sweep_run(&s), 1);
}
END_TEST

/* ---- thread_pool_submit_aio: a worker must be started ---- */

static int job(void *arg)
{
    return *(int *)arg + 1;
}

static void job_done(void *opaque, int ret)
{
    Sweep *s = opaque;

    s->ret = ret;
    __atomic_store_n(&s->hits_a, s->hits_a + 1, __ATOMIC_RELEASE);
}

static int job_arg = 41;

static void pool_setup(Sweep *s)
{
    fresh_ctx(s);
    qemu_set_current_aio_context(s->ctx);
    ck_assert_ptr_nonnull(aio_get_thread_pool(s->ctx));
}

static bool pool_call(Sweep *s)
{
    s->obj = thread_pool_submit_aio(job, &job_arg, job_done, s);
    return s->obj != NULL;
}

static void pool_finish(Sweep *s, bool ok, bool injected)
{
    (void)injected;
    ck_assert_msg(ok, "thread_pool_submit_aio returned NULL");
    ck_assert(poll_until(s->ctx, &s->hits_a));
    ck_assert_int_eq(s->hits_a, 1);
    ck_assert_msg(s->ret == 42 || s->ret == -ENOMEM || s->ret == -EAGAIN,
                  "job result %d", s->ret);
    qemu_set_current_aio_context(NULL);
    drop_ctx(s);
}

/* The call succeeds as such; the result says whether the job ran. */
static bool pool_call_checked(Sweep *s)
{
    return pool_call(s);
}

START_TEST(test_sweep_thread_pool_submit)
{
    Sweep s = { .name = "thread_pool_submit_aio",
                .setup = pool_setup,
                .call = pool_call_checked,
                .finish = pool_finish };
    long n = sweep_run(&s);

    /* The final run (nothing injected) ran the job. */
    ck_assert_int_eq(s.ret, 42);
    ck_assert_int_gt(n, 1);
}
END_TEST

/* ---- file I/O submission ---- */

static void file_setup(Sweep *s)
{
    char path[] = "/tmp/aioctx-alloc-XXXXXX";
    struct iovec iov = { s->buf, 4 };
    int done = 0;

    fresh_ctx(s);
    qemu_set_current_aio_context(s->ctx);
    s->hi_fd = mkostemp(path, O_CLOEXEC);
    ck_assert_int_ge(s->hi_fd, 0);
    unlink(path);
    ck_assert_int_eq(pwrite(s->hi_fd, "data", 4, 0), 4);
    /* The context's file I/O state (and pool) exist before the sweep. */
    s->ret = -1;
    ck_assert_ptr_nonnull(
        aio_file_preadv(s->ctx, s->hi_fd, 0, &iov, 1, job_done, s));
    ck_assert(poll_until(s->ctx, &s->hits_a));
    ck_assert_int_eq(s->ret, 4);
    (void)done;
    s->hits_a = 0;
    memset(s->buf, 0, sizeof(s->buf));
}

static bool file_call(Sweep *s)
{
    static struct iovec iov[2];

    /* Two buffers: a short transfer would need the rest described. */
    iov[0] = (struct iovec){ s->buf, 2 };
    iov[1] = (struct iovec){ s->buf + 2, 2 };
    s->obj = aio_file_preadv(s->ctx, s->hi_fd, 0, iov, 2, job_done, s);
    return s->obj != NULL;
}

static void file_finish(Sweep *s, bool ok, bool injected)
{
    (void)injected;
    ck_assert_msg(ok, "aio_file_preadv returned NULL");
    ck_assert(poll_until(s->ctx, &s->hits_a));
    ck_assert_int_eq(s->hits_a, 1);
    if (s->ret == 4) {
        ck_assert_mem_eq(s->buf, "data", 4);
    } else {
        ck_assert_msg(s->ret == -ENOMEM || s->ret == -EAGAIN,
                      "read result %d", s->ret);
    }
    close(s->hi_fd);
    qemu_set_current_aio_context(NULL);
    drop_ctx(s);
}

START_TEST(test_sweep_file_read)
{
    Sweep s = { .name = "aio_file_preadv",
                .setup = file_setup,
                .call = file_call,
                .finish = file_finish };

    sweep_run(&s);
    ck_assert_int_eq(s.ret, 4);
}
END_TEST

/* ---- error_setg_errno: reporting itself ---- */

static bool error_call(Sweep *s)
{
    s->err = NULL;
    error_setg_errno(&s->err, EIO, "reading block %d", 7);
    return strstr(error_get_pretty(s->err), "reading block 7: ") != NULL;
}

static void error_finish(Sweep *s, bool ok, bool injected)
{
    (void)injected;
    ck_assert_ptr_nonnull(s->err);
    if (!ok) {
        /* The message alone, or the shared out-of-memory error. */
        ck_assert_msg(strcmp(error_get_pretty(s->err), "reading block 7") ==
                              0 ||
                          error_get_errno(s->err) == ENOMEM,
                      "error was \"%s\"", error_get_pretty(s->err));
    } else {
        ck_assert_int_eq(error_get_errno(s->err), EIO);
    }
    error_free(s->err);
}

START_TEST(test_sweep_error_setg)
{
    Sweep s = { .name = "error_setg_errno",
                .call = error_call,
                .finish = error_finish };

    ck_assert_int_gt(sweep_run(&s), 1);
}
END_TEST

/* ---- linux-aio and io_uring setup on any engine ---- */

static bool luring_call(Sweep *s)
{
    s->err = NULL;
    s->obj = aio_setup_linux_io_uring(s->ctx, &s->err);
    return s->obj != NULL;
}

static bool laio_call(Sweep *s)
{
    s->err = NULL;
    s->obj = aio_setup_linux_aio(s->ctx, &s->err);
    return s->obj != NULL;
}

static void setup_finish(Sweep *s, bool ok, bool injected)
{
    (void)injected;
    if (!ok) {
        assert_enomem_error(s->err);
        error_free(s->err);
    }
    assert_bh_runs(s->ctx);
    close(s->hi_fd);
    qemu_set_current_aio_context(NULL);
    drop_ctx(s);
}

START_TEST(test_sweep_setup_io_uring)
{
    Sweep s = { .name = "aio_setup_linux_io_uring",
                .setup = file_setup,
                .call = luring_call,
                .finish = setup_finish };

    if (!aio_engine_available("io_uring")) {
        return;
    }
    sweep_run(&s);
}
END_TEST

START_TEST(test_sweep_setup_linux_aio)
{
    Sweep s = { .name = "aio_setup_linux_aio",
                .setup = file_setup,
                .call = laio_call,
                .finish = setup_finish };

    if (!aio_engine_available("linux-aio")) {
        return;
    }
    sweep_run(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alloc-fail");
    TCase *tc = tcase_create("sweep");

    tcase_add_checked_fixture(tc, setup_shared, teardown_shared);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sweep_context_new);
    tcase_add_test(tc, test_sweep_iothread_create);
    tcase_add_test(tc, test_sweep_fd_handler_add);
    tcase_add_test(tc, test_sweep_fd_handler_replace);
    tcase_add_test(tc, test_sweep_event_notifier);
    tcase_add_test(tc, test_sweep_add_signal);
    tcase_add_test(tc, test_sweep_thread_pool_submit);
    tcase_add_test(tc, test_sweep_file_read);
    tcase_add_test(tc, test_sweep_error_setg);
    tcase_add_test(tc, test_sweep_setup_io_uring);
    tcase_add_test(tc, test_sweep_setup_linux_aio);
    suite_add_tcase(s, tc);
    return test_main(s);
}
