/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thread pool: exact completion counts, where callbacks run, batching,
 * nested polling in callbacks, cancellation before start and while
 * running, live min/max changes (threads observed in /proc/self/task),
 * idle-timeout exits, destruction of a context with work queued, and
 * thread_pool_submit_co() from many coroutines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "test-proc.h"
#include "test-util.h"

/* A context that is the calling thread's current one. */
static AioContext *ctx_new_current(void)
{
    AioContext *ctx = test_ctx_new();

    qemu_set_current_aio_context(ctx);
    return ctx;
}

static void ctx_set_pool(AioContext *ctx, int min, int max)
{
    aio_context_set_thread_pool_params(ctx, min, max, &error_abort);
}

/* ---- jobs ---- */

static int jobs_ran;

static int job_count(void *arg)
{
    __atomic_fetch_add(&jobs_ran, 1, __ATOMIC_RELAXED);
    return (int)(intptr_t)arg;
}

/* A job that says it started, then waits until released. */
typedef struct {
    int started;
    int release;
    int result;
} Gate;

static int job_gate(void *arg)
{
    Gate *g = arg;

    __atomic_store_n(&g->started, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&g->release, __ATOMIC_ACQUIRE)) {
        test_sleep_us(100);
    }
    __atomic_fetch_add(&jobs_ran, 1, __ATOMIC_RELAXED);
    return g->result;
}

static void gate_wait_started(Gate *g)
{
    for (int i = 0;
         i < 100000 && !__atomic_load_n(&g->started, __ATOMIC_ACQUIRE); i++) {
        test_sleep_us(50);
    }
    ck_assert_int_eq(__atomic_load_n(&g->started, __ATOMIC_ACQUIRE), 1);
}

static void gate_open(Gate *g)
{
    __atomic_store_n(&g->release, 1, __ATOMIC_RELEASE);
}

static void *gate_open_later(void *arg)
{
    test_sleep_us(30 * 1000);
    gate_open(arg);
    return NULL;
}

static void wait_jobs_ran(int n)
{
    for (int i = 0;
         i < 200000 && __atomic_load_n(&jobs_ran, __ATOMIC_RELAXED) < n; i++) {
        test_sleep_us(50);
    }
    ck_assert_int_eq(__atomic_load_n(&jobs_ran, __ATOMIC_RELAXED), n);
}

/* ---- completions ---- */

#define NREQ 10000

typedef struct {
    int calls[NREQ];
    int rets[NREQ];
    int total;
    int wrong_thread;
    pthread_t home;
} Log;

typedef struct {
    Log *log;
    int idx;
} Req;

static void log_cb(void *opaque, int ret)
{
    Req *r = opaque;

    r->log->calls[r->idx]++;
    r->log->rets[r->idx] = ret;
    r->log->total++;
    if (!pthread_equal(pthread_self(), r->log->home)) {
        r->log->wrong_thread++;
    }
}

static Log *log_new(void)
{
    Log *log = calloc(1, sizeof(*log));

    log->home = pthread_self();
    return log;
}

/*
 * Nothing is left to do.  One pass of the completion BH that finds
 * nothing is allowed: a worker that pushed its result while the previous
 * pass was delivering it still schedules the BH.  A second one is not.
 */
static void assert_drained(AioContext *ctx)
{
    if (aio_poll(ctx, false)) {
        ck_assert(!aio_poll(ctx, false));
    }
}

