/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio_poll(): return values, sleeping, adaptive busy-polling on and off,
 * parameter validation, aio_compute_timeout(), and driving a context from a
 * hand-written poll(2) loop with aio_prepare/aio_pending/aio_dispatch.
 */
#define _GNU_SOURCE /* pipe2, mkostemp */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-util.h"

#define MS 1000000LL

static void close_pair(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
}

static void put(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void remove_fd(AioContext *ctx, int fd)
{
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
}

static void bh_count_cb(void *opaque)
{
    int *n = opaque;

    (*n)++;
}

/* A pipe whose handler can also be polled from user space. */
typedef struct {
    int p[2];
    int reads;        /* io_read calls */
    int polls;        /* io_poll calls */
    int poll_readys;  /* io_poll_ready calls */
    bool armed;       /* what io_poll reports */
    char last;        /* last byte consumed */
} Polled;

static void drain(Polled *s)
{
    char buf[64];
    ssize_t n;

    while ((n = read(s->p[0], buf, sizeof(buf))) > 0) {
        s->last = buf[n - 1];
    }
}

static void polled_read_cb(void *opaque)
{
    Polled *s = opaque;

    s->reads++;
    drain(s);
}

static bool polled_poll_cb(void *opaque)
{
    Polled *s = opaque;

    s->polls++;
    return s->armed;
}

static void polled_ready_cb(void *opaque)
{
    Polled *s = opaque;

    s->poll_readys++;
    s->armed = false;
    drain(s);
}

static void polled_register(AioContext *ctx, Polled *s)
{
    make_pipe(s->p);
    aio_set_fd_handler(ctx, s->p[0], polled_read_cb, NULL, polled_poll_cb,
                       polled_ready_cb, s);
}

static void polled_unregister(AioContext *ctx, Polled *s)
{
    remove_fd(ctx, s->p[0]);
    close_pair(s->p);
}

/*
 * Arm io_poll and also make the fd readable, then block once.  A loop that
 * busy-polls finds the work through io_poll (io_poll_ready runs); one that
 * goes straight to the fds runs io_read.  Either way it cannot hang.
 */
static bool polled_block_armed(AioContext *ctx, Polled *s)
{
    s->armed = true;
    put(s->p[1], "p");
    return aio_poll(ctx, true);
}

static void set_poll(AioContext *ctx, int64_t max_ns, int64_t grow,
                     int64_t shrink)
{
    Error *err = NULL;

    aio_context_set_poll_params(ctx, max_ns, grow, shrink, &err);
    ck_assert_msg(!err, "set_poll_params: %s", err ? error_get_pretty(err) : "");
}

/* Quick non-blocking iterations: the poll time grows from 0. */
static void warm_up(AioContext *ctx)
{
    for (int i = 0; i < 4; i++) {
        aio_poll(ctx, false);
    }
}

/* ---- return values ---- */

static void pipe_read_cb(void *opaque)
{
    Polled *s = opaque;

    s->reads++;
    drain(s);
}

START_TEST(test_return_values)
{
    AioContext *ctx = test_ctx_new();
    Polled s = { 0 };
    int bh_runs = 0;

    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false)); /* nothing at all */

    /* A bare aio_notify wakes a blocking call but is not progress. */
    aio_notify(ctx);
    ck_assert(!aio_poll(ctx, true));
    aio_notify(ctx);
    aio_notify(ctx);
    ck_assert(!aio_poll(ctx, true));
    ck_assert(!aio_poll(ctx, false));

    /* A bottom half is. */
    aio_bh_schedule_oneshot(ctx, bh_count_cb, &bh_runs);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(bh_runs, 1);
    ck_assert(!aio_poll(ctx, false));

    /* Registering wakes the loop; that is not progress either. */
    make_pipe(s.p);
    aio_set_fd_handler(ctx, s.p[0], pipe_read_cb, NULL, NULL, NULL, &s);
    ck_assert(!aio_poll(ctx, false));
    ck_assert(!aio_poll(ctx, false));

    /* An fd callback is. */
    put(s.p[1], "x");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(s.reads, 1);
    ck_assert(!aio_poll(ctx, false));

    /* Both in one iteration. */
    put(s.p[1], "y");
    aio_bh_schedule_oneshot(ctx, bh_count_cb, &bh_runs);
    ck_assert(aio_poll(ctx, true));
    for (int i = 0; i < 3 && s.reads < 2; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(bh_runs, 2);
    ck_assert_int_eq(s.reads, 2);
    ck_assert_int_eq(s.last, 'y');
    ck_assert(!aio_poll(ctx, false));

    remove_fd(ctx, s.p[0]);
    ck_assert(!aio_poll(ctx, false)); /* removal is not progress */
    close_pair(s.p);
    aio_context_unref(ctx);
}
END_TEST

