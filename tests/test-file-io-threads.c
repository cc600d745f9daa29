/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O and threads on every engine: many contexts in many threads,
 * reads served from the page cache without a worker, the polling thread
 * changing with requests in flight, and a context embedded in a foreign
 * poll() loop through its descriptor.
 */
#define _GNU_SOURCE
#include "test-file-io.h"

/* ---- many contexts, many threads ---- */

#define NTHREADS 4

typedef struct Worker {
    TFile *f;
    int index;
} Worker;

static void *worker_main(void *opaque)
{
    Worker *w = opaque;
    AioContext *ctx = test_ctx_new();

    random_reads(ctx, w->f, false, 256, 16, 200 + w->index);
    random_reads(ctx, w->f, w->f->dfd >= 0, 128, 64, 300 + w->index);
    aio_context_unref(ctx);
    return NULL;
}

START_TEST(test_many_contexts)
{
    pthread_t th[NTHREADS];
    Worker w[NTHREADS];
    AioContext *ctxs[8];
    TFile f;

    if (!tfile_open(&f, FSIZE, true, 14)) {
        tfile_open(&f, FSIZE, false, 14);
    }
    /* Contexts that come and go next to the busy ones. */
    for (int i = 0; i < 8; i++) {
        ctxs[i] = test_ctx_new();
    }
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (Worker){ &f, i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        random_reads(ctxs[i], &f, false, 32, 8, 400 + i);
        aio_context_unref(ctxs[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
    }
    tfile_close(&f);
}
END_TEST

/*
 * On the pool engines a read the page cache holds is done without a
 * worker (RWF_NOWAIT), and its callback still runs later, from aio_poll.
 */
START_TEST(test_page_cache_read_without_worker)
{
    AioContext *ctx = test_ctx_new();
    const char *engine = aio_context_get_engine_name(ctx);
    uint8_t buf[3000];
    struct iovec iov = { buf, sizeof(buf) };
    int pending = 1;
    Op op = { .pending = &pending };
    TFile f;

    tfile_open(&f, FSIZE, false, 31);
    if (strcmp(engine, "poll") && strcmp(engine, "epoll")) {
        tfile_close(&f);
        aio_context_unref(ctx);
        return; /* the kernel does the I/O on the other engines */
    }
    if (preadv2(f.fd, &iov, 1, 5000, RWF_NOWAIT) != (ssize_t)sizeof(buf)) {
        printf("RWF_NOWAIT reads do not work in /tmp: case skipped\n");
        tfile_close(&f);
        aio_context_unref(ctx);
        return;
    }
    memset(buf, 0, sizeof(buf));
    ck_assert_ptr_nonnull(aio_file_preadv(ctx, f.fd, 5000, &iov, 1, op_cb,
                                          &op));
    ck_assert_int_eq(op.calls, 0); /* never inside the submitting call */
    test_poll_until_zero(ctx, &pending);
    ck_assert_int_eq(op.calls, 1);
    ck_assert_int_eq(op.ret, (int)sizeof(buf));
    ck_assert(pthread_equal(op.thread, pthread_self()));
    ck_assert_mem_eq(buf, f.shadow + 5000, sizeof(buf));
    ck_assert_int_eq(thread_pool_get_thread_count(aio_get_thread_pool(ctx)),
                     0);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

/* ---- the polling thread changes; embedding with requests in flight ---- */

#define HANDOVER_OPS 8

typedef struct Handover {
    AioContext *ctx;
    TFile *f;
    Op ops[HANDOVER_OPS];
    int pending;
    int pipe_fds[2];
    int reads;
} Handover;

static void handover_fd_cb(void *opaque)
{
    Handover *h = opaque;
    char c;

    if (read(h->pipe_fds[0], &c, 1) == 1) {
        h->reads++;
    }
}

/* Submit HANDOVER_OPS 4 KiB-aligned reads (O_DIRECT when the file has it). */
static void handover_submit(Handover *h, uint64_t seed)
{
    int fd = h->f->dfd >= 0 ? h->f->dfd : h->f->fd;

    for (int i = 0; i < HANDOVER_OPS; i++) {
        Op *op = &h->ops[i];

        *op = (Op){ .pending = &h->pending, .len = 4 * BLK };
        op->buf = alloc_aligned(op->len);
        op->off = BLK * (rnd(&seed) % (h->f->size / BLK - 4));
        op->iov[0] = (struct iovec){ op->buf, op->len };
        h->pending++;
        ck_assert_ptr_nonnull(aio_file_preadv(h->ctx, fd, op->off, op->iov, 1,
                                              op_cb, op));
    }
}

/*
 * Every read ran its callback once, with the right bytes, in this thread
 * (or in *also, the thread that polled when they were submitted).
 */
static void handover_check(Handover *h, const pthread_t *also)
{
    for (int i = 0; i < HANDOVER_OPS; i++) {
        Op *op = &h->ops[i];

        ck_assert_int_eq(op->calls, 1);
        ck_assert_int_eq(op->ret, (int)op->len);
        ck_assert(pthread_equal(op->thread, pthread_self()) ||
                  (also && pthread_equal(op->thread, *also)));
        ck_assert_mem_eq(op->buf, h->f->shadow + op->off, op->len);
        free(op->buf);
    }
}

static void handover_bh(void *opaque)
{
    (*(int *)opaque)++;
}

/* The first polling thread: an fd event, then reads left in flight. */
static void *handover_first(void *opaque)
{
    Handover *h = opaque;
    int64_t give_up = test_now_ns() + GIVE_UP_NS;

    ck_assert_int_eq(write(h->pipe_fds[1], "x", 1), 1);
    while (h->reads < 1 && test_now_ns() < give_up) {
        aio_poll(h->ctx, true);
    }
    handover_submit(h, 77);
    aio_poll(h->ctx, false); /* hands them to the kernel */
    return NULL;
}

/*
 * A thread polls the context, submits reads and exits before they
 * complete; another thread then polls it: the reads complete there, once
 * each, and fds, bottom halves and new reads keep working.
 */
START_TEST(test_polling_thread_changes)
{
    Handover h = { .ctx = test_ctx_new() };
    int bh_runs = 0;
    pthread_t t;
    TFile f;

    if (!tfile_open(&f, FSIZE, true, 21)) {
        tfile_open(&f, FSIZE, false, 21);
    }
    h.f = &f;
    ck_assert_int_eq(pipe2(h.pipe_fds, O_CLOEXEC | O_NONBLOCK), 0);
    aio_set_fd_handler(h.ctx, h.pipe_fds[0], handover_fd_cb, NULL, NULL, NULL,
                       &h);
    ck_assert_int_eq(pthread_create(&t, NULL, handover_first, &h), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(h.reads, 1);

    test_poll_until_zero(h.ctx, &h.pending);
    handover_check(&h, &t);

    ck_assert_int_eq(write(h.pipe_fds[1], "y", 1), 1);
    for (int i = 0; i < 1000 && h.reads < 2; i++) {
        aio_poll(h.ctx, true);
    }
    ck_assert_int_eq(h.reads, 2);
    aio_bh_schedule_oneshot(h.ctx, handover_bh, &bh_runs);
    aio_poll(h.ctx, true);
    ck_assert_int_eq(bh_runs, 1);
    handover_submit(&h, 78);
    test_poll_until_zero(h.ctx, &h.pending);
    handover_check(&h, NULL);

    aio_set_fd_handler(h.ctx, h.pipe_fds[0], NULL, NULL, NULL, NULL, NULL);
    aio_context_unref(h.ctx);
    close(h.pipe_fds[0]);
    close(h.pipe_fds[1]);
    tfile_close(&f);
}
END_TEST

/* One turn of a foreign poll() loop on the context's descriptor. */
static bool foreign_turn(AioContext *ctx, int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int64_t ns = aio_prepare(ctx) ? 0 : aio_compute_timeout(ctx);
    int ms = ns < 0 ? 10000 : (int)((ns + 999999) / 1000000);
    int ret = test_poll(&pfd, 1, ms);

    aio_dispatch(ctx);
    return ret > 0 || ms == 0;
}

/*
 * The descriptor for a foreign loop is asked for while reads are in
 * flight: they complete once each, and the descriptor (the same number
 * throughout) wakes the loop for them and for later reads.
 */
START_TEST(test_pollfd_with_requests_in_flight)
{
    Handover h = { .ctx = test_ctx_new() };
    int fd, timeouts = 0;
    TFile f;

    if (!tfile_open(&f, FSIZE, true, 22)) {
        tfile_open(&f, FSIZE, false, 22);
    }
    h.f = &f;
    handover_submit(&h, 79);
    aio_poll(h.ctx, false);
    fd = aio_context_get_pollfd(h.ctx);
    ck_assert_int_ge(fd, 0);
    for (int i = 0; i < 1000 && h.pending; i++) {
        timeouts += !foreign_turn(h.ctx, fd);
    }
    ck_assert_int_eq(h.pending, 0);
    ck_assert_int_eq(timeouts, 0);
    handover_check(&h, NULL);

    handover_submit(&h, 80);
    for (int i = 0; i < 1000 && h.pending; i++) {
        timeouts += !foreign_turn(h.ctx, fd);
    }
    ck_assert_int_eq(h.pending, 0);
    ck_assert_int_eq(timeouts, 0);
    handover_check(&h, NULL);
    ck_assert_int_eq(aio_context_get_pollfd(h.ctx), fd);
    aio_context_unref(h.ctx);
    tfile_close(&f);
}
END_TEST

/*
 * A read the page cache serves may complete while aio_prepare() hands it
 * to the kernel: unless aio_prepare() says not to sleep, the descriptor
 * must then poll readable at once, and the callback runs in aio_dispatch().
 */
START_TEST(test_pollfd_completed_in_prepare)
{
    AioContext *ctx = test_ctx_new();
    int pending = 0, fd = aio_context_get_pollfd(ctx);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    Op op = { .pending = &pending, .len = BLK, .off = 3 * BLK };
    TFile f;

    tfile_open(&f, FSIZE, false, 23);
    op.buf = alloc_aligned(op.len);
    op.iov[0] = (struct iovec){ op.buf, op.len };
    pending++;
    ck_assert_ptr_nonnull(
        aio_file_preadv(ctx, f.fd, op.off, op.iov, 1, op_cb, &op));
    if (!aio_prepare(ctx)) {
        ck_assert_int_eq(test_poll(&pfd, 1, 5000), 1);
    }
    aio_dispatch(ctx);
    test_poll_until_zero(ctx, &pending);
    ck_assert_int_eq(op.calls, 1);
    ck_assert_int_eq(op.ret, BLK);
    ck_assert_mem_eq(op.buf, f.shadow + op.off, op.len);
    free(op.buf);
    aio_context_unref(ctx);
    tfile_close(&f);
}
END_TEST


int main(void)
{
    Suite *s = suite_create("file-io-threads");
    TCase *tc = tcase_create("threads");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_many_contexts);
    tcase_add_test(tc, test_page_cache_read_without_worker);
    tcase_add_test(tc, test_polling_thread_changes);
    tcase_add_test(tc, test_pollfd_with_requests_in_flight);
    tcase_add_test(tc, test_pollfd_completed_in_prepare);
    suite_add_tcase(s, tc);
    return file_io_main(s);
}
