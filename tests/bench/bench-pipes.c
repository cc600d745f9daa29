/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W4 of bench-workloads.md: the libevent-style pipe benchmark, the cost of
 * dispatching fds as the number of idle fds grows.
 *
 * P AF_UNIX stream socketpairs (P = 100, 1000, 9900), a persistent read
 * watcher on every pair's read end.  One iteration writes one byte into
 * A = 100 evenly spaced pairs (pair i*P/A), sets writes = W = 100 and
 * fired = A, then runs the loop non-blocking until count == fired.  The
 * read callback of pair i reads its byte (count++) and, while writes > 0,
 * writes one byte into pair (i+1) mod P (writes--, fired++): A+W = 200
 * callbacks per iteration.  Only the "run until count == fired" part is
 * timed.  A run is 2 warm-up iterations and 25 timed ones; its figure is
 * the median of the 25, in us per iteration.
 *
 * Variants: libaioctx on every available engine, raw level-triggered
 * epoll (epoll_wait, 1024 events, timeout 0), raw poll (the full array
 * every pass), libev (EVBACKEND_EPOLL, ev_io, EVRUN_NOWAIT), libevent
 * (EV_READ|EV_PERSIST, EVLOOP_ONCE|EVLOOP_NONBLOCK), libuv (uv_poll_t,
 * UV_RUN_NOWAIT); missing libraries are compiled out.  Within each run
 * repetition every selected variant runs once, libaioctx engines
 * alternating with the peers, starting one variant later each repetition
 * (the variant that runs first after the sockets are made is slower).
 *
 * Usage: bench-pipes [substring of "P=<n>/<variant>"...]  (RUNS=n)
 * e.g. "bench-pipes P=1000/ io_uring raw-epoll".
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <aioctx.h>

#ifdef HAVE_LIBEV
#include <ev.h>
/* libevent's headers define EV_READ as a macro with another value. */
static const int w4_libev_read = EV_READ;
#endif
#ifdef HAVE_LIBUV
#include <uv.h>
#endif
#ifdef HAVE_LIBEVENT
#include <event2/event.h>
#endif

#include "bench-util.h"

#define W4_ACTIVE 100 /* A */
#define W4_WRITES 100 /* W */
#define W4_WARMUP 2
#define W4_ITERS 25
#define W4_RAW_EVENTS 1024

static const int w4_sizes[] = { 100, 1000, 9900 };
#define W4_NSIZES ((int)(sizeof(w4_sizes) / sizeof(w4_sizes[0])))

/* The socketpairs and the counters every variant's callback updates. */
typedef struct W4 {
    int p;
    int (*pairs)[2]; /* [0] is watched for reading, [1] is written */
    int count;
    int writes;
    int fired;
    int failed; /* reads or writes that did not move exactly one byte */
    void *loop; /* the variant's loop state */
} W4;

/* A variant: set up its loop on w, run it once without blocking, undo. */
typedef struct W4Ops {
    const char *name;
    const char *engine; /* libaioctx engine, NULL for peers */
    bool (*setup)(W4 *w, const char *engine, char *why, size_t len);
    void (*run_once)(W4 *w);
    void (*teardown)(W4 *w);
} W4Ops;

static void w4_write(W4 *w, int i)
{
    char c = 'w';

    if (write(w->pairs[i][1], &c, 1) != 1) {
        w->failed++;
    }
}

/* The read callback, shared by every variant: pair i is readable. */
static void w4_on_read(W4 *w, int i)
{
    char c;

    if (read(w->pairs[i][0], &c, 1) != 1) {
        w->failed++;
    }
    w->count++;
    if (w->writes > 0) {
        w4_write(w, (i + 1) % w->p);
        w->writes--;
        w->fired++;
    }
}

/* ------------------------------------------------------------------ */
/* libaioctx                                                           */
/* ------------------------------------------------------------------ */

typedef struct AioW4 {
    AioContext *ctx;
    W4 *w;
    struct AioW4Fd {
        struct AioW4 *a;
        int i;
    } * fds;
} AioW4;

static void aio_w4_read(void *opaque)
{
    struct AioW4Fd *f = opaque;

    w4_on_read(f->a->w, f->i);
}

