/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Clocks and timers: deadline order and FIFO ties, heap moves and deletions
 * at the root, inside and at the end, re-arm/delete/free from
 * callbacks, the virtual clock stopped/stepped/restarted, anticipate,
 * aio_poll sleeping until (never before) the nearest deadline, many
 * timers, heap consistency against a model, attributes, bad inputs,
 * destruction with armed timers, and cross-thread arming and waking.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-util.h"

#define MS ((int64_t)SCALE_MS)

/* ---- helpers ---- */

typedef struct {
    int ids[256];
    int n;
} FireLog;

typedef struct {
    FireLog *log;
    int id;
    QEMUClockType clock;
    int64_t deadline; /* ns; the callback checks it was reached */
    int fired;
    int early;        /* fired before its deadline (must stay 0) */
    QEMUTimer timer;
} Item;

static void item_cb(void *opaque)
{
    Item *it = opaque;

    if (qemu_clock_get_ns(it->clock) < it->deadline) {
        it->early++;
    }
    it->fired++;
    if (it->log) {
        it->log->ids[it->log->n++] = it->id;
    }
}

static void item_init(AioContext *ctx, Item *it, FireLog *log, int id,
                      QEMUClockType clock)
{
    memset(it, 0, sizeof(*it));
    it->log = log;
    it->id = id;
    it->clock = clock;
    aio_timer_init(ctx, &it->timer, clock, SCALE_NS, item_cb, it);
}

static void item_arm(Item *it, int64_t deadline)
{
    it->deadline = deadline;
    timer_mod_ns(&it->timer, deadline);
}

static void count_cb(void *opaque)
{
    int *n = opaque;

    (*n)++;
}

/* Stop the virtual clock (per-test: each test runs in its own process). */
static int64_t virtual_stop(void)
{
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
}

static uint64_t xorshift64(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* ---- clocks ---- */

START_TEST(test_clock_reads)
{
    int64_t a = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int64_t b = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int64_t host_s = qemu_clock_get_ns(QEMU_CLOCK_HOST) / 1000000000LL;
    int64_t v1, v2;

    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(b, a);
    ck_assert_int_le(llabs(host_s - (int64_t)time(NULL)), 2);
    ck_assert_int_le(qemu_clock_get_ms(QEMU_CLOCK_REALTIME),
                     qemu_clock_get_ns(QEMU_CLOCK_REALTIME) / SCALE_MS);
    ck_assert_int_le(qemu_clock_get_us(QEMU_CLOCK_REALTIME),
                     qemu_clock_get_ns(QEMU_CLOCK_REALTIME) / SCALE_US);
    ck_assert_int_ge(qemu_clock_get_us(QEMU_CLOCK_REALTIME), b / SCALE_US);
    /* The virtual clocks follow the monotonic one while running. */
    v1 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    test_sleep_us(2000);
    v2 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    ck_assert_int_ge(v2 - v1, 2 * SCALE_MS);
    v1 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL_RT);
    ck_assert_int_ge(v1, a);
    /* Unknown clocks. */
    ck_assert_int_eq(qemu_clock_get_ns(QEMU_CLOCK_MAX), -1);
    ck_assert_int_eq(qemu_clock_get_us((QEMUClockType)-1), -1);
    ck_assert_int_eq(qemu_clock_get_ms((QEMUClockType)77), -1);
    qemu_clock_enable(QEMU_CLOCK_MAX, false); /* ignored */
    ck_assert_int_eq(qemu_clock_advance_virtual_time(0) >= 0, 1);
}
END_TEST

START_TEST(test_virtual_stop_step_restart)
{
    int64_t t0 = virtual_stop(), t, rt0;

    test_sleep_us(5000);
    ck_assert_int_eq(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), t0);
    /* VIRTUAL_RT keeps running. */
    rt0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL_RT);
    test_sleep_us(1000);
    ck_assert_int_gt(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL_RT), rt0);
    /* Forward only. */
    ck_assert_int_eq(qemu_clock_advance_virtual_time(t0 + 7 * MS), t0 + 7 * MS);
    ck_assert_int_eq(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), t0 + 7 * MS);
    ck_assert_int_eq(qemu_clock_advance_virtual_time(t0), t0 + 7 * MS);
    ck_assert_int_eq(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), t0 + 7 * MS);
    /* Stopping twice changes nothing. */
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    ck_assert_int_eq(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), t0 + 7 * MS);
    /* Jump far ahead, then restart: it resumes from there, no jump. */
    ck_assert_int_eq(qemu_clock_advance_virtual_time(t0 + 3600 * 1000 * MS),
                     t0 + 3600 * 1000 * MS);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    t = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    ck_assert_int_ge(t, t0 + 3600 * 1000 * MS);
    ck_assert_int_lt(t, t0 + 3600 * 1000 * MS + 1000 * MS);
    test_sleep_us(2000);
    ck_assert_int_ge(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), t + 2 * MS);
    /* Advancing a running clock jumps it forward, and it keeps running. */
    t = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    ck_assert_int_ge(qemu_clock_advance_virtual_time(t + 60 * 1000 * MS),
                     t + 60 * 1000 * MS);
    ck_assert_int_ge(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), t + 60 * 1000 * MS);
}
END_TEST

/* ---- ordering ---- */

START_TEST(test_deadline_order)
{
    static const int offs_ms[] = { 50, 10, 30, 20, 40, 1, 60, 5 };
    enum { N = sizeof(offs_ms) / sizeof(offs_ms[0]) };
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    Item it[N];
    FireLog log = { .n = 0 };

    for (int i = 0; i < N; i++) {
        item_init(ctx, &it[i], &log, i, QEMU_CLOCK_VIRTUAL);
        item_arm(&it[i], t0 + offs_ms[i] * MS);
    }
    test_sleep_us(2000); /* the clock stands still: nothing is due */
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(log.n, 0);
    qemu_clock_advance_virtual_time(t0 + 100 * MS);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(log.n, N);
    for (int i = 1; i < N; i++) {
        ck_assert_int_le(offs_ms[log.ids[i - 1]], offs_ms[log.ids[i]]);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(it[i].fired, 1);
        ck_assert_int_eq(it[i].early, 0);
        ck_assert(!timer_pending(&it[i].timer));
    }
    ck_assert(!aio_poll(ctx, false));
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_equal_deadlines_fifo)
{
    enum { N = 32 };
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    Item it[N];
    FireLog log = { .n = 0 };

    for (int i = 0; i < N; i++) {
        item_init(ctx, &it[i], &log, i, QEMU_CLOCK_VIRTUAL);
        item_arm(&it[i], t0 + 10 * MS);
    }
    /* Re-arming (even to the same deadline) moves to the back of the tie. */
    item_arm(&it[3], t0 + 10 * MS);
    item_arm(&it[0], t0 + 20 * MS);
    item_arm(&it[0], t0 + 10 * MS);
    qemu_clock_advance_virtual_time(t0 + 10 * MS);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(log.n, N);
    for (int i = 0, want = 1; i < N - 2; i++, want++) {
        if (want == 3) {
            want++;
        }
        ck_assert_int_eq(log.ids[i], want);
    }
    ck_assert_int_eq(log.ids[N - 2], 3);
    ck_assert_int_eq(log.ids[N - 1], 0);
    aio_context_unref(ctx);
}
END_TEST

