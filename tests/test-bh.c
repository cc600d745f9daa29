/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bottom halves: counts, ordering, nesting, cancel/delete from callbacks,
 * one-shot BHs, cross-thread scheduling, destruction with BHs pending.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#include "test-util.h"

typedef struct {
    AioContext *ctx;
    QEMUBH *bh;
    int n;
    int max;
    int order[16];
    int norder;
} Counter;

static void count_cb(void *opaque)
{
    Counter *c = opaque;

    c->n++;
}

START_TEST(test_bh_schedule_runs_once)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *bh = aio_bh_new(ctx, count_cb, &c);

    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));
    qemu_bh_schedule(bh);
    qemu_bh_schedule(bh); /* already scheduled: still one run */
    ck_assert_int_eq(c.n, 0);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(c.n, 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 1);
    qemu_bh_delete(bh);
    aio_poll(ctx, false);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    int *log;
    int *nlog;
    int id;
} OrderItem;

static void order_cb(void *opaque)
{
    OrderItem *it = opaque;

    it->log[(*it->nlog)++] = it->id;
}

START_TEST(test_bh_fifo_order)
{
    AioContext *ctx = test_ctx_new();
    int log[8], nlog = 0;
    OrderItem items[8];

    for (int i = 0; i < 8; i++) {
        items[i] = (OrderItem){ log, &nlog, i };
        aio_bh_schedule_oneshot(ctx, order_cb, &items[i]);
    }
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(nlog, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(log[i], i);
    }
    aio_context_unref(ctx);
}
END_TEST

static void resched_cb(void *opaque)
{
    Counter *c = opaque;

    if (++c->n < c->max) {
        qemu_bh_schedule(c->bh);
    }
}

START_TEST(test_bh_self_reschedule_one_per_poll)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { .max = 10 };

    c.bh = aio_bh_new(ctx, resched_cb, &c);
    qemu_bh_schedule(c.bh);
    for (int i = 1; i <= 10; i++) {
        ck_assert(aio_poll(ctx, false));
        ck_assert_int_eq(c.n, i);
    }
    ck_assert(!aio_poll(ctx, false));
    qemu_bh_delete(c.bh);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_bh_cancel)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *bh = aio_bh_new(ctx, count_cb, &c);

    qemu_bh_schedule(bh);
    qemu_bh_cancel(bh);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 0);
    qemu_bh_schedule(bh);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 1);
    qemu_bh_delete(bh);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_bh_delete_scheduled_never_runs)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *bh = aio_bh_new(ctx, count_cb, &c);

    qemu_bh_schedule(bh);
    qemu_bh_delete(bh);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 0);
    aio_context_unref(ctx);
}
END_TEST

static void delete_self_cb(void *opaque)
{
    Counter *c = opaque;

    c->n++;
    qemu_bh_delete(c->bh);
}

START_TEST(test_bh_delete_from_own_callback)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };

    c.bh = aio_bh_new(ctx, delete_self_cb, &c);
    qemu_bh_schedule(c.bh);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 1);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    QEMUBH *victim;
    Counter *victim_count;
} Canceller;

static void cancel_other_cb(void *opaque)
{
    Canceller *k = opaque;

    qemu_bh_cancel(k->victim);
}

START_TEST(test_bh_cancel_other_from_callback)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *victim = aio_bh_new(ctx, count_cb, &c);
    Canceller k = { victim, &c };
    QEMUBH *killer = aio_bh_new(ctx, cancel_other_cb, &k);

    /* FIFO: the canceller runs first and the victim must not run. */
    qemu_bh_schedule(killer);
    qemu_bh_schedule(victim);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 0);
    ck_assert(!aio_poll(ctx, false));
    qemu_bh_delete(victim);
    qemu_bh_delete(killer);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    AioContext *ctx;
    int outer_runs;
    int inner_runs[3];
} Nest;

static Nest *nest_state;

static void nest_leaf_cb(void *opaque)
{
    int *runs = opaque;

    (*runs)++;
}

static void nest_outer_cb(void *opaque)
{
    Nest *n = opaque;

    n->outer_runs++;
    /* A nested poll runs the outer slice's remaining BHs exactly once. */
    while (aio_poll(n->ctx, false)) {
    }
}

