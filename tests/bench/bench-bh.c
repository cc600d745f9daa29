/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W1 of bench-workloads.md: deferred zero-work callbacks on one loop thread.
 *
 *  chain:     N callbacks, exactly one pending at a time; each callback
 *             counts and schedules the next one.  ns per callback.
 *  batch1000: 1000 pre-created callbacks; a round schedules all of them
 *             from outside the loop, then runs the loop once, non-blocking,
 *             which must run all 1000.  10,000 rounds.  ns per callback.
 *
 * libaioctx runs the chain twice: with aio_bh_schedule_oneshot() (a BH
 * allocated and freed per callback) and with one pre-created BH that
 * re-schedules itself with qemu_bh_schedule().  Peers: the raw-plain and
 * raw-atomic floors, libev (ev_feed_event; ev_idle), libuv (idle; async to
 * itself), libevent (event_active); missing libraries are compiled out.
 *
 * Usage: bench-bh [substring of variant/peer...]   (RUNS=n in the environment)
 * e.g. "bench-bh chain/libaioctx raw".  BENCH_SCALE=f multiplies every
 * count (batch: whole rounds), for smoke runs and instruction counts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <aioctx.h>

#ifdef HAVE_LIBEV
#include <ev.h>
#endif
#ifdef HAVE_LIBUV
#include <uv.h>
#endif
#ifdef HAVE_LIBEVENT
#include <event2/event.h>
#endif

#include "bench-util.h"

#define CHAIN_N 10000000LL
#define BATCH_SIZE 1000
#define BATCH_ROUNDS 10000
#define BATCH_N ((int64_t)BATCH_SIZE * BATCH_ROUNDS)

#define container_of(ptr, type, member)                                        \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* What one timed run reports back. */
typedef struct W1Run {
    int64_t elapsed_ns;
    int64_t count;     /* callbacks that ran */
    int64_t short_rounds; /* batch: loop passes that missed a callback */
    bool setup_failed;
    char why[64];
} W1Run;

typedef void W1Fn(int64_t n, W1Run *r);

/* ------------------------------------------------------------------ */
/* libaioctx                                                           */
/* ------------------------------------------------------------------ */

typedef struct AioChain {
    AioContext *ctx;
    QEMUBH *bh;
    int64_t count;
    int64_t n;
} AioChain;

static AioContext *w1_ctx_new(W1Run *r)
{
    Error *err = NULL;
    AioContext *ctx = aio_context_new(&err);

    if (!ctx) {
        snprintf(r->why, sizeof(r->why), "aio_context_new: %s",
                 error_get_pretty(err));
        error_free(err);
        r->setup_failed = true;
    }
    /*
     * This thread is the context's loop thread, as QEMU's main loop or an
     * IOThread is for theirs: declare it, so that qemu_bh_schedule() from
     * here does not pay for the cross-thread destruction guard.
     */
    qemu_set_current_aio_context(ctx);
    return ctx;
}

static void aio_oneshot_cb(void *opaque)
{
    AioChain *c = opaque;

    if (++c->count < c->n) {
        aio_bh_schedule_oneshot(c->ctx, aio_oneshot_cb, c);
    }
}

