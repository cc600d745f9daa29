/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W3 of bench-workloads.md: timers.
 *
 * (a) fire: N one-shot timers (N = 1,000,000 and 10,000), delay_i =
 *     xorshift64(seed 42) % 1000 ms, deadline_i = T0 + delay_i where T0 is
 *     read just before arming.  Arm all, run the loop until none is left.
 *     Reported: a-arm (ns per arm), a-cpu (process CPU for arm + run, ns
 *     per timer), a-wall (ms from T0 until the loop returned), a-latemax
 *     (worst lateness, ms) and a-rss (peak RSS of the run, MiB).  Every
 *     callback reads CLOCK_MONOTONIC: firing before deadline_i is "early".
 *     libaioctx fails on any early timer, peers on one early by > 1 ms.
 * (b) churn: 10,000 armed timers 1000..2000 s out, then 10,000,000
 *     re-arms (xorshift64 seed 7: timer x % 10000 gets 1000 s +
 *     ((x >> 32) % 1,000,000) ms).  The loop is not run.  ns per re-arm.
 *     Each peer computes the new deadline from its cached loop time (libev
 *     ev_timer_again, libuv uv_timer_start, libevent event_add); libaioctx
 *     arms absolute deadlines from a time read once before the loop, and
 *     once more reading the clock on every re-arm ("+clock").  In (a)
 *     libaioctx runs on its default engine and again on epoll.
 *
 * Peers: libev (4-heap, EVBACKEND_EPOLL), libuv (binary heap), libevent
 * (min-heap; default coarse clock and EVENT_BASE_FLAG_PRECISE_TIMER), and
 * a QEMU-like sorted list sleeping in ppoll() (N = 10,000 only; 20,000
 * re-arms in (b)).  Each run happens in a child process, so peak RSS and
 * CPU time belong to that run alone; runs of the peers are interleaved.
 *
 * Usage: bench-timers [filter...]   (filters match "a/1M/libev", "b/libuv"...)
 * RUNS from the environment: default 3 for N = 1M, 5 otherwise.
 * BENCH_SCALE=f multiplies N and the re-arm counts (the variant names keep
 * "1M" and "10k"; the check column then gives the N used).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <aioctx.h>

#ifdef HAVE_LIBEV
#include <ev.h>
#endif
#ifdef HAVE_LIBUV
#include <uv.h>
#endif
#ifdef HAVE_LIBEVENT
#include <event2/event.h>
#include <event2/event_struct.h>
#endif

#include "bench-util.h"
#include "w3_common.h"

#define NS_PER_MS 1000000LL

/* ---- what one run reports back to the parent ---- */

typedef struct {
    double arm_ns;  /* per timer */
    double cpu_ns;  /* per timer */
    double wall_ms;
    double latemax_ms;
    double rss_mib;
    double churn_ns; /* per re-arm */
    int64_t fired;
    int64_t early;
    int64_t early_max_ns;
    char err[64];
} RunResult;

typedef void RunFn(int64_t n, RunResult *r);

/* ---- accounting shared by every peer's callback ---- */

static struct {
    int64_t fired;
    int64_t early;
    int64_t early_max;
    int64_t late_max;
} fire_acct;

static inline void acct_fire(int64_t deadline)
{
    int64_t now = bench_now_ns();

    if (now < deadline) {
        fire_acct.early++;
        if (deadline - now > fire_acct.early_max) {
            fire_acct.early_max = deadline - now;
        }
    } else if (now - deadline > fire_acct.late_max) {
        fire_acct.late_max = now - deadline;
    }
    fire_acct.fired++;
}

static int64_t cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static double peak_rss_mib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* Timestamps of a fire run, turned into figures by fire_finish(). */
typedef struct {
    int64_t t0, armed, done, cpu0, cpu1;
} FireClock;

static void fire_start(FireClock *fc)
{
    memset(&fire_acct, 0, sizeof(fire_acct));
    fc->cpu0 = cpu_ns();
    fc->t0 = bench_now_ns();
}

