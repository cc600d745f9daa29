/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio-copy: copy a file with asynchronous reads and writes.
 *
 *   aio-copy [--qd N] [--bs SIZE] [--engine NAME] [--direct] [--verify]
 *            SRC DST
 *   aio-copy [--engine NAME] SRC - | consumer
 *
 * N slots, each with its own buffer, run "read a block, write it, take the
 * next block" with aio_file_preadv()/aio_file_pwritev() callbacks, so that
 * up to N requests are in flight.  How they run depends on the engine:
 * io_uring and Linux AIO hand them to the kernel, poll and epoll to the
 * context's thread pool.  --direct opens both files with O_DIRECT (the
 * buffers are 4096-aligned; the last block is written rounded up to 4096
 * and the copy is cut to the right size with ftruncate()).  --verify
 * reads both files again through the same pipeline and compares them.
 *
 * With DST "-", SRC goes to the standard output, which must be a pipe or a
 * socket, with aio_file_transfer() in chunks of 16 MiB: the kernel moves
 * the pages (splice/sendfile), nothing is copied through this program's
 * memory, and a reader that stops early ends the copy with an error
 * rather than SIGPIPE.  The summary then goes to stderr.
 *
 * Progress goes to stderr: a bar redrawn in place on a terminal, a line a
 * second otherwise.  The summary line (bytes, time, throughput) goes to
 * stdout.  SIGINT/SIGTERM stop it cleanly: no new requests, the ones in
 * flight complete, exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <aioctx.h>

#define ALIGN 4096
#define MAX_QD 1024
#define MAX_BS (64u << 20)
#define BAR_WIDTH 32

typedef struct Copy Copy;

/* One request slot: a buffer (two when verifying) and what it holds. */
typedef struct Slot {
    Copy *cp;
    void *buf[2];
    struct iovec iov[2];
    uint64_t offset;
    size_t len;     /* bytes of the file in this block */
    int pending;    /* requests of this slot in flight */
    ssize_t got[2]; /* verify: bytes read from each file */
} Slot;

struct Copy {
    AioContext *ctx;
    bool verifying;
    int fd_in[2];   /* copy: source, destination; verify: both read */
    uint64_t size;
    uint64_t next;  /* offset of the next block to start */
    uint64_t done;  /* bytes completed */
    int inflight;   /* requests submitted, callback not yet run */
    unsigned qd;
    size_t bs;
    bool direct;
    bool stop;      /* signal: start nothing new */
    int err;        /* first error (-errno), 0 if none */
    const char *err_what;
    uint64_t mismatch; /* verify: lowest differing offset, or UINT64_MAX */
    Slot *slots;
    BlockAIOCB *xfer;  /* to stdout: the transfer in flight */
    int out_fd;        /* to stdout: its descriptor */

    /* progress */
    bool tty;
    QEMUTimer *tick;
    int64_t start_ns;
    int last_len;
};

static const char *progname = "aio-copy";

static int64_t now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

static double mib(uint64_t bytes)
{
    return bytes / (1024.0 * 1024.0);
}

/* ------------------------------------------------------------------ */
/* Progress                                                            */
/* ------------------------------------------------------------------ */

static void progress_print(Copy *cp, bool final)
{
    double secs = (now_ns() - cp->start_ns) / 1e9;
    double rate = secs > 0 ? mib(cp->done) / secs : 0;
    int pct = cp->size ? (int)(cp->done * 100 / cp->size) : 100;
    const char *what = cp->verifying ? "verify" : "copy";

    if (!cp->tty) {
        fprintf(stderr, "%s: %s %3d%% %.1f/%.1f MiB %.1f MiB/s\n", progname,
                what, pct, mib(cp->done), mib(cp->size), rate);
        return;
    }
    char bar[BAR_WIDTH + 1];
    int fill = pct * BAR_WIDTH / 100;

    for (int i = 0; i < BAR_WIDTH; i++) {
        bar[i] = i < fill ? '#' : i == fill ? '>' : '.';
    }
    bar[BAR_WIDTH] = '\0';
    fprintf(stderr, "\r%-6s [%s] %3d%% %.1f/%.1f MiB %.1f MiB/s   ", what,
            bar, pct, mib(cp->done), mib(cp->size), rate);
    if (final) {
        fputc('\n', stderr);
    }
    fflush(stderr);
}

