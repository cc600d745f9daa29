/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coroutines: create/enter/yield, nesting, the pool, stacks and the guard
 * page, threads without a context, migration between threads,
 * aio_co_schedule / aio_co_wake / aio_co_enter / aio_co_reschedule_self,
 * the 25,000-coroutine wake chain, and misuse diagnostics.
 */
#define _GNU_SOURCE
#include <stdint.h>

#include "test-co-util.h"

/*
 * glibc declares thread_self() const, so the compiler may reuse its
 * value across a yield; a coroutine that moved threads must ask again.
 */
static __attribute__((noinline)) pthread_t thread_self(void)
{
    pthread_t t = pthread_self();

    __asm__ volatile("" : "+r"(t));
    return t;
}

/* ------------------------------------------------------------------ */
/* create / enter / yield                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    Coroutine *co;
    bool in_coroutine;
    bool entered;
    bool self_ok;
    int done;
} SelfInfo;

static void coroutine_fn self_entry(void *opaque)
{
    SelfInfo *info = opaque;

    info->in_coroutine = qemu_in_coroutine();
    info->self_ok = qemu_coroutine_self() == info->co;
    info->entered = qemu_coroutine_entered(info->co);
    info->done++;
}

START_TEST(test_co_self_and_in_coroutine)
{
    SelfInfo info = { 0 };
    Coroutine *leader = qemu_coroutine_self();

    ck_assert_ptr_nonnull(leader);
    ck_assert(!qemu_in_coroutine());
    ck_assert_ptr_eq(qemu_coroutine_self(), leader);
    info.co = qemu_coroutine_create(self_entry, &info);
    ck_assert(!qemu_coroutine_entered(info.co));
    ck_assert_int_eq(info.done, 0); /* creating does not run it */
    qemu_coroutine_enter(info.co);
    ck_assert_int_eq(info.done, 1);
    ck_assert(info.in_coroutine);
    ck_assert(info.self_ok);
    ck_assert(info.entered);
    ck_assert(!qemu_in_coroutine());
    ck_assert_ptr_eq(qemu_coroutine_self(), leader);
}
END_TEST

typedef struct {
    int steps;
    int yields;
    bool finished;
} YieldState;

static void coroutine_fn yield_entry(void *opaque)
{
    YieldState *s = opaque;

    for (int i = 0; i < s->steps; i++) {
        s->yields++;
        qemu_coroutine_yield();
    }
    s->finished = true;
}

START_TEST(test_co_yield_enter_counts)
{
    YieldState s = { .steps = 1000 };
    Coroutine *co = qemu_coroutine_create(yield_entry, &s);
    int enters = 0;

    while (!s.finished) {
        qemu_coroutine_enter(co);
        enters++;
        ck_assert_int_eq(s.yields, s.finished ? 1000 : enters);
        if (!s.finished) {
            ck_assert(!qemu_coroutine_entered(co));
        }
    }
    ck_assert_int_eq(enters, 1001);
    ck_assert_int_eq(s.yields, 1000);
}
END_TEST

/* A chain: coroutine i creates and enters coroutine i+1. */
typedef struct {
    int n;
    int depth;
    int max_depth;
    int *finish_order;
    int nfinished;
} Chain;

typedef struct {
    Chain *chain;
    int index;
} ChainLink;

static void coroutine_fn chain_entry(void *opaque)
{
    ChainLink *link = opaque;
    Chain *c = link->chain;

    c->depth++;
    if (c->depth > c->max_depth) {
        c->max_depth = c->depth;
    }
    if (link->index + 1 < c->n) {
        ChainLink next = { c, link->index + 1 };

        qemu_coroutine_enter(qemu_coroutine_create(chain_entry, &next));
    }
    c->finish_order[c->nfinished++] = link->index;
    c->depth--;
}

