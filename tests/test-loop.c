/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The loop driver: aio_context_run()/aio_context_stop() from other threads
 * and from signal handlers, signals delivered through a signalfd, and a
 * context embedded in a hand-written poll() loop through
 * aio_context_get_pollfd().
 */
#define _GNU_SOURCE /* pipe2, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "test-proc.h"
#include "test-util.h"

/* Bound for every wait that should end long before it. */
#define WAIT_MS 10000

static void write_byte(int fd)
{
    ck_assert_int_eq(write(fd, "x", 1), 1);
}

/* poll(2) on one descriptor for POLLIN; returns poll's result. */
static int wait_readable(int fd, int timeout_ms)
{
    return test_poll_fd(fd, POLLIN, timeout_ms);
}

static bool flag_get(bool *flag)
{
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

static void flag_set(bool *flag)
{
    __atomic_store_n(flag, true, __ATOMIC_RELEASE);
}

/* Spin-sleep until *flag is set (bounded). */
static void flag_wait(bool *flag)
{
    for (int i = 0; !flag_get(flag) && i < WAIT_MS; i++) {
        proc_sleep_ms(1);
    }
    ck_assert(flag_get(flag));
}

/* ------------------------------------------------------------------ */
/* run / stop                                                          */
/* ------------------------------------------------------------------ */

typedef struct RunState {
    AioContext *ctx;
    bool running;   /* atomic: the loop ran its first bottom half */
    int bh_runs;
    bool stop_from_bh;
} RunState;

static void mark_running_bh(void *opaque)
{
    RunState *rs = opaque;

    rs->bh_runs++;
    flag_set(&rs->running);
    if (rs->stop_from_bh) {
        aio_context_stop(rs->ctx);
    }
}

static void *stopper_thread(void *opaque)
{
    RunState *rs = opaque;

    flag_wait(&rs->running);
    proc_sleep_ms(20); /* most likely asleep in the engine by now */
    aio_context_stop(rs->ctx);
    return NULL;
}

START_TEST(test_run_stop_from_thread)
{
    RunState rs = { .ctx = test_ctx_new() };
    pthread_t t;

    aio_bh_schedule_oneshot(rs.ctx, mark_running_bh, &rs);
    ck_assert_int_eq(pthread_create(&t, NULL, stopper_thread, &rs), 0);
    aio_context_run(rs.ctx);
    pthread_join(t, NULL);
    ck_assert_int_eq(rs.bh_runs, 1);
    /* The request was consumed: a later run needs a new stop. */
    rs.stop_from_bh = true;
    aio_bh_schedule_oneshot(rs.ctx, mark_running_bh, &rs);
    aio_context_run(rs.ctx);
    ck_assert_int_eq(rs.bh_runs, 2);
    aio_context_unref(rs.ctx);
}
END_TEST

START_TEST(test_stop_before_run)
{
    RunState rs = { .ctx = test_ctx_new() };

    aio_context_stop(rs.ctx);
    aio_bh_schedule_oneshot(rs.ctx, mark_running_bh, &rs);
    aio_context_run(rs.ctx); /* returns at once, nothing polled */
    ck_assert_int_eq(rs.bh_runs, 0);
    rs.stop_from_bh = true;
    aio_context_run(rs.ctx); /* runs the pending BH, which stops it */
    ck_assert_int_eq(rs.bh_runs, 1);
    aio_context_unref(rs.ctx);
}
END_TEST

static AioContext *current_seen;

static void record_current_bh(void *opaque)
{
    current_seen = qemu_get_current_aio_context();
    aio_context_stop(opaque);
}

START_TEST(test_run_sets_current_context)
{
    AioContext *ctx = test_ctx_new();
    AioContext *other = test_ctx_new();

    qemu_set_current_aio_context(other);
    aio_bh_schedule_oneshot(ctx, record_current_bh, ctx);
    aio_context_run(ctx);
    ck_assert_ptr_eq(current_seen, ctx);
    ck_assert_ptr_eq(qemu_get_current_aio_context(), other);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(other);
    aio_context_unref(ctx);
}
END_TEST

/* ---- stop from a sigaction() handler ---- */

static AioContext *sig_stop_ctx;

static void stop_handler(int signo)
{
    (void)signo;
    aio_context_stop(sig_stop_ctx);
}

static void install_stop_handler(AioContext *ctx)
{
    struct sigaction sa = { .sa_handler = stop_handler };

    sig_stop_ctx = ctx;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
}

static void block_sigusr1(int how)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(how, &set, NULL), 0);
}

