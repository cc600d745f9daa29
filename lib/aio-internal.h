/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private structures shared by the files of lib/ that implement the
 * AioContext core.  Nothing here is visible to programs.
 */
#ifndef AIOCTX_AIO_INTERNAL_H
#define AIOCTX_AIO_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aioctx/aio.h"
#include "engine.h"
#include "util/atomic.h"
#include "util/lockcnt.h"
#include "util/now.h"

/* ---- fd handlers (handlers.c) ---- */

struct AioHandler {
    AioContext *ctx;
    int fd;
    int events; /* POLLIN|POLLHUP|POLLERR for io_read, POLLOUT|POLLERR */
    IOHandler *io_read;
    IOHandler *io_write;
    AioPollFn *io_poll;
    IOHandler *io_poll_ready;
    IOHandler *io_poll_begin;
    IOHandler *io_poll_end;
    void *opaque;
    bool deleted;             /* atomic: removed or replaced */
    bool is_notifier;         /* the context's own notifier: never progress */
    bool poll_ready;          /* io_poll said ready; io_poll_ready must run */
    bool in_poll_ready;       /* io_poll_ready is running: do not poll again */
    unsigned poll_ready_runs; /* io_poll_ready calls; home thread */
    int revents;
    /* All handlers; walkers follow next with acquire loads. */
    AioHandler *next;
    AioHandler **pprev;
    /* Membership of one ready list at a time. */
    AioHandler *ready_next;
    AioHandler **ready_pprev;
    alignas(max_align_t) unsigned char engine_priv[];
};


/* ---- bottom halves (bh.c) ---- */

/* What one aio_bh_poll() took: the home FIFO, then the remote FIFO. */
typedef struct BHSlice BHSlice;
struct BHSlice {
    QEMUBH *home;
    QEMUBH *remote;
    BHSlice *next;
};

/* ---- the context ---- */

/* The counters behind aio_context_get_stats() (aioctx/stats.h). */
typedef struct AioStats {
    uint64_t iterations;
    uint64_t waits;
    uint64_t wait_ns;
    uint64_t bh_runs;
    uint64_t fd_dispatches;
    uint64_t poll_hits;
    uint64_t poll_misses;
    uint64_t timers_fired;
    uint64_t file_submitted;
    uint64_t file_completed;
} AioStats;

struct AioContext {
    unsigned refcnt; /* atomic */
    const AioEngineOps *engine;
    void *engine_priv;
    pthread_mutex_t acquire_lock; /* recursive; aio_context_acquire */

    /*
     * Bottom halves: a lock-free LIFO that any thread pushes onto.  The
     * notify_me protocol sits in the same cache line: qemu_bh_schedule()
     * from another thread writes both, and the home thread reads both.
     * home_thread is read by those threads too; nothing the home thread
     * writes on every iteration shares the line.
     */
    alignas(64) QEMUBH *bh_list;
    unsigned notify_me; /* atomic: 2 per aio_poll about to sleep, 1 prepare */
    bool notified;      /* atomic */
    /*
     * The home thread (bh.c): the thread that polled last, by
     * aio_thread_id().  home_busy brackets its appends from outside
     * aio_poll() (atomic, both).
     */
    uint64_t home_thread;
    bool home_busy;
    /* BHs scheduled by the home thread; its own line. */
    alignas(64) QEMUBH *home_head;
    QEMUBH **home_tailp;
    /* Slices being run by (nested) aio_bh_poll calls; home thread only. */
    BHSlice *slice_head;
    BHSlice **slice_tailp;
    /* One-shot BHs kept for reuse by the thread that runs them (bh.c). */
    QEMUBH *oneshot_cache;
    unsigned oneshot_cached;
    /* Loop metrics (stats.c): written by the home thread only. */
    AioStats stats;
    /* Every BH made by aio_bh_new_full, so destruction can free it. */
    pthread_mutex_t bh_all_lock;
    QEMUBH *bh_all;

    /* The context's own notifier, written by aio_notify(). */
    EventNotifier notifier;
    /* Engine waits that failed in a row (poll.c); home thread. */
    unsigned wait_failures;

    /* fd handlers. */
    AioLockCnt list_lock;
    AioHandler *handlers;
    AioHandler **by_fd; /* live handler per fd number */
    int by_fd_size;
    int handler_count;
    int deleted_count;
    int poll_disable_cnt; /* handlers without io_poll */

