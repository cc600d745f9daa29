/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coroutines waiting for time and for file descriptors: qemu_co_sleep_ns
 * on the virtual clock, wakeable sleeps, yield_until_fd_readable,
 * qemu_co_recv / qemu_co_send over socketpairs and pipes.
 */
#define _GNU_SOURCE /* pipe2 */
#include <fcntl.h>
#include <sys/socket.h>

#include "test-co-util.h"

static AioContext *ctx_setup(void)
{
    AioContext *ctx = test_ctx_new();

    qemu_set_current_aio_context(ctx);
    return ctx;
}

static void ctx_teardown(AioContext *ctx)
{
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}

/* ------------------------------------------------------------------ */
/* sleeping                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    QEMUClockType clock;
    int64_t ns;
    int64_t woke_at;
    bool done;
    QemuCoSleep w;
    bool wakeable;
    int id;
    int *order;
    int *norder;
} Sleeper;

static void coroutine_fn sleeper_entry(void *opaque)
{
    Sleeper *s = opaque;

    if (s->wakeable) {
        qemu_co_sleep_ns_wakeable(&s->w, s->clock, s->ns);
    } else {
        qemu_co_sleep_ns(s->clock, s->ns);
    }
    s->woke_at = qemu_clock_get_ns(s->clock);
    if (s->order) {
        s->order[(*s->norder)++] = s->id;
    }
    __atomic_store_n(&s->done, true, __ATOMIC_RELEASE);
}

START_TEST(test_sleep_virtual_exact)
{
    AioContext *ctx = ctx_setup();
    Sleeper s = { .clock = QEMU_CLOCK_VIRTUAL, .ns = 1000000000LL };
    int64_t start;

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    start = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    qemu_coroutine_enter(qemu_coroutine_create(sleeper_entry, &s));
    ck_assert(!s.done);
    while (aio_poll(ctx, false)) {
    }
    ck_assert(!s.done);
    qemu_clock_advance_virtual_time(start + s.ns - 1);
    while (aio_poll(ctx, false)) {
    }
    ck_assert(!s.done);
    qemu_clock_advance_virtual_time(start + s.ns);
    ck_assert(aio_poll(ctx, false));
    ck_assert(s.done);
    ck_assert_int_eq(s.woke_at - start, s.ns);
    ck_assert(!aio_poll(ctx, false));
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    ctx_teardown(ctx);
}
END_TEST

START_TEST(test_sleep_virtual_order)
{
    AioContext *ctx = ctx_setup();
    const int secs[5] = { 5, 3, 1, 4, 2 };
    Sleeper s[5];
    int order[5], norder = 0;
    int64_t start;

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    start = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    for (int i = 0; i < 5; i++) {
        s[i] = (Sleeper){ .clock = QEMU_CLOCK_VIRTUAL,
                          .ns = secs[i] * 1000000000LL, .id = secs[i],
                          .order = order, .norder = &norder };
        qemu_coroutine_enter(qemu_coroutine_create(sleeper_entry, &s[i]));
    }
    qemu_clock_advance_virtual_time(start + 10 * 1000000000LL);
    while (norder < 5) {
        ck_assert(aio_poll(ctx, false));
    }
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(order[i], i + 1);
    }
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    ctx_teardown(ctx);
}
END_TEST

START_TEST(test_sleep_wake_early)
{
    AioContext *ctx = ctx_setup();
    Sleeper s = { .clock = QEMU_CLOCK_VIRTUAL, .ns = 1000 * 1000000000LL,
                  .wakeable = true };
    int64_t start;

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    start = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    qemu_coroutine_enter(qemu_coroutine_create(sleeper_entry, &s));
    ck_assert(!s.done);
    qemu_co_sleep_wake(&s.w);  /* outside a coroutine: resumes now */
    ck_assert(s.done);
    ck_assert_int_eq(s.woke_at, start);
    qemu_co_sleep_wake(&s.w);  /* nobody asleep: nothing */
    /* The timer went with the sleep: nothing fires later. */
    qemu_clock_advance_virtual_time(start + 2000 * 1000000000LL);
    ck_assert(!aio_poll(ctx, false));
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    ctx_teardown(ctx);
}
END_TEST

