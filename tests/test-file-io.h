/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the test-file-io* suites share: a test file with a shadow copy that
 * every read is checked against, requests with their callbacks, random
 * reads and writes, one request at a time, and the main() of each suite
 * (which, in a child that test-file-io-seccomp started under a seccomp
 * filter, first checks that the filter bites).
 */
#ifndef AIOCTX_TEST_FILE_IO_H
#define AIOCTX_TEST_FILE_IO_H

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

static inline uint64_t rnd(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static inline void fill_random(uint8_t *buf, size_t len, uint64_t *seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(rnd(seed) >> 56);
    }
}

static inline void *alloc_aligned(size_t len)
{
    void *p = NULL;

    ck_assert_int_eq(posix_memalign(&p, BLK, len ? len : BLK), 0);
    memset(p, 0, len ? len : BLK); /* written out as is by some tests */
    return p;
}

static inline void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
}

static inline AioContext *ctx_with_engine(const char *name, Error **errp)
{
    AioContextOptions opts = { .engine = name };

    return aio_context_new_with_options(&opts, errp);
}

static inline const char *current_engine(void)
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
static inline bool direct_works_in(const char *dir)
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
static inline const char *direct_dir(void)
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
static inline bool tfile_open(TFile *f, size_t size, bool want_direct,
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

static inline void tfile_close(TFile *f)
{
    close(f->fd);
    if (f->dfd >= 0) {
        close(f->dfd);
    }
    free(f->shadow);
}

/* The whole file, read with pread, equals the shadow. */
static inline void tfile_verify(TFile *f)
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

static inline void op_cb(void *opaque, int ret)
{
    Op *op = opaque;

    op->calls++;
    op->ret = ret;
    op->thread = pthread_self();
    (*op->pending)--;
}

/* Cut op->buf into up to MAX_SEGS pieces, at multiples of unit. */
static inline void op_split(Op *op, size_t unit, uint64_t *seed)
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

static inline size_t read_expect(const TFile *f, uint64_t off, size_t len)
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
static inline void random_reads(AioContext *ctx, TFile *f, bool direct, int nops,
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
static inline void random_writes(AioContext *ctx, TFile *f, bool direct, int rounds,
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


/* ---- one request at a time ---- */

static inline int one_read(AioContext *ctx, int fd, uint64_t off,
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

static inline int one_write(AioContext *ctx, int fd, uint64_t off,
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

static inline int one_fsync(AioContext *ctx, int fd, bool datasync)
{
    int pending = 1;
    Op op = { .pending = &pending };

    ck_assert_ptr_nonnull(aio_file_fsync(ctx, fd, datasync, op_cb, &op));
    test_poll_until_zero(ctx, &pending);
    ck_assert_int_eq(op.calls, 1);
    return op.ret;
}


/* ---- re-runs under seccomp (see test-file-io-seccomp.c) ---- */

/* Set in the children that test-file-io-seccomp runs under a filter. */
#define CHILD_ENV "AIOCTX_TEST_FILE_IO_CHILD"

#if TEST_HAVE_SECCOMP
/* In a re-run child: the filter bites, and the default is as expected. */
static inline int file_io_child_preflight(const char *mode)
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

/* main() of a test-file-io* suite. */
static inline int file_io_main(Suite *s)
{
    const char *child = getenv(CHILD_ENV);

    signal(SIGPIPE, SIG_IGN);
#if TEST_HAVE_SECCOMP
    if (child && file_io_child_preflight(child) != 0) {
        return 1;
    }
#else
    (void)child;
#endif
    return test_main(s);
}

#endif /* AIOCTX_TEST_FILE_IO_H */
