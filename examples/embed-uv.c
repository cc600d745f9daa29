/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * embed-uv: an AioContext driven by a libuv loop.  The library knows
 * nothing of libuv: the driver below is this program's own code, built on
 * aio_context_get_pollfd(), aio_prepare(), aio_compute_timeout() and
 * aio_dispatch() (see <aioctx/loop.h> and docs/embedding.md):
 *   - a uv_poll_t watches the context's descriptor (its callback has
 *     nothing to do: becoming readable only has to wake libuv up);
 *   - a uv_prepare_t, run just before libuv computes its sleep, calls
 *     aio_prepare() and bounds the sleep by the context's next timer with
 *     a uv_timer_t (or forbids sleeping with a uv_idle_t when the context
 *     has work already);
 *   - a uv_check_t, run right after libuv's poll, calls aio_dispatch().
 * Copy aio_uv_driver_start()/aio_uv_driver_stop() into a libuv program to
 * run a context on any uv_loop_t.
 *
 *   embed-uv [--engine NAME] [--idle MS] [--help]
 *
 * With the context attached to the default libuv loop and only uv_run()
 * running, it checks that everything a context does works through the
 * embedding, printing one line per step:
 *   - a bottom half scheduled from this thread, and one from another
 *     thread while libuv sleeps;
 *   - a timer of the context, whose callback writes into a pipe;
 *   - the context's fd handler on that pipe;
 *   - a coroutine that sleeps on a timer, then writes, flushes and reads
 *     back a temporary file with the context's asynchronous file I/O.
 * Then, with --idle MS, it lets the loop sit idle for MS milliseconds and
 * prints its CPU time and loop iterations over that time, which must both
 * stay near zero (nothing spins).  Exit status 0 when every step ran.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <aioctx.h>

#include "embed-demo.h"

/* ------------------------------------------------------------------ */
/* The driver: an AioContext in a uv_loop_t                            */
/* ------------------------------------------------------------------ */

typedef struct AioUvDriver {
    AioContext *ctx;
    uv_poll_t poll;         /* the context's descriptor */
    uv_prepare_t prepare;   /* aio_prepare(), the sleep's bound */
    uv_check_t check;       /* aio_dispatch() */
    uv_timer_t timer;       /* wakes libuv for the context's next timer */
    uv_idle_t idle;         /* keeps libuv from sleeping when work waits */
    unsigned prepares;      /* loop iterations that looked at the context */
    unsigned dispatches;
    int closing;            /* handles still to close */
} AioUvDriver;

static void aio_uv_noop_timer(uv_timer_t *t)
{
    (void)t;
}

static void aio_uv_noop_idle(uv_idle_t *i)
{
    (void)i;
}

/* Readable: libuv is awake now, and the check handle dispatches. */
static void aio_uv_poll_cb(uv_poll_t *p, int status, int events)
{
    (void)p;
    (void)status;
    (void)events;
}

/*
 * Before libuv sleeps: announce the sleep to the context (from now on
 * aio_notify() and bottom halves from other threads make its descriptor
 * readable) and bound libuv's sleep by the context's next timer.  libuv
 * computes its poll timeout after the prepare handles ran, from its
 * timers and idle handles.
 */
static void aio_uv_prepare_cb(uv_prepare_t *p)
{
    AioUvDriver *drv = p->data;
    int64_t ns;

    drv->prepares++;
    ns = aio_prepare(drv->ctx) ? 0 : aio_compute_timeout(drv->ctx);
    if (ns == 0) {
        uv_idle_start(&drv->idle, aio_uv_noop_idle);
        uv_timer_stop(&drv->timer);
        return;
    }
    uv_idle_stop(&drv->idle);
    if (ns < 0) {
        uv_timer_stop(&drv->timer);
        return;
    }
    /* libuv counts in ms: round up, so that the timer is due on waking. */
    uv_timer_start(&drv->timer, aio_uv_noop_timer, (ns + 999999) / 1000000,
                   0);
}

