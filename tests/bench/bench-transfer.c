/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File-to-socket throughput (GiB/s): aio_file_transfer() on a context
 * against a raw sendfile() loop and against pread()+send() through a
 * 128 KiB buffer, each moving the whole file to a loopback TCP socket that
 * a reader thread drains (and counts) on the other CPU.
 *
 *   bench-transfer [peer...]       peers: transfer, sendfile, read+send
 *
 * Besides GiB/s (bounded by the reader's copy on a busy machine), the
 * sending side's CPU per GiB: the process's CPU time less the reader
 * thread's (workers included), in ms per GiB.
 *
 * Two variants: "cached" (the file was read just before: the page cache
 * has it) and "cold" (fdatasync + posix_fadvise(DONTNEED) drop its pages
 * before each run, so the disk is read; the file lives in $BENCH_DIR,
 * default /var/tmp, which must not be tmpfs for this to mean anything).
 * Environment: RUNS (default 5), BENCH_MIB (file size, default 256),
 * AIOCTX_ENGINE (the context's engine), BENCH_SCALE (smoke runs).
 * The sender runs on CPU0, the reader on CPU1 when there are two CPUs.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <aioctx.h>

#include "bench-util.h"

#define BUF (128 * 1024)

typedef struct Reader {
    int fd;
    uint64_t got;
    double cpu; /* the reader thread's CPU seconds */
} Reader;

static double cpu_of(int who)
{
    struct rusage ru;

    getrusage(who, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *reader_main(void *opaque)
{
    Reader *r = opaque;
    static char buf[1 << 20];
    ssize_t n;

    bench_pin_self(1);
    while ((n = recv(r->fd, buf, sizeof(buf), 0)) != 0) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        r->got += (uint64_t)n;
    }
    r->cpu = cpu_of(RUSAGE_THREAD);
    return NULL;
}

/* A loopback pair: *wr non-blocking for the sender, *rd for the reader. */
static void tcp_pair(int *wr, int *rd)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&a, &alen) < 0) {
        perror("bench-transfer: listen");
        exit(1);
    }
    *rd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*rd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        perror("bench-transfer: connect");
        exit(1);
    }
    *wr = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    close(l);
}

static void wait_writable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };

    while (poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
}

