/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cross-thread stress over four IOThreads, after what QEMU's own
 * multithread test checks: bottom halves bounced between threads,
 * coroutines hopping from context to context, coroutines parked in their
 * home thread and woken from the others, a CoMutex contended from every
 * thread with each increment counted, and thread-pool work submitted from
 * coroutines that move around.  Each stress runs for a bounded time, then
 * every count must match exactly: nothing lost, nothing run twice.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "test-proc.h"
#include "test-util.h"

#define NUM_CONTEXTS 4

#if defined(__SANITIZE_THREAD__)
#define STRESS_MS 400
#define CO_PER_CONTEXT 4 /* TSan keeps few coroutine fibers alive */
#else
#define STRESS_MS 700
#define CO_PER_CONTEXT 16
#endif
#define NUM_CO (NUM_CONTEXTS * CO_PER_CONTEXT)

static IOThread *threads[NUM_CONTEXTS];
static AioContext *ctxs[NUM_CONTEXTS];
static int now_stopping;

static void start_threads(void)
{
    for (int i = 0; i < NUM_CONTEXTS; i++) {
        char name[16];
        Error *err = NULL;

        snprintf(name, sizeof(name), "mt-io%d", i);
        threads[i] = iothread_create(name, &err);
        ck_assert_msg(threads[i] != NULL, "iothread_create: %s",
                      err ? error_get_pretty(err) : "?");
        ctxs[i] = iothread_get_aio_context(threads[i]);
    }
    __atomic_store_n(&now_stopping, 0, __ATOMIC_RELEASE);
}

static void stop_threads(void)
{
    for (int i = 0; i < NUM_CONTEXTS; i++) {
        iothread_destroy(threads[i]);
        threads[i] = NULL;
        ctxs[i] = NULL;
    }
}

static int ctx_index(AioContext *ctx)
{
    for (int i = 0; i < NUM_CONTEXTS; i++) {
        if (ctxs[i] == ctx) {
            return i;
        }
    }
    return -1;
}

/* Let the stress run, then tell everyone to stop. */
static void run_for(int ms)
{
    proc_sleep_ms(ms);
    __atomic_store_n(&now_stopping, 1, __ATOMIC_RELEASE);
}

static bool stopping(void)
{
    return __atomic_load_n(&now_stopping, __ATOMIC_ACQUIRE);
}

/* Wait (bounded) until *counter reaches want; returns the last value. */
static int wait_count(int *counter, int want)
{
    int64_t deadline = test_now_ms() + 20000;
    int v;

    while ((v = __atomic_load_n(counter, __ATOMIC_ACQUIRE)) != want &&
           test_now_ms() < deadline) {
        test_sleep_us(200);
    }
    return v;
}

static unsigned next_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

/* ---- bottom halves bounced between the threads ---- */

#define NUM_TOKENS 64
#define TOKEN_HOPS 2000

typedef struct {
    int hops;
    int wrong_place;
    int expect; /* index of the context it was scheduled to */
} Token;

static Token tokens[NUM_TOKENS];
static int tokens_done;
static int bh_runs[NUM_CONTEXTS];

static void token_bh(void *opaque)
{
    Token *t = opaque;
    int here = ctx_index(qemu_get_current_aio_context());

    if (here != t->expect) {
        t->wrong_place++;
    }
    __atomic_fetch_add(&bh_runs[here < 0 ? 0 : here], 1, __ATOMIC_RELAXED);
    if (++t->hops == TOKEN_HOPS) {
        __atomic_fetch_add(&tokens_done, 1, __ATOMIC_RELEASE);
        return;
    }
    t->expect = (here + 1 + t->hops % 3) % NUM_CONTEXTS;
    aio_bh_schedule_oneshot(ctxs[t->expect], token_bh, t);
}