/* After libuv's poll, whatever woke it: run what is ready. */
static void aio_uv_check_cb(uv_check_t *c)
{
    AioUvDriver *drv = c->data;

    drv->dispatches++;
    aio_dispatch(drv->ctx);
}

/*
 * Start running ctx on loop (the loop's thread becomes ctx's home thread).
 * The driver holds a reference on ctx until it is stopped.  Returns 0 or a
 * negative errno (libuv's error, or aio_context_get_pollfd()'s when the
 * context has no pollable descriptor).
 */
static int aio_uv_driver_start(AioUvDriver *drv, uv_loop_t *loop,
                               AioContext *ctx)
{
    int fd = aio_context_get_pollfd(ctx);
    int ret;

    if (fd < 0) {
        return fd; /* -errno */
    }
    memset(drv, 0, sizeof(*drv));
    ret = uv_poll_init(loop, &drv->poll, fd);
    if (ret < 0) {
        return ret;
    }
    aio_context_ref(ctx);
    drv->ctx = ctx;
    uv_prepare_init(loop, &drv->prepare);
    uv_check_init(loop, &drv->check);
    uv_timer_init(loop, &drv->timer);
    uv_idle_init(loop, &drv->idle);
    drv->poll.data = drv->prepare.data = drv->check.data = drv;
    drv->timer.data = drv->idle.data = drv;
    uv_poll_start(&drv->poll, UV_READABLE, aio_uv_poll_cb);
    uv_prepare_start(&drv->prepare, aio_uv_prepare_cb);
    uv_check_start(&drv->check, aio_uv_check_cb);
    return 0;
}

static void aio_uv_closed(uv_handle_t *h)
{
    AioUvDriver *drv = h->data;

    if (--drv->closing == 0) {
        aio_context_unref(drv->ctx);
        drv->ctx = NULL;
    }
}

/*
 * Stop running the context and close the handles; the context reference
 * is dropped once libuv has closed them all (run the loop once more).
 */
static void aio_uv_driver_stop(AioUvDriver *drv)
{
    drv->closing = 5;
    uv_close((uv_handle_t *)&drv->poll, aio_uv_closed);
    uv_close((uv_handle_t *)&drv->prepare, aio_uv_closed);
    uv_close((uv_handle_t *)&drv->check, aio_uv_closed);
    uv_close((uv_handle_t *)&drv->timer, aio_uv_closed);
    uv_close((uv_handle_t *)&drv->idle, aio_uv_closed);
}

/* ------------------------------------------------------------------ */
/* The demonstration                                                   */
/* ------------------------------------------------------------------ */

typedef struct Demo {
    EmbedDemo demo; /* the work (embed-demo.h) */
    AioContext *ctx;
    AioUvDriver *driver;
    uv_loop_t *loop;
    uv_timer_t idle_end;    /* ends the idle time */
    uv_timer_t give_up;
    int idle_ms;
    struct timespec idle_wall0;
    struct rusage idle_ru0;
    unsigned idle_prepares0;
    bool timed_out;
} Demo;

static double ts_ms(const struct timeval *tv)
{
    return tv->tv_sec * 1e3 + tv->tv_usec / 1e3;
}

static void stop_everything(Demo *d)
{
    uv_close((uv_handle_t *)&d->idle_end, NULL);
    uv_close((uv_handle_t *)&d->give_up, NULL);
    aio_uv_driver_stop(d->driver);
}