static void fire_finish(const FireClock *fc, int64_t n, RunResult *r)
{
    r->arm_ns = (double)(fc->armed - fc->t0) / n;
    r->wall_ms = (fc->done - fc->t0) / 1e6;
    r->cpu_ns = (double)(fc->cpu1 - fc->cpu0) / n;
    r->latemax_ms = fire_acct.late_max / 1e6;
    r->fired = fire_acct.fired;
    r->early = fire_acct.early;
    r->early_max_ns = fire_acct.early_max;
    r->rss_mib = peak_rss_mib();
}

/* ---- libaioctx ---- */

typedef struct {
    QEMUTimer timer;
    int64_t deadline;
} AioFireTimer;

static void aio_fire_cb(void *opaque)
{
    AioFireTimer *t = opaque;

    acct_fire(t->deadline);
}

/* NULL: the default engine ($AIOCTX_ENGINE or the best available). */
static const char *aio_engine;

static AioContext *bench_ctx_new(RunResult *r)
{
    AioContextOptions opts = { .engine = aio_engine };
    Error *err = NULL;
    AioContext *ctx = aio_context_new_with_options(&opts, &err);

    if (!ctx) {
        snprintf(r->err, sizeof(r->err), "aio_context_new: %s",
                 error_get_pretty(err));
        error_free(err);
    }
    return ctx;
}

static void fire_libaioctx(int64_t n, RunResult *r)
{
    AioContext *ctx = bench_ctx_new(r);
    AioFireTimer *t = calloc(n, sizeof(*t));
    uint64_t x = W3_SEED_FIRE;
    FireClock fc;

    if (!ctx || !t) {
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        aio_timer_init(ctx, &t[i].timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                       aio_fire_cb, &t[i]);
    }
    fire_start(&fc);
    for (int64_t i = 0; i < n; i++) {
        t[i].deadline = fc.t0 + w3_fire_delay_ms(&x) * NS_PER_MS;
        timer_mod_ns(&t[i].timer, t[i].deadline);
    }
    fc.armed = bench_now_ns();
    while (fire_acct.fired < n) {
        aio_poll(ctx, true);
    }
    fc.done = bench_now_ns();
    fc.cpu1 = cpu_ns();
    fire_finish(&fc, n, r);
    aio_context_unref(ctx);
    free(t);
}

/* The same on the epoll engine, the peers' back-end. */
static void fire_libaioctx_epoll(int64_t n, RunResult *r)
{
    aio_engine = "epoll";
    fire_libaioctx(n, r);
}

typedef struct {
    QEMUTimer timer;
} AioChurnTimer;

static void aio_never_cb(void *opaque)
{
    (void)opaque;
    fire_acct.fired++;
}

