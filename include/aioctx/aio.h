/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: the AioContext event loop.
 *
 * An AioContext is a small event loop: bottom halves (deferred callbacks),
 * file descriptor handlers, event notifiers and timers, all dispatched from
 * aio_poll() in the context's "home thread" (the thread that polls it).
 *
 * Thread rules, in short:
 *  - aio_poll(), aio_bh_poll(), aio_dispatch(), aio_prepare(), aio_pending()
 *    and aio_notify_accept() are for the home thread only, and two of them
 *    must never run on one context at the same time (nesting aio_poll() from
 *    a callback in the home thread is allowed);
 *  - scheduling bottom halves, aio_notify(), (un)registering handlers and
 *    taking/dropping references work from any thread;
 *  - callbacks always run in the home thread, inside aio_poll().
 *
 * Errors (aioctx/error.h): aio_context_new() takes Error **errp; calls
 * returning int return 0 or -errno; the others cannot fail.
 */
#ifndef AIOCTX_AIO_H
#define AIOCTX_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <aioctx/export.h>
#include <aioctx/error.h>
#include <aioctx/event-notifier.h>
#include <aioctx/timer.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef coroutine_fn
/* Marks functions that may only be called from a coroutine. */
#define coroutine_fn
#endif
#ifndef no_coroutine_fn
/* Marks functions that must not be called from a coroutine. */
#define no_coroutine_fn
#endif

/* The callback's name, for aio_bh_new() and friends. */
#define AIOCTX_STRINGIFY_(x) #x
#define AIOCTX_STRINGIFY(x) AIOCTX_STRINGIFY_(x)

typedef struct AioContext AioContext;
typedef struct QEMUBH QEMUBH;
typedef struct Coroutine Coroutine;
typedef struct BlockDriverState BlockDriverState; /* opaque, passed through */
typedef struct BlockAIOCB BlockAIOCB;
typedef void BlockCompletionFunc(void *opaque, int ret);

/*
 * Describes a kind of asynchronous request: the size to allocate for its
 * control block and how to cancel it.
 */
typedef struct AIOCBInfo {
    void (*cancel_async)(BlockAIOCB *acb);
    size_t aiocb_size;
} AIOCBInfo;

/*
 * The header every asynchronous request's control block starts with.
 * Public: aiocb_info, bs, cb, opaque.  refcnt is managed by
 * qemu_aio_ref()/qemu_aio_unref().
 */
struct BlockAIOCB {
    const AIOCBInfo *aiocb_info;
    BlockDriverState *bs;
    BlockCompletionFunc *cb;
    void *opaque;
    int refcnt;
};

/*
 * Allocate a zeroed control block of aiocb_info->aiocb_size bytes (at least
 * sizeof(BlockAIOCB)) and fill its header: aiocb_info, bs, cb, opaque and
 * one reference.  Returns it (never NULL; aborts when out of memory).  Any
 * thread.
 */
AIOCTX_API void *qemu_aio_get(const AIOCBInfo *aiocb_info,
                              BlockDriverState *bs, BlockCompletionFunc *cb,
                              void *opaque);

/* Take a reference on a control block (p is a BlockAIOCB *).  Any thread. */
AIOCTX_API void qemu_aio_ref(void *p);

/* Drop a reference; the last one frees the block.  NULL is ignored.  Any thread. */
AIOCTX_API void qemu_aio_unref(void *p);

/*
 * A flag set while a guarded bottom half's callback runs (see
 * aio_bh_new_guarded).  Public field: engaged_in_io.
 */
typedef struct MemReentrancyGuard {
    bool engaged_in_io;
} MemReentrancyGuard;

typedef void QEMUBHFunc(void *opaque);
typedef bool AioPollFn(void *opaque);
typedef void IOHandler(void *opaque);

/* ------------------------------------------------------------------ */
/* Creating and destroying contexts                                    */
/* ------------------------------------------------------------------ */

/* Options for aio_context_new_with_options().  Zero-initialise it. */
typedef struct AioContextOptions {
    /*
     * Engine name ("poll", "epoll", "io_uring", "linux-aio" or "auto"),
     * or NULL for the default: $AIOCTX_ENGINE if set, else the best engine
     * this machine supports.
     */
    const char *engine;
    /* New fields are only ever appended. */
} AioContextOptions;

/*
 * Create a context with the default engine: the AIOCTX_ENGINE environment
 * variable when it is set (an unknown or unusable name is an error), else the
 * best available engine.  Returns a context holding one reference, or NULL
 * with *errp set.  Any thread.
 */