START_TEST(test_co_nesting_chain)
{
    const int N = TEST_CO_COUNT(1000, 100);
    int *order = calloc(N, sizeof(int));
    Chain c = { .n = N, .finish_order = order };
    ChainLink first = { &c, 0 };

    qemu_coroutine_enter(qemu_coroutine_create(chain_entry, &first));
    ck_assert_int_eq(c.max_depth, N);
    ck_assert_int_eq(c.depth, 0);
    ck_assert_int_eq(c.nfinished, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(order[i], N - 1 - i); /* innermost first */
    }
    free(order);
}
END_TEST

/* Yield goes back to the coroutine that entered, not to the thread. */
typedef struct {
    Coroutine *inner;
    char log[16];
    int nlog;
} NestLog;

static void coroutine_fn nest_inner(void *opaque)
{
    NestLog *l = opaque;

    l->log[l->nlog++] = 'a';
    qemu_coroutine_yield();
    l->log[l->nlog++] = 'c';
}

static void coroutine_fn nest_outer(void *opaque)
{
    NestLog *l = opaque;

    l->inner = qemu_coroutine_create(nest_inner, l);
    qemu_coroutine_enter(l->inner);
    l->log[l->nlog++] = 'b';
    qemu_coroutine_enter(l->inner);
    l->log[l->nlog++] = 'd';
}

START_TEST(test_co_yield_returns_to_enterer)
{
    NestLog l = { 0 };

    qemu_coroutine_enter(qemu_coroutine_create(nest_outer, &l));
    ck_assert_str_eq(l.log, "abcd");
}
END_TEST

typedef struct {
    Coroutine *co;
    int runs;
} IfInactive;

static void coroutine_fn if_inactive_entry(void *opaque)
{
    IfInactive *s = opaque;

    s->runs++;
    qemu_coroutine_enter_if_inactive(s->co); /* running: no-op */
    qemu_coroutine_yield();
    s->runs++;
}