static void submit_counted(AioContext *ctx, int max_threads)
{
    Log *log = log_new();
    Req *reqs = calloc(NREQ, sizeof(*reqs));

    ctx_set_pool(ctx, 0, max_threads);
    jobs_ran = 0;
    for (int i = 0; i < NREQ; i++) {
        reqs[i] = (Req){ log, i };
        ck_assert_ptr_nonnull(thread_pool_submit_aio(
            job_count, (void *)(intptr_t)(i * 3), log_cb, &reqs[i]));
    }
    /* Callbacks never run from inside the submission. */
    ck_assert_int_eq(log->total, 0);
    test_poll_until_ge(ctx, &log->total, NREQ);
    ck_assert_int_eq(__atomic_load_n(&jobs_ran, __ATOMIC_RELAXED), NREQ);
    for (int i = 0; i < NREQ; i++) {
        ck_assert_int_eq(log->calls[i], 1);
        ck_assert_int_eq(log->rets[i], i * 3);
    }
    ck_assert_int_eq(log->wrong_thread, 0);
    /* Nothing left over. */
    assert_drained(ctx);
    ck_assert_int_eq(log->total, NREQ);
    free(reqs);
    free(log);
}

START_TEST(test_submit_10k_one_thread)
{
    AioContext *ctx = ctx_new_current();

    submit_counted(ctx, 1);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_submit_10k_four_threads)
{
    AioContext *ctx = ctx_new_current();

    submit_counted(ctx, 4);
    submit_counted(ctx, 64); /* and again on the same, now warm, pool */
    aio_context_unref(ctx);
}
END_TEST

static int window_left;

static void window_cb(void *opaque, int ret)
{
    Log *log = opaque;

    ck_assert_int_eq(ret, 5);
    log->total++;
    if (window_left > 0) {
        window_left--;
        thread_pool_submit_aio(job_count, (void *)5, window_cb, log);
    }
}

/* Callbacks that submit more work: 16 in flight, 5000 in all. */
START_TEST(test_submit_from_callbacks)
{
    AioContext *ctx = ctx_new_current();
    Log *log = log_new();

    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 2);
    window_left = 5000 - 16;
    for (int i = 0; i < 16; i++) {
        thread_pool_submit_aio(job_count, (void *)5, window_cb, log);
    }
    test_poll_until_ge(ctx, &log->total, 5000);
    ck_assert_int_eq(window_left, 0);
    ck_assert_int_eq(__atomic_load_n(&jobs_ran, __ATOMIC_RELAXED), 5000);
    assert_drained(ctx);
    free(log);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_null_callback)
{
    AioContext *ctx = ctx_new_current();

    jobs_ran = 0;
    for (int i = 0; i < 100; i++) {
        ck_assert_ptr_nonnull(
            thread_pool_submit_aio(job_count, NULL, NULL, NULL));
    }
    wait_jobs_ran(100);
    while (aio_poll(ctx, false)) {
        /* the completion BH reclaims them */
    }
    aio_context_unref(ctx); /* ASan: nothing leaked */
}
END_TEST

static void *submit_without_context(void *arg)
{
    (void)arg;
    return thread_pool_submit_aio(job_count, NULL, NULL, NULL);
}

START_TEST(test_no_current_context)
{
    pthread_t t;
    void *ret = (void *)1;

    jobs_ran = 0;
    pthread_create(&t, NULL, submit_without_context, NULL);
    pthread_join(t, &ret);
    ck_assert_ptr_null(ret);
    test_sleep_us(1000);
    ck_assert_int_eq(jobs_ran, 0);
    ck_assert_ptr_null(aio_get_thread_pool(NULL));
}
END_TEST

START_TEST(test_one_pool_per_context)
{
    AioContext *a = test_ctx_new();
    AioContext *b = test_ctx_new();
    ThreadPool *pa = aio_get_thread_pool(a);

    ck_assert_ptr_nonnull(pa);
    ck_assert_ptr_eq(aio_get_thread_pool(a), pa);
    ck_assert_ptr_ne(aio_get_thread_pool(b), pa);
    /* Creating a pool starts no thread while min is 0. */
    ck_assert_int_eq(thread_pool_get_thread_count(pa), 0);
    aio_context_unref(a);
    aio_context_unref(b);
}
END_TEST

/*
 * Completions that finished together are delivered by one aio_poll.  With
 * one worker, the sentinel job starting proves every earlier job finished
 * and was handed over.
 */