static void run_aio_chain_oneshot(int64_t n, W1Run *r)
{
    AioChain c = { .n = n };
    int64_t t0;

    c.ctx = w1_ctx_new(r);
    if (!c.ctx) {
        return;
    }
    t0 = bench_now_ns();
    aio_bh_schedule_oneshot(c.ctx, aio_oneshot_cb, &c);
    while (c.count < n) {
        aio_poll(c.ctx, true);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
    aio_context_unref(c.ctx);
}

static void aio_resched_cb(void *opaque)
{
    AioChain *c = opaque;

    if (++c->count < c->n) {
        qemu_bh_schedule(c->bh);
    }
}

static void run_aio_chain_bh(int64_t n, W1Run *r)
{
    AioChain c = { .n = n };
    int64_t t0;

    c.ctx = w1_ctx_new(r);
    if (!c.ctx) {
        return;
    }
    c.bh = aio_bh_new(c.ctx, aio_resched_cb, &c);
    t0 = bench_now_ns();
    qemu_bh_schedule(c.bh);
    while (c.count < n) {
        aio_poll(c.ctx, true);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
    qemu_bh_delete(c.bh);
    aio_context_unref(c.ctx);
}

static void aio_count_cb(void *opaque)
{
    (*(int64_t *)opaque)++;
}

static void run_aio_batch(int64_t n, W1Run *r)
{
    static QEMUBH *bhs[BATCH_SIZE];
    AioContext *ctx = w1_ctx_new(r);
    int64_t count = 0, t0;

    if (!ctx) {
        return;
    }
    for (int i = 0; i < BATCH_SIZE; i++) {
        bhs[i] = aio_bh_new(ctx, aio_count_cb, &count);
    }
    t0 = bench_now_ns();
    for (int64_t round = 0; round < n / BATCH_SIZE; round++) {
        int64_t before = count;

        for (int i = 0; i < BATCH_SIZE; i++) {
            qemu_bh_schedule(bhs[i]);
        }
        aio_poll(ctx, false);
        r->short_rounds += count - before != BATCH_SIZE;
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    for (int i = 0; i < BATCH_SIZE; i++) {
        qemu_bh_delete(bhs[i]);
    }
    aio_context_unref(ctx);
}

/* ------------------------------------------------------------------ */
/* raw-plain: intrusive FIFO, no atomics (the floor)                   */
/* ------------------------------------------------------------------ */

typedef struct RawCb RawCb;
struct RawCb {
    RawCb *next;
    void (*fn)(RawCb *cb);
    bool pending;
};

typedef struct RawPlainQueue {
    RawCb *head;
    RawCb **tailp;
} RawPlainQueue;

static void raw_plain_schedule(RawPlainQueue *q, RawCb *cb)
{
    if (cb->pending) {
        return;
    }
    cb->pending = true;
    cb->next = NULL;
    *q->tailp = cb;
    q->tailp = &cb->next;
}

/* One loop iteration: run what was queued before it started. */
static __attribute__((noinline)) void raw_plain_run(RawPlainQueue *q)
{
    RawCb *cb = q->head;

    q->head = NULL;
    q->tailp = &q->head;
    while (cb) {
        RawCb *next = cb->next;

        cb->pending = false;
        cb->fn(cb);
        cb = next;
    }
}

typedef struct RawPlainChain {
    RawPlainQueue q;
    RawCb cb;
    int64_t count;
    int64_t n;
} RawPlainChain;

static void raw_plain_chain_cb(RawCb *cb)
{
    RawPlainChain *c = container_of(cb, RawPlainChain, cb);

    if (++c->count < c->n) {
        raw_plain_schedule(&c->q, cb);
    }
}

static void run_raw_plain_chain(int64_t n, W1Run *r)
{
    RawPlainChain c = { .n = n, .cb.fn = raw_plain_chain_cb };
    int64_t t0;

    c.q.tailp = &c.q.head;
    t0 = bench_now_ns();
    raw_plain_schedule(&c.q, &c.cb);
    while (c.count < n) {
        raw_plain_run(&c.q);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
}

typedef struct RawPlainBatchCb {
    RawCb cb;
    int64_t *count;
} RawPlainBatchCb;

static void raw_plain_count_cb(RawCb *cb)
{
    (*container_of(cb, RawPlainBatchCb, cb)->count)++;
}

static void run_raw_plain_batch(int64_t n, W1Run *r)
{
    static RawPlainBatchCb cbs[BATCH_SIZE];
    RawPlainQueue q = { .head = NULL, .tailp = &q.head };
    int64_t count = 0, t0;

    for (int i = 0; i < BATCH_SIZE; i++) {
        cbs[i] = (RawPlainBatchCb){ .cb.fn = raw_plain_count_cb,
                                    .count = &count };
    }
    t0 = bench_now_ns();
    for (int64_t round = 0; round < n / BATCH_SIZE; round++) {
        int64_t before = count;

        for (int i = 0; i < BATCH_SIZE; i++) {
            raw_plain_schedule(&q, &cbs[i].cb);
        }
        raw_plain_run(&q);
        r->short_rounds += count - before != BATCH_SIZE;
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
}

/* ------------------------------------------------------------------ */
/* raw-atomic: QEMU-style lock-free schedule without a syscall          */
/* ------------------------------------------------------------------ */

#define RAW_PENDING 1u

typedef struct RawACb RawACb;
struct RawACb {
    RawACb *next;
    void (*fn)(RawACb *cb);
    unsigned flags; /* atomic */
};

typedef struct RawAtomicQueue {
    RawACb *head; /* atomic LIFO */
    bool notified; /* atomic */
} RawAtomicQueue;

static __attribute__((noinline)) void raw_atomic_schedule(RawAtomicQueue *q,
                                                          RawACb *cb)
{
    unsigned old = __atomic_fetch_or(&cb->flags, RAW_PENDING,
                                     __ATOMIC_ACQ_REL);

    if (!(old & RAW_PENDING)) {
        RawACb *head = __atomic_load_n(&q->head, __ATOMIC_RELAXED);

        do {
            cb->next = head;
        } while (!__atomic_compare_exchange_n(&q->head, &head, cb, true,
                                              __ATOMIC_RELEASE,
                                              __ATOMIC_RELAXED));
    }
    __atomic_store_n(&q->notified, true, __ATOMIC_RELEASE);
}

static __attribute__((noinline)) void raw_atomic_run(RawAtomicQueue *q)
{
    RawACb *cb = __atomic_exchange_n(&q->head, NULL, __ATOMIC_ACQUIRE);

    __atomic_store_n(&q->notified, false, __ATOMIC_RELAXED);
    while (cb) {
        RawACb *next = cb->next;

        __atomic_fetch_and(&cb->flags, ~RAW_PENDING, __ATOMIC_ACQ_REL);
        cb->fn(cb);
        cb = next;
    }
}

typedef struct RawAtomicChain {
    RawAtomicQueue q;
    RawACb cb;
    int64_t count;
    int64_t n;
} RawAtomicChain;

static void raw_atomic_chain_cb(RawACb *cb)
{
    RawAtomicChain *c = container_of(cb, RawAtomicChain, cb);

    if (++c->count < c->n) {
        raw_atomic_schedule(&c->q, cb);
    }
}

static void run_raw_atomic_chain(int64_t n, W1Run *r)
{
    RawAtomicChain c = { .n = n, .cb.fn = raw_atomic_chain_cb };
    int64_t t0 = bench_now_ns();

    raw_atomic_schedule(&c.q, &c.cb);
    while (c.count < n) {
        raw_atomic_run(&c.q);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
}

typedef struct RawAtomicBatchCb {
    RawACb cb;
    int64_t *count;
} RawAtomicBatchCb;

static void raw_atomic_count_cb(RawACb *cb)
{
    (*container_of(cb, RawAtomicBatchCb, cb)->count)++;
}

static void run_raw_atomic_batch(int64_t n, W1Run *r)
{
    static RawAtomicBatchCb cbs[BATCH_SIZE];
    RawAtomicQueue q = { NULL, false };
    int64_t count = 0, t0;

    for (int i = 0; i < BATCH_SIZE; i++) {
        cbs[i] = (RawAtomicBatchCb){ .cb.fn = raw_atomic_count_cb,
                                     .count = &count };
    }
    t0 = bench_now_ns();
    for (int64_t round = 0; round < n / BATCH_SIZE; round++) {
        int64_t before = count;

        for (int i = 0; i < BATCH_SIZE; i++) {
            raw_atomic_schedule(&q, &cbs[i].cb);
        }
        raw_atomic_run(&q);
        r->short_rounds += count - before != BATCH_SIZE;
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
}

/* ------------------------------------------------------------------ */
/* libev                                                               */
/* ------------------------------------------------------------------ */
#ifdef HAVE_LIBEV

typedef struct EvChain {
    ev_idle w;
    int64_t count;
    int64_t n;
} EvChain;

static struct ev_loop *w1_ev_loop_new(W1Run *r)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);

    if (!loop || ev_backend(loop) != EVBACKEND_EPOLL) {
        snprintf(r->why, sizeof(r->why), "libev: no epoll backend");
        r->setup_failed = true;
        if (loop) {
            ev_loop_destroy(loop);
        }
        return NULL;
    }
    return loop;
}

static void ev_feed_chain_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    EvChain *c = w->data;

    (void)revents;
    if (++c->count < c->n) {
        ev_feed_event(loop, w, EV_CUSTOM);
    }
}

static void run_ev_feed_chain(int64_t n, W1Run *r)
{
    struct ev_loop *loop = w1_ev_loop_new(r);
    EvChain c = { .n = n };
    int64_t t0;

    if (!loop) {
        return;
    }
    ev_idle_init(&c.w, ev_feed_chain_cb);
    c.w.data = &c;
    t0 = bench_now_ns();
    ev_feed_event(loop, &c.w, EV_CUSTOM);
    while (c.count < n) {
        ev_run(loop, 0);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
    ev_loop_destroy(loop);
}

static void ev_count_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)revents;
    (*(int64_t *)w->data)++;
}

static void run_ev_feed_batch(int64_t n, W1Run *r)
{
    static ev_idle ws[BATCH_SIZE];
    struct ev_loop *loop = w1_ev_loop_new(r);
    int64_t count = 0, t0;

    if (!loop) {
        return;
    }
    for (int i = 0; i < BATCH_SIZE; i++) {
        ev_idle_init(&ws[i], ev_count_cb);
        ws[i].data = &count;
    }
    t0 = bench_now_ns();
    for (int64_t round = 0; round < n / BATCH_SIZE; round++) {
        int64_t before = count;

        for (int i = 0; i < BATCH_SIZE; i++) {
            ev_feed_event(loop, &ws[i], EV_CUSTOM);
        }
        ev_run(loop, EVRUN_NOWAIT);
        r->short_rounds += count - before != BATCH_SIZE;
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    ev_loop_destroy(loop);
}

static void ev_idle_chain_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    EvChain *c = w->data;

    (void)revents;
    ev_idle_stop(loop, w);
    if (++c->count < c->n) {
        ev_idle_start(loop, w);
    }
}

static void run_ev_idle_chain(int64_t n, W1Run *r)
{
    struct ev_loop *loop = w1_ev_loop_new(r);
    EvChain c = { .n = n };
    int64_t t0;

    if (!loop) {
        return;
    }
    ev_idle_init(&c.w, ev_idle_chain_cb);
    c.w.data = &c;
    t0 = bench_now_ns();
    ev_idle_start(loop, &c.w);
    while (c.count < n) {
        ev_run(loop, 0);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
    ev_loop_destroy(loop);
}

#endif /* HAVE_LIBEV */

/* ------------------------------------------------------------------ */
/* libuv                                                               */
/* ------------------------------------------------------------------ */
#ifdef HAVE_LIBUV

typedef struct UvChain {
    int64_t count;
    int64_t n;
} UvChain;

static void uv_idle_chain_cb(uv_idle_t *h)
{
    UvChain *c = h->data;

    uv_idle_stop(h);
    if (++c->count < c->n) {
        uv_idle_start(h, uv_idle_chain_cb);
    }
}

static void run_uv_idle_chain(int64_t n, W1Run *r)
{
    UvChain c = { .n = n };
    uv_loop_t loop;
    uv_idle_t idle;
    int64_t t0;

    uv_loop_init(&loop);
    uv_idle_init(&loop, &idle);
    idle.data = &c;
    t0 = bench_now_ns();
    uv_idle_start(&idle, uv_idle_chain_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
    uv_close((uv_handle_t *)&idle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void uv_idle_count_cb(uv_idle_t *h)
{
    uv_idle_stop(h);
    (*(int64_t *)h->data)++;
}

static void run_uv_idle_batch(int64_t n, W1Run *r)
{
    static uv_idle_t idles[BATCH_SIZE];
    int64_t count = 0, t0;
    uv_loop_t loop;

    uv_loop_init(&loop);
    for (int i = 0; i < BATCH_SIZE; i++) {
        uv_idle_init(&loop, &idles[i]);
        idles[i].data = &count;
    }
    t0 = bench_now_ns();
    for (int64_t round = 0; round < n / BATCH_SIZE; round++) {
        int64_t before = count;

        for (int i = 0; i < BATCH_SIZE; i++) {
            uv_idle_start(&idles[i], uv_idle_count_cb);
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        r->short_rounds += count - before != BATCH_SIZE;
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    for (int i = 0; i < BATCH_SIZE; i++) {
        uv_close((uv_handle_t *)&idles[i], NULL);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void uv_async_self_cb(uv_async_t *h)
{
    UvChain *c = h->data;

    if (++c->count < c->n) {
        uv_async_send(h);
    } else {
        uv_close((uv_handle_t *)h, NULL);
    }
}

static void run_uv_async_self(int64_t n, W1Run *r)
{
    UvChain c = { .n = n };
    uv_loop_t loop;
    uv_async_t async;
    int64_t t0;

    uv_loop_init(&loop);
    uv_async_init(&loop, &async, uv_async_self_cb);
    async.data = &c;
    t0 = bench_now_ns();
    uv_async_send(&async);
    uv_run(&loop, UV_RUN_DEFAULT);
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
    uv_loop_close(&loop);
}

#endif /* HAVE_LIBUV */

/* ------------------------------------------------------------------ */
/* libevent                                                            */
/* ------------------------------------------------------------------ */
#ifdef HAVE_LIBEVENT

typedef struct EventChain {
    struct event *ev;
    int64_t count;
    int64_t n;
} EventChain;

static struct event_base *w1_event_base_new(W1Run *r)
{
    struct event_base *base = event_base_new();

    if (!base || strcmp(event_base_get_method(base), "epoll") != 0) {
        snprintf(r->why, sizeof(r->why), "libevent: no epoll backend");
        r->setup_failed = true;
        if (base) {
            event_base_free(base);
        }
        return NULL;
    }
    return base;
}

static void event_chain_cb(evutil_socket_t fd, short what, void *arg)
{
    EventChain *c = arg;

    (void)fd;
    (void)what;
    if (++c->count < c->n) {
        event_active(c->ev, EV_READ, 0);
    }
}

static void run_event_chain(int64_t n, W1Run *r)
{
    struct event_base *base = w1_event_base_new(r);
    EventChain c = { .n = n };
    int64_t t0;

    if (!base) {
        return;
    }
    c.ev = event_new(base, -1, 0, event_chain_cb, &c);
    t0 = bench_now_ns();
    event_active(c.ev, EV_READ, 0);
    while (c.count < n) {
        event_base_loop(base, 0);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = c.count;
    event_free(c.ev);
    event_base_free(base);
}

static void event_count_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (*(int64_t *)arg)++;
}

static void run_event_batch(int64_t n, W1Run *r)
{
    static struct event *evs[BATCH_SIZE];
    struct event_base *base = w1_event_base_new(r);
    int64_t count = 0, t0;

    if (!base) {
        return;
    }
    for (int i = 0; i < BATCH_SIZE; i++) {
        evs[i] = event_new(base, -1, 0, event_count_cb, &count);
    }
    t0 = bench_now_ns();
    for (int64_t round = 0; round < n / BATCH_SIZE; round++) {
        int64_t before = count;

        for (int i = 0; i < BATCH_SIZE; i++) {
            event_active(evs[i], EV_READ, 0);
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        r->short_rounds += count - before != BATCH_SIZE;
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    for (int i = 0; i < BATCH_SIZE; i++) {
        event_free(evs[i]);
    }
    event_base_free(base);
}

#endif /* HAVE_LIBEVENT */

/* ------------------------------------------------------------------ */
/* driver                                                              */
/* ------------------------------------------------------------------ */

typedef struct W1Peer {
    const char *variant;
    const char *peer;
    int64_t n;
    W1Fn *fn;
    BenchSeries series;
} W1Peer;

#define PEER(variant_, peer_, n_, fn_)                                         \
    { .variant = (variant_), .peer = (peer_), .n = (n_), .fn = (fn_) }

static W1Peer peers[] = {
    PEER("chain", "libaioctx-oneshot", CHAIN_N, run_aio_chain_oneshot),
    PEER("chain", "libaioctx-bh", CHAIN_N, run_aio_chain_bh),
    PEER("chain", "raw-plain", CHAIN_N, run_raw_plain_chain),
    PEER("chain", "raw-atomic", CHAIN_N, run_raw_atomic_chain),
#ifdef HAVE_LIBEV
    PEER("chain", "libev-feed", CHAIN_N, run_ev_feed_chain),
    PEER("chain", "libev-idle", 2000000, run_ev_idle_chain),
#endif
#ifdef HAVE_LIBUV
    PEER("chain", "libuv-idle", 1000000, run_uv_idle_chain),
    PEER("chain", "libuv-async(self)", 1000000, run_uv_async_self),
#endif
#ifdef HAVE_LIBEVENT
    PEER("chain", "libevent", CHAIN_N, run_event_chain),
#endif
    PEER("batch1000", "libaioctx-bh", BATCH_N, run_aio_batch),
    PEER("batch1000", "raw-plain", BATCH_N, run_raw_plain_batch),
    PEER("batch1000", "raw-atomic", BATCH_N, run_raw_atomic_batch),
#ifdef HAVE_LIBEV
    PEER("batch1000", "libev-feed", BATCH_N, run_ev_feed_batch),
#endif
#ifdef HAVE_LIBUV
    PEER("batch1000", "libuv-idle", BATCH_N, run_uv_idle_batch),
#endif
#ifdef HAVE_LIBEVENT
    PEER("batch1000", "libevent", BATCH_N, run_event_batch),
#endif
};

#define NPEERS ((int)(sizeof(peers) / sizeof(peers[0])))

static void run_one(W1Peer *p)
{
    W1Run r = { 0 };
    bool ok;

    p->fn(p->n, &r);
    if (r.setup_failed) {
        bench_series_add(&p->series, 0, false, "%s", r.why);
        return;
    }
    ok = r.count == p->n && r.short_rounds == 0;
    bench_series_add(&p->series, (double)r.elapsed_ns / (double)p->n, ok,
                     "count=%lld/%lld short_rounds=%lld", (long long)r.count,
                     (long long)p->n, (long long)r.short_rounds);
}

static W1Peer *find_peer(const char *variant, const char *peer)
{
    for (int i = 0; i < NPEERS; i++) {
        if (!strcmp(peers[i].variant, variant) &&
            !strcmp(peers[i].peer, peer) && peers[i].series.nsamples) {
            return &peers[i];
        }
    }
    return NULL;
}

static void print_ratios(const char *variant, const char *ours)
{
    W1Peer *a = find_peer(variant, ours);
    const char *bases[] = { "libev-feed", "raw-atomic" };

    for (size_t i = 0; a && i < sizeof(bases) / sizeof(bases[0]); i++) {
        W1Peer *b = find_peer(variant, bases[i]);

        if (b) {
            bench_print_ratio(&a->series, &b->series);
        }
    }
}

int main(int argc, char **argv)
{
    int runs = bench_runs(5);
    AioContext *probe = aio_context_new(NULL);

    printf("# W1 deferred callbacks: %d runs, libaioctx engine %s\n", runs,
           probe ? aio_context_get_engine_name(probe) : "(none)");
    fflush(stdout);
    aio_context_unref(probe);
    for (int i = 0; i < NPEERS; i++) {
        W1Peer *p = &peers[i];
        bool batch = !strcmp(p->variant, "batch1000");
        bool own_n = p->n != CHAIN_N && p->n != BATCH_N;

        p->n = bench_scaled(p->n, batch ? BATCH_SIZE : 1);
        bench_series_init(&p->series, "W1", p->variant, p->peer, "ns");
        bench_series_set_ops(&p->series, p->n);
        if (own_n || bench_scale() != 1) {
            bench_series_note(&p->series, "N=%lld", (long long)p->n);
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
    print_ratios("chain", "libaioctx-oneshot");
    print_ratios("chain", "libaioctx-bh");
    print_ratios("batch1000", "libaioctx-bh");
    return 0;
}
