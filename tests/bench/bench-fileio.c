/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W6 (../../shared/bench-workloads.md): 4 KiB random reads of a 1 GiB file,
 * queue depth 1, 32 and 128, for W6_SECONDS (default 5) per run, single
 * thread, O_DIRECT ("direct") and from the page cache ("buffered").
 *
 * The file is $BENCH_DATA_DIR/w6.dat (default /var/tmp), made on first use
 * so that 4 KiB block b starts with the 8 bytes b ^ 0x5a5a5a5a5a5a5a5a;
 * every completed read is checked (4096 bytes, right tag).  Before the
 * buffered runs the whole file is read once, so that it sits in the page
 * cache.
 *
 * Peers, side by side in the same run (RUNS rounds, default 3 as W6 says,
 * each round running every peer once):
 *   libaioctx-<engine>  aio_file_preadv on a context of each engine, a
 *                       new read submitted from each completion callback;
 *   raw-liburing        one ring, QD reads in flight, submit_and_wait(1),
 *                       reap every CQE, resubmit each;
 *   raw-libaio          io_submit / io_getevents(min 1, max QD);
 *   fio-io_uring, fio-libaio   fio --ioengine=... --iodepth=QD --rw=randread
 *                       --bs=4k --size=1g --time_based --invalidate=0, when
 *                       fio is on PATH (else skipped).
 * Figures: IOPS, and CPU time per I/O in ns (user+sys of the whole process,
 * worker threads included, over the timed region; fio's own usr/sys_cpu).
 * Arguments select peers by substring of "variant-qdN/peer".
 */
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <liburing.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <aioctx.h>

#include "bench-util.h"

#define W6_FILE_SIZE (1ULL << 30)
#define W6_BLOCK 4096
#define W6_BLOCKS (W6_FILE_SIZE / W6_BLOCK)
#define W6_TAG 0x5a5a5a5a5a5a5a5aULL
#define W6_MAX_QD 128

static double w6_seconds = 5;
static char w6_path[4096];

typedef struct W6Result {
    double iops;
    double cpu_ns_per_io;
    uint64_t bad; /* failed checks */
    bool ran;
} W6Result;

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int64_t cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static bool block_ok(const void *buf, uint64_t block)
{
    uint64_t tag;

    memcpy(&tag, buf, sizeof(tag));
    return tag == (block ^ W6_TAG);
}

static void *w6_alloc(void)
{
    void *p = NULL;

    if (posix_memalign(&p, W6_BLOCK, W6_BLOCK)) {
        abort();
    }
    return p;
}

/* ---- the data file ---- */

static bool w6_file_ok(void)
{
    uint8_t *buf = w6_alloc();
    uint64_t seed = 42;
    struct stat st;
    bool ok;
    int fd = open(w6_path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        free(buf);
        return false;
    }
    ok = fstat(fd, &st) == 0 && (uint64_t)st.st_size == W6_FILE_SIZE;
    for (int i = 0; ok && i < 64; i++) {
        uint64_t b = i == 0 ? W6_BLOCKS - 1 : xorshift(&seed) % W6_BLOCKS;

        ok = pread(fd, buf, W6_BLOCK, (off_t)(b * W6_BLOCK)) == W6_BLOCK &&
             block_ok(buf, b);
    }
    close(fd);
    free(buf);
    return ok;
}

/* w6_mkfile: 1 GiB, block b tagged with b ^ W6_TAG. */
static int w6_mkfile(void)
{
    size_t chunk = 1 << 20;
    uint8_t *buf = malloc(chunk);
    int fd;

    if (w6_file_ok()) {
        free(buf);
        return 0;
    }
    fprintf(stderr, "# writing %s (1 GiB)\n", w6_path);
    fd = open(w6_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "# %s: %s\n", w6_path, strerror(errno));
        free(buf);
        return -1;
    }
    for (uint64_t off = 0; off < W6_FILE_SIZE; off += chunk) {
        for (size_t b = 0; b < chunk; b += W6_BLOCK) {
            uint64_t tag = ((off + b) / W6_BLOCK) ^ W6_TAG;

            memcpy(buf + b, &tag, sizeof(tag));
            memset(buf + b + 8, (int)(b / W6_BLOCK), W6_BLOCK - 8);
        }
        if (pwrite(fd, buf, chunk, (off_t)off) != (ssize_t)chunk) {
            fprintf(stderr, "# writing %s: %s\n", w6_path, strerror(errno));
            close(fd);
            free(buf);
            return -1;
        }
    }
    fsync(fd);
    close(fd);
    free(buf);
    return 0;
}