START_TEST(test_completions_batched)
{
    AioContext *ctx = ctx_new_current();
    Log *log = log_new();
    Req reqs[102];
    Gate g = { .result = 77 }, sentinel = { .result = 78 };

    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 1);
    reqs[0] = (Req){ log, 0 };
    thread_pool_submit_aio(job_gate, &g, log_cb, &reqs[0]);
    for (int i = 1; i <= 100; i++) {
        reqs[i] = (Req){ log, i };
        thread_pool_submit_aio(job_count, (void *)(intptr_t)i, log_cb,
                               &reqs[i]);
    }
    reqs[101] = (Req){ log, 101 };
    thread_pool_submit_aio(job_gate, &sentinel, log_cb, &reqs[101]);
    gate_open(&g);
    gate_wait_started(&sentinel);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(log->total, 101);
    ck_assert_int_eq(log->rets[0], 77);
    for (int i = 1; i <= 100; i++) {
        ck_assert_int_eq(log->calls[i], 1);
        ck_assert_int_eq(log->rets[i], i);
    }
    assert_drained(ctx);
    gate_open(&sentinel);
    test_poll_until_ge(ctx, &log->total, 102);
    ck_assert_int_eq(log->rets[101], 78);
    assert_drained(ctx);
    free(log);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    AioContext *ctx;
    int total;
    int seen_in_nested;
    int order[10];
} NestState;

static void nest_cb(void *opaque, int ret)
{
    NestState *s = opaque;
    int me = s->total++;

    s->order[me] = ret;
    if (me == 0) {
        /* The other nine must be delivered by this nested poll. */
        aio_poll(s->ctx, false);
        s->seen_in_nested = s->total;
    }
}

START_TEST(test_nested_poll_in_callback)
{
    AioContext *ctx = ctx_new_current();
    NestState s = { .ctx = ctx };
    Gate sentinel = { .result = 99 };
    Log *log = log_new();
    Req req = { log, 0 };

    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 1);
    for (int i = 0; i < 10; i++) {
        thread_pool_submit_aio(job_count, (void *)(intptr_t)i, nest_cb, &s);
    }
    thread_pool_submit_aio(job_gate, &sentinel, log_cb, &req);
    gate_wait_started(&sentinel); /* the ten are all finished */
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(s.total, 10);
    ck_assert_int_eq(s.seen_in_nested, 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(s.order[i], i); /* one worker: FIFO */
    }
    assert_drained(ctx);
    gate_open(&sentinel);
    test_poll_until_ge(ctx, &log->total, 1);
    free(log);
    aio_context_unref(ctx);
}
END_TEST

/* ---- cancellation ---- */