typedef struct KillState {
    RunState *rs;
    pthread_t target;
    bool self; /* raise in this thread instead of signalling target */
} KillState;

static void *killer_thread(void *opaque)
{
    KillState *ks = opaque;

    if (ks->self) {
        block_sigusr1(SIG_UNBLOCK);
    }
    flag_wait(&ks->rs->running);
    proc_sleep_ms(20);
    if (ks->self) {
        raise(SIGUSR1); /* the handler runs here, not in the loop's thread */
    } else {
        pthread_kill(ks->target, SIGUSR1);
    }
    return NULL;
}

static void run_until_signal(bool handler_in_other_thread)
{
    RunState rs = { .ctx = test_ctx_new() };
    KillState ks = { .rs = &rs, .target = pthread_self(),
                     .self = handler_in_other_thread };
    pthread_t t;

    install_stop_handler(rs.ctx);
    if (handler_in_other_thread) {
        block_sigusr1(SIG_BLOCK); /* only the killer can take it */
    }
    aio_bh_schedule_oneshot(rs.ctx, mark_running_bh, &rs);
    ck_assert_int_eq(pthread_create(&t, NULL, killer_thread, &ks), 0);
    aio_context_run(rs.ctx);
    pthread_join(t, NULL);
    ck_assert_int_eq(rs.bh_runs, 1);
    aio_context_unref(rs.ctx);
}

START_TEST(test_stop_from_signal_handler_in_loop_thread)
{
    run_until_signal(false);
}
END_TEST

START_TEST(test_stop_from_signal_handler_in_other_thread)
{
    run_until_signal(true);
}
END_TEST

static void raise_bh(void *opaque)
{
    RunState *rs = opaque;

    rs->bh_runs++;
    raise(SIGUSR1); /* handler runs synchronously, inside the callback */
}

START_TEST(test_stop_from_signal_handler_in_callback)
{
    RunState rs = { .ctx = test_ctx_new() };

    install_stop_handler(rs.ctx);
    aio_bh_schedule_oneshot(rs.ctx, raise_bh, &rs);
    aio_context_run(rs.ctx);
    ck_assert_int_eq(rs.bh_runs, 1);
    aio_context_unref(rs.ctx);
}
END_TEST

/* ------------------------------------------------------------------ */
/* signals through the loop                                            */
/* ------------------------------------------------------------------ */

typedef struct SigState {
    AioContext *ctx;
    int count;
    int last_signo;
    int order[8];
    int norder;
    bool stop;   /* aio_context_stop() from the callback */
    bool remove; /* aio_context_remove_signal() from the callback */
} SigState;

static void sig_cb(int signo, void *opaque)
{
    SigState *st = opaque;

    st->count++;
    st->last_signo = signo;
    if (st->norder < 8) {
        st->order[st->norder++] = signo;
    }
    if (st->remove) {
        aio_context_remove_signal(st->ctx, signo);
    }
    if (st->stop) {
        aio_context_stop(st->ctx);
    }
}

static bool signal_blocked(int signo)
{
    sigset_t cur;

    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, signo);
}

static bool signal_pending(int signo)
{
    sigset_t set;

    sigpending(&set);
    return sigismember(&set, signo);
}