/* ---- heap edges: moves and deletions at the root, inside, at the end ---- */

enum { EDGE_N = 40 };

/*
 * EDGE_N items on the stopped virtual clock, item i due at t0 + (i + 1) ms,
 * armed in that order (so the first is the earliest, the last the latest).
 */
static int64_t edge_setup(AioContext *ctx, Item *it, FireLog *log)
{
    int64_t t0 = virtual_stop();

    for (int i = 0; i < EDGE_N; i++) {
        item_init(ctx, &it[i], log, i, QEMU_CLOCK_VIRTUAL);
        item_arm(&it[i], t0 + (i + 1) * MS);
    }
    return t0;
}

/* Step the clock to t, run what is due, and check exactly want[] fired. */
static void expect_fired(AioContext *ctx, FireLog *log, int64_t t,
                         const int *want, int n)
{
    bool progress;

    log->n = 0;
    qemu_clock_advance_virtual_time(t);
    progress = aio_poll(ctx, false);
    ck_assert(progress || n == 0);
    ck_assert_int_eq(log->n, n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(log->ids[i], want[i]);
    }
}

START_TEST(test_rearm_moves_up_and_down)
{
    AioContext *ctx = test_ctx_new();
    Item it[EDGE_N];
    FireLog log = { .n = 0 };
    int64_t t0 = edge_setup(ctx, it, &log);
    int want[EDGE_N], n = 0;

    item_arm(&it[EDGE_N - 1], t0 + MS / 2);   /* latest becomes the earliest */
    item_arm(&it[0], t0 + 100 * MS);          /* earliest becomes the latest */
    item_arm(&it[20], t0 + 5 * MS + MS / 2);  /* inside, moved earlier */
    item_arm(&it[10], t0 + 30 * MS + MS / 2); /* inside, moved later */
    item_arm(&it[5], t0 + 6 * MS);            /* same deadline: no move */

    want[n++] = EDGE_N - 1;
    for (int i = 1; i <= 4; i++) {
        want[n++] = i;
    }
    want[n++] = 20;
    expect_fired(ctx, &log, t0 + 5 * MS + MS / 2, want, n);

    n = 0;
    for (int i = 5; i < EDGE_N - 1; i++) {
        if (i == 10 || i == 20) {
            continue;
        }
        want[n++] = i;
        if (i == 29) {
            want[n++] = 10;
        }
    }
    expect_fired(ctx, &log, t0 + 99 * MS, want, n);
    ck_assert(timer_pending(&it[0].timer));
    want[0] = 0;
    expect_fired(ctx, &log, t0 + 100 * MS, want, 1);
    for (int i = 0; i < EDGE_N; i++) {
        ck_assert_int_eq(it[i].fired, 1);
        ck_assert_int_eq(it[i].early, 0);
    }
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_delete_root_middle_last)
{
    static const int gone[] = { 0, 17, EDGE_N - 1 }; /* root, inside, last */
    AioContext *ctx = test_ctx_new();
    Item it[EDGE_N];
    FireLog log = { .n = 0 };
    int64_t t0 = edge_setup(ctx, it, &log);
    int want[EDGE_N], n = 0;

    for (int g = 0; g < 3; g++) {
        timer_del(&it[gone[g]].timer);
        ck_assert(!timer_pending(&it[gone[g]].timer));
        ck_assert_int_eq(timer_expire_time_ns(&it[gone[g]].timer), -1);
    }
    for (int i = 1; i < EDGE_N - 1; i++) {
        if (i != 17) {
            want[n++] = i;
        }
    }
    expect_fired(ctx, &log, t0 + 100 * MS, want, n);
    ck_assert_int_eq(it[0].fired + it[17].fired + it[EDGE_N - 1].fired, 0);

    /* Deleted timers arm again like new ones. */
    for (int g = 0; g < 3; g++) {
        item_arm(&it[gone[g]], t0 + 200 * MS - g);
    }
    want[0] = EDGE_N - 1;
    want[1] = 17;
    want[2] = 0;
    expect_fired(ctx, &log, t0 + 200 * MS, want, 3);
    aio_context_unref(ctx);
}
END_TEST

/* Emptying a list from the root, and from the last slot, leaves it empty. */
START_TEST(test_delete_all_from_either_end)
{
    AioContext *ctx = test_ctx_new();
    Item it[EDGE_N];
    FireLog log = { .n = 0 };

    for (int pass = 0; pass < 2; pass++) {
        int64_t t0 = edge_setup(ctx, it, &log);

        for (int i = 0; i < EDGE_N; i++) {
            int k = pass ? EDGE_N - 1 - i : i;

            timer_del(&it[k].timer);
            for (int j = 0; j < EDGE_N; j++) {
                bool deleted = pass ? j >= EDGE_N - 1 - i : j <= i;

                ck_assert(timer_pending(&it[j].timer) == !deleted);
            }
        }
        expect_fired(ctx, &log, t0 + 100 * MS, NULL, 0);
        ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    }
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    Item *due_later; /* moved earlier: fires in the same aio_poll */
    Item *due_now;   /* moved later: does not */
    int64_t t0;
} Mover;

static void mover_cb(void *opaque)
{
    Mover *mv = opaque;

    item_arm(mv->due_later, mv->t0 + MS + MS / 2);
    item_arm(mv->due_now, mv->t0 + 20 * MS);
}

START_TEST(test_rearm_other_from_callback)
{
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    FireLog log = { .n = 0 };
    Item b, c, d;
    Mover mv = { &b, &d, t0 };
    QEMUTimer a;
    int want[] = { 1, 2 };

    aio_timer_init(ctx, &a, QEMU_CLOCK_VIRTUAL, SCALE_NS, mover_cb, &mv);
    item_init(ctx, &b, &log, 1, QEMU_CLOCK_VIRTUAL);
    item_init(ctx, &c, &log, 2, QEMU_CLOCK_VIRTUAL);
    item_init(ctx, &d, &log, 3, QEMU_CLOCK_VIRTUAL);
    timer_mod_ns(&a, t0 + MS);
    item_arm(&b, t0 + 10 * MS);
    item_arm(&c, t0 + 2 * MS);
    item_arm(&d, t0 + 3 * MS);
    /* a runs first and moves b before c, and d past the step. */
    expect_fired(ctx, &log, t0 + 5 * MS, want, 2);
    ck_assert(timer_pending(&d.timer));
    want[0] = 3;
    expect_fired(ctx, &log, t0 + 20 * MS, want, 1);
    ck_assert_int_eq(b.fired + c.fired + d.fired, 3);
    timer_deinit(&a);
    aio_context_unref(ctx);
}
END_TEST

/*
 * Many timers sharing few deadlines, armed in a scrambled deadline order,
 * some re-armed to the deadline they had: each deadline's timers fire in
 * the order they were last armed, however deep in the heap they sit.
 */
enum { TIE_N = 2000, TIE_DEADLINES = 8 };

static int tie_log[TIE_N];
static int tie_nlog;

