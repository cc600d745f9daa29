/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W2 of bench-workloads.md: cross-thread wake-up ping-pong.
 *
 * Thread A (pinned to CPU0) and thread B (CPU1) each run their own loop,
 * which blocks when idle.  A wakes B, B's callback wakes A, A's callback
 * counts one round trip and wakes B again.  Timed from the barrier release
 * until both threads are joined; the figure is ns per round trip.
 *
 * libaioctx: each thread polls its own AioContext; a wake-up is
 * qemu_bh_schedule() of a pre-created BH of the other context.  Variants:
 * "blocking" (adaptive polling off) and "polling" (poll_max_ns = 32768).
 * Peers: raw eventfd + epoll and two threads spinning on an atomic (the
 * floors), libuv uv_async_send, libev ev_async_send, libevent
 * event_active from the other thread (evthread_use_pthreads).
 *
 * Usage: bench-notify [substring of variant/peer...]   (RUNS=n)
 * BENCH_SCALE=f multiplies the round-trip counts (smoke runs).
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <aioctx.h>

#ifdef HAVE_LIBEV
#include <ev.h>
#endif
#ifdef HAVE_LIBUV
#include <uv.h>
#endif
#if defined(HAVE_LIBEVENT) && defined(HAVE_LIBEVENT_PTHREADS)
#include <event2/event.h>
#include <event2/thread.h>
#define HAVE_LIBEVENT_MT 1
#endif

#include "bench-util.h"

#define PINGPONG_N 100000LL
#define SPIN_N 5000000LL
#define POLL_MAX_NS 32768

/*
 * One timed run of a pair.  count and stop belong to the harness so the
 * check is the same for every peer: A's count must reach n.
 */
typedef struct W2Pair W2Pair;
typedef void W2ThreadFn(W2Pair *p);

struct W2Pair {
    int64_t n;
    int64_t count; /* round trips seen by A; A's thread only */
    bool stop;     /* atomic: A is done, B should leave its loop */
    void *priv;    /* the peer's own state */
    pthread_barrier_t barrier;
    W2ThreadFn *body[2];
    int64_t start_ns[2]; /* each thread's clock right after the barrier */
    bool pin_failed; /* atomic */
};

typedef struct W2Thread {
    W2Pair *pair;
    int index;
} W2Thread;

static void *w2_thread(void *opaque)
{
    W2Thread *t = opaque;

    if (!bench_pin_self(t->index)) {
        __atomic_store_n(&t->pair->pin_failed, true, __ATOMIC_RELAXED);
    }
    pthread_barrier_wait(&t->pair->barrier);
    t->pair->start_ns[t->index] = bench_now_ns();
    t->pair->body[t->index](t->pair);
    return NULL;
}

static void w2_set_stop(W2Pair *p)
{
    __atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
}

static bool w2_stopped(W2Pair *p)
{
    return __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
}

/*
 * Start A and B, release them together, return the ns from the release
 * until both are joined.  The start is read by the threads themselves:
 * with two CPUs both busy, the main thread may not run again before the
 * pair is done.
 */
static int64_t w2_run_pair(W2Pair *p, W2ThreadFn *a, W2ThreadFn *b)
{
    W2Thread t[2] = { { p, 0 }, { p, 1 } };
    pthread_t tid[2];
    int64_t t0;

    p->body[0] = a;
    p->body[1] = b;
    pthread_barrier_init(&p->barrier, NULL, 3);
    for (int i = 0; i < 2; i++) {
        pthread_create(&tid[i], NULL, w2_thread, &t[i]);
    }
    pthread_barrier_wait(&p->barrier);
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
    }
    t0 = p->start_ns[0] < p->start_ns[1] ? p->start_ns[0] : p->start_ns[1];
    pthread_barrier_destroy(&p->barrier);
    return bench_now_ns() - t0;
}

/* What one run reports back. */
typedef struct W2Run {
    int64_t elapsed_ns;
    int64_t count;
    bool setup_failed;
    bool pin_failed;
    char why[80];
} W2Run;

static void w2_finish(W2Run *r, W2Pair *p, int64_t elapsed)
{
    r->elapsed_ns = elapsed;
    r->count = p->count;
    r->pin_failed = p->pin_failed;
}

/* ------------------------------------------------------------------ */
/* libaioctx                                                           */
/* ------------------------------------------------------------------ */

typedef struct AioPair {
    W2Pair *pair;
    AioContext *ctx[2];
    QEMUBH *bh[2];
} AioPair;