static bool aio_w4_setup(W4 *w, const char *engine, char *why, size_t len)
{
    AioContextOptions opts = { .engine = engine };
    AioW4 *a = calloc(1, sizeof(*a));
    Error *err = NULL;

    a->fds = calloc((size_t)w->p, sizeof(*a->fds));
    a->w = w;
    a->ctx = aio_context_new_with_options(&opts, &err);
    if (!a->ctx) {
        snprintf(why, len, "%s: %s", engine, error_get_pretty(err));
        error_free(err);
        free(a->fds);
        free(a);
        return false;
    }
    for (int i = 0; i < w->p; i++) {
        a->fds[i].a = a;
        a->fds[i].i = i;
        aio_set_fd_handler(a->ctx, w->pairs[i][0], aio_w4_read, NULL, NULL,
                           NULL, &a->fds[i]);
    }
    w->loop = a;
    return true;
}

static void aio_w4_run_once(W4 *w)
{
    AioW4 *a = w->loop;

    aio_poll(a->ctx, false);
}

static void aio_w4_teardown(W4 *w)
{
    AioW4 *a = w->loop;

    for (int i = 0; i < w->p; i++) {
        aio_set_fd_handler(a->ctx, w->pairs[i][0], NULL, NULL, NULL, NULL,
                           NULL);
    }
    aio_context_unref(a->ctx);
    free(a->fds);
    free(a);
}

/* ------------------------------------------------------------------ */
/* raw epoll and raw poll                                              */
/* ------------------------------------------------------------------ */

typedef struct RawEpoll {
    int epfd;
    struct epoll_event events[W4_RAW_EVENTS];
} RawEpoll;

static bool raw_epoll_setup(W4 *w, const char *engine, char *why, size_t len)
{
    RawEpoll *r = calloc(1, sizeof(*r));

    (void)engine;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0) {
        snprintf(why, len, "epoll_create1: %s", strerror(errno));
        free(r);
        return false;
    }
    for (int i = 0; i < w->p; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

        if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, w->pairs[i][0], &ev) < 0) {
            snprintf(why, len, "epoll_ctl: %s", strerror(errno));
            close(r->epfd);
            free(r);
            return false;
        }
    }
    w->loop = r;
    return true;
}

static void raw_epoll_run_once(W4 *w)
{
    RawEpoll *r = w->loop;
    int n = epoll_wait(r->epfd, r->events, W4_RAW_EVENTS, 0);

    for (int k = 0; k < n; k++) {
        w4_on_read(w, (int)r->events[k].data.u32);
    }
}

static void raw_epoll_teardown(W4 *w)
{
    RawEpoll *r = w->loop;

    close(r->epfd);
    free(r);
}

static bool raw_poll_setup(W4 *w, const char *engine, char *why, size_t len)
{
    struct pollfd *pfds = calloc((size_t)w->p, sizeof(*pfds));

    (void)engine;
    (void)why;
    (void)len;
    for (int i = 0; i < w->p; i++) {
        pfds[i].fd = w->pairs[i][0];
        pfds[i].events = POLLIN;
    }
    w->loop = pfds;
    return true;
}

static void raw_poll_run_once(W4 *w)
{
    struct pollfd *pfds = w->loop;
    int n = poll(pfds, (nfds_t)w->p, 0);

    for (int i = 0; n > 0 && i < w->p; i++) {
        if (pfds[i].revents) {
            n--;
            w4_on_read(w, i);
        }
    }
}

static void raw_poll_teardown(W4 *w)
{
    free(w->loop);
}

/* ------------------------------------------------------------------ */
/* libev                                                               */
/* ------------------------------------------------------------------ */

#ifdef HAVE_LIBEV
typedef struct EvW4 {
    struct ev_loop *loop;
    W4 *w;
    struct EvW4Io {
        ev_io io;
        struct EvW4 *e;
        int i;
    } * ios;
} EvW4;

static void ev_w4_read(struct ev_loop *loop, ev_io *io, int revents)
{
    struct EvW4Io *x = (struct EvW4Io *)io;

    (void)loop;
    (void)revents;
    w4_on_read(x->e->w, x->i);
}