START_TEST(test_signal_delivered_once)
{
    SigState st = { .ctx = test_ctx_new() };

    ck_assert(!signal_blocked(SIGUSR2));
    ck_assert_int_eq(aio_context_add_signal(st.ctx, SIGUSR2, sig_cb, &st,
                                            &error_abort), 0);
    ck_assert(signal_blocked(SIGUSR2));
    ck_assert(!aio_poll(st.ctx, false));
    ck_assert_int_eq(st.count, 0);

    raise(SIGUSR2);
    test_poll_until_ge(st.ctx, &st.count, 1);
    ck_assert_int_eq(st.count, 1);
    ck_assert_int_eq(st.last_signo, SIGUSR2);
    ck_assert(!aio_poll(st.ctx, false));
    ck_assert_int_eq(st.count, 1);

    raise(SIGUSR2);
    test_poll_until_ge(st.ctx, &st.count, 2);
    ck_assert_int_eq(st.count, 2);

    /* After removal nothing is delivered; the signal stays pending. */
    aio_context_remove_signal(st.ctx, SIGUSR2);
    raise(SIGUSR2);
    for (int i = 0; i < 5; i++) {
        aio_poll(st.ctx, false);
    }
    ck_assert_int_eq(st.count, 2);
    ck_assert(signal_blocked(SIGUSR2));
    ck_assert(signal_pending(SIGUSR2));
    aio_context_unref(st.ctx);
}
END_TEST

START_TEST(test_signal_two_signals_and_replace)
{
    SigState a = { .ctx = test_ctx_new() }, b = { .ctx = a.ctx };

    ck_assert_int_eq(aio_context_add_signal(a.ctx, SIGUSR1, sig_cb, &a,
                                            &error_abort), 0);
    ck_assert_int_eq(aio_context_add_signal(a.ctx, SIGUSR2, sig_cb, &a,
                                            &error_abort), 0);
    raise(SIGUSR1);
    raise(SIGUSR2);
    test_poll_until_ge(a.ctx, &a.count, 2);
    ck_assert_int_eq(a.count, 2);
    ck_assert_int_eq(a.norder, 2);
    ck_assert(a.order[0] != a.order[1]);
    ck_assert(a.order[0] == SIGUSR1 || a.order[0] == SIGUSR2);
    ck_assert(a.order[1] == SIGUSR1 || a.order[1] == SIGUSR2);

    /* Adding SIGUSR2 again replaces its callback's state. */
    ck_assert_int_eq(aio_context_add_signal(a.ctx, SIGUSR2, sig_cb, &b,
                                            &error_abort), 0);
    raise(SIGUSR2);
    test_poll_until_ge(a.ctx, &b.count, 1);
    ck_assert_int_eq(b.count, 1);
    ck_assert_int_eq(b.last_signo, SIGUSR2);
    ck_assert_int_eq(a.count, 2);

    /* Removing one leaves the other working. */
    aio_context_remove_signal(a.ctx, SIGUSR2);
    raise(SIGUSR1);
    test_poll_until_ge(a.ctx, &a.count, 3);
    ck_assert_int_eq(a.count, 3);
    ck_assert_int_eq(a.last_signo, SIGUSR1);
    ck_assert_int_eq(b.count, 1);
    aio_context_unref(a.ctx);
}
END_TEST

START_TEST(test_signal_remove_from_callback)
{
    SigState st = { .ctx = test_ctx_new(), .remove = true };

    ck_assert_int_eq(aio_context_add_signal(st.ctx, SIGUSR2, sig_cb, &st,
                                            &error_abort), 0);
    raise(SIGUSR2);
    test_poll_until_ge(st.ctx, &st.count, 1);
    ck_assert_int_eq(st.count, 1);
    raise(SIGUSR2);
    for (int i = 0; i < 5; i++) {
        aio_poll(st.ctx, false);
    }
    ck_assert_int_eq(st.count, 1);
    /* Handled again after a new add: the pending instance arrives. */
    st.remove = false;
    ck_assert_int_eq(aio_context_add_signal(st.ctx, SIGUSR2, sig_cb, &st,
                                            &error_abort), 0);
    test_poll_until_ge(st.ctx, &st.count, 2);
    ck_assert_int_eq(st.count, 2);
    aio_context_unref(st.ctx);
}
END_TEST

