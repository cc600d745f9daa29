/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Out of file descriptors (EMFILE).  With RLIMIT_NOFILE lowered so that
 * only k more descriptors can be opened, for k = 0, 1, ... until the call
 * works: making a context, an event notifier, an IOThread, a signalfd or an
 * io_uring for a context either works or fails with a clear EMFILE error,
 * leaves no descriptor behind, and everything made before the limit (a
 * context with a registered notifier, an IOThread, a thread pool with
 * work done) keeps working.  These faults cannot be survived by retrying,
 * so they are tested here rather than injected under strace.
 */
#define _GNU_SOURCE /* pipe2 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "test-util.h"

#define MAX_K 16

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* The lowest descriptor number free now. */
static int lowest_free_fd(void)
{
    int fd = fcntl(0, F_DUPFD, 0);

    if (fd < 0) { /* fd 0 closed: it is the lowest free one */
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(fd, 0);
    }
    close(fd);
    return fd;
}

static struct rlimit saved_limit;

/*
 * Allow exactly k more descriptors: every number below the lowest free one
 * is taken (the lowest-free rule), so a limit of lowest + k leaves k.
 */
static void limit_fds(int k)
{
    struct rlimit rl;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved_limit), 0);
    rl = saved_limit;
    rl.rlim_cur = (rlim_t)(lowest_free_fd() + k);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void unlimit_fds(void)
{
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved_limit), 0);
}

static void tick(void *opaque)
{
    (void)opaque;
}

static void count_cb(void *opaque)
{
    __atomic_fetch_add((int *)opaque, 1, __ATOMIC_RELEASE);
}

/* Blocking polls bounded by a 10 ms timer until *flag; at most 2 s. */
static bool poll_until(AioContext *ctx, const int *flag)
{
    QEMUTimer *t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, tick,
                                 NULL);

    for (int i = 0; i < 200 && !__atomic_load_n(flag, __ATOMIC_ACQUIRE);
         i++) {
        timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
        aio_poll(ctx, true);
    }
    timer_free(t);
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
}

/* ---- what exists before the limit ---- */

typedef struct Before {
    AioContext *ctx;
    EventNotifier notifier;
    int notified;
    IOThread *iothread;
    int job_done;
    int job_ret;
} Before;

static void notifier_read(EventNotifier *e)
{
    Before *b = (Before *)((char *)e - offsetof(Before, notifier));

    event_notifier_test_and_clear(e);
    b->notified++;
}

static int job(void *arg)
{
    return *(int *)arg * 3;
}

static void job_cb(void *opaque, int ret)
{
    Before *b = opaque;

    b->job_ret = ret;
    __atomic_store_n(&b->job_done, b->job_done + 1, __ATOMIC_RELEASE);
}

static Before before;

static void before_setup(void)
{
    before = (Before){ 0 };
    before.ctx = test_ctx_new();
    qemu_set_current_aio_context(before.ctx);
    ck_assert_int_eq(event_notifier_init(&before.notifier, 0), 0);
    aio_set_event_notifier(before.ctx, &before.notifier, notifier_read, NULL,
                           NULL);
    before.iothread = iothread_create("before", &error_abort);
    ck_assert_ptr_nonnull(aio_get_thread_pool(before.ctx));
}