static bool ev_w4_setup(W4 *w, const char *engine, char *why, size_t len)
{
    EvW4 *e = calloc(1, sizeof(*e));

    (void)engine;
    e->loop = ev_loop_new(EVBACKEND_EPOLL);
    if (!e->loop) {
        snprintf(why, len, "ev_loop_new(EVBACKEND_EPOLL) failed");
        free(e);
        return false;
    }
    e->w = w;
    e->ios = calloc((size_t)w->p, sizeof(*e->ios));
    for (int i = 0; i < w->p; i++) {
        e->ios[i].e = e;
        e->ios[i].i = i;
        ev_io_init(&e->ios[i].io, ev_w4_read, w->pairs[i][0], w4_libev_read);
        ev_io_start(e->loop, &e->ios[i].io);
    }
    w->loop = e;
    return true;
}

static void ev_w4_run_once(W4 *w)
{
    EvW4 *e = w->loop;

    ev_run(e->loop, EVRUN_NOWAIT);
}

static void ev_w4_teardown(W4 *w)
{
    EvW4 *e = w->loop;

    for (int i = 0; i < w->p; i++) {
        ev_io_stop(e->loop, &e->ios[i].io);
    }
    ev_loop_destroy(e->loop);
    free(e->ios);
    free(e);
}
#endif

/* ------------------------------------------------------------------ */
/* libevent                                                            */
/* ------------------------------------------------------------------ */

#ifdef HAVE_LIBEVENT
typedef struct EventW4 {
    struct event_base *base;
    W4 *w;
    struct EventW4Ev {
        struct event *ev;
        struct EventW4 *e;
        int i;
    } * evs;
} EventW4;

static void event_w4_read(evutil_socket_t fd, short what, void *arg)
{
    struct EventW4Ev *x = arg;

    (void)fd;
    (void)what;
    w4_on_read(x->e->w, x->i);
}

static bool event_w4_setup(W4 *w, const char *engine, char *why, size_t len)
{
    EventW4 *e = calloc(1, sizeof(*e));

    (void)engine;
    e->base = event_base_new();
    if (!e->base) {
        snprintf(why, len, "event_base_new failed");
        free(e);
        return false;
    }
    if (strcmp(event_base_get_method(e->base), "epoll") != 0) {
        snprintf(why, len, "libevent uses %s", event_base_get_method(e->base));
        event_base_free(e->base);
        free(e);
        return false;
    }
    e->w = w;
    e->evs = calloc((size_t)w->p, sizeof(*e->evs));
    for (int i = 0; i < w->p; i++) {
        e->evs[i].e = e;
        e->evs[i].i = i;
        e->evs[i].ev = event_new(e->base, w->pairs[i][0], EV_READ | EV_PERSIST,
                                 event_w4_read, &e->evs[i]);
        event_add(e->evs[i].ev, NULL);
    }
    w->loop = e;
    return true;
}

