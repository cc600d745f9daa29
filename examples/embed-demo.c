/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The work the embedding examples run through their foreign loops: see
 * embed-demo.h.
 */
#define _GNU_SOURCE /* pipe2, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "embed-demo.h"

static double elapsed_ms(EmbedDemo *d)
{
    return (qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - d->start_ns) / 1e6;
}

static void start_remote_thread(EmbedDemo *d);

/* Count a step; once the others ran, the cross-thread one starts. */
static void step_done(EmbedDemo *d, int step, const char *what)
{
    if (d->done[step]) {
        return;
    }
    d->done[step] = true;
    d->steps++;
    printf("[%7.2f ms] %s\n", elapsed_ms(d), what);
    if (d->steps == DEMO_STEP_COUNT - 1 && !d->done[DEMO_STEP_REMOTE_BH]) {
        start_remote_thread(d);
    } else if (d->steps == DEMO_STEP_COUNT) {
        d->all_done(d->opaque);
    }
}

static void on_bh(void *opaque)
{
    step_done(opaque, DEMO_STEP_BH, "bottom half ran");
}

static void on_remote_bh(void *opaque)
{
    step_done(opaque, DEMO_STEP_REMOTE_BH,
              "bottom half scheduled by another thread ran");
}

/* Schedules a bottom half 20 ms in, while the foreign loop sleeps. */
static void *remote_thread(void *opaque)
{
    EmbedDemo *d = opaque;
    struct timespec ts = { 0, 20 * 1000 * 1000 };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue; /* sleep for what is left */
    }
    aio_bh_schedule_oneshot(d->ctx, on_remote_bh, d);
    return NULL;
}

static void start_remote_thread(EmbedDemo *d)
{
    if (pthread_create(&d->thread, NULL, remote_thread, d) != 0) {
        printf("cannot start a thread\n");
        return;
    }
    d->thread_started = true;
}

static void on_timer(void *opaque)
{
    EmbedDemo *d = opaque;

    step_done(d, DEMO_STEP_TIMER, "timer fired; writing into the watched pipe");
    if (write(d->pipe[1], "x", 1) != 1) {
        fprintf(stderr, "%s: write: %s\n", d->prog, strerror(errno));
    }
}

static void on_pipe_readable(void *opaque)
{
    EmbedDemo *d = opaque;
    char buf[16];

    if (read(d->pipe[0], buf, sizeof(buf)) > 0) {
        step_done(d, DEMO_STEP_FD, "fd handler read the pipe");
    }
}

/* Sleep on a context timer, then a file round trip with file I/O. */
static void coroutine_fn demo_coroutine(void *opaque)
{
    EmbedDemo *d = opaque;
    char out[4096], in[sizeof(out)];
    struct iovec wiov = { out, sizeof(out) }, riov = { in, sizeof(in) };
    ssize_t wrote, got;
    int fd, synced;

    qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 10 * 1000 * 1000);
    for (size_t i = 0; i < sizeof(out); i++) {
        out[i] = (char)(i * 7 + 1);
    }
    fd = mkostemp(d->path, O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: mkostemp: %s\n", d->prog, strerror(errno));
        return;
    }
    unlink(d->path);
    wrote = aio_file_co_pwritev(fd, 0, &wiov, 1);
    synced = aio_file_co_fsync(fd, true);
    got = aio_file_co_preadv(fd, 0, &riov, 1);
    close(fd);
    if (wrote != (ssize_t)sizeof(out) || synced != 0 ||
        got != (ssize_t)sizeof(in) || memcmp(in, out, sizeof(in)) != 0) {
        printf("coroutine file I/O failed: wrote %zd, fsync %d, read %zd\n",
               wrote, synced, got);
        return;
    }
    step_done(d, DEMO_STEP_COROUTINE,
              "coroutine slept, then wrote, flushed and read back 4096 "
              "bytes of a file");
}

int embed_demo_start(EmbedDemo *d, AioContext *ctx, const char *prog,
                     void (*all_done)(void *opaque), void *opaque)
{
    *d = (EmbedDemo){ .ctx = ctx, .prog = prog, .all_done = all_done,
                      .opaque = opaque };
    snprintf(d->path, sizeof(d->path), "/tmp/%s-XXXXXX", prog);
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        fprintf(stderr, "%s: pipe: %s\n", prog, strerror(errno));
        return -1;
    }
    d->start_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    aio_set_fd_handler(ctx, d->pipe[0], on_pipe_readable, NULL, NULL, NULL, d);
    aio_timer_init(ctx, &d->timer, QEMU_CLOCK_REALTIME, SCALE_MS, on_timer, d);
    timer_mod(&d->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 30);
    aio_bh_schedule_oneshot(ctx, on_bh, d);
    qemu_coroutine_enter(qemu_coroutine_create(demo_coroutine, d));
    return 0;
}

void embed_demo_finish(EmbedDemo *d)
{
    if (d->thread_started) {
        pthread_join(d->thread, NULL);
    }
    timer_del(&d->timer);
    aio_set_fd_handler(d->ctx, d->pipe[0], NULL, NULL, NULL, NULL, NULL);
    close(d->pipe[0]);
    close(d->pipe[1]);
}
