/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: the per-context worker thread pool and request cancellation.
 *
 * Every AioContext owns at most one pool, created the first time work is
 * submitted from the context's thread (or aio_get_thread_pool() is called).
 * A job's function runs in a worker thread; its completion callback runs
 * later in the context's own thread, from aio_poll().  Completions that
 * finish together are delivered by one bottom-half run, however many there
 * are.
 *
 * Sizing: aio_context_set_thread_pool_params() (aio.h) sets min and max.
 * Workers are started on demand while fewer than max exist and none is
 * idle; min of them stay alive; a worker beyond min that has been idle for
 * the pool's idle timeout (AIOCTX_THREAD_POOL_IDLE_TIMEOUT_NS_DEFAULT, 10
 * seconds, changeable with thread_pool_set_idle_timeout()) exits.  Lowering max on a
 * live pool makes surplus workers exit as soon as they finish their current
 * job; raising min starts workers at once.  Workers are named
 * "aioctx-worker" and run with every signal blocked.  A worker that runs out
 * of work busy-waits for up to 10 microseconds (one worker at a time)
 * before it sleeps, so that a steady stream of short jobs does not pay a
 * wake-up per job; the busy-wait shrinks to nothing while it keeps finding
 * no work, and grows back when work arrives soon after a worker slept.
 *
 * Destroying the context frees its pool: the queued jobs that no worker has
 * started are dropped (their functions never run), jobs that are running
 * are waited for, and then, still inside the aio_context_unref() call that
 * destroys the context and in its calling thread, the completion callback
 * of every request not delivered yet runs: -ECANCELED for the dropped ones,
 * the function's result for the others.  At that point the context is being
 * torn down: work those callbacks submit to it completes at once (in the
 * same call) with -ECANCELED, and they must not schedule bottom halves or
 * otherwise use the context.  A coroutine waiting in thread_pool_submit_co()
 * is entered directly (in that thread) and sees -ECANCELED or the result.
 *
 * Errors (aioctx/error.h): job results are the job function's own
 * (-errno by convention); calls returning int return 0 or -errno.
 */
#ifndef AIOCTX_THREAD_POOL_H
#define AIOCTX_THREAD_POOL_H

#include <stdint.h>
#include <aioctx/export.h>
#include <aioctx/aio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A job: runs in a worker thread; its return value is the request's result. */
typedef int ThreadPoolFunc(void *opaque);

typedef struct ThreadPool ThreadPool;

/* How long a worker beyond the pool's minimum stays idle before exiting. */
#define AIOCTX_THREAD_POOL_IDLE_TIMEOUT_NS_DEFAULT (10LL * 1000 * 1000 * 1000)

/*
 * The calling thread's current AioContext's pool (see
 * qemu_get_current_aio_context()) runs func(arg) in a worker thread; then
 * cb(opaque, ret) runs in that context's thread, from aio_poll(), with
 * func's return value, or with -ECANCELED when the request was cancelled
 * before a worker started it (func then never runs).  cb may be NULL.  cb is
 * never called from inside this function and runs exactly once.
 *
 * Returns the request, which stays valid until cb has returned (take a
 * reference with qemu_aio_ref() to keep it longer).  Returns NULL, and
 * nothing runs, when the calling thread has no current AioContext.
 * Thread: any thread that has a current AioContext (normally its home
 * thread).
 */
AIOCTX_API BlockAIOCB *thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                                              BlockCompletionFunc *cb,
                                              void *opaque);

/*
 * Run func(arg) in the current context's pool and wait for it, yielding
 * the calling coroutine meanwhile; returns func's result, or -ECANCELED when
 * the context was destroyed before a worker started it.  The coroutine
 * resumes in the context's thread.  Returns -EINVAL at once when the
 * calling thread has no current AioContext.  Coroutine only (aborts with a
 * message otherwise).
 */
AIOCTX_API int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func,
                                                  void *arg);

/*
 * Ask for a request's cancellation.  If no worker has started it yet, its
 * function will never run and its callback gets -ECANCELED; otherwise it
 * completes normally.  Either way the callback runs exactly once, later,
 * in the request's context thread.  The caller must hold a reference or be
 * sure the callback has not run yet.  Any thread.
 */
AIOCTX_API void bdrv_aio_cancel_async(BlockAIOCB *acb);

/*
 * Cancel like bdrv_aio_cancel_async() and wait until the callback has run,
 * running aio_poll() on the calling thread's current context meanwhile.
 * Call it from the thread of the context that completes the request (for a
 * thread-pool request: the context it was submitted from), before the
 * callback has run, and without holding a reference of your own
 * (qemu_aio_ref): it waits until its own temporary reference is the last
 * one.  Aborts with a message when the calling thread has no current
 * context.
 */
AIOCTX_API void bdrv_aio_cancel(BlockAIOCB *acb);

/*
 * ctx's pool, created (with no threads yet) if it does not exist.  Returns
 * NULL only when ctx is NULL.  Any thread.
 */
AIOCTX_API ThreadPool *aio_get_thread_pool(AioContext *ctx);

/*
 * Set how long, in nanoseconds, a worker beyond the pool's minimum waits
 * for work before it exits (default
 * AIOCTX_THREAD_POOL_IDLE_TIMEOUT_NS_DEFAULT).
 * Returns 0, or -EINVAL when pool is NULL or timeout_ns is not positive.
 * Takes effect for waits that start afterwards.  Any thread.  (libaioctx's
 * own; QEMU has no such call.)
 */
AIOCTX_API int thread_pool_set_idle_timeout(ThreadPool *pool,
                                            int64_t timeout_ns);

/*
 * Number of worker threads the pool has right now (started and not yet
 * exited).  A snapshot, for tests and monitoring.  Any thread.  (libaioctx's
 * own.)
 */
AIOCTX_API int thread_pool_get_thread_count(ThreadPool *pool);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_THREAD_POOL_H */