static void progress_tick(void *opaque)
{
    Copy *cp = opaque;

    progress_print(cp, false);
    timer_mod(cp->tick, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                            (cp->tty ? 100 : 1000));
}

/* ------------------------------------------------------------------ */
/* The pipeline                                                        */
/* ------------------------------------------------------------------ */

static void slot_start(Slot *s);

static void fail(Copy *cp, int err, const char *what)
{
    if (!cp->err) {
        cp->err = err;
        cp->err_what = what;
    }
}

/* Length of a request for len bytes of file: rounded up with O_DIRECT. */
static size_t io_len(const Copy *cp, size_t len)
{
    return cp->direct ? (len + ALIGN - 1) & ~(size_t)(ALIGN - 1) : len;
}

static void write_done(void *opaque, int ret)
{
    Slot *s = opaque;
    Copy *cp = s->cp;

    cp->inflight--;
    s->pending--;
    if (ret < 0) {
        fail(cp, ret, "write");
    } else if ((size_t)ret < s->iov[0].iov_len) {
        fail(cp, -ENOSPC, "write (short)");
    } else {
        cp->done += s->len;
    }
    slot_start(s);
}

static void read_done(void *opaque, int ret)
{
    Slot *s = opaque;
    Copy *cp = s->cp;

    cp->inflight--;
    s->pending--;
    if (ret < 0) {
        fail(cp, ret, "read");
    } else if ((size_t)ret < s->len) {
        fail(cp, -EIO, "read (the source got shorter)");
    }
    if (cp->err || cp->stop) {
        slot_start(s); /* starts nothing */
        return;
    }
    /* With O_DIRECT the padding after the end of the file is zeroes. */
    memset((char *)s->buf[0] + s->len, 0, s->iov[0].iov_len - s->len);
    cp->inflight++;
    s->pending++;
    if (!aio_file_pwritev(cp->ctx, cp->fd_in[1], s->offset, &s->iov[0], 1,
                          write_done, s)) {
        cp->inflight--;
        s->pending--;
        fail(cp, -EINVAL, "write submission");
    }
}

/* Verify: the read of file idx (0: SRC, 1: DST) of a block completed. */
static void verify_done(Slot *s, int idx, int ret)
{
    Copy *cp = s->cp;

    cp->inflight--;
    s->got[idx] = ret;
    if (ret < 0) {
        fail(cp, ret, "read");
    }
    if (--s->pending) {
        return;
    }
    if (!cp->err && (s->got[0] != (ssize_t)s->len ||
                     s->got[1] != (ssize_t)s->len ||
                     memcmp(s->buf[0], s->buf[1], s->len))) {
        const char *a = s->buf[0], *b = s->buf[1];
        size_t i = 0;

        while (i < (size_t)s->got[0] && i < (size_t)s->got[1] &&
               a[i] == b[i]) {
            i++;
        }
        if (s->offset + i < cp->mismatch) {
            cp->mismatch = s->offset + i;
        }
    }
    if (!cp->err) {
        cp->done += s->len;
    }
    slot_start(s);
}

static void verify_src_done(void *opaque, int ret)
{
    verify_done(opaque, 0, ret);
}

static void verify_dst_done(void *opaque, int ret)
{
    verify_done(opaque, 1, ret);
}