/* Read the whole file once (cat > /dev/null) so it sits in the cache. */
static void w6_warm_cache(void)
{
    size_t chunk = 1 << 20;
    char *buf = malloc(chunk);
    int fd = open(w6_path, O_RDONLY | O_CLOEXEC);

    while (fd >= 0 && read(fd, buf, chunk) > 0) {
        continue;
    }
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
}

static int w6_open(bool direct)
{
    int fd = open(w6_path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));

    if (fd < 0) {
        fprintf(stderr, "# open %s%s: %s\n", w6_path,
                direct ? " (O_DIRECT)" : "", strerror(errno));
    }
    return fd;
}

/* ---- libaioctx ---- */

typedef struct W6Ctx W6Ctx;

typedef struct W6Slot {
    W6Ctx *w;
    uint8_t *buf;
    uint64_t block;
    struct iovec iov;
} W6Slot;

struct W6Ctx {
    AioContext *ctx;
    int fd;
    uint64_t seed;
    uint64_t done;
    uint64_t bad;
    int inflight;
    bool stop;
};

static void w6_submit(W6Slot *s);

static void w6_cb(void *opaque, int ret)
{
    W6Slot *s = opaque;
    W6Ctx *w = s->w;

    if (ret != W6_BLOCK || !block_ok(s->buf, s->block)) {
        w->bad++;
    }
    w->done++;
    if (w->stop) {
        w->inflight--;
        return;
    }
    w6_submit(s);
}

static void w6_submit(W6Slot *s)
{
    W6Ctx *w = s->w;

    s->block = xorshift(&w->seed) % W6_BLOCKS;
    if (!aio_file_preadv(w->ctx, w->fd, s->block * W6_BLOCK, &s->iov, 1,
                         w6_cb, s)) {
        abort();
    }
}

static W6Result run_libaioctx(const char *engine, bool direct, int qd)
{
    AioContextOptions opts = { .engine = engine };
    W6Slot slots[W6_MAX_QD];
    W6Ctx w = { .seed = 0x1234567 + qd };
    W6Result r = { 0 };
    int64_t start, end, cpu0;
    uint64_t done0;
    Error *err = NULL;

    w.ctx = aio_context_new_with_options(&opts, &err);
    if (!w.ctx) {
        fprintf(stderr, "# %s: %s\n", engine, error_get_pretty(err));
        error_free(err);
        return r;
    }
    w.fd = w6_open(direct);
    if (w.fd < 0) {
        aio_context_unref(w.ctx);
        return r;
    }
    for (int i = 0; i < qd; i++) {
        slots[i] = (W6Slot){ .w = &w, .buf = w6_alloc() };
        slots[i].iov = (struct iovec){ slots[i].buf, W6_BLOCK };
    }
    /* Warm up (threads, rings) for a tenth of a second, then measure. */
    for (int i = 0; i < qd; i++) {
        w.inflight++;
        w6_submit(&slots[i]);
    }
    end = bench_now_ns() + 100 * 1000000LL;
    while (bench_now_ns() < end) {
        aio_poll(w.ctx, true);
    }
    done0 = w.done;
    cpu0 = cpu_ns();
    start = bench_now_ns();
    end = start + (int64_t)(w6_seconds * 1e9);
    while (bench_now_ns() < end) {
        aio_poll(w.ctx, true);
    }
    end = bench_now_ns();
    r.cpu_ns_per_io = (double)(cpu_ns() - cpu0);
    r.iops = (double)(w.done - done0) * 1e9 / (double)(end - start);
    r.cpu_ns_per_io /= (double)(w.done - done0);
    w.stop = true;
    while (w.inflight > 0) {
        aio_poll(w.ctx, true);
    }
    r.bad = w.bad;
    r.ran = true;
    aio_context_unref(w.ctx);
    close(w.fd);
    for (int i = 0; i < qd; i++) {
        free(slots[i].buf);
    }
    return r;
}

/* ---- raw liburing ---- */