/* (b) for libaioctx; read_clock: add the current time to every re-arm. */
static void churn_libaioctx_common(int64_t n, RunResult *r, bool read_clock)
{
    AioContext *ctx = bench_ctx_new(r);
    AioChurnTimer *t = calloc(W3_CHURN_TIMERS, sizeof(*t));
    uint64_t x = W3_SEED_CHURN_INIT;
    int64_t now, start, end;

    if (!ctx || !t) {
        return;
    }
    memset(&fire_acct, 0, sizeof(fire_acct));
    now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    for (int i = 0; i < W3_CHURN_TIMERS; i++) {
        aio_timer_init(ctx, &t[i].timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                       aio_never_cb, &t[i]);
        timer_mod_ns(&t[i].timer,
                     now + w3_churn_delay_ms(w3_xorshift64(&x)) * NS_PER_MS);
    }
    x = W3_SEED_CHURN;
    start = bench_now_ns();
    if (read_clock) {
        for (int64_t op = 0; op < n; op++) {
            uint32_t idx;
            int64_t ms;

            w3_churn_next(&x, &idx, &ms);
            timer_mod_ns(&t[idx].timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                                            ms * NS_PER_MS);
        }
    } else {
        for (int64_t op = 0; op < n; op++) {
            uint32_t idx;
            int64_t ms;

            w3_churn_next(&x, &idx, &ms);
            timer_mod_ns(&t[idx].timer, now + ms * NS_PER_MS);
        }
    }
    end = bench_now_ns();
    r->churn_ns = (double)(end - start) / n;

    /* Check: every timer pending at the deadline of its last re-arm. */
    if (!read_clock) {
        int64_t *want = calloc(W3_CHURN_TIMERS, sizeof(*want));

        x = W3_SEED_CHURN_INIT;
        for (int i = 0; i < W3_CHURN_TIMERS; i++) {
            want[i] = now + w3_churn_delay_ms(w3_xorshift64(&x)) * NS_PER_MS;
        }
        x = W3_SEED_CHURN;
        for (int64_t op = 0; op < n; op++) {
            uint32_t idx;
            int64_t ms;

            w3_churn_next(&x, &idx, &ms);
            want[idx] = now + ms * NS_PER_MS;
        }
        for (int i = 0; i < W3_CHURN_TIMERS; i++) {
            if (timer_expire_time_ns(&t[i].timer) != want[i]) {
                snprintf(r->err, sizeof(r->err), "timer %d: deadline %lld, "
                         "want %lld", i,
                         (long long)timer_expire_time_ns(&t[i].timer),
                         (long long)want[i]);
                break;
            }
        }
        free(want);
    }
    aio_poll(ctx, false);
    if (fire_acct.fired) {
        snprintf(r->err, sizeof(r->err), "%lld timers fired",
                 (long long)fire_acct.fired);
    }
    aio_context_unref(ctx);
    free(t);
}

static void churn_libaioctx(int64_t n, RunResult *r)
{
    churn_libaioctx_common(n, r, false);
}

static void churn_libaioctx_clock(int64_t n, RunResult *r)
{
    churn_libaioctx_common(n, r, true);
}

/* ---- libev ---- */

#ifdef HAVE_LIBEV
typedef struct {
    ev_timer w;
    int64_t deadline;
} EvFireTimer;

static void ev_fire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    acct_fire(((EvFireTimer *)w)->deadline);
}

static struct ev_loop *ev_loop_epoll(RunResult *r)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);

    if (!loop || ev_backend(loop) != EVBACKEND_EPOLL) {
        snprintf(r->err, sizeof(r->err), "libev: no epoll backend");
        return NULL;
    }
    return loop;
}

static void fire_libev(int64_t n, RunResult *r)
{
    struct ev_loop *loop = ev_loop_epoll(r);
    EvFireTimer *t = calloc(n, sizeof(*t));
    uint64_t x = W3_SEED_FIRE;
    FireClock fc;

    if (!loop || !t) {
        return;
    }
    fire_start(&fc);
    ev_now_update(loop);
    for (int64_t i = 0; i < n; i++) {
        int64_t ms = w3_fire_delay_ms(&x);

        t[i].deadline = fc.t0 + ms * NS_PER_MS;
        ev_timer_init(&t[i].w, ev_fire_cb, ms / 1000.0, 0.);
        ev_timer_start(loop, &t[i].w);
    }
    fc.armed = bench_now_ns();
    ev_run(loop, 0);
    fc.done = bench_now_ns();
    fc.cpu1 = cpu_ns();
    fire_finish(&fc, n, r);
}

static void ev_never_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    fire_acct.fired++;
}

