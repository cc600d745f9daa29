/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O on every engine, reads and writes: random reads and writes
 * checked byte for byte against pread/pwrite, buffered and O_DIRECT, up to
 * 128 requests in flight under several batch sizes, a thousand requests
 * next to hundreds of ready fds (more completions than a CQ holds), end of
 * file and short transfers, fsync/fdatasync, misaligned O_DIRECT, refused
 * arguments, callbacks that nest aio_poll.  The other
 * concerns are in test-file-io-{cancel,threads,co,seccomp}.c.
 */
#define _GNU_SOURCE
#include "test-file-io.h"

/* ---- reads and writes ---- */

START_TEST(test_read_buffered)
{
    AioContext *ctx = test_ctx_new();
    TFile f;

    tfile_open(&f, FSIZE, false, 1);
    random_reads(ctx, &f, false, 64, 1, 11);
    random_reads(ctx, &f, false, 640, 32, 12);
    random_reads(ctx, &f, false, 512, 128, 13);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_read_direct)
{
    AioContext *ctx = test_ctx_new();
    TFile f;

    if (tfile_open(&f, FSIZE, true, 2)) {
        random_reads(ctx, &f, true, 64, 1, 21);
        random_reads(ctx, &f, true, 640, 32, 22);
        random_reads(ctx, &f, true, 512, 128, 23);
        tfile_close(&f);
    }
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_write_buffered)
{
    AioContext *ctx = test_ctx_new();
    TFile f;

    tfile_open(&f, FSIZE, false, 3);
    random_writes(ctx, &f, false, 6, 32, 31);
    random_writes(ctx, &f, false, 2, 128, 32);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_write_direct)
{
    AioContext *ctx = test_ctx_new();
    TFile f;

    if (tfile_open(&f, FSIZE, true, 4)) {
        random_writes(ctx, &f, true, 6, 32, 41);
        random_writes(ctx, &f, true, 2, 128, 42);
        tfile_close(&f);
    }
    aio_context_unref(ctx);
}
END_TEST

/* 128 in flight with batches of 1, 7, the default and 256. */
START_TEST(test_qd128_batch_sizes)
{
    AioContext *ctx = test_ctx_new();
    static const int64_t batches[] = { 1, 7, 0, 256 };
    Error *err = NULL;
    TFile f;
    bool direct;

    direct = tfile_open(&f, FSIZE, true, 5);
    if (!direct) {
        tfile_open(&f, FSIZE, false, 5);
    }
    for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        aio_context_set_aio_params(ctx, batches[i], &err);
        ck_assert_ptr_null(err);
        random_reads(ctx, &f, direct, 256, 128, 50 + i);
        random_reads(ctx, &f, false, 256, 128, 60 + i);
    }
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

/*
 * Many ready fds and many file requests at once: more completions than
 * an io_uring CQ holds (512).  Nothing is lost: every handler runs, every
 * read completes right.
 */
#define NPAIRS 600
#define NREADS 1000

typedef struct Pair {
    int sv[2];
    int reads;
} Pair;

static void pair_read_cb(void *opaque)
{
    Pair *p = opaque;
    char ch;

    if (read(p->sv[0], &ch, 1) == 1) {
        p->reads++;
    }
}

