/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O on every engine: random reads and writes checked byte for byte
 * against pread/pwrite, buffered and O_DIRECT, up to 128 requests in
 * flight under several batch sizes, a thousand requests next to hundreds of
 * ready fds (more completions than a CQ holds), end of file and short
 * transfers,
 * fsync/fdatasync, misaligned O_DIRECT, refused arguments, cancellation
 * (the callback runs exactly once), destruction with requests in flight,
 * many contexts in many threads, the coroutine forms, laio_co_submit and
 * luring_co_submit.  Then, in children under seccomp filters: the whole
 * suite again on the epoll fallback when io_uring_setup is refused, the
 * whole suite on linux-aio when io_submit refuses batches with EAGAIN,
 * requests that stay queued (not failed) while io_submit always does, and
 * io_setup refused with EAGAIN (linux-aio an Error, epoll still working).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-seccomp.h"
#include "test-util.h"

#define FSIZE (1024 * 1024 + 1234) /* not a block multiple: EOF mid-block */
#define BLK 4096
#define MAX_SEGS 4
#define GIVE_UP_NS (30LL * 1000 * 1000 * 1000)

/* ---- helpers ---- */

static uint64_t rnd(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void fill_random(uint8_t *buf, size_t len, uint64_t *seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(rnd(seed) >> 56);
    }
}

static void *alloc_aligned(size_t len)
{
    void *p = NULL;

    ck_assert_int_eq(posix_memalign(&p, BLK, len ? len : BLK), 0);
    return p;
}

static void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
}

static AioContext *ctx_with_engine(const char *name, Error **errp)
{
    AioContextOptions opts = { .engine = name };

    return aio_context_new_with_options(&opts, errp);
}

static const char *current_engine(void)
{
    const char *e = getenv("AIOCTX_ENGINE");

    return e && *e ? e : "auto";
}

/* ---- the test file ---- */

typedef struct TFile {
    int fd;          /* buffered */
    int dfd;         /* O_DIRECT, or -1 */
    size_t size;
    uint8_t *shadow; /* what the file holds */
} TFile;

/* Whether O_DIRECT works in dir (an aligned 4 KiB read succeeds). */
static bool direct_works_in(const char *dir)
{
    char path[PATH_MAX];
    void *buf = alloc_aligned(BLK);
    bool ok = false;
    int fd, dfd;

    snprintf(path, sizeof(path), "%s/aioctx-direct-XXXXXX", dir);
    fd = mkstemp(path);
    if (fd < 0) {
        free(buf);
        return false;
    }
    memset(buf, 7, BLK);
    if (pwrite(fd, buf, BLK, 0) == BLK) {
        dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (dfd >= 0) {
            ok = pread(dfd, buf, BLK, 0) == BLK;
            close(dfd);
        }
    }
    unlink(path);
    close(fd);
    free(buf);
    return ok;
}

/* A directory where O_DIRECT works: /tmp, else the build directory. */
static const char *direct_dir(void)
{
    static const char *dirs[] = { "/tmp", "." };

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (direct_works_in(dirs[i])) {
            return dirs[i];
        }
    }
    return NULL;
}

/*
 * A file of size random bytes (unlinked at once; the descriptors keep it).
 * With want_direct, also an O_DIRECT descriptor when O_DIRECT works in
 * /tmp or the build directory; returns false (and says so) when it works
 * in neither.
 */
static bool tfile_open(TFile *f, size_t size, bool want_direct,
                       uint64_t seed)
{
    const char *dir = want_direct ? direct_dir() : "/tmp";
    char path[PATH_MAX];

    memset(f, 0, sizeof(*f));
    f->dfd = -1;
    if (!dir) {
        printf("O_DIRECT does not work in /tmp nor in the build directory: "
               "O_DIRECT case skipped\n");
        return false;
    }
    snprintf(path, sizeof(path), "%s/aioctx-file-io-XXXXXX", dir);
    f->fd = mkostemp(path, O_CLOEXEC);
    ck_assert_msg(f->fd >= 0, "mkstemp in %s: %s", dir, strerror(errno));
    f->size = size;
    f->shadow = malloc(size + 4 * 65536);
    fill_random(f->shadow, size, &seed);
    pwrite_all(f->fd, f->shadow, size, 0);
    if (want_direct) {
        f->dfd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
        ck_assert_msg(f->dfd >= 0, "O_DIRECT open: %s", strerror(errno));
    }
    unlink(path);
    return true;
}

static void tfile_close(TFile *f)
{
    close(f->fd);
    if (f->dfd >= 0) {
        close(f->dfd);
    }
    free(f->shadow);
}