START_TEST(test_co_enter_if_inactive)
{
    IfInactive s = { 0 };

    s.co = qemu_coroutine_create(if_inactive_entry, &s);
    qemu_coroutine_enter_if_inactive(s.co);
    ck_assert_int_eq(s.runs, 1);
    qemu_coroutine_enter_if_inactive(s.co);
    ck_assert_int_eq(s.runs, 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* the pool and the stacks                                             */
/* ------------------------------------------------------------------ */

static void coroutine_fn count_entry(void *opaque)
{
    (*(long *)opaque)++;
}

START_TEST(test_co_pool_reuse)
{
    long count = 0;
    Coroutine *first, *again;
    long rss_before, rss_after;
    const long N = TEST_CO_COUNT(1000000, 200000);
    /*
     * A leaked stack per coroutine would be gigabytes; the sanitizers'
     * own bookkeeping (fake stacks, traces) grows by a few MiB.
     */
    const long max_growth =
        (TEST_UNDER_TSAN ? 32 : TEST_UNDER_ASAN ? 8 : 1) * 1024L * 1024;

    first = qemu_coroutine_create(count_entry, &count);
    qemu_coroutine_enter(first);
    again = qemu_coroutine_create(count_entry, &count);
    ck_assert_ptr_eq(again, first); /* came back from the pool */
    qemu_coroutine_enter(again);

    for (int i = 0; i < 1000; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(count_entry, &count));
    }
    rss_before = test_rss_bytes();
    for (long i = 0; i < N; i++) {
        Coroutine *co = qemu_coroutine_create(count_entry, &count);

        qemu_coroutine_enter(co);
    }
    rss_after = test_rss_bytes();
    ck_assert_int_eq(count, N + 1002);
    ck_assert_msg(rss_after - rss_before < max_growth,
                  "RSS grew by %ld bytes over %ld coroutines",
                  rss_after - rss_before, N);
}
END_TEST

/* Many live at once, then finished: later creations reuse them. */
START_TEST(test_co_pool_overflow_reuse)
{
    enum { N = TEST_CO_COUNT(300, 100) };
    Coroutine *cos[N], *news[N];
    YieldState s[N];
    int reused = 0;

    long count = 0;

    for (int i = 0; i < N; i++) {
        s[i] = (YieldState){ .steps = 1 };
        cos[i] = qemu_coroutine_create(yield_entry, &s[i]);
        qemu_coroutine_enter(cos[i]);
    }
    for (int i = 0; i < N; i++) {
        qemu_coroutine_enter(cos[i]);
        ck_assert(s[i].finished);
    }
    /* The local pool keeps 64, the shared one the rest: all come back. */
    for (int i = 0; i < N; i++) {
        Coroutine *co = qemu_coroutine_create(count_entry, &count);

        for (int j = 0; j < N; j++) {
            if (cos[j] == co) {
                reused++;
                cos[j] = NULL;
                break;
            }
        }
        s[i].finished = false;
        news[i] = co;
    }
    for (int i = 0; i < N; i++) {
        qemu_coroutine_enter(news[i]);
    }
    ck_assert_int_eq(count, N);
    ck_assert_int_eq(reused, N);
}
END_TEST

typedef struct {
    size_t bytes;
    unsigned sum;
} StackUse;

static void coroutine_fn stack_use_entry(void *opaque)
{
    StackUse *u = opaque;
    volatile unsigned char *buf = __builtin_alloca(u->bytes);

    for (size_t i = 0; i < u->bytes; i++) {
        buf[i] = (unsigned char)i;
    }
    for (size_t i = 0; i < u->bytes; i += 4096) {
        u->sum += buf[i + 1];
    }
}

START_TEST(test_co_stack_size)
{
    size_t def = qemu_coroutine_get_stack_size();
    StackUse u = { .bytes = 48 * 1024 };

    ck_assert_uint_eq(def, AIOCTX_COROUTINE_STACK_SIZE_DEFAULT);
    ck_assert_int_eq(qemu_coroutine_set_stack_size(1024), -EINVAL);
    ck_assert_int_eq(qemu_coroutine_set_stack_size((size_t)4 << 30), -EINVAL);
    ck_assert_uint_eq(qemu_coroutine_get_stack_size(), def);
    ck_assert_int_eq(qemu_coroutine_set_stack_size(64 * 1024), 0);
    ck_assert_uint_eq(qemu_coroutine_get_stack_size(), 64 * 1024);
    qemu_coroutine_enter(qemu_coroutine_create(stack_use_entry, &u));
    ck_assert_uint_eq(u.sum, 12); /* 12 pages, byte 1 of each is 1 */
    ck_assert_int_eq(qemu_coroutine_set_stack_size(def), 0);
}
END_TEST

static unsigned recurse(unsigned n)
{
    volatile char pad[512];

    if (n == UINT32_MAX) {
        return 0;
    }
    pad[0] = (char)n;
    return recurse(n + 1) + pad[0];
}

static void coroutine_fn overflow_entry(void *opaque)
{
    *(unsigned *)opaque = recurse(0);
}

/* Running off the stack hits the guard page: SIGSEGV, not corruption. */
START_TEST(test_co_guard_page)
{
    unsigned r = 0;

    /* Default action, so no sanitizer turns the fault into a report. */
    signal(SIGSEGV, SIG_DFL);
    ck_assert_int_eq(qemu_coroutine_set_stack_size(64 * 1024), 0);
    qemu_coroutine_enter(qemu_coroutine_create(overflow_entry, &r));
}
END_TEST

/* ------------------------------------------------------------------ */
/* threads                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    char log[64];
    int nlog;
    Coroutine *a, *b;
    int ok;
} NoCtx;

static void coroutine_fn noctx_b(void *opaque)
{
    NoCtx *s = opaque;

    s->log[s->nlog++] = 'B';
    qemu_coroutine_yield();
    s->log[s->nlog++] = 'b';
}

static void coroutine_fn noctx_a(void *opaque)
{
    NoCtx *s = opaque;

    s->log[s->nlog++] = 'A';
    aio_co_wake(s->b); /* same (no) context, in a coroutine: queued */
    s->log[s->nlog++] = 'a';
    qemu_coroutine_yield();
    s->log[s->nlog++] = 'z';
}

