/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CoMutex, CoQueue and CoRwlock: exclusion, FIFO order, exact counts with
 * many coroutines, hand-off between threads, reader/writer rules.
 */
#define _GNU_SOURCE
#include "test-co-util.h"

/* Let the loop run others, then continue (a "cooperative" yield). */
static void coroutine_fn yield_to_loop(void)
{
    aio_co_schedule(qemu_get_current_aio_context(), qemu_coroutine_self());
    qemu_coroutine_yield();
}

static AioContext *ctx_setup(void)
{
    AioContext *ctx = test_ctx_new();

    qemu_set_current_aio_context(ctx);
    return ctx;
}

static void ctx_teardown(AioContext *ctx)
{
    ck_assert(!aio_poll(ctx, false));
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}

/* ------------------------------------------------------------------ */
/* CoMutex                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    CoMutex lock;
    int in_cs;
    int max_in_cs;
    int order[200];
    int norder;
    int done;
    long counter;
} MutexTest;

typedef struct {
    MutexTest *t;
    int id;
    int iterations;
} MutexItem;

static void coroutine_fn mutex_holder(void *opaque)
{
    MutexTest *t = opaque;

    qemu_co_mutex_lock(&t->lock);
    qemu_co_mutex_assert_locked(&t->lock);
    qemu_coroutine_yield(); /* hold it while the others queue up */
    qemu_co_mutex_unlock(&t->lock);
    t->done++;
}

static void coroutine_fn mutex_fifo_entry(void *opaque)
{
    MutexItem *it = opaque;
    MutexTest *t = it->t;

    qemu_co_mutex_lock(&t->lock);
    t->in_cs++;
    if (t->in_cs > t->max_in_cs) {
        t->max_in_cs = t->in_cs;
    }
    t->order[t->norder++] = it->id;
    yield_to_loop();
    t->in_cs--;
    qemu_co_mutex_unlock(&t->lock);
    t->done++;
}

START_TEST(test_mutex_fifo_and_exclusion)
{
    enum { N = 100 };
    AioContext *ctx = ctx_setup();
    MutexTest t = { .norder = 0 };
    MutexItem items[N];
    Coroutine *holder;

    qemu_co_mutex_init(&t.lock);
    holder = qemu_coroutine_create(mutex_holder, &t);
    qemu_coroutine_enter(holder);
    for (int i = 0; i < N; i++) {
        items[i] = (MutexItem){ &t, i, 0 };
        qemu_coroutine_enter(qemu_coroutine_create(mutex_fifo_entry,
                                                   &items[i]));
    }
    ck_assert_int_eq(t.norder, 0); /* all queued behind the holder */
    qemu_coroutine_enter(holder);  /* unlock: hand-off to waiter 0 */
    test_poll_until_ge(ctx, &t.done, N + 1);
    ck_assert_int_eq(t.max_in_cs, 1);
    ck_assert_int_eq(t.norder, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(t.order[i], i);
    }
    ctx_teardown(ctx);
}
END_TEST

static void coroutine_fn mutex_count_entry(void *opaque)
{
    MutexItem *it = opaque;
    MutexTest *t = it->t;

    for (int i = 0; i < it->iterations; i++) {
        long tmp;

        qemu_co_mutex_lock(&t->lock);
        tmp = t->counter;
        yield_to_loop(); /* a lost update shows if exclusion fails */
        t->counter = tmp + 1;
        qemu_co_mutex_unlock(&t->lock);
        if (i % 3 == 0) {
            yield_to_loop();
        }
    }
    t->done++;
}

START_TEST(test_mutex_exact_count)
{
    enum { N = 100, ITER = 100 };
    AioContext *ctx = ctx_setup();
    MutexTest t = { .norder = 0 };
    MutexItem items[N];

    qemu_co_mutex_init(&t.lock);
    for (int i = 0; i < N; i++) {
        items[i] = (MutexItem){ &t, i, ITER };
        aio_co_schedule(ctx, qemu_coroutine_create(mutex_count_entry,
                                                   &items[i]));
    }
    test_poll_until_ge(ctx, &t.done, N);
    ck_assert_int_eq(t.counter, (long)N * ITER);
    ctx_teardown(ctx);
}
END_TEST

/* Coroutines in two threads share one CoMutex: hand-off across contexts. */
typedef struct {
    CoMutex lock;
    long counter;      /* guarded by lock only */
    int done;          /* atomic */
    int iterations;
} XMutex;