/* The whole file, read with pread, equals the shadow. */
static void tfile_verify(TFile *f)
{
    uint8_t *buf = malloc(f->size + 1);
    struct stat st;

    ck_assert_int_eq(fstat(f->fd, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)f->size);
    ck_assert_int_eq(pread(f->fd, buf, f->size + 1, 0), (ssize_t)f->size);
    if (memcmp(buf, f->shadow, f->size) != 0) {
        size_t i = 0;

        while (buf[i] == f->shadow[i]) {
            i++;
        }
        ck_abort_msg("byte %zu: file has %u, expected %u", i, buf[i],
                     f->shadow[i]);
    }
    free(buf);
}

/* ---- requests ---- */

typedef struct Op {
    int *pending;
    uint8_t *buf;
    size_t len;
    uint64_t off;
    struct iovec iov[MAX_SEGS];
    int iovcnt;
    int calls;
    int ret;
    pthread_t thread;
} Op;

static void op_cb(void *opaque, int ret)
{
    Op *op = opaque;

    op->calls++;
    op->ret = ret;
    op->thread = pthread_self();
    (*op->pending)--;
}

/* Cut op->buf into up to MAX_SEGS pieces, at multiples of unit. */
static void op_split(Op *op, size_t unit, uint64_t *seed)
{
    size_t units = op->len / unit, at = 0;
    int want = 1 + (int)(rnd(seed) % MAX_SEGS);

    op->iovcnt = 0;
    for (int i = 0; i < want - 1 && units > 1; i++) {
        size_t take = unit * (1 + rnd(seed) % (units - 1));

        if (at + take >= op->len) {
            break;
        }
        op->iov[op->iovcnt].iov_base = op->buf + at;
        op->iov[op->iovcnt].iov_len = take;
        op->iovcnt++;
        at += take;
        units = (op->len - at) / unit;
    }
    op->iov[op->iovcnt].iov_base = op->buf + at;
    op->iov[op->iovcnt].iov_len = op->len - at;
    op->iovcnt++;
}

static size_t read_expect(const TFile *f, uint64_t off, size_t len)
{
    if (off >= f->size) {
        return 0;
    }
    return len < f->size - off ? len : f->size - off;
}

/*
 * nops random reads in rounds of qd at once: buffered reads at any offset
 * (up to past EOF) with any length, O_DIRECT ones 4 KiB aligned.  Every
 * result and every byte is checked, and the callback ran once, in this
 * thread.
 */
static void random_reads(AioContext *ctx, TFile *f, bool direct, int nops,
                         int qd, uint64_t seed)
{
    Op *ops = calloc((size_t)qd, sizeof(*ops));
    int pending = 0;

    for (int i = 0; i < qd; i++) {
        ops[i].buf = alloc_aligned(64 * 1024);
        ops[i].pending = &pending;
    }
    for (int done = 0; done < nops; done += qd) {
        int n = nops - done < qd ? nops - done : qd;

        for (int i = 0; i < n; i++) {
            Op *op = &ops[i];

            if (direct) {
                op->off = BLK * (rnd(&seed) % (f->size / BLK + 2));
                op->len = BLK * (1 + rnd(&seed) % 16);
                op_split(op, BLK, &seed);
            } else {
                op->off = rnd(&seed) % (f->size + 8192);
                op->len = rnd(&seed) % (64 * 1024 + 1);
                op_split(op, 1, &seed);
            }
            memset(op->buf, 0xee, op->len);
            op->calls = 0;
            pending++;
            ck_assert_ptr_nonnull(aio_file_preadv(ctx, direct ? f->dfd : f->fd,
                                                  op->off, op->iov,
                                                  op->iovcnt, op_cb, op));
        }
        test_poll_until_zero(ctx, &pending);
        for (int i = 0; i < n; i++) {
            Op *op = &ops[i];
            size_t want = read_expect(f, op->off, op->len);

            ck_assert_int_eq(op->calls, 1);
            ck_assert(pthread_equal(op->thread, pthread_self()));
            ck_assert_msg(op->ret == (int)want,
                          "read %zu at %llu (%d pieces): got %d, expected %zu",
                          op->len, (unsigned long long)op->off, op->iovcnt,
                          op->ret, want);
            ck_assert_msg(memcmp(op->buf, f->shadow + op->off, want) == 0,
                          "read %zu at %llu: wrong data", op->len,
                          (unsigned long long)op->off);
        }
    }
    for (int i = 0; i < qd; i++) {
        free(ops[i].buf);
    }
    free(ops);
}

/*
 * rounds of qd random writes at once, each in its own slice of the file
 * (requests in flight never overlap), a flush now and then; then the file
 * is read back with pread and compared.
 */