/* Everything made before the limit works (also while it holds). */
static void before_check(void)
{
    static int arg = 14;
    int ran = 0, io_ran = 0;

    aio_bh_schedule_oneshot(before.ctx, count_cb, &ran);
    ck_assert(poll_until(before.ctx, &ran));
    ck_assert_int_eq(ran, 1);

    before.notified = 0;
    ck_assert_int_eq(event_notifier_set(&before.notifier), 0);
    ck_assert(poll_until(before.ctx, &before.notified));
    ck_assert_int_eq(before.notified, 1);

    aio_bh_schedule_oneshot(iothread_get_aio_context(before.iothread),
                            count_cb, &io_ran);
    for (int i = 0; i < 2000 && !__atomic_load_n(&io_ran, __ATOMIC_ACQUIRE);
         i++) {
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    ck_assert_int_eq(__atomic_load_n(&io_ran, __ATOMIC_ACQUIRE), 1);

    before.job_done = 0;
    ck_assert_ptr_nonnull(thread_pool_submit_aio(job, &arg, job_cb, &before));
    ck_assert(poll_until(before.ctx, &before.job_done));
    ck_assert_int_eq(before.job_ret, 42);
}

static void before_teardown(void)
{
    aio_set_event_notifier(before.ctx, &before.notifier, NULL, NULL, NULL);
    event_notifier_cleanup(&before.notifier);
    iothread_destroy(before.iothread);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(before.ctx);
}

/* ---- the sweep over k ---- */

/*
 * One creation under the limit: returns true when it worked (and has
 * released what it made); on failure checks the report is EMFILE.
 */
typedef bool TryFn(void);

static void assert_emfile(Error *err, const char *what)
{
    ck_assert_msg(err != NULL, "%s failed without an Error", what);
    ck_assert_msg(error_get_errno(err) == EMFILE,
                  "%s: expected EMFILE, got \"%s\"", what,
                  error_get_pretty(err));
    ck_assert_ptr_nonnull(strstr(error_get_pretty(err),
                                 strerror(EMFILE)));
    error_free(err);
}

static bool try_context_new(void)
{
    Error *err = NULL;
    AioContext *ctx = aio_context_new(&err);
    int ran = 0;

    if (!ctx) {
        assert_emfile(err, "aio_context_new");
        return false;
    }
    aio_bh_schedule_oneshot(ctx, count_cb, &ran);
    ck_assert(poll_until(ctx, &ran));
    aio_context_unref(ctx);
    return true;
}

static bool try_notifier(void)
{
    EventNotifier e;
    int ret = event_notifier_init(&e, 1);

    if (ret < 0) {
        ck_assert_int_eq(ret, -EMFILE);
        /* Cleaning up a notifier whose init failed is allowed. */
        event_notifier_cleanup(&e);
        return false;
    }
    ck_assert_int_eq(event_notifier_test_and_clear(&e), 1);
    event_notifier_cleanup(&e);
    return true;
}

static bool try_iothread(void)
{
    Error *err = NULL;
    IOThread *t = iothread_create("limited", &err);

    if (!t) {
        assert_emfile(err, "iothread_create");
        return false;
    }
    iothread_destroy(t);
    return true;
}

static void on_signal(int signo, void *opaque)
{
    (void)signo;
    (void)opaque;
}

static bool try_signal(void)
{
    Error *err = NULL;
    int ret = aio_context_add_signal(before.ctx, SIGUSR2, on_signal, NULL,
                                     &err);

    if (ret < 0) {
        ck_assert_int_eq(ret, -EMFILE);
        assert_emfile(err, "aio_context_add_signal");
        return false;
    }
    aio_context_remove_signal(before.ctx, SIGUSR2);
    return true;
}

static int sweep(const char *what, TryFn *fn)
{
    int k;

    for (k = 0; k <= MAX_K; k++) {
        int fds = count_open_fds();
        bool ok;

        limit_fds(k);
        ok = fn();
        /* Checked while the limit holds: what existed still works. */
        before_check();
        unlimit_fds();
        ck_assert_msg(count_open_fds() == fds,
                      "%s with %d descriptors left: %d left open", what, k,
                      count_open_fds() - fds);
        if (ok) {
            break;
        }
    }
    ck_assert_msg(k <= MAX_K, "%s needs more than %d descriptors", what,
                  MAX_K);
    printf("%s: works from %d free descriptors on\n", what, k);
    return k;
}

/* Its eventfd, plus the epoll set on every engine but poll. */
static int context_fds_min(void)
{
    return strcmp(aio_context_get_engine_name(before.ctx), "poll") ? 2 : 1;
}

START_TEST(test_context_new_emfile)
{
    before_check();
    ck_assert_int_ge(sweep("aio_context_new", try_context_new),
                     context_fds_min());
    before_check();
}
END_TEST

START_TEST(test_notifier_emfile)
{
    ck_assert_int_eq(sweep("event_notifier_init", try_notifier), 1);
}
END_TEST

START_TEST(test_iothread_emfile)
{
    ck_assert_int_ge(sweep("iothread_create", try_iothread),
                     context_fds_min());
}
END_TEST

START_TEST(test_signal_emfile)
{
    ck_assert_int_eq(sweep("aio_context_add_signal", try_signal), 1);
}
END_TEST

/* A pipe for fd handlers cannot be made: the context itself is fine. */
START_TEST(test_pipe_emfile_context_usable)
{
    int p[2];

    limit_fds(1);
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), -1);
    ck_assert_int_eq(errno, EMFILE);
    before_check();
    unlimit_fds();
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fd-limit");
    TCase *tc = tcase_create("emfile");

    tcase_add_checked_fixture(tc, before_setup, before_teardown);
    tcase_add_test(tc, test_context_new_emfile);
    tcase_add_test(tc, test_notifier_emfile);
    tcase_add_test(tc, test_iothread_emfile);
    tcase_add_test(tc, test_signal_emfile);
    tcase_add_test(tc, test_pipe_emfile_context_usable);
    suite_add_tcase(s, tc);
    return test_main(s);
}
