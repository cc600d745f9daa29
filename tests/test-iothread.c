/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IOThreads: start-up and naming, work handed over with bottom halves,
 * the thread pool used from an IOThread, pending work running before the
 * stop, poll parameters, creation errors, and create/destroy cycles that
 * leak neither threads nor descriptors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-proc.h"
#include "test-util.h"

static IOThread *iothread_new(const char *id)
{
    Error *err = NULL;
    IOThread *t = iothread_create(id, &err);

    ck_assert_msg(t != NULL, "iothread_create: %s",
                  err ? error_get_pretty(err) : "(no error)");
    return t;
}

/* ---- running something in the IOThread and waiting for it ---- */

typedef struct {
    void (*fn)(void *opaque);
    void *opaque;
    int done;
} SyncCall;

static void sync_call_bh(void *opaque)
{
    SyncCall *c = opaque;

    c->fn(c->opaque);
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
}

static void wait_flag(int *flag, int want)
{
    for (int i = 0; i < 400000 && __atomic_load_n(flag, __ATOMIC_ACQUIRE) !=
                                      want; i++) {
        test_sleep_us(25);
    }
    ck_assert_int_eq(__atomic_load_n(flag, __ATOMIC_ACQUIRE), want);
}

/* Run fn(opaque) in ctx's thread and wait until it returned. */
static void run_in(AioContext *ctx, void (*fn)(void *), void *opaque)
{
    SyncCall c = { fn, opaque, 0 };

    aio_bh_schedule_oneshot(ctx, sync_call_bh, &c);
    wait_flag(&c.done, 1);
}

/* ---- tests ---- */

typedef struct {
    pthread_t thread;
    AioContext *current;
    char name[32];
} WhereAmI;

static void where_am_i(void *opaque)
{
    WhereAmI *w = opaque;

    w->thread = pthread_self();
    w->current = qemu_get_current_aio_context();
    pthread_getname_np(pthread_self(), w->name, sizeof(w->name));
}

static int count_io_churn(void)
{
    return proc_task_count_named("io-churn");
}

static int count_io_test_1(void)
{
    return proc_task_count_named("io-test-1");
}

START_TEST(test_create_runs_own_context)
{
    IOThread *t = iothread_new("io-test-1");
    AioContext *ctx = iothread_get_aio_context(t);
    WhereAmI w = { 0 };

    ck_assert_ptr_nonnull(ctx);
    ck_assert_str_eq(iothread_get_id(t), "io-test-1");
    ck_assert_ptr_null(qemu_get_current_aio_context());
    run_in(ctx, where_am_i, &w);
    ck_assert(!pthread_equal(w.thread, pthread_self()));
    ck_assert_ptr_eq(w.current, ctx);
    ck_assert_str_eq(w.name, "io-test-1");
    ck_assert_int_eq(proc_task_count_named("io-test-1"), 1);
    iothread_destroy(t);
    ck_assert_int_eq(proc_wait_count(count_io_test_1, 0, 5000), 0);
    iothread_destroy(NULL);
    ck_assert_ptr_null(iothread_get_aio_context(NULL));
}
END_TEST

START_TEST(test_default_and_long_names)
{
    IOThread *a = iothread_new(NULL);
    IOThread *b = iothread_new("a-very-long-iothread-name");
    WhereAmI w = { 0 };

    ck_assert_str_eq(iothread_get_id(a), "iothread");
    ck_assert_str_eq(iothread_get_id(b), "a-very-long-iothread-name");
    run_in(iothread_get_aio_context(b), where_am_i, &w);
    ck_assert_str_eq(w.name, "a-very-long-iot"); /* the kernel keeps 15 */
    ck_assert_ptr_ne(iothread_get_aio_context(a), iothread_get_aio_context(b));
    iothread_destroy(b);
    iothread_destroy(a);
}
END_TEST

static int bh_count;

static void count_bh(void *opaque)
{
    (void)opaque;
    __atomic_fetch_add(&bh_count, 1, __ATOMIC_RELAXED);
}

/* Everything scheduled before iothread_destroy() still runs. */
START_TEST(test_pending_bhs_run_before_stop)
{
    for (int round = 0; round < 20; round++) {
        IOThread *t = iothread_new("io-pending");
        AioContext *ctx = iothread_get_aio_context(t);
        QEMUBH *bh = aio_bh_new(ctx, count_bh, NULL);

        bh_count = 0;
        for (int i = 0; i < 2000; i++) {
            aio_bh_schedule_oneshot(ctx, count_bh, NULL);
        }
        qemu_bh_schedule(bh);
        iothread_destroy(t);
        ck_assert_int_eq(bh_count, 2001);
    }
}
END_TEST

typedef struct {
    AioContext *ctx;
    int n;
} Producer;

static void *produce(void *opaque)
{
    Producer *p = opaque;

    for (int i = 0; i < p->n; i++) {
        aio_bh_schedule_oneshot(p->ctx, count_bh, NULL);
    }
    return NULL;
}

