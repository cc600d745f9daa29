/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The per-context worker thread pool.
 *
 * Requests travel through two lock-free FIFOs, each an intrusive
 * multi-producer single-consumer queue with a stub node (a producer swaps
 * itself in as the tail, then links its predecessor to itself; the one
 * consumer follows the links):
 *
 *  inbox  submission pushes onto it without taking any lock; workers pop
 *         from it one request at a time while they hold pool->lock, which
 *         makes them a single consumer;
 *  done   workers (and cancellation) push finished requests; the context
 *         thread's completion bottom half pops them and runs the callbacks.
 *         Only the push that finds the queue empty schedules the BH, so a
 *         burst of completions costs one wake-up.  Before each callback the
 *         BH makes sure it is scheduled again, so that a callback that nests
 *         aio_poll() still gets the remaining completions; it cancels that
 *         at the end.
 *
 * Cancelling a queued request moves the inbox, up to that request, to a
 * FIFO under pool->lock ("queue", doubly linked) where it can be unlinked;
 * workers serve that queue before the inbox.
 *
 * Waking workers.  A worker that finds nothing to do first spins for a
 * short, adaptive while (one worker at a time), looking at the inbox
 * rarely, then sleeps on work_cond.  Before it sleeps it counts itself in
 * idle_threads and looks at the inbox again; submission pushes and then reads
 * idle_threads.  Both sides use sequentially consistent operations, so at
 * least one sees the other: the worker does not sleep, or the submitter
 * signals it (under the lock, which the worker holds until it is inside the
 * wait).  Signals are counted: each moves one sleeper from idle_threads to
 * wakeups, and a worker back from its wait consumes a wakeup if there is
 * one, else its own idle count; so a signal is only sent to a worker that
 * sleeps unsignalled.  A worker that takes a request while more wait wakes
 * (or starts) a helper.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio-internal.h"
#include "log-internal.h"
#include "aioctx/coroutine.h"
#include "aioctx/thread-pool.h"

/*
 * How long a worker spins on an empty queue before it sleeps (documented
 * in thread-pool.h; a build may override it).
 */
#ifndef WORKER_SPIN_NS
#define WORKER_SPIN_NS (10 * 1000)
#endif
/* The shortest spin worth doing; below it, workers do not spin. */
#define SPIN_MIN_NS 1000
/* pause instructions between two looks at the inbox while spinning */
#define SPIN_PAUSES 32

enum {
    TP_QUEUED, /* in the inbox or the queue; cancellable */
    TP_ACTIVE, /* taken by a worker */
    TP_DONE,   /* finished or cancelled */
};

typedef struct TPLink TPLink;
struct TPLink {
    TPLink *next;
};

/* An intrusive MPSC FIFO; see the top of the file. */
typedef struct TPFifo {
    alignas(64) TPLink *tail; /* producers */
    alignas(64) TPLink *head; /* the consumer */
    TPLink stub;
} TPFifo;

typedef struct ThreadPoolElement ThreadPoolElement;
struct ThreadPoolElement {
    BlockAIOCB common;
    ThreadPool *pool;
    ThreadPoolFunc *func;
    void *arg;
    int state; /* TP_*; under pool->lock once submitted */
    int ret;
    union {
        TPLink link;             /* inbox, then done */
        ThreadPoolElement *next; /* queue, under pool->lock */
    };
    ThreadPoolElement **pprev; /* queue */
};

typedef struct Worker Worker;
struct Worker {
    pthread_t thread;
    ThreadPool *pool;
    Worker *next; /* pool->exited */
};

struct ThreadPool {
    /*
     * Read on every submission, written rarely: kept away from the lock,
     * which the workers take for every request.
     */
    AioContext *ctx;
    QEMUBH *completion_bh;
    int cur_threads;  /* atomic; under lock; started (or starting), alive */
    int max_threads;  /* atomic; under lock */
    int idle_threads; /* atomic; under lock; sleeping, not signalled */
    bool stopping;    /* atomic; under lock */

    TPFifo inbox; /* submitted requests; consumer: whoever holds lock */

    alignas(64) pthread_mutex_t lock;
    ThreadPoolElement *head; /* the queue */
    ThreadPoolElement **tailp;
    int wakeups;  /* atomic; under lock; signals sent, not yet consumed */
    int spinning; /* atomic; written under lock; 0 or 1 */
    int min_threads;
    int64_t spin_ns; /* current spin limit, adaptive */
    int64_t idle_timeout_ns;
    Worker *exited;           /* workers that returned and wait to be joined */
    pthread_cond_t work_cond; /* workers wait here for requests */
    pthread_cond_t stopped_cond; /* a worker exited */