static void *noctx_thread(void *opaque)
{
    NoCtx *s = opaque;

    if (qemu_get_current_aio_context() != NULL) {
        return NULL;
    }
    s->a = qemu_coroutine_create(noctx_a, s);
    s->b = qemu_coroutine_create(noctx_b, s);
    qemu_coroutine_enter(s->b);    /* B, yields */
    qemu_coroutine_enter(s->a);    /* A a, then the queued b */
    if (qemu_coroutine_get_aio_context(s->a) != NULL) {
        return NULL;
    }
    aio_co_wake(s->a);             /* outside a coroutine: runs now */
    s->ok = 1;
    return NULL;
}

START_TEST(test_co_thread_without_context)
{
    NoCtx s = { 0 };
    pthread_t tid;

    ck_assert_int_eq(pthread_create(&tid, NULL, noctx_thread, &s), 0);
    pthread_join(tid, NULL);
    ck_assert_int_eq(s.ok, 1);
    ck_assert_str_eq(s.log, "BAabz");
}
END_TEST

typedef struct {
    pthread_t before, after;
    int tls_after;
    int finished;
} Migrate;

static __thread int tls_marker;

static void coroutine_fn migrate_entry(void *opaque)
{
    Migrate *m = opaque;

    m->before = thread_self();
    tls_marker = 1;
    qemu_coroutine_yield();
    m->after = thread_self();
    m->tls_after = tls_marker; /* this thread's copy: still 0 */
    m->finished = 1;
}

static void *migrate_thread(void *opaque)
{
    qemu_coroutine_enter(opaque);
    return NULL;
}

/* A coroutine that yielded in one thread resumes in another. */
START_TEST(test_co_migrate_between_threads)
{
    Migrate m = { 0 };
    Coroutine *co = qemu_coroutine_create(migrate_entry, &m);
    pthread_t tid;

    qemu_coroutine_enter(co);
    ck_assert(pthread_equal(m.before, thread_self()));
    ck_assert_int_eq(tls_marker, 1);
    ck_assert_int_eq(pthread_create(&tid, NULL, migrate_thread, co), 0);
    pthread_join(tid, NULL);
    ck_assert_int_eq(m.finished, 1);
    ck_assert(pthread_equal(m.after, tid));
    ck_assert_int_eq(m.tls_after, 0);
}
END_TEST

/* Coroutines finished in other threads land in the shared pool. */
static void *pool_thread(void *opaque)
{
    Coroutine **cos = opaque;

    for (int i = 0; i < 200; i++) {
        long count = 0;

        cos[i] = qemu_coroutine_create(count_entry, &count);
        qemu_coroutine_enter(cos[i]);
    }
    return NULL;
}