START_TEST(test_cancel_before_start)
{
    AioContext *ctx = ctx_new_current();
    Log *log = log_new();
    Req reqs[51];
    BlockAIOCB *acbs[51];
    Gate g = { .result = 9 };

    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 1);
    reqs[0] = (Req){ log, 0 };
    acbs[0] = thread_pool_submit_aio(job_gate, &g, log_cb, &reqs[0]);
    gate_wait_started(&g);
    for (int i = 1; i <= 50; i++) {
        reqs[i] = (Req){ log, i };
        acbs[i] = thread_pool_submit_aio(job_count, (void *)(intptr_t)i, log_cb,
                                         &reqs[i]);
    }
    /* Cancel the odd ones, twice over: still one callback each. */
    for (int i = 1; i <= 50; i += 2) {
        bdrv_aio_cancel_async(acbs[i]);
        bdrv_aio_cancel_async(acbs[i]);
    }
    /* The running one cannot be cancelled. */
    bdrv_aio_cancel_async(acbs[0]);
    ck_assert_int_eq(log->total, 0); /* never synchronously */
    while (log->total < 25) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(log->total, 25);
    for (int i = 1; i <= 50; i += 2) {
        ck_assert_int_eq(log->calls[i], 1);
        ck_assert_int_eq(log->rets[i], -ECANCELED);
    }
    gate_open(&g);
    test_poll_until_ge(ctx, &log->total, 51);
    ck_assert_int_eq(log->rets[0], 9);
    for (int i = 0; i <= 50; i++) {
        ck_assert_int_eq(log->calls[i], 1);
        if (i % 2 == 0 && i) {
            ck_assert_int_eq(log->rets[i], i);
        }
    }
    /* The cancelled functions never ran. */
    ck_assert_int_eq(__atomic_load_n(&jobs_ran, __ATOMIC_RELAXED), 26);
    assert_drained(ctx);
    free(log);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_cancel_sync_queued)
{
    AioContext *ctx = ctx_new_current();
    Log *log = log_new();
    Req reqs[2] = { { log, 0 }, { log, 1 } };
    Gate g = { .result = 3 };
    BlockAIOCB *acb;

    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 1);
    thread_pool_submit_aio(job_gate, &g, log_cb, &reqs[0]);
    gate_wait_started(&g);
    acb = thread_pool_submit_aio(job_count, (void *)1, log_cb, &reqs[1]);
    bdrv_aio_cancel(acb);
    /* Returned only once the callback ran. */
    ck_assert_int_eq(log->calls[1], 1);
    ck_assert_int_eq(log->rets[1], -ECANCELED);
    ck_assert_int_eq(log->calls[0], 0);
    gate_open(&g);
    test_poll_until_ge(ctx, &log->total, 2);
    ck_assert_int_eq(log->rets[0], 3);
    ck_assert_int_eq(jobs_ran, 1);
    free(log);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_cancel_while_running)
{
    AioContext *ctx = ctx_new_current();
    Log *log = log_new();
    Req reqs[2] = { { log, 0 }, { log, 1 } };
    Gate g1 = { .result = 42 }, g2 = { .result = 43 };
    BlockAIOCB *acb1, *acb2;
    pthread_t opener;

    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 2);
    acb1 = thread_pool_submit_aio(job_gate, &g1, log_cb, &reqs[0]);
    acb2 = thread_pool_submit_aio(job_gate, &g2, log_cb, &reqs[1]);
    gate_wait_started(&g1);
    gate_wait_started(&g2);

    /* Asynchronous: no effect on a running request. */
    bdrv_aio_cancel_async(acb1);
    gate_open(&g1);
    test_poll_until_ge(ctx, &log->total, 1);
    ck_assert_int_eq(log->calls[0], 1);
    ck_assert_int_eq(log->rets[0], 42);

    /* Synchronous: waits for the real result. */
    pthread_create(&opener, NULL, gate_open_later, &g2);
    bdrv_aio_cancel(acb2);
    ck_assert_int_eq(log->calls[1], 1);
    ck_assert_int_eq(log->rets[1], 43);
    pthread_join(opener, NULL);
    ck_assert_int_eq(jobs_ran, 2);
    free(log);
    aio_context_unref(ctx);
}
END_TEST

/* A reference keeps the request readable after its callback. */
START_TEST(test_aiocb_ref)
{
    AioContext *ctx = ctx_new_current();
    Log *log = log_new();
    Req req = { log, 0 };
    BlockAIOCB *acb;

    acb = thread_pool_submit_aio(job_count, (void *)8, log_cb, &req);
    qemu_aio_ref(acb);
    ck_assert_int_eq(acb->refcnt, 2);
    test_poll_until_ge(ctx, &log->total, 1);
    ck_assert_int_eq(acb->refcnt, 1);
    ck_assert_ptr_eq(acb->opaque, &req);
    /* Cancelling a finished request does nothing. */
    bdrv_aio_cancel_async(acb);
    assert_drained(ctx);
    ck_assert_int_eq(log->calls[0], 1);
    qemu_aio_unref(acb);
    free(log);
    aio_context_unref(ctx);
}
END_TEST