START_TEST(test_multi_bh_bounce)
{
    int total = 0;

    start_threads();
    tokens_done = 0;
    for (int i = 0; i < NUM_CONTEXTS; i++) {
        bh_runs[i] = 0;
    }
    for (int i = 0; i < NUM_TOKENS; i++) {
        tokens[i] = (Token){ .expect = i % NUM_CONTEXTS };
        aio_bh_schedule_oneshot(ctxs[i % NUM_CONTEXTS], token_bh, &tokens[i]);
    }
    ck_assert_int_eq(wait_count(&tokens_done, NUM_TOKENS), NUM_TOKENS);
    stop_threads();
    for (int i = 0; i < NUM_TOKENS; i++) {
        ck_assert_int_eq(tokens[i].hops, TOKEN_HOPS);
        ck_assert_int_eq(tokens[i].wrong_place, 0);
    }
    for (int i = 0; i < NUM_CONTEXTS; i++) {
        ck_assert_int_gt(bh_runs[i], 0);
        total += bh_runs[i];
    }
    ck_assert_int_eq(total, NUM_TOKENS * TOKEN_HOPS);
}
END_TEST

/* ---- coroutines hopping from context to context ---- */

typedef struct {
    int id;
    unsigned seed;
    long hops;
    int wrong_place;
} Hopper;

static Hopper hoppers[NUM_CO];
static int hoppers_done;
static long arrivals[NUM_CONTEXTS];

static void coroutine_fn hopper_entry(void *opaque)
{
    Hopper *h = opaque;

    while (!stopping()) {
        int n = next_rand(&h->seed) % NUM_CONTEXTS;

        aio_co_reschedule_self(ctxs[n]);
        if (qemu_get_current_aio_context() != ctxs[n]) {
            h->wrong_place++;
        }
        __atomic_fetch_add(&arrivals[n], 1, __ATOMIC_RELAXED);
        h->hops++;
    }
    __atomic_fetch_add(&hoppers_done, 1, __ATOMIC_RELEASE);
}

START_TEST(test_multi_co_hop)
{
    long total_hops = 0, total_arrivals = 0;

    start_threads();
    hoppers_done = 0;
    for (int i = 0; i < NUM_CONTEXTS; i++) {
        arrivals[i] = 0;
    }
    for (int i = 0; i < NUM_CO; i++) {
        hoppers[i] = (Hopper){ .id = i, .seed = 7u * i + 1 };
        aio_co_schedule(ctxs[i % NUM_CONTEXTS],
                        qemu_coroutine_create(hopper_entry, &hoppers[i]));
    }
    run_for(STRESS_MS);
    ck_assert_int_eq(wait_count(&hoppers_done, NUM_CO), NUM_CO);
    stop_threads();
    for (int i = 0; i < NUM_CO; i++) {
        ck_assert_int_eq(hoppers[i].wrong_place, 0);
        ck_assert_int_gt(hoppers[i].hops, 0);
        total_hops += hoppers[i].hops;
    }
    for (int i = 0; i < NUM_CONTEXTS; i++) {
        ck_assert_int_gt(arrivals[i], 0);
        total_arrivals += arrivals[i];
    }
    ck_assert_int_eq(total_hops, total_arrivals);
    fprintf(stderr, "# co_hop: %d coroutines, %ld hops\n", NUM_CO, total_hops);
}
END_TEST

/*
 * ---- coroutines parked at home, woken from other threads ----
 *
 * Each coroutine lives in one context.  Half of them start parked.  In a
 * loop, a running coroutine looks for a parked one (from a random slot
 * on), takes it out of its slot and wakes it with aio_co_wake(), then parks
 * itself in its own slot and yields; so the number running stays the same
 * and the hand-offs never stop.  A wake always targets the parked
 * coroutine's own thread, so it cannot enter it before it yielded.
 */

typedef struct {
    int id;
    int home;
    unsigned seed;
    int resumed;
    int wrong_place;
} Parker;

static Parker parkers[NUM_CO];
static Coroutine *slots[NUM_CO];
static int parkers_done;
static int wakes_sent;
static int wakes_missed;

static bool wake_slot(int n)
{
    Coroutine *co = __atomic_exchange_n(&slots[n], NULL, __ATOMIC_ACQ_REL);

    if (!co) {
        return false;
    }
    __atomic_fetch_add(&wakes_sent, 1, __ATOMIC_RELAXED);
    aio_co_wake(co);
    return true;
}