START_TEST(test_bh_nested_poll_runs_each_once)
{
    AioContext *ctx = test_ctx_new();
    Nest n = { .ctx = ctx };

    nest_state = &n;
    aio_bh_schedule_oneshot(ctx, nest_outer_cb, &n);
    for (int i = 0; i < 3; i++) {
        aio_bh_schedule_oneshot(ctx, nest_leaf_cb, &n.inner_runs[i]);
    }
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(n.outer_runs, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(n.inner_runs[i], 1);
    }
    ck_assert(!aio_poll(ctx, false));
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_bh_poll_direct)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *bh = aio_bh_new(ctx, count_cb, &c);

    ck_assert_int_eq(aio_bh_poll(ctx), 0);
    qemu_bh_schedule(bh);
    ck_assert_int_eq(aio_compute_timeout(ctx), 0);
    ck_assert_int_eq(aio_bh_poll(ctx), 1);
    ck_assert_int_eq(c.n, 1);
    aio_bh_call(bh);
    ck_assert_int_eq(c.n, 2);
    qemu_bh_delete(bh);
    ck_assert_int_eq(aio_bh_poll(ctx), 0);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_bh_idle)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *bh = aio_bh_new(ctx, count_cb, &c);

    test_consume_notify(ctx);
    qemu_bh_schedule_idle(bh);
    ck_assert_int_eq(aio_compute_timeout(ctx), 10 * 1000 * 1000);
    /* Idle BHs run but are not progress. */
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 1);
    qemu_bh_delete(bh);
    aio_context_unref(ctx);
}
END_TEST

static void guard_cb(void *opaque)
{
    MemReentrancyGuard *g = opaque;

    ck_assert(g->engaged_in_io);
}

START_TEST(test_bh_reentrancy_guard)
{
    AioContext *ctx = test_ctx_new();
    MemReentrancyGuard g = { false };
    QEMUBH *bh = aio_bh_new_guarded(ctx, guard_cb, &g, &g);

    qemu_bh_schedule(bh);
    ck_assert(aio_poll(ctx, false));
    ck_assert(!g.engaged_in_io);
    qemu_bh_delete(bh);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_bh_destroy_pending_runs_nothing)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *a = aio_bh_new(ctx, count_cb, &c);

    (void)aio_bh_new(ctx, count_cb, &c); /* never scheduled, never deleted */
    qemu_bh_schedule(a);
    for (int i = 0; i < 100; i++) {
        aio_bh_schedule_oneshot(ctx, count_cb, &c);
    }
    aio_context_unref(ctx); /* frees all of it; ASan checks for leaks */
    ck_assert_int_eq(c.n, 0);
}
END_TEST

/* ---- cross-thread ---- */

typedef struct {
    AioContext *ctx;
    int per_thread;
    int *count;
} Producer;

static void atomic_count_cb(void *opaque)
{
    int *count = opaque;

    (*count)++; /* runs in the home thread only */
}

static void *producer_thread(void *opaque)
{
    Producer *p = opaque;

    for (int i = 0; i < p->per_thread; i++) {
        aio_bh_schedule_oneshot(p->ctx, atomic_count_cb, p->count);
    }
    return NULL;
}

START_TEST(test_bh_cross_thread_exact_count)
{
    enum { THREADS = 4, PER_THREAD = 20000 };
    AioContext *ctx = test_ctx_new();
    pthread_t th[THREADS];
    int count = 0;
    Producer p = { ctx, PER_THREAD, &count };

    for (int i = 0; i < THREADS; i++) {
        pthread_create(&th[i], NULL, producer_thread, &p);
    }
    while (count < THREADS * PER_THREAD) {
        aio_poll(ctx, true);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    while (aio_poll(ctx, false)) {
    }
    ck_assert_int_eq(count, THREADS * PER_THREAD);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    AioContext *ctx;
    QEMUBH *bh;
    int delay_us;
} Waker;

static void *waker_thread(void *opaque)
{
    Waker *w = opaque;

    test_sleep_us(w->delay_us);
    qemu_bh_schedule(w->bh);
    return NULL;
}

START_TEST(test_bh_cross_thread_wakes_blocking_poll)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    Waker w = { ctx, aio_bh_new(ctx, count_cb, &c), 20000 };
    pthread_t th;

    test_consume_notify(ctx);
    for (int round = 0; round < 20; round++) {
        pthread_create(&th, NULL, waker_thread, &w);
        /* Nothing else is registered: only the BH can end this sleep. */
        while (c.n == round) {
            aio_poll(ctx, true);
        }
        pthread_join(th, NULL);
        ck_assert_int_eq(c.n, round + 1);
        w.delay_us = round % 2 ? 0 : 2000;
    }
    qemu_bh_delete(w.bh);
    aio_context_unref(ctx);
}
END_TEST