/* Give the slot the next block, if there is one and nothing went wrong. */
static void slot_start(Slot *s)
{
    Copy *cp = s->cp;

    if (cp->err || cp->stop || cp->next >= cp->size) {
        return;
    }
    s->offset = cp->next;
    s->len = cp->size - cp->next < cp->bs ? (size_t)(cp->size - cp->next)
                                          : cp->bs;
    cp->next += s->len;
    for (int i = 0; i < (cp->verifying ? 2 : 1); i++) {
        s->iov[i].iov_base = s->buf[i];
        s->iov[i].iov_len = io_len(cp, s->len);
        s->got[i] = -1;
    }
    if (!cp->verifying) {
        cp->inflight++;
        s->pending++;
        if (!aio_file_preadv(cp->ctx, cp->fd_in[0], s->offset, &s->iov[0], 1,
                             read_done, s)) {
            cp->inflight--;
            s->pending--;
            fail(cp, -EINVAL, "read submission");
        }
        return;
    }
    for (int i = 0; i < 2; i++) {
        cp->inflight++;
        s->pending++;
        if (!aio_file_preadv(cp->ctx, cp->fd_in[i], s->offset, &s->iov[i], 1,
                             i ? verify_dst_done : verify_src_done, s)) {
            cp->inflight--;
            s->pending--;
            fail(cp, -EINVAL, "read submission");
        }
    }
}

/* Run one pass (copy or verify) to the end; false on an error or a stop. */
static bool run_pass(Copy *cp)
{
    cp->next = cp->done = 0;
    cp->start_ns = now_ns();
    timer_mod(cp->tick, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                            (cp->tty ? 100 : 1000));
    for (unsigned i = 0; i < cp->qd; i++) {
        slot_start(&cp->slots[i]);
    }
    while (cp->inflight > 0) {
        aio_poll(cp->ctx, true);
    }
    timer_del(cp->tick);
    if (!cp->err && !cp->stop) {
        progress_print(cp, true);
    } else if (cp->tty) {
        fputc('\n', stderr);
    }
    return !cp->err && !cp->stop;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

static void on_signal(int signo, void *opaque)
{
    Copy *cp = opaque;

    fprintf(stderr, "%s%s: %s, stopping\n", cp->tty ? "\n" : "", progname,
            strsignal(signo));
    cp->stop = true;
    if (cp->xfer) {
        bdrv_aio_cancel_async(cp->xfer); /* its callback still runs */
    }
}

static int open_file(const char *path, int flags, bool direct)
{
    int fd = open(path, flags | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);

    if (fd < 0) {
        fprintf(stderr, "%s: cannot open %s%s: %s%s\n", progname, path,
                direct ? " with O_DIRECT" : "", strerror(errno),
                direct && errno == EINVAL
                    ? " (the filesystem may not support O_DIRECT)"
                    : "");
    }
    return fd;
}

/* qd slots of one buffer each, two when verify (one per file). */
static bool alloc_slots(Copy *cp, bool verify)
{
    cp->slots = calloc(cp->qd, sizeof(Slot));
    if (!cp->slots) {
        return false;
    }
    for (unsigned i = 0; i < cp->qd; i++) {
        cp->slots[i].cp = cp;
        for (int b = 0; b < (verify ? 2 : 1); b++) {
            if (posix_memalign(&cp->slots[i].buf[b], ALIGN, cp->bs)) {
                return false;
            }
        }
    }
    return true;
}

static void free_slots(Copy *cp)
{
    for (unsigned i = 0; cp->slots && i < cp->qd; i++) {
        free(cp->slots[i].buf[0]);
        free(cp->slots[i].buf[1]);
    }
    free(cp->slots);
}

/* "128K", "1M", "4096": a size in bytes, or 0 when malformed. */
static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);

    if (end == s || *s == '-') {
        return 0;
    }
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    default: break;
    }
    if (*end == 'i' && end[1] == 'B') {
        end += 2;
    } else if (*end == 'B') {
        end++;
    }
    return *end || v > MAX_BS ? 0 : (size_t)v;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: aio-copy [--qd N] [--bs SIZE] [--engine NAME] "
            "[--direct] [--verify] SRC DST\n"
            "  --qd N         requests in flight (default 32, at most %d)\n"
            "  --bs SIZE      block size, e.g. 4096, 64K, 1M (default 128K, "
            "at most 64M)\n"
            "  --engine NAME  poll, epoll, io_uring, linux-aio or auto\n"
            "  --direct       O_DIRECT on both files (SIZE: a multiple of "
            "4096)\n"
            "  --verify       read both files back and compare them "
            "(exit 1 if they differ)\n"
            "  --help         show this text\n"
            "DST \"-\" sends SRC to the standard output (a pipe or a "
            "socket) with\n"
            "aio_file_transfer(): no copy through user space.\n"
            "Progress goes to stderr (a bar on a terminal), the summary to "
            "stdout\n(to stderr with DST \"-\").\n",
            MAX_QD);
}