static void random_writes(AioContext *ctx, TFile *f, bool direct, int rounds,
                          int qd, uint64_t seed)
{
    size_t slice = (f->size / (size_t)qd) & ~(size_t)(BLK - 1);
    Op *ops = calloc((size_t)qd + 1, sizeof(*ops));
    int pending = 0;

    ck_assert_uint_ge(slice, BLK);
    for (int i = 0; i <= qd; i++) {
        ops[i].buf = alloc_aligned(slice);
        ops[i].pending = &pending;
    }
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < qd; i++) {
            Op *op = &ops[i];
            size_t base = (size_t)i * slice;

            if (direct) {
                op->off = base + BLK * (rnd(&seed) % (slice / BLK));
                op->len = BLK * (1 + rnd(&seed) % ((base + slice - op->off) /
                                                    BLK));
                op_split(op, BLK, &seed);
            } else {
                op->off = base + rnd(&seed) % slice;
                op->len = 1 + rnd(&seed) % (base + slice - op->off);
                op_split(op, 1, &seed);
            }
            fill_random(op->buf, op->len, &seed);
            op->calls = 0;
            pending++;
            ck_assert_ptr_nonnull(aio_file_pwritev(ctx,
                                                   direct ? f->dfd : f->fd,
                                                   op->off, op->iov,
                                                   op->iovcnt, op_cb, op));
        }
        if (r % 3 == 1) {
            ops[qd].calls = 0;
            pending++;
            ck_assert_ptr_nonnull(aio_file_fsync(ctx, direct ? f->dfd : f->fd,
                                                 r % 2, op_cb, &ops[qd]));
        }
        test_poll_until_zero(ctx, &pending);
        for (int i = 0; i < qd; i++) {
            Op *op = &ops[i];

            ck_assert_int_eq(op->calls, 1);
            ck_assert_msg(op->ret == (int)op->len, "write %zu at %llu: %d",
                          op->len, (unsigned long long)op->off, op->ret);
            memcpy(f->shadow + op->off, op->buf, op->len);
        }
        if (r % 3 == 1) {
            ck_assert_int_eq(ops[qd].calls, 1);
            ck_assert_int_eq(ops[qd].ret, 0);
        }
    }
    tfile_verify(f);
    for (int i = 0; i <= qd; i++) {
        free(ops[i].buf);
    }
    free(ops);
}

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

/* ---- end of file, short transfers ---- */

static int one_read(AioContext *ctx, int fd, uint64_t off,
                    const struct iovec *iov, int iovcnt)
{
    int pending = 1;
    Op op = { .pending = &pending };

    ck_assert_ptr_nonnull(aio_file_preadv(ctx, fd, off, iov, iovcnt, op_cb,
                                          &op));
    test_poll_until_zero(ctx, &pending);
    ck_assert_int_eq(op.calls, 1);
    return op.ret;
}

static int one_write(AioContext *ctx, int fd, uint64_t off,
                     const struct iovec *iov, int iovcnt)
{
    int pending = 1;
    Op op = { .pending = &pending };

    ck_assert_ptr_nonnull(aio_file_pwritev(ctx, fd, off, iov, iovcnt, op_cb,
                                           &op));
    test_poll_until_zero(ctx, &pending);
    ck_assert_int_eq(op.calls, 1);
    return op.ret;
}

static int one_fsync(AioContext *ctx, int fd, bool datasync)
{
    int pending = 1;
    Op op = { .pending = &pending };

    ck_assert_ptr_nonnull(aio_file_fsync(ctx, fd, datasync, op_cb, &op));
    test_poll_until_zero(ctx, &pending);
    ck_assert_int_eq(op.calls, 1);
    return op.ret;
}

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
    uint8_t buf[16];
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

/* ---- the coroutine forms ---- */

typedef struct CoCase {
    TFile *f;
    bool done;
} CoCase;

static void coroutine_fn co_file_body(void *opaque)
{
    CoCase *c = opaque;
    int fd = c->f->fd;
    uint8_t out[6000], in[6000];
    struct iovec wr[3] = { { out, 1000 }, { out + 1000, 3000 },
                           { out + 4000, 2000 } };
    struct iovec rd[2] = { { in, 2500 }, { in + 2500, 3500 } };
    uint64_t seed = 99;

    fill_random(out, sizeof(out), &seed);
    ck_assert_int_eq(aio_file_co_pwritev(fd, 10000, wr, 3), 6000);
    memcpy(c->f->shadow + 10000, out, 6000);
    ck_assert_int_eq(aio_file_co_fsync(fd, false), 0);
    ck_assert_int_eq(aio_file_co_fsync(fd, true), 0);
    ck_assert_int_eq(aio_file_co_preadv(fd, 10000, rd, 2), 6000);
    ck_assert(memcmp(in, out, 6000) == 0);
    ck_assert_int_eq(aio_file_co_preadv(fd, c->f->size - 100, rd, 2), 100);
    ck_assert(memcmp(in, c->f->shadow + c->f->size - 100, 100) == 0);
    ck_assert_int_eq(aio_file_co_preadv(fd, c->f->size, rd, 2), 0);
    ck_assert_int_eq(aio_file_co_fsync(-1, false), -EBADF);
    ck_assert_int_eq(aio_file_co_preadv(fd, 0, NULL, 1), -EINVAL);
    c->done = true;
}