static void *notify_thread(void *opaque)
{
    Waker *w = opaque;

    test_sleep_us(w->delay_us);
    aio_notify(w->ctx);
    return NULL;
}

START_TEST(test_notify_wakes_without_progress)
{
    AioContext *ctx = test_ctx_new();
    Waker w = { ctx, NULL, 20000 };
    pthread_t th;

    test_consume_notify(ctx);
    pthread_create(&th, NULL, notify_thread, &w);
    ck_assert(!aio_poll(ctx, true)); /* returns, but reports no progress */
    pthread_join(th, NULL);
    aio_notify(ctx);
    ck_assert(!aio_poll(ctx, true));
    aio_context_unref(ctx);
}
END_TEST

/* ---- a BH requested both from inside the loop and from another thread ---- */

typedef enum { MIX_SCHEDULE, MIX_CANCEL, MIX_DELETE } MixOp;

typedef struct {
    QEMUBH *target;
    MixOp op;
} MixThread;

static void *mix_thread(void *opaque)
{
    MixThread *m = opaque;

    switch (m->op) {
    case MIX_SCHEDULE:
        qemu_bh_schedule(m->target);
        break;
    case MIX_CANCEL:
        qemu_bh_cancel(m->target);
        break;
    case MIX_DELETE:
        qemu_bh_delete(m->target);
        break;
    }
    return NULL;
}

/* Run op on target in another thread and wait for it. */
static void mix_in_thread(QEMUBH *target, MixOp op)
{
    MixThread m = { .target = target, .op = op };
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, mix_thread, &m), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

typedef struct {
    QEMUBH *target;
    MixOp remote_op;   /* done from another thread after scheduling target */
    bool remote_first; /* the other thread acts before the loop schedules */
} MixScheduler;

/* A BH of the loop: schedule the target from inside aio_poll. */
static void mix_scheduler_cb(void *opaque)
{
    MixScheduler *ms = opaque;

    if (ms->remote_first) {
        mix_in_thread(ms->target, ms->remote_op);
        qemu_bh_schedule(ms->target);
        return;
    }
    qemu_bh_schedule(ms->target);
    mix_in_thread(ms->target, ms->remote_op);
}

/* A target BH and a loop BH that schedules it and calls op remotely. */
typedef struct {
    AioContext *ctx;
    Counter c;
    QEMUBH *target;
    MixScheduler ms;
    QEMUBH *sched;
} MixCase;

static void mix_case_init(MixCase *m, MixOp op)
{
    m->ctx = test_ctx_new();
    m->c = (Counter){ 0 };
    m->target = aio_bh_new(m->ctx, count_cb, &m->c);
    m->ms = (MixScheduler){ .target = m->target, .remote_op = op };
    m->sched = aio_bh_new(m->ctx, mix_scheduler_cb, &m->ms);
}

/* Run sched once more (remote_first chooses the order) until idle. */
static void mix_case_run(MixCase *m, bool remote_first)
{
    int before = m->c.n;

    m->ms.remote_first = remote_first;
    qemu_bh_schedule(m->sched);
    ck_assert(aio_poll(m->ctx, false)); /* runs sched only */
    ck_assert_int_eq(m->c.n, before);
    test_poll_until_idle(m->ctx);
}

static void mix_case_finish(MixCase *m, bool target_alive)
{
    qemu_bh_delete(m->sched);
    if (target_alive) {
        qemu_bh_delete(m->target);
    }
    test_poll_until_idle(m->ctx);
    aio_context_unref(m->ctx);
}

START_TEST(test_bh_home_and_remote_request_run_once)
{
    MixCase m;

    mix_case_init(&m, MIX_SCHEDULE);
    for (int remote_first = 0; remote_first <= 1; remote_first++) {
        m.c.n = 0;
        mix_case_run(&m, remote_first);
        ck_assert_int_eq(m.c.n, 1); /* two requests before it ran: one run */
    }
    mix_case_finish(&m, true);
}
END_TEST

START_TEST(test_bh_remote_cancel_undoes_home_request)
{
    MixCase m;

    mix_case_init(&m, MIX_CANCEL);
    mix_case_run(&m, false);
    ck_assert_int_eq(m.c.n, 0);
    /* Cancelled, not broken: a later request runs it once. */
    qemu_bh_schedule(m.target);
    ck_assert(aio_poll(m.ctx, false));
    ck_assert_int_eq(m.c.n, 1);
    ck_assert(!aio_poll(m.ctx, false));

    /* Cancel first, then the loop schedules: the request stands. */
    mix_case_run(&m, true);
    ck_assert_int_eq(m.c.n, 2);
    mix_case_finish(&m, true);
}
END_TEST