typedef struct Options {
    unsigned qd;
    size_t bs;
    const char *engine;
    bool direct;
    bool verify;
    const char *src;
    const char *dst;
} Options;

/* Returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, Options *o)
{
    static const struct option opts[] = {
        { "qd", required_argument, NULL, 'q' },
        { "bs", required_argument, NULL, 'b' },
        { "engine", required_argument, NULL, 'e' },
        { "direct", no_argument, NULL, 'd' },
        { "verify", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char *end;
    long n;
    int c;

    while ((c = getopt_long(argc, argv, "q:b:e:dvh", opts, NULL)) != -1) {
        switch (c) {
        case 'q':
            n = strtol(optarg, &end, 10);
            if (*end || !*optarg || n < 1 || n > MAX_QD) {
                fprintf(stderr, "%s: bad queue depth '%s' (1..%d)\n",
                        progname, optarg, MAX_QD);
                return 2;
            }
            o->qd = (unsigned)n;
            break;
        case 'b':
            o->bs = parse_size(optarg);
            if (!o->bs) {
                fprintf(stderr, "%s: bad block size '%s'\n", progname,
                        optarg);
                return 2;
            }
            break;
        case 'e':
            o->engine = optarg;
            break;
        case 'd':
            o->direct = true;
            break;
        case 'v':
            o->verify = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    if (o->direct && o->bs % ALIGN) {
        fprintf(stderr, "%s: with --direct the block size must be a "
                "multiple of %d\n", progname, ALIGN);
        return 2;
    }
    o->src = argv[optind];
    o->dst = argv[optind + 1];
    if (strcmp(o->dst, "-") == 0 && (o->direct || o->verify)) {
        fprintf(stderr, "%s: --direct and --verify need a file as DST, not "
                "the standard output\n", progname);
        return 2;
    }
    return -1;
}

/* Open SRC and DST for copying; refuses to copy a file onto itself. */
static bool open_copy(Copy *cp, const Options *o)
{
    struct stat sst, dst;

    cp->fd_in[0] = open_file(o->src, O_RDONLY, o->direct);
    if (cp->fd_in[0] < 0) {
        return false;
    }
    if (fstat(cp->fd_in[0], &sst) < 0) {
        fprintf(stderr, "%s: %s: %s\n", progname, o->src, strerror(errno));
        return false;
    }
    if (!S_ISREG(sst.st_mode)) {
        fprintf(stderr, "%s: %s is not a regular file\n", progname, o->src);
        return false;
    }
    if (stat(o->dst, &dst) == 0 && dst.st_dev == sst.st_dev &&
        dst.st_ino == sst.st_ino) {
        fprintf(stderr, "%s: %s and %s are the same file\n", progname,
                o->src, o->dst);
        return false;
    }
    cp->fd_in[1] = open_file(o->dst, O_WRONLY | O_CREAT | O_TRUNC,
                             o->direct);
    if (cp->fd_in[1] < 0) {
        return false;
    }
    cp->size = (uint64_t)sst.st_size;
    return true;
}

static bool report_error(Copy *cp, const Options *o)
{
    if (cp->err) {
        fprintf(stderr, "%s: %s failed: %s\n", progname, cp->err_what,
                strerror(-cp->err));
        return true;
    }
    if (cp->stop) {
        fprintf(stderr, "%s: interrupted after %" PRIu64 " bytes; %s is "
                "incomplete\n", progname, cp->done,
                cp->verifying ? "the verification" : o->dst);
        return true;
    }
    return false;
}