static void tie_cb(void *opaque)
{
    tie_log[tie_nlog++] = (int)(intptr_t)opaque;
}

START_TEST(test_many_equal_deadlines_fifo)
{
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    static QEMUTimer t[TIE_N];
    static int order[TIE_N + TIE_N / 7 + 1]; /* ids in arming order */
    static int last[TIE_N]; /* where each id was last armed in order[] */
    int group[TIE_N], norder = 0, k = 0;
    uint64_t x = 5;

    for (int i = 0; i < TIE_N; i++) {
        group[i] = (int)(xorshift64(&x) % TIE_DEADLINES);
        aio_timer_init(ctx, &t[i], QEMU_CLOCK_VIRTUAL, SCALE_NS, tie_cb,
                       (void *)(intptr_t)i);
        timer_mod_ns(&t[i], t0 + (group[i] + 1) * MS);
        last[i] = norder;
        order[norder++] = i;
    }
    for (int i = 0; i < TIE_N; i += 7) {
        timer_mod_ns(&t[i], t0 + (group[i] + 1) * MS);
        last[i] = norder;
        order[norder++] = i;
    }
    tie_nlog = 0;
    qemu_clock_advance_virtual_time(t0 + TIE_DEADLINES * MS);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(tie_nlog, TIE_N);
    /* Expected: by deadline, then by the last time each was armed. */
    for (int g = 0; g < TIE_DEADLINES; g++) {
        for (int j = 0; j < norder; j++) {
            int id = order[j];

            if (group[id] == g && last[id] == j) {
                ck_assert_int_eq(tie_log[k], id);
                k++;
            }
        }
    }
    ck_assert_int_eq(k, TIE_N);
    aio_context_unref(ctx);
}
END_TEST

/* Clocks are visited in index order: REALTIME, VIRTUAL, HOST, VIRTUAL_RT. */
START_TEST(test_clock_order)
{
    static const QEMUClockType order[] = { QEMU_CLOCK_VIRTUAL_RT,
                                           QEMU_CLOCK_HOST, QEMU_CLOCK_VIRTUAL,
                                           QEMU_CLOCK_REALTIME };
    AioContext *ctx = test_ctx_new();
    Item it[4];
    FireLog log = { .n = 0 };

    for (int i = 0; i < 4; i++) {
        item_init(ctx, &it[i], &log, order[i], order[i]);
        item_arm(&it[i], qemu_clock_get_ns(order[i]) - 1);
    }
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(log.n, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(log.ids[i], i);
    }
    aio_context_unref(ctx);
}
END_TEST

/* ---- callbacks changing timers ---- */

typedef struct {
    QEMUTimer *self;
    int64_t period;
    int64_t next;
    int fired;
    int max;
} Periodic;

static void periodic_cb(void *opaque)
{
    Periodic *p = opaque;

    p->fired++;
    if (p->fired < p->max) {
        p->next += p->period;
        timer_mod_ns(p->self, p->next); /* from its previous deadline */
    }
}

START_TEST(test_rearm_self_from_callback)
{
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    Periodic p = { .period = 10 * MS, .next = t0 + 10 * MS, .max = 5 };
    QEMUTimer *t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS,
                                 periodic_cb, &p);

    p.self = t;
    timer_mod_ns(t, p.next);
    /* One step per period: one firing each. */
    for (int i = 1; i <= 2; i++) {
        qemu_clock_advance_virtual_time(t0 + i * 10 * MS);
        ck_assert(aio_poll(ctx, false));
        ck_assert_int_eq(p.fired, i);
        ck_assert(timer_pending(t));
        ck_assert_int_eq(timer_expire_time_ns(t), t0 + (i + 1) * 10 * MS);
    }
    /* A step across three periods catches up in one aio_poll. */
    qemu_clock_advance_virtual_time(t0 + 1000 * MS);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(p.fired, 5);
    ck_assert(!timer_pending(t));
    ck_assert(!aio_poll(ctx, false));
    timer_free(t);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    QEMUTimer *victim;
    bool free_it; /* else timer_del */
    int fired;
} Killer;

static void killer_cb(void *opaque)
{
    Killer *k = opaque;

    k->fired++;
    if (k->free_it) {
        timer_free(k->victim);
    } else {
        timer_del(k->victim);
    }
}

START_TEST(test_delete_and_free_other_from_callback)
{
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    int victim_runs = 0;
    Killer kd = { .free_it = false }, kf = { .free_it = true };
    QEMUTimer *a = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, killer_cb,
                                 &kd);
    QEMUTimer *b = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, killer_cb,
                                 &kf);

    /* Victims are due at the same time, armed after their killers. */
    kd.victim = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, count_cb,
                              &victim_runs);
    kf.victim = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, count_cb,
                              &victim_runs);
    timer_mod_ns(a, t0 + MS);
    timer_mod_ns(b, t0 + MS);
    timer_mod_ns(kd.victim, t0 + MS);
    timer_mod_ns(kf.victim, t0 + MS);
    qemu_clock_advance_virtual_time(t0 + 2 * MS);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(kd.fired, 1);
    ck_assert_int_eq(kf.fired, 1);
    ck_assert_int_eq(victim_runs, 0);
    ck_assert(!timer_pending(kd.victim));
    ck_assert(!aio_poll(ctx, false));
    timer_free(kd.victim);
    timer_free(a);
    timer_free(b);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    QEMUTimer *self;
    int fired;
} SelfFree;

static void self_free_cb(void *opaque)
{
    SelfFree *s = opaque;

    s->fired++;
    timer_free(s->self);
}

static void self_del_cb(void *opaque)
{
    SelfFree *s = opaque;

    s->fired++;
    timer_mod_ns(s->self, 0); /* re-arm in the past ... */
    timer_del(s->self);       /* ... and take it back */
}

START_TEST(test_free_and_delete_self_from_callback)
{
    AioContext *ctx = test_ctx_new();
    SelfFree f = { 0 }, d = { 0 };

    f.self = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS, self_free_cb,
                           &f);
    d.self = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS, self_del_cb, &d);
    timer_mod_ns(f.self, 0);
    timer_mod_ns(d.self, 0);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(f.fired, 1);
    ck_assert_int_eq(d.fired, 1);
    ck_assert(!timer_pending(d.self));
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(d.fired, 1);
    timer_free(d.self);
    aio_context_unref(ctx); /* ASan: f.self was freed exactly once */
}
END_TEST

START_TEST(test_deleted_never_fires)
{
    AioContext *ctx = test_ctx_new();
    int n = 0;
    QEMUTimer *t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, count_cb,
                                 &n);
    QEMUTimer *pending = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                       count_cb, &n);

    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
    ck_assert(timer_pending(t));
    timer_del(t);
    timer_del(t); /* idle: nothing happens */
    ck_assert(!timer_pending(t));
    ck_assert_int_eq(timer_expire_time_ns(t), -1);
    test_sleep_us(3000);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(n, 0);
    /* Freeing a pending (even a due) timer: it never runs. */
    timer_mod(pending, 0);
    timer_free(pending);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(n, 0);
    /* And a deinit'ed embedded one. */
    {
        QEMUTimer e;

        aio_timer_init(ctx, &e, QEMU_CLOCK_REALTIME, SCALE_NS, count_cb, &n);
        timer_mod_ns(&e, 0);
        timer_deinit(&e);
        ck_assert(!timer_pending(&e));
        ck_assert(!aio_poll(ctx, false));
        ck_assert_int_eq(n, 0);
    }
    timer_free(t);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    AioContext *ctx;
    int fired;
    int nested_progress;
} Nester;