static void coroutine_fn xmutex_entry(void *opaque)
{
    XMutex *x = opaque;

    for (int i = 0; i < x->iterations; i++) {
        long tmp;

        qemu_co_mutex_lock(&x->lock);
        tmp = x->counter;
        if (i % 2 == 0) {
            yield_to_loop();
        }
        x->counter = tmp + 1;
        qemu_co_mutex_unlock(&x->lock);
        if (i % 4 == 1) {
            yield_to_loop();
        }
    }
    __atomic_fetch_add(&x->done, 1, __ATOMIC_ACQ_REL);
}

START_TEST(test_mutex_cross_thread_handoff)
{
    enum { PER_THREAD = 10 };
    const int iterations = TEST_CO_COUNT(500, 100);
    LoopThread a, b;
    XMutex x = { .iterations = iterations };

    qemu_co_mutex_init(&x.lock);
    loop_thread_start(&a);
    loop_thread_start(&b);
    for (int i = 0; i < PER_THREAD; i++) {
        aio_co_schedule(a.ctx, qemu_coroutine_create(xmutex_entry, &x));
        aio_co_schedule(b.ctx, qemu_coroutine_create(xmutex_entry, &x));
    }
    while (__atomic_load_n(&x.done, __ATOMIC_ACQUIRE) < 2 * PER_THREAD) {
        test_sleep_us(1000);
    }
    loop_thread_stop(&a);
    loop_thread_stop(&b);
    ck_assert_int_eq(x.counter, 2L * PER_THREAD * iterations);
}
END_TEST

/* ------------------------------------------------------------------ */
/* CoQueue                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    CoQueue q;
    CoMutex lock;
    char log[128];
    int nlog;
    int items;
    int consumed;
    int done;
} QueueTest;

typedef struct {
    QueueTest *t;
    char id;
} QueueItem;

static void coroutine_fn queue_waiter(void *opaque)
{
    QueueItem *it = opaque;

    qemu_co_queue_wait(&it->t->q, NULL);
    it->t->log[it->t->nlog++] = it->id;
}

START_TEST(test_queue_next_fifo)
{
    QueueTest t = { .nlog = 0 };
    QueueItem items[10];

    qemu_co_queue_init(&t.q);
    ck_assert(qemu_co_queue_empty(&t.q));
    ck_assert(!qemu_co_queue_next(&t.q));
    for (int i = 0; i < 10; i++) {
        items[i] = (QueueItem){ &t, (char)('0' + i) };
        qemu_coroutine_enter(qemu_coroutine_create(queue_waiter, &items[i]));
    }
    ck_assert(!qemu_co_queue_empty(&t.q));
    for (int i = 0; i < 10; i++) {
        ck_assert(qemu_co_queue_next(&t.q)); /* outside: runs at once */
        ck_assert_int_eq(t.nlog, i + 1);
    }
    ck_assert(qemu_co_queue_empty(&t.q));
    ck_assert(!qemu_co_queue_next(&t.q));
    ck_assert_str_eq(t.log, "0123456789");
}
END_TEST

static void coroutine_fn queue_restarter(void *opaque)
{
    QueueTest *t = opaque;

    qemu_co_queue_restart_all(&t->q);
    t->log[t->nlog++] = 'R'; /* the woken run after we terminate */
}

START_TEST(test_queue_restart_all_from_coroutine)
{
    AioContext *ctx = ctx_setup();
    QueueTest t = { .nlog = 0 };
    QueueItem items[5];

    qemu_co_queue_init(&t.q);
    for (int i = 0; i < 5; i++) {
        items[i] = (QueueItem){ &t, (char)('a' + i) };
        qemu_coroutine_enter(qemu_coroutine_create(queue_waiter, &items[i]));
    }
    qemu_coroutine_enter(qemu_coroutine_create(queue_restarter, &t));
    ck_assert_str_eq(t.log, "Rabcde");
    ck_assert(qemu_co_queue_empty(&t.q));
    ctx_teardown(ctx);
}
END_TEST

