/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: IOThread, a thread that runs its own AioContext.
 *
 * The thread creates the context, makes it the thread's current context
 * (qemu_get_current_aio_context() returns it there, so work submitted to
 * the thread pool from the thread's callbacks uses its pool), and runs
 * aio_poll(ctx, true) until iothread_destroy() stops it.  Other threads hand
 * it work with bottom halves, aio_co_schedule() and aio_co_wake().
 *
 * The thread starts with every signal blocked, has the thread name given at
 * creation (cut to 15 bytes) and busy-polls for up to
 * AIOCTX_IOTHREAD_POLL_MAX_NS_DEFAULT before sleeping (see
 * aio_context_set_poll_params()); iothread_set_poll_params() changes that.
 *
 * Errors (aioctx/error.h): iothread_create() takes Error **errp; the
 * others cannot fail.
 */
#ifndef AIOCTX_IOTHREAD_H
#define AIOCTX_IOTHREAD_H

#include <stdint.h>
#include <aioctx/export.h>
#include <aioctx/error.h>
#include <aioctx/aio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct IOThread IOThread;

/* Default adaptive busy-polling limit of an IOThread's context, in ns. */
#define AIOCTX_IOTHREAD_POLL_MAX_NS_DEFAULT 32768

/*
 * Start a thread named id (NULL: "iothread") running a new context on the
 * default engine (see aio_context_new()), and wait until its loop runs.
 * Returns the IOThread, or NULL with *errp set when the thread or the
 * context cannot be created.  Any thread.
 */
AIOCTX_API IOThread *iothread_create(const char *id, Error **errp);

/*
 * The IOThread's context; valid until iothread_destroy() (take a reference
 * with aio_context_ref() to keep it longer).  Any thread.
 */
AIOCTX_API AioContext *iothread_get_aio_context(IOThread *iothread);

/*
 * Stop the thread and wait for it to exit, then free iothread.  Bottom
 * halves and coroutines scheduled on its context before this call still
 * run (the stop request is itself a bottom half queued behind them).  The
 * thread drops its context reference as it exits; the context is destroyed
 * there unless someone else still holds a reference.  NULL is ignored.
 * Must not be called from the IOThread itself.
 */
AIOCTX_API void iothread_destroy(IOThread *iothread);

/*
 * Set the adaptive busy-polling parameters of the IOThread's context, as
 * aio_context_set_poll_params() does (max_ns 0 turns polling off).  Fails,
 * changing nothing, on negative values.  Any thread.  (libaioctx's own.)
 */
AIOCTX_API void iothread_set_poll_params(IOThread *iothread, int64_t max_ns,
                                         int64_t grow, int64_t shrink,
                                         Error **errp);

/* The id given at creation (never NULL).  Any thread. */
AIOCTX_API const char *iothread_get_id(IOThread *iothread);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_IOTHREAD_H */
