/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The per-context worker thread pool.
 *
 * Requests travel through three lists:
 *
 *  inbox   a lock-free LIFO that submission pushes onto with one CAS, so the
 *          submitting thread never waits for the pool lock;
 *  queue   a FIFO under pool->lock that workers (and cancellation) fill by
 *          taking the whole inbox at once, reversed into submission order,
 *          and that workers pop from;
 *  done    a lock-free LIFO of finished requests.  Only the push that finds
 *          it empty schedules the completion bottom half, so a burst of
 *          completions costs one wake-up.  The BH (context thread) moves it,
 *          in order, to a delivery list of its own and runs the callbacks;
 *          while callbacks are left it keeps itself scheduled, so that a
 *          callback that nests aio_poll() still gets the remaining ones.
 *
 * Waking workers.  A worker that finds nothing to do first spins for a
 * short while (one worker at a time), then sleeps on work_cond.  Before it
 * sleeps it counts itself in idle_threads and looks at the inbox again;
 * submission pushes and then reads idle_threads.  Both sides use sequentially
 * consistent operations, so at least one of them sees the other: the worker
 * does not sleep, or the submitter signals it (under the lock, which the
 * worker holds until it is inside the wait).  Signals are counted: each
 * signal moves one sleeper from idle_threads to wakeups, and a worker that
 * returns from its wait consumes a wakeup if there is one, else its own idle
 * count; so the submitter signals only when a worker sleeps unsignalled.
 * A worker that takes a request while more are queued wakes the next one.
 *
 * A request is cancellable while it is queued (in the inbox or the queue):
 * cancellation moves the inbox to the queue under the lock, unlinks the
 * request and completes it with -ECANCELED.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio-internal.h"
#include "aioctx/thread-pool.h"

/* How long a worker spins on an empty queue before it sleeps. */
#define WORKER_SPIN_NS (10 * 1000)
/* pause instructions between two looks at the inbox while spinning */
#ifndef SPIN_PAUSES
#define SPIN_PAUSES 32
#endif

enum {
    TP_QUEUED, /* in the inbox or the queue; cancellable */
    TP_ACTIVE, /* taken by a worker */
    TP_DONE,   /* finished or cancelled */
};

typedef struct ThreadPoolElement ThreadPoolElement;
struct ThreadPoolElement {
    BlockAIOCB common;
    ThreadPool *pool;
    ThreadPoolFunc *func;
    void *arg;
    int state; /* TP_*; under pool->lock once submitted */
    int ret;
    /* Inbox, queue (under pool->lock), then the done/delivery lists. */
    ThreadPoolElement *next;
    ThreadPoolElement **pprev; /* queue only */
};

typedef struct Worker Worker;
struct Worker {
    pthread_t thread;
    ThreadPool *pool;
    Worker *next; /* pool->exited */
};

struct ThreadPool {
    AioContext *ctx;
    QEMUBH *completion_bh;
    pthread_cond_t work_cond;    /* workers wait here for requests */
    pthread_cond_t stopped_cond; /* a worker exited */

    /* Submitted requests, newest first; pushed without the lock. */
    alignas(64) ThreadPoolElement *inbox;

    alignas(64) pthread_mutex_t lock;
    ThreadPoolElement *head; /* the queue, under lock */
    ThreadPoolElement **tailp;
    /* Under lock; those marked atomic are also read without it. */
    int cur_threads;  /* atomic; started (or starting), not exited */
    int idle_threads; /* atomic; sleeping, not signalled */
    int wakeups;      /* atomic; signals sent, not yet consumed */
    int spinning;     /* atomic; 0 or 1 */
    int min_threads;
    int max_threads;  /* atomic */
    bool stopping;    /* atomic */
    int64_t idle_timeout_ns;
    Worker *exited; /* workers that returned and wait to be joined */

    /* Finished requests (LIFO), pushed by workers and cancellers. */
    alignas(64) ThreadPoolElement *done_head;