START_TEST(test_bh_remote_delete_of_home_request)
{
    MixCase m;

    /* Linked on both lists when deleted: freed once (ASan), never run. */
    mix_case_init(&m, MIX_DELETE);
    mix_case_run(&m, false);
    ck_assert_int_eq(m.c.n, 0);
    mix_case_finish(&m, false);
}
END_TEST

static void *delete_thread(void *opaque)
{
    qemu_bh_delete(opaque);
    return NULL;
}

/*
 * Found by test-model: a BH scheduled by the loop's thread and deleted by
 * another one is no longer scheduled, so aio_compute_timeout() must not
 * be 0 for it (it was until the next aio_poll()).
 */
START_TEST(test_bh_remote_delete_clears_timeout)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *bh = aio_bh_new(ctx, count_cb, &c);
    pthread_t th;

    test_consume_notify(ctx);
    qemu_bh_schedule(bh); /* a home request */
    ck_assert_int_eq(aio_compute_timeout(ctx), 0);
    pthread_create(&th, NULL, delete_thread, bh);
    pthread_join(th, NULL);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 0);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    aio_context_unref(ctx);
}
END_TEST

static void delete_target_cb(void *opaque)
{
    qemu_bh_delete(opaque);
}

START_TEST(test_bh_home_delete_of_remote_request)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *target = aio_bh_new(ctx, count_cb, &c);
    QEMUBH *killer = aio_bh_new(ctx, delete_target_cb, target);

    /* killer runs first and deletes target, linked on the remote list. */
    qemu_bh_schedule(killer);
    mix_in_thread(target, MIX_SCHEDULE);
    test_poll_until_idle(ctx);
    ck_assert_int_eq(c.n, 0);
    qemu_bh_delete(killer);
    test_poll_until_idle(ctx);
    aio_context_unref(ctx);
}
END_TEST

static void idle_then_normal_cb(void *opaque)
{
    QEMUBH *target = opaque;

    qemu_bh_schedule_idle(target);
    qemu_bh_schedule(target); /* the stronger request wins */
}

START_TEST(test_bh_home_idle_then_schedule_is_progress)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *target = aio_bh_new(ctx, count_cb, &c);
    QEMUBH *sched = aio_bh_new(ctx, idle_then_normal_cb, target);

    qemu_bh_schedule(sched);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(aio_compute_timeout(ctx), 0);
    ck_assert(aio_poll(ctx, true)); /* target counts as progress */
    ck_assert_int_eq(c.n, 1);
    qemu_bh_delete(sched);
    qemu_bh_delete(target);
    test_poll_until_idle(ctx);
    aio_context_unref(ctx);
}
END_TEST

/* ---- the home thread changes: BHs scheduled around the hand-over ---- */

#define HANDOVER_N 20000

typedef struct {
    AioContext *ctx;
    int count; /* atomic */
    int target;
} Handover;

static void handover_count_cb(void *opaque)
{
    Handover *h = opaque;

    __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
}

static void *handover_poller(void *opaque)
{
    Handover *h = opaque;

    while (__atomic_load_n(&h->count, __ATOMIC_RELAXED) < h->target) {
        aio_poll(h->ctx, true);
    }
    return NULL;
}