static void coroutine_fn co_no_context_body(void *opaque)
{
    CoCase *c = opaque;
    uint8_t buf[8];
    struct iovec iov = { buf, sizeof(buf) };

    ck_assert_int_eq(aio_file_co_preadv(c->f->fd, 0, &iov, 1), -EINVAL);
    ck_assert_int_eq(aio_file_co_fsync(c->f->fd, true), -EINVAL);
    c->done = true;
}

static void run_coroutine(AioContext *ctx, CoroutineEntry *entry,
                          CoCase *c)
{
    int64_t give_up = test_now_ns() + GIVE_UP_NS;

    c->done = false;
    qemu_coroutine_enter(qemu_coroutine_create(entry, c));
    while (!c->done) {
        ck_assert(test_now_ns() < give_up);
        aio_poll(ctx, true);
    }
}

START_TEST(test_coroutine_forms)
{
    AioContext *ctx = test_ctx_new();
    CoCase c;
    TFile f;

    tfile_open(&f, FSIZE, false, 15);
    c.f = &f;
    qemu_set_current_aio_context(NULL);
    qemu_coroutine_enter(qemu_coroutine_create(co_no_context_body, &c));
    ck_assert(c.done);
    qemu_set_current_aio_context(ctx);
    run_coroutine(ctx, co_file_body, &c);
    qemu_set_current_aio_context(NULL);
    tfile_verify(&f);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

/* ---- laio_co_submit and luring_co_submit ---- */

typedef int coroutine_fn RawSubmit(int fd, uint64_t offset,
                                   QEMUIOVector *qiov, int type);

static int coroutine_fn raw_laio(int fd, uint64_t offset, QEMUIOVector *qiov,
                                 int type)
{
    return laio_co_submit(fd, offset, qiov, type, 0);
}

static int coroutine_fn raw_laio_batch1(int fd, uint64_t offset,
                                        QEMUIOVector *qiov, int type)
{
    return laio_co_submit(fd, offset, qiov, type, 1);
}

static int coroutine_fn raw_luring(int fd, uint64_t offset,
                                   QEMUIOVector *qiov, int type)
{
    return luring_co_submit(NULL, fd, offset, qiov, type);
}

typedef struct RawCase {
    RawSubmit *submit;
    TFile *f;
    int index;
    int *running;
    bool expect_enxio;
    bool done;
} RawCase;

static void coroutine_fn raw_unset_body(void *opaque)
{
    RawCase *r = opaque;
    uint8_t buf[16];
    struct iovec iov = { buf, sizeof(buf) };
    QEMUIOVector qiov;

    qemu_iovec_init_external(&qiov, &iov, 1);
    ck_assert_int_eq(r->submit(r->f->fd, 0, &qiov, QEMU_AIO_READ), -ENXIO);
    r->done = true;
}

/* One coroutine's worth of QEMU-style requests on its own 64 KiB. */
static void coroutine_fn raw_body(void *opaque)
{
    RawCase *r = opaque;
    TFile *f = r->f;
    uint64_t base = (uint64_t)r->index * 65536, seed = 500 + r->index;
    uint8_t *out = malloc(20000), *in = malloc(20000);
    QEMUIOVector qiov;

    fill_random(out, 20000, &seed);
    qemu_iovec_init(&qiov, 1);
    qemu_iovec_add(&qiov, out, 7000);
    qemu_iovec_add(&qiov, out + 7000, 13000);
    ck_assert_uint_eq(qiov.size, 20000);
    ck_assert_int_eq(qiov.niov, 2);
    ck_assert_int_eq(r->submit(f->fd, base + 100, &qiov, QEMU_AIO_WRITE), 0);
    memcpy(f->shadow + base + 100, out, 20000);
    ck_assert_int_eq(r->submit(f->fd, 0, NULL, QEMU_AIO_FLUSH), 0);

    qemu_iovec_reset(&qiov);
    ck_assert_uint_eq(qiov.size, 0);
    qemu_iovec_add(&qiov, in, 1);
    qemu_iovec_add(&qiov, in + 1, 19999);
    ck_assert_int_eq(r->submit(f->fd, base + 100, &qiov, QEMU_AIO_READ), 0);
    ck_assert(memcmp(in, out, 20000) == 0);

    /* Across the end of the file: the rest is zeroed, the result 0. */
    memset(in, 0xee, 20000);
    ck_assert_int_eq(r->submit(f->fd, f->size - 5000, &qiov, QEMU_AIO_READ),
                     0);
    ck_assert(memcmp(in, f->shadow + f->size - 5000, 5000) == 0);
    ck_assert(in[5000] == 0 && memcmp(in + 5000, in + 5001, 14999) == 0);
    /* An unknown type is -EIO; a bad descriptor the kernel's error. */
    ck_assert_int_eq(r->submit(f->fd, 0, &qiov, 0x4), -EIO);
    ck_assert_int_eq(r->submit(-1, 0, &qiov, QEMU_AIO_READ), -EBADF);
    qemu_iovec_destroy(&qiov);
    ck_assert_ptr_null(qiov.iov);
    free(out);
    free(in);
    (*r->running)--;
}

static void raw_case(RawSubmit *submit, bool linux_aio)
{
    AioContext *ctx = test_ctx_new();
    const char *engine = aio_context_get_engine_name(ctx);
    bool built_in = linux_aio ? !strcmp(engine, "linux-aio")
                              : !strcmp(engine, "io_uring");
    const char *name = linux_aio ? "linux-aio" : "io_uring";
    RawCase r[16];
    int running = 16;
    int64_t give_up = test_now_ns() + GIVE_UP_NS;
    Error *err = NULL;
    void *state;
    TFile f;

    tfile_open(&f, 16 * 65536 + 3000, false, 16);
    qemu_set_current_aio_context(ctx);
    state = linux_aio ? (void *)aio_get_linux_aio(ctx)
                      : (void *)aio_get_linux_io_uring(ctx);
    ck_assert(linux_aio && built_in ? state != NULL : state == NULL);
    if (!state) {
        r[0] = (RawCase){ .submit = submit, .f = &f };
        qemu_coroutine_enter(qemu_coroutine_create(raw_unset_body, &r[0]));
        ck_assert(r[0].done);
    }
    state = linux_aio ? (void *)aio_setup_linux_aio(ctx, &err)
                      : (void *)aio_setup_linux_io_uring(ctx, &err);
    if (!aio_engine_available(name)) {
        /* Refused here: the error says why. */
        ck_assert_ptr_null(state);
        ck_assert_ptr_nonnull(err);
        printf("%s refused: %s\n", name, error_get_pretty(err));
        error_free(err);
        goto out;
    }
    ck_assert_msg(state != NULL, "%s", err ? error_get_pretty(err) : "?");
    ck_assert(state == (linux_aio ? (void *)aio_setup_linux_aio(ctx, NULL)
                                  : (void *)aio_setup_linux_io_uring(ctx,
                                                                     NULL)));
    ck_assert(state == (linux_aio ? (void *)aio_get_linux_aio(ctx)
                                  : (void *)aio_get_linux_io_uring(ctx)));
    for (int i = 0; i < 16; i++) {
        r[i] = (RawCase){ .submit = submit, .f = &f, .index = i,
                          .running = &running };
        qemu_coroutine_enter(qemu_coroutine_create(raw_body, &r[i]));
    }
    while (running > 0) {
        ck_assert(test_now_ns() < give_up);
        aio_poll(ctx, true);
    }
    tfile_verify(&f);
    /* The engine-neutral calls keep working next to it. */
    random_reads(ctx, &f, false, 64, 32, 600);
out:
    qemu_set_current_aio_context(NULL);
    tfile_close(&f);
    aio_context_unref(ctx);
}

START_TEST(test_laio_co_submit)
{
    raw_case(raw_laio, true);
}
END_TEST

START_TEST(test_laio_co_submit_batch1)
{
    raw_case(raw_laio_batch1, true);
}
END_TEST

START_TEST(test_luring_co_submit)
{
    raw_case(raw_luring, false);
}
END_TEST

/* ---- under seccomp filters ---- */

#define CHILD_ENV "AIOCTX_TEST_FILE_IO_CHILD"

/*
 * Run this suite again in a child (exec of /proc/self/exe) after
 * installing a filter making nr fail with err (when argument arg is above
 * `above`, or always for arg -1), with the engine set to engine (NULL: the
 * default).  The child checks that the filter bites and which engine the
 * default gives (expect_default), then runs every case but this one.
 */
#if TEST_HAVE_SECCOMP
static void rerun_suite_filtered(int nr, int err, int arg, uint32_t above,
                                 const char *engine, const char *child_mode)
{
    int status;
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int ret = test_seccomp_refuse(nr, err, arg, above);

        if (ret < 0) {
            fprintf(stderr, "seccomp: %s\n", strerror(-ret));
            _exit(3);
        }
        if (engine) {
            setenv("AIOCTX_ENGINE", engine, 1);
        } else {
            unsetenv("AIOCTX_ENGINE");
        }
        setenv(CHILD_ENV, child_mode, 1);
        unsetenv("CK_RUN_CASE");
        execl("/proc/self/exe", "test-file-io", (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(test_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the suite under the filter failed (status %#x)", status);
}

/* io_uring_setup refused: the default is epoll, and everything works. */
START_TEST(test_suite_on_epoll_fallback)
{
    rerun_suite_filtered(__NR_io_uring_setup, EPERM, -1, 0, NULL,
                         "expect-epoll");
}
END_TEST

/*
 * io_uring_register refused (the io_uring engine's ring starts disabled and
 * is enabled through it): the engine falls back to a ring that needs no
 * enabling, and everything works.
 */
START_TEST(test_suite_with_io_uring_register_refused)
{
    rerun_suite_filtered(__NR_io_uring_register, EPERM, -1, 0, "io_uring",
                         "io-uring-register-refused");
}
END_TEST

/* io_submit refuses every batch of more than one: EAGAIN, retried. */
START_TEST(test_suite_with_io_submit_eagain)
{
    if (!aio_engine_available("linux-aio")) {
        printf("linux-aio is not available here: case skipped\n");
        return;
    }
    rerun_suite_filtered(__NR_io_submit, EAGAIN, 1, 1, "linux-aio",
                         "io-submit-eagain");
}
END_TEST

/*
 * io_submit always says EAGAIN: requests wait (no callback runs, however
 * long the loop turns) until they are cancelled.  In a child.
 */
static int always_eagain_child(void)
{
    AioContext *ctx;
    uint8_t buf[10][512];
    Op ops[10];
    int pending = 0;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    BlockAIOCB *acbs[10];

    if (test_seccomp_refuse(__NR_io_submit, EAGAIN, -1, 0) < 0) {
        return 3;
    }
    ctx = ctx_with_engine("linux-aio", NULL);
    if (!ctx || fd < 0) {
        return 4;
    }
    for (int i = 0; i < 10; i++) {
        ops[i] = (Op){ .pending = &pending };
        ops[i].iov[0] = (struct iovec){ buf[i], 512 };
        pending++;
        acbs[i] = aio_file_preadv(ctx, fd, (uint64_t)i * 512, ops[i].iov, 1,
                                  op_cb, &ops[i]);
    }
    for (int i = 0; i < 40; i++) {
        aio_poll(ctx, i % 2); /* blocking ones end on the retry timer */
    }
    if (pending != 10) {
        fprintf(stderr, "%d requests completed under EAGAIN\n",
                10 - pending);
        return 5;
    }
    for (int i = 0; i < 10; i++) {
        bdrv_aio_cancel_async(acbs[i]);
    }
    for (int i = 0; i < 1000 && pending; i++) {
        aio_poll(ctx, true);
    }
    for (int i = 0; i < 10; i++) {
        if (ops[i].calls != 1 || ops[i].ret != -ECANCELED) {
            fprintf(stderr, "request %d: %d calls, %d\n", i, ops[i].calls,
                    ops[i].ret);
            return 6;
        }
    }
    aio_context_unref(ctx);
    close(fd);
    return 0;
}

START_TEST(test_io_submit_always_eagain)
{
    int status;
    pid_t pid;

    if (!aio_engine_available("linux-aio")) {
        printf("linux-aio is not available here: case skipped\n");
        return;
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        _exit(always_eagain_child());
    }
    ck_assert_int_eq(test_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %#x", status);
}
END_TEST

/*
 * io_setup for any events says EAGAIN (as when fs.aio-max-nr is used up);
 * the probe's io_setup(0) still says EINVAL, so linux-aio looks available.
 * In a child: asking for linux-aio is an Error naming the engine and the
 * cause, other contexts are still made, and aio_setup_linux_aio() on an
 * epoll context fails cleanly, leaving file I/O (thread pool) and bottom
 * halves working there.
 */
#define SETUP_EAGAIN_LEN (64 * 1024 + 100)

static void count_bh(void *opaque)
{
    (*(int *)opaque)++;
}

/* err is set, says EAGAIN, and its message contains who and the cause. */
static bool error_is_eagain(Error *err, const char *who)
{
    const char *msg = err ? error_get_pretty(err) : NULL;

    if (!err) {
        fprintf(stderr, "%s: no Error set\n", who);
        return false;
    }
    if (!strstr(msg, who) || !strstr(msg, strerror(EAGAIN))) {
        fprintf(stderr, "Error \"%s\" does not name \"%s\" and \"%s\"\n",
                msg, who, strerror(EAGAIN));
        return false;
    }
    if (error_get_errno(err) != EAGAIN) {
        fprintf(stderr, "Error \"%s\": errno %d, not EAGAIN\n", msg,
                error_get_errno(err));
        return false;
    }
    return true;
}

/* One request through ctx; its result, or INT_MIN when it did not end. */
static int child_one_op(AioContext *ctx, bool write, int fd,
                        const struct iovec *iov, int iovcnt)
{
    int pending = 1;
    Op op = { .pending = &pending };
    BlockAIOCB *acb;

    if (write) {
        acb = aio_file_pwritev(ctx, fd, 0, iov, iovcnt, op_cb, &op);
    } else {
        acb = aio_file_preadv(ctx, fd, 0, iov, iovcnt, op_cb, &op);
    }
    if (!acb || !test_poll_until_zero_within(ctx, &pending, GIVE_UP_NS) || op.calls != 1 ||
        !pthread_equal(op.thread, pthread_self())) {
        return INT_MIN;
    }
    return op.ret;
}

/*
 * Through ctx, write SETUP_EAGAIN_LEN random bytes (two buffers) to a new
 * file, then read them back (three buffers); compare with what was written
 * and with pread.  0, or an exit code after saying what failed.
 */
static int child_file_rw(AioContext *ctx, const char *what)
{
    char path[] = "/tmp/aioctx-file-io-XXXXXX";
    const size_t len = SETUP_EAGAIN_LEN, w1 = 5000, r1 = 4096, r2 = 40000;
    uint8_t *src = malloc(len), *dst = calloc(1, len), *raw = calloc(1, len);
    uint64_t seed = 0x5e7a9a17ULL;
    struct iovec wiov[2] = { { src, w1 }, { src + w1, len - w1 } };
    struct iovec riov[3] = { { dst, r1 }, { dst + r1, r2 },
                             { dst + r1 + r2, len - r1 - r2 } };
    int fd = mkostemp(path, O_CLOEXEC);
    int ret, rc = 0;

    if (fd < 0 || !src || !dst || !raw) {
        fprintf(stderr, "%s: no test file or no memory\n", what);
        rc = 20;
        goto out;
    }
    unlink(path);
    fill_random(src, len, &seed);
    ret = child_one_op(ctx, true, fd, wiov, 2);
    if (ret != (int)len) {
        fprintf(stderr, "%s: aio_file_pwritev gave %d, not %zu\n", what, ret,
                len);
        rc = 21;
        goto out;
    }
    if (pread(fd, raw, len, 0) != (ssize_t)len || memcmp(raw, src, len)) {
        fprintf(stderr, "%s: the file is not what was written\n", what);
        rc = 22;
        goto out;
    }
    ret = child_one_op(ctx, false, fd, riov, 3);
    if (ret != (int)len || memcmp(dst, src, len)) {
        fprintf(stderr, "%s: aio_file_preadv gave %d, not %zu, or other "
                "bytes\n", what, ret, len);
        rc = 23;
    }
out:
    free(src);
    free(dst);
    free(raw);
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

static int io_setup_eagain_child(void)
{
    aio_context_t probe = 0;
    AioContext *def, *ep;
    Error *err = NULL;
    QEMUBH *bh;
    int ran = 0, rc;

    /* io_setup(nr_events, ...): arg 0 above 0 refused. */
    if (test_seccomp_refuse(__NR_io_setup, EAGAIN, 0, 0) < 0) {
        return 3;
    }
    if (syscall(__NR_io_setup, 1, &probe) != -1 || errno != EAGAIN ||
        !aio_engine_available("linux-aio")) {
        fprintf(stderr, "io_setup(1) not refused with EAGAIN, or linux-aio "
                "not available\n");
        return 4;
    }

    /* 1. linux-aio asked for: an Error naming it and the cause. */
    if (ctx_with_engine("linux-aio", &err) ||
        !error_is_eagain(err, "linux-aio")) {
        fprintf(stderr, "linux-aio context: not refused as expected\n");
        return 5;
    }
    error_free(err);
    err = NULL;

    /* 2. The default (auto: the suite's AIOCTX_ENGINE goes) and epoll. */
    unsetenv("AIOCTX_ENGINE");
    def = aio_context_new(&err);
    if (!def || !strcmp(aio_context_get_engine_name(def), "linux-aio")) {
        fprintf(stderr, "default context: %s\n",
                def ? aio_context_get_engine_name(def)
                    : error_get_pretty(err));
        return 6;
    }
    ep = ctx_with_engine("epoll", &err);
    if (!ep) {
        fprintf(stderr, "epoll context: %s\n", error_get_pretty(err));
        return 7;
    }

    /* aio_setup_linux_aio() fails, twice alike, and sets nothing up. */
    for (int i = 0; i < 2; i++) {
        if (aio_setup_linux_aio(ep, &err) ||
            !error_is_eagain(err, "Linux AIO") || aio_get_linux_aio(ep)) {
            fprintf(stderr, "aio_setup_linux_aio (call %d): not refused "
                    "cleanly\n", i + 1);
            return 8;
        }
        error_free(err);
        err = NULL;
    }

    /* The epoll context still runs bottom halves and does file I/O. */
    bh = aio_bh_new(ep, count_bh, &ran);
    qemu_bh_schedule(bh);
    for (int i = 0; i < 100 && !ran; i++) {
        aio_poll(ep, true);
    }
    qemu_bh_delete(bh);
    if (ran != 1) {
        fprintf(stderr, "epoll: the bottom half ran %d times\n", ran);
        return 9;
    }
    rc = child_file_rw(ep, "epoll after aio_setup_linux_aio");
    if (rc) {
        return rc;
    }
    rc = child_file_rw(def, aio_context_get_engine_name(def));
    if (rc) {
        return rc + 10;
    }
    aio_context_unref(ep);
    aio_context_unref(def);
    return 0;
}

START_TEST(test_io_setup_eagain)
{
    int status;
    pid_t pid;

    if (!aio_engine_available("linux-aio")) {
        printf("linux-aio is not available here: case skipped\n");
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* exit(), not _exit(): LeakSanitizer checks the child too. */
        exit(io_setup_eagain_child());
    }
    ck_assert_int_eq(test_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %#x", status);
}
END_TEST

/* In a re-run child: the filter bites, and the default is as expected. */
static int child_preflight(const char *mode)
{
    if (strcmp(mode, "expect-epoll") == 0) {
        AioContext *ctx = aio_context_new(NULL);
        const char *got = ctx ? aio_context_get_engine_name(ctx) : "none";

        if (aio_engine_available("io_uring") || strcmp(got, "epoll") != 0) {
            fprintf(stderr, "io_uring not refused, or default %s\n", got);
            return 1;
        }
        aio_context_unref(ctx);
        printf("io_uring refused by seccomp: the suite runs on epoll\n");
    } else if (strcmp(mode, "io-uring-register-refused") == 0) {
        AioContext *ctx = aio_context_new(NULL);
        const char *got = ctx ? aio_context_get_engine_name(ctx) : "none";

        if (syscall(__NR_io_uring_register, -1, 0, NULL, 0) != -1 ||
            errno != EPERM || strcmp(got, "io_uring") != 0) {
            fprintf(stderr, "io_uring_register not refused, or engine %s\n",
                    got);
            return 1;
        }
        aio_context_unref(ctx);
        printf("io_uring_register refused by seccomp: the suite runs on "
               "io_uring\n");
    } else if (strcmp(mode, "io-submit-eagain") == 0) {
        aio_context_t probe = 0;
        struct iocb *none[2] = { NULL, NULL };

        if (syscall(__NR_io_setup, 1, &probe) < 0 ||
            syscall(__NR_io_submit, probe, 2, none) != -1 || errno != EAGAIN) {
            fprintf(stderr, "io_submit of 2 is not refused with EAGAIN\n");
            return 1;
        }
        syscall(__NR_io_destroy, probe);
        printf("io_submit of more than one refused: the suite runs on "
               "linux-aio\n");
    }
    return 0;
}
#endif

int main(void)
{
    const char *child = getenv(CHILD_ENV);
    Suite *s = suite_create("file-io");
    TCase *tc = tcase_create("rw");

    signal(SIGPIPE, SIG_IGN);
#if TEST_HAVE_SECCOMP
    if (child && child_preflight(child) != 0) {
        return 1;
    }
#endif
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
    tcase_add_test(tc, test_page_cache_read_without_worker);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_cancel_sync);
    tcase_add_test(tc, test_destroy_with_requests);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_many_contexts);
    tcase_add_test(tc, test_polling_thread_changes);
    tcase_add_test(tc, test_pollfd_with_requests_in_flight);
    tcase_add_test(tc, test_pollfd_completed_in_prepare);
    suite_add_tcase(s, tc);

    tc = tcase_create("coroutine");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_coroutine_forms);
    tcase_add_test(tc, test_laio_co_submit);
    tcase_add_test(tc, test_laio_co_submit_batch1);
    tcase_add_test(tc, test_luring_co_submit);
    suite_add_tcase(s, tc);

#if TEST_HAVE_SECCOMP
    if (!child) {
        const char *engine = current_engine();

        tc = tcase_create("seccomp");
        tcase_set_timeout(tc, 300);
        if (!strcmp(engine, "io_uring") || !strcmp(engine, "auto")) {
            tcase_add_test(tc, test_suite_on_epoll_fallback);
        }
        if (!strcmp(engine, "io_uring")) {
            tcase_add_test(tc, test_suite_with_io_uring_register_refused);
        }
        if (!strcmp(engine, "linux-aio")) {
            tcase_add_test(tc, test_suite_with_io_submit_eagain);
            tcase_add_test(tc, test_io_submit_always_eagain);
            tcase_add_test(tc, test_io_setup_eagain);
        }
        suite_add_tcase(s, tc);
    }
#endif
    return test_main(s);
}