    /* Adaptive polling. */
    int64_t poll_ns;
    int64_t poll_max_ns;
    int64_t poll_grow;
    int64_t poll_shrink;
    bool poll_started;
    bool poll_reset; /* atomic: parameters changed, poll_ns back to 0 */

    /* Timers: one list per clock (timer.c). */
    QEMUTimerListGroup *tlg;

    /* aio_co_schedule's lock-free LIFO and its BH (co-schedule.c). */
    Coroutine *scheduled_coroutines;
    QEMUBH *co_schedule_bh;

    /* Parameters kept for file I/O and the thread pool. */
    int64_t aio_max_batch;
    int thread_pool_min;
    int thread_pool_max;
    struct ThreadPool *thread_pool; /* atomic; created on first use */
    /* File I/O front end (file-io.c); atomic, created on first use. */
    struct AioFileState *file_state;
    /* File-to-fd transfers (file-transfer.c); home thread, on first use. */
    struct AioXferState *xfer_state;

    /* Threads inside bh_enqueue() from outside; ctx_free() waits. */
    unsigned enqueuers;

    /* The loop driver (loop.c). */
    bool run_stop;              /* atomic: aio_context_stop() pending */
    struct AioSignals *signals; /* home thread; made by add_signal */
};

/* stats.c */

/* Count one more: a relaxed load and store, no locked instruction. */
#define aio_stat_add(ctx, field, n)                                            \
    aio_store(&(ctx)->stats.field, aio_load(&(ctx)->stats.field) + (n))

/* bh.c */
void aio_bh_init_ctx(AioContext *ctx);
/* aio_bh_new() for the library's own BHs: NULL when out of memory. */
QEMUBH *aio_bh_try_new(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                       const char *name);
void aio_bh_destroy_ctx(AioContext *ctx);
/* 0 if a non-idle BH is scheduled, 10 ms if only idle ones, else -1. */
int64_t aio_bh_timeout(AioContext *ctx);
/*
 * Is the remote BH list non-empty?  A sequentially consistent load: call
 * it after announcing a sleep in notify_me.
 */
bool aio_bh_remote_pending(AioContext *ctx);
/*
 * The context whose aio_poll() the calling thread is inside (innermost),
 * or NULL.  aio_poll() brackets its iteration with aio_bh_enter_poll() and
 * aio_bh_leave_poll(): BHs that the thread schedules on that context in
 * between take the home path (bh.c).
 */
extern __thread AioContext *aio_tls_polling_ctx
    __attribute__((tls_model("initial-exec")));

/* A number for the calling thread, never reused; 0 until first asked. */
extern __thread uint64_t aio_tls_thread_id
    __attribute__((tls_model("initial-exec")));
uint64_t aio_thread_id_slow(void);

static inline uint64_t aio_thread_id(void)
{
    uint64_t id = aio_tls_thread_id;

    return id ? id : aio_thread_id_slow();
}

/* Make the calling thread ctx's home thread (bh.c). */
void aio_bh_take_home(AioContext *ctx);
/* Once per process, before the first context: set up the home fences. */
void aio_bh_global_init(void);

static inline AioContext *aio_bh_enter_poll(AioContext *ctx)
{
    AioContext *outer = aio_tls_polling_ctx;

    if (__builtin_expect(aio_load(&ctx->home_thread) != aio_thread_id(), 0)) {
        aio_bh_take_home(ctx);
    }
    aio_tls_polling_ctx = ctx;
    return outer;
}

static inline void aio_bh_leave_poll(AioContext *outer)
{
    aio_tls_polling_ctx = outer;
}

/*
 * context.c: the calling thread's current context (what
 * qemu_get_current_aio_context() returns).  Read it directly only where
 * no coroutine switch can come between the read and the use: a coroutine
 * may resume in another thread.
 */
extern __thread AioContext *aio_tls_current_ctx
    __attribute__((tls_model("initial-exec")));

/* co-schedule.c */
/*
 * Create the context's co_schedule_bh; called right after aio_bh_init_ctx.
 * False when out of memory.
 */
bool aio_co_init_ctx(AioContext *ctx);
/* Abort if coroutines are still scheduled; delete co_schedule_bh. */
void aio_co_destroy_ctx(AioContext *ctx);

/* timer.c */
/* A context's timer list group, registered for clock changes; NULL: ENOMEM. */
QEMUTimerListGroup *aio_timers_new(AioContext *ctx);
/* Unregister, disarm every pending timer (running nothing) and free. */
void aio_timers_free(QEMUTimerListGroup *tlg);
/*
 * Nanoseconds until the nearest deadline over the enabled clocks: -1 when
 * nothing is armed, 0 when a timer is due.  Called by the thread about to
 * sleep on the context (it becomes the group's polling thread).
 */