START_TEST(test_queue_enter_next)
{
    QueueTest t = { .nlog = 0 };
    QueueItem items[3];

    qemu_co_queue_init(&t.q);
    for (int i = 0; i < 3; i++) {
        items[i] = (QueueItem){ &t, (char)('x' + i) };
        qemu_coroutine_enter(qemu_coroutine_create(queue_waiter, &items[i]));
    }
    ck_assert(qemu_co_enter_next(&t.q, NULL));
    ck_assert_str_eq(t.log, "x");
    ck_assert(qemu_co_enter_next(&t.q, NULL));
    ck_assert(qemu_co_enter_next(&t.q, NULL));
    ck_assert(!qemu_co_enter_next(&t.q, NULL));
    ck_assert_str_eq(t.log, "xyz");
}
END_TEST

static void coroutine_fn consumer(void *opaque)
{
    QueueTest *t = opaque;

    for (;;) {
        qemu_co_mutex_lock(&t->lock);
        while (t->items == 0 && t->consumed < 1000) {
            qemu_co_queue_wait(&t->q, &t->lock);
            qemu_co_mutex_assert_locked(&t->lock);
        }
        if (t->consumed == 1000) {
            qemu_co_mutex_unlock(&t->lock);
            break;
        }
        t->items--;
        t->consumed++;
        qemu_co_mutex_unlock(&t->lock);
    }
    t->done++;
}

static void coroutine_fn producer(void *opaque)
{
    QueueTest *t = opaque;

    for (int i = 0; i < 1000; i++) {
        qemu_co_mutex_lock(&t->lock);
        t->items++;
        qemu_co_queue_next(&t->q);
        qemu_co_mutex_unlock(&t->lock);
        if (i % 7 == 0) {
            yield_to_loop();
        }
    }
    /* Wait until everything is consumed, then release the consumers. */
    qemu_co_mutex_lock(&t->lock);
    while (t->consumed < 1000) {
        qemu_co_mutex_unlock(&t->lock);
        yield_to_loop();
        qemu_co_mutex_lock(&t->lock);
    }
    qemu_co_queue_restart_all(&t->q);
    qemu_co_mutex_unlock(&t->lock);
    t->done++;
}

START_TEST(test_queue_wait_with_lock)
{
    AioContext *ctx = ctx_setup();
    QueueTest t = { .nlog = 0 };

    qemu_co_queue_init(&t.q);
    qemu_co_mutex_init(&t.lock);
    for (int i = 0; i < 8; i++) {
        aio_co_schedule(ctx, qemu_coroutine_create(consumer, &t));
    }
    aio_co_schedule(ctx, qemu_coroutine_create(producer, &t));
    test_poll_until_ge(ctx, &t.done, 9);
    ck_assert_int_eq(t.consumed, 1000);
    ck_assert_int_eq(t.items, 0);
    ck_assert(qemu_co_queue_empty(&t.q));
    ctx_teardown(ctx);
}
END_TEST

/* enter_next with a lock: the lock is free while the woken one runs. */
typedef struct {
    CoQueue q;
    CoMutex lock;
    int saw_unlocked;
    char log[8];
    int nlog;
} EnterNextLock;

static void coroutine_fn enl_waiter(void *opaque)
{
    EnterNextLock *e = opaque;

    qemu_co_mutex_lock(&e->lock);
    qemu_co_queue_wait(&e->q, &e->lock);
    e->log[e->nlog++] = 'w';
    qemu_co_mutex_unlock(&e->lock);
}

static void coroutine_fn enl_waker(void *opaque)
{
    EnterNextLock *e = opaque;

    qemu_co_mutex_lock(&e->lock);
    ck_assert(qemu_co_enter_next(&e->q, &e->lock));
    e->log[e->nlog++] = 'k';
    qemu_co_mutex_assert_locked(&e->lock);
    qemu_co_mutex_unlock(&e->lock); /* free: the waiter queues later */
}

START_TEST(test_queue_enter_next_with_lock)
{
    AioContext *ctx = ctx_setup();
    EnterNextLock e = { .nlog = 0 };

    qemu_co_queue_init(&e.q);
    qemu_co_mutex_init(&e.lock);
    qemu_coroutine_enter(qemu_coroutine_create(enl_waiter, &e));
    qemu_coroutine_enter(qemu_coroutine_create(enl_waker, &e));
    ck_assert_str_eq(e.log, "kw");
    ctx_teardown(ctx);
}
END_TEST