static W6Result run_raw_liburing(bool direct, int qd)
{
    struct io_uring ring;
    uint8_t *bufs[W6_MAX_QD];
    uint64_t blocks[W6_MAX_QD], seed = 0x7654321 + qd, done = 0, done0 = 0;
    W6Result r = { 0 };
    int64_t start = 0, end = INT64_MAX, cpu0 = 0, warm_end;
    bool measuring = false, stop = false;
    int fd = w6_open(direct), ret, inflight = 0;

    if (fd < 0) {
        return r;
    }
    ret = io_uring_queue_init((unsigned)qd, &ring, 0);
    if (ret < 0) {
        fprintf(stderr, "# raw-liburing: %s\n", strerror(-ret));
        close(fd);
        return r;
    }
    for (int i = 0; i < qd; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

        bufs[i] = w6_alloc();
        blocks[i] = xorshift(&seed) % W6_BLOCKS;
        io_uring_prep_read(sqe, fd, bufs[i], W6_BLOCK, blocks[i] * W6_BLOCK);
        io_uring_sqe_set_data64(sqe, (uint64_t)i);
        inflight++;
    }
    warm_end = bench_now_ns() + 100 * 1000000LL;
    /* Until the end, then without resubmitting until nothing is in flight
     * (the kernel writes into the buffers until then). */
    while (inflight > 0) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        int64_t now;

        io_uring_submit_and_wait(&ring, 1);
        now = bench_now_ns();
        if (!measuring && now >= warm_end) {
            measuring = true;
            done0 = done;
            cpu0 = cpu_ns();
            start = now;
            end = start + (int64_t)(w6_seconds * 1e9);
        } else if (measuring && !stop && now >= end) {
            stop = true;
            r.cpu_ns_per_io = (double)(cpu_ns() - cpu0) / (double)(done - done0);
            r.iops = (double)(done - done0) * 1e9 / (double)(now - start);
        }
        io_uring_for_each_cqe(&ring, head, cqe) {
            int i = (int)io_uring_cqe_get_data64(cqe);
            struct io_uring_sqe *sqe;

            if (cqe->res != W6_BLOCK || !block_ok(bufs[i], blocks[i])) {
                r.bad++;
            }
            done++;
            seen++;
            inflight--;
            if (stop) {
                continue;
            }
            blocks[i] = xorshift(&seed) % W6_BLOCKS;
            sqe = io_uring_get_sqe(&ring);
            io_uring_prep_read(sqe, fd, bufs[i], W6_BLOCK,
                               blocks[i] * W6_BLOCK);
            io_uring_sqe_set_data64(sqe, (uint64_t)i);
            inflight++;
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    close(fd);
    for (int i = 0; i < qd; i++) {
        free(bufs[i]);
    }
    r.ran = true;
    return r;
}

/* ---- raw libaio ---- */

static W6Result run_raw_libaio(bool direct, int qd)
{
    io_context_t io_ctx = 0;
    struct iocb iocbs[W6_MAX_QD], *ptrs[W6_MAX_QD];
    struct io_event events[W6_MAX_QD];
    uint8_t *bufs[W6_MAX_QD];
    uint64_t blocks[W6_MAX_QD], seed = 0x1357 + qd, done = 0, done0 = 0;
    W6Result r = { 0 };
    int64_t start = 0, end = INT64_MAX, cpu0 = 0, warm_end;
    bool measuring = false;
    int fd = w6_open(direct), ret, inflight;

    if (fd < 0) {
        return r;
    }
    ret = io_setup(qd, &io_ctx);
    if (ret < 0) {
        fprintf(stderr, "# raw-libaio: %s\n", strerror(-ret));
        close(fd);
        return r;
    }
    for (int i = 0; i < qd; i++) {
        bufs[i] = w6_alloc();
        blocks[i] = xorshift(&seed) % W6_BLOCKS;
        io_prep_pread(&iocbs[i], fd, bufs[i], W6_BLOCK,
                      (long long)(blocks[i] * W6_BLOCK));
        iocbs[i].data = (void *)(uintptr_t)i;
        ptrs[i] = &iocbs[i];
    }
    if (io_submit(io_ctx, qd, ptrs) != qd) {
        fprintf(stderr, "# raw-libaio: io_submit failed\n");
        abort();
    }
    inflight = qd;
    warm_end = bench_now_ns() + 100 * 1000000LL;
    for (;;) {
        int n = io_getevents(io_ctx, 1, qd, events, NULL), nsub = 0;
        int64_t now;

        if (n < 0) {
            if (n == -EINTR) {
                continue;
            }
            abort();
        }
        inflight -= n;
        now = bench_now_ns();
        if (!measuring && now >= warm_end) {
            measuring = true;
            done0 = done + (uint64_t)n;
            cpu0 = cpu_ns();
            start = now;
            end = start + (int64_t)(w6_seconds * 1e9);
        }
        for (int k = 0; k < n; k++) {
            int i = (int)(uintptr_t)events[k].data;

            if ((long)events[k].res != W6_BLOCK ||
                !block_ok(bufs[i], blocks[i])) {
                r.bad++;
            }
            done++;
            if (measuring && now >= end) {
                continue;
            }
            blocks[i] = xorshift(&seed) % W6_BLOCKS;
            io_prep_pread(&iocbs[i], fd, bufs[i], W6_BLOCK,
                          (long long)(blocks[i] * W6_BLOCK));
            iocbs[i].data = (void *)(uintptr_t)i;
            ptrs[nsub++] = &iocbs[i];
        }
        if (measuring && now >= end) {
            r.cpu_ns_per_io = (double)(cpu_ns() - cpu0) / (double)(done - done0);
            r.iops = (double)(done - done0) * 1e9 / (double)(now - start);
            break;
        }
        if (nsub && io_submit(io_ctx, nsub, ptrs) != nsub) {
            fprintf(stderr, "# raw-libaio: io_submit failed\n");
            abort();
        }
        inflight += nsub;
    }
    while (inflight > 0) {
        int n = io_getevents(io_ctx, 1, qd, events, NULL);

        inflight -= n > 0 ? n : 0;
    }
    io_destroy(io_ctx);
    close(fd);
    for (int i = 0; i < qd; i++) {
        free(bufs[i]);
    }
    r.ran = true;
    return r;
}

/* ---- fio ---- */

static bool have_fio(void)
{
    return system("fio --version > /dev/null 2>&1") == 0;
}

/* The number after "key" : in s, or -1. */
static double json_number(const char *s, const char *key)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\" :", key);
    p = strstr(s, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static W6Result run_fio(const char *ioengine, bool direct, int qd)
{
    char cmd[8192];
    W6Result r = { 0 };
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    const char *read_sec;
    double usr, sys, err;
    FILE *p;

    /* In ms: fio reads "--runtime=0.5" as 0, and then reads all 1 GiB. */
    snprintf(cmd, sizeof(cmd),
             "fio --name=w6 --filename=%s --ioengine=%s --iodepth=%d "
             "--rw=randread --bs=4k --size=1g --time_based --runtime=%.0fms "
             "--invalidate=0 --direct=%d --output-format=json 2>/dev/null",
             w6_path, ioengine, qd, w6_seconds * 1000, direct ? 1 : 0);
    p = popen(cmd, "r");
    if (!p) {
        free(out);
        return r;
    }
    while (len < cap - 1) {
        size_t n = fread(out + len, 1, cap - 1 - len, p);

        if (n == 0) {
            break;
        }
        len += n;
    }
    out[len] = '\0';
    pclose(p);
    read_sec = strstr(out, "\"read\" :");
    usr = json_number(out, "usr_cpu");
    sys = json_number(out, "sys_cpu");
    err = json_number(out, "error");
    if (!read_sec || usr < 0 || sys < 0) {
        fprintf(stderr, "# fio %s: no result\n", ioengine);
        free(out);
        return r;
    }
    r.iops = json_number(read_sec, "iops");
    r.cpu_ns_per_io = r.iops > 0 ? (usr + sys) / 100.0 * 1e9 / r.iops : 0;
    r.bad = err != 0;
    r.ran = r.iops > 0;
    free(out);
    return r;
}

/* ---- the driver ---- */

enum {
    P_IO_URING, P_LINUX_AIO, P_EPOLL, P_POLL, P_RAW_LIBURING, P_RAW_LIBAIO,
    P_FIO_IO_URING, P_FIO_LIBAIO, P_COUNT
};

static const char *peer_names[P_COUNT] = {
    "libaioctx-io_uring", "libaioctx-linux-aio", "libaioctx-epoll",
    "libaioctx-poll", "raw-liburing", "raw-libaio", "fio-io_uring",
    "fio-libaio",
};

static W6Result run_peer(int peer, bool direct, int qd)
{
    switch (peer) {
    case P_IO_URING:
        return run_libaioctx("io_uring", direct, qd);
    case P_LINUX_AIO:
        return run_libaioctx("linux-aio", direct, qd);
    case P_EPOLL:
        return run_libaioctx("epoll", direct, qd);
    case P_POLL:
        return run_libaioctx("poll", direct, qd);
    case P_RAW_LIBURING:
        return run_raw_liburing(direct, qd);
    case P_RAW_LIBAIO:
        return run_raw_libaio(direct, qd);
    case P_FIO_IO_URING:
        return run_fio("io_uring", direct, qd);
    default:
        return run_fio("libaio", direct, qd);
    }
}

static void print_ratio_iops(const BenchSeries *s, int a, int b)
{
    bench_print_ratio(&s[a], &s[b]);
}

int main(int argc, char **argv)
{
    static const int qds[] = { 1, 32, 128 };
    const char *dir = getenv("BENCH_DATA_DIR");
    const char *secs = getenv("W6_SECONDS");
    int runs = bench_runs(3);
    bool fio = have_fio();

    if (!dir || !*dir) {
        dir = "/var/tmp";
    }
    if (secs && atof(secs) > 0) {
        w6_seconds = atof(secs);
    }
    snprintf(w6_path, sizeof(w6_path), "%s/w6.dat", dir);
    if (w6_mkfile() < 0) {
        return 1;
    }
    if (!fio) {
        fprintf(stderr, "# fio not found: fio peers skipped\n");
    }
    for (int direct = 1; direct >= 0; direct--) {
        if (!direct) {
            w6_warm_cache();
        }
        for (size_t q = 0; q < sizeof(qds) / sizeof(qds[0]); q++) {
            int qd = qds[q];
            char variant[32];
            BenchSeries iops[P_COUNT], cpu[P_COUNT];
            bool want[P_COUNT];

            snprintf(variant, sizeof(variant), "%s-qd%d",
                     direct ? "direct" : "buffered", qd);
            for (int p = 0; p < P_COUNT; p++) {
                char sel[96];

                snprintf(sel, sizeof(sel), "%s/%s", variant, peer_names[p]);
                want[p] = bench_selected(argc, argv, sel) &&
                          (fio || p < P_FIO_IO_URING);
                bench_series_init(&iops[p], "W6", variant, peer_names[p],
                                  "IOPS");
                bench_series_init(&cpu[p], "W6", variant, peer_names[p],
                                  "cpu-ns/io");
            }
            for (int run = 0; run < runs; run++) {
                for (int p = 0; p < P_COUNT; p++) {
                    W6Result r;

                    if (!want[p]) {
                        continue;
                    }
                    r = run_peer(p, direct, qd);
                    if (!r.ran) {
                        want[p] = false;
                        continue;
                    }
                    bench_series_add(&iops[p], r.iops, r.bad == 0,
                                     "%llu bad reads",
                                     (unsigned long long)r.bad);
                    bench_series_add(&cpu[p], r.cpu_ns_per_io, r.bad == 0,
                                     "%llu bad reads",
                                     (unsigned long long)r.bad);
                }
            }
            for (int p = 0; p < P_COUNT; p++) {
                bench_series_report(&iops[p]);
                bench_series_report(&cpu[p]);
            }
            if (direct) {
                print_ratio_iops(iops, P_IO_URING, P_FIO_IO_URING);
                print_ratio_iops(iops, P_LINUX_AIO, P_FIO_LIBAIO);
                print_ratio_iops(iops, P_IO_URING, P_RAW_LIBURING);
                print_ratio_iops(iops, P_LINUX_AIO, P_RAW_LIBAIO);
            } else {
                print_ratio_iops(iops, P_IO_URING, P_RAW_LIBURING);
                print_ratio_iops(iops, P_IO_URING, P_FIO_IO_URING);
                print_ratio_iops(iops, P_LINUX_AIO, P_RAW_LIBAIO);
            }
        }
    }
    return 0;
}