static void coroutine_fn park(Parker *p)
{
    __atomic_store_n(&slots[p->id], qemu_coroutine_self(), __ATOMIC_RELEASE);
    qemu_coroutine_yield();
    p->resumed++;
    if (qemu_get_current_aio_context() != ctxs[p->home]) {
        p->wrong_place++;
    }
}

static void coroutine_fn parker_entry(void *opaque)
{
    Parker *p = opaque;

    if (p->id % 2) {
        park(p);
    }
    while (!stopping()) {
        int start = next_rand(&p->seed) % NUM_CO;
        bool woke = false;

        for (int k = 0; k < NUM_CO && !woke; k++) {
            woke = wake_slot((start + k) % NUM_CO);
        }
        if (woke) {
            park(p);
        } else {
            /* Nobody parked right now: let the loop run, then look again. */
            __atomic_fetch_add(&wakes_missed, 1, __ATOMIC_RELAXED);
            aio_co_schedule(ctxs[p->home], qemu_coroutine_self());
            qemu_coroutine_yield();
        }
    }
    __atomic_fetch_add(&parkers_done, 1, __ATOMIC_RELEASE);
}

START_TEST(test_multi_co_wake)
{
    long resumed = 0;
    int64_t deadline;

    start_threads();
    parkers_done = wakes_sent = wakes_missed = 0;
    for (int i = 0; i < NUM_CO; i++) {
        parkers[i] = (Parker){ .id = i, .home = i % NUM_CONTEXTS,
                               .seed = 13u * i + 5 };
        slots[i] = NULL;
    }
    for (int i = 0; i < NUM_CO; i++) {
        aio_co_schedule(ctxs[parkers[i].home],
                        qemu_coroutine_create(parker_entry, &parkers[i]));
    }
    run_for(STRESS_MS);
    /* Wake whoever is parked until everyone has seen the stop. */
    deadline = test_now_ms() + 20000;
    while (__atomic_load_n(&parkers_done, __ATOMIC_ACQUIRE) < NUM_CO &&
           test_now_ms() < deadline) {
        for (int i = 0; i < NUM_CO; i++) {
            wake_slot(i);
        }
        test_sleep_us(200);
    }
    ck_assert_int_eq(parkers_done, NUM_CO);
    stop_threads();
    for (int i = 0; i < NUM_CO; i++) {
        ck_assert_int_eq(parkers[i].wrong_place, 0);
        ck_assert_ptr_null(slots[i]);
        resumed += parkers[i].resumed;
    }
    /* Every wake resumed exactly one parked coroutine exactly once. */
    ck_assert_int_eq(resumed, wakes_sent);
    ck_assert_int_gt(wakes_sent, 10 * NUM_CO);
    fprintf(stderr, "# co_wake: %d wakes, %d scans found nobody parked\n",
            wakes_sent, wakes_missed);
}
END_TEST

/* ---- a CoMutex contended from every thread ---- */

typedef struct {
    int id;
    unsigned seed;
    long increments;
    int not_owner;
} Locker;

static CoMutex comutex;
static long counter;       /* protected by comutex */
static long atomic_counter; /* incremented after unlocking */
static int holder = -1;    /* protected by comutex */
static Locker lockers[NUM_CO];
static int lockers_done;

static void coroutine_fn locker_entry(void *opaque)
{
    Locker *l = opaque;

    while (!stopping()) {
        qemu_co_mutex_lock(&comutex);
        if (holder != -1) {
            l->not_owner++;
        }
        holder = l->id;
        counter++;
        if (next_rand(&l->seed) % 16 == 0) {
            /* Move to another thread while holding the lock. */
            aio_co_reschedule_self(ctxs[next_rand(&l->seed) % NUM_CONTEXTS]);
        }
        if (holder != l->id) {
            l->not_owner++;
        }
        holder = -1;
        qemu_co_mutex_unlock(&comutex);
        l->increments++;
        __atomic_fetch_add(&atomic_counter, 1, __ATOMIC_RELAXED);
        if (next_rand(&l->seed) % 8 == 0) {
            aio_co_reschedule_self(ctxs[next_rand(&l->seed) % NUM_CONTEXTS]);
        }
    }
    __atomic_fetch_add(&lockers_done, 1, __ATOMIC_RELEASE);
}