static void idle_over(uv_timer_t *t)
{
    Demo *d = t->data;
    struct timespec now;
    struct rusage ru;
    double wall, cpu;

    clock_gettime(CLOCK_MONOTONIC, &now);
    getrusage(RUSAGE_SELF, &ru);
    wall = (now.tv_sec - d->idle_wall0.tv_sec) * 1e3 +
           (now.tv_nsec - d->idle_wall0.tv_nsec) / 1e6;
    cpu = ts_ms(&ru.ru_utime) + ts_ms(&ru.ru_stime) -
          ts_ms(&d->idle_ru0.ru_utime) - ts_ms(&d->idle_ru0.ru_stime);
    printf("idle: wall %.0f ms, cpu %.1f ms (%.2f%%), %u loop iterations\n",
           wall, cpu, wall > 0 ? 100 * cpu / wall : 0.0,
           d->driver->prepares - d->idle_prepares0);
    stop_everything(d);
}

/* Every step ran (called from the last one): idle, or stop. */
static void all_done(void *opaque)
{
    Demo *d = opaque;

    printf("all %d steps ran through libuv (%u prepares, %u dispatches)\n",
           d->demo.steps, d->driver->prepares, d->driver->dispatches);
    uv_timer_stop(&d->give_up);
    if (d->idle_ms <= 0) {
        stop_everything(d);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &d->idle_wall0);
    getrusage(RUSAGE_SELF, &d->idle_ru0);
    d->idle_prepares0 = d->driver->prepares;
    uv_timer_start(&d->idle_end, idle_over, d->idle_ms, 0);
}

static void give_up(uv_timer_t *t)
{
    Demo *d = t->data;

    printf("timed out with %d of %d steps done\n", d->demo.steps, DEMO_STEP_COUNT);
    d->timed_out = true;
    stop_everything(d);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: embed-uv [--engine NAME] [--idle MS]\n"
            "  --engine NAME  poll, epoll, io_uring, linux-aio or auto\n"
            "  --idle MS      then sit idle MS ms and print the CPU time "
            "used\n"
            "  --help         show this text\n"
            "Runs an AioContext inside a libuv loop: bottom halves, a timer, "
            "an fd handler,\na coroutine and file I/O, then exits 0.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "engine", required_argument, NULL, 'e' },
        { "idle", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    AioContextOptions ctx_opts = { .engine = NULL };
    Demo d = { 0 };
    AioUvDriver driver;
    Error *err = NULL;
    char *end;
    int c, ret;

    while ((c = getopt_long(argc, argv, "e:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            ctx_opts.engine = optarg;
            break;
        case 'i':
            d.idle_ms = (int)strtol(optarg, &end, 10);
            if (*end || d.idle_ms < 0) {
                fprintf(stderr, "embed-uv: bad idle time '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    d.ctx = aio_context_new_with_options(&ctx_opts, &err);
    if (!d.ctx) {
        fprintf(stderr, "embed-uv: %s\n", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    d.loop = uv_default_loop();
    ret = aio_uv_driver_start(&driver, d.loop, d.ctx);
    if (ret < 0) {
        fprintf(stderr, "embed-uv: %s\n", uv_strerror(ret));
        return 1;
    }
    d.driver = &driver;
    /* Coroutines find the context of the thread they run in. */
    qemu_set_current_aio_context(d.ctx);
    printf("embed-uv: engine %s, context descriptor %d\n",
           aio_context_get_engine_name(d.ctx),
           aio_context_get_pollfd(d.ctx));

    if (embed_demo_start(&d.demo, d.ctx, "embed-uv", all_done, &d) < 0) {
        return 1;
    }
    uv_timer_init(d.loop, &d.idle_end);
    uv_timer_init(d.loop, &d.give_up);
    d.idle_end.data = d.give_up.data = &d;
    uv_timer_start(&d.give_up, give_up, 10000, 0);

    /* Returns once every handle is closed (stop_everything()). */
    uv_run(d.loop, UV_RUN_DEFAULT);

    embed_demo_finish(&d.demo);
    qemu_set_current_aio_context(NULL);
    uv_loop_close(d.loop);
    aio_context_unref(d.ctx);
    printf("embed-uv: %d of %d steps done\n", d.demo.steps, DEMO_STEP_COUNT);
    return d.demo.steps == DEMO_STEP_COUNT && !d.timed_out ? 0 : 1;
}