/* ---- a blocking call sleeps ---- */

typedef struct {
    AioContext *ctx;
    int returns;    /* atomic: aio_poll(ctx, true) calls that returned */
    bool last;      /* the last return value */
    bool stop;      /* set by stop_cb, in the poller */
} Sleeper;

static void sleeper_stop_cb(void *opaque)
{
    Sleeper *s = opaque;

    s->stop = true;
}

static void *sleeper_thread(void *opaque)
{
    Sleeper *s = opaque;

    while (!s->stop) {
        s->last = aio_poll(s->ctx, true);
        __atomic_add_fetch(&s->returns, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void check_sleeps(int64_t poll_max_ns)
{
    AioContext *ctx = test_ctx_new();
    Sleeper s = { .ctx = ctx };
    pthread_t th;

    set_poll(ctx, poll_max_ns, 0, 0);
    test_consume_notify(ctx);
    pthread_create(&th, NULL, sleeper_thread, &s);
    /* Nothing is registered: the poller must be asleep, not spinning. */
    test_sleep_us(50000);
    ck_assert_int_eq(__atomic_load_n(&s.returns, __ATOMIC_SEQ_CST), 0);
    test_sleep_us(50000);
    ck_assert_int_eq(__atomic_load_n(&s.returns, __ATOMIC_SEQ_CST), 0);

    aio_bh_schedule_oneshot(ctx, sleeper_stop_cb, &s);
    pthread_join(th, NULL);
    ck_assert_int_eq(s.returns, 1);
    ck_assert(s.last);
    aio_context_unref(ctx);
}

START_TEST(test_blocking_poll_sleeps)
{
    check_sleeps(0);
}
END_TEST

START_TEST(test_blocking_poll_sleeps_with_polling)
{
    check_sleeps(1 * MS);
}
END_TEST

/* ---- adaptive polling ---- */

START_TEST(test_adaptive_polling)
{
    AioContext *ctx = test_ctx_new();
    Polled s = { 0 }, plain = { 0 };

    set_poll(ctx, 10 * MS, 2, 2);
    polled_register(ctx, &s);
    ck_assert(!aio_poll_disabled(ctx));
    warm_up(ctx);

    /* Busy-polling finds the work: io_poll_ready runs, and is progress. */
    s.polls = 0;
    ck_assert(polled_block_armed(ctx, &s));
    ck_assert_int_ge(s.polls, 1);
    ck_assert_int_eq(s.poll_readys, 1);
    ck_assert_int_eq(s.reads, 0);
    ck_assert(!s.armed);
    ck_assert_int_eq(s.last, 'p');

    /* Again, a few times. */
    for (int i = 2; i <= 5; i++) {
        ck_assert(polled_block_armed(ctx, &s));
        ck_assert_int_eq(s.poll_readys, i);
        ck_assert_int_eq(s.reads, 0);
    }

    /* A handler without io_poll disables busy-polling for everyone. */
    make_pipe(plain.p);
    aio_set_fd_handler(ctx, plain.p[0], pipe_read_cb, NULL, NULL, NULL,
                       &plain);
    ck_assert(aio_poll_disabled(ctx));
    put(plain.p[1], "w"); /* one iteration to leave polling mode */
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(plain.reads, 1);

    s.polls = 0;
    for (int i = 1; i <= 5; i++) {
        ck_assert(polled_block_armed(ctx, &s));
        ck_assert_int_eq(s.reads, i);
        ck_assert(!aio_poll(ctx, false));
    }
    ck_assert_int_eq(s.polls, 0);
    ck_assert_int_eq(s.poll_readys, 5);
    s.armed = false;

    /* Removing it brings polling back. */
    remove_fd(ctx, plain.p[0]);
    close_pair(plain.p);
    ck_assert(!aio_poll_disabled(ctx));
    warm_up(ctx);
    s.polls = 0;
    ck_assert(polled_block_armed(ctx, &s));
    ck_assert_int_ge(s.polls, 1);
    ck_assert_int_eq(s.poll_readys, 6);
    ck_assert_int_eq(s.reads, 5);

    polled_unregister(ctx, &s);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_io_poll_without_poll_ready_is_ignored)
{
    AioContext *ctx = test_ctx_new();
    Polled s = { 0 };

    set_poll(ctx, 10 * MS, 0, 0);
    make_pipe(s.p);
    /* io_poll alone cannot do the work: the handler counts as plain. */
    aio_set_fd_handler(ctx, s.p[0], polled_read_cb, NULL, polled_poll_cb,
                       NULL, &s);
    ck_assert(aio_poll_disabled(ctx));
    warm_up(ctx);
    ck_assert(polled_block_armed(ctx, &s));
    ck_assert_int_eq(s.reads, 1);
    ck_assert_int_eq(s.polls, 0);
    polled_unregister(ctx, &s);
    ck_assert(!aio_poll_disabled(ctx));
    aio_context_unref(ctx);
}
END_TEST

/* With max_ns 0, blocking waits go straight to the fds. */
static void check_no_busy_poll(AioContext *ctx, Polled *s, int rounds)
{
    int reads = s->reads, readys = s->poll_readys;

    s->polls = 0;
    for (int i = 1; i <= rounds; i++) {
        ck_assert(polled_block_armed(ctx, s));
        ck_assert_int_eq(s->reads, reads + i);
        s->armed = false;
    }
    ck_assert_int_eq(s->polls, 0);
    ck_assert_int_eq(s->poll_readys, readys);
}

START_TEST(test_polling_off)
{
    AioContext *ctx = test_ctx_new();
    Polled s = { 0 };

    /* Off by default. */
    polled_register(ctx, &s);
    test_consume_notify(ctx);
    check_no_busy_poll(ctx, &s, 5);

    /* On: found by polling. */
    set_poll(ctx, 10 * MS, 0, 0);
    warm_up(ctx);
    ck_assert(polled_block_armed(ctx, &s));
    ck_assert_int_eq(s.poll_readys, 1);

    /* Off again: one iteration to leave polling mode, then never. */
    set_poll(ctx, 0, 0, 0);
    put(s.p[1], "q");
    for (int i = 0; i < 5 && s.last != 'q'; i++) {
        aio_poll(ctx, true); /* may first return for the wake-up alone */
    }
    ck_assert_int_eq(s.last, 'q');
    warm_up(ctx);
    check_no_busy_poll(ctx, &s, 5);

    polled_unregister(ctx, &s);
    aio_context_unref(ctx);
}
END_TEST

/*
 * A non-blocking aio_poll() on a context whose handlers all have io_poll
 * makes no fd syscall and calls each io_poll callback exactly once,
 * whatever the busy-polling parameters and however far poll_ns has grown
 * (a fresh context: 0).  QEMU calls none there (its busy-poll budget is
 * the timeout, 0), so a first non-blocking call finds nothing; ours makes
 * progress.  docs/porting-from-qemu.md gives the reasons; this pins them.
 */
START_TEST(test_nonblocking_poll_runs_io_poll_once)
{
    static const int64_t max_ns[] = { 10 * MS, 0 };

    for (size_t i = 0; i < sizeof(max_ns) / sizeof(max_ns[0]); i++) {
        AioContext *ctx = test_ctx_new();
        Polled s = { 0 };

        set_poll(ctx, max_ns[i], 0, 0);
        polled_register(ctx, &s);
        ck_assert(!aio_poll_disabled(ctx));
        test_consume_notify(ctx); /* the registration's wake-up */

        /* Work io_poll sees: one call finds it, first time. */
        s.polls = 0;
        s.armed = true;
        put(s.p[1], "a");
        ck_assert(aio_poll(ctx, false));
        ck_assert_int_eq(s.polls, 1);
        ck_assert_int_eq(s.poll_readys, 1);
        ck_assert_int_eq(s.reads, 0);
        ck_assert_int_eq(s.last, 'a');

        /* Nothing: one io_poll call per non-blocking aio_poll, no more. */
        for (int n = 1; n <= 3; n++) {
            ck_assert(!aio_poll(ctx, false));
            ck_assert_int_eq(s.polls, 1 + n);
        }

        /*
         * A readable fd that io_poll does not report: no fd syscall, so
         * the non-blocking call does not see it (as in QEMU); a blocking
         * one waits on the fds and runs io_read.
         */
        put(s.p[1], "b");
        ck_assert(!aio_poll(ctx, false));
        ck_assert_int_eq(s.reads, 0);
        ck_assert(aio_poll(ctx, true));
        ck_assert_int_eq(s.reads, 1);
        ck_assert_int_eq(s.last, 'b');

        polled_unregister(ctx, &s);
        aio_context_unref(ctx);
    }
}
END_TEST

/* ---- parameter validation ---- */

static void expect_error(Error *err, const char *needle)
{
    ck_assert_msg(err != NULL, "expected an error mentioning '%s'", needle);
    ck_assert_msg(strstr(error_get_pretty(err), needle) != NULL,
                  "error '%s' does not mention '%s'", error_get_pretty(err),
                  needle);
    error_free(err);
}

START_TEST(test_bad_poll_params)
{
    AioContext *ctx = test_ctx_new();
    Error *err = NULL;
    Polled s = { 0 };

    aio_context_set_poll_params(ctx, -1, 0, 0, &err);
    expect_error(err, "negative");
    err = NULL;
    aio_context_set_poll_params(ctx, 10 * MS, -2, 0, &err);
    expect_error(err, "negative");
    err = NULL;
    aio_context_set_poll_params(ctx, 10 * MS, 0, -3, &err);
    expect_error(err, "negative");
    err = NULL;
    aio_context_set_poll_params(ctx, INT64_MIN, 0, 0, &err);
    expect_error(err, "negative");
    err = NULL;
    aio_context_set_poll_params(ctx, -1, -1, -1, NULL); /* no errp: fine */

    /* Nothing changed: polling is still off. */
    polled_register(ctx, &s);
    test_consume_notify(ctx);
    warm_up(ctx);
    check_no_busy_poll(ctx, &s, 3);

    /* A bad call after a good one keeps the good values. */
    set_poll(ctx, 10 * MS, 0, 0);
    aio_context_set_poll_params(ctx, -5, 0, 0, &err);
    expect_error(err, "negative");
    err = NULL;
    warm_up(ctx);
    ck_assert(polled_block_armed(ctx, &s));
    ck_assert_int_eq(s.poll_readys, 1);

    polled_unregister(ctx, &s);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_bad_aio_params)
{
    AioContext *ctx = test_ctx_new();
    Error *err = NULL;
    int bh_runs = 0;

    aio_context_set_aio_params(ctx, -1, &err);
    expect_error(err, "max_batch");
    err = NULL;
    aio_context_set_aio_params(ctx, -1, NULL);
    aio_context_set_aio_params(ctx, 0, &err);
    ck_assert_ptr_null(err);
    aio_context_set_aio_params(ctx, 32, &err);
    ck_assert_ptr_null(err);

    aio_bh_schedule_oneshot(ctx, bh_count_cb, &bh_runs);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(bh_runs, 1);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_bad_thread_pool_params)
{
    static const int64_t bad[][2] = {
        { 5, 4 }, { -1, 4 }, { 0, 0 }, { 0, -1 }, { -3, -1 }, { 8, 1 },
    };
    static const int64_t good[][2] = { { 0, 64 }, { 4, 4 }, { 0, 1 } };
    AioContext *ctx = test_ctx_new();
    Error *err = NULL;
    int bh_runs = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aio_context_set_thread_pool_params(ctx, bad[i][0], bad[i][1], &err);
        expect_error(err, "min");
        err = NULL;
        aio_context_set_thread_pool_params(ctx, bad[i][0], bad[i][1], NULL);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        aio_context_set_thread_pool_params(ctx, good[i][0], good[i][1],
                                           &err);
        ck_assert_msg(!err, "min=%lld max=%lld refused: %s",
                      (long long)good[i][0], (long long)good[i][1],
                      err ? error_get_pretty(err) : "");
    }
    aio_bh_schedule_oneshot(ctx, bh_count_cb, &bh_runs);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(bh_runs, 1);
    aio_context_unref(ctx);
}
END_TEST

/* ---- aio_compute_timeout ---- */

START_TEST(test_compute_timeout)
{
    AioContext *ctx = test_ctx_new();
    Polled s = { 0 };
    int bh_runs = 0;
    QEMUBH *bh = aio_bh_new(ctx, bh_count_cb, &bh_runs);
    int64_t t;

    test_consume_notify(ctx);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    make_pipe(s.p);
    aio_set_fd_handler(ctx, s.p[0], pipe_read_cb, NULL, NULL, NULL, &s);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1); /* fds do not count */

    qemu_bh_schedule(bh);
    ck_assert_int_eq(aio_compute_timeout(ctx), 0);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);

    qemu_bh_schedule(bh);
    qemu_bh_cancel(bh);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    aio_poll(ctx, false);

    aio_bh_schedule_oneshot(ctx, bh_count_cb, &bh_runs);
    ck_assert_int_eq(aio_compute_timeout(ctx), 0);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    ck_assert_int_eq(bh_runs, 2);

    qemu_bh_schedule_idle(bh);
    t = aio_compute_timeout(ctx);
    ck_assert_int_gt(t, 0);
    ck_assert_int_le(t, 10 * MS);
    aio_poll(ctx, false);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);

    qemu_bh_schedule(bh);
    qemu_bh_delete(bh);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);

    remove_fd(ctx, s.p[0]);
    close_pair(s.p);
    aio_context_unref(ctx);
}
END_TEST

