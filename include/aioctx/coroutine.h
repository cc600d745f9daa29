/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: coroutines and the primitives that synchronize them.
 *
 * A coroutine is a function with its own stack that can suspend itself
 * (qemu_coroutine_yield) and be resumed later (qemu_coroutine_enter, or
 * aio_co_wake / aio_co_schedule from aioctx/aio.h, which also work across
 * threads).  Entering runs the coroutine in the calling thread until it
 * yields or returns; a coroutine whose function returned is recycled
 * automatically, so its pointer must not be used afterwards.
 *
 * Threads: coroutines work in any thread, with or without an AioContext.
 * A coroutine always runs in one thread at a time, but may resume in a
 * different thread than the one it yielded in (aio_co_schedule to another
 * thread's context).  The functions that wait for an fd or a timer need the
 * calling thread to have a current AioContext (qemu_set_current_aio_context)
 * whose loop runs; waking a coroutine from another thread needs the
 * coroutine to live in a thread with an AioContext.
 *
 * Stacks are mmap()ed with an inaccessible guard page below them (an
 * overflow faults instead of corrupting memory); see
 * AIOCTX_COROUTINE_STACK_SIZE_DEFAULT and qemu_coroutine_set_stack_size().
 * Finished coroutines are kept in a per-thread pool (bounded, with a
 * shared overflow pool), so creating one is usually just a few stores.
 *
 * The aio_co_schedule / aio_co_wake / aio_co_enter / aio_co_reschedule_self
 * functions are declared in aioctx/aio.h, next to the context they use.
 *
 * Errors (aioctx/error.h): calls returning int or ssize_t return -errno
 * on failure; the others cannot fail.
 */
#ifndef AIOCTX_COROUTINE_H
#define AIOCTX_COROUTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <aioctx/export.h>
#include <aioctx/timer.h>
#include <aioctx/aio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The function a coroutine runs; when it returns, the coroutine ends. */
typedef void coroutine_fn CoroutineEntry(void *opaque);

/* ------------------------------------------------------------------ */
/* Creating, entering and yielding                                     */
/* ------------------------------------------------------------------ */

/*
 * Create a coroutine that will run entry(opaque) when first entered.  It
 * does not run yet.  Takes a finished coroutine from the pool when one is
 * there, else maps a new stack.  Never returns NULL (aborts when no stack
 * can be mapped).  Any thread.
 */
AIOCTX_API Coroutine *qemu_coroutine_create(CoroutineEntry *entry,
                                            void *opaque);

/*
 * Run co in the calling thread until it yields or returns, with the
 * calling thread's current AioContext as its context.  Coroutines it
 * woke with aio_co_wake()/aio_co_enter() run right after it, in the order
 * woken.  Entering a coroutine that is running, has already been entered,
 * is scheduled (aio_co_schedule, a sleep) or has terminated aborts with a
 * message.  Any thread, inside or outside a coroutine.
 */
AIOCTX_API void qemu_coroutine_enter(Coroutine *co);

/* qemu_coroutine_enter() with an explicit context (may be NULL). */
AIOCTX_API void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co);

/*
 * Enter co unless it is already entered (running, or waiting for a
 * coroutine it entered).  Any thread.
 */
AIOCTX_API void qemu_coroutine_enter_if_inactive(Coroutine *co);

/*
 * Suspend the calling coroutine and return to whoever entered it.
 * Returns when the coroutine is entered again.  Aborts outside a
 * coroutine.  Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_coroutine_yield(void);

/*
 * The calling coroutine; outside any coroutine, an object that stands for
 * the thread itself.  Never NULL.  Any thread.
 */
AIOCTX_API Coroutine *qemu_coroutine_self(void);

/* Whether the caller runs inside a coroutine.  Any thread. */
AIOCTX_API bool qemu_in_coroutine(void);

/*
 * Whether co has been entered and has not yielded since: it is running,
 * or waiting for a coroutine it entered itself.  Any thread (a snapshot).
 */
AIOCTX_API bool qemu_coroutine_entered(Coroutine *co);

/*
 * The AioContext co last ran in (NULL if it never ran, or ran in a thread
 * without one).  Any thread (a snapshot).
 */
AIOCTX_API AioContext *qemu_coroutine_get_aio_context(Coroutine *co);

/* ------------------------------------------------------------------ */
/* Stacks and the pool (libaioctx additions)                           */
/* ------------------------------------------------------------------ */

/* The stack size of new coroutines unless changed: 1 MiB. */
#define AIOCTX_COROUTINE_STACK_SIZE_DEFAULT (1024 * 1024)