/* qemu_aio_get on a caller-defined request type. */
typedef struct {
    BlockAIOCB common;
    int cancelled;
    char payload[100];
} MyAIOCB;

static void my_cancel(BlockAIOCB *acb)
{
    ((MyAIOCB *)acb)->cancelled++;
}

static const AIOCBInfo my_info = { .cancel_async = my_cancel,
                                   .aiocb_size = sizeof(MyAIOCB) };

START_TEST(test_qemu_aio_get)
{
    int opaque;
    MyAIOCB *acb = qemu_aio_get(&my_info, NULL, log_cb, &opaque);

    ck_assert_ptr_eq(acb->common.aiocb_info, &my_info);
    ck_assert_ptr_null(acb->common.bs);
    ck_assert_ptr_eq(acb->common.opaque, &opaque);
    ck_assert(acb->common.cb == log_cb);
    ck_assert_int_eq(acb->common.refcnt, 1);
    ck_assert_int_eq(acb->cancelled, 0);
    ck_assert_int_eq(acb->payload[99], 0);
    bdrv_aio_cancel_async(&acb->common);
    ck_assert_int_eq(acb->cancelled, 1);
    qemu_aio_ref(acb);
    qemu_aio_unref(acb);
    ck_assert_int_eq(acb->common.refcnt, 1);
    qemu_aio_unref(acb);
    qemu_aio_unref(NULL);
}
END_TEST

/* ---- pool size ---- */

static int worker_count(void)
{
    return proc_task_count_named("aioctx-worker");
}

START_TEST(test_min_max_live)
{
    AioContext *ctx = ctx_new_current();
    int base = proc_task_baseline();
    ThreadPool *pool = aio_get_thread_pool(ctx);
    Gate gates[3] = { { .result = 1 }, { .result = 2 }, { .result = 3 } };
    Log *log = log_new();
    Req reqs[3] = { { log, 0 }, { log, 1 }, { log, 2 } };
    Error *err = NULL;

    ck_assert_int_eq(worker_count(), 0);
    /* Raising min starts threads at once. */
    ctx_set_pool(ctx, 3, 4);
    ck_assert_int_eq(thread_pool_get_thread_count(pool), 3);
    ck_assert_int_eq(proc_wait_count(worker_count, 3, 5000), 3);
    ck_assert_int_eq(proc_wait_count(proc_task_count, base + 3, 2000),
                     base + 3);

    /* Lowering max makes the surplus exit. */
    ctx_set_pool(ctx, 1, 1);
    ck_assert_int_eq(proc_wait_count(worker_count, 1, 5000), 1);
    ck_assert_int_eq(proc_wait_count(proc_task_count, base + 1, 5000),
                     base + 1);

    /* Bad values change nothing. */
    aio_context_set_thread_pool_params(ctx, 2, 1, &err);
    ck_assert_ptr_nonnull(err);
    error_free(err);
    ck_assert_int_eq(thread_pool_get_thread_count(pool), 1);

    /* On demand up to max: 3 blocking jobs, max 2 -> 2 threads. */
    ctx_set_pool(ctx, 0, 2);
    for (int i = 0; i < 3; i++) {
        thread_pool_submit_aio(job_gate, &gates[i], log_cb, &reqs[i]);
    }
    gate_wait_started(&gates[0]);
    gate_wait_started(&gates[1]);
    ck_assert_int_eq(thread_pool_get_thread_count(pool), 2);
    ck_assert_int_eq(worker_count(), 2);
    test_sleep_us(10000);
    ck_assert_int_eq(__atomic_load_n(&gates[2].started, __ATOMIC_ACQUIRE), 0);

    /* Raising max on a busy pool: the next submission may use it. */
    ctx_set_pool(ctx, 0, 3);
    for (int i = 0; i < 3; i++) {
        gate_open(&gates[i]);
    }
    test_poll_until_ge(ctx, &log->total, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(log->rets[i], i + 1);
    }

    /* Idle threads beyond min (0) exit after the idle timeout. */
    ck_assert_int_eq(thread_pool_set_idle_timeout(pool, 0), -EINVAL);
    ck_assert_int_eq(thread_pool_set_idle_timeout(NULL, 1000), -EINVAL);
    ck_assert_int_eq(thread_pool_set_idle_timeout(pool, 20 * 1000 * 1000), 0);
    ck_assert_int_eq(proc_wait_count(worker_count, 0, 5000), 0);
    ck_assert_int_eq(thread_pool_get_thread_count(pool), 0);
    ck_assert_int_eq(proc_wait_count(proc_task_count, base, 5000), base);

    /* ...but min of them stay. */
    ctx_set_pool(ctx, 1, 2);
    ck_assert_int_eq(proc_wait_count(worker_count, 1, 5000), 1);
    test_sleep_us(100 * 1000); /* five idle timeouts */
    ck_assert_int_eq(worker_count(), 1);

    /* The pool still works after all that. */
    submit_counted(ctx, 2);
    free(log);
    aio_context_unref(ctx);
    ck_assert_int_eq(proc_wait_count(proc_task_count, base, 2000), base);
}
END_TEST