    TPFifo done;   /* finished requests; consumer: the context thread */
    bool bh_armed; /* context thread: we scheduled completion_bh ourselves */
    /* For aio_context_get_stats(): context thread, relaxed atomics. */
    uint64_t submitted;
    uint64_t completed;
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

/* ---- the lock-free FIFOs ---- */

static void fifo_init(TPFifo *q)
{
    q->stub.next = NULL;
    q->head = &q->stub;
    q->tail = &q->stub;
}

/* Any thread.  Returns true when the queue held nothing before. */
static bool fifo_push(TPFifo *q, TPLink *l)
{
    TPLink *prev;

    aio_store(&l->next, NULL);
    prev = __atomic_exchange_n(&q->tail, l, __ATOMIC_SEQ_CST);
    aio_store_release(&prev->next, l);
    return prev == &q->stub;
}

/*
 * The consumer takes the oldest entry.  NULL when the queue is empty, or
 * when a producer has swapped itself in but not linked yet (then
 * fifo_empty() is false: try again in a moment).
 */
static TPLink *fifo_pop(TPFifo *q)
{
    TPLink *head = q->head;
    TPLink *next = aio_load_acquire(&head->next);

    if (head == &q->stub) {
        if (!next) {
            return NULL;
        }
        q->head = head = next;
        next = aio_load_acquire(&head->next);
    }
    if (!next) {
        if (__atomic_load_n(&q->tail, __ATOMIC_SEQ_CST) != head) {
            return NULL; /* a push is half done */
        }
        /* head is the last entry: put the stub behind it. */
        fifo_push(q, &q->stub);
        next = aio_load_acquire(&head->next);
        if (!next) {
            return NULL;
        }
    }
    q->head = next;
    return head;
}

/* The consumer: whether the queue is empty (sequentially consistent). */
static bool fifo_empty(TPFifo *q)
{
    return q->head == &q->stub &&
           __atomic_load_n(&q->tail, __ATOMIC_SEQ_CST) == &q->stub;
}

/* Any thread, without consuming: a hint that something is queued. */
static bool fifo_maybe_nonempty(TPFifo *q)
{
    return aio_load(&q->tail) != &q->stub;
}

static ThreadPoolElement *link_elem(TPLink *l)
{
    return l ? (ThreadPoolElement *)((char *)l -
                                     offsetof(ThreadPoolElement, link))
             : NULL;
}

/* Pop, waiting out a producer caught between its two steps. */
static ThreadPoolElement *fifo_pop_wait(TPFifo *q)
{
    for (int spins = 0;; spins++) {
        TPLink *l = fifo_pop(q);

        if (l || fifo_empty(q)) {
            return link_elem(l);
        }
        if (spins < 100) {
            cpu_relax();
        } else {
            sched_yield();
        }
    }
}

/* ---- the queue and the inbox (pool->lock held) ---- */

static void queue_append(ThreadPool *pool, ThreadPoolElement *e)
{
    e->next = NULL;
    e->pprev = pool->tailp;
    *pool->tailp = e;
    pool->tailp = &e->next;
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

/* Move the inbox to the queue, up to and including until (NULL: all). */
static void inbox_drain(ThreadPool *pool, ThreadPoolElement *until)
{
    ThreadPoolElement *e;

    while ((e = fifo_pop_wait(&pool->inbox))) {
        queue_append(pool, e);
        if (e == until) {
            break;
        }
    }
}

/* The oldest request, or NULL when none is queued right now. */
static ThreadPoolElement *queue_pop(ThreadPool *pool)
{
    ThreadPoolElement *e = pool->head;

    if (e) {
        queue_remove(pool, e);
        return e;
    }
    return link_elem(fifo_pop(&pool->inbox));
}

static bool has_work(ThreadPool *pool)
{
    return pool->head || !fifo_empty(&pool->inbox);
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

    inbox_drain(pool, NULL);
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
    if (fifo_push(&pool->done, &e->link)) {
        /* Its release orders the push before the flag (see disarm). */
        qemu_bh_schedule(pool->completion_bh);
    }
}

/* done_push() a chain linked through ->next. */
static void push_list(ThreadPool *pool, ThreadPoolElement *list)
{
    while (list) {
        ThreadPoolElement *next = list->next;

        done_push(pool, list);
        list = next;
    }
}

static void deliver_one(ThreadPoolElement *e, AiocbFreeBatch *batch)
{
    ThreadPool *pool = e->pool;

    aio_store(&pool->completed, aio_load(&pool->completed) + 1);
    if (e->common.cb) {
        e->common.cb(e->common.opaque, e->ret);
    }
    /*
     * The submitter's reference (qemu_aio_unref, without the detour).
     * Nobody may take a reference once the callback has returned, so if
     * ours is the only one left, no atomic operation is needed.
     */
    if (aio_load_acquire(&e->common.refcnt) == 1 ||
        __atomic_sub_fetch(&e->common.refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
        aiocb_free_batched(batch, e);
    }
}

/*
 * Undo our own scheduling of the BH.  A worker may have scheduled it too
 * after finding the done queue empty, and the cancel may have wiped that
 * out; so look at the queue again after the cancel and schedule once more
 * if something is there.  qemu_bh_cancel() is an acquire operation: if it
 * overrode a worker's qemu_bh_schedule(), that worker's push is visible.
 */
static void completion_bh_disarm(ThreadPool *pool)
{
    pool->bh_armed = false;
    qemu_bh_cancel(pool->completion_bh);
    if (!fifo_empty(&pool->done)) {
        qemu_bh_schedule(pool->completion_bh);
    }
}

static void completion_bh(void *opaque)
{
    ThreadPool *pool = opaque;
    AiocbFreeBatch batch = { 0 };
    ThreadPoolElement *e;

    /* aio_bh_poll() cleared the scheduled flag before calling us. */
    pool->bh_armed = false;
    while ((e = link_elem(fifo_pop(&pool->done)))) {
        if (!pool->bh_armed) {
            /* A nested aio_poll() in the callback delivers the rest. */
            pool->bh_armed = true;
            qemu_bh_schedule(pool->completion_bh);
        }
        deliver_one(e, &batch);
    }
    aiocb_free_flush(&batch);
    if (pool->bh_armed) {
        completion_bh_disarm(pool);
    } else if (!fifo_empty(&pool->done)) {
        /* A worker is half-way through its push: come back for it. */
        qemu_bh_schedule(pool->completion_bh);
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
 * Spin for up to pool->spin_ns, without the lock, until the inbox has
 * something; lock held on entry and exit.  Returns true when work arrived.
 * The spin time adapts: a spin that finds nothing halves it (down to no
 * spinning at all); a sleep that ends sooner than WORKER_SPIN_NS doubles
 * it (see worker_wait), since spinning would have caught that work.
 */
static bool worker_spin(ThreadPool *pool)
{
    int64_t start, limit = pool->spin_ns;
    bool found = false;

    if (!limit || aio_load(&pool->spinning)) {
        return false;
    }
    aio_store(&pool->spinning, 1);
    pthread_mutex_unlock(&pool->lock);
    start = aio_now_ns();
    do {
        /*
         * Look rarely: every look steals the inbox's cache line from the
         * submitter, and letting requests pile up a little means the next
         * requests are taken while still warm, several in a row.
         */
        for (int i = 0; i < SPIN_PAUSES; i++) {
            cpu_relax();
        }
        found = fifo_maybe_nonempty(&pool->inbox);
    } while (!found && aio_now_ns() - start < limit);
    pthread_mutex_lock(&pool->lock);
    aio_store(&pool->spinning, 0);
    if (!found) {
        pool->spin_ns = limit / 2 < SPIN_MIN_NS ? 0 : limit / 2;
    }
    return has_work(pool);
}

static void spin_grow(ThreadPool *pool)
{
    int64_t ns = pool->spin_ns ? pool->spin_ns * 2 : SPIN_MIN_NS;

    pool->spin_ns = ns > WORKER_SPIN_NS ? WORKER_SPIN_NS : ns;
}

/*
 * Wait for work with pool->lock held and nothing queued.  Returns false
 * when the worker should exit: it stayed idle for the idle timeout while
 * more than min_threads run.
 */
static bool worker_wait(ThreadPool *pool)
{
    struct timespec deadline;
    int64_t start, ns;
    int ret;

    if (worker_spin(pool) || pool->stopping ||
        pool->cur_threads > pool->max_threads) {
        return true;
    }
    /* Count ourselves idle, then look again: pairs with submission. */
    __atomic_fetch_add(&pool->idle_threads, 1, __ATOMIC_SEQ_CST);
    if (!fifo_empty(&pool->inbox)) {
        __atomic_fetch_sub(&pool->idle_threads, 1, __ATOMIC_RELAXED);
        return true;
    }
    start = aio_now_ns();
    ns = start + pool->idle_timeout_ns;
    deadline.tv_sec = ns / 1000000000LL;
    deadline.tv_nsec = ns % 1000000000LL;
    ret = pthread_cond_timedwait(&pool->work_cond, &pool->lock, &deadline);
    if (pool->wakeups) {
        aio_store(&pool->wakeups, pool->wakeups - 1);
    } else {
        __atomic_fetch_sub(&pool->idle_threads, 1, __ATOMIC_RELAXED);
    }
    if (aio_now_ns() - start < WORKER_SPIN_NS) {
        spin_grow(pool);
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

        if (!e && has_work(pool)) {
            /* A submission is half-way through its push: let it finish. */
            pthread_mutex_unlock(&pool->lock);
            sched_yield();
            pthread_mutex_lock(&pool->lock);
            continue;
        }
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
        aio_fatal("out of memory allocating a thread pool");
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
    fifo_init(&pool->inbox);
    fifo_init(&pool->done);
    pool->idle_timeout_ns = AIOCTX_THREAD_POOL_IDLE_TIMEOUT_NS_DEFAULT;
    pool->spin_ns = WORKER_SPIN_NS;
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
    AiocbFreeBatch batch = { 0 };
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
        e = fifo_pop_wait(&pool->done);
        if (!e) {
            break;
        }
        deliver_one(e, &batch);
    }
    aiocb_free_flush(&batch);
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
        if (!e->pprev) {
            inbox_drain(pool, e); /* still in the inbox: move it */
        }
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

BlockAIOCB *aio_thread_pool_submit(AioContext *ctx, int (*func)(void *),
                                   void *arg, BlockCompletionFunc *cb,
                                   void *opaque)
{
    ThreadPoolElement *e;
    ThreadPool *pool;

    pool = aio_load_acquire(&ctx->thread_pool);
    if (!pool) {
        pool = aio_get_thread_pool(ctx);
    }
    e = aiocb_alloc(sizeof(*e));
    /* Field by field: cheaper than zeroing the block first. */
    e->common.aiocb_info = &thread_pool_aiocb_info;
    e->common.bs = NULL;
    e->common.cb = cb;
    e->common.opaque = opaque;
    e->common.refcnt = 1;
    e->pool = pool;
    e->func = func;
    e->arg = arg;
    e->state = TP_QUEUED;
    e->ret = 0;
    e->pprev = NULL;
    aio_store(&pool->submitted, aio_load(&pool->submitted) + 1);
    if (aio_load(&pool->stopping)) {
        /* A callback run by the context's destruction submitted more. */
        e->state = TP_DONE;
        e->ret = -ECANCELED;
        done_push(pool, e);
        return &e->common;
    }

    fifo_push(&pool->inbox, &e->link);
    find_worker(pool);
    return &e->common;
}

AIOCTX_API BlockAIOCB *thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                                              BlockCompletionFunc *cb,
                                              void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();

    return ctx ? aio_thread_pool_submit(ctx, func, arg, cb, opaque) : NULL;
}

/* ---- the coroutine form ---- */

typedef struct {
    Coroutine *co;
    ThreadPool *pool;
    int ret;
} ThreadPoolCo;

static void submit_co_cb(void *opaque, int ret)
{
    ThreadPoolCo *tpc = opaque;

    tpc->ret = ret;
    if (aio_load(&tpc->pool->stopping)) {
        /* The context is being destroyed: resume the waiter right here. */
        qemu_coroutine_enter(tpc->co);
    } else {
        aio_co_wake(tpc->co);
    }
}

AIOCTX_API int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func,
                                                  void *arg)
{
    ThreadPoolCo tpc = { .co = qemu_coroutine_self(), .ret = -EINPROGRESS };
    AioContext *ctx = qemu_get_current_aio_context();

    if (!qemu_in_coroutine()) {
        aio_fatal("thread_pool_submit_co called outside a coroutine");
    }
    if (!ctx) {
        return -EINVAL;
    }
    tpc.pool = aio_get_thread_pool(ctx);
    thread_pool_submit_aio(func, arg, submit_co_cb, &tpc);
    qemu_coroutine_yield();
    return tpc.ret;
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

void aio_thread_pool_stats(AioContext *ctx, uint64_t *submitted,
                           uint64_t *completed, uint64_t *queued,
                           uint64_t *running)
{
    ThreadPool *pool = aio_load_acquire(&ctx->thread_pool);
    uint64_t jobs, busy;
    int cur, idle;

    *submitted = *completed = *queued = *running = 0;
    if (!pool) {
        return;
    }
    *submitted = aio_load(&pool->submitted);
    *completed = aio_load(&pool->completed);
    jobs = *submitted - *completed;
    if (jobs > *submitted) {
        jobs = 0; /* read out of order from another thread */
    }
    cur = aio_load(&pool->cur_threads);
    idle = aio_load(&pool->idle_threads);
    busy = cur > idle ? (uint64_t)(cur - idle) : 0;
    *running = busy < jobs ? busy : jobs;
    *queued = jobs - *running;
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