typedef struct {
    Sleeper *s;
    char log[8];
    int nlog;
} WakeFromCo;

static void coroutine_fn logging_sleeper(void *opaque)
{
    WakeFromCo *w = opaque;

    qemu_co_sleep_ns_wakeable(&w->s->w, QEMU_CLOCK_REALTIME,
                              3600 * 1000000000LL);
    w->log[w->nlog++] = 's';
}

static void coroutine_fn sleep_waker(void *opaque)
{
    WakeFromCo *w = opaque;

    qemu_co_sleep_wake(&w->s->w);
    w->log[w->nlog++] = 'w'; /* the sleeper runs after we finish */
}

START_TEST(test_sleep_wake_from_coroutine)
{
    AioContext *ctx = ctx_setup();
    Sleeper s = { .wakeable = true };
    WakeFromCo w = { .s = &s };

    qemu_coroutine_enter(qemu_coroutine_create(logging_sleeper, &w));
    qemu_coroutine_enter(qemu_coroutine_create(sleep_waker, &w));
    ck_assert_str_eq(w.log, "ws");
    ck_assert(!aio_poll(ctx, false));
    ctx_teardown(ctx);
}
END_TEST

static void *wake_thread(void *opaque)
{
    Sleeper *s = opaque;

    /* It is asleep already: entering it ran it up to the sleep. */
    qemu_co_sleep_wake(&s->w);
    return NULL;
}

START_TEST(test_sleep_wake_from_other_thread)
{
    AioContext *ctx = ctx_setup();
    Sleeper s = { .clock = QEMU_CLOCK_REALTIME, .ns = 3600 * 1000000000LL,
                  .wakeable = true };
    pthread_t tid;

    qemu_coroutine_enter(qemu_coroutine_create(sleeper_entry, &s));
    ck_assert_int_eq(pthread_create(&tid, NULL, wake_thread, &s), 0);
    while (!__atomic_load_n(&s.done, __ATOMIC_ACQUIRE)) {
        aio_poll(ctx, true);
    }
    pthread_join(tid, NULL);
    ck_assert(!aio_poll(ctx, false));
    ctx_teardown(ctx);
}
END_TEST

START_TEST(test_sleep_realtime_lower_bound)
{
    AioContext *ctx = ctx_setup();
    Sleeper s = { .clock = QEMU_CLOCK_REALTIME, .ns = 2 * 1000000LL };
    int64_t start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    qemu_coroutine_enter(qemu_coroutine_create(sleeper_entry, &s));
    while (!s.done) {
        aio_poll(ctx, true);
    }
    ck_assert_int_ge(s.woke_at - start, s.ns);
    ctx_teardown(ctx);
}
END_TEST

/* ------------------------------------------------------------------ */
/* fds                                                                 */
/* ------------------------------------------------------------------ */

typedef struct {
    int fd;
    int resumed;
    char byte;
} FdWaiter;

static void coroutine_fn fd_waiter(void *opaque)
{
    FdWaiter *w = opaque;

    yield_until_fd_readable(w->fd);
    w->resumed++;
    ck_assert_int_eq(read(w->fd, &w->byte, 1), 1);
}

START_TEST(test_yield_until_fd_readable)
{
    AioContext *ctx = ctx_setup();
    int sv[2];
    FdWaiter w;

    make_socketpair(sv);
    w = (FdWaiter){ .fd = sv[0] };
    qemu_coroutine_enter(qemu_coroutine_create(fd_waiter, &w));
    ck_assert_int_eq(w.resumed, 0);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(w.resumed, 0);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(w.resumed, 1);
    ck_assert_int_eq(w.byte, 'x');
    /* The handler is gone: more data wakes nothing. */
    ck_assert_int_eq(write(sv[1], "y", 1), 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(w.resumed, 1);
    close(sv[0]);
    close(sv[1]);
    ctx_teardown(ctx);
}
END_TEST

typedef struct {
    int fd;
    unsigned char *buf;
    size_t len;
    ssize_t ret;
    bool done;
} Xfer;

static void coroutine_fn recv_entry(void *opaque)
{
    Xfer *x = opaque;

    x->ret = qemu_co_recv(x->fd, x->buf, x->len);
    x->done = true;
}

static void coroutine_fn send_entry(void *opaque)
{
    Xfer *x = opaque;

    x->ret = qemu_co_send(x->fd, x->buf, x->len);
    x->done = true;
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (unsigned char)((i * 131 + seed) ^ (i >> 9));
    }
}