/* Four threads hand 20000 BHs each to one IOThread: none lost. */
START_TEST(test_bhs_from_many_threads)
{
    IOThread *t = iothread_new("io-many");
    Producer p = { iothread_get_aio_context(t), 20000 };
    pthread_t th[4];

    bh_count = 0;
    for (int i = 0; i < 4; i++) {
        pthread_create(&th[i], NULL, produce, &p);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    wait_flag(&bh_count, 80000);
    iothread_destroy(t);
    ck_assert_int_eq(bh_count, 80000);
}
END_TEST

/* ---- the thread pool, used from an IOThread ---- */

static int proc_workers_count(void)
{
    return proc_task_count_named("aioctx-worker");
}

typedef struct {
    AioContext *ctx;
    pthread_t thread;
    int submitted;
    int completed;
    int wrong_place;
    int sum;
} PoolUse;

static int job_double(void *arg)
{
    return 2 * (int)(intptr_t)arg;
}

static void pool_use_cb(void *opaque, int ret)
{
    PoolUse *u = opaque;

    if (!pthread_equal(pthread_self(), u->thread) ||
        qemu_get_current_aio_context() != u->ctx) {
        u->wrong_place++;
    }
    u->sum += ret;
    __atomic_fetch_add(&u->completed, 1, __ATOMIC_RELEASE);
}

static void pool_use_start(void *opaque)
{
    PoolUse *u = opaque;

    u->thread = pthread_self();
    for (int i = 1; i <= 1000; i++) {
        ck_assert_ptr_nonnull(thread_pool_submit_aio(
            job_double, (void *)(intptr_t)i, pool_use_cb, u));
        u->submitted++;
    }
}

START_TEST(test_thread_pool_in_iothread)
{
    IOThread *t = iothread_new("io-pool");
    PoolUse u = { .ctx = iothread_get_aio_context(t) };

    run_in(u.ctx, pool_use_start, &u);
    wait_flag(&u.completed, 1000);
    ck_assert_int_eq(u.submitted, 1000);
    ck_assert_int_eq(u.wrong_place, 0);
    ck_assert_int_eq(u.sum, 1000 * 1001);
    ck_assert_int_ge(proc_task_count_named("aioctx-worker"), 1);
    iothread_destroy(t);
    /* The context, and its pool, died with the thread. */
    ck_assert_int_eq(proc_wait_count(proc_workers_count, 0, 5000), 0);
}
END_TEST

START_TEST(test_poll_params)
{
    IOThread *t = iothread_new("io-poll");
    Error *err = NULL;

    iothread_set_poll_params(t, -1, 0, 0, &err);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(error_get_pretty(err), "negative"));
    error_free(err);
    err = NULL;
    iothread_set_poll_params(NULL, 0, 0, 0, &err);
    ck_assert_ptr_nonnull(err);
    error_free(err);
    iothread_set_poll_params(t, 0, 0, 0, &error_abort);
    iothread_set_poll_params(t, 100000, 4, 2, &error_abort);

    /* The loop still reacts with polling on and off. */
    bh_count = 0;
    aio_bh_schedule_oneshot(iothread_get_aio_context(t), count_bh, NULL);
    wait_flag(&bh_count, 1);
    iothread_set_poll_params(t, 0, 0, 0, &error_abort);
    aio_bh_schedule_oneshot(iothread_get_aio_context(t), count_bh, NULL);
    wait_flag(&bh_count, 2);
    ck_assert_int_eq(AIOCTX_IOTHREAD_POLL_MAX_NS_DEFAULT, 32768);
    iothread_destroy(t);
}
END_TEST

START_TEST(test_create_error)
{
    int base_tasks = proc_task_baseline();
    int base_fds = proc_fd_count();
    Error *err = NULL;
    IOThread *t;

    setenv("AIOCTX_ENGINE", "no-such-engine", 1);
    t = iothread_create("io-bad", &err);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(error_get_pretty(err), "no-such-engine"));
    error_free(err);
    ck_assert_int_eq(proc_wait_count(proc_task_count, base_tasks, 2000), base_tasks);
    ck_assert_int_eq(proc_fd_count(), base_fds);
}
END_TEST

/* A program that holds a reference keeps the context past the thread. */
START_TEST(test_context_outlives_thread)
{
    IOThread *t = iothread_new("io-ref");
    AioContext *ctx = iothread_get_aio_context(t);

    aio_context_ref(ctx);
    iothread_destroy(t);
    /* Still usable from here, as an ordinary context. */
    bh_count = 0;
    qemu_set_current_aio_context(ctx);
    aio_bh_schedule_oneshot(ctx, count_bh, NULL);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(bh_count, 1);
    aio_context_unref(ctx);
    ck_assert_ptr_null(qemu_get_current_aio_context());
}
END_TEST

START_TEST(test_create_destroy_100_no_leak)
{
    int base_tasks = proc_task_baseline();
    int base_fds = proc_fd_count();

    for (int i = 0; i < 100; i++) {
        IOThread *t = iothread_new("io-churn");

        if (i % 3 == 0) {
            bh_count = 0;
            aio_bh_schedule_oneshot(iothread_get_aio_context(t), count_bh,
                                    NULL);
            wait_flag(&bh_count, 1);
        }
        if (i % 10 == 0) {
            PoolUse u = { .ctx = iothread_get_aio_context(t) };

            run_in(u.ctx, pool_use_start, &u);
            wait_flag(&u.completed, 1000);
        }
        iothread_destroy(t);
    }
    ck_assert_int_eq(proc_wait_count(proc_task_count, base_tasks, 2000), base_tasks);
    ck_assert_int_eq(proc_fd_count(), base_fds);
    ck_assert_int_eq(proc_wait_count(count_io_churn, 0, 5000), 0);
}
END_TEST

static Suite *iothread_suite(void)
{
    Suite *s = suite_create("iothread");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_runs_own_context);
    tcase_add_test(tc, test_default_and_long_names);
    tcase_add_test(tc, test_pending_bhs_run_before_stop);
    tcase_add_test(tc, test_bhs_from_many_threads);
    tcase_add_test(tc, test_thread_pool_in_iothread);
    tcase_add_test(tc, test_poll_params);
    tcase_add_test(tc, test_create_error);
    tcase_add_test(tc, test_context_outlives_thread);
    tcase_add_test(tc, test_create_destroy_100_no_leak);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_main(iothread_suite());
}