/* ---- destruction ---- */

typedef struct {
    int calls[60];
    int rets[60];
    int total;
    int resubmit_ret;
    int resubmit_calls;
} DestroyLog;

typedef struct {
    DestroyLog *log;
    int idx;
} DestroyReq;

static void resubmit_cb(void *opaque, int ret)
{
    DestroyLog *log = opaque;

    log->resubmit_calls++;
    log->resubmit_ret = ret;
}

static void destroy_cb(void *opaque, int ret)
{
    DestroyReq *r = opaque;

    r->log->calls[r->idx]++;
    r->log->rets[r->idx] = ret;
    r->log->total++;
    if (r->idx == 59) {
        /* Submitting while the context dies: completes as cancelled. */
        thread_pool_submit_aio(job_count, NULL, resubmit_cb, r->log);
    }
}

START_TEST(test_destroy_with_work_queued)
{
    int base_tasks = proc_task_baseline();
    int base_fds = proc_fd_count();
    AioContext *ctx = ctx_new_current();
    DestroyLog log;
    DestroyReq reqs[60];
    Gate g = { .result = 7 };
    pthread_t opener;

    memset(&log, 0, sizeof(log));
    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 1);
    reqs[0] = (DestroyReq){ &log, 0 };
    thread_pool_submit_aio(job_gate, &g, destroy_cb, &reqs[0]);
    gate_wait_started(&g);
    for (int i = 1; i < 60; i++) {
        reqs[i] = (DestroyReq){ &log, i };
        thread_pool_submit_aio(job_count, NULL, destroy_cb, &reqs[i]);
    }
    /* The running job ends 30 ms from now; destruction waits for it. */
    pthread_create(&opener, NULL, gate_open_later, &g);
    aio_context_unref(ctx);
    pthread_join(opener, NULL);

    ck_assert_ptr_null(qemu_get_current_aio_context());
    ck_assert_int_eq(log.total, 60);
    ck_assert_int_eq(log.calls[0], 1);
    ck_assert_int_eq(log.rets[0], 7);
    for (int i = 1; i < 60; i++) {
        ck_assert_int_eq(log.calls[i], 1);
        ck_assert_int_eq(log.rets[i], -ECANCELED);
    }
    ck_assert_int_eq(log.resubmit_calls, 1);
    ck_assert_int_eq(log.resubmit_ret, -ECANCELED);
    ck_assert_int_eq(jobs_ran, 1);
    ck_assert_int_eq(proc_wait_count(proc_task_count, base_tasks, 2000),
                     base_tasks);
    ck_assert_int_eq(proc_fd_count(), base_fds);
}
END_TEST

