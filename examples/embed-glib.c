/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * embed-glib: an AioContext driven by a glib GMainLoop through a GSource,
 * the way QEMU's aio_get_g_source() attaches its contexts to glib.  The
 * library itself knows nothing of glib: the GSource below is this
 * program's own code, built on aio_context_get_pollfd(), aio_prepare(),
 * aio_compute_timeout() and aio_dispatch() (see <aioctx/loop.h> and
 * docs/embedding.md).  Copy aio_gsource_new() into a glib program to
 * attach a context to any GMainContext.
 *
 *   embed-glib [--engine NAME] [--idle MS] [--help]
 *
 * With the context attached to the default GMainContext and only
 * g_main_loop_run() running, it checks that everything a context does
 * works through the embedding, printing one line per step:
 *   - a bottom half scheduled from this thread, and one from another
 *     thread while glib sleeps;
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
#include <glib.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <aioctx.h>

#include "embed-demo.h"

/* ------------------------------------------------------------------ */
/* The GSource: an AioContext in a GMainContext                        */
/* ------------------------------------------------------------------ */

typedef struct AioGSource {
    GSource source;
    AioContext *ctx;
    gpointer fd_tag;        /* the context's descriptor in the GSource */
    unsigned prepares;      /* loop iterations that looked at the context */
    unsigned dispatches;
} AioGSource;

/* glib's timeout in ms for aio_compute_timeout()'s ns, rounded up. */
static gint ns_to_glib_ms(int64_t ns)
{
    if (ns < 0) {
        return -1;
    }
    if (ns / 1000000 >= INT_MAX) {
        return INT_MAX;
    }
    return (gint)((ns + 999999) / 1000000);
}

/*
 * Before glib sleeps: announce the sleep to the context (from now on
 * aio_notify() and bottom halves from other threads make its descriptor
 * readable) and bound glib's sleep by the context's next timer.  Ready at
 * once when the context has work already.
 */
static gboolean aio_gsource_prepare(GSource *source, gint *timeout)
{
    AioGSource *as = (AioGSource *)source;
    int64_t ns;

    as->prepares++;
    if (aio_prepare(as->ctx)) {
        *timeout = 0;
        return TRUE;
    }
    ns = aio_compute_timeout(as->ctx);
    *timeout = ns_to_glib_ms(ns);
    return ns == 0;
}

/*
 * After glib's poll: ready when the descriptor polled readable (handlers,
 * file completions, wake-ups) or a timer or bottom half is due.  When it
 * is not, dispatch is skipped and the sleep announcement stays until the
 * next prepare: harmless, a cross-thread bottom half meanwhile only costs
 * one eventfd write, which the next iteration consumes.
 */
static gboolean aio_gsource_check(GSource *source)
{
    AioGSource *as = (AioGSource *)source;

    if (g_source_query_unix_fd(source, as->fd_tag) &
        (G_IO_IN | G_IO_HUP | G_IO_ERR)) {
        return TRUE;
    }
    return aio_compute_timeout(as->ctx) == 0;
}

/* Run what is ready: bottom halves, handlers, timers, completions. */
static gboolean aio_gsource_dispatch(GSource *source, GSourceFunc callback,
                                     gpointer user_data)
{
    AioGSource *as = (AioGSource *)source;

    (void)callback;
    (void)user_data;
    as->dispatches++;
    aio_dispatch(as->ctx);
    return G_SOURCE_CONTINUE;
}

static void aio_gsource_finalize(GSource *source)
{
    AioGSource *as = (AioGSource *)source;

    aio_context_unref(as->ctx);
}

static GSourceFuncs aio_gsource_funcs = {
    .prepare = aio_gsource_prepare,
    .check = aio_gsource_check,
    .dispatch = aio_gsource_dispatch,
    .finalize = aio_gsource_finalize,
};

/*
 * A GSource that runs ctx (it holds a reference on it until the source is
 * finalized).  Attach it with g_source_attach(); the GMainContext's thread
 * becomes ctx's home thread.  Returns NULL with errno set when the context
 * has no pollable descriptor (out of descriptors or memory).
 */