/* The main thread feeds 100 KB in small pieces; recv returns them all. */
START_TEST(test_co_recv_all_bytes)
{
    enum { LEN = 100 * 1000, PIECE = 777 };
    AioContext *ctx = ctx_setup();
    unsigned char *src = malloc(LEN), *dst = calloc(1, LEN);
    Xfer x;
    int sv[2];
    size_t sent = 0;

    make_socketpair(sv);
    fill_pattern(src, LEN, 7);
    x = (Xfer){ .fd = sv[0], .buf = dst, .len = LEN };
    qemu_coroutine_enter(qemu_coroutine_create(recv_entry, &x));
    while (!x.done) {
        if (sent < LEN) {
            size_t n = LEN - sent < PIECE ? LEN - sent : PIECE;
            ssize_t w = write(sv[1], src + sent, n);

            ck_assert_int_gt(w, 0);
            sent += (size_t)w;
        }
        aio_poll(ctx, sent == LEN);
    }
    ck_assert_int_eq(x.ret, LEN);
    ck_assert_int_eq(memcmp(src, dst, LEN), 0);
    ck_assert(!aio_poll(ctx, false));
    close(sv[0]);
    close(sv[1]);
    free(src);
    free(dst);
    ctx_teardown(ctx);
}
END_TEST

/* A sender and a receiver coroutine move 4 MiB through one socketpair. */
START_TEST(test_co_send_recv_large)
{
    enum { LEN = 4 * 1024 * 1024 };
    AioContext *ctx = ctx_setup();
    unsigned char *src = malloc(LEN), *dst = calloc(1, LEN);
    Xfer tx, rx;
    int sv[2];

    make_socketpair(sv);
    fill_pattern(src, LEN, 3);
    tx = (Xfer){ .fd = sv[1], .buf = src, .len = LEN };
    rx = (Xfer){ .fd = sv[0], .buf = dst, .len = LEN };
    qemu_coroutine_enter(qemu_coroutine_create(send_entry, &tx));
    ck_assert(!tx.done); /* more than the socket buffer: it waits */
    qemu_coroutine_enter(qemu_coroutine_create(recv_entry, &rx));
    while (!tx.done || !rx.done) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(tx.ret, LEN);
    ck_assert_int_eq(rx.ret, LEN);
    ck_assert_int_eq(memcmp(src, dst, LEN), 0);
    ck_assert(!aio_poll(ctx, false));
    close(sv[0]);
    close(sv[1]);
    free(src);
    free(dst);
    ctx_teardown(ctx);
}
END_TEST

START_TEST(test_co_recv_eof)
{
    AioContext *ctx = ctx_setup();
    unsigned char buf[100];
    Xfer x;
    int sv[2];

    make_socketpair(sv);
    x = (Xfer){ .fd = sv[0], .buf = buf, .len = sizeof(buf) };
    qemu_coroutine_enter(qemu_coroutine_create(recv_entry, &x));
    ck_assert_int_eq(write(sv[1], "0123456789", 10), 10);
    close(sv[1]);
    while (!x.done) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(x.ret, 10); /* short: the peer closed */
    ck_assert_int_eq(memcmp(buf, "0123456789", 10), 0);
    x.done = false;
    qemu_coroutine_enter(qemu_coroutine_create(recv_entry, &x));
    ck_assert(x.done);
    ck_assert_int_eq(x.ret, 0); /* end of file at once */
    close(sv[0]);
    ctx_teardown(ctx);
}
END_TEST