static void nesting_cb(void *opaque)
{
    Nester *ns = opaque;

    ns->fired++;
    if (ns->fired == 1) {
        /* The other due timers run inside, each once. */
        ns->nested_progress = aio_poll(ns->ctx, false);
    }
}

START_TEST(test_nested_poll_from_callback)
{
    enum { N = 5 };
    AioContext *ctx = test_ctx_new();
    Nester ns = { .ctx = ctx };
    QEMUTimer t[N];

    for (int i = 0; i < N; i++) {
        aio_timer_init(ctx, &t[i], QEMU_CLOCK_REALTIME, SCALE_NS, nesting_cb,
                       &ns);
        timer_mod_ns(&t[i], i);
    }
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(ns.fired, N);
    ck_assert_int_eq(ns.nested_progress, 1);
    ck_assert(!aio_poll(ctx, false));
    aio_context_unref(ctx);
}
END_TEST

/* ---- the virtual clock ---- */

START_TEST(test_stopped_clock_does_not_fire)
{
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    Item it;

    item_init(ctx, &it, NULL, 0, QEMU_CLOCK_VIRTUAL);
    item_arm(&it, t0 + MS);
    test_sleep_us(5000); /* real time passes, virtual time does not */
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(it.fired, 0);
    /* Nothing else: a blocking poll would sleep forever. */
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    qemu_clock_advance_virtual_time(t0 + MS - 1);
    aio_poll(ctx, false);
    ck_assert_int_eq(it.fired, 0);
    qemu_clock_advance_virtual_time(t0 + MS);
    ck_assert_int_eq(aio_compute_timeout(ctx), 0);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(it.fired, 1);
    ck_assert_int_eq(it.early, 0);

    /* Restarted, it fires by itself again (without a jump). */
    item_arm(&it, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + 50 * MS);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    ck_assert_int_ne(aio_compute_timeout(ctx), -1);
    ck_assert_int_le(aio_compute_timeout(ctx), 50 * MS);
    while (it.fired < 2) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(it.fired, 2);
    ck_assert_int_eq(it.early, 0);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_virtual_advance_order_deterministic)
{
    enum { N = 200, STEPS = 10 };
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    static Item it[N];
    FireLog log = { .n = 0 };
    int fired_total = 0;
    uint64_t x = 12345;

    for (int i = 0; i < N; i++) {
        item_init(ctx, &it[i], NULL, i, QEMU_CLOCK_VIRTUAL);
        /* 20 distinct deadlines: plenty of ties. */
        item_arm(&it[i], t0 + (int64_t)(xorshift64(&x) % 20 + 1) * MS);
    }
    for (int step = 1; step <= STEPS; step++) {
        int64_t now = t0 + step * 2 * MS;
        int prev = -1;

        log.n = 0;
        for (int i = 0; i < N; i++) {
            it[i].log = &log;
        }
        qemu_clock_advance_virtual_time(now);
        aio_poll(ctx, false);
        /* Exactly the timers due by now, in (deadline, arming) order. */
        for (int k = 0; k < log.n; k++) {
            Item *cur = &it[log.ids[k]];

            ck_assert_int_le(cur->deadline, now);
            ck_assert_int_gt(cur->deadline, now - 2 * MS);
            if (prev >= 0) {
                Item *p = &it[prev];

                ck_assert(p->deadline < cur->deadline ||
                          (p->deadline == cur->deadline && prev < cur->id));
            }
            prev = cur->id;
        }
        fired_total += log.n;
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(it[i].fired, it[i].deadline <= now);
        }
    }
    ck_assert_int_eq(fired_total, N);
    aio_context_unref(ctx);
}
END_TEST

/* Each context's timers fire in that context's own thread. */
typedef struct {
    AioContext *ctx;
    QEMUTimer timer;
    pthread_t thread;
    pthread_t owner; /* written by the polling thread itself */
    int fired;   /* atomic */
    int wrong_thread;
    int stop;    /* atomic */
} ThreadCtx;

static void owner_cb(void *opaque)
{
    ThreadCtx *tc = opaque;

    if (!pthread_equal(pthread_self(), tc->owner)) {
        tc->wrong_thread++;
    }
    __atomic_add_fetch(&tc->fired, 1, __ATOMIC_SEQ_CST);
}

static void *ctx_thread(void *opaque)
{
    ThreadCtx *tc = opaque;

    tc->owner = pthread_self();
    while (!__atomic_load_n(&tc->stop, __ATOMIC_SEQ_CST)) {
        aio_poll(tc->ctx, true);
    }
    return NULL;
}

START_TEST(test_advance_wakes_each_context)
{
    enum { T = 2 };
    int64_t t0 = virtual_stop();
    ThreadCtx tc[T];

    for (int i = 0; i < T; i++) {
        memset(&tc[i], 0, sizeof(tc[i]));
        tc[i].ctx = test_ctx_new();
        aio_timer_init(tc[i].ctx, &tc[i].timer, QEMU_CLOCK_VIRTUAL, SCALE_NS,
                       owner_cb, &tc[i]);
        timer_mod_ns(&tc[i].timer, t0 + (i + 1) * MS);
    }
    for (int i = 0; i < T; i++) {
        pthread_create(&tc[i].thread, NULL, ctx_thread, &tc[i]);
    }
    test_sleep_us(10000); /* both loops are (most likely) asleep by now */
    ck_assert_int_eq(__atomic_load_n(&tc[0].fired, __ATOMIC_SEQ_CST), 0);
    ck_assert_int_eq(__atomic_load_n(&tc[1].fired, __ATOMIC_SEQ_CST), 0);
    qemu_clock_advance_virtual_time(t0 + 1 * MS);
    while (!__atomic_load_n(&tc[0].fired, __ATOMIC_SEQ_CST)) {
        test_sleep_us(100);
    }
    test_sleep_us(5000);
    ck_assert_int_eq(__atomic_load_n(&tc[1].fired, __ATOMIC_SEQ_CST), 0);
    qemu_clock_advance_virtual_time(t0 + 2 * MS);
    while (!__atomic_load_n(&tc[1].fired, __ATOMIC_SEQ_CST)) {
        test_sleep_us(100);
    }
    for (int i = 0; i < T; i++) {
        __atomic_store_n(&tc[i].stop, 1, __ATOMIC_SEQ_CST);
        aio_notify(tc[i].ctx);
        pthread_join(tc[i].thread, NULL);
        ck_assert_int_eq(tc[i].fired, 1);
        ck_assert_int_eq(tc[i].wrong_thread, 0);
        aio_context_unref(tc[i].ctx);
    }
}
END_TEST

/* ---- anticipate, expiry queries, attributes ---- */