static void *kill_process_thread(void *opaque)
{
    SigState *st = opaque;

    /* Created after add_signal: SIGUSR2 is blocked here too. */
    ck_assert(signal_blocked(SIGUSR2));
    proc_sleep_ms(20);
    kill(getpid(), SIGUSR2);
    (void)st;
    return NULL;
}

START_TEST(test_signal_process_directed_wakes_run)
{
    SigState st = { .stop = true };
    pthread_t t;

    st.ctx = test_ctx_new();
    ck_assert_int_eq(aio_context_add_signal(st.ctx, SIGUSR2, sig_cb, &st,
                                            &error_abort), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, kill_process_thread, &st), 0);
    aio_context_run(st.ctx);
    pthread_join(t, NULL);
    ck_assert_int_eq(st.count, 1);
    ck_assert_int_eq(st.last_signo, SIGUSR2);
    aio_context_unref(st.ctx);
}
END_TEST

START_TEST(test_signal_errors)
{
    AioContext *ctx = test_ctx_new();
    SigState st = { .ctx = ctx };
    Error *err = NULL;

    ck_assert_int_eq(aio_context_add_signal(ctx, SIGKILL, sig_cb, &st, &err),
                     -EINVAL);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(error_get_pretty(err), "signal 9"));
    error_free(err);
    err = NULL;
    ck_assert_int_eq(aio_context_add_signal(ctx, SIGSTOP, sig_cb, &st, NULL),
                     -EINVAL);
    ck_assert_int_eq(aio_context_add_signal(ctx, 0, sig_cb, &st, NULL),
                     -EINVAL);
    ck_assert_int_eq(aio_context_add_signal(ctx, NSIG, sig_cb, &st, NULL),
                     -EINVAL);
    ck_assert_int_eq(aio_context_add_signal(ctx, SIGUSR2, NULL, &st, &err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(error_get_pretty(err), "no context"));
    error_free(err);
    ck_assert(!signal_blocked(SIGUSR2)); /* nothing was changed */
    aio_context_remove_signal(ctx, SIGUSR2); /* not handled: no-op */
    aio_context_remove_signal(ctx, -1);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_signal_fds_released)
{
    int before = proc_fd_count(), with_ctx;
    SigState st = { 0 };

    st.ctx = test_ctx_new();
    with_ctx = proc_fd_count();

    ck_assert_int_eq(aio_context_add_signal(st.ctx, SIGUSR1, sig_cb, &st,
                                            &error_abort), 0);
    ck_assert_int_eq(aio_context_add_signal(st.ctx, SIGUSR2, sig_cb, &st,
                                            &error_abort), 0);
    ck_assert_int_eq(proc_fd_count(), with_ctx + 1); /* one signalfd */
    aio_context_remove_signal(st.ctx, SIGUSR1);
    ck_assert_int_eq(proc_fd_count(), with_ctx + 1);
    aio_context_remove_signal(st.ctx, SIGUSR2);
    ck_assert_int_eq(proc_fd_count(), with_ctx); /* closed with the last */
    ck_assert_int_eq(aio_context_add_signal(st.ctx, SIGUSR2, sig_cb, &st,
                                            &error_abort), 0);
    aio_context_unref(st.ctx); /* destruction closes it */
    ck_assert_int_eq(proc_fd_count(), before);
}
END_TEST

/* ------------------------------------------------------------------ */
/* embedding: a hand-written poll() loop                               */
/* ------------------------------------------------------------------ */

/*
 * Dispatch until aio_prepare() finds nothing to do and the descriptor is
 * quiet (bounded).  An engine may leave one spurious readiness behind
 * after handler changes, which a foreign loop simply dispatches.  Leaves
 * the context prepared.
 */
static void settle(AioContext *ctx)
{
    int fd = aio_context_get_pollfd(ctx);

    for (int i = 0; i < 100; i++) {
        aio_dispatch(ctx);
        if (!aio_prepare(ctx) && wait_readable(fd, 0) == 0) {
            return;
        }
    }
    ck_abort_msg("the context never became idle");
}

static void count_bh(void *opaque)
{
    (*(int *)opaque)++;
}