/* The three senders; each returns the bytes moved. */
static uint64_t send_sendfile(int out, int in, uint64_t size)
{
    off_t off = 0;

    while ((uint64_t)off < size) {
        ssize_t n = sendfile(out, in, &off, size - (uint64_t)off);

        if (n > 0) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            wait_writable(out);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    return (uint64_t)off;
}

static uint64_t send_copy(int out, int in, uint64_t size)
{
    static char buf[BUF];
    uint64_t off = 0;

    while (off < size) {
        ssize_t got = pread(in, buf, BUF, (off_t)off);
        ssize_t done = 0;

        if (got <= 0) {
            break;
        }
        while (done < got) {
            ssize_t n = send(out, buf + done, (size_t)(got - done),
                             MSG_NOSIGNAL);

            if (n > 0) {
                done += n;
            } else if (n < 0 && errno == EAGAIN) {
                wait_writable(out);
            } else if (!(n < 0 && errno == EINTR)) {
                return off;
            }
        }
        off += (uint64_t)got;
    }
    return off;
}

typedef struct Xfer {
    bool done;
    int64_t moved;
    int error;
} Xfer;

static void xfer_done(void *opaque, int64_t moved, int error)
{
    Xfer *x = opaque;

    x->done = true;
    x->moved = moved;
    x->error = error;
}

static uint64_t send_transfer(AioContext *ctx, int out, int in, uint64_t size)
{
    Xfer x = { 0 };

    aio_file_transfer(ctx, out, in, 0, size, xfer_done, &x);
    while (!x.done) {
        aio_poll(ctx, true);
    }
    if (x.error) {
        fprintf(stderr, "bench-transfer: %s\n", strerror(-x.error));
    }
    return (uint64_t)x.moved;
}

static void drop_cache(int fd)
{
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static void warm_cache(int fd, uint64_t size)
{
    static char buf[1 << 20];

    for (uint64_t off = 0; off < size;) {
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);

        if (n <= 0) {
            break;
        }
        off += (uint64_t)n;
    }
}

int main(int argc, char **argv)
{
    static const char *const peers[] = { "transfer", "sendfile", "read+send" };
    static const char *const variants[] = { "cached", "cold" };
    const char *dir = getenv("BENCH_DIR");
    const char *mib_env = getenv("BENCH_MIB");
    uint64_t size = (uint64_t)bench_scaled(mib_env && *mib_env ?
                                               atoll(mib_env) : 256, 1) << 20;
    int runs = bench_runs(5);
    BenchSeries series[2][3], cpu[2][3];
    char path[4096];
    AioContext *ctx;
    Error *err = NULL;
    int fd;

    if (size == 0) {
        size = 1 << 20;
    }
    snprintf(path, sizeof(path), "%s/bench-transfer-XXXXXX",
             dir && *dir ? dir : "/var/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        perror("bench-transfer: mkstemp");
        return 1;
    }
    unlink(path);
    {
        static char buf[1 << 20];

        for (size_t i = 0; i < sizeof(buf); i++) {
            buf[i] = (char)(i * 2654435761u >> 13);
        }
        for (uint64_t off = 0; off < size; off += sizeof(buf)) {
            if (pwrite(fd, buf, sizeof(buf), (off_t)off) !=
                (ssize_t)sizeof(buf)) {
                perror("bench-transfer: pwrite");
                return 1;
            }
        }
    }
    ctx = aio_context_new(&err);
    if (!ctx) {
        fprintf(stderr, "bench-transfer: %s\n", error_get_pretty(err));
        return 1;
    }
    qemu_set_current_aio_context(ctx);
    bench_pin_self(0);
    printf("# file-to-socket, %llu MiB file, engine %s, %d runs\n",
           (unsigned long long)(size >> 20), aio_context_get_engine_name(ctx),
           runs);
    for (int v = 0; v < 2; v++) {
        for (int p = 0; p < 3; p++) {
            bench_series_init(&series[v][p], "transfer", variants[v],
                              peers[p], "GiB/s");
            bench_series_init(&cpu[v][p], "transfer-cpu", variants[v],
                              peers[p], "cpu-ms/GiB");
        }
    }
    /* Interleaved: run r of every series before run r + 1 of any. */
    for (int r = 0; r < runs; r++) {
        for (int v = 0; v < 2; v++) {
            for (int p = 0; p < 3; p++) {
                Reader rdr = { 0 };
                pthread_t t;
                uint64_t moved;
                int64_t t0, t1;
                double c0, c1;
                int wr;

                if (!bench_selected(argc, argv, peers[p])) {
                    continue;
                }
                if (v == 0) {
                    warm_cache(fd, size);
                } else {
                    drop_cache(fd);
                }
                tcp_pair(&wr, &rdr.fd);
                pthread_create(&t, NULL, reader_main, &rdr);
                t0 = bench_now_ns();
                c0 = cpu_of(RUSAGE_SELF);
                moved = p == 0 ? send_transfer(ctx, wr, fd, size)
                        : p == 1 ? send_sendfile(wr, fd, size)
                                 : send_copy(wr, fd, size);
                shutdown(wr, SHUT_WR);
                pthread_join(t, NULL);
                t1 = bench_now_ns();
                c1 = cpu_of(RUSAGE_SELF);
                close(wr);
                close(rdr.fd);
                bench_series_add(&series[v][p],
                                 (double)size / (1 << 30) / ((t1 - t0) / 1e9),
                                 moved == size && rdr.got == size,
                                 "moved %llu, read %llu",
                                 (unsigned long long)moved,
                                 (unsigned long long)rdr.got);
                /* The sending side: the process less the reader thread. */
                bench_series_add(&cpu[v][p],
                                 (c1 - c0 - rdr.cpu) * 1000 /
                                     ((double)size / (1 << 30)),
                                 moved == size, "moved %llu",
                                 (unsigned long long)moved);
            }
        }
    }
    for (int v = 0; v < 2; v++) {
        for (int p = 0; p < 3; p++) {
            bench_series_report(&series[v][p]);
        }
        bench_print_ratio(&series[v][0], &series[v][1]);
        bench_print_ratio(&series[v][0], &series[v][2]);
    }
    for (int v = 0; v < 2; v++) {
        for (int p = 0; p < 3; p++) {
            bench_series_report(&cpu[v][p]);
        }
        bench_print_ratio(&cpu[v][0], &cpu[v][1]);
        bench_print_ratio(&cpu[v][0], &cpu[v][2]);
    }
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
    close(fd);
    return 0;
}