START_TEST(test_co_send_recv_errors)
{
    AioContext *ctx = ctx_setup();
    unsigned char buf[64] = { 0 };
    Xfer x;
    int sv[2];

    make_socketpair(sv);
    close(sv[1]);
    x = (Xfer){ .fd = sv[0], .buf = buf, .len = sizeof(buf) };
    qemu_coroutine_enter(qemu_coroutine_create(send_entry, &x));
    ck_assert(x.done);
    ck_assert_int_eq(x.ret, -EPIPE); /* and no SIGPIPE */
    close(sv[0]);

    x = (Xfer){ .fd = sv[0], .buf = buf, .len = sizeof(buf) };
    qemu_coroutine_enter(qemu_coroutine_create(recv_entry, &x));
    ck_assert(x.done);
    ck_assert_int_eq(x.ret, -EBADF);
    ctx_teardown(ctx);
}
END_TEST

/* Pipes are not sockets: read()/write() are used instead. */
START_TEST(test_co_send_recv_pipe)
{
    enum { LEN = 1024 * 1024 };
    AioContext *ctx = ctx_setup();
    unsigned char *src = malloc(LEN), *dst = calloc(1, LEN);
    Xfer tx, rx;
    int p[2];

    ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
    fill_pattern(src, LEN, 11);
    tx = (Xfer){ .fd = p[1], .buf = src, .len = LEN };
    rx = (Xfer){ .fd = p[0], .buf = dst, .len = LEN };
    qemu_coroutine_enter(qemu_coroutine_create(recv_entry, &rx));
    qemu_coroutine_enter(qemu_coroutine_create(send_entry, &tx));
    while (!tx.done || !rx.done) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(tx.ret, LEN);
    ck_assert_int_eq(rx.ret, LEN);
    ck_assert_int_eq(memcmp(src, dst, LEN), 0);
    close(p[0]);
    close(p[1]);
    free(src);
    free(dst);
    ctx_teardown(ctx);
}
END_TEST

/* ------------------------------------------------------------------ */
/* misuse                                                              */
/* ------------------------------------------------------------------ */

static void coroutine_fn wait_fd0(void *opaque)
{
    (void)opaque;
    yield_until_fd_readable(0);
}

static void misuse_fd_wait_no_context(void *arg)
{
    (void)arg;
    qemu_coroutine_enter(qemu_coroutine_create(wait_fd0, NULL));
}

static void coroutine_fn sleep_1s(void *opaque)
{
    (void)opaque;
    qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 1000000000LL);
}

static void misuse_sleep_no_context(void *arg)
{
    (void)arg;
    qemu_coroutine_enter(qemu_coroutine_create(sleep_1s, NULL));
}

static void misuse_enter_sleeping(void *arg)
{
    AioContext *ctx = ctx_setup();
    Coroutine *co = qemu_coroutine_create(sleep_1s, NULL);

    (void)arg;
    (void)ctx;
    qemu_coroutine_enter(co);
    qemu_coroutine_enter(co);
}

START_TEST(test_io_misuse_messages)
{
    test_expect_abort(misuse_fd_wait_no_context, NULL,
                      "yield_until_fd_readable: the calling thread has no "
                      "current AioContext");
    test_expect_abort(misuse_sleep_no_context, NULL,
                      "qemu_co_sleep_ns: the calling thread has no current "
                      "AioContext");
    test_expect_abort(misuse_enter_sleeping, NULL,
                      "entered while it is scheduled by qemu_co_sleep_ns");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("co-io");
    TCase *tc = tcase_create("sleep");

    tcase_add_test(tc, test_sleep_virtual_exact);
    tcase_add_test(tc, test_sleep_virtual_order);
    tcase_add_test(tc, test_sleep_wake_early);
    tcase_add_test(tc, test_sleep_wake_from_coroutine);
    tcase_add_test(tc, test_sleep_wake_from_other_thread);
    tcase_add_test(tc, test_sleep_realtime_lower_bound);
    suite_add_tcase(s, tc);

    tc = tcase_create("fd");
    tcase_add_test(tc, test_yield_until_fd_readable);
    tcase_add_test(tc, test_co_recv_all_bytes);
    tcase_add_test(tc, test_co_send_recv_large);
    tcase_add_test(tc, test_co_recv_eof);
    tcase_add_test(tc, test_co_send_recv_errors);
    tcase_add_test(tc, test_co_send_recv_pipe);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_add_test(tc, test_io_misuse_messages);
    suite_add_tcase(s, tc);
    return test_main(s);
}