/* ------------------------------------------------------------------ */
/* CoRwlock                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    CoRwlock rw;
    char log[64];
    int nlog;
    int readers;
    int max_readers;
    int writers;
    int done;
    long value;
} RwTest;

typedef struct {
    RwTest *t;
    char tag;
} RwItem;

static void rw_log(RwTest *t, char c)
{
    t->log[t->nlog++] = c;
}

/* Take a read lock, log tag, yield holding it, release, log upper(tag). */
static void coroutine_fn rw_reader_hold(void *opaque)
{
    RwItem *it = opaque;
    RwTest *t = it->t;

    qemu_co_rwlock_rdlock(&t->rw);
    rw_log(t, it->tag);
    t->readers++;
    if (t->readers > t->max_readers) {
        t->max_readers = t->readers;
    }
    qemu_coroutine_yield();
    t->readers--;
    qemu_co_rwlock_unlock(&t->rw);
    rw_log(t, (char)(it->tag - 'a' + 'A'));
}

static void coroutine_fn rw_writer_once(void *opaque)
{
    RwItem *it = opaque;
    RwTest *t = it->t;

    qemu_co_rwlock_wrlock(&t->rw);
    rw_log(t, it->tag);
    ck_assert_int_eq(t->readers, 0);
    qemu_co_rwlock_unlock(&t->rw);
}