/* ---- a foreign loop: aio_prepare / poll(2) / aio_pending / aio_dispatch */

START_TEST(test_prepare_pending_dispatch)
{
    AioContext *ctx = test_ctx_new();
    Polled s = { 0 };
    struct pollfd pfd;
    int bh_runs = 0;

    make_pipe(s.p);
    aio_set_fd_handler(ctx, s.p[0], pipe_read_cb, NULL, NULL, NULL, &s);
    aio_dispatch(ctx); /* takes the registration's wake-up */

    ck_assert(!aio_prepare(ctx));
    ck_assert(!aio_pending(ctx));
    aio_dispatch(ctx);
    ck_assert_int_eq(s.reads, 0);

    /* An fd made readable: poll(2) sees it, aio_pending agrees. */
    put(s.p[1], "f");
    aio_prepare(ctx);
    pfd = (struct pollfd){ .fd = s.p[0], .events = POLLIN };
    ck_assert_int_eq(test_poll(&pfd, 1, 5000), 1);
    ck_assert(aio_pending(ctx));
    ck_assert(aio_pending(ctx)); /* asking does not consume */
    ck_assert_int_eq(s.reads, 0);
    aio_dispatch(ctx);
    ck_assert_int_eq(s.reads, 1);
    ck_assert_int_eq(s.last, 'f');
    ck_assert(!aio_pending(ctx));

    /* A bottom half: aio_prepare says "do not sleep". */
    aio_bh_schedule_oneshot(ctx, bh_count_cb, &bh_runs);
    ck_assert(aio_prepare(ctx));
    ck_assert(aio_pending(ctx));
    ck_assert_int_eq(bh_runs, 0);
    aio_dispatch(ctx);
    ck_assert_int_eq(bh_runs, 1);
    ck_assert(!aio_prepare(ctx));
    ck_assert(!aio_pending(ctx));
    aio_dispatch(ctx);
    ck_assert_int_eq(bh_runs, 1);
    ck_assert_int_eq(s.reads, 1);

    remove_fd(ctx, s.p[0]);
    close_pair(s.p);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    AioContext *ctx;
    int p[2];
    int done;     /* atomic: events handled by the loop */
    int total;
    char last;
} Foreign;