START_TEST(test_bh_home_moves_to_new_poller)
{
    Handover h = { .ctx = test_ctx_new(), .target = 1 };
    pthread_t th;

    /* This thread polled last: its BH waits on the home list... */
    test_consume_notify(h.ctx);
    aio_bh_schedule_oneshot(h.ctx, handover_count_cb, &h);
    /* ...and a new poller takes it over and runs it once. */
    ck_assert_int_eq(pthread_create(&th, NULL, handover_poller, &h), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(h.count, 1);

    /* Schedules racing with the hand-over: each runs exactly once. */
    h.count = 0;
    h.target = HANDOVER_N;
    test_consume_notify(h.ctx); /* this thread is home again */
    ck_assert_int_eq(pthread_create(&th, NULL, handover_poller, &h), 0);
    for (int i = 0; i < HANDOVER_N; i++) {
        aio_bh_schedule_oneshot(h.ctx, handover_count_cb, &h);
    }
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(h.count, HANDOVER_N);
    ck_assert(!aio_poll(h.ctx, false));
    ck_assert_int_eq(h.count, HANDOVER_N);
    aio_context_unref(h.ctx);
}
END_TEST

/* ---- a BH still queued from an earlier request keeps its place ---- */

typedef struct {
    QEMUBH *victim;
    int n;
} Rescheduler;

static void reschedule_other_cb(void *opaque)
{
    Rescheduler *r = opaque;

    r->n++;
    qemu_bh_schedule(r->victim);
}

/*
 * Found by test-model: a cancelled BH stays queued; a request made while
 * it is queued there runs at that place, here in the aio_bh_poll() that
 * made it (aio.h documents this exception to "waits for the next one").
 */
START_TEST(test_bh_cancelled_keeps_its_place)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    QEMUBH *x = aio_bh_new(ctx, count_cb, &c);
    Rescheduler r = { x, 0 };
    QEMUBH *a = aio_bh_new(ctx, reschedule_other_cb, &r);

    test_consume_notify(ctx);
    qemu_bh_schedule(a);
    qemu_bh_schedule(x);
    qemu_bh_cancel(x); /* x stays queued behind a, without a request */
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(c.n, 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(r.n, 1);
    qemu_bh_delete(a);
    qemu_bh_delete(x);
    aio_context_unref(ctx);
}
END_TEST

static void resched_once_cb(void *opaque)
{
    Counter *c = opaque;

    if (++c->n == 1) {
        qemu_bh_schedule(c->bh);
    }
}

static void *schedule_thread(void *opaque)
{
    qemu_bh_schedule(opaque);
    return NULL;
}

/*
 * Found by test-model: a BH scheduled from two threads is queued twice
 * and runs once, from the first entry; a re-schedule from its callback
 * is then taken by the second entry, in the same aio_bh_poll().  Each
 * request still runs exactly once.
 */
START_TEST(test_bh_two_thread_request_keeps_second_place)
{
    AioContext *ctx = test_ctx_new();
    Counter c = { 0 };
    pthread_t th;

    c.bh = aio_bh_new(ctx, resched_once_cb, &c);
    test_consume_notify(ctx);
    qemu_bh_schedule(c.bh); /* the home queue */
    pthread_create(&th, NULL, schedule_thread, c.bh);
    pthread_join(th, NULL); /* and the remote one: one request */
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 2);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(c.n, 2);
    qemu_bh_delete(c.bh);
    aio_context_unref(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bh");
    TCase *tc = tcase_create("single-thread");

    tcase_add_test(tc, test_bh_schedule_runs_once);
    tcase_add_test(tc, test_bh_fifo_order);
    tcase_add_test(tc, test_bh_self_reschedule_one_per_poll);
    tcase_add_test(tc, test_bh_cancel);
    tcase_add_test(tc, test_bh_delete_scheduled_never_runs);
    tcase_add_test(tc, test_bh_delete_from_own_callback);
    tcase_add_test(tc, test_bh_cancel_other_from_callback);
    tcase_add_test(tc, test_bh_nested_poll_runs_each_once);
    tcase_add_test(tc, test_bh_poll_direct);
    tcase_add_test(tc, test_bh_idle);
    tcase_add_test(tc, test_bh_reentrancy_guard);
    tcase_add_test(tc, test_bh_destroy_pending_runs_nothing);
    tcase_add_test(tc, test_bh_cancelled_keeps_its_place);
    suite_add_tcase(s, tc);

    tc = tcase_create("cross-thread");
    tcase_add_test(tc, test_bh_cross_thread_exact_count);
    tcase_add_test(tc, test_bh_cross_thread_wakes_blocking_poll);
    tcase_add_test(tc, test_notify_wakes_without_progress);
    tcase_add_test(tc, test_bh_home_and_remote_request_run_once);
    tcase_add_test(tc, test_bh_remote_cancel_undoes_home_request);
    tcase_add_test(tc, test_bh_remote_delete_clears_timeout);
    tcase_add_test(tc, test_bh_remote_delete_of_home_request);
    tcase_add_test(tc, test_bh_home_delete_of_remote_request);
    tcase_add_test(tc, test_bh_home_idle_then_schedule_is_progress);
    tcase_add_test(tc, test_bh_home_moves_to_new_poller);
    tcase_add_test(tc, test_bh_two_thread_request_keeps_second_place);
    suite_add_tcase(s, tc);
    return test_main(s);
}