/* Smallest stack size accepted by qemu_coroutine_set_stack_size(). */
#define AIOCTX_COROUTINE_STACK_SIZE_MIN (16 * 1024)

/*
 * Set the usable stack size of coroutines created from now on (rounded up
 * to whole pages; the guard page comes on top).  Pooled coroutines with a
 * different size are unmapped instead of reused.  Returns 0, or -EINVAL
 * when size is below AIOCTX_COROUTINE_STACK_SIZE_MIN or above 1 GiB.
 * Any thread.
 */
AIOCTX_API int qemu_coroutine_set_stack_size(size_t size);

/* The usable stack size new coroutines get.  Any thread. */
AIOCTX_API size_t qemu_coroutine_get_stack_size(void);

/*
 * Let each thread's pool and the shared overflow pool keep n more
 * finished coroutines (the defaults are 64 per thread, 1024 shared).
 * Any thread.
 */
AIOCTX_API void qemu_coroutine_inc_pool_size(unsigned int n);

/* Undo qemu_coroutine_inc_pool_size(n).  Any thread. */
AIOCTX_API void qemu_coroutine_dec_pool_size(unsigned int n);

/* ------------------------------------------------------------------ */
/* CoMutex: a mutex for coroutines                                     */
/* ------------------------------------------------------------------ */

/*
 * A mutex whose waiters yield instead of blocking the thread.  Waiters are
 * served in FIFO order and ownership is handed straight to the next one
 * (no barging while coroutines wait).  Coroutines of different threads may
 * share one: a waiter is resumed in its own context with aio_co_wake().
 * A coroutine must not terminate while holding one.
 *
 * Complete so it can be embedded; every field is private.  A zero-filled
 * CoMutex is an unlocked one, but call qemu_co_mutex_init() anyway.
 */
typedef struct CoMutex {
    unsigned locked;          /* private: 1 while owned or handed off */
    unsigned spin;            /* private: guards the waiter list */
    Coroutine *holder;        /* private */
    AioContext *ctx;          /* private: holder's context */
    Coroutine *waiters_head;  /* private: FIFO of waiting coroutines */
    Coroutine *waiters_tail;  /* private */
} CoMutex;

/* Initialise an unlocked mutex.  Any thread. */
AIOCTX_API void qemu_co_mutex_init(CoMutex *mutex);

/*
 * Take the mutex, yielding until it is handed over when it is taken.
 * Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_mutex_lock(CoMutex *mutex);

/*
 * Release the mutex, which the calling coroutine must hold (aborts
 * otherwise), handing it to the first waiter, which is woken with
 * aio_co_wake().  Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_mutex_unlock(CoMutex *mutex);

/* Abort unless the calling coroutine holds mutex.  Coroutine only. */
AIOCTX_API void qemu_co_mutex_assert_locked(CoMutex *mutex);

/* ------------------------------------------------------------------ */
/* CoQueue: a FIFO of waiting coroutines                               */
/* ------------------------------------------------------------------ */

/*
 * A list of coroutines waiting for something, woken in FIFO order with
 * aio_co_wake().  Not thread-safe by itself: guard it with the CoMutex
 * passed to qemu_co_queue_wait(), or use it from one thread.
 *
 * Complete so it can be embedded; both fields are private.  Zero-filled
 * means empty.
 */
typedef struct CoQueue {
    Coroutine *head; /* private */
    Coroutine *tail; /* private */
} CoQueue;

/* Initialise an empty queue.  Any thread. */
AIOCTX_API void qemu_co_queue_init(CoQueue *queue);

/*
 * Append the calling coroutine to queue, release lock (unless NULL),
 * yield until woken, then take lock again.  Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_queue_wait(CoQueue *queue, CoMutex *lock);

/*
 * Wake the first waiting coroutine (with aio_co_wake(): from a coroutine
 * of the same context it runs after the caller yields).  Returns whether
 * there was one.  Any thread holding the queue's lock.
 */
AIOCTX_API bool coroutine_fn qemu_co_queue_next(CoQueue *queue);

/* Wake every waiting coroutine, in FIFO order.  As qemu_co_queue_next(). */
AIOCTX_API void coroutine_fn qemu_co_queue_restart_all(CoQueue *queue);

/*
 * Take the first waiter off queue, release lock (unless NULL) while waking
 * it with aio_co_wake(), then take lock again.  Returns whether there was
 * one.  Outside a coroutine, lock must be NULL.
 */
AIOCTX_API bool qemu_co_enter_next(CoQueue *queue, CoMutex *lock);

/* Whether no coroutine waits on queue.  Any thread holding its lock. */
AIOCTX_API bool qemu_co_queue_empty(CoQueue *queue);