static void churn_libev(int64_t n, RunResult *r)
{
    struct ev_loop *loop = ev_loop_epoll(r);
    ev_timer *w = calloc(W3_CHURN_TIMERS, sizeof(*w));
    uint64_t x = W3_SEED_CHURN_INIT;
    int64_t start, end;

    if (!loop || !w) {
        return;
    }
    memset(&fire_acct, 0, sizeof(fire_acct));
    for (int i = 0; i < W3_CHURN_TIMERS; i++) {
        ev_timer_init(&w[i], ev_never_cb, 0.,
                      w3_churn_delay_ms(w3_xorshift64(&x)) / 1000.0);
        ev_timer_again(loop, &w[i]);
    }
    x = W3_SEED_CHURN;
    start = bench_now_ns();
    for (int64_t op = 0; op < n; op++) {
        uint32_t idx;
        int64_t ms;

        w3_churn_next(&x, &idx, &ms);
        w[idx].repeat = ms / 1000.0;
        ev_timer_again(loop, &w[idx]);
    }
    end = bench_now_ns();
    r->churn_ns = (double)(end - start) / n;
    ev_run(loop, EVRUN_NOWAIT);
    for (int i = 0; i < W3_CHURN_TIMERS; i++) {
        if (!ev_is_active(&w[i])) {
            snprintf(r->err, sizeof(r->err), "timer %d not active", i);
            break;
        }
    }
    if (fire_acct.fired) {
        snprintf(r->err, sizeof(r->err), "%lld timers fired",
                 (long long)fire_acct.fired);
    }
}
#endif

/* ---- libuv ---- */

#ifdef HAVE_LIBUV
typedef struct {
    uv_timer_t h;
    int64_t deadline;
} UvFireTimer;

static void uv_fire_cb(uv_timer_t *h)
{
    acct_fire(((UvFireTimer *)h)->deadline);
}

static void fire_libuv(int64_t n, RunResult *r)
{
    uv_loop_t *loop = malloc(sizeof(*loop));
    UvFireTimer *t = calloc(n, sizeof(*t));
    uint64_t x = W3_SEED_FIRE;
    FireClock fc;

    if (!loop || !t || uv_loop_init(loop) != 0) {
        snprintf(r->err, sizeof(r->err), "libuv: set-up failed");
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uv_timer_init(loop, &t[i].h);
    }
    fire_start(&fc);
    uv_update_time(loop);
    for (int64_t i = 0; i < n; i++) {
        int64_t ms = w3_fire_delay_ms(&x);

        t[i].deadline = fc.t0 + ms * NS_PER_MS;
        uv_timer_start(&t[i].h, uv_fire_cb, (uint64_t)ms, 0);
    }
    fc.armed = bench_now_ns();
    while (fire_acct.fired < n) {
        uv_run(loop, UV_RUN_ONCE);
    }
    fc.done = bench_now_ns();
    fc.cpu1 = cpu_ns();
    fire_finish(&fc, n, r);
}

static void uv_never_cb(uv_timer_t *h)
{
    (void)h;
    fire_acct.fired++;
}

static void churn_libuv(int64_t n, RunResult *r)
{
    uv_loop_t *loop = malloc(sizeof(*loop));
    uv_timer_t *h = calloc(W3_CHURN_TIMERS, sizeof(*h));
    uint64_t x = W3_SEED_CHURN_INIT;
    int64_t start, end;

    if (!loop || !h || uv_loop_init(loop) != 0) {
        snprintf(r->err, sizeof(r->err), "libuv: set-up failed");
        return;
    }
    memset(&fire_acct, 0, sizeof(fire_acct));
    for (int i = 0; i < W3_CHURN_TIMERS; i++) {
        uv_timer_init(loop, &h[i]);
        uv_timer_start(&h[i], uv_never_cb,
                       (uint64_t)w3_churn_delay_ms(w3_xorshift64(&x)), 0);
    }
    x = W3_SEED_CHURN;
    start = bench_now_ns();
    for (int64_t op = 0; op < n; op++) {
        uint32_t idx;
        int64_t ms;

        w3_churn_next(&x, &idx, &ms);
        uv_timer_start(&h[idx], uv_never_cb, (uint64_t)ms, 0);
    }
    end = bench_now_ns();
    r->churn_ns = (double)(end - start) / n;
    uv_run(loop, UV_RUN_NOWAIT);
    for (int i = 0; i < W3_CHURN_TIMERS; i++) {
        if (!uv_is_active((uv_handle_t *)&h[i])) {
            snprintf(r->err, sizeof(r->err), "timer %d not active", i);
            break;
        }
    }
    if (fire_acct.fired) {
        snprintf(r->err, sizeof(r->err), "%lld timers fired",
                 (long long)fire_acct.fired);
    }
}
#endif