AIOCTX_API AioContext *aio_context_new(Error **errp);

/*
 * Create a context as described by opts (NULL means all defaults).  An
 * unknown engine name fails with an error that lists the known names; an
 * engine the kernel refuses fails with the kernel's reason.  The engine
 * stays fixed for the context's life.  Any thread.
 */
AIOCTX_API AioContext *aio_context_new_with_options(
    const AioContextOptions *opts, Error **errp);

/* Take a reference.  Any thread. */
AIOCTX_API void aio_context_ref(AioContext *ctx);

/*
 * Drop a reference; the last one destroys the context.  Destruction frees
 * every bottom half (pending ones are not run), every registered handler
 * (their fds are not closed), disarms its timers and closes its own fds.
 * Must not be called for the last reference from inside the context's own
 * callbacks.  Any thread.
 */
AIOCTX_API void aio_context_unref(AioContext *ctx);

/*
 * fork(): a child process inherits the parent's contexts, but shares their
 * kernel objects (epoll set, io_uring ring, eventfd) with the parent and
 * has none of their worker threads.  The child must not use an inherited
 * context in any way, aio_context_unref() included (that would remove the
 * parent's registrations from the shared epoll set and wait for threads
 * that do not exist): it leaks it (or calls exec).  The child may create
 * fresh contexts, which work normally on every engine; the calling
 * thread's current context (qemu_get_current_aio_context()) is inherited
 * too and should be set to the fresh one (or NULL).  Forking leaves the
 * parent's contexts working as before.
 */

/*
 * Name of the engine the context uses: "poll", "epoll", "io_uring" or
 * "linux-aio".  The string is static.  Any thread.
 */
AIOCTX_API const char *aio_context_get_engine_name(AioContext *ctx);

/*
 * Whether the engine called name is compiled in and works on this machine
 * (probed without side effects).  "auto" is always available.  Any thread.
 */
AIOCTX_API bool aio_engine_available(const char *name);

/*
 * A recursive mutex for programs that share a context between threads and
 * want to exclude each other around aio_poll().  aio_poll() itself never
 * takes it.  Any thread.
 */
AIOCTX_API void aio_context_acquire(AioContext *ctx);
/* Release one level of aio_context_acquire().  The acquiring thread. */
AIOCTX_API void aio_context_release(AioContext *ctx);

/*
 * The AioContext whose loop runs in the calling thread, as set with
 * qemu_set_current_aio_context(), or NULL.  Any thread (thread-local).
 */
AIOCTX_API AioContext *qemu_get_current_aio_context(void);

/*
 * Declare ctx as the calling thread's context (NULL clears it).  No
 * reference is taken.  The calling thread.
 */
AIOCTX_API void qemu_set_current_aio_context(AioContext *ctx);

/* ------------------------------------------------------------------ */
/* Bottom halves                                                       */
/* ------------------------------------------------------------------ */

/*
 * Create a bottom half: a callback that aio_poll() runs in ctx's thread
 * after qemu_bh_schedule().  name is kept (not copied) for debugging and
 * may be NULL.  When reentrancy_guard is not NULL, its engaged_in_io is
 * set to true while cb runs and restored afterwards.  Returns the BH
 * (never NULL; aborts when out of memory).  Any thread.
 */
AIOCTX_API QEMUBH *aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb,
                                   void *opaque, const char *name,
                                   MemReentrancyGuard *reentrancy_guard);

/* aio_bh_new_full() with the callback's name and no guard. */
#define aio_bh_new(ctx, cb, opaque)                                            \
    aio_bh_new_full((ctx), (cb), (opaque), (AIOCTX_STRINGIFY(cb)), NULL)

/* aio_bh_new_full() with the callback's name and a reentrancy guard. */
#define aio_bh_new_guarded(ctx, cb, opaque, guard)                             \
    aio_bh_new_full((ctx), (cb), (opaque), (AIOCTX_STRINGIFY(cb)), guard)

/*
 * Run cb(opaque) once, soon, in ctx's thread, then forget it.  Lock-free
 * and callable from any thread.  Bottom halves scheduled from one thread
 * run in the order they were scheduled (but see qemu_bh_schedule() for
 * a BH that is still queued from an earlier request).
 */
AIOCTX_API void aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb,
                                             void *opaque, const char *name);

/* aio_bh_schedule_oneshot_full() with the callback's name. */
#define aio_bh_schedule_oneshot(ctx, cb, opaque)                               \
    aio_bh_schedule_oneshot_full((ctx), (cb), (opaque), (AIOCTX_STRINGIFY(cb)))