static GSource *aio_gsource_new(AioContext *ctx)
{
    int fd = aio_context_get_pollfd(ctx);
    GSource *source;
    AioGSource *as;

    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    source = g_source_new(&aio_gsource_funcs, sizeof(AioGSource));
    as = (AioGSource *)source;
    aio_context_ref(ctx);
    as->ctx = ctx;
    as->fd_tag = g_source_add_unix_fd(source, fd, G_IO_IN);
    g_source_set_name(source, "aioctx");
    return source;
}

/* ------------------------------------------------------------------ */
/* The demonstration                                                   */
/* ------------------------------------------------------------------ */

typedef struct Demo {
    EmbedDemo demo; /* the work (embed-demo.h) */
    AioContext *ctx;
    AioGSource *source;
    GMainLoop *loop;
    int idle_ms;
    struct timespec idle_wall0;
    struct rusage idle_ru0;
    unsigned idle_prepares0;
    guint give_up_id;
} Demo;

static double ts_ms(const struct timeval *tv)
{
    return tv->tv_sec * 1e3 + tv->tv_usec / 1e3;
}

static gboolean idle_over(gpointer opaque)
{
    Demo *d = opaque;
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
           d->source->prepares - d->idle_prepares0);
    g_main_loop_quit(d->loop);
    return G_SOURCE_REMOVE;
}

/* Every step ran (called from the last one): idle, or quit. */
static void all_done(void *opaque)
{
    Demo *d = opaque;

    printf("all %d steps ran through glib (%u prepares, %u dispatches)\n",
           d->demo.steps, d->source->prepares, d->source->dispatches);
    if (d->idle_ms <= 0) {
        g_main_loop_quit(d->loop);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &d->idle_wall0);
    getrusage(RUSAGE_SELF, &d->idle_ru0);
    d->idle_prepares0 = d->source->prepares;
    g_timeout_add(d->idle_ms, idle_over, d);
}

static gboolean give_up(gpointer opaque)
{
    Demo *d = opaque;

    printf("timed out with %d of %d steps done\n", d->demo.steps, DEMO_STEP_COUNT);
    d->give_up_id = 0;
    g_main_loop_quit(d->loop);
    return G_SOURCE_REMOVE;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: embed-glib [--engine NAME] [--idle MS]\n"
            "  --engine NAME  poll, epoll, io_uring, linux-aio or auto\n"
            "  --idle MS      then sit idle MS ms and print the CPU time "
            "used\n"
            "  --help         show this text\n"
            "Runs an AioContext inside a glib GMainLoop through a GSource: "
            "bottom halves,\na timer, an fd handler, a coroutine and file "
            "I/O, then exits 0.\n");
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
    GSource *source;
    Error *err = NULL;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "e:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            ctx_opts.engine = optarg;
            break;
        case 'i':
            d.idle_ms = (int)strtol(optarg, &end, 10);
            if (*end || d.idle_ms < 0) {
                fprintf(stderr, "embed-glib: bad idle time '%s'\n", optarg);
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
        fprintf(stderr, "embed-glib: %s\n", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    source = aio_gsource_new(d.ctx);
    if (!source) {
        perror("embed-glib: aio_context_get_pollfd");
        return 1;
    }
    d.source = (AioGSource *)source;
    g_source_attach(source, NULL);
    d.loop = g_main_loop_new(NULL, FALSE);
    /* Coroutines find the context of the thread they run in. */
    qemu_set_current_aio_context(d.ctx);
    printf("embed-glib: engine %s, context descriptor %d\n",
           aio_context_get_engine_name(d.ctx),
           aio_context_get_pollfd(d.ctx));

    if (embed_demo_start(&d.demo, d.ctx, "embed-glib", all_done, &d) < 0) {
        return 1;
    }
    d.give_up_id = g_timeout_add(10000, give_up, &d);

    g_main_loop_run(d.loop);

    embed_demo_finish(&d.demo);
    if (d.give_up_id) {
        g_source_remove(d.give_up_id);
    }
    qemu_set_current_aio_context(NULL);
    g_source_destroy(source);
    g_source_unref(source);   /* drops the source's context reference */
    g_main_loop_unref(d.loop);
    aio_context_unref(d.ctx);
    printf("embed-glib: %d of %d steps done\n", d.demo.steps, DEMO_STEP_COUNT);
    return d.demo.steps == DEMO_STEP_COUNT ? 0 : 1;
}