/* ------------------------------------------------------------------ */
/* CoRwlock: a reader/writer lock for coroutines                       */
/* ------------------------------------------------------------------ */

typedef struct CoRwTicket CoRwTicket;

/*
 * Many readers or one writer.  Requests that cannot be granted queue up in
 * FIFO order; a queued writer stops new readers from joining, so writers
 * are not starved.  A coroutine must not terminate while holding it.
 *
 * Complete so it can be embedded; every field is private.  Zero-filled
 * means unlocked.
 */
typedef struct CoRwlock {
    CoMutex mutex;            /* private: guards the fields below */
    int owners;               /* private: readers, or -1 for a writer */
    CoRwTicket *tickets_head; /* private: FIFO of waiting requests */
    CoRwTicket *tickets_tail; /* private */
} CoRwlock;

/* Initialise an unlocked rwlock.  Any thread. */
AIOCTX_API void qemu_co_rwlock_init(CoRwlock *lock);

/*
 * Take a read lock: at once when free or read-locked with nobody queued,
 * else yield until granted.  Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_rwlock_rdlock(CoRwlock *lock);

/* Take the write lock, yielding until granted.  Coroutine only. */
AIOCTX_API void coroutine_fn qemu_co_rwlock_wrlock(CoRwlock *lock);

/*
 * Turn the caller's read lock into the write lock: at once when it is the
 * only reader and nobody is queued, else queue as a writer (after the
 * requests already queued) and yield until granted.  Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_rwlock_upgrade(CoRwlock *lock);

/*
 * Turn the caller's write lock into a read lock, letting queued readers
 * in.  Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_rwlock_downgrade(CoRwlock *lock);

/*
 * Release a read or write lock and grant the first queued request if it
 * now fits.  Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_rwlock_unlock(CoRwlock *lock);

/* ------------------------------------------------------------------ */
/* Sleeping                                                            */
/* ------------------------------------------------------------------ */

/*
 * A sleep another party may cut short.  Complete so it can live on the
 * sleeper's stack; its field is private.
 */
typedef struct QemuCoSleep {
    Coroutine *to_wake; /* private: the sleeper, NULL when not asleep */
} QemuCoSleep;

/*
 * Sleep for ns nanoseconds of clock type, on a timer of the calling
 * thread's current AioContext (aborts when the thread has none).
 * Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_sleep_ns(QEMUClockType type, int64_t ns);

/*
 * Like qemu_co_sleep_ns(), but qemu_co_sleep_wake(w) ends the sleep early.
 * Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_sleep_ns_wakeable(QemuCoSleep *w,
                                                       QEMUClockType type,
                                                       int64_t ns);

/*
 * Yield until qemu_co_sleep_wake(w), with no timer.  While asleep the
 * coroutine counts as scheduled: entering it any other way aborts.
 * Coroutine only.
 */
AIOCTX_API void coroutine_fn qemu_co_sleep(QemuCoSleep *w);

/*
 * Wake the coroutine sleeping on w, if any (a second wake does nothing).
 * It resumes in its own context.  Any thread.
 */
AIOCTX_API void qemu_co_sleep_wake(QemuCoSleep *w);

/* ------------------------------------------------------------------ */
/* Waiting for file descriptors                                        */
/* ------------------------------------------------------------------ */

/*
 * Yield until fd is readable (or hung up), watching it with an fd handler
 * of the calling thread's current AioContext (aborts when the thread has
 * none).  The handler is removed before the coroutine resumes, so fd must
 * not have another handler in that context.  When memory for the handler
 * runs out it returns at once, as a spurious wake-up would (the caller's
 * read then fails with EAGAIN and it waits again).  Coroutine only.
 */
AIOCTX_API void coroutine_fn yield_until_fd_readable(int fd);

/*
 * Receive exactly bytes bytes from the non-blocking fd (a socket, or any
 * fd read() accepts), yielding while it has no data.  Returns bytes, fewer
 * only when end-of-file came first (0 if at once), or -errno when an error
 * came before any byte.  Coroutine only.
 */
AIOCTX_API ssize_t coroutine_fn qemu_co_recv(int sockfd, void *buf,
                                             size_t bytes);

/*
 * Send exactly bytes bytes on the non-blocking fd (sockets get
 * MSG_NOSIGNAL), yielding while it is full.  Returns bytes, or fewer if an
 * error stopped it after some were sent, or -errno if nothing was sent.
 * Coroutine only.
 */
AIOCTX_API ssize_t coroutine_fn qemu_co_send(int sockfd, void *buf,
                                             size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_COROUTINE_H */
