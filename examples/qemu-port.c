/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qemu-port: a small program written against QEMU's AioContext API, after
 * its move to libaioctx (docs/porting-from-qemu.md walks through the
 * changes, line by line).
 *
 *   qemu-port [--workers N] FILE
 *
 * It adds up the bytes of FILE the QEMU way: sum_file_aio() returns a
 * BlockAIOCB (with no block layer behind it) and completes it through a
 * callback in the caller's context; N coroutines run in an IOThread,
 * share the work under a CoMutex, read the file with asynchronous file
 * I/O and hand the adding to the IOThread's thread pool; the last one
 * schedules a bottom half back in the caller's context.  A timer of the
 * main context is the watchdog.  Prints "FILE: BYTES bytes, sum SUM" and
 * exits 0, or prints the Error and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Was: #include "qemu/osdep.h", "block/aio.h", "qemu/coroutine.h",
 * "block/thread-pool.h", "sysemu/iothread.h", "qapi/error.h",
 * "qemu/main-loop.h".
 */
#include <aioctx.h>

#define CHUNK (64 * 1024)

typedef struct SumAIOCB {
    BlockAIOCB common;      /* first: qemu_aio_get() fills it */
    AioContext *home;       /* where the completion callback runs */
    int fd;
    uint64_t size;
    CoMutex lock;           /* guards next and sum */
    uint64_t next;          /* offset of the next chunk to read */
    uint64_t sum;
    int running;            /* worker coroutines still running */
    int ret;                /* 0 or the first -errno */
} SumAIOCB;

static const AIOCBInfo sum_aiocb_info = {
    .aiocb_size = sizeof(SumAIOCB),
};

typedef struct Chunk {
    const uint8_t *buf;
    size_t len;
    uint64_t sum;
} Chunk;

/* Runs in a worker thread of the IOThread's pool. */
static int sum_chunk(void *opaque)
{
    Chunk *c = opaque;

    for (size_t i = 0; i < c->len; i++) {
        c->sum += c->buf[i];
    }
    return 0;
}

/* Back in the caller's context: complete the request. */
static void sum_complete_bh(void *opaque)
{
    SumAIOCB *acb = opaque;

    close(acb->fd);
    acb->common.cb(acb->common.opaque, acb->ret);
    qemu_aio_unref(acb);
}

/* One of the workers, running in the IOThread. */
static void coroutine_fn sum_worker(void *opaque)
{
    SumAIOCB *acb = opaque;
    uint8_t *buf = malloc(CHUNK);      /* was: g_malloc(CHUNK) */

    while (buf && acb->ret == 0) {
        struct iovec iov = { buf, CHUNK };
        Chunk chunk = { .buf = buf };
        uint64_t offset;
        ssize_t n;

        qemu_co_mutex_lock(&acb->lock);
        offset = acb->next;
        acb->next += CHUNK;
        qemu_co_mutex_unlock(&acb->lock);
        if (offset >= acb->size) {
            break;
        }
        /* Was: blk_co_pread(); there is no block layer. */
        n = aio_file_co_preadv(acb->fd, offset, &iov, 1);
        if (n < 0) {
            acb->ret = (int)n;
            break;
        }
        chunk.len = (size_t)n;
        thread_pool_submit_co(sum_chunk, &chunk);

        qemu_co_mutex_lock(&acb->lock);
        acb->sum += chunk.sum;
        qemu_co_mutex_unlock(&acb->lock);
    }
    if (!buf) {
        acb->ret = -ENOMEM;
    }
    free(buf);                        /* was: g_free(buf) */
    /* Every worker runs in the IOThread: no other thread touches this. */
    if (--acb->running == 0) {
        aio_bh_schedule_oneshot(acb->home, sum_complete_bh, acb);
    }
}

/*
 * Add up the bytes of path with workers coroutines in iothread; cb runs
 * in the calling thread's context when done.  Returns the request, or
 * NULL with *errp set.
 */
static BlockAIOCB *sum_file_aio(const char *path, int workers,
                                IOThread *iothread, BlockCompletionFunc *cb,
                                void *opaque, Error **errp)
{
    AioContext *io_ctx = iothread_get_aio_context(iothread);
    SumAIOCB *acb;
    struct stat st;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not open '%s'", path);
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "Could not stat '%s'", path);
        close(fd);
        return NULL;
    }
    acb = qemu_aio_get(&sum_aiocb_info, NULL, cb, opaque);
    acb->home = qemu_get_current_aio_context();
    acb->fd = fd;
    acb->size = (uint64_t)st.st_size;
    acb->running = workers;
    qemu_co_mutex_init(&acb->lock);
    for (int i = 0; i < workers; i++) {
        aio_co_schedule(io_ctx, qemu_coroutine_create(sum_worker, acb));
    }
    return &acb->common;
}

typedef struct Result {
    bool done;                        /* was: gboolean */
    int ret;
    BlockAIOCB *acb;
    uint64_t sum;
} Result;

/* The request's callback; its control block is valid until we return. */
static void sum_done(void *opaque, int ret)
{
    Result *r = opaque;

    r->done = true;
    r->ret = ret;
    r->sum = ((SumAIOCB *)r->acb)->sum;
}

static void watchdog(void *opaque)
{
    Result *r = opaque;

    r->done = true;
    r->ret = -ETIMEDOUT;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "workers", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    Result result = { 0 };
    Error *err = NULL;
    AioContext *ctx;
    IOThread *iothread;
    QEMUTimer *timer;
    int workers = 4, c;

    while ((c = getopt_long(argc, argv, "w:h", opts, NULL)) != -1) {
        if (c == 'w' && atoi(optarg) > 0) {
            workers = atoi(optarg);
            continue;
        }
        fprintf(c == 'h' ? stdout : stderr,
                "usage: qemu-port [--workers N] FILE\n");
        return c == 'h' ? 0 : 2;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: qemu-port [--workers N] FILE\n");
        return 2;
    }

    /* Was: qemu_init_main_loop(&error_fatal); ctx = qemu_get_aio_context(); */
    ctx = aio_context_new(&error_fatal);
    qemu_set_current_aio_context(ctx);
    iothread = iothread_create("sum", &error_fatal);

    /* Was: timer_new_ms(QEMU_CLOCK_REALTIME, watchdog, &result); */
    timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, watchdog,
                          &result);
    timer_mod(timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10000);

    result.acb = sum_file_aio(argv[optind], workers, iothread, sum_done,
                              &result, &err);
    if (!result.acb) {
        error_report_err(err);
        return 1;
    }
    /* Was: AIO_WAIT_WHILE(ctx, !result.done); */
    while (!result.done) {
        aio_poll(ctx, true);
    }
    timer_free(timer);
    iothread_destroy(iothread);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);

    if (result.ret < 0) {
        fprintf(stderr, "qemu-port: %s: %s\n", argv[optind],
                strerror(-result.ret));
        return 1;
    }
    printf("%s: sum %" PRIu64 "\n", argv[optind], result.sum);
    return 0;
}