START_TEST(test_fds_and_files_overflow_cq)
{
    AioContext *ctx = test_ctx_new();
    Pair *pairs = calloc(NPAIRS, sizeof(*pairs));
    Op *ops = calloc(NREADS, sizeof(*ops));
    uint8_t *bufs = malloc((size_t)NREADS * 512);
    struct rlimit rl;
    int pending = 0, got = 0;
    int64_t give_up = test_now_ns() + GIVE_UP_NS;
    TFile f;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * NPAIRS + 64 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    tfile_open(&f, FSIZE, false, 17);
    for (int i = 0; i < NPAIRS; i++) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                                                 SOCK_CLOEXEC,
                                    0, pairs[i].sv),
                         0);
        aio_set_fd_handler(ctx, pairs[i].sv[0], pair_read_cb, NULL, NULL,
                           NULL, &pairs[i]);
    }
    aio_poll(ctx, false); /* the fds are watched */
    for (int i = 0; i < NPAIRS; i++) {
        ck_assert_int_eq(write(pairs[i].sv[1], "x", 1), 1);
    }
    for (int i = 0; i < NREADS; i++) {
        ops[i] = (Op){ .pending = &pending, .len = 512,
                       .off = (uint64_t)i * 1000, .buf = bufs + i * 512 };
        ops[i].iov[0] = (struct iovec){ ops[i].buf, 512 };
        pending++;
        ck_assert_ptr_nonnull(aio_file_preadv(ctx, f.fd, ops[i].off,
                                              ops[i].iov, 1, op_cb, &ops[i]));
    }
    while (pending > 0 || got < NPAIRS) {
        ck_assert_msg(test_now_ns() < give_up, "%d reads pending, %d fds read",
                      pending, got);
        aio_poll(ctx, true);
        got = 0;
        for (int i = 0; i < NPAIRS; i++) {
            got += pairs[i].reads;
        }
    }
    ck_assert_int_eq(got, NPAIRS);
    for (int i = 0; i < NREADS; i++) {
        ck_assert_int_eq(ops[i].calls, 1);
        ck_assert_int_eq(ops[i].ret, 512);
        ck_assert(memcmp(ops[i].buf, f.shadow + ops[i].off, 512) == 0);
    }
    for (int i = 0; i < NPAIRS; i++) {
        aio_set_fd_handler(ctx, pairs[i].sv[0], NULL, NULL, NULL, NULL,
                           NULL);
        close(pairs[i].sv[0]);
        close(pairs[i].sv[1]);
    }
    aio_poll(ctx, false);
    tfile_close(&f);
    free(bufs);
    free(ops);
    free(pairs);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_eof_and_short_reads)
{
    AioContext *ctx = test_ctx_new();
    uint8_t a[100], b[3000], c[5000];
    struct iovec iov[3] = { { a, sizeof(a) }, { b, sizeof(b) },
                            { c, sizeof(c) } };
    TFile f;

    tfile_open(&f, FSIZE, false, 6);
    /* At and past the end: 0. */
    ck_assert_int_eq(one_read(ctx, f.fd, FSIZE, iov, 3), 0);
    ck_assert_int_eq(one_read(ctx, f.fd, FSIZE + 12345, iov, 3), 0);
    /* Nothing asked: 0. */
    ck_assert_int_eq(one_read(ctx, f.fd, 0, iov, 0), 0);
    /*
     * Across the end, the end falling in the second piece: what exists,
     * and the pieces are filled in order.
     */
    memset(c, 0xee, sizeof(c));
    ck_assert_int_eq(one_read(ctx, f.fd, FSIZE - 1000, iov, 3), 1000);
    ck_assert(memcmp(a, f.shadow + FSIZE - 1000, 100) == 0);
    ck_assert(memcmp(b, f.shadow + FSIZE - 900, 900) == 0);
    ck_assert_int_eq(c[0], 0xee);
    /* A whole read inside the file. */
    ck_assert_int_eq(one_read(ctx, f.fd, 777, iov, 3), 8100);
    ck_assert(memcmp(a, f.shadow + 777, 100) == 0);
    ck_assert(memcmp(b, f.shadow + 877, 3000) == 0);
    ck_assert(memcmp(c, f.shadow + 3877, 5000) == 0);
    /* An offset beyond what off_t holds: -EINVAL, as pread says. */
    ck_assert_int_eq(one_read(ctx, f.fd, UINT64_MAX - 10, iov, 3), -EINVAL);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

/*
 * A write that crosses RLIMIT_FSIZE: the kernel writes up to the limit
 * (a short write), the rest is resubmitted and refused with EFBIG; the
 * callback gets the bytes written.  A write wholly past the limit gets
 * -EFBIG.
 */
START_TEST(test_short_write)
{
    AioContext *ctx = test_ctx_new();
    struct rlimit rl = { 64 * 1024, 64 * 1024 };
    uint8_t buf[3 * 4096];
    struct iovec iov[2] = { { buf, 4096 }, { buf + 4096, 8192 } };
    uint8_t back[64 * 1024];
    uint64_t seed = 7;
    TFile f;

    tfile_open(&f, 16 * 1024, false, 7);
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    fill_random(buf, sizeof(buf), &seed);
    ck_assert_int_eq(one_write(ctx, f.fd, 64 * 1024 - 6000, iov, 2), 6000);
    ck_assert_int_eq(pread(f.fd, back, sizeof(back), 0), 64 * 1024);
    ck_assert(memcmp(back + 64 * 1024 - 6000, buf, 6000) == 0);
    ck_assert_int_eq(one_write(ctx, f.fd, 64 * 1024, iov, 2), -EFBIG);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_fsync)
{
    AioContext *ctx = test_ctx_new();
    int p[2];
    TFile f;

    tfile_open(&f, 8192, false, 8);
    ck_assert_int_eq(one_fsync(ctx, f.fd, false), 0);
    ck_assert_int_eq(one_fsync(ctx, f.fd, true), 0);
    ck_assert_int_eq(one_fsync(ctx, -1, false), -EBADF);
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_int_eq(one_fsync(ctx, p[0], true), -EINVAL);
    close(p[0]);
    close(p[1]);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_misaligned_direct)
{
    AioContext *ctx = test_ctx_new();
    uint8_t *buf = alloc_aligned(3 * BLK);
    struct iovec odd_buf = { buf + 1, BLK };
    struct iovec odd_len = { buf, BLK + 100 };
    struct iovec good = { buf, BLK };
    TFile f;

    if (tfile_open(&f, FSIZE, true, 9)) {
        ck_assert_int_eq(one_read(ctx, f.dfd, 1, &good, 1), -EINVAL);
        ck_assert_int_eq(one_read(ctx, f.dfd, 0, &odd_buf, 1), -EINVAL);
        ck_assert_int_eq(one_read(ctx, f.dfd, 0, &odd_len, 1), -EINVAL);
        ck_assert_int_eq(one_write(ctx, f.dfd, 100, &good, 1), -EINVAL);
        /* Nothing broke: aligned requests still work. */
        ck_assert_int_eq(one_read(ctx, f.dfd, BLK, &good, 1), BLK);
        ck_assert(memcmp(buf, f.shadow + BLK, BLK) == 0);
        tfile_close(&f);
    }
    free(buf);
    aio_context_unref(ctx);
}
END_TEST

static void never_cb(void *opaque, int ret)
{
    (void)opaque;
    ck_abort_msg("callback of a refused request ran (%d)", ret);
}

START_TEST(test_refused_arguments)
{
    AioContext *ctx = test_ctx_new();
    struct iovec huge[2] = { { NULL, INT_MAX / 2 + 1 },
                             { NULL, INT_MAX / 2 + 1 } };
    uint8_t buf[16] = { 0 };
    struct iovec iov = { buf, sizeof(buf) };

    ck_assert_ptr_null(aio_file_preadv(NULL, 0, 0, &iov, 1, never_cb, NULL));
    ck_assert_ptr_null(aio_file_fsync(NULL, 0, false, never_cb, NULL));
    ck_assert_ptr_null(aio_file_preadv(ctx, 0, 0, &iov, -1, never_cb, NULL));
    ck_assert_ptr_null(aio_file_pwritev(ctx, 0, 0, NULL, 1, never_cb, NULL));
    ck_assert_ptr_null(aio_file_preadv(ctx, 0, 0, huge, 2, never_cb, NULL));
    /* A bad descriptor is the kernel's to report. */
    ck_assert_int_eq(one_read(ctx, -1, 0, &iov, 1), -EBADF);
    ck_assert_int_eq(one_write(ctx, 12345, 0, &iov, 1), -EBADF);
    for (int i = 0; i < 10; i++) {
        aio_poll(ctx, false); /* nothing else ever runs */
    }
    aio_context_unref(ctx);
}
END_TEST

/* ---- callbacks that nest aio_poll ---- */

typedef struct Nest {
    AioContext *ctx;
    int pending;
    Op inner;
    bool inner_seen_inside;
} Nest;

static void nest_outer_cb(void *opaque, int ret)
{
    Nest *n = opaque;
    int64_t give_up = test_now_ns() + GIVE_UP_NS;

    ck_assert_int_gt(ret, 0);
    /* Wait, inside this callback, for the other request. */
    while (n->inner.calls == 0 && test_now_ns() < give_up) {
        aio_poll(n->ctx, true);
    }
    n->inner_seen_inside = n->inner.calls == 1;
    n->pending--;
}

START_TEST(test_nested_poll_in_callback)
{
    AioContext *ctx = test_ctx_new();
    Nest n = { .ctx = ctx };
    uint8_t a[512], b[512];
    struct iovec ia = { a, sizeof(a) }, ib = { b, sizeof(b) };
    TFile f;

    tfile_open(&f, FSIZE, false, 10);
    for (int round = 0; round < 20; round++) {
        n.inner = (Op){ .pending = &n.pending };
        n.pending = 2;
        ck_assert_ptr_nonnull(aio_file_preadv(ctx, f.fd, 0, &ia, 1,
                                              nest_outer_cb, &n));
        ck_assert_ptr_nonnull(aio_file_preadv(ctx, f.fd, 4096, &ib, 1, op_cb,
                                              &n.inner));
        test_poll_until_zero(ctx, &n.pending);
        ck_assert(n.inner_seen_inside);
        ck_assert_int_eq(n.inner.ret, 512);
        ck_assert(memcmp(b, f.shadow + 4096, 512) == 0);
    }
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST


int main(void)
{
    Suite *s = suite_create("file-io");
    TCase *tc = tcase_create("rw");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_read_buffered);
    tcase_add_test(tc, test_read_direct);
    tcase_add_test(tc, test_write_buffered);
    tcase_add_test(tc, test_write_direct);
    tcase_add_test(tc, test_qd128_batch_sizes);
    tcase_add_test(tc, test_fds_and_files_overflow_cq);
    tcase_add_test(tc, test_eof_and_short_reads);
    tcase_add_test(tc, test_short_write);
    tcase_add_test(tc, test_fsync);
    tcase_add_test(tc, test_misaligned_direct);
    tcase_add_test(tc, test_refused_arguments);
    tcase_add_test(tc, test_nested_poll_in_callback);
    suite_add_tcase(s, tc);
    return file_io_main(s);
}