START_TEST(test_anticipate)
{
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    int n = 0;
    QEMUTimer t;

    aio_timer_init(ctx, &t, QEMU_CLOCK_VIRTUAL, SCALE_US, count_cb, &n);
    /* Idle: anticipate arms it. */
    timer_mod_anticipate(&t, t0 / SCALE_US + 300);
    ck_assert_int_eq(timer_expire_time_ns(&t), (t0 / SCALE_US + 300) * SCALE_US);
    /* Later: ignored. */
    timer_mod_anticipate(&t, t0 / SCALE_US + 400);
    ck_assert_int_eq(timer_expire_time_ns(&t), (t0 / SCALE_US + 300) * SCALE_US);
    timer_mod_anticipate_ns(&t, (t0 / SCALE_US + 300) * SCALE_US);
    ck_assert_int_eq(timer_expire_time_ns(&t), (t0 / SCALE_US + 300) * SCALE_US);
    /* Earlier: taken. */
    timer_mod_anticipate_ns(&t, t0 + 100 * SCALE_US);
    ck_assert_int_eq(timer_expire_time_ns(&t), t0 + 100 * SCALE_US);
    /* timer_mod moves either way. */
    timer_mod(&t, t0 / SCALE_US + 200);
    ck_assert_int_eq(timer_expire_time_ns(&t), (t0 / SCALE_US + 200) * SCALE_US);
    qemu_clock_advance_virtual_time(t0 + 150 * SCALE_US);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(n, 0);
    qemu_clock_advance_virtual_time(t0 + 200 * SCALE_US);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(n, 1);
    ck_assert(!timer_pending(&t));
    timer_deinit(&t);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_expiry_queries)
{
    AioContext *ctx = test_ctx_new();
    int n = 0;
    QEMUTimer *t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_MS, count_cb,
                                 &n);

    virtual_stop();
    ck_assert(!timer_pending(t));
    ck_assert_int_eq(timer_expire_time_ns(t), -1);
    ck_assert(timer_expired(t, 0)); /* as in QEMU: idle reads as expired */
    timer_mod(t, 5000000);
    ck_assert(timer_pending(t));
    ck_assert_int_eq(timer_expire_time_ns(t), 5000000LL * SCALE_MS);
    ck_assert(!timer_expired(t, 4999999));
    ck_assert(timer_expired(t, 5000000));
    ck_assert(timer_expired(t, INT64_MAX));
    ck_assert(!timer_expired(t, INT64_MIN));
    /* Negative deadlines count as 0, overflowing ones saturate. */
    timer_mod(t, -5);
    ck_assert_int_eq(timer_expire_time_ns(t), 0);
    timer_mod(t, INT64_MAX / 2);
    ck_assert_int_eq(timer_expire_time_ns(t), INT64_MAX);
    timer_mod_ns(t, -1);
    ck_assert_int_eq(timer_expire_time_ns(t), 0);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(n, 1);
    timer_free(t);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_attributes)
{
    AioContext *ctx = test_ctx_new();
    int n = 0;
    QEMUTimer *a = aio_timer_new_with_attrs(ctx, QEMU_CLOCK_HOST, SCALE_NS,
                                            QEMU_TIMER_ATTR_EXTERNAL, count_cb,
                                            &n);
    QEMUTimer *b = aio_timer_new(ctx, QEMU_CLOCK_HOST, SCALE_NS, count_cb, &n);
    QEMUTimer c, d;

    aio_timer_init_with_attrs(ctx, &c, QEMU_CLOCK_REALTIME, SCALE_MS,
                              (int)QEMU_TIMER_ATTR_ALL, count_cb, &n);
    aio_timer_init(ctx, &d, QEMU_CLOCK_REALTIME, SCALE_MS, count_cb, &n);
    ck_assert_int_eq(timer_get_attributes(a), QEMU_TIMER_ATTR_EXTERNAL);
    ck_assert_int_eq(timer_get_attributes(b), 0);
    ck_assert_int_eq(timer_get_attributes(&c), (int)QEMU_TIMER_ATTR_ALL);
    ck_assert_int_eq(timer_get_attributes(&d), 0);
    /* Arming does not change them. */
    timer_mod(a, 0);
    ck_assert_int_eq(timer_get_attributes(a), QEMU_TIMER_ATTR_EXTERNAL);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(n, 1);
    timer_free(a);
    timer_free(b);
    aio_context_unref(ctx);
}
END_TEST

/* ---- bad inputs ---- */

START_TEST(test_bad_inputs)
{
    AioContext *ctx = test_ctx_new();
    QEMUTimerListGroup *tlg = aio_get_timer_list_group(ctx);
    int n = 0;
    QEMUTimer *t;

    ck_assert_ptr_nonnull(tlg);
    ck_assert_ptr_null(aio_get_timer_list_group(NULL));
    ck_assert_ptr_null(timer_new_full(tlg, QEMU_CLOCK_MAX, 1, 0, count_cb, &n));
    ck_assert_ptr_null(timer_new_full(tlg, (QEMUClockType)-3, 1, 0, count_cb,
                                      &n));
    ck_assert_ptr_null(timer_new_full(tlg, QEMU_CLOCK_REALTIME, 0, 0, count_cb,
                                      &n));
    ck_assert_ptr_null(timer_new_full(tlg, QEMU_CLOCK_REALTIME, -1, 0,
                                      count_cb, &n));
    ck_assert_ptr_null(timer_new_full(tlg, QEMU_CLOCK_REALTIME, 1, 0, NULL,
                                      &n));
    ck_assert_ptr_null(aio_timer_new(NULL, QEMU_CLOCK_REALTIME, 1, count_cb,
                                     &n));
    /* No group and no current context. */
    qemu_set_current_aio_context(NULL);
    ck_assert_ptr_null(timer_new_full(NULL, QEMU_CLOCK_REALTIME, 1, 0,
                                      count_cb, &n));
    /* NULL is harmless where nothing is returned. */
    timer_del(NULL);
    timer_deinit(NULL);
    timer_free(NULL);
    ck_assert(!timer_pending(NULL));
    ck_assert(!timer_expired(NULL, 0));
    ck_assert_int_eq(timer_expire_time_ns(NULL), -1);
    ck_assert_int_eq(timer_get_attributes(NULL), 0);

    /* A NULL group means the current context's. */
    qemu_set_current_aio_context(ctx);
    t = timer_new_full(NULL, QEMU_CLOCK_REALTIME, 1, 0, count_cb, &n);
    ck_assert_ptr_nonnull(t);
    timer_mod(t, 0);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(n, 1);
    timer_free(t);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_init_null_context_aborts)
{
    QEMUTimer t;

    aio_timer_init(NULL, &t, QEMU_CLOCK_REALTIME, 1, count_cb, NULL);
}
END_TEST

START_TEST(test_init_bad_clock_aborts)
{
    AioContext *ctx = test_ctx_new();
    QEMUTimer t;

    aio_timer_init(ctx, &t, QEMU_CLOCK_MAX, 1, count_cb, NULL);
}
END_TEST

START_TEST(test_mod_uninitialised_aborts)
{
    QEMUTimer t;

    memset(&t, 0, sizeof(t));
    timer_mod(&t, 1);
}
END_TEST

/* ---- disabled clocks and timeouts ---- */