START_TEST(test_co_pool_thread_exit)
{
    Coroutine *cos[200];
    pthread_t tid;
    long count = 0;
    Coroutine *co;
    bool found = false;

    ck_assert_int_eq(pthread_create(&tid, NULL, pool_thread, cos), 0);
    pthread_join(tid, NULL);
    /* That thread's pool went to the shared pool when it exited. */
    co = qemu_coroutine_create(count_entry, &count);
    for (int i = 0; i < 200; i++) {
        found |= cos[i] == co;
    }
    ck_assert(found);
    qemu_coroutine_enter(co);
    ck_assert_int_eq(count, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* aio_co_schedule / aio_co_wake / aio_co_enter                        */
/* ------------------------------------------------------------------ */

typedef struct {
    int order[64];
    int n;
} OrderLog;

typedef struct {
    OrderLog *log;
    int id;
    AioContext *ctx_seen;
} OrderCo;

static void coroutine_fn order_entry(void *opaque)
{
    OrderCo *o = opaque;

    o->ctx_seen = qemu_get_current_aio_context();
    o->log->order[o->log->n++] = o->id;
}

START_TEST(test_co_schedule_fifo)
{
    AioContext *ctx = test_ctx_new();
    OrderLog log = { .n = 0 };
    OrderCo cos[8];

    qemu_set_current_aio_context(ctx);
    for (int i = 0; i < 8; i++) {
        cos[i] = (OrderCo){ &log, i, NULL };
        aio_co_schedule(ctx, qemu_coroutine_create(order_entry, &cos[i]));
    }
    ck_assert_int_eq(log.n, 0);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(log.n, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(log.order[i], i);
        ck_assert_ptr_eq(cos[i].ctx_seen, ctx);
    }
    ck_assert(!aio_poll(ctx, false));
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    char log[32];
    int n;
    Coroutine *other;
    AioContext *ctx;
} WakeLog;

static void coroutine_fn wake_target(void *opaque)
{
    WakeLog *w = opaque;

    w->log[w->n++] = 't';
    qemu_coroutine_yield();
    w->log[w->n++] = 'T';
}

static void coroutine_fn wake_waker(void *opaque)
{
    WakeLog *w = opaque;

    w->log[w->n++] = 'w';
    ck_assert_ptr_eq(qemu_coroutine_get_aio_context(w->other), w->ctx);
    aio_co_wake(w->other); /* same context, in a coroutine: after we yield */
    w->log[w->n++] = 'x';
    qemu_coroutine_yield();
    w->log[w->n++] = 'W';
}

START_TEST(test_co_wake_in_and_out_of_coroutine)
{
    AioContext *ctx = test_ctx_new();
    WakeLog w = { .n = 0, .ctx = ctx };
    Coroutine *waker;

    qemu_set_current_aio_context(ctx);
    w.other = qemu_coroutine_create(wake_target, &w);
    qemu_coroutine_enter(w.other);
    waker = qemu_coroutine_create(wake_waker, &w);
    qemu_coroutine_enter(waker);
    ck_assert_str_eq(w.log, "twxT");
    aio_co_wake(waker); /* outside a coroutine: at once */
    ck_assert_str_eq(w.log, "twxTW");
    ck_assert(!aio_poll(ctx, false));
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

/*
 * 25,000 coroutines, each woken by the previous one: each must finish
 * before the next starts (queued, not nested).
 */
enum { CHAIN_N = TEST_CO_COUNT(25000, 1000) };

typedef struct {
    Coroutine **cos;
    int *events; /* +i+1: started, -(i+1): finished */
    int nevents;
    int index_of_next;
} WakeChain;

typedef struct {
    WakeChain *c;
    int i;
} WakeChainItem;

static void coroutine_fn wake_chain_entry(void *opaque)
{
    WakeChainItem *it = opaque;
    WakeChain *c = it->c;

    qemu_coroutine_yield();
    c->events[c->nevents++] = it->i + 1;
    if (it->i + 1 < CHAIN_N) {
        aio_co_wake(c->cos[it->i + 1]);
    }
    c->events[c->nevents++] = -(it->i + 1);
}

static void run_wake_chain(AioContext *ctx)
{
    WakeChain c = { 0 };
    WakeChainItem *items = calloc(CHAIN_N, sizeof(*items));

    c.cos = calloc(CHAIN_N, sizeof(Coroutine *));
    c.events = calloc(2 * CHAIN_N, sizeof(int));
    ck_assert_int_eq(qemu_coroutine_set_stack_size(64 * 1024), 0);
    for (int i = 0; i < CHAIN_N; i++) {
        items[i] = (WakeChainItem){ &c, i };
        c.cos[i] = qemu_coroutine_create(wake_chain_entry, &items[i]);
        qemu_coroutine_enter(c.cos[i]);
    }
    ck_assert_int_eq(c.nevents, 0);
    aio_co_wake(c.cos[0]);
    ck_assert_int_eq(c.nevents, 2 * CHAIN_N);
    for (int i = 0; i < CHAIN_N; i++) {
        ck_assert_int_eq(c.events[2 * i], i + 1);
        ck_assert_int_eq(c.events[2 * i + 1], -(i + 1));
    }
    if (ctx) {
        ck_assert(!aio_poll(ctx, false));
    }
    ck_assert_int_eq(
        qemu_coroutine_set_stack_size(AIOCTX_COROUTINE_STACK_SIZE_DEFAULT), 0);
    free(c.cos);
    free(c.events);
    free(items);
}

START_TEST(test_co_wake_chain_25000)
{
    AioContext *ctx = test_ctx_new();

    qemu_set_current_aio_context(ctx);
    run_wake_chain(ctx);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_co_wake_chain_25000_no_context)
{
    run_wake_chain(NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* across threads                                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    AioContext *home, *other;
    pthread_t home_tid, other_tid;
    int rounds;
    int in_other;   /* times it ran in the other thread with its context */
    int in_home;
    bool done;      /* atomic */
} PingPong;

static void coroutine_fn ping_pong_entry(void *opaque)
{
    PingPong *p = opaque;

    for (int i = 0; i < p->rounds; i++) {
        aio_co_reschedule_self(p->other);
        if (pthread_equal(thread_self(), p->other_tid) &&
            qemu_get_current_aio_context() == p->other &&
            qemu_coroutine_get_aio_context(qemu_coroutine_self()) ==
                p->other) {
            p->in_other++;
        }
        aio_co_reschedule_self(p->home);
        if (pthread_equal(thread_self(), p->home_tid) &&
            qemu_get_current_aio_context() == p->home) {
            p->in_home++;
        }
    }
    aio_co_reschedule_self(p->home); /* already there: no-op */
    __atomic_store_n(&p->done, true, __ATOMIC_RELEASE);
}

START_TEST(test_co_reschedule_between_threads)
{
    AioContext *ctx = test_ctx_new();
    LoopThread lt;
    PingPong p = { .rounds = 500 };

    qemu_set_current_aio_context(ctx);
    loop_thread_start(&lt);
    p.home = ctx;
    p.other = lt.ctx;
    p.home_tid = thread_self();
    p.other_tid = lt.tid;
    qemu_coroutine_enter(qemu_coroutine_create(ping_pong_entry, &p));
    while (!__atomic_load_n(&p.done, __ATOMIC_ACQUIRE)) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(p.in_other, 500);
    ck_assert_int_eq(p.in_home, 500);
    loop_thread_stop(&lt);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    AioContext *target;
    Coroutine **cos;
    int n;
    bool use_enter;
} Scheduler;

static void *schedule_thread(void *opaque)
{
    Scheduler *s = opaque;

    for (int i = 0; i < s->n; i++) {
        if (s->use_enter) {
            aio_co_enter(s->target, s->cos[i]);
        } else {
            aio_co_schedule(s->target, s->cos[i]);
        }
    }
    return NULL;
}

typedef struct {
    int *order;
    int *n;   /* atomic */
    int id;
    pthread_t ran_in;
} XCo;

static void coroutine_fn xco_entry(void *opaque)
{
    XCo *x = opaque;
    int slot = __atomic_fetch_add(x->n, 1, __ATOMIC_ACQ_REL);

    x->order[slot] = x->id;
    x->ran_in = thread_self();
}

/* Another thread schedules coroutines into our context: FIFO, here. */
static void cross_thread_schedule(bool use_enter)
{
    enum { N = TEST_CO_COUNT(1000, 100) };
    AioContext *ctx = test_ctx_new();
    Coroutine **cos = calloc(N, sizeof(*cos));
    XCo *xs = calloc(N, sizeof(*xs));
    int *order = calloc(N, sizeof(int));
    int n = 0;
    Scheduler s = { ctx, cos, N, use_enter };
    pthread_t tid;

    qemu_set_current_aio_context(ctx);
    for (int i = 0; i < N; i++) {
        xs[i] = (XCo){ order, &n, i, 0 };
        cos[i] = qemu_coroutine_create(xco_entry, &xs[i]);
    }
    ck_assert_int_eq(pthread_create(&tid, NULL, schedule_thread, &s), 0);
    while (__atomic_load_n(&n, __ATOMIC_ACQUIRE) < N) {
        aio_poll(ctx, true);
    }
    pthread_join(tid, NULL);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(order[i], i);
        ck_assert(pthread_equal(xs[i].ran_in, thread_self()));
    }
    ck_assert(!aio_poll(ctx, false));
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
    free(cos);
    free(xs);
    free(order);
}

START_TEST(test_co_schedule_from_other_thread)
{
    cross_thread_schedule(false);
}
END_TEST

START_TEST(test_co_enter_from_other_thread)
{
    cross_thread_schedule(true);
}
END_TEST

/* Coroutines created and yielded in our context, woken by another thread. */
typedef struct {
    int woken;     /* atomic */
    pthread_t ran_in[100];
} XWake;

typedef struct {
    XWake *w;
    int i;
} XWakeItem;

static void coroutine_fn xwake_entry(void *opaque)
{
    XWakeItem *it = opaque;

    qemu_coroutine_yield();
    it->w->ran_in[it->i] = thread_self();
    __atomic_fetch_add(&it->w->woken, 1, __ATOMIC_ACQ_REL);
}

typedef struct {
    Coroutine **cos;
    int n;
} Waker;

static void *waker_thread(void *opaque)
{
    Waker *w = opaque;

    for (int i = 0; i < w->n; i++) {
        aio_co_wake(w->cos[i]);
    }
    return NULL;
}

START_TEST(test_co_wake_from_other_thread)
{
    AioContext *ctx = test_ctx_new();
    Coroutine *cos[100];
    XWakeItem items[100];
    XWake w = { 0 };
    Waker wk = { cos, 100 };
    pthread_t tid;

    qemu_set_current_aio_context(ctx);
    for (int i = 0; i < 100; i++) {
        items[i] = (XWakeItem){ &w, i };
        cos[i] = qemu_coroutine_create(xwake_entry, &items[i]);
        qemu_coroutine_enter(cos[i]);
    }
    ck_assert_int_eq(pthread_create(&tid, NULL, waker_thread, &wk), 0);
    while (__atomic_load_n(&w.woken, __ATOMIC_ACQUIRE) < 100) {
        aio_poll(ctx, true);
    }
    pthread_join(tid, NULL);
    for (int i = 0; i < 100; i++) {
        ck_assert(pthread_equal(w.ran_in[i], thread_self()));
    }
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

/* ------------------------------------------------------------------ */
/* misuse                                                              */
/* ------------------------------------------------------------------ */

static void coroutine_fn reenter_self_entry(void *opaque)
{
    (void)opaque;
    qemu_coroutine_enter(qemu_coroutine_self());
}

static void misuse_reenter(void *arg)
{
    (void)arg;
    qemu_coroutine_enter(qemu_coroutine_create(reenter_self_entry, NULL));
}

static void coroutine_fn noop_entry(void *opaque)
{
    (void)opaque;
}

static void misuse_enter_terminated(void *arg)
{
    Coroutine *co = qemu_coroutine_create(noop_entry, NULL);

    (void)arg;
    qemu_coroutine_enter(co);
    qemu_coroutine_enter(co); /* it is in the pool now */
}

static void misuse_schedule_twice(void *arg)
{
    AioContext *ctx = test_ctx_new();
    Coroutine *co = qemu_coroutine_create(noop_entry, NULL);

    (void)arg;
    aio_co_schedule(ctx, co);
    aio_co_schedule(ctx, co);
}

static void misuse_enter_scheduled(void *arg)
{
    AioContext *ctx = test_ctx_new();
    Coroutine *co = qemu_coroutine_create(noop_entry, NULL);

    (void)arg;
    aio_co_schedule(ctx, co);
    qemu_coroutine_enter(co);
}

static void misuse_yield_outside(void *arg)
{
    (void)arg;
    qemu_coroutine_yield();
}

static void misuse_destroy_with_scheduled(void *arg)
{
    AioContext *ctx = test_ctx_new();

    (void)arg;
    aio_co_schedule(ctx, qemu_coroutine_create(noop_entry, NULL));
    aio_context_unref(ctx);
}

START_TEST(test_co_misuse_messages)
{
    test_expect_abort(misuse_reenter, NULL, "re-entered while it is running");
    test_expect_abort(misuse_enter_terminated, NULL, "has terminated");
    test_expect_abort(misuse_schedule_twice, NULL,
                      "already scheduled by aio_co_schedule");
    test_expect_abort(misuse_enter_scheduled, NULL,
                      "entered while it is scheduled by aio_co_schedule");
    test_expect_abort(misuse_yield_outside, NULL,
                      "qemu_coroutine_yield called outside a coroutine");
    test_expect_abort(misuse_destroy_with_scheduled, NULL,
                      "destroyed while coroutine");
}
END_TEST

/* The same, as Check's own forked tests that must die with SIGABRT. */
START_TEST(test_co_abort_reenter)
{
    misuse_reenter(NULL);
}
END_TEST

START_TEST(test_co_abort_enter_terminated)
{
    misuse_enter_terminated(NULL);
}
END_TEST

START_TEST(test_co_abort_schedule_twice)
{
    misuse_schedule_twice(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("coroutine");
    TCase *tc = tcase_create("basic");

    tcase_add_test(tc, test_co_self_and_in_coroutine);
    tcase_add_test(tc, test_co_yield_enter_counts);
    tcase_add_test(tc, test_co_nesting_chain);
    tcase_add_test(tc, test_co_yield_returns_to_enterer);
    tcase_add_test(tc, test_co_enter_if_inactive);
    suite_add_tcase(s, tc);

    tc = tcase_create("pool-and-stacks");
    tcase_add_test(tc, test_co_pool_reuse);
    tcase_add_test(tc, test_co_pool_overflow_reuse);
    tcase_add_test(tc, test_co_stack_size);
    tcase_add_test_raise_signal(tc, test_co_guard_page, SIGSEGV);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_test(tc, test_co_thread_without_context);
    tcase_add_test(tc, test_co_migrate_between_threads);
    tcase_add_test(tc, test_co_pool_thread_exit);
    suite_add_tcase(s, tc);

    tc = tcase_create("aio");
    tcase_add_test(tc, test_co_schedule_fifo);
    tcase_add_test(tc, test_co_wake_in_and_out_of_coroutine);
    tcase_add_test(tc, test_co_wake_chain_25000);
    tcase_add_test(tc, test_co_wake_chain_25000_no_context);
    tcase_add_test(tc, test_co_reschedule_between_threads);
    tcase_add_test(tc, test_co_schedule_from_other_thread);
    tcase_add_test(tc, test_co_enter_from_other_thread);
    tcase_add_test(tc, test_co_wake_from_other_thread);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_add_test(tc, test_co_misuse_messages);
    tcase_add_test_raise_signal(tc, test_co_abort_reenter, SIGABRT);
    tcase_add_test_raise_signal(tc, test_co_abort_enter_terminated, SIGABRT);
    tcase_add_test_raise_signal(tc, test_co_abort_schedule_twice, SIGABRT);
    suite_add_tcase(s, tc);
    return test_main(s);
}