static void aio_a_cb(void *opaque)
{
    AioPair *ap = opaque;
    W2Pair *p = ap->pair;

    if (++p->count < p->n) {
        qemu_bh_schedule(ap->bh[1]);
        return;
    }
    w2_set_stop(p);
    aio_notify(ap->ctx[1]);
}

static void aio_b_cb(void *opaque)
{
    AioPair *ap = opaque;

    if (!w2_stopped(ap->pair)) {
        qemu_bh_schedule(ap->bh[0]);
    }
}

static void aio_thread_a(W2Pair *p)
{
    AioPair *ap = p->priv;

    qemu_set_current_aio_context(ap->ctx[0]);
    qemu_bh_schedule(ap->bh[1]);
    while (p->count < p->n) {
        aio_poll(ap->ctx[0], true);
    }
}

static void aio_thread_b(W2Pair *p)
{
    AioPair *ap = p->priv;

    qemu_set_current_aio_context(ap->ctx[1]);
    while (!w2_stopped(p)) {
        aio_poll(ap->ctx[1], true);
    }
}

static void run_aio(int64_t n, W2Run *r, int64_t poll_max_ns)
{
    W2Pair p = { .n = n };
    AioPair ap = { .pair = &p };
    Error *err = NULL;
    int64_t elapsed;

    p.priv = &ap;
    for (int i = 0; i < 2 && !err; i++) {
        ap.ctx[i] = aio_context_new(&err);
        if (ap.ctx[i]) {
            aio_context_set_poll_params(ap.ctx[i], poll_max_ns, 0, 0, &err);
        }
    }
    if (err) {
        snprintf(r->why, sizeof(r->why), "%s", error_get_pretty(err));
        error_free(err);
        r->setup_failed = true;
        aio_context_unref(ap.ctx[0]);
        aio_context_unref(ap.ctx[1]);
        return;
    }
    ap.bh[0] = aio_bh_new(ap.ctx[0], aio_a_cb, &ap);
    ap.bh[1] = aio_bh_new(ap.ctx[1], aio_b_cb, &ap);
    /* Swallow the notifications left by the set-up. */
    for (int i = 0; i < 2; i++) {
        while (aio_poll(ap.ctx[i], false)) {
        }
    }
    elapsed = w2_run_pair(&p, aio_thread_a, aio_thread_b);
    w2_finish(r, &p, elapsed);
    for (int i = 0; i < 2; i++) {
        qemu_bh_delete(ap.bh[i]);
        aio_context_unref(ap.ctx[i]);
    }
}

static void run_aio_blocking(int64_t n, W2Run *r)
{
    run_aio(n, r, 0);
}

static void run_aio_polling(int64_t n, W2Run *r)
{
    run_aio(n, r, POLL_MAX_NS);
}

/* ------------------------------------------------------------------ */
/* raw-eventfd-epoll                                                   */
/* ------------------------------------------------------------------ */

typedef struct RawEfdPair {
    int efd[2];
    int epfd[2];
} RawEfdPair;