/* ---- libevent ---- */

#ifdef HAVE_LIBEVENT
typedef struct {
    struct event ev;
    int64_t deadline;
} EvtFireTimer;

static void evt_fire_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    acct_fire(((EvtFireTimer *)arg)->deadline);
}

static struct event_base *evt_base_new(bool precise, RunResult *r)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (precise) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    }
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base || strcmp(event_base_get_method(base), "epoll") != 0) {
        snprintf(r->err, sizeof(r->err), "libevent: not on epoll");
        return NULL;
    }
    return base;
}

static void fire_libevent_common(int64_t n, RunResult *r, bool precise)
{
    struct event_base *base = evt_base_new(precise, r);
    EvtFireTimer *t = calloc(n, sizeof(*t));
    uint64_t x = W3_SEED_FIRE;
    FireClock fc;

    if (!base || !t) {
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        event_assign(&t[i].ev, base, -1, 0, evt_fire_cb, &t[i]);
    }
    fire_start(&fc);
    for (int64_t i = 0; i < n; i++) {
        int64_t ms = w3_fire_delay_ms(&x);
        struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

        t[i].deadline = fc.t0 + ms * NS_PER_MS;
        event_add(&t[i].ev, &tv);
    }
    fc.armed = bench_now_ns();
    event_base_dispatch(base);
    fc.done = bench_now_ns();
    fc.cpu1 = cpu_ns();
    fire_finish(&fc, n, r);
}

static void fire_libevent(int64_t n, RunResult *r)
{
    fire_libevent_common(n, r, false);
}

static void fire_libevent_precise(int64_t n, RunResult *r)
{
    fire_libevent_common(n, r, true);
}

static void evt_never_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fire_acct.fired++;
}

static void churn_libevent(int64_t n, RunResult *r)
{
    struct event_base *base = evt_base_new(false, r);
    struct event *ev = calloc(W3_CHURN_TIMERS, sizeof(*ev));
    uint64_t x = W3_SEED_CHURN_INIT;
    int64_t start, end;

    if (!base || !ev) {
        return;
    }
    memset(&fire_acct, 0, sizeof(fire_acct));
    for (int i = 0; i < W3_CHURN_TIMERS; i++) {
        int64_t ms = w3_churn_delay_ms(w3_xorshift64(&x));
        struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

        event_assign(&ev[i], base, -1, 0, evt_never_cb, NULL);
        event_add(&ev[i], &tv);
    }
    x = W3_SEED_CHURN;
    start = bench_now_ns();
    for (int64_t op = 0; op < n; op++) {
        uint32_t idx;
        int64_t ms;
        struct timeval tv;

        w3_churn_next(&x, &idx, &ms);
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        event_add(&ev[idx], &tv);
    }
    end = bench_now_ns();
    r->churn_ns = (double)(end - start) / n;
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < W3_CHURN_TIMERS; i++) {
        if (!event_pending(&ev[i], EV_TIMEOUT, NULL)) {
            snprintf(r->err, sizeof(r->err), "timer %d not pending", i);
            break;
        }
    }
    if (fire_acct.fired) {
        snprintf(r->err, sizeof(r->err), "%lld timers fired",
                 (long long)fire_acct.fired);
    }
}
#endif

/* ---- a QEMU-like sorted list (what QEMU's timer lists are) ---- */

typedef struct ListTimer {
    struct ListTimer *next;
    int64_t expire; /* -1: not linked */
} ListTimer;

typedef struct {
    ListTimer *head;
} TimerList;

