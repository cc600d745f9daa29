/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O cancellation on every engine: asynchronous and synchronous
 * cancel (the callback runs exactly once, with the result or
 * -ECANCELED), and a context destroyed with requests in flight.
 */
#define _GNU_SOURCE
#include "test-file-io.h"

/* ---- cancellation ---- */

#define NCANCEL 300

typedef struct Plug {
    int released; /* atomic */
} Plug;

/* A thread-pool job that holds the only worker until released. */
static int plug_fn(void *opaque)
{
    Plug *p = opaque;

    while (!__atomic_load_n(&p->released, __ATOMIC_ACQUIRE)) {
        test_sleep_us(1000);
    }
    return 0;
}

/*
 * NCANCEL reads, every one cancelled right after submission (from this
 * thread or, for some, another): each callback runs exactly once, with
 * -ECANCELED or the full, correct result, and some are cancelled on every
 * engine (more requests than the kernel slots io_uring and Linux AIO use;
 * the only pool worker held by another job on poll and epoll).
 */
static void *cancel_thread(void *opaque)
{
    BlockAIOCB **acbs = opaque;

    for (int i = 0; i < NCANCEL; i += 7) {
        bdrv_aio_cancel_async(acbs[i]);
        qemu_aio_unref(acbs[i]);
    }
    return NULL;
}

START_TEST(test_cancel)
{
    AioContext *ctx = test_ctx_new();
    Op *ops = calloc(NCANCEL, sizeof(*ops));
    BlockAIOCB **acbs = calloc(NCANCEL, sizeof(*acbs));
    const char *engine = aio_context_get_engine_name(ctx);
    bool pooled = !strcmp(engine, "poll") || !strcmp(engine, "epoll");
    Plug plug = { 0 };
    int pending = 0, cancelled = 0, plug_pending = 1, fd;
    size_t len;
    Op plug_op = { .pending = &plug_pending };
    Error *err = NULL;
    pthread_t th;
    TFile f;

    /*
     * The pool engines serve page-cache hits at once (RWF_NOWAIT), so to
     * keep requests queued behind the plug they read with O_DIRECT.
     */
    if (!pooled || !tfile_open(&f, FSIZE, true, 11)) {
        tfile_open(&f, FSIZE, false, 11);
    }
    fd = f.dfd >= 0 ? f.dfd : f.fd;
    len = f.dfd >= 0 ? BLK : 2048;
    qemu_set_current_aio_context(ctx); /* cancellations act at once */
    if (pooled) {
        aio_context_set_thread_pool_params(ctx, 0, 1, &err);
        ck_assert_ptr_null(err);
        ck_assert_ptr_nonnull(thread_pool_submit_aio(plug_fn, &plug, op_cb,
                                                     &plug_op));
    }
    for (int i = 0; i < NCANCEL; i++) {
        Op *op = &ops[i];

        op->pending = &pending;
        op->len = len;
        op->off = len == BLK ? (uint64_t)(i % (FSIZE / BLK)) * BLK
                             : (uint64_t)i * 1024;
        op->buf = alloc_aligned(op->len);
        op->iov[0] = (struct iovec){ op->buf, op->len };
        pending++;
        acbs[i] = aio_file_preadv(ctx, fd, op->off, op->iov, 1, op_cb, op);
        ck_assert_ptr_nonnull(acbs[i]);
        if (i % 7 == 0) {
            qemu_aio_ref(acbs[i]); /* for the other thread */
        } else {
            bdrv_aio_cancel_async(acbs[i]);
        }
    }
    ck_assert_int_eq(pthread_create(&th, NULL, cancel_thread, acbs), 0);
    pthread_join(th, NULL);
    __atomic_store_n(&plug.released, 1, __ATOMIC_RELEASE);
    test_poll_until_zero(ctx, &pending);
    if (pooled) {
        test_poll_until_zero(ctx, &plug_pending);
    }
    for (int i = 0; i < NCANCEL; i++) {
        Op *op = &ops[i];

        ck_assert_int_eq(op->calls, 1);
        if (op->ret == -ECANCELED) {
            cancelled++;
        } else {
            ck_assert_int_eq(op->ret, (int)len);
            ck_assert(memcmp(op->buf, f.shadow + op->off, len) == 0);
        }
        free(op->buf);
    }
    if (pooled && f.dfd < 0) {
        printf("no O_DIRECT here: %d of %d cancelled (page-cache reads "
               "complete at once)\n", cancelled, NCANCEL);
    } else {
        ck_assert_msg(cancelled > 0, "%s: no request was cancelled", engine);
    }
    /* Nothing is left behind: the context goes on working. */
    random_reads(ctx, &f, false, 64, 16, 111);
    qemu_set_current_aio_context(NULL);
    tfile_close(&f);
    free(acbs);
    free(ops);
    aio_context_unref(ctx);
}
END_TEST