/*
 * Schedule bh: its callback runs once in a later aio_bh_poll() of its
 * context (one scheduled from inside a bottom half waits for the next
 * aio_bh_poll()).  Scheduling an already scheduled BH does nothing more.
 * One exception to order and timing: a BH still queued from an earlier
 * request that it did not run for (the request was cancelled, or it was
 * also scheduled from another thread and ran from the other entry) keeps
 * that place, so it may run before BHs scheduled earlier, or in the
 * aio_bh_poll() that is running.  It still runs once per request.
 * Lock-free, wakes a sleeping aio_poll(); any thread.
 */
AIOCTX_API void qemu_bh_schedule(QEMUBH *bh);

/*
 * Like qemu_bh_schedule(), but running bh does not count as progress and
 * does not stop aio_poll() from sleeping for up to 10 ms.  Any thread.
 */
AIOCTX_API void qemu_bh_schedule_idle(QEMUBH *bh);

/*
 * Undo qemu_bh_schedule() without freeing bh.  Lock-free; from another
 * thread it may lose the race with a running aio_bh_poll().  Any thread.
 */
AIOCTX_API void qemu_bh_cancel(QEMUBH *bh);

/*
 * Cancel bh and free it.  The memory is reclaimed by the context's next
 * aio_bh_poll() (or its destruction), so deleting a BH from inside its own
 * callback is safe.  Do not use bh afterwards.  Any thread.
 */
AIOCTX_API void qemu_bh_delete(QEMUBH *bh);

/* Run bh's callback now, honouring its reentrancy guard.  Home thread. */
AIOCTX_API void aio_bh_call(QEMUBH *bh);

/*
 * Run the bottom halves scheduled so far and reclaim deleted ones.  BHs
 * scheduled while it runs wait for the next call; a nested call (from a
 * BH that runs aio_poll) finishes the outer call's remaining BHs first.
 * Returns 1 if a non-idle BH ran, else 0.  Home thread.
 */
AIOCTX_API int aio_bh_poll(AioContext *ctx);

/* ------------------------------------------------------------------ */
/* Waking the loop                                                     */
/* ------------------------------------------------------------------ */

/*
 * Make a current or the next blocking aio_poll() of ctx return soon.  Only
 * writes the context's eventfd when a poller may be asleep.  Lock-free and
 * async-signal-safe; any thread.
 */
AIOCTX_API void aio_notify(AioContext *ctx);

/*
 * Acknowledge aio_notify(): clear the "notified" flag.  aio_poll() and
 * aio_dispatch() call it themselves; embedders driving the context by hand
 * call it before looking for work.  Home thread.
 */
AIOCTX_API void aio_notify_accept(AioContext *ctx);

/* ------------------------------------------------------------------ */
/* File descriptor handlers and event notifiers                        */
/* ------------------------------------------------------------------ */

/*
 * Watch fd.  io_read runs when fd is readable (or hung up/in error),
 * io_write when it is writable; io_poll, if given with io_poll_ready, is
 * called while the loop busy-polls (see aio_context_set_poll_params) and
 * must return whether there is work without doing it; io_poll_ready then
 * does the work.  Calling again for the same fd replaces the callbacks;
 * all of io_read, io_write and io_poll NULL removes the handler.  A handler
 * may add, change or remove any handler, itself included, while it runs.
 * A negative fd is ignored.  Unregister before closing fd.  Any thread
 * (from another thread, a callback of the old handler may still be
 * running in the home thread).
 *
 * Out of memory (the call returns nothing, so it cannot tell the caller):
 * nothing changes - a new fd stays unwatched, a replaced handler keeps its
 * old callbacks - and an AIO_LOG_ERROR message naming the fd goes to the
 * log handler (aioctx/log.h).  Removal never allocates.  The same holds
 * for aio_set_event_notifier().
 *
 * An fd closed while its handler is still registered: removing the
 * handler afterwards (all callbacks NULL, same fd number) is safe, also
 * when the number was reused meanwhile, and a descriptor that gets the
 * number later starts clean: it sees only its own events.  Until the
 * removal, the epoll-based engines (io_uring, linux-aio, epoll) no longer
 * report the closed fd, while the poll engine reports it on every
 * iteration and calls io_read, whose reads fail with EBADF; a number
 * reused before the removal may have its events delivered to the old
 * handler.  This only holds when the closed fd was the last descriptor of
 * its open file: epoll keeps watching an open file that a dup()ed, passed
 * or fork-inherited descriptor still refers to, and the library cannot
 * remove it once the number is gone - unregister first in that case.
 */