/* QEMU's timer_mod: unlink if pending, insert after every expire <= it. */
static void list_mod(TimerList *l, ListTimer *t, int64_t expire)
{
    ListTimer **pt;

    if (t->expire >= 0) {
        for (pt = &l->head; *pt != t; pt = &(*pt)->next) {
        }
        *pt = t->next;
    }
    t->expire = expire;
    for (pt = &l->head; *pt && (*pt)->expire <= expire; pt = &(*pt)->next) {
    }
    t->next = *pt;
    *pt = t;
}

static void fire_list(int64_t n, RunResult *r)
{
    ListTimer *t = calloc(n, sizeof(*t));
    TimerList l = { NULL };
    uint64_t x = W3_SEED_FIRE;
    FireClock fc;

    if (!t) {
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        t[i].expire = -1;
    }
    fire_start(&fc);
    for (int64_t i = 0; i < n; i++) {
        list_mod(&l, &t[i], fc.t0 + w3_fire_delay_ms(&x) * NS_PER_MS);
    }
    fc.armed = bench_now_ns();
    while (l.head) {
        int64_t now = bench_now_ns();
        struct timespec ts;

        while (l.head && l.head->expire <= now) {
            ListTimer *head = l.head;
            int64_t deadline = head->expire;

            l.head = head->next;
            head->expire = -1;
            acct_fire(deadline);
        }
        if (l.head) {
            int64_t d = l.head->expire - now;

            ts.tv_sec = d / 1000000000LL;
            ts.tv_nsec = d % 1000000000LL;
            ppoll(NULL, 0, &ts, NULL);
        }
    }
    fc.done = bench_now_ns();
    fc.cpu1 = cpu_ns();
    fire_finish(&fc, n, r);
}

static void churn_list(int64_t n, RunResult *r)
{
    ListTimer *t = calloc(W3_CHURN_TIMERS, sizeof(*t));
    TimerList l = { NULL };
    uint64_t x = W3_SEED_CHURN_INIT;
    int64_t now = bench_now_ns(), start, end, count = 0;

    if (!t) {
        return;
    }
    for (int i = 0; i < W3_CHURN_TIMERS; i++) {
        t[i].expire = -1;
        list_mod(&l, &t[i],
                 now + w3_churn_delay_ms(w3_xorshift64(&x)) * NS_PER_MS);
    }
    x = W3_SEED_CHURN;
    start = bench_now_ns();
    for (int64_t op = 0; op < n; op++) {
        uint32_t idx;
        int64_t ms;

        w3_churn_next(&x, &idx, &ms);
        list_mod(&l, &t[idx], now + ms * NS_PER_MS);
    }
    end = bench_now_ns();
    r->churn_ns = (double)(end - start) / n;
    for (ListTimer *p = l.head; p; p = p->next) {
        if (p->next && p->next->expire < p->expire) {
            snprintf(r->err, sizeof(r->err), "list out of order");
        }
        count++;
    }
    if (count != W3_CHURN_TIMERS) {
        snprintf(r->err, sizeof(r->err), "%lld timers linked",
                 (long long)count);
    }
}

/* ---- running one measurement in a child process ---- */