START_TEST(test_pollfd_same_descriptor)
{
    AioContext *ctx = test_ctx_new();
    int fd = aio_context_get_pollfd(ctx);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(aio_context_get_pollfd(ctx), fd);
    ck_assert_int_ge(fcntl(fd, F_GETFD), 0);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_pollfd_notify_and_bh)
{
    AioContext *ctx = test_ctx_new();
    int fd = aio_context_get_pollfd(ctx);
    int runs = 0;
    QEMUBH *bh = aio_bh_new(ctx, count_bh, &runs);

    settle(ctx);
    ck_assert(!aio_prepare(ctx));

    aio_notify(ctx);
    ck_assert_int_eq(wait_readable(fd, WAIT_MS), 1);
    aio_dispatch(ctx);
    ck_assert_int_eq(runs, 0);

    settle(ctx);
    qemu_bh_schedule(bh);
    ck_assert_int_eq(wait_readable(fd, WAIT_MS), 1);
    aio_dispatch(ctx);
    ck_assert_int_eq(runs, 1);

    /* Scheduled outside the prepare/dispatch window: prepare reports it. */
    qemu_bh_schedule(bh);
    ck_assert(aio_prepare(ctx));
    ck_assert(aio_pending(ctx));
    aio_dispatch(ctx);
    ck_assert_int_eq(runs, 2);
    settle(ctx);
    aio_dispatch(ctx);
    qemu_bh_delete(bh);
    aio_context_unref(ctx);
}
END_TEST

typedef struct ForeignLoop {
    int wakeups;  /* poll() returned with the descriptor readable */
    int timeouts; /* poll() returned on its timeout */
    int capped;   /* the timeout was "forever", replaced by WAIT_MS */
} ForeignLoop;

/* One iteration of the hand-written loop. */
static void foreign_iteration(AioContext *ctx, int fd, ForeignLoop *fl)
{
    int64_t ns = aio_prepare(ctx) ? 0 : aio_compute_timeout(ctx);
    int ms, ret;

    if (ns < 0) {
        ms = WAIT_MS;
        fl->capped++;
    } else {
        ms = (int)((ns + 999999) / 1000000);
    }
    ret = wait_readable(fd, ms);
    ck_assert_int_ge(ret, 0);
    if (ret > 0) {
        fl->wakeups++;
    } else if (ms > 0) {
        fl->timeouts++;
    }
    aio_dispatch(ctx);
}

typedef struct FdState {
    int fd;
    int reads;
    int bytes;
} FdState;

static void fd_read_cb(void *opaque)
{
    FdState *fs = opaque;
    char buf[64];
    ssize_t n = read(fs->fd, buf, sizeof(buf));

    fs->reads++;
    if (n > 0) {
        fs->bytes += (int)n;
    }
}

/* Handlers registered before and after the descriptor was handed out. */
START_TEST(test_pollfd_follows_handlers)
{
    AioContext *ctx = test_ctx_new();
    int p1[2], p2[2], fd;
    FdState a = { 0 }, b = { 0 };
    ForeignLoop fl = { 0 };

    make_pipe(p1);
    make_pipe(p2);
    a.fd = p1[0];
    b.fd = p2[0];
    aio_set_fd_handler(ctx, p1[0], fd_read_cb, NULL, NULL, NULL, &a);
    fd = aio_context_get_pollfd(ctx);
    ck_assert_int_ge(fd, 0);
    aio_set_fd_handler(ctx, p2[0], fd_read_cb, NULL, NULL, NULL, &b);
    settle(ctx);

    write_byte(p1[1]);
    ck_assert(!aio_prepare(ctx));
    ck_assert_int_eq(wait_readable(fd, WAIT_MS), 1);
    aio_dispatch(ctx);
    ck_assert_int_eq(a.bytes, 1);
    settle(ctx);

    write_byte(p2[1]);
    ck_assert(!aio_prepare(ctx));
    ck_assert_int_eq(wait_readable(fd, WAIT_MS), 1);
    aio_dispatch(ctx);
    ck_assert_int_eq(b.bytes, 1);
    settle(ctx);

    /* Removed: its data no longer makes the descriptor readable. */
    aio_set_fd_handler(ctx, p2[0], NULL, NULL, NULL, NULL, NULL);
    settle(ctx);
    write_byte(p2[1]);
    ck_assert(!aio_prepare(ctx));
    ck_assert_int_eq(wait_readable(fd, 50), 0);
    aio_dispatch(ctx);
    ck_assert_int_eq(b.bytes, 1);

    /* Watched again: the data waiting there is found without a timeout. */
    aio_set_fd_handler(ctx, p2[0], fd_read_cb, NULL, NULL, NULL, &b);
    for (int i = 0; i < 100 && b.bytes < 2; i++) {
        foreign_iteration(ctx, fd, &fl);
    }
    ck_assert_int_eq(b.bytes, 2);
    ck_assert_int_eq(fl.timeouts, 0);

    aio_set_fd_handler(ctx, p1[0], NULL, NULL, NULL, NULL, NULL);
    aio_set_fd_handler(ctx, p2[0], NULL, NULL, NULL, NULL, NULL);
    aio_context_unref(ctx);
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
}
END_TEST