AIOCTX_API void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                                   IOHandler *io_write, AioPollFn *io_poll,
                                   IOHandler *io_poll_ready, void *opaque);

/*
 * Watch an EventNotifier's read descriptor: io_read(notifier) runs when it
 * is set (io_read should clear it).  io_poll/io_poll_ready as above.  All
 * NULL removes it.  Any thread.
 */
AIOCTX_API void aio_set_event_notifier(AioContext *ctx,
                                       EventNotifier *notifier,
                                       EventNotifierHandler *io_read,
                                       AioPollFn *io_poll,
                                       EventNotifierHandler *io_poll_ready);

/*
 * Set the callbacks run when busy-polling of an already registered
 * notifier starts and ends.  Does nothing if notifier is not registered.
 * Any thread.
 */
AIOCTX_API void aio_set_event_notifier_poll(AioContext *ctx,
                                            EventNotifier *notifier,
                                            EventNotifierHandler *io_poll_begin,
                                            EventNotifierHandler *io_poll_end);

/* ------------------------------------------------------------------ */
/* Timers (see aioctx/timer.h)                                         */
/* ------------------------------------------------------------------ */

/*
 * The context's timer list group, for timer_new_full() and
 * timer_init_full().  Valid while the context lives.  NULL for a NULL
 * context.  Any thread.
 */
AIOCTX_API QEMUTimerListGroup *aio_get_timer_list_group(AioContext *ctx);

/*
 * Allocate a timer on clock type whose callback cb(opaque) runs in ctx's
 * thread; deadlines are in units of scale ns; attributes are kept for
 * timer_get_attributes().  The timer belongs to the caller: release it
 * with timer_free(), before or after the context is destroyed (destroying
 * a context disarms its timers without running them).  Returns NULL for a
 * NULL context or bad arguments (see timer_new_full).  Any thread.
 */
AIOCTX_API QEMUTimer *aio_timer_new_with_attrs(AioContext *ctx,
                                               QEMUClockType type, int scale,
                                               int attributes,
                                               QEMUTimerCB *cb, void *opaque);

/* aio_timer_new_with_attrs() with no attributes. */
AIOCTX_API QEMUTimer *aio_timer_new(AioContext *ctx, QEMUClockType type,
                                    int scale, QEMUTimerCB *cb, void *opaque);

/*
 * Initialise caller-owned storage ts as a timer of ctx (see
 * aio_timer_new_with_attrs); release it with timer_deinit() or just stop
 * using it once it is idle.  A NULL context or bad arguments abort with a
 * message.  Any thread.
 */
AIOCTX_API void aio_timer_init_with_attrs(AioContext *ctx, QEMUTimer *ts,
                                          QEMUClockType type, int scale,
                                          int attributes, QEMUTimerCB *cb,
                                          void *opaque);

/* aio_timer_init_with_attrs() with no attributes. */
AIOCTX_API void aio_timer_init(AioContext *ctx, QEMUTimer *ts,
                               QEMUClockType type, int scale, QEMUTimerCB *cb,
                               void *opaque);

/* ------------------------------------------------------------------ */
/* Running the loop                                                    */
/* ------------------------------------------------------------------ */

/*
 * Run one iteration: bottom halves, ready fd handlers, expired timers.
 * With blocking true and nothing to do, sleep until a bottom half, fd,
 * timer or aio_notify() wakes it (busy-polling first when enabled).
 * Returns true if a callback made progress: a wake-up by aio_notify()
 * alone returns false, so callers loop "while (cond) aio_poll(ctx, true)".
 * A blocking call returns only after progress, an aio_notify() (which
 * aio_context_stop() and cross-thread qemu_bh_schedule() use), or the
 * deadline of the earliest timer: a signal that interrupts the wait makes
 * it wait again for the time that is left.
 * A BH scheduled by this thread while inside aio_poll() costs no atomic
 * read-modify-write and no wake-up.
 * Home thread; may nest inside callbacks.
 */
AIOCTX_API bool no_coroutine_fn aio_poll(AioContext *ctx, bool blocking);

/*
 * Nanoseconds a blocking aio_poll() would sleep: 0 when a bottom half is
 * scheduled or a timer expired, at most 10 ms with idle bottom halves,
 * else the nearest timer deadline, or -1 (forever).  Home thread.
 */