static bool run_in_child(RunFn *fn, int64_t n, RunResult *r)
{
    int fds[2], status;
    pid_t pid;
    ssize_t got;

    memset(r, 0, sizeof(*r));
    fflush(NULL);
    if (pipe(fds) < 0) {
        snprintf(r->err, sizeof(r->err), "pipe: %s", strerror(errno));
        return false;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(r->err, sizeof(r->err), "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        RunResult res;

        close(fds[0]);
        memset(&res, 0, sizeof(res));
        fn(n, &res);
        if (write(fds[1], &res, sizeof(res)) != sizeof(res)) {
            _exit(2);
        }
        _exit(0);
    }
    close(fds[1]);
    got = read(fds[0], r, sizeof(*r));
    close(fds[0]);
    waitpid(pid, &status, 0);
    if (got != sizeof(*r) || !WIFEXITED(status) || WEXITSTATUS(status)) {
        snprintf(r->err, sizeof(r->err), "run died (status 0x%x)", status);
        return false;
    }
    return !r->err[0];
}

/* ---- (a) ---- */

typedef struct {
    const char *peer;
    RunFn *fire;
    RunFn *churn;
    bool strict;   /* any early timer fails (libaioctx) */
    bool only_10k; /* the O(n) list */
} Peer;

static const Peer peers[] = {
    { "libaioctx", fire_libaioctx, churn_libaioctx, true, false },
    { "libaioctx(+clock)", NULL, churn_libaioctx_clock, true, false },
    { "libaioctx(epoll)", fire_libaioctx_epoll, NULL, true, false },
#ifdef HAVE_LIBEV
    { "libev", fire_libev, churn_libev, false, false },
#endif
#ifdef HAVE_LIBUV
    { "libuv", fire_libuv, churn_libuv, false, false },
#endif
#ifdef HAVE_LIBEVENT
    { "libevent", fire_libevent, churn_libevent, false, false },
    { "libevent(precise)", fire_libevent_precise, NULL, false, false },
#endif
    { "sorted-list(QEMU-like)", fire_list, churn_list, true, true },
};
#define NPEERS (sizeof(peers) / sizeof(peers[0]))

enum { A_ARM, A_CPU, A_WALL, A_LATE, A_RSS, A_NFIG };

/* The figures of (a) for one peer, and its early-timer tally. */
typedef struct {
    BenchSeries s[A_NFIG];
    int64_t early_total;
    int64_t early_max;
} FireSeries;

static void fire_series_init(FireSeries *fs, const Peer *p, const char *nname,
                             int64_t n)
{
    static const char *const names[A_NFIG] = { "a-arm", "a-cpu", "a-wall",
                                               "a-latemax", "a-rss" };
    static const char *const units[A_NFIG] = { "ns/timer", "ns/timer", "ms",
                                               "ms", "MiB" };

    memset(fs, 0, sizeof(*fs));
    for (int f = 0; f < A_NFIG; f++) {
        char variant[32];

        snprintf(variant, sizeof(variant), "%s(N=%s)", names[f], nname);
        bench_series_init(&fs->s[f], "W3", strdup(variant), p->peer,
                          units[f]);
        bench_series_set_ops(&fs->s[f], n);
    }
}

/* One run of (a) for one peer, checked and recorded. */
static void fire_run(FireSeries *fs, const Peer *p, int64_t n)
{
    RunResult r;
    bool ok = run_in_child(p->fire, n, &r);
    const char *why = r.err;
    char buf[64];

    if (ok && r.fired != n) {
        snprintf(buf, sizeof(buf), "fired %lld of %lld", (long long)r.fired,
                 (long long)n);
        why = buf;
        ok = false;
    } else if (ok && p->strict && r.early) {
        snprintf(buf, sizeof(buf), "%lld early, by up to %lld ns",
                 (long long)r.early, (long long)r.early_max_ns);
        why = buf;
        ok = false;
    } else if (ok && r.early_max_ns > W3_EARLY_FAIL_NS) {
        snprintf(buf, sizeof(buf), "%lld early, by up to %.2f ms",
                 (long long)r.early, r.early_max_ns / 1e6);
        why = buf;
        ok = false;
    }
    fs->early_total += r.early;
    if (r.early_max_ns > fs->early_max) {
        fs->early_max = r.early_max_ns;
    }
    bench_series_add(&fs->s[A_ARM], r.arm_ns, ok, "%s", why);
    bench_series_add(&fs->s[A_CPU], r.cpu_ns, ok, "%s", why);
    bench_series_add(&fs->s[A_WALL], r.wall_ms, ok, "%s", why);
    bench_series_add(&fs->s[A_LATE], r.latemax_ms, ok, "%s", why);
    bench_series_add(&fs->s[A_RSS], r.rss_mib, ok, "%s", why);
}

static int peer_index(const char *name)
{
    for (size_t i = 0; i < NPEERS; i++) {
        if (!strcmp(peers[i].peer, name)) {
            return (int)i;
        }
    }
    return -1;
}

/*
 * (a) for every selected peer.  Runs are interleaved (run 1 of every
 * peer, then run 2...) so that a noisy machine hurts all peers alike.
 */
static void run_fire(int argc, char **argv, int64_t n, const char *nname,
                     int runs)
{
    static FireSeries fs[NPEERS];
    char scaled_note[32];
    bool on[NPEERS] = { false };
    int ref = peer_index("libev"), ours = peer_index("libaioctx");

    snprintf(scaled_note, sizeof(scaled_note), "N=%lld ", (long long)n);
    for (size_t i = 0; i < NPEERS; i++) {
        char sel[64];

        snprintf(sel, sizeof(sel), "a/%s/%s", nname, peers[i].peer);
        on[i] = peers[i].fire && !(peers[i].only_10k && strcmp(nname, "10k")) &&
                bench_selected(argc, argv, sel);
        fire_series_init(&fs[i], &peers[i], nname, n);
    }
    for (int run = 0; run < runs; run++) {
        for (size_t i = 0; i < NPEERS; i++) {
            if (on[i]) {
                fire_run(&fs[i], &peers[i], n);
            }
        }
    }
    for (size_t i = 0; i < NPEERS; i++) {
        for (int f = 0; on[i] && f < A_NFIG; f++) {
            bench_series_note(&fs[i].s[f], "%searly=%lld/%d runs, max %.3f ms",
                              bench_scale() != 1 ? scaled_note : "",
                              (long long)fs[i].early_total, runs,
                              fs[i].early_max / 1e6);
            bench_series_report(&fs[i].s[f]);
        }
    }
    if (ref >= 0 && ours >= 0 && on[ref] && on[ours]) {
        for (int f = 0; f < A_NFIG; f++) {
            bench_print_ratio(&fs[ours].s[f], &fs[ref].s[f]);
        }
    }
}

/* ---- (b) ---- */

static void run_churn(int argc, char **argv, int runs)
{
    int64_t ops = bench_scaled(W3_CHURN_OPS, 1);
    int64_t ops_list = bench_scaled(W3_CHURN_OPS_LIST, 1);
    static BenchSeries s[NPEERS];
    bool on[NPEERS] = { false };
    int ref = peer_index("libev"), ours = peer_index("libaioctx");

    for (size_t i = 0; i < NPEERS; i++) {
        char sel[64];

        snprintf(sel, sizeof(sel), "b/%s", peers[i].peer);
        on[i] = peers[i].churn && bench_selected(argc, argv, sel);
        bench_series_init(&s[i], "W3", "b-churn(10k)", peers[i].peer,
                          "ns/re-arm");
        bench_series_set_ops(&s[i], peers[i].only_10k ? ops_list : ops);
    }
    for (int run = 0; run < runs; run++) {
        for (size_t i = 0; i < NPEERS; i++) {
            RunResult r;
            bool ok;

            if (!on[i]) {
                continue;
            }
            ok = run_in_child(peers[i].churn, s[i].ops, &r);
            bench_series_add(&s[i], r.churn_ns, ok, "%s", r.err);
        }
    }
    for (size_t i = 0; i < NPEERS; i++) {
        if (!on[i]) {
            continue;
        }
        if (peers[i].only_10k || bench_scale() != 1) {
            bench_series_note(&s[i], "%lld re-arms", (long long)s[i].ops);
        }
        bench_series_report(&s[i]);
    }
    if (ref >= 0 && ours >= 0 && on[ref] && on[ours]) {
        bench_print_ratio(&s[ours], &s[ref]);
    }
}

int main(int argc, char **argv)
{
    AioContext *probe = aio_context_new(NULL);

    if (probe) {
        printf("# libaioctx engine: %s\n", aio_context_get_engine_name(probe));
        aio_context_unref(probe);
    }
    run_fire(argc, argv, bench_scaled(1000000, 1), "1M", bench_runs(3));
    run_fire(argc, argv, bench_scaled(10000, 1), "10k", bench_runs(5));
    run_churn(argc, argv, bench_runs(5));
    return 0;
}