/* A regular file is always ready for poll(2); the descriptor must say so. */
START_TEST(test_pollfd_regular_file)
{
    AioContext *ctx = test_ctx_new();
    char path[] = "/tmp/aioctx-test-loop-XXXXXX";
    int file = mkostemp(path, O_CLOEXEC);
    int fd = aio_context_get_pollfd(ctx);
    FdState fs = { .fd = file };

    ck_assert_int_ge(file, 0);
    unlink(path);
    settle(ctx);
    aio_set_fd_handler(ctx, file, fd_read_cb, NULL, NULL, NULL, &fs);
    aio_dispatch(ctx); /* also takes the notification the change made */
    ck_assert_int_ge(fs.reads, 1);
    /* Nothing else is pending: only the file can make it readable. */
    for (int i = 0; i < 3; i++) {
        int reads = fs.reads;

        ck_assert(!aio_prepare(ctx));
        ck_assert_int_eq(wait_readable(fd, WAIT_MS), 1);
        aio_dispatch(ctx);
        ck_assert_int_gt(fs.reads, reads);
    }

    aio_set_fd_handler(ctx, file, NULL, NULL, NULL, NULL, NULL);
    settle(ctx); /* fails if the descriptor stays readable */
    aio_dispatch(ctx);
    aio_context_unref(ctx);
    close(file);
}
END_TEST

typedef struct EmbedState {
    AioContext *ctx;
    int pipe_fds[2];
    FdState fd;
    bool looping;  /* atomic: the foreign loop is about to sleep */
    bool bh_ran;   /* atomic */
    int timer_runs;
} EmbedState;

static void embed_bh(void *opaque)
{
    EmbedState *es = opaque;

    flag_set(&es->bh_ran);
}

static void embed_timer(void *opaque)
{
    EmbedState *es = opaque;

    es->timer_runs++;
}

/* Another thread: a bottom half, then a byte into the watched pipe. */
static void *embed_thread(void *opaque)
{
    EmbedState *es = opaque;

    flag_wait(&es->looping);
    proc_sleep_ms(20);
    aio_bh_schedule_oneshot(es->ctx, embed_bh, es);
    flag_wait(&es->bh_ran);
    proc_sleep_ms(20);
    write_byte(es->pipe_fds[1]);
    return NULL;
}