START_TEST(test_multi_co_mutex)
{
    long total = 0;

    start_threads();
    qemu_co_mutex_init(&comutex);
    counter = atomic_counter = 0;
    holder = -1;
    lockers_done = 0;
    for (int i = 0; i < NUM_CO; i++) {
        lockers[i] = (Locker){ .id = i, .seed = 31u * i + 3 };
        aio_co_schedule(ctxs[i % NUM_CONTEXTS],
                        qemu_coroutine_create(locker_entry, &lockers[i]));
    }
    run_for(STRESS_MS);
    ck_assert_int_eq(wait_count(&lockers_done, NUM_CO), NUM_CO);
    stop_threads();
    for (int i = 0; i < NUM_CO; i++) {
        ck_assert_int_eq(lockers[i].not_owner, 0);
        total += lockers[i].increments;
    }
    ck_assert_int_eq(counter, atomic_counter);
    ck_assert_int_eq(counter, total);
    ck_assert_int_gt(counter, NUM_CO);
    fprintf(stderr, "# co_mutex: %ld increments\n", counter);
}
END_TEST

/* ---- thread-pool work from coroutines that move around ---- */

typedef struct {
    int id;
    unsigned seed;
    int submitted;
    int bad;
} PoolUser;

static PoolUser pool_users[NUM_CO];
static int pool_users_done;
static int pool_jobs_ran;

static int pool_job(void *arg)
{
    __atomic_fetch_add(&pool_jobs_ran, 1, __ATOMIC_RELAXED);
    return (int)(intptr_t)arg + 1;
}

static void coroutine_fn pool_user_entry(void *opaque)
{
    PoolUser *u = opaque;

    while (!stopping()) {
        int n = next_rand(&u->seed) % NUM_CONTEXTS;
        int v = (int)(next_rand(&u->seed) % 100000);

        aio_co_reschedule_self(ctxs[n]);
        if (thread_pool_submit_co(pool_job, (void *)(intptr_t)v) != v + 1) {
            u->bad++;
        }
        /* The completion resumed us in the context we submitted from. */
        if (qemu_get_current_aio_context() != ctxs[n]) {
            u->bad++;
        }
        u->submitted++;
    }
    __atomic_fetch_add(&pool_users_done, 1, __ATOMIC_RELEASE);
}

START_TEST(test_multi_thread_pool)
{
    int total = 0;
    int base = proc_task_baseline();

    start_threads();
    pool_users_done = pool_jobs_ran = 0;
    for (int i = 0; i < NUM_CONTEXTS; i++) {
        aio_context_set_thread_pool_params(ctxs[i], 0, 2, &error_abort);
    }
    for (int i = 0; i < NUM_CO; i++) {
        pool_users[i] = (PoolUser){ .id = i, .seed = 17u * i + 9 };
        aio_co_schedule(ctxs[i % NUM_CONTEXTS],
                        qemu_coroutine_create(pool_user_entry, &pool_users[i]));
    }
    run_for(STRESS_MS);
    ck_assert_int_eq(wait_count(&pool_users_done, NUM_CO), NUM_CO);
    stop_threads();
    for (int i = 0; i < NUM_CO; i++) {
        ck_assert_int_eq(pool_users[i].bad, 0);
        total += pool_users[i].submitted;
    }
    ck_assert_int_eq(total, pool_jobs_ran);
    ck_assert_int_gt(total, NUM_CO);
    fprintf(stderr, "# thread_pool: %d jobs from coroutines\n", total);
    /* Every IOThread and every pool worker is gone. */
    ck_assert_int_eq(proc_wait_count(proc_task_count, base, 2000), base);
}
END_TEST

static Suite *multithread_suite(void)
{
    Suite *s = suite_create("multithread");
    TCase *tc = tcase_create("stress");

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_multi_bh_bounce);
    tcase_add_test(tc, test_multi_co_hop);
    tcase_add_test(tc, test_multi_co_wake);
    tcase_add_test(tc, test_multi_co_mutex);
    tcase_add_test(tc, test_multi_thread_pool);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_main(multithread_suite());
}