    /* Context thread only: requests to deliver, in order. */
    alignas(64) ThreadPoolElement *deliver_head;
    ThreadPoolElement **deliver_tailp;
    bool bh_armed; /* we scheduled completion_bh ourselves */
};

static void tp_cancel_async(BlockAIOCB *acb);
static void spawn_workers(ThreadPool *pool, int n);

static const AIOCBInfo thread_pool_aiocb_info = {
    .cancel_async = tp_cancel_async,
    .aiocb_size = sizeof(ThreadPoolElement),
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

/* Reverse a LIFO chain into FIFO order; *tailp gets the last link. */
static ThreadPoolElement *chain_reverse(ThreadPoolElement *e,
                                        ThreadPoolElement ***tailp)
{
    ThreadPoolElement *fifo = NULL;

    *tailp = e ? &e->next : NULL;
    while (e) {
        ThreadPoolElement *next = e->next;

        e->next = fifo;
        fifo = e;
        e = next;
    }
    return fifo;
}

/* ---- the queue (pool->lock held) ---- */

/* Move the inbox to the end of the queue, oldest first. */
static void inbox_drain(ThreadPool *pool)
{
    ThreadPoolElement *e, **pprev;

    if (!aio_load(&pool->inbox)) {
        return;
    }
    e = __atomic_exchange_n(&pool->inbox, NULL, __ATOMIC_ACQUIRE);
    e = chain_reverse(e, &pprev);
    pprev = pool->tailp;
    *pprev = e;
    for (; e; e = e->next) {
        e->pprev = pprev;
        pprev = &e->next;
    }
    pool->tailp = pprev;
}

static void queue_remove(ThreadPool *pool, ThreadPoolElement *e)
{
    if (e->next) {
        e->next->pprev = e->pprev;
    } else {
        pool->tailp = e->pprev;
    }
    *e->pprev = e->next;
}

static ThreadPoolElement *queue_pop(ThreadPool *pool)
{
    ThreadPoolElement *e = pool->head;

    if (!e) {
        inbox_drain(pool);
        e = pool->head;
    }
    if (e) {
        queue_remove(pool, e);
    }
    return e;
}

static bool has_work(ThreadPool *pool)
{
    return pool->head || aio_load(&pool->inbox);
}

/* Signal one sleeping worker, if one sleeps unsignalled. */
static void wake_one(ThreadPool *pool)
{
    if (aio_load(&pool->idle_threads)) {
        __atomic_fetch_sub(&pool->idle_threads, 1, __ATOMIC_RELAXED);
        aio_store(&pool->wakeups, pool->wakeups + 1);
        pthread_cond_signal(&pool->work_cond);
    }
}

/*
 * More is queued than the caller takes: signal a sleeper, or, if none
 * sleeps and the pool may grow, count one more thread and return true: the
 * caller then starts it with spawn_workers() after unlocking.
 */
static bool need_helper(ThreadPool *pool)
{
    if (aio_load(&pool->idle_threads)) {
        wake_one(pool);
        return false;
    }
    if (pool->stopping || pool->cur_threads >= pool->max_threads) {
        return false;
    }
    aio_store(&pool->cur_threads, pool->cur_threads + 1);
    return true;
}

static void wake_all(ThreadPool *pool)
{
    int idle = __atomic_exchange_n(&pool->idle_threads, 0, __ATOMIC_RELAXED);

    aio_store(&pool->wakeups, pool->wakeups + idle);
    pthread_cond_broadcast(&pool->work_cond);
}

/* Complete every queued request with ret; returns them, oldest first. */
static ThreadPoolElement *queue_take_all(ThreadPool *pool, int ret)
{
    ThreadPoolElement *list;

    inbox_drain(pool);
    list = pool->head;
    for (ThreadPoolElement *e = list; e; e = e->next) {
        e->state = TP_DONE;
        e->ret = ret;
    }
    pool->head = NULL;
    pool->tailp = &pool->head;
    return list;
}

/* ---- completion ---- */

/* Hand a finished request to the context thread.  Any thread. */
static void done_push(ThreadPool *pool, ThreadPoolElement *e)
{
    ThreadPoolElement *old = aio_load(&pool->done_head);

    do {
        e->next = old;
    } while (!__atomic_compare_exchange_n(&pool->done_head, &old, e, true,
                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (!old) {
        /* Its release orders the push before the flag (see disarm). */
        qemu_bh_schedule(pool->completion_bh);
    }
}

static void push_list(ThreadPool *pool, ThreadPoolElement *list)
{
    while (list) {
        ThreadPoolElement *next = list->next;

        done_push(pool, list);
        list = next;
    }
}

/* Move the done LIFO, in submission order, to the delivery list. */
static void deliver_grab(ThreadPool *pool)
{
    ThreadPoolElement *e, **tailp;

    if (!aio_load(&pool->done_head)) {
        return;
    }
    e = __atomic_exchange_n(&pool->done_head, NULL, __ATOMIC_ACQUIRE);
    *pool->deliver_tailp = chain_reverse(e, &tailp);
    pool->deliver_tailp = tailp;
}

static ThreadPoolElement *deliver_pop(ThreadPool *pool)
{
    ThreadPoolElement *e = pool->deliver_head;

    if (e) {
        pool->deliver_head = e->next;
        if (!e->next) {
            pool->deliver_tailp = &pool->deliver_head;
        }
    }
    return e;
}

static void deliver_one(ThreadPoolElement *e)
{
    if (e->common.cb) {
        e->common.cb(e->common.opaque, e->ret);
    }
    qemu_aio_unref(e);
}

/*
 * Undo our own scheduling of the BH.  A worker may have scheduled it too
 * after finding the done list empty, and the cancel may have wiped that
 * out; so look at the list again after the cancel and schedule once more
 * if something arrived.  qemu_bh_cancel() is an acquire operation: if it
 * overrode a worker's qemu_bh_schedule(), that worker's push is visible.
 */
static void completion_bh_disarm(ThreadPool *pool)
{
    pool->bh_armed = false;
    qemu_bh_cancel(pool->completion_bh);
    if (aio_load(&pool->done_head)) {
        qemu_bh_schedule(pool->completion_bh);
    }
}

static void completion_bh(void *opaque)
{
    ThreadPool *pool = opaque;
    ThreadPoolElement *e;

    /* aio_bh_poll() cleared the scheduled flag before calling us. */
    pool->bh_armed = false;
    deliver_grab(pool);
    while ((e = deliver_pop(pool))) {
        if (pool->deliver_head && !pool->bh_armed) {
            pool->bh_armed = true;
            qemu_bh_schedule(pool->completion_bh);
        }
        deliver_one(e);
    }
    if (pool->bh_armed) {
        completion_bh_disarm(pool);
    }
}

/* ---- workers ---- */

/* Join and free workers that have exited.  Not from a worker. */
static void reap_exited(ThreadPool *pool)
{
    Worker *w;

    pthread_mutex_lock(&pool->lock);
    w = pool->exited;
    pool->exited = NULL;
    pthread_mutex_unlock(&pool->lock);
    while (w) {
        Worker *next = w->next;

        pthread_join(w->thread, NULL);
        free(w);
        w = next;
    }
}

/*
 * Spin briefly, without the lock, until the inbox has something; lock held
 * on entry and exit.  Returns true when work arrived.
 */
static bool worker_spin(ThreadPool *pool)
{
    int64_t start;
    bool found = false;

    if (aio_load(&pool->spinning)) {
        return false;
    }
    aio_store(&pool->spinning, 1);
    pthread_mutex_unlock(&pool->lock);
    start = aio_now_ns();
    do {
        /*
         * Look rarely: every look steals the inbox's cache line from the
         * submitter, and letting requests pile up a little means the next
         * drain takes many at once.
         */
        for (int i = 0; i < SPIN_PAUSES; i++) {
            cpu_relax();
        }
        found = aio_load(&pool->inbox) != NULL;
    } while (!found && aio_now_ns() - start < WORKER_SPIN_NS);
    pthread_mutex_lock(&pool->lock);
    aio_store(&pool->spinning, 0);
    return has_work(pool);
}

/*
 * Wait for work with pool->lock held and nothing queued.  Returns false
 * when the worker should exit: it stayed idle for the idle timeout while
 * more than min_threads run.
 */
static bool worker_wait(ThreadPool *pool)
{
    struct timespec deadline;
    int64_t ns;
    int ret;

    if (worker_spin(pool) || pool->stopping ||
        pool->cur_threads > pool->max_threads) {
        return true;
    }
    /* Count ourselves idle, then look again: pairs with submission. */
    __atomic_fetch_add(&pool->idle_threads, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool->inbox, __ATOMIC_SEQ_CST)) {
        __atomic_fetch_sub(&pool->idle_threads, 1, __ATOMIC_RELAXED);
        return true;
    }
    ns = aio_now_ns() + pool->idle_timeout_ns;
    deadline.tv_sec = ns / 1000000000LL;
    deadline.tv_nsec = ns % 1000000000LL;
    ret = pthread_cond_timedwait(&pool->work_cond, &pool->lock, &deadline);
    if (pool->wakeups) {
        aio_store(&pool->wakeups, pool->wakeups - 1);
    } else {
        __atomic_fetch_sub(&pool->idle_threads, 1, __ATOMIC_RELAXED);
    }
    return !(ret == ETIMEDOUT && !has_work(pool) &&
             pool->cur_threads > pool->min_threads);
}

static void *worker_main(void *opaque)
{
    Worker *w = opaque;
    ThreadPool *pool = w->pool;
    bool spawn;

    pthread_setname_np(pthread_self(), "aioctx-worker");
    pthread_mutex_lock(&pool->lock);
    while (!pool->stopping && pool->cur_threads <= pool->max_threads) {
        ThreadPoolElement *e = queue_pop(pool);

        if (!e) {
            if (!worker_wait(pool)) {
                break;
            }
            continue;
        }
        e->state = TP_ACTIVE;
        spawn = has_work(pool) && need_helper(pool);
        pthread_mutex_unlock(&pool->lock);
        if (spawn) {
            spawn_workers(pool, 1);
        }

        e->ret = e->func(e->arg);
        done_push(pool, e);

        pthread_mutex_lock(&pool->lock);
    }
    aio_store(&pool->cur_threads, pool->cur_threads - 1);
    w->next = pool->exited;
    pool->exited = w;
    pthread_cond_broadcast(&pool->stopped_cond);
    /* If we consumed a signal meant for queued work, pass it on. */
    if (has_work(pool)) {
        wake_one(pool);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/*
 * Start n workers that were already counted in cur_threads.  A worker that
 * cannot be started is uncounted; if that leaves the pool with no thread
 * at all, the queued requests complete with the error.
 */
static void spawn_workers(ThreadPool *pool, int n)
{
    sigset_t all, old;

    reap_exited(pool);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; n > 0; n--) {
        Worker *w = calloc(1, sizeof(*w));
        ThreadPoolElement *failed = NULL;
        int ret = w ? 0 : ENOMEM;

        if (w) {
            w->pool = pool;
            ret = pthread_create(&w->thread, NULL, worker_main, w);
        }
        if (ret == 0) {
            continue;
        }
        free(w);
        pthread_mutex_lock(&pool->lock);
        aio_store(&pool->cur_threads, pool->cur_threads - 1);
        if (pool->cur_threads == 0) {
            failed = queue_take_all(pool, -ret);
        }
        pthread_mutex_unlock(&pool->lock);
        push_list(pool, failed);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- the pool ---- */

static ThreadPool *pool_new(AioContext *ctx)
{
    ThreadPool *pool = calloc(1, sizeof(*pool));
    pthread_mutexattr_t mattr;
    pthread_condattr_t cattr;

    if (!pool) {
        fprintf(stderr, "libaioctx: out of memory allocating a thread pool\n");
        abort();
    }
    pool->ctx = ctx;
    pool->completion_bh = aio_bh_new(ctx, completion_bh, pool);
    pthread_mutexattr_init(&mattr);
    /* The critical sections are a few pointer writes: spin a little on
     * contention rather than sleep in the kernel at once. */
    pthread_mutexattr_settype(&mattr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&pool->lock, &mattr);
    pthread_mutexattr_destroy(&mattr);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->work_cond, &cattr);
    pthread_condattr_destroy(&cattr);
    pthread_cond_init(&pool->stopped_cond, NULL);
    pool->tailp = &pool->head;
    pool->deliver_tailp = &pool->deliver_head;
    pool->idle_timeout_ns = THREAD_POOL_IDLE_TIMEOUT_NS_DEFAULT;
    pool->max_threads = aio_load(&ctx->thread_pool_max);
    pool->min_threads = aio_load(&ctx->thread_pool_min);
    return pool;
}

static void pool_free(ThreadPool *pool)
{
    qemu_bh_delete(pool->completion_bh);
    pthread_cond_destroy(&pool->stopped_cond);
    pthread_cond_destroy(&pool->work_cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

AIOCTX_API ThreadPool *aio_get_thread_pool(AioContext *ctx)
{
    ThreadPool *pool, *expected = NULL;

    if (!ctx) {
        return NULL;
    }
    pool = aio_load_acquire(&ctx->thread_pool);
    if (pool) {
        return pool;
    }
    pool = pool_new(ctx);
    if (!__atomic_compare_exchange_n(&ctx->thread_pool, &expected, pool, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        pool_free(pool);
        return expected;
    }
    aio_thread_pool_update_params(ctx); /* starts min threads */
    return pool;
}

void aio_thread_pool_update_params(AioContext *ctx)
{
    ThreadPool *pool = aio_load_acquire(&ctx->thread_pool);
    int spawn = 0;

    if (!pool) {
        return;
    }
    pthread_mutex_lock(&pool->lock);
    aio_store(&pool->max_threads, aio_load(&ctx->thread_pool_max));
    pool->min_threads = aio_load(&ctx->thread_pool_min);
    if (pool->min_threads > pool->max_threads) {
        pool->min_threads = pool->max_threads; /* racing setters */
    }
    if (!pool->stopping && pool->cur_threads < pool->min_threads) {
        spawn = pool->min_threads - pool->cur_threads;
        aio_store(&pool->cur_threads, pool->min_threads);
    }
    if (pool->cur_threads > pool->max_threads) {
        /* Sleepers wake up, see the surplus and the extra ones exit. */
        wake_all(pool);
    }
    pthread_mutex_unlock(&pool->lock);
    if (spawn) {
        spawn_workers(pool, spawn);
    }
}

void aio_thread_pool_destroy_ctx(AioContext *ctx)
{
    ThreadPool *pool = aio_load_acquire(&ctx->thread_pool);
    ThreadPoolElement *cancelled, *e;
    Worker *w;

    if (!pool) {
        return;
    }
    pthread_mutex_lock(&pool->lock);
    aio_store(&pool->stopping, true);
    cancelled = queue_take_all(pool, -ECANCELED);
    wake_all(pool);
    while (pool->cur_threads > 0) {
        pthread_cond_wait(&pool->stopped_cond, &pool->lock);
    }
    w = pool->exited;
    pool->exited = NULL;
    pthread_mutex_unlock(&pool->lock);
    while (w) {
        Worker *next = w->next;

        pthread_join(w->thread, NULL);
        free(w);
        w = next;
    }

    /*
     * No worker is left.  Deliver what finished, then what was dropped,
     * then anything those callbacks submitted (it completes cancelled).
     */
    push_list(pool, cancelled);
    for (;;) {
        deliver_grab(pool);
        e = deliver_pop(pool);
        if (!e) {
            break;
        }
        deliver_one(e);
    }
    aio_store_release(&ctx->thread_pool, NULL);
    pool_free(pool);
}

/* ---- requests ---- */

static void tp_cancel_async(BlockAIOCB *acb)
{
    ThreadPoolElement *e = (ThreadPoolElement *)acb;
    ThreadPool *pool = e->pool;
    bool cancelled = false;

    pthread_mutex_lock(&pool->lock);
    if (e->state == TP_QUEUED) {
        inbox_drain(pool); /* so that e is in the queue */
        queue_remove(pool, e);
        e->state = TP_DONE;
        e->ret = -ECANCELED;
        cancelled = true;
    }
    pthread_mutex_unlock(&pool->lock);
    if (cancelled) {
        done_push(pool, e);
    }
}

/*
 * After a submission: wake a sleeping worker, or start one if none sleeps
 * and the pool may grow.  A spinning worker will see the request itself
 * (and wake or start helpers for what else is queued).
 */
static void find_worker(ThreadPool *pool)
{
    bool spawn;

    /* Pairs with worker_wait(): one of us sees the other. */
    if (!__atomic_load_n(&pool->idle_threads, __ATOMIC_SEQ_CST) &&
        (aio_load(&pool->cur_threads) >= aio_load(&pool->max_threads))) {
        return;
    }
    if (aio_load(&pool->spinning)) {
        return;
    }
    pthread_mutex_lock(&pool->lock);
    spawn = !pool->spinning && need_helper(pool);
    pthread_mutex_unlock(&pool->lock);
    if (spawn) {
        spawn_workers(pool, 1);
    }
}

AIOCTX_API BlockAIOCB *thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                                              BlockCompletionFunc *cb,
                                              void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();
    ThreadPoolElement *e, *old;
    ThreadPool *pool;

    if (!ctx) {
        return NULL;
    }
    pool = aio_get_thread_pool(ctx);
    e = malloc(sizeof(*e));
    if (!e) {
        fprintf(stderr, "libaioctx: out of memory submitting a request\n");
        abort();
    }
    *e = (ThreadPoolElement){
        .common = { .aiocb_info = &thread_pool_aiocb_info, .cb = cb,
                    .opaque = opaque, .refcnt = 1 },
        .pool = pool, .func = func, .arg = arg, .state = TP_QUEUED,
    };
    if (aio_load(&pool->stopping)) {
        /* A callback run by the context's destruction submitted more. */
        e->state = TP_DONE;
        e->ret = -ECANCELED;
        done_push(pool, e);
        return &e->common;
    }

    old = aio_load(&pool->inbox);
    do {
        e->next = old;
    } while (!__atomic_compare_exchange_n(&pool->inbox, &old, e, true,
                                          __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    find_worker(pool);
    return &e->common;
}

AIOCTX_API int thread_pool_set_idle_timeout(ThreadPool *pool,
                                            int64_t timeout_ns)
{
    if (!pool || timeout_ns <= 0) {
        return -EINVAL;
    }
    pthread_mutex_lock(&pool->lock);
    pool->idle_timeout_ns = timeout_ns;
    wake_all(pool); /* sleepers re-arm their wait with the new timeout */
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

AIOCTX_API int thread_pool_get_thread_count(ThreadPool *pool)
{
    int n;

    if (!pool) {
        return 0;
    }
    pthread_mutex_lock(&pool->lock);
    n = pool->cur_threads;
    pthread_mutex_unlock(&pool->lock);
    return n;
}