START_TEST(test_embed_in_poll_loop)
{
    EmbedState es = { .ctx = test_ctx_new() };
    ForeignLoop fl = { 0 };
    QEMUTimer timer;
    int fd = aio_context_get_pollfd(es.ctx);
    pthread_t t;
    int i;

    ck_assert_int_ge(fd, 0);
    make_pipe(es.pipe_fds);
    es.fd.fd = es.pipe_fds[0];
    aio_set_fd_handler(es.ctx, es.pipe_fds[0], fd_read_cb, NULL, NULL, NULL,
                       &es.fd);
    settle(es.ctx);

    /* Phase 1: a BH from another thread, then an fd; no timer armed. */
    ck_assert_int_eq(pthread_create(&t, NULL, embed_thread, &es), 0);
    flag_set(&es.looping);
    for (i = 0; i < 100 && es.fd.bytes < 1; i++) {
        foreign_iteration(es.ctx, fd, &fl);
    }
    pthread_join(t, NULL);
    ck_assert(flag_get(&es.bh_ran));
    ck_assert_int_eq(es.fd.bytes, 1);
    ck_assert_int_ge(fl.wakeups, 1);
    ck_assert_int_eq(fl.timeouts, 0); /* never woken by the WAIT_MS cap */

    /* Phase 2: a timer, run by aio_dispatch() after poll()'s timeout. */
    aio_timer_init(es.ctx, &timer, QEMU_CLOCK_REALTIME, SCALE_NS, embed_timer,
                   &es);
    timer_mod_ns(&timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 30000000);
    ck_assert(!aio_prepare(es.ctx));
    ck_assert_int_gt(aio_compute_timeout(es.ctx), 0);
    ck_assert_int_le(aio_compute_timeout(es.ctx), 30000000);
    aio_dispatch(es.ctx);
    fl = (ForeignLoop){ 0 };
    for (i = 0; i < 100 && es.timer_runs < 1; i++) {
        foreign_iteration(es.ctx, fd, &fl);
    }
    ck_assert_int_eq(es.timer_runs, 1);
    ck_assert_int_ge(fl.timeouts, 1);
    ck_assert_int_eq(fl.capped, 0);
    ck_assert(!timer_pending(&timer));
    ck_assert_int_eq(aio_compute_timeout(es.ctx), -1);

    aio_set_fd_handler(es.ctx, es.pipe_fds[0], NULL, NULL, NULL, NULL, NULL);
    aio_context_unref(es.ctx);
    close(es.pipe_fds[0]);
    close(es.pipe_fds[1]);
}
END_TEST

/* A signal handled by the context wakes the foreign loop too. */
START_TEST(test_embed_signal)
{
    SigState st = { .ctx = test_ctx_new() };
    int fd = aio_context_get_pollfd(st.ctx);
    ForeignLoop fl = { 0 };

    ck_assert_int_eq(aio_context_add_signal(st.ctx, SIGUSR2, sig_cb, &st,
                                            &error_abort), 0);
    settle(st.ctx);
    raise(SIGUSR2);
    for (int i = 0; i < 100 && st.count < 1; i++) {
        foreign_iteration(st.ctx, fd, &fl);
    }
    ck_assert_int_eq(st.count, 1);
    ck_assert_int_eq(fl.timeouts, 0);
    aio_context_unref(st.ctx);
}
END_TEST

static Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("run");

    tcase_add_test(tc, test_run_stop_from_thread);
    tcase_add_test(tc, test_stop_before_run);
    tcase_add_test(tc, test_run_sets_current_context);
    tcase_add_test(tc, test_stop_from_signal_handler_in_loop_thread);
    tcase_add_test(tc, test_stop_from_signal_handler_in_other_thread);
    tcase_add_test(tc, test_stop_from_signal_handler_in_callback);
    suite_add_tcase(s, tc);

    tc = tcase_create("signals");
    tcase_add_test(tc, test_signal_delivered_once);
    tcase_add_test(tc, test_signal_two_signals_and_replace);
    tcase_add_test(tc, test_signal_remove_from_callback);
    tcase_add_test(tc, test_signal_process_directed_wakes_run);
    tcase_add_test(tc, test_signal_errors);
    tcase_add_test(tc, test_signal_fds_released);
    suite_add_tcase(s, tc);

    tc = tcase_create("embed");
    tcase_add_test(tc, test_pollfd_same_descriptor);
    tcase_add_test(tc, test_pollfd_notify_and_bh);
    tcase_add_test(tc, test_pollfd_follows_handlers);
    tcase_add_test(tc, test_pollfd_regular_file);
    tcase_add_test(tc, test_embed_in_poll_loop);
    tcase_add_test(tc, test_embed_signal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_main(loop_suite());
}