static void event_w4_run_once(W4 *w)
{
    EventW4 *e = w->loop;

    event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void event_w4_teardown(W4 *w)
{
    EventW4 *e = w->loop;

    for (int i = 0; i < w->p; i++) {
        event_free(e->evs[i].ev);
    }
    event_base_free(e->base);
    free(e->evs);
    free(e);
}
#endif

/* ------------------------------------------------------------------ */
/* libuv                                                               */
/* ------------------------------------------------------------------ */

#ifdef HAVE_LIBUV
typedef struct UvW4 {
    uv_loop_t loop;
    W4 *w;
    struct UvW4Poll {
        uv_poll_t poll;
        struct UvW4 *u;
        int i;
    } * polls;
} UvW4;

static void uv_w4_read(uv_poll_t *handle, int status, int events)
{
    struct UvW4Poll *x = (struct UvW4Poll *)handle;

    (void)events;
    if (status < 0) {
        x->u->w->failed++;
        return;
    }
    w4_on_read(x->u->w, x->i);
}

static bool uv_w4_setup(W4 *w, const char *engine, char *why, size_t len)
{
    UvW4 *u = calloc(1, sizeof(*u));
    int ret = uv_loop_init(&u->loop);

    (void)engine;
    if (ret < 0) {
        snprintf(why, len, "uv_loop_init: %s", uv_strerror(ret));
        free(u);
        return false;
    }
    u->w = w;
    u->polls = calloc((size_t)w->p, sizeof(*u->polls));
    for (int i = 0; i < w->p; i++) {
        u->polls[i].u = u;
        u->polls[i].i = i;
        uv_poll_init(&u->loop, &u->polls[i].poll, w->pairs[i][0]);
        uv_poll_start(&u->polls[i].poll, UV_READABLE, uv_w4_read);
    }
    w->loop = u;
    return true;
}

static void uv_w4_run_once(W4 *w)
{
    UvW4 *u = w->loop;

    uv_run(&u->loop, UV_RUN_NOWAIT);
}

static void uv_w4_teardown(W4 *w)
{
    UvW4 *u = w->loop;

    for (int i = 0; i < w->p; i++) {
        uv_close((uv_handle_t *)&u->polls[i].poll, NULL);
    }
    uv_run(&u->loop, UV_RUN_DEFAULT);
    uv_loop_close(&u->loop);
    free(u->polls);
    free(u);
}
#endif

/* ------------------------------------------------------------------ */
/* driver                                                              */
/* ------------------------------------------------------------------ */

#define AIO_VARIANT(engine_)                                          \
    {                                                                 \
        "libaioctx-" engine_, engine_, aio_w4_setup, aio_w4_run_once, \
            aio_w4_teardown                                           \
    }

/* libaioctx engines alternate with the peers. */
static const W4Ops w4_variants[] = {
    AIO_VARIANT("io_uring"),
    { "raw-epoll", NULL, raw_epoll_setup, raw_epoll_run_once,
      raw_epoll_teardown },
    AIO_VARIANT("epoll"),
#ifdef HAVE_LIBEV
    { "libev", NULL, ev_w4_setup, ev_w4_run_once, ev_w4_teardown },
#endif
    AIO_VARIANT("poll"),
#ifdef HAVE_LIBEVENT
    { "libevent", NULL, event_w4_setup, event_w4_run_once, event_w4_teardown },
#endif
    AIO_VARIANT("linux-aio"),
#ifdef HAVE_LIBUV
    { "libuv", NULL, uv_w4_setup, uv_w4_run_once, uv_w4_teardown },
#endif
    { "raw-poll", NULL, raw_poll_setup, raw_poll_run_once, raw_poll_teardown },
};

#define W4_NVARIANTS ((int)(sizeof(w4_variants) / sizeof(w4_variants[0])))

/* One iteration; returns its time in us, or -1 if a check failed. */
static double w4_iteration(W4 *w, const W4Ops *ops)
{
    int64_t t0, t1;

    w->count = 0;
    w->writes = W4_WRITES;
    w->fired = W4_ACTIVE;
    for (int a = 0; a < W4_ACTIVE; a++) {
        w4_write(w, a * w->p / W4_ACTIVE);
    }
    t0 = bench_now_ns();
    while (w->count < w->fired) {
        ops->run_once(w);
    }
    t1 = bench_now_ns();
    if (w->count != W4_ACTIVE + W4_WRITES || w->failed) {
        return -1;
    }
    return (double)(t1 - t0) / 1000.0;
}

/* One run: set up, warm up, 25 timed iterations, their median. */
static void w4_run(W4 *w, const W4Ops *ops, BenchSeries *s)
{
    /* BENCH_SCALE shortens the run (instruction counts); default 25. */
    int n_iters = (int)bench_scaled(W4_ITERS, 1);
    BenchSeries iters;
    char why[80] = "";
    double us;

    w->failed = 0;
    if (!ops->setup(w, ops->engine, why, sizeof(why))) {
        bench_series_add(s, 0, false, "%s", why);
        return;
    }
    bench_series_init(&iters, "W4", "", ops->name, "us");
    /* Every iteration counts as an operation for tests/bench/run's Ir/op. */
    bench_series_set_ops(s, s->ops + W4_WARMUP + n_iters);
    for (int k = 0; k < W4_WARMUP + n_iters; k++) {
        us = w4_iteration(w, ops);
        if (us < 0) {
            snprintf(why, sizeof(why), "count=%d/%d failed=%d", w->count,
                     W4_ACTIVE + W4_WRITES, w->failed);
            break;
        }
        if (k >= W4_WARMUP) {
            iters.samples[iters.nsamples++] = us;
        }
    }
    ops->teardown(w);
    bench_series_add(s, bench_series_median(&iters), !why[0], "%s", why);
}

static bool w4_open_pairs(W4 *w, int p)
{
    w->p = p;
    w->pairs = calloc((size_t)p, sizeof(*w->pairs));
    for (int i = 0; i < p; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       w->pairs[i]) < 0) {
            fprintf(stderr, "# socketpair %d of %d: %s\n", i, p,
                    strerror(errno));
            w->p = i;
            return false;
        }
    }
    return true;
}