START_TEST(test_compute_timeout)
{
    AioContext *ctx = test_ctx_new();
    int n = 0;
    QEMUTimer t, v;
    int64_t to;

    test_consume_notify(ctx);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    aio_timer_init(ctx, &t, QEMU_CLOCK_REALTIME, SCALE_MS, count_cb, &n);
    aio_timer_init(ctx, &v, QEMU_CLOCK_VIRTUAL, SCALE_MS, count_cb, &n);
    timer_mod(&t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 60000);
    to = aio_compute_timeout(ctx);
    ck_assert_int_gt(to, 59000 * MS);
    ck_assert_int_le(to, 60000 * MS);
    /* The nearest deadline over all clocks wins. */
    timer_mod(&v, qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + 30000);
    to = aio_compute_timeout(ctx);
    ck_assert_int_gt(to, 29000 * MS);
    ck_assert_int_le(to, 30000 * MS);
    /* A due timer makes it 0. */
    timer_mod(&t, 0);
    ck_assert_int_eq(aio_compute_timeout(ctx), 0);
    /* A disabled clock counts for nothing and fires nothing. */
    qemu_clock_enable(QEMU_CLOCK_REALTIME, false);
    to = aio_compute_timeout(ctx);
    ck_assert_int_gt(to, 29000 * MS);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(n, 0);
    qemu_clock_enable(QEMU_CLOCK_REALTIME, true);
    aio_poll(ctx, false); /* the wake-up from enabling, and the timer */
    ck_assert_int_eq(n, 1);
    /* A scheduled BH makes it 0 too; an idle one caps it at 10 ms. */
    {
        QEMUBH *idle = aio_bh_new(ctx, count_cb, &n);
        QEMUBH *bh = aio_bh_new(ctx, count_cb, &n);

        qemu_bh_schedule_idle(idle);
        to = aio_compute_timeout(ctx);
        ck_assert_int_gt(to, 0);
        ck_assert_int_le(to, 10 * MS);
        qemu_bh_schedule(bh);
        ck_assert_int_eq(aio_compute_timeout(ctx), 0);
        aio_poll(ctx, false);
        qemu_bh_delete(idle);
        qemu_bh_delete(bh);
    }
    timer_del(&v);
    aio_poll(ctx, false);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    aio_context_unref(ctx);
}
END_TEST

/* aio_poll(ctx, true) sleeps until the nearest deadline, never less. */
START_TEST(test_blocking_poll_sleeps_until_deadline)
{
    static const int64_t delays_us[] = { 100, 1000, 20000, 3000, 250 };
    AioContext *ctx = test_ctx_new();
    Item it;

    item_init(ctx, &it, NULL, 0, QEMU_CLOCK_REALTIME);
    for (size_t i = 0; i < sizeof(delays_us) / sizeof(delays_us[0]); i++) {
        int64_t start;

        test_consume_notify(ctx);
        start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        item_arm(&it, start + delays_us[i] * SCALE_US);
        /* One blocking call: wakes at the deadline and runs the timer. */
        ck_assert(aio_poll(ctx, true));
        ck_assert_int_eq(it.fired, (int)i + 1);
        ck_assert_int_eq(it.early, 0);
        ck_assert_int_ge(qemu_clock_get_ns(QEMU_CLOCK_REALTIME), it.deadline);
    }
    /* Two clocks: the nearer one (virtual, running) wakes it first. */
    {
        Item v;
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

        item_init(ctx, &v, NULL, 1, QEMU_CLOCK_VIRTUAL);
        item_arm(&it, now + 300 * MS);
        item_arm(&v, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + 5 * MS);
        ck_assert(aio_poll(ctx, true));
        ck_assert_int_eq(v.fired, 1);
        ck_assert_int_eq(v.early, 0);
        ck_assert(timer_pending(&it.timer));
        ck_assert(aio_poll(ctx, true));
        ck_assert_int_eq(it.early, 0);
        ck_assert(!timer_pending(&it.timer));
    }
    aio_context_unref(ctx);
}
END_TEST

/* ---- many timers ---- */

typedef struct {
    QEMUTimer timer;
    int64_t deadline;
    QEMUClockType clock;
    int fired;
} Many;

static int many_early;
static int many_total;

static void many_cb(void *opaque)
{
    Many *m = opaque;

    if (qemu_clock_get_ns(m->clock) < m->deadline) {
        many_early++;
    }
    m->fired++;
    many_total++;
}

static void many_run(QEMUClockType clock, int64_t span_ns, bool stepped)
{
    enum { N = 100000 };
    AioContext *ctx = test_ctx_new();
    Many *m = calloc(N, sizeof(*m));
    uint64_t x = 42;
    int64_t t0 = qemu_clock_get_ns(clock);
    int polls = 0;

    ck_assert_ptr_nonnull(m);
    many_early = many_total = 0;
    for (int i = 0; i < N; i++) {
        m[i].clock = clock;
        m[i].deadline = t0 + (int64_t)(xorshift64(&x) % (uint64_t)span_ns);
        aio_timer_init(ctx, &m[i].timer, clock, SCALE_NS, many_cb, &m[i]);
        timer_mod_ns(&m[i].timer, m[i].deadline);
    }
    /* Delete every 10th, re-arm it: it must still fire exactly once. */
    for (int i = 0; i < N; i += 10) {
        timer_del(&m[i].timer);
        timer_mod_ns(&m[i].timer, m[i].deadline);
    }
    if (stepped) {
        for (int64_t t = t0; many_total < N; t += span_ns / 100) {
            qemu_clock_advance_virtual_time(t);
            aio_poll(ctx, false);
            ck_assert_int_lt(++polls, 1000);
        }
    } else {
        while (many_total < N) {
            aio_poll(ctx, true);
            ck_assert_int_lt(++polls, 10 * N);
        }
    }
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(many_total, N);
    ck_assert_int_eq(many_early, 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(m[i].fired, 1);
    }
    aio_context_unref(ctx);
    free(m);
}

START_TEST(test_100k_timers_virtual)
{
    virtual_stop();
    many_run(QEMU_CLOCK_VIRTUAL, 1000 * MS, true);
}
END_TEST

START_TEST(test_100k_timers_realtime)
{
    many_run(QEMU_CLOCK_REALTIME, 50 * MS, false);
}
END_TEST

/*
 * Random arms, moves, anticipates and deletes on a stopped clock, checked
 * against a model: every query answers like the model, and stepping the
 * clock fires exactly the model's due timers in (deadline, arming) order.
 */
typedef struct {
    QEMUTimer timer;
    int64_t expire; /* model: -1 idle */
    uint64_t armed; /* model: arming counter when last armed */
    int fired;
    int id;
} Model;

static int model_log[4096];
static int model_nlog;

static void model_cb(void *opaque)
{
    Model *md = opaque;

    md->fired++;
    model_log[model_nlog++] = md->id;
}