static void foreign_bh_cb(void *opaque)
{
    Foreign *f = opaque;

    __atomic_add_fetch(&f->done, 1, __ATOMIC_SEQ_CST);
}

static void foreign_read_cb(void *opaque)
{
    Foreign *f = opaque;
    char ch;

    while (read(f->p[0], &ch, 1) == 1) {
        f->last = ch;
        __atomic_add_fetch(&f->done, 1, __ATOMIC_SEQ_CST);
    }
}

/* Alternate BHs and pipe bytes, each after the previous one was handled. */
static void *foreign_feeder(void *opaque)
{
    Foreign *f = opaque;

    for (int i = 0; i < f->total; i++) {
        while (__atomic_load_n(&f->done, __ATOMIC_SEQ_CST) < i) {
            test_sleep_us(100);
        }
        if (i % 2) {
            aio_bh_schedule_oneshot(f->ctx, foreign_bh_cb, f);
        } else {
            char ch = (char)('a' + i % 26);

            ck_assert_int_eq(write(f->p[1], &ch, 1), 1);
        }
    }
    return NULL;
}

static void *foreign_schedule_one(void *opaque)
{
    Foreign *f = opaque;

    aio_bh_schedule_oneshot(f->ctx, foreign_bh_cb, f);
    return NULL;
}