START_TEST(test_rwlock_readers_share)
{
    AioContext *ctx = ctx_setup();
    RwTest t = { .nlog = 0 };
    RwItem items[3] = { { &t, 'a' }, { &t, 'b' }, { &t, 'c' } };
    Coroutine *cos[3];

    qemu_co_rwlock_init(&t.rw);
    for (int i = 0; i < 3; i++) {
        cos[i] = qemu_coroutine_create(rw_reader_hold, &items[i]);
        qemu_coroutine_enter(cos[i]);
    }
    ck_assert_int_eq(t.max_readers, 3);
    for (int i = 0; i < 3; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    ck_assert_str_eq(t.log, "abcABC");
    ctx_teardown(ctx);
}
END_TEST

/* r1 holds; w queues; r2 must queue behind w: writers are not starved. */
START_TEST(test_rwlock_writer_not_starved)
{
    AioContext *ctx = ctx_setup();
    RwTest t = { .nlog = 0 };
    RwItem r1 = { &t, 'a' }, w = { &t, 'w' }, r2 = { &t, 'b' };
    Coroutine *c1, *c2;

    qemu_co_rwlock_init(&t.rw);
    c1 = qemu_coroutine_create(rw_reader_hold, &r1);
    qemu_coroutine_enter(c1);
    qemu_coroutine_enter(qemu_coroutine_create(rw_writer_once, &w));
    c2 = qemu_coroutine_create(rw_reader_hold, &r2);
    qemu_coroutine_enter(c2);
    ck_assert_str_eq(t.log, "a"); /* r2 did not get in */
    qemu_coroutine_enter(c1);     /* r1 unlocks: w, then r2 */
    ck_assert_str_eq(t.log, "aAwb");
    qemu_coroutine_enter(c2);
    ck_assert_str_eq(t.log, "aAwbB");
    ck_assert_int_eq(t.max_readers, 1);
    ctx_teardown(ctx);
}
END_TEST

/* Downgrading lets the queued readers in, all at once. */
static void coroutine_fn rw_downgrader(void *opaque)
{
    RwItem *it = opaque;
    RwTest *t = it->t;

    qemu_co_rwlock_wrlock(&t->rw);
    rw_log(t, 'W');
    qemu_coroutine_yield();
    qemu_co_rwlock_downgrade(&t->rw);
    t->readers++;
    rw_log(t, 'D');
    qemu_coroutine_yield();
    t->readers--;
    qemu_co_rwlock_unlock(&t->rw);
    rw_log(t, 'U');
}

START_TEST(test_rwlock_downgrade)
{
    AioContext *ctx = ctx_setup();
    RwTest t = { .nlog = 0 };
    RwItem d = { &t, 'W' }, r1 = { &t, 'a' }, r2 = { &t, 'b' };
    RwItem w2 = { &t, 'x' };
    Coroutine *cd, *c1, *c2;

    qemu_co_rwlock_init(&t.rw);
    cd = qemu_coroutine_create(rw_downgrader, &d);
    qemu_coroutine_enter(cd);
    c1 = qemu_coroutine_create(rw_reader_hold, &r1);
    qemu_coroutine_enter(c1);
    c2 = qemu_coroutine_create(rw_reader_hold, &r2);
    qemu_coroutine_enter(c2);
    ck_assert_str_eq(t.log, "W");
    qemu_coroutine_enter(cd);     /* downgrade: a and b get in after D */
    ck_assert_str_eq(t.log, "WDab");
    ck_assert_int_eq(t.max_readers, 3);
    qemu_coroutine_enter(qemu_coroutine_create(rw_writer_once, &w2));
    qemu_coroutine_enter(c1);
    qemu_coroutine_enter(cd);
    ck_assert_str_eq(t.log, "WDabAU");
    qemu_coroutine_enter(c2);     /* last reader out: the writer */
    ck_assert_str_eq(t.log, "WDabAUBx");
    ctx_teardown(ctx);
}
END_TEST

/* Upgrade waits for the other reader and goes before later arrivals. */
static void coroutine_fn rw_upgrader(void *opaque)
{
    RwItem *it = opaque;
    RwTest *t = it->t;

    qemu_co_rwlock_rdlock(&t->rw);
    rw_log(t, 'r');
    qemu_coroutine_yield();
    qemu_co_rwlock_upgrade(&t->rw);
    rw_log(t, 'U');
    ck_assert_int_eq(t->readers, 0);
    qemu_co_rwlock_unlock(&t->rw);
    rw_log(t, 'u');
}

START_TEST(test_rwlock_upgrade)
{
    AioContext *ctx = ctx_setup();
    RwTest t = { .nlog = 0 };
    RwItem up = { &t, 'r' }, r1 = { &t, 'a' }, w = { &t, 'w' };
    RwItem solo = { &t, 'r' };
    Coroutine *cu, *c1;

    qemu_co_rwlock_init(&t.rw);
    /* Alone: upgrading is immediate. */
    cu = qemu_coroutine_create(rw_upgrader, &solo);
    qemu_coroutine_enter(cu);
    qemu_coroutine_enter(cu);
    ck_assert_str_eq(t.log, "rUu");
    t.nlog = 0;
    memset(t.log, 0, sizeof(t.log));

    /* With another reader: wait for it; a later writer goes after. */
    cu = qemu_coroutine_create(rw_upgrader, &up);
    qemu_coroutine_enter(cu);
    c1 = qemu_coroutine_create(rw_reader_hold, &r1);
    qemu_coroutine_enter(c1);
    qemu_coroutine_enter(cu);     /* upgrade: queued behind reader a */
    qemu_coroutine_enter(qemu_coroutine_create(rw_writer_once, &w));
    ck_assert_str_eq(t.log, "ra");
    qemu_coroutine_enter(c1);     /* a leaves: the upgrader, then w */
    ck_assert_str_eq(t.log, "raAUuw");
    ctx_teardown(ctx);
}
END_TEST

/* Many readers and writers: exclusion rules and exact counts. */
typedef struct {
    RwTest *t;
    int id;
    int iterations;
    int reads_ok;
} RwStress;

static void coroutine_fn rw_stress_entry(void *opaque)
{
    RwStress *s = opaque;
    RwTest *t = s->t;

    for (int i = 0; i < s->iterations; i++) {
        if ((i + s->id) % 4 == 0) {
            long v;

            qemu_co_rwlock_wrlock(&t->rw);
            ck_assert_int_eq(t->readers, 0);
            ck_assert_int_eq(t->writers, 0);
            t->writers++;
            v = t->value;
            yield_to_loop();
            t->value = v + 1;
            t->writers--;
            qemu_co_rwlock_unlock(&t->rw);
        } else {
            qemu_co_rwlock_rdlock(&t->rw);
            ck_assert_int_eq(t->writers, 0);
            t->readers++;
            if (t->readers > t->max_readers) {
                t->max_readers = t->readers;
            }
            yield_to_loop();
            t->readers--;
            if (i % 8 == 3) {
                qemu_co_rwlock_upgrade(&t->rw);
                ck_assert_int_eq(t->readers, 0);
                t->writers++;
                t->value++;
                t->writers--;
                qemu_co_rwlock_downgrade(&t->rw);
                t->readers++;
                yield_to_loop();
                t->readers--;
            }
            qemu_co_rwlock_unlock(&t->rw);
            s->reads_ok++;
        }
    }
    t->done++;
}

START_TEST(test_rwlock_stress_counts)
{
    enum { N = 50, ITER = 40 };
    AioContext *ctx = ctx_setup();
    RwTest t = { .nlog = 0 };
    RwStress s[N];
    long expected = 0;

    qemu_co_rwlock_init(&t.rw);
    for (int i = 0; i < N; i++) {
        s[i] = (RwStress){ &t, i, ITER, 0 };
        for (int j = 0; j < ITER; j++) {
            if ((j + i) % 4 == 0) {
                expected++;
            } else if (j % 8 == 3) {
                expected++;
            }
        }
        aio_co_schedule(ctx, qemu_coroutine_create(rw_stress_entry, &s[i]));
    }
    test_poll_until_ge(ctx, &t.done, N);
    ck_assert_int_eq(t.value, expected);
    ck_assert_int_gt(t.max_readers, 1);
    ck_assert_int_eq(t.readers, 0);
    ck_assert_int_eq(t.writers, 0);
    ctx_teardown(ctx);
}
END_TEST

/* ------------------------------------------------------------------ */
/* misuse                                                              */
/* ------------------------------------------------------------------ */

static void coroutine_fn lock_and_return(void *opaque)
{
    qemu_co_mutex_lock(opaque);
}

static void misuse_terminate_locked(void *arg)
{
    CoMutex m;

    (void)arg;
    qemu_co_mutex_init(&m);
    qemu_coroutine_enter(qemu_coroutine_create(lock_and_return, &m));
}

static void coroutine_fn unlock_unheld(void *opaque)
{
    qemu_co_mutex_unlock(opaque);
}

static void misuse_unlock_unheld(void *arg)
{
    CoMutex m;

    (void)arg;
    qemu_co_mutex_init(&m);
    qemu_coroutine_enter(qemu_coroutine_create(unlock_unheld, &m));
}

static void misuse_lock_outside(void *arg)
{
    CoMutex m;

    (void)arg;
    qemu_co_mutex_init(&m);
    qemu_co_mutex_lock(&m);
}

static void coroutine_fn rw_unlock_unheld(void *opaque)
{
    qemu_co_rwlock_unlock(opaque);
}

static void misuse_rw_unlock_unheld(void *arg)
{
    CoRwlock rw;

    (void)arg;
    qemu_co_rwlock_init(&rw);
    qemu_coroutine_enter(qemu_coroutine_create(rw_unlock_unheld, &rw));
}

START_TEST(test_sync_misuse_messages)
{
    test_expect_abort(misuse_terminate_locked, NULL,
                      "terminated while holding 1 lock");
    test_expect_abort(misuse_unlock_unheld, NULL,
                      "is not held by the calling coroutine");
    test_expect_abort(misuse_lock_outside, NULL,
                      "qemu_co_mutex_lock called outside a coroutine");
    test_expect_abort(misuse_rw_unlock_unheld, NULL,
                      "qemu_co_rwlock_unlock: CoRwlock");
}
END_TEST

START_TEST(test_abort_terminate_locked)
{
    misuse_terminate_locked(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("co-sync");
    TCase *tc = tcase_create("comutex");

    tcase_add_test(tc, test_mutex_fifo_and_exclusion);
    tcase_add_test(tc, test_mutex_exact_count);
    tcase_add_test(tc, test_mutex_cross_thread_handoff);
    suite_add_tcase(s, tc);

    tc = tcase_create("coqueue");
    tcase_add_test(tc, test_queue_next_fifo);
    tcase_add_test(tc, test_queue_restart_all_from_coroutine);
    tcase_add_test(tc, test_queue_enter_next);
    tcase_add_test(tc, test_queue_wait_with_lock);
    tcase_add_test(tc, test_queue_enter_next_with_lock);
    suite_add_tcase(s, tc);

    tc = tcase_create("corwlock");
    tcase_add_test(tc, test_rwlock_readers_share);
    tcase_add_test(tc, test_rwlock_writer_not_starved);
    tcase_add_test(tc, test_rwlock_downgrade);
    tcase_add_test(tc, test_rwlock_upgrade);
    tcase_add_test(tc, test_rwlock_stress_counts);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_add_test(tc, test_sync_misuse_messages);
    tcase_add_test_raise_signal(tc, test_abort_terminate_locked, SIGABRT);
    suite_add_tcase(s, tc);
    return test_main(s);
}