START_TEST(test_heap_against_model)
{
    enum { N = 1000, OPS = 20000 };
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop();
    static Model md[N];
    uint64_t x = 99, clock_arms = 0;
    int64_t now = t0;

    for (int i = 0; i < N; i++) {
        md[i] = (Model){ .expire = -1, .id = i };
        aio_timer_init(ctx, &md[i].timer, QEMU_CLOCK_VIRTUAL, SCALE_NS,
                       model_cb, &md[i]);
    }
    for (int round = 0; round < 4; round++) {
        for (int op = 0; op < OPS; op++) {
            uint64_t r = xorshift64(&x);
            Model *m = &md[r % N];
            int64_t when = now + 1 + (int64_t)((r >> 20) % 64) * 1000;

            switch ((r >> 40) % 4) {
            case 0:
            case 1:
                timer_mod_ns(&m->timer, when);
                m->expire = when;
                m->armed = ++clock_arms;
                break;
            case 2:
                timer_mod_anticipate_ns(&m->timer, when);
                if (m->expire < 0 || when < m->expire) {
                    m->expire = when;
                    m->armed = ++clock_arms;
                }
                break;
            default:
                timer_del(&m->timer);
                m->expire = -1;
                break;
            }
            ck_assert_int_eq(timer_expire_time_ns(&m->timer), m->expire);
        }
        /* Step past half of the window and check what fires. */
        now += 32 * 1000;
        model_nlog = 0;
        qemu_clock_advance_virtual_time(now);
        aio_poll(ctx, false);
        for (int k = 0; k < model_nlog; k++) {
            Model *cur = &md[model_log[k]];

            ck_assert_int_ge(cur->expire, 0);
            ck_assert_int_le(cur->expire, now);
            if (k > 0) {
                Model *p = &md[model_log[k - 1]];

                ck_assert(p->expire < cur->expire ||
                          (p->expire == cur->expire && p->armed < cur->armed));
            }
        }
        for (int i = 0; i < N; i++) {
            bool due = md[i].expire >= 0 && md[i].expire <= now;

            if (due) {
                md[i].fired--;
                md[i].expire = -1;
            }
            ck_assert_int_eq(md[i].fired, 0);
            ck_assert_int_eq(timer_expire_time_ns(&md[i].timer), md[i].expire);
        }
    }
    aio_context_unref(ctx);
}
END_TEST

/* ---- destruction ---- */

START_TEST(test_destroy_with_armed_timers)
{
    AioContext *ctx = test_ctx_new();
    int n = 0;
    QEMUTimer e, idle;
    QEMUTimer *due = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS,
                                   count_cb, &n);
    QEMUTimer *later = aio_timer_new(ctx, QEMU_CLOCK_HOST, SCALE_MS, count_cb,
                                     &n);
    QEMUTimer *never = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS,
                                     count_cb, &n);

    aio_timer_init(ctx, &e, QEMU_CLOCK_VIRTUAL_RT, SCALE_US, count_cb, &n);
    aio_timer_init(ctx, &idle, QEMU_CLOCK_REALTIME, SCALE_US, count_cb, &n);
    timer_mod_ns(due, 0);
    timer_mod(later, qemu_clock_get_ms(QEMU_CLOCK_HOST) + 1000);
    timer_mod(&e, 0);
    aio_context_unref(ctx);
    ck_assert_int_eq(n, 0);
    /* Disarmed, and still the caller's to free. */
    ck_assert(!timer_pending(due));
    ck_assert(!timer_pending(later));
    ck_assert(!timer_pending(&e));
    ck_assert_int_eq(timer_expire_time_ns(&e), -1);
    timer_del(&e);
    timer_deinit(&idle);
    timer_free(due);
    timer_free(later);
    timer_free(never);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* ---- cross-thread ---- */

typedef struct {
    QEMUTimer *timer;
    int64_t delay_ns;
    int sleep_us;
} Armer;

static void *armer_thread(void *opaque)
{
    Armer *a = opaque;

    test_sleep_us(a->sleep_us);
    timer_mod_ns(a->timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + a->delay_ns);
    return NULL;
}

START_TEST(test_cross_thread_arm_wakes_sleeping_loop)
{
    AioContext *ctx = test_ctx_new();
    int far_n = 0, near_n = 0;
    QEMUTimer far, near;
    pthread_t th;

    aio_timer_init(ctx, &far, QEMU_CLOCK_REALTIME, SCALE_MS, count_cb, &far_n);
    aio_timer_init(ctx, &near, QEMU_CLOCK_REALTIME, SCALE_NS, count_cb,
                   &near_n);
    /* The loop will sleep for an hour unless the other thread wakes it. */
    timer_mod(&far, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 3600 * 1000);
    test_consume_notify(ctx);
    for (int round = 0; round < 10; round++) {
        Armer a = { &near, round % 2 ? 0 : 500 * SCALE_US,
                    round % 3 ? 20000 : 0 };

        pthread_create(&th, NULL, armer_thread, &a);
        while (near_n == round) {
            aio_poll(ctx, true);
        }
        pthread_join(th, NULL);
        ck_assert_int_eq(near_n, round + 1);
    }
    ck_assert_int_eq(far_n, 0);
    ck_assert(timer_pending(&far));
    timer_del(&far);
    aio_context_unref(ctx);
}
END_TEST

static void *advancer_thread(void *opaque)
{
    int64_t *target = opaque;

    test_sleep_us(20000);
    qemu_clock_advance_virtual_time(*target);
    return NULL;
}

static void *enabler_thread(void *opaque)
{
    (void)opaque;
    test_sleep_us(20000);
    qemu_clock_enable(QEMU_CLOCK_REALTIME, true);
    return NULL;
}