static void w4_close_pairs(W4 *w)
{
    for (int i = 0; i < w->p; i++) {
        close(w->pairs[i][0]);
        close(w->pairs[i][1]);
    }
    free(w->pairs);
    w->pairs = NULL;
}

static BenchSeries *w4_find(BenchSeries *series, const char *peer)
{
    for (int v = 0; v < W4_NVARIANTS; v++) {
        if (!strcmp(w4_variants[v].name, peer) && series[v].nsamples) {
            return &series[v];
        }
    }
    return NULL;
}

/* The median ratio, and the worst ratio of one run's pair of figures. */
static void w4_print_ratio(BenchSeries *series, const char *a_name,
                           const char *b_name)
{
    BenchSeries *a = w4_find(series, a_name), *b = w4_find(series, b_name);
    double worst = 0;

    if (!a || !b || a->nsamples != b->nsamples) {
        return;
    }
    for (int r = 0; r < a->nsamples; r++) {
        double q = a->samples[r] / b->samples[r];

        worst = q > worst ? q : worst;
    }
    printf("# ratio %s|%s / %s = %.2f (worst run %.2f)\n", a->variant, a->peer,
           b->peer, bench_series_median(a) / bench_series_median(b), worst);
}

static void w4_size(W4 *w, int p, int runs, int argc, char **argv)
{
    static BenchSeries series[W4_NVARIANTS];
    static char variant[W4_NSIZES][16];
    bool any = false;
    char name[64];
    int k;

    for (k = 0; w4_sizes[k] != p; k++) {
    }
    snprintf(variant[k], sizeof(variant[k]), "P=%d", p);
    for (int v = 0; v < W4_NVARIANTS; v++) {
        bench_series_init(&series[v], "W4", variant[k], w4_variants[v].name,
                          "us");
        snprintf(name, sizeof(name), "P=%d/%s", p, w4_variants[v].name);
        any |= bench_selected(argc, argv, name) &&
               (!w4_variants[v].engine ||
                aio_engine_available(w4_variants[v].engine));
    }
    if (!any) {
        return;
    }
    if (!w4_open_pairs(w, p)) {
        w4_close_pairs(w);
        return;
    }
    /* Each repetition starts one variant later: none is always first. */
    for (int run = 0; run < runs; run++) {
        for (int i = 0; i < W4_NVARIANTS; i++) {
            int v = (i + run) % W4_NVARIANTS;
            const W4Ops *ops = &w4_variants[v];

            snprintf(name, sizeof(name), "P=%d/%s", p, ops->name);
            if (bench_selected(argc, argv, name) &&
                (!ops->engine || aio_engine_available(ops->engine))) {
                w4_run(w, ops, &series[v]);
            }
        }
    }
    w4_close_pairs(w);
    for (int v = 0; v < W4_NVARIANTS; v++) {
        bench_series_report(&series[v]);
    }
    w4_print_ratio(series, "libaioctx-io_uring", "raw-epoll");
    w4_print_ratio(series, "libaioctx-epoll", "raw-epoll");
    w4_print_ratio(series, "libaioctx-io_uring", "libaioctx-epoll");
}

/* P=9900 needs 19,800 descriptors: take the whole hard limit. */
static void w4_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            fprintf(stderr, "# setrlimit(RLIMIT_NOFILE): %s\n",
                    strerror(errno));
        }
    }
}

int main(int argc, char **argv)
{
    int runs = bench_runs(5);
    W4 w = { 0 };

    w4_raise_nofile();
    printf("# W4 pipes: %d runs of %d iterations (+%d warm-up), A=%d W=%d\n",
           runs, W4_ITERS, W4_WARMUP, W4_ACTIVE, W4_WRITES);
    fflush(stdout);
    for (int k = 0; k < W4_NSIZES; k++) {
        w4_size(&w, w4_sizes[k], runs, argc, argv);
    }
    return 0;
}