START_TEST(test_foreign_loop_cross_thread)
{
    AioContext *ctx = test_ctx_new();
    Foreign f = { .ctx = ctx, .total = 100 };
    int prepared = 0, pending = 0, iterations = 0;
    pthread_t th;

    make_pipe(f.p);
    aio_set_fd_handler(ctx, f.p[0], foreign_read_cb, NULL, NULL, NULL, &f);
    aio_dispatch(ctx);

    /* A BH scheduled by another thread is seen by the next aio_prepare. */
    for (int i = 1; i <= 10; i++) {
        ck_assert(!aio_prepare(ctx));
        pthread_create(&th, NULL, foreign_schedule_one, &f);
        pthread_join(th, NULL);
        ck_assert(aio_prepare(ctx));
        aio_dispatch(ctx);
        ck_assert_int_eq(f.done, i);
    }

    /* Free-running: BHs and pipe bytes arrive while the loop sleeps. */
    f.done = 0;
    pthread_create(&th, NULL, foreign_feeder, &f);
    while (__atomic_load_n(&f.done, __ATOMIC_SEQ_CST) < f.total &&
           iterations++ < 20000) {
        struct pollfd pfd = { .fd = f.p[0], .events = POLLIN };

        if (aio_prepare(ctx)) {
            prepared++;
            aio_dispatch(ctx);
            continue;
        }
        /* The loop knows only its pipe; BHs show up in aio_prepare. */
        test_poll(&pfd, 1, 1);
        if (aio_pending(ctx)) {
            pending++;
        }
        aio_dispatch(ctx);
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(f.done, f.total);
    ck_assert_int_eq(f.last, 'a' + (f.total - 2) % 26);
    ck_assert_int_gt(prepared + pending, 0);
    remove_fd(ctx, f.p[0]);
    close_pair(f.p);
    aio_context_unref(ctx);
}
END_TEST

/* ---- a blocking aio_poll() under a storm of signals ---- */

static volatile sig_atomic_t storm_signals;

static void storm_handler(int sig)
{
    (void)sig;
    storm_signals++;
}

typedef struct {
    pthread_t target;
    bool stop; /* atomic */
    QEMUBH *late_bh; /* scheduled late_ms after start, if set */
    int late_ms;
    int64_t start; /* atomic: set once the first signal has arrived */
} Storm;

static void *storm_thread(void *opaque)
{
    Storm *st = opaque;

    while (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) {
        int64_t start = __atomic_load_n(&st->start, __ATOMIC_ACQUIRE);

        pthread_kill(st->target, SIGUSR1);
        test_sleep_us(200);
        if (st->late_bh && start &&
            qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - start >=
                st->late_ms * MS) {
            qemu_bh_schedule(st->late_bh);
            st->late_bh = NULL;
        }
    }
    return NULL;
}

static void storm_start(Storm *st, pthread_t *th)
{
    struct sigaction sa = { .sa_handler = storm_handler }; /* no SA_RESTART */

    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    storm_signals = 0;
    st->target = pthread_self();
    st->start = 0;
    ck_assert_int_eq(pthread_create(th, NULL, storm_thread, st), 0);
    /*
     * Return once the storm has begun (a slow start, under valgrind say,
     * must not leave the test's wait without signals), counting afresh.
     */
    for (int i = 0; i < 50000 && !storm_signals; i++) {
        test_sleep_us(100);
    }
    ck_assert_int_gt(storm_signals, 0);
    storm_signals = 0;
    __atomic_store_n(&st->start, qemu_clock_get_ns(QEMU_CLOCK_REALTIME),
                     __ATOMIC_RELEASE);
}

static void storm_stop(Storm *st, pthread_t th)
{
    __atomic_store_n(&st->stop, true, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    signal(SIGUSR1, SIG_IGN);
}

static void timer_count_cb(void *opaque)
{
    (*(int *)opaque)++;
}

START_TEST(test_blocking_poll_survives_signals)
{
    AioContext *ctx = test_ctx_new();
    int fired = 0, ran = 0;
    QEMUTimer *t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                 timer_count_cb, &fired);
    QEMUBH *bh = aio_bh_new(ctx, bh_count_cb, &ran);
    Storm st = { .late_ms = 20 };
    pthread_t th;
    int64_t t0, deadline;

    /* A timer 30 ms ahead: one aio_poll sleeps through the signals. */
    storm_start(&st, &th);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    deadline = t0 + 30 * MS;
    timer_mod_ns(t, deadline);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(fired, 1);
    ck_assert_int_ge(qemu_clock_get_ns(QEMU_CLOCK_REALTIME), deadline);
    ck_assert_int_gt(storm_signals, 0);

    /* Nothing armed: a BH from another thread 20 ms later ends it. */
    storm_stop(&st, th);
    st.late_bh = bh;
    st.stop = false;
    storm_start(&st, &th);
    ck_assert(aio_poll(ctx, true));
    storm_stop(&st, th);
    ck_assert_int_eq(ran, 1);
    ck_assert_int_gt(storm_signals, 0);

    timer_free(t);
    qemu_bh_delete(bh);
    aio_poll(ctx, false);
    aio_context_unref(ctx);
}
END_TEST

/* ---- an engine whose wait keeps failing ---- */

typedef struct LogCount {
    int errors;
    char last[256];
} LogCount;

static void count_log(AioLogLevel level, const char *msg, void *opaque)
{
    LogCount *lc = opaque;

    if (level == AIO_LOG_ERROR) {
        __atomic_add_fetch(&lc->errors, 1, __ATOMIC_RELAXED);
        snprintf(lc->last, sizeof(lc->last), "%s", msg);
    }
}

typedef struct LateBh {
    QEMUBH *bh;
    int delay_ms;
} LateBh;

static void *late_bh_thread(void *opaque)
{
    LateBh *lb = opaque;

    test_sleep_ms(lb->delay_ms);
    qemu_bh_schedule(lb->bh);
    return NULL;
}

/*
 * The engine's descriptor is replaced behind its back, so every wait
 * fails (EINVAL).  A blocking aio_poll() still sleeps until its timer or
 * a cross-thread bottom half instead of spinning: the log hook hears of the
 * failure once per run of failures and again at each power of two, so a
 * spinning loop would report some 15 times in 40 ms, a sleeping one once
 * or twice.
 */
START_TEST(test_failing_engine_wait_sleeps_and_reports)
{
    AioContext *ctx = test_ctx_new();
    int fired = 0, ran = 0;
    QEMUTimer *t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                 timer_count_cb, &fired);
    LateBh lb = { .bh = aio_bh_new(ctx, bh_count_cb, &ran), .delay_ms = 20 };
    LogCount lc = { 0 };
    int fd = aio_context_get_pollfd(ctx), null = open("/dev/null", O_RDONLY);
    int64_t deadline;
    pthread_t th;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(null, 0);
    ck_assert_int_eq(dup2(null, fd), fd);
    close(null);
    aio_log_set_handler(count_log, &lc, AIO_LOG_ERROR);

    deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 40 * MS;
    timer_mod_ns(t, deadline);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(fired, 1);
    ck_assert_int_ge(qemu_clock_get_ns(QEMU_CLOCK_REALTIME), deadline);
    ck_assert_msg(lc.errors >= 1 && lc.errors <= 3, "%d reports", lc.errors);
    ck_assert_msg(strstr(lc.last, "waiting failed") &&
                      strstr(lc.last, "Invalid argument"),
                  "report: %s", lc.last);

    /* Nothing armed: a bottom half from another thread ends the wait. */
    ck_assert_int_eq(pthread_create(&th, NULL, late_bh_thread, &lb), 0);
    ck_assert(aio_poll(ctx, true));
    pthread_join(th, NULL);
    ck_assert_int_eq(ran, 1);
    ck_assert_msg(lc.errors <= 4, "%d reports", lc.errors);

    aio_log_set_handler(NULL, NULL, AIO_LOG_ERROR);
    timer_free(t);
    qemu_bh_delete(lb.bh);
    aio_context_unref(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("poll");
    TCase *tc = tcase_create("aio_poll");

    tcase_add_test(tc, test_return_values);
    tcase_add_test(tc, test_compute_timeout);
    tcase_add_test(tc, test_prepare_pending_dispatch);
    suite_add_tcase(s, tc);

    tc = tcase_create("polling");
    tcase_add_test(tc, test_adaptive_polling);
    tcase_add_test(tc, test_io_poll_without_poll_ready_is_ignored);
    tcase_add_test(tc, test_polling_off);
    tcase_add_test(tc, test_nonblocking_poll_runs_io_poll_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("params");
    tcase_add_test(tc, test_bad_poll_params);
    tcase_add_test(tc, test_bad_aio_params);
    tcase_add_test(tc, test_bad_thread_pool_params);
    suite_add_tcase(s, tc);

    tc = tcase_create("cross-thread");
    tcase_add_test(tc, test_blocking_poll_sleeps);
    tcase_add_test(tc, test_blocking_poll_survives_signals);
    /* The poll engine's ppoll has no descriptor of its own to break. */
    if (!getenv("AIOCTX_ENGINE") || strcmp(getenv("AIOCTX_ENGINE"), "poll")) {
        tcase_add_test(tc, test_failing_engine_wait_sleeps_and_reports);
    }
    tcase_add_test(tc, test_blocking_poll_sleeps_with_polling);
    tcase_add_test(tc, test_foreign_loop_cross_thread);
    suite_add_tcase(s, tc);
    return test_main(s);
}