/* Finished but undelivered completions are delivered at destruction. */
START_TEST(test_destroy_with_completions_pending)
{
    AioContext *ctx = ctx_new_current();
    Log *log = log_new();
    Req reqs[20];

    jobs_ran = 0;
    ctx_set_pool(ctx, 2, 4);
    for (int i = 0; i < 20; i++) {
        reqs[i] = (Req){ log, i };
        thread_pool_submit_aio(job_count, (void *)(intptr_t)i, log_cb,
                               &reqs[i]);
    }
    wait_jobs_ran(20);
    aio_context_unref(ctx);
    ck_assert_int_eq(log->total, 20);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(log->calls[i], 1);
        ck_assert_int_eq(log->rets[i], i);
    }
    free(log);
}
END_TEST

/* Many contexts, each with a busy pool, destroyed in turn. */
START_TEST(test_pool_churn)
{
    int base_tasks = proc_task_baseline();
    int base_fds = proc_fd_count();

    for (int round = 0; round < 30; round++) {
        AioContext *ctx = ctx_new_current();
        Log *log = log_new();
        Req reqs[40];

        ctx_set_pool(ctx, round % 3, 2 + round % 3);
        for (int i = 0; i < 40; i++) {
            reqs[i] = (Req){ log, i };
            thread_pool_submit_aio(job_count, (void *)(intptr_t)i, log_cb,
                                   &reqs[i]);
        }
        if (round % 2) {
            test_poll_until_ge(ctx, &log->total, 40);
        }
        aio_context_unref(ctx);
        ck_assert_int_eq(log->total, 40);
        free(log);
    }
    ck_assert_int_eq(proc_wait_count(proc_task_count, base_tasks, 2000),
                     base_tasks);
    ck_assert_int_eq(proc_fd_count(), base_fds);
}
END_TEST

/* ---- the coroutine form ---- */

#if defined(__SANITIZE_THREAD__)
#define NCO 20 /* TSan keeps few coroutine fibers alive */
#else
#define NCO 200
#endif
#define PER_CO 50

typedef struct {
    int id;
    int sum;
    int bad;
    int finished;
    int wrong_thread;
    pthread_t home;
} CoJob;

static int job_times(void *arg)
{
    __atomic_fetch_add(&jobs_ran, 1, __ATOMIC_RELAXED);
    return 3 * (int)(intptr_t)arg;
}

static void coroutine_fn co_submitter(void *opaque)
{
    CoJob *j = opaque;

    for (int i = 0; i < PER_CO; i++) {
        int v = j->id * 1000 + i;
        int ret = thread_pool_submit_co(job_times, (void *)(intptr_t)v);

        if (ret != 3 * v) {
            j->bad++;
        }
        if (!pthread_equal(pthread_self(), j->home)) {
            j->wrong_thread++;
        }
        j->sum += ret;
    }
    j->finished = 1;
}

START_TEST(test_submit_co_many)
{
    AioContext *ctx = ctx_new_current();
    CoJob *jobs = calloc(NCO, sizeof(*jobs));
    int finished = 0;

    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 4);
    for (int i = 0; i < NCO; i++) {
        jobs[i] = (CoJob){ .id = i, .home = pthread_self() };
        qemu_coroutine_enter(qemu_coroutine_create(co_submitter, &jobs[i]));
    }
    /* Every coroutine is waiting for its first job. */
    for (int i = 0; i < NCO; i++) {
        ck_assert_int_eq(jobs[i].finished, 0);
    }
    while (finished < NCO) {
        aio_poll(ctx, true);
        finished = 0;
        for (int i = 0; i < NCO; i++) {
            finished += jobs[i].finished;
        }
    }
    for (int i = 0; i < NCO; i++) {
        int want = 0;

        for (int k = 0; k < PER_CO; k++) {
            want += 3 * (i * 1000 + k);
        }
        ck_assert_int_eq(jobs[i].bad, 0);
        ck_assert_int_eq(jobs[i].wrong_thread, 0);
        ck_assert_int_eq(jobs[i].sum, want);
    }
    ck_assert_int_eq(jobs_ran, NCO * PER_CO);
    assert_drained(ctx);
    free(jobs);
    aio_context_unref(ctx);
}
END_TEST