/* Copy pass, then cut DST to size (O_DIRECT padded the last block). */
static bool do_copy(Copy *cp, const Options *o)
{
    double secs;

    if (!run_pass(cp)) {
        report_error(cp, o);
        return false;
    }
    if (ftruncate(cp->fd_in[1], (off_t)cp->size) < 0) {
        fprintf(stderr, "%s: ftruncate %s: %s\n", progname, o->dst,
                strerror(errno));
        return false;
    }
    secs = (now_ns() - cp->start_ns) / 1e9;
    printf("%s: copied %" PRIu64 " bytes in %.3f s (%.1f MiB/s; engine %s, "
           "qd %u, bs %zu, %s)\n", progname, cp->size, secs,
           secs > 0 ? mib(cp->size) / secs : 0.0,
           aio_context_get_engine_name(cp->ctx), cp->qd, cp->bs,
           cp->direct ? "O_DIRECT" : "buffered");
    return true;
}

/* ------------------------------------------------------------------ */
/* To stdout, without copies                                           */
/* ------------------------------------------------------------------ */

#define PIPE_CHUNK (16ULL << 20)

static void pipe_next(Copy *cp);

static void pipe_done(void *opaque, int64_t done, int error)
{
    Copy *cp = opaque;
    uint64_t asked = cp->size - cp->next < PIPE_CHUNK ? cp->size - cp->next
                                                      : PIPE_CHUNK;

    cp->xfer = NULL;
    cp->inflight--;
    cp->done += (uint64_t)done;
    cp->next += (uint64_t)done;
    if (error == -ECANCELED && cp->stop) {
        return; /* interrupted: reported as such */
    }
    if (error) {
        fail(cp, error, "transfer to stdout");
        return;
    }
    if ((uint64_t)done < asked) {
        fail(cp, -EIO, "transfer to stdout (the source shrank)");
        return;
    }
    pipe_next(cp);
}

static void pipe_next(Copy *cp)
{
    uint64_t left = cp->size - cp->next;

    if (left == 0 || cp->stop || cp->err) {
        return;
    }
    cp->inflight++;
    cp->xfer = aio_file_transfer(cp->ctx, cp->out_fd, cp->fd_in[0], cp->next,
                                 left < PIPE_CHUNK ? left : PIPE_CHUNK,
                                 pipe_done, cp);
}

/* SRC to the standard output (a pipe or a socket). */
static bool do_to_stdout(Copy *cp, const Options *o)
{
    struct stat st;
    int flags = -1;
    double secs;
    bool ok;

    cp->fd_in[0] = open_file(o->src, O_RDONLY, false);
    if (cp->fd_in[0] < 0) {
        return false;
    }
    if (fstat(cp->fd_in[0], &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: %s is not a regular file\n", progname, o->src);
        return false;
    }
    cp->size = (uint64_t)st.st_size;
    cp->out_fd = STDOUT_FILENO;
    if (fstat(cp->out_fd, &st) < 0 ||
        (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))) {
        fprintf(stderr, "%s: with DST \"-\" the standard output must be a "
                "pipe or a socket (use a file name for files)\n", progname);
        return false;
    }
    if (S_ISSOCK(st.st_mode)) {
        /* A socket must not block the loop: non-blocking while we write. */
        flags = fcntl(cp->out_fd, F_GETFL);
        if (flags >= 0 && !(flags & O_NONBLOCK)) {
            fcntl(cp->out_fd, F_SETFL, flags | O_NONBLOCK);
        }
    }
    cp->next = cp->done = 0;
    cp->start_ns = now_ns();
    timer_mod(cp->tick, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                            (cp->tty ? 100 : 1000));
    pipe_next(cp);
    while (cp->inflight > 0) {
        aio_poll(cp->ctx, true);
    }
    timer_del(cp->tick);
    if (flags >= 0 && !(flags & O_NONBLOCK)) {
        fcntl(cp->out_fd, F_SETFL, flags);
    }
    ok = !cp->err && !cp->stop;
    if (!ok) {
        if (cp->tty) {
            fputc('\n', stderr);
        }
        report_error(cp, o);
        return false;
    }
    progress_print(cp, true);
    secs = (now_ns() - cp->start_ns) / 1e9;
    fprintf(stderr, "%s: sent %" PRIu64 " bytes to stdout in %.3f s (%.1f "
            "MiB/s; engine %s, aio_file_transfer)\n", progname, cp->size,
            secs, secs > 0 ? mib(cp->size) / secs : 0.0,
            aio_context_get_engine_name(cp->ctx));
    return true;
}