int64_t aio_timers_deadline_ns(QEMUTimerListGroup *tlg);
/* Run the due timers of every clock, in clock order; returns how many. */
unsigned aio_timers_run(QEMUTimerListGroup *tlg);

/* aiocb.c */
/*
 * Memory for a control block of size bytes, uninitialised, aligned like
 * malloc's (never NULL: aborts when out of memory); give it back with
 * aiocb_free() (qemu_aio_unref() does), never free().  Any thread.
 */
void *aiocb_alloc(size_t size);
void aiocb_free(void *p);
/*
 * aiocb_free() for many blocks in a row in one thread: consecutive blocks
 * from one slab cost one atomic operation.  Start from { 0 } and call
 * aiocb_free_flush() before the batch goes out of scope.
 */
typedef struct AiocbFreeBatch {
    void *slab;
    unsigned n;
} AiocbFreeBatch;
void aiocb_free_batched(AiocbFreeBatch *b, void *p);
void aiocb_free_flush(AiocbFreeBatch *b);

/* thread-pool.c */
/*
 * Free ctx's pool, if any: drop queued jobs, wait for running ones, run the
 * undelivered callbacks in the calling thread.  First step of destruction.
 */
void aio_thread_pool_destroy_ctx(AioContext *ctx);
/*
 * Jobs submitted and completed, and waiting for or being run by a worker
 * now (an estimate: workers not sleeping count as running), for
 * aio_context_get_stats().  Any thread; zeroes when ctx has no pool.
 */
void aio_thread_pool_stats(AioContext *ctx, uint64_t *submitted,
                           uint64_t *completed, uint64_t *queued,
                           uint64_t *running);
/* Apply ctx->thread_pool_min/max to a live pool (no-op without one). */
void aio_thread_pool_update_params(AioContext *ctx);
/*
 * thread_pool_submit_aio() on ctx's pool rather than the calling thread's
 * current context's; any thread.  The callback runs in ctx's thread.
 */
BlockAIOCB *aio_thread_pool_submit(AioContext *ctx, int (*func)(void *),
                                   void *arg, BlockCompletionFunc *cb,
                                   void *opaque);

/*
 * file-io.c: second destruction step, right after the pool's: complete
 * the outstanding file I/O (see aioctx/file-io.h) and free its state.
 */
void aio_file_destroy_ctx(AioContext *ctx);

/*
 * file-transfer.c: first destruction step, before the pool's: complete the
 * transfers not in a worker, ask the workers' ones to stop (the pool's
 * destruction then completes them) and free the state with the last one.
 */
void aio_transfer_destroy_ctx(AioContext *ctx);

/* loop.c: close the signalfd and free the signal table (destruction). */
void aio_loop_destroy_ctx(AioContext *ctx);

/*
 * handlers.c: aio_set_fd_handler() for the library's own descriptors too
 * (is_notifier: the context's notifier, whose wake-ups are not progress).
 * Returns false, changing nothing, when out of memory.
 */
bool aio_set_fd_handler_full(AioContext *ctx, int fd, IOHandler *io_read,
                             IOHandler *io_write, AioPollFn *io_poll,
                             IOHandler *io_poll_ready, void *opaque,
                             bool is_notifier);
void aio_handlers_destroy_ctx(AioContext *ctx);
/* Run the ready list; returns progress. */
bool aio_dispatch_ready(AioContext *ctx, AioReadyList *ready);
/* True when the context's own notifier is the only node in ready. */
bool aio_ready_list_only_notifier(const AioReadyList *ready);
/* Free handlers marked deleted if the caller is the only walker. */
void aio_free_deleted_handlers(AioContext *ctx);
/*
 * Start or stop busy-polling mode (io_poll_begin/io_poll_end); when
 * stopping, poll each handler once more.  Returns progress; *any_ready
 * is set when something (even the notifier) was found ready.
 */
bool aio_poll_set_started(AioContext *ctx, AioReadyList *ready, bool started,
                          bool *any_ready);
/*
 * Call every io_poll once; ready ones join ready (unless it is NULL).
 * Returns progress; *any_ready is set if anything, even the notifier, was.
 */
bool aio_run_poll_handlers_once(AioContext *ctx, AioReadyList *ready,
                                bool *any_ready);

#endif /* AIOCTX_AIO_INTERNAL_H */