typedef struct {
    Gate *gate;
    int ret;
    int finished;
} CoWait;

static void coroutine_fn co_wait_gate(void *opaque)
{
    CoWait *w = opaque;

    w->ret = thread_pool_submit_co(job_gate, w->gate);
    w->finished = 1;
}

static void coroutine_fn co_wait_count(void *opaque)
{
    CoWait *w = opaque;

    w->ret = thread_pool_submit_co(job_count, (void *)5);
    w->finished = 1;
}

/* Coroutines waiting when the context dies resume with a result. */
START_TEST(test_submit_co_destroy)
{
    AioContext *ctx = ctx_new_current();
    Gate g = { .result = 11 };
    CoWait running = { .gate = &g }, queued = { 0 };
    pthread_t opener;

    jobs_ran = 0;
    ctx_set_pool(ctx, 0, 1);
    qemu_coroutine_enter(qemu_coroutine_create(co_wait_gate, &running));
    gate_wait_started(&g);
    qemu_coroutine_enter(qemu_coroutine_create(co_wait_count, &queued));
    ck_assert_int_eq(running.finished + queued.finished, 0);
    pthread_create(&opener, NULL, gate_open_later, &g);
    aio_context_unref(ctx);
    pthread_join(opener, NULL);
    ck_assert_int_eq(running.finished, 1);
    ck_assert_int_eq(running.ret, 11);
    ck_assert_int_eq(queued.finished, 1);
    ck_assert_int_eq(queued.ret, -ECANCELED);
    ck_assert_int_eq(jobs_ran, 1);
}
END_TEST

static void coroutine_fn co_no_context(void *opaque)
{
    CoWait *w = opaque;

    w->ret = thread_pool_submit_co(job_count, NULL);
    w->finished = 1;
}

START_TEST(test_submit_co_no_context)
{
    CoWait w = { 0 };

    jobs_ran = 0;
    qemu_coroutine_enter(qemu_coroutine_create(co_no_context, &w));
    ck_assert_int_eq(w.finished, 1);
    ck_assert_int_eq(w.ret, -EINVAL);
    ck_assert_int_eq(jobs_ran, 0);
}
END_TEST

static Suite *thread_pool_suite(void)
{
    Suite *s = suite_create("thread-pool");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_submit_10k_one_thread);
    tcase_add_test(tc, test_submit_10k_four_threads);
    tcase_add_test(tc, test_submit_from_callbacks);
    tcase_add_test(tc, test_null_callback);
    tcase_add_test(tc, test_no_current_context);
    tcase_add_test(tc, test_one_pool_per_context);
    tcase_add_test(tc, test_completions_batched);
    tcase_add_test(tc, test_nested_poll_in_callback);
    tcase_add_test(tc, test_cancel_before_start);
    tcase_add_test(tc, test_cancel_sync_queued);
    tcase_add_test(tc, test_cancel_while_running);
    tcase_add_test(tc, test_aiocb_ref);
    tcase_add_test(tc, test_qemu_aio_get);
    tcase_add_test(tc, test_min_max_live);
    tcase_add_test(tc, test_destroy_with_work_queued);
    tcase_add_test(tc, test_destroy_with_completions_pending);
    tcase_add_test(tc, test_pool_churn);
    tcase_add_test(tc, test_submit_co_many);
    tcase_add_test(tc, test_submit_co_destroy);
    tcase_add_test(tc, test_submit_co_no_context);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_main(thread_pool_suite());
}