START_TEST(test_cross_thread_clock_changes_wake)
{
    AioContext *ctx = test_ctx_new();
    int64_t t0 = virtual_stop(), target = t0 + MS;
    int n = 0;
    QEMUTimer v, r;
    pthread_t th;

    aio_timer_init(ctx, &v, QEMU_CLOCK_VIRTUAL, SCALE_NS, count_cb, &n);
    timer_mod_ns(&v, target);
    test_consume_notify(ctx);
    pthread_create(&th, NULL, advancer_thread, &target);
    while (n == 0) {
        aio_poll(ctx, true); /* frozen clock: only the advance wakes it */
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(n, 1);

    aio_timer_init(ctx, &r, QEMU_CLOCK_REALTIME, SCALE_NS, count_cb, &n);
    qemu_clock_enable(QEMU_CLOCK_REALTIME, false);
    timer_mod_ns(&r, 0);
    pthread_create(&th, NULL, enabler_thread, NULL);
    while (n == 1) {
        aio_poll(ctx, true); /* disabled clock: only enabling wakes it */
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(n, 2);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    QEMUTimer *timers;
    int ntimers;
    int iterations;
    uint64_t seed;
    int *done; /* atomic: threads finished */
} Churner;

static void *churn_thread(void *opaque)
{
    Churner *c = opaque;
    uint64_t x = c->seed;

    for (int i = 0; i < c->iterations; i++) {
        uint64_t r = xorshift64(&x);
        QEMUTimer *t = &c->timers[r % c->ntimers];
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

        switch ((r >> 32) % 3) {
        case 0:
            timer_mod_ns(t, now + (int64_t)((r >> 8) % 200) * SCALE_US);
            break;
        case 1:
            timer_mod_anticipate_ns(t, now + (int64_t)((r >> 8) % 200) *
                                                 SCALE_US);
            break;
        default:
            timer_del(t);
            break;
        }
    }
    for (int i = 0; i < c->ntimers; i++) {
        timer_del(&c->timers[i]);
    }
    __atomic_add_fetch(c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int churn_fired;

static void churn_cb(void *opaque)
{
    QEMUTimer *t = opaque;

    churn_fired++;
    if (churn_fired % 3 == 0) {
        /* The home thread re-arms too, racing with the others. */
        timer_mod_ns(t, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 50 * SCALE_US);
    }
}

START_TEST(test_cross_thread_churn)
{
    enum { THREADS = 2, TIMERS = 64 };
    AioContext *ctx = test_ctx_new();
    QEMUTimer timers[TIMERS];
    Churner c[THREADS];
    pthread_t th[THREADS];
    int fired_after, done = 0;

    churn_fired = 0;
    for (int i = 0; i < TIMERS; i++) {
        aio_timer_init(ctx, &timers[i], QEMU_CLOCK_REALTIME, SCALE_NS,
                       churn_cb, &timers[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        c[i] = (Churner){ timers, TIMERS, 100000, 1000 + i, &done };
        pthread_create(&th[i], NULL, churn_thread, &c[i]);
    }
    /* Poll while they work, until they are done. */
    while (__atomic_load_n(&done, __ATOMIC_SEQ_CST) < THREADS) {
        aio_poll(ctx, false);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    /* Callbacks may have re-armed a few after the threads' deletes. */
    for (int i = 0; i < TIMERS; i++) {
        timer_del(&timers[i]);
    }
    fired_after = churn_fired;
    test_sleep_us(1000);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(churn_fired, fired_after);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    aio_context_unref(ctx);
}
END_TEST

/*
 * Two threads re-arm and delete disjoint halves of one list's timers, the
 * second joining while the first is busy.  Every timer must end up at the
 * deadline its thread gave it last, and stepping the clock must fire each
 * armed one once, in deadline order.
 */
enum { SWITCH_TIMERS = 64, SWITCH_OPS = 20000 };

typedef struct {
    Model *md;       /* this thread's half */
    int64_t base;
    uint64_t seed;
    int *go;         /* atomic: the second thread may start */
} Rearmer;

static void rearm_half(Rearmer *r)
{
    uint64_t x = r->seed;

    for (int op = 0; op < SWITCH_OPS; op++) {
        uint64_t v = xorshift64(&x);
        Model *m = &r->md[v % (SWITCH_TIMERS / 2)];
        int64_t when = r->base + 1 + (int64_t)((v >> 16) % 100000);

        if ((v >> 40) % 5 == 0) {
            timer_del(&m->timer);
            m->expire = -1;
        } else {
            timer_mod_ns(&m->timer, when);
            m->expire = when;
        }
        if (op == SWITCH_OPS / 10) {
            __atomic_store_n(r->go, 1, __ATOMIC_SEQ_CST);
        }
    }
}

static void *rearm_thread(void *opaque)
{
    Rearmer *r = opaque;

    while (!__atomic_load_n(r->go, __ATOMIC_SEQ_CST)) {
        sched_yield();
    }
    rearm_half(r);
    return NULL;
}

START_TEST(test_two_threads_rearm_one_list)
{
    int64_t t0 = virtual_stop();

    for (int round = 0; round < 8; round++) {
        AioContext *ctx = test_ctx_new();
        static Model md[SWITCH_TIMERS];
        int go = 0, armed = 0;
        Rearmer mine = { md, t0, 11 + round, &go };
        Rearmer theirs = { md + SWITCH_TIMERS / 2, t0, 77 + round, &go };
        pthread_t th;
        int64_t last = -1;

        for (int i = 0; i < SWITCH_TIMERS; i++) {
            md[i] = (Model){ .expire = -1, .id = i };
            aio_timer_init(ctx, &md[i].timer, QEMU_CLOCK_VIRTUAL, SCALE_NS,
                           model_cb, &md[i]);
        }
        pthread_create(&th, NULL, rearm_thread, &theirs);
        rearm_half(&mine);
        pthread_join(th, NULL);
        for (int i = 0; i < SWITCH_TIMERS; i++) {
            ck_assert_int_eq(timer_expire_time_ns(&md[i].timer), md[i].expire);
            armed += md[i].expire >= 0;
        }
        model_nlog = 0;
        t0 += 200000;
        qemu_clock_advance_virtual_time(t0);
        aio_poll(ctx, false);
        ck_assert_int_eq(model_nlog, armed);
        for (int k = 0; k < model_nlog; k++) {
            Model *m = &md[model_log[k]];

            ck_assert_int_eq(m->fired, 1);
            ck_assert_int_ge(m->expire, last);
            last = m->expire;
        }
        aio_context_unref(ctx);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("clocks");

    tcase_add_test(tc, test_clock_reads);
    tcase_add_test(tc, test_virtual_stop_step_restart);
    suite_add_tcase(s, tc);

    tc = tcase_create("single-thread");
    tcase_add_test(tc, test_deadline_order);
    tcase_add_test(tc, test_equal_deadlines_fifo);
    tcase_add_test(tc, test_rearm_moves_up_and_down);
    tcase_add_test(tc, test_delete_root_middle_last);
    tcase_add_test(tc, test_delete_all_from_either_end);
    tcase_add_test(tc, test_rearm_other_from_callback);
    tcase_add_test(tc, test_many_equal_deadlines_fifo);
    tcase_add_test(tc, test_clock_order);
    tcase_add_test(tc, test_rearm_self_from_callback);
    tcase_add_test(tc, test_delete_and_free_other_from_callback);
    tcase_add_test(tc, test_free_and_delete_self_from_callback);
    tcase_add_test(tc, test_deleted_never_fires);
    tcase_add_test(tc, test_nested_poll_from_callback);
    tcase_add_test(tc, test_stopped_clock_does_not_fire);
    tcase_add_test(tc, test_virtual_advance_order_deterministic);
    tcase_add_test(tc, test_anticipate);
    tcase_add_test(tc, test_expiry_queries);
    tcase_add_test(tc, test_attributes);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test_raise_signal(tc, test_init_null_context_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, test_init_bad_clock_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, test_mod_uninitialised_aborts, SIGABRT);
    tcase_add_test(tc, test_compute_timeout);
    tcase_add_test(tc, test_blocking_poll_sleeps_until_deadline);
    tcase_add_test(tc, test_100k_timers_virtual);
    tcase_add_test(tc, test_100k_timers_realtime);
    tcase_add_test(tc, test_heap_against_model);
    tcase_add_test(tc, test_destroy_with_armed_timers);
    suite_add_tcase(s, tc);

    tc = tcase_create("cross-thread");
    tcase_add_test(tc, test_advance_wakes_each_context);
    tcase_add_test(tc, test_cross_thread_arm_wakes_sleeping_loop);
    tcase_add_test(tc, test_cross_thread_clock_changes_wake);
    tcase_add_test(tc, test_cross_thread_churn);
    tcase_add_test(tc, test_two_threads_rearm_one_list);
    suite_add_tcase(s, tc);
    return test_main(s);
}