/* bdrv_aio_cancel waits for the callback; a second cancel is harmless. */
START_TEST(test_cancel_sync)
{
    AioContext *ctx = test_ctx_new();
    Op ops[40];
    int pending = 0;
    TFile f;

    tfile_open(&f, FSIZE, false, 12);
    qemu_set_current_aio_context(ctx);
    for (int i = 0; i < 40; i++) {
        BlockAIOCB *acb;

        ops[i] = (Op){ .pending = &pending, .len = 4096,
                       .off = (uint64_t)i * 4096 };
        ops[i].buf = malloc(4096);
        ops[i].iov[0] = (struct iovec){ ops[i].buf, 4096 };
        pending++;
        acb = aio_file_preadv(ctx, f.fd, ops[i].off, ops[i].iov, 1, op_cb,
                              &ops[i]);
        if (i % 2) {
            bdrv_aio_cancel_async(acb);
            bdrv_aio_cancel(acb);
            ck_assert_int_eq(ops[i].calls, 1);
        }
    }
    test_poll_until_zero(ctx, &pending);
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(ops[i].calls, 1);
        ck_assert(ops[i].ret == -ECANCELED || ops[i].ret == 4096);
        if (ops[i].ret == 4096) {
            ck_assert(memcmp(ops[i].buf, f.shadow + ops[i].off, 4096) == 0);
        }
        free(ops[i].buf);
    }
    qemu_set_current_aio_context(NULL);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

/* Destroying the context completes what is outstanding, once each. */
START_TEST(test_destroy_with_requests)
{
    AioContext *ctx = test_ctx_new();
    Op ops[64];
    int pending = 0;
    TFile f;

    tfile_open(&f, FSIZE, false, 13);
    for (int i = 0; i < 64; i++) {
        ops[i] = (Op){ .pending = &pending, .len = 8192,
                       .off = (uint64_t)i * 8192 };
        ops[i].buf = malloc(8192);
        ops[i].iov[0] = (struct iovec){ ops[i].buf, 8192 };
        pending++;
        ck_assert_ptr_nonnull(aio_file_preadv(ctx, f.fd, ops[i].off,
                                              ops[i].iov, 1, op_cb, &ops[i]));
    }
    aio_poll(ctx, false);
    aio_context_unref(ctx);
    ck_assert_int_eq(pending, 0);
    for (int i = 0; i < 64; i++) {
        ck_assert_int_eq(ops[i].calls, 1);
        ck_assert(ops[i].ret == -ECANCELED || ops[i].ret == 8192);
        if (ops[i].ret == 8192) {
            ck_assert(memcmp(ops[i].buf, f.shadow + ops[i].off, 8192) == 0);
        }
        free(ops[i].buf);
    }
    tfile_close(&f);
}
END_TEST


int main(void)
{
    Suite *s = suite_create("file-io-cancel");
    TCase *tc = tcase_create("cancel");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_cancel_sync);
    tcase_add_test(tc, test_destroy_with_requests);
    suite_add_tcase(s, tc);
    return file_io_main(s);
}