static void raw_efd_wake(RawEfdPair *rp, int to)
{
    uint64_t one = 1;

    while (write(rp->efd[to], &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

/* Sleep until woken, consume the wake-up. */
static void raw_efd_wait(RawEfdPair *rp, int self)
{
    struct epoll_event ev;
    uint64_t v;

    while (epoll_wait(rp->epfd[self], &ev, 1, -1) < 1) {
    }
    while (read(rp->efd[self], &v, sizeof(v)) < 0 && errno == EINTR) {
    }
}

static void raw_efd_thread_a(W2Pair *p)
{
    RawEfdPair *rp = p->priv;

    raw_efd_wake(rp, 1);
    while (p->count < p->n) {
        raw_efd_wait(rp, 0);
        if (++p->count == p->n) {
            w2_set_stop(p);
        }
        raw_efd_wake(rp, 1);
    }
}

static void raw_efd_thread_b(W2Pair *p)
{
    RawEfdPair *rp = p->priv;

    for (;;) {
        raw_efd_wait(rp, 1);
        if (w2_stopped(p)) {
            return;
        }
        raw_efd_wake(rp, 0);
    }
}

static void run_raw_efd(int64_t n, W2Run *r)
{
    W2Pair p = { .n = n };
    RawEfdPair rp;
    int64_t elapsed;

    p.priv = &rp;
    for (int i = 0; i < 2; i++) {
        struct epoll_event ev = { .events = EPOLLIN };

        rp.efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        rp.epfd[i] = epoll_create1(EPOLL_CLOEXEC);
        if (rp.efd[i] < 0 || rp.epfd[i] < 0 ||
            epoll_ctl(rp.epfd[i], EPOLL_CTL_ADD, rp.efd[i], &ev) < 0) {
            snprintf(r->why, sizeof(r->why), "eventfd/epoll: %s",
                     strerror(errno));
            r->setup_failed = true;
            return;
        }
    }
    elapsed = w2_run_pair(&p, raw_efd_thread_a, raw_efd_thread_b);
    w2_finish(r, &p, elapsed);
    for (int i = 0; i < 2; i++) {
        close(rp.efd[i]);
        close(rp.epfd[i]);
    }
}

/* ------------------------------------------------------------------ */
/* raw-spin-atomic                                                     */
/* ------------------------------------------------------------------ */

typedef struct SpinWord {
    alignas(64) uint64_t seq;
} SpinWord;

typedef struct SpinPair {
    SpinWord word[2]; /* word[i]: the sequence thread i waits for */
} SpinPair;

static void spin_until(SpinWord *w, uint64_t want)
{
    while (__atomic_load_n(&w->seq, __ATOMIC_ACQUIRE) != want) {
        __builtin_ia32_pause();
    }
}

static void spin_thread_a(W2Pair *p)
{
    SpinPair *sp = p->priv;

    for (uint64_t i = 1; i <= (uint64_t)p->n; i++) {
        __atomic_store_n(&sp->word[1].seq, i, __ATOMIC_RELEASE);
        spin_until(&sp->word[0], i);
        p->count++;
    }
}

static void spin_thread_b(W2Pair *p)
{
    SpinPair *sp = p->priv;

    for (uint64_t i = 1; i <= (uint64_t)p->n; i++) {
        spin_until(&sp->word[1], i);
        __atomic_store_n(&sp->word[0].seq, i, __ATOMIC_RELEASE);
    }
}

static void run_raw_spin(int64_t n, W2Run *r)
{
    static SpinPair sp;
    W2Pair p = { .n = n, .priv = &sp };
    int64_t elapsed;

    memset(&sp, 0, sizeof(sp));
    elapsed = w2_run_pair(&p, spin_thread_a, spin_thread_b);
    w2_finish(r, &p, elapsed);
}

/* ------------------------------------------------------------------ */
/* libuv                                                               */
/* ------------------------------------------------------------------ */
#ifdef HAVE_LIBUV

typedef struct UvPair {
    W2Pair *pair;
    uv_loop_t loop[2];
    uv_async_t async[2];
} UvPair;

static void uv_a_cb(uv_async_t *h)
{
    UvPair *up = h->data;
    W2Pair *p = up->pair;

    if (++p->count < p->n) {
        uv_async_send(&up->async[1]);
        return;
    }
    w2_set_stop(p);
    uv_async_send(&up->async[1]);
    uv_close((uv_handle_t *)h, NULL);
}

static void uv_b_cb(uv_async_t *h)
{
    UvPair *up = h->data;

    if (w2_stopped(up->pair)) {
        uv_close((uv_handle_t *)h, NULL);
        return;
    }
    uv_async_send(&up->async[0]);
}

static void uv_thread_a(W2Pair *p)
{
    UvPair *up = p->priv;

    uv_async_send(&up->async[1]);
    uv_run(&up->loop[0], UV_RUN_DEFAULT);
}

static void uv_thread_b(W2Pair *p)
{
    UvPair *up = p->priv;

    uv_run(&up->loop[1], UV_RUN_DEFAULT);
}

static void run_uv(int64_t n, W2Run *r)
{
    static UvPair up;
    W2Pair p = { .n = n, .priv = &up };
    int64_t elapsed;

    up.pair = &p;
    for (int i = 0; i < 2; i++) {
        uv_loop_init(&up.loop[i]);
        uv_async_init(&up.loop[i], &up.async[i], i ? uv_b_cb : uv_a_cb);
        up.async[i].data = &up;
    }
    elapsed = w2_run_pair(&p, uv_thread_a, uv_thread_b);
    w2_finish(r, &p, elapsed);
    for (int i = 0; i < 2; i++) {
        uv_loop_close(&up.loop[i]);
    }
}

#endif /* HAVE_LIBUV */

/* ------------------------------------------------------------------ */
/* libev                                                               */
/* ------------------------------------------------------------------ */
#ifdef HAVE_LIBEV

typedef struct EvPair {
    W2Pair *pair;
    struct ev_loop *loop[2];
    ev_async async[2];
} EvPair;

static void ev_a_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    EvPair *ep = w->data;
    W2Pair *p = ep->pair;

    (void)revents;
    if (++p->count < p->n) {
        ev_async_send(ep->loop[1], &ep->async[1]);
        return;
    }
    w2_set_stop(p);
    ev_async_send(ep->loop[1], &ep->async[1]);
    ev_break(loop, EVBREAK_ALL);
}

static void ev_b_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    EvPair *ep = w->data;

    (void)revents;
    if (w2_stopped(ep->pair)) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    ev_async_send(ep->loop[0], &ep->async[0]);
}

static void ev_thread_a(W2Pair *p)
{
    EvPair *ep = p->priv;

    ev_async_send(ep->loop[1], &ep->async[1]);
    ev_run(ep->loop[0], 0);
}

static void ev_thread_b(W2Pair *p)
{
    EvPair *ep = p->priv;

    ev_run(ep->loop[1], 0);
}

static void run_ev(int64_t n, W2Run *r)
{
    static EvPair ep;
    W2Pair p = { .n = n, .priv = &ep };
    int64_t elapsed;

    memset(&ep, 0, sizeof(ep));
    ep.pair = &p;
    for (int i = 0; i < 2; i++) {
        ep.loop[i] = ev_loop_new(EVBACKEND_EPOLL);
        if (!ep.loop[i] || ev_backend(ep.loop[i]) != EVBACKEND_EPOLL) {
            snprintf(r->why, sizeof(r->why), "libev: no epoll backend");
            r->setup_failed = true;
            for (int j = 0; j <= i; j++) {
                if (ep.loop[j]) {
                    ev_loop_destroy(ep.loop[j]);
                }
            }
            return;
        }
        ev_async_init(&ep.async[i], i ? ev_b_cb : ev_a_cb);
        ep.async[i].data = &ep;
        ev_async_start(ep.loop[i], &ep.async[i]);
    }
    elapsed = w2_run_pair(&p, ev_thread_a, ev_thread_b);
    w2_finish(r, &p, elapsed);
    for (int i = 0; i < 2; i++) {
        ev_async_stop(ep.loop[i], &ep.async[i]);
        ev_loop_destroy(ep.loop[i]);
    }
}

#endif /* HAVE_LIBEV */

/* ------------------------------------------------------------------ */
/* libevent, event_active from the other thread                        */
/* ------------------------------------------------------------------ */
#ifdef HAVE_LIBEVENT_MT

typedef struct EventPair {
    W2Pair *pair;
    struct event_base *base[2];
    struct event *ev[2];
} EventPair;

static void event_a_cb(evutil_socket_t fd, short what, void *arg)
{
    EventPair *xp = arg;
    W2Pair *p = xp->pair;

    (void)fd;
    (void)what;
    if (++p->count < p->n) {
        event_active(xp->ev[1], EV_READ, 0);
        return;
    }
    w2_set_stop(p);
    event_active(xp->ev[1], EV_READ, 0);
    event_base_loopbreak(xp->base[0]);
}

static void event_b_cb(evutil_socket_t fd, short what, void *arg)
{
    EventPair *xp = arg;

    (void)fd;
    (void)what;
    if (w2_stopped(xp->pair)) {
        event_base_loopbreak(xp->base[1]);
        return;
    }
    event_active(xp->ev[0], EV_READ, 0);
}

static void event_thread_a(W2Pair *p)
{
    EventPair *xp = p->priv;

    event_active(xp->ev[1], EV_READ, 0);
    event_base_loop(xp->base[0], EVLOOP_NO_EXIT_ON_EMPTY);
}

static void event_thread_b(W2Pair *p)
{
    EventPair *xp = p->priv;

    event_base_loop(xp->base[1], EVLOOP_NO_EXIT_ON_EMPTY);
}

static void run_event(int64_t n, W2Run *r)
{
    static EventPair xp;
    W2Pair p = { .n = n, .priv = &xp };
    int64_t elapsed;

    memset(&xp, 0, sizeof(xp));
    xp.pair = &p;
    for (int i = 0; i < 2; i++) {
        xp.base[i] = event_base_new();
        if (!xp.base[i] ||
            strcmp(event_base_get_method(xp.base[i]), "epoll") != 0) {
            snprintf(r->why, sizeof(r->why), "libevent: no epoll backend");
            r->setup_failed = true;
            for (int j = 0; j <= i; j++) {
                if (xp.ev[j]) {
                    event_free(xp.ev[j]);
                }
                if (xp.base[j]) {
                    event_base_free(xp.base[j]);
                }
            }
            return;
        }
        xp.ev[i] = event_new(xp.base[i], -1, 0, i ? event_b_cb : event_a_cb,
                             &xp);
    }
    elapsed = w2_run_pair(&p, event_thread_a, event_thread_b);
    w2_finish(r, &p, elapsed);
    for (int i = 0; i < 2; i++) {
        event_free(xp.ev[i]);
        event_base_free(xp.base[i]);
    }
}

#endif /* HAVE_LIBEVENT_MT */

/* ------------------------------------------------------------------ */
/* driver                                                              */
/* ------------------------------------------------------------------ */

typedef void W2Fn(int64_t n, W2Run *r);

typedef struct W2Peer {
    const char *variant;
    const char *peer;
    int64_t n;
    W2Fn *fn;
    BenchSeries series;
} W2Peer;

#define PEER(variant_, peer_, n_, fn_)                                         \
    { .variant = (variant_), .peer = (peer_), .n = (n_), .fn = (fn_) }

static W2Peer peers[] = {
    PEER("blocking", "libaioctx", PINGPONG_N, run_aio_blocking),
    PEER("polling", "libaioctx", PINGPONG_N, run_aio_polling),
    PEER("blocking", "raw-eventfd-epoll", PINGPONG_N, run_raw_efd),
    PEER("polling", "raw-spin-atomic", SPIN_N, run_raw_spin),
#ifdef HAVE_LIBUV
    PEER("blocking", "libuv-async", PINGPONG_N, run_uv),
#endif
#ifdef HAVE_LIBEV
    PEER("blocking", "libev-async", PINGPONG_N, run_ev),
#endif
#ifdef HAVE_LIBEVENT_MT
    PEER("blocking", "libevent-active(mt)", PINGPONG_N, run_event),
#endif
};

#define NPEERS ((int)(sizeof(peers) / sizeof(peers[0])))

static void run_one(W2Peer *p)
{
    W2Run r = { 0 };

    p->fn(p->n, &r);
    if (r.setup_failed) {
        bench_series_add(&p->series, 0, false, "%s", r.why);
        return;
    }
    if (r.pin_failed) {
        bench_series_add(&p->series, 0, false, "cannot pin to CPU0/CPU1");
        return;
    }
    bench_series_add(&p->series, (double)r.elapsed_ns / (double)p->n,
                     r.count == p->n, "count=%lld/%lld", (long long)r.count,
                     (long long)p->n);
}

static W2Peer *find_peer(const char *variant, const char *peer)
{
    for (int i = 0; i < NPEERS; i++) {
        if (!strcmp(peers[i].variant, variant) &&
            !strcmp(peers[i].peer, peer) && peers[i].series.nsamples) {
            return &peers[i];
        }
    }
    return NULL;
}

static void print_ratio(const char *va, const char *pa, const char *vb,
                        const char *pb)
{
    W2Peer *a = find_peer(va, pa), *b = find_peer(vb, pb);

    if (a && b) {
        bench_print_ratio(&a->series, &b->series);
    }
}

int main(int argc, char **argv)
{
    int runs = bench_runs(5);
    AioContext *probe = aio_context_new(NULL);

#ifdef HAVE_LIBEVENT_MT
    evthread_use_pthreads();
#endif
    printf("# W2 cross-thread ping-pong, threads on CPU0/CPU1: %d runs, "
           "libaioctx engine %s\n",
           runs, probe ? aio_context_get_engine_name(probe) : "(none)");
    fflush(stdout);
    aio_context_unref(probe);
    for (int i = 0; i < NPEERS; i++) {
        bool own_n = peers[i].n != PINGPONG_N;

        peers[i].n = bench_scaled(peers[i].n, 1);
        bench_series_init(&peers[i].series, "W2", peers[i].variant,
                          peers[i].peer, "ns");
        bench_series_set_ops(&peers[i].series, peers[i].n);
        if (own_n || bench_scale() != 1) {
            bench_series_note(&peers[i].series, "N=%lld",
                              (long long)peers[i].n);
        } else if (!strcmp(peers[i].variant, "polling")) {
            bench_series_note(&peers[i].series, "poll_max_ns=%d",
                              POLL_MAX_NS);
        }
    }
    /* Interleave the peers run by run so that noise hits all of them. */
    for (int run = 0; run < runs; run++) {
        for (int i = 0; i < NPEERS; i++) {
            char name[96];

            snprintf(name, sizeof(name), "%s/%s", peers[i].variant,
                     peers[i].peer);
            if (bench_selected(argc, argv, name)) {
                run_one(&peers[i]);
            }
        }
    }
    for (int i = 0; i < NPEERS; i++) {
        bench_series_report(&peers[i].series);
    }
    print_ratio("blocking", "libaioctx", "blocking", "raw-eventfd-epoll");
    print_ratio("polling", "libaioctx", "polling", "raw-spin-atomic");
    print_ratio("polling", "libaioctx", "blocking", "raw-eventfd-epoll");
    return 0;
}