AIOCTX_API int64_t aio_compute_timeout(AioContext *ctx);

/*
 * For a foreign loop about to sleep on this context: announce that the
 * caller may sleep, so aio_notify() will write the context's fd from now
 * on, and return true if there is work already (the caller should then not
 * sleep).  Pair with aio_dispatch().  Home thread.
 */
AIOCTX_API bool aio_prepare(AioContext *ctx);

/*
 * Whether aio_dispatch() would run something now: a scheduled bottom half,
 * an expired timer or a ready fd (checked without blocking).  Home thread.
 */
AIOCTX_API bool aio_pending(AioContext *ctx);

/*
 * Run everything that is ready without sleeping: acknowledge notifications,
 * run bottom halves, ready handlers and expired timers.  Ends the
 * "may sleep" window opened by aio_prepare().  Home thread.
 */
AIOCTX_API void aio_dispatch(AioContext *ctx);

/* ------------------------------------------------------------------ */
/* Coroutines in a context (see aioctx/coroutine.h)                    */
/* ------------------------------------------------------------------ */

/*
 * Make co run in ctx's thread: it is queued on ctx and entered, in the
 * order scheduled, by the next aio_poll() there.  co must have yielded
 * (or be co itself, scheduling itself in its own context before it
 * yields), must not be entered by anyone else until it runs, and must not
 * be scheduled already (that aborts with a message).  Holds a reference on
 * ctx while queueing; lock-free.  Any thread.
 */
AIOCTX_API void aio_co_schedule(AioContext *ctx, Coroutine *co);

/*
 * Move the calling coroutine to new_ctx: it yields and is scheduled there
 * once it has switched out, and returns running in new_ctx's thread.
 * Does nothing when new_ctx is already the current context.  Coroutine
 * only.
 */
AIOCTX_API void coroutine_fn aio_co_reschedule_self(AioContext *new_ctx);

/*
 * Resume co, which has yielded, in the context it last ran in: as
 * aio_co_enter(that context, co).  Any thread, inside or outside a
 * coroutine.
 */
AIOCTX_API void aio_co_wake(Coroutine *co);

/*
 * Resume co in ctx.  From another thread than ctx's, this is
 * aio_co_schedule(ctx, co).  In ctx's thread outside a coroutine, co runs
 * at once.  In ctx's thread inside a coroutine, co runs right after the
 * calling coroutine yields or terminates (so coroutines waking each other
 * do not nest).  A NULL ctx (co never ran, or ran in a thread without a
 * context) means the calling thread's current context.  Any thread.
 */
AIOCTX_API void aio_co_enter(AioContext *ctx, Coroutine *co);

/* ------------------------------------------------------------------ */
/* Tuning                                                              */
/* ------------------------------------------------------------------ */

/*
 * Adaptive busy-polling.  Before sleeping, aio_poll() calls the handlers'
 * io_poll callbacks for up to the current poll time; the poll time starts
 * at 0, grows (by grow, default 2, first step 4 us) while short sleeps
 * keep happening, and shrinks (divided by shrink, or reset to 0 when shrink
 * is 0) when a sleep exceeds max_ns.  max_ns 0 disables polling (the
 * default).  Polling only happens while every registered handler has an
 * io_poll callback.  Negative values fail with an error and change
 * nothing.  Any thread.
 */
AIOCTX_API void aio_context_set_poll_params(AioContext *ctx, int64_t max_ns,
                                            int64_t grow, int64_t shrink,
                                            Error **errp);

/*
 * True when some registered handler lacks io_poll, which disables busy
 * polling for the whole context.  Any thread (a snapshot).
 */
AIOCTX_API bool aio_poll_disabled(AioContext *ctx);

/*
 * Limit how many file I/O requests an engine submits in one batch; 0 means
 * the engine's default.  Negative fails.  Any thread.
 */
AIOCTX_API void aio_context_set_aio_params(AioContext *ctx, int64_t max_batch,
                                           Error **errp);

/*
 * Bounds for the context's worker thread pool: min threads kept alive, at
 * most max running.  Fails when min < 0, max < 1 or min > max; defaults
 * are 0 and 64.  Applies at once to a pool that already runs: raising min
 * starts threads, lowering max makes the surplus exit after their current
 * job (see aioctx/thread-pool.h).  Any thread.
 */
AIOCTX_API void aio_context_set_thread_pool_params(AioContext *ctx,
                                                   int64_t min, int64_t max,
                                                   Error **errp);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_AIO_H */