/* Re-read both files and compare them; false when they differ. */
static bool do_verify(Copy *cp, const Options *o)
{
    struct stat st;

    close(cp->fd_in[0]);
    close(cp->fd_in[1]);
    cp->fd_in[0] = open_file(o->src, O_RDONLY, o->direct);
    cp->fd_in[1] = open_file(o->dst, O_RDONLY, o->direct);
    if (cp->fd_in[0] < 0 || cp->fd_in[1] < 0) {
        return false;
    }
    if (fstat(cp->fd_in[1], &st) < 0 || (uint64_t)st.st_size != cp->size) {
        fprintf(stderr, "%s: verify failed: %s has %jd bytes, %s %" PRIu64
                "\n", progname, o->dst, (intmax_t)st.st_size, o->src,
                cp->size);
        return false;
    }
    cp->verifying = true;
    cp->mismatch = UINT64_MAX;
    if (!run_pass(cp)) {
        report_error(cp, o);
        return false;
    }
    if (cp->mismatch != UINT64_MAX) {
        fprintf(stderr, "%s: verify failed: the files differ at byte %"
                PRIu64 "\n", progname, cp->mismatch);
        return false;
    }
    printf("%s: verified %" PRIu64 " bytes: identical\n", progname,
           cp->size);
    return true;
}

int main(int argc, char **argv)
{
    Options o = { .qd = 32, .bs = 128 * 1024 };
    AioContextOptions ctx_opts = { .engine = NULL };
    Copy cp = { .fd_in = { -1, -1 } };
    Error *err = NULL;
    int ret, status = 1;

    ret = parse_options(argc, argv, &o);
    if (ret >= 0) {
        return ret;
    }
    cp.qd = o.qd;
    cp.bs = o.bs;
    cp.direct = o.direct;
    cp.tty = isatty(STDERR_FILENO);

    ctx_opts.engine = o.engine;
    cp.ctx = aio_context_new_with_options(&ctx_opts, &err);
    if (!cp.ctx) {
        fprintf(stderr, "%s: %s\n", progname, error_get_pretty(err));
        error_free(err);
        return 1;
    }
    /* Before the thread pool starts its workers. */
    if (aio_context_add_signal(cp.ctx, SIGINT, on_signal, &cp, &err) < 0 ||
        aio_context_add_signal(cp.ctx, SIGTERM, on_signal, &cp, &err) < 0) {
        fprintf(stderr, "%s: %s\n", progname, error_get_pretty(err));
        error_free(err);
        aio_context_unref(cp.ctx);
        return 1;
    }
    cp.tick = aio_timer_new(cp.ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                            progress_tick, &cp);
    if (!alloc_slots(&cp, o.verify)) {
        fprintf(stderr, "%s: out of memory for %u buffers of %zu bytes\n",
                progname, cp.qd, cp.bs);
        goto out;
    }
    if (strcmp(o.dst, "-") == 0) {
        if (!do_to_stdout(&cp, &o)) {
            goto out;
        }
        status = 0;
        goto out;
    }
    if (!open_copy(&cp, &o) || !do_copy(&cp, &o)) {
        goto out;
    }
    if (o.verify && !do_verify(&cp, &o)) {
        goto out;
    }
    status = 0;

out:
    timer_free(cp.tick);
    aio_context_unref(cp.ctx);
    for (int i = 0; i < 2; i++) {
        if (cp.fd_in[i] >= 0) {
            close(cp.fd_in[i]);
        }
    }
    free_slots(&cp);
    return status;
}
