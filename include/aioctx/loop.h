/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: the loop driver: run, stop, signals and embedding (no glib).
 *
 *  - aio_context_run()/aio_context_stop(): run one context in the calling
 *    thread until someone, any thread or a signal handler, stops it;
 *  - signals as events: a signal handled by a context is blocked and read
 *    from a signalfd, so its callback runs in the loop like any other
 *    (servers shut down cleanly on SIGINT/SIGTERM without async-signal
 *    safety concerns);
 *  - embedding: aio_context_get_pollfd() gives one descriptor that polls
 *    readable whenever the context has work, on every engine, so a foreign
 *    loop (glib, libuv, a hand-written poll()) can drive the context with
 *    aio_prepare(), aio_compute_timeout() and aio_dispatch():
 *
 *        int fd = aio_context_get_pollfd(ctx);
 *        for (;;) {
 *            int64_t ns = aio_prepare(ctx) ? 0 : aio_compute_timeout(ctx);
 *            struct pollfd pfd = { .fd = fd, .events = POLLIN };
 *
 *            poll(&pfd, 1, ns < 0 ? -1 : (int)((ns + 999999) / 1000000));
 *            aio_dispatch(ctx);      // always, also on a timeout (timers)
 *        }
 *
 *    Between aio_prepare() and aio_dispatch(), bottom halves scheduled and
 *    aio_notify() calls from any thread make the descriptor readable.
 *    Outside that window they only set a flag that the next aio_prepare()
 *    reports, so a foreign loop must not sleep on the descriptor without
 *    calling aio_prepare() first.
 *
 * Declared here rather than in aioctx/aio.h; <aioctx.h> includes both.
 *
 * Errors (aioctx/error.h): calls returning int return a value >= 0 or
 * -errno; the others cannot fail.
 */
#ifndef AIOCTX_LOOP_H
#define AIOCTX_LOOP_H

#include <aioctx/export.h>
#include <aioctx/error.h>
#include <aioctx/aio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Running a context until stopped                                     */
/* ------------------------------------------------------------------ */

/*
 * Run ctx in the calling thread, "while not stopped: aio_poll(ctx, true)",
 * until aio_context_stop() is called; returns at once, without polling, if
 * a stop was requested since the last run returned.  Each stop request ends
 * one run (with nested runs, the innermost).  While it runs, ctx is the
 * calling thread's current context (qemu_get_current_aio_context()); the
 * previous one is restored on return.  The calling thread becomes ctx's
 * home thread.
 */
AIOCTX_API void aio_context_run(AioContext *ctx);

/*
 * Make the current run of ctx return after the callback running now (if
 * any), or the next run return at once when none is running.  Sets a flag
 * and calls aio_notify(): lock-free, async-signal-safe (callable from a
 * sigaction() handler), any thread.
 */
AIOCTX_API void aio_context_stop(AioContext *ctx);

/* ------------------------------------------------------------------ */
/* Embedding in a foreign loop                                         */
/* ------------------------------------------------------------------ */

/*
 * One descriptor that polls readable (POLLIN) whenever aio_dispatch() would
 * find ready handlers, and, after aio_prepare(), when a bottom half is
 * scheduled or aio_notify() is called.  Timers do not make it readable:
 * sleep for at most aio_compute_timeout().  The descriptor belongs to the
 * context (do not read from it or close it) and stays the same for the
 * context's life.
 *
 * Per engine: epoll, linux-aio and io_uring return their epoll descriptor
 * (io_uring's holds its file I/O ring's descriptor too, so completions
 * make it readable).  The poll engine has no such descriptor: the first
 * call creates an epoll set that mirrors its handlers; from then on every
 * handler change costs one epoll_ctl() more (waiting inside aio_poll()
 * still uses ppoll()), and one more descriptor stays open.  Descriptors
 * epoll refuses (regular files) keep it readable, as poll(2) reports them
 * ready.  Returns the descriptor, or -errno: -EINVAL when ctx is NULL,
 * -EMFILE or -ENOMEM when the mirror cannot be made (it is tried again on
 * the next call).  Any thread.
 */
AIOCTX_API int aio_context_get_pollfd(AioContext *ctx);

/* ------------------------------------------------------------------ */
/* Signals delivered through the loop (libaioctx's own)                */
/* ------------------------------------------------------------------ */

/* Called in ctx's home thread once per delivered signal. */
typedef void AioSignalFunc(int signo, void *opaque);

/*
 * Deliver signo through ctx: block it in the calling thread and read it
 * from the context's signalfd (one per context, made on first use), so that
 * cb(signo, opaque) runs in the home thread, inside aio_poll(), once per
 * delivery (the kernel merges a standard signal raised again while still
 * pending).  Adding a signal that ctx already handles replaces its callback.
 *
 * Call it from the home thread, before other threads exist: a signal sent
 * to the process goes to any thread that does not block it, and threads
 * created afterwards inherit the calling thread's mask (IOThreads block
 * every signal anyway).  So call it early in main(), before creating
 * IOThreads or other threads.  Let only one context per process handle a
 * given signal.
 *
 * Returns 0, or a negative errno with *errp set: -EINVAL for a NULL ctx or
 * cb, a number outside 1..NSIG-1, SIGKILL or SIGSTOP; the kernel's error
 * when the signalfd cannot be made (the mask is then left as it was).
 * Home thread.
 */
AIOCTX_API int aio_context_add_signal(AioContext *ctx, int signo,
                                      AioSignalFunc *cb, void *opaque,
                                      Error **errp);

/*
 * Stop delivering signo through ctx; its callback is not called again,
 * even for a delivery already read but not yet dispatched.  The signal
 * stays blocked in the home thread (unblocking it could run its default
 * action on a pending instance): unblock it with pthread_sigmask() when
 * needed.  Does nothing if ctx does not handle signo.  The signalfd is
 * closed with the last signal, and when ctx is destroyed.  Home thread.
 */
AIOCTX_API void aio_context_remove_signal(AioContext *ctx, int signo);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_LOOP_H */
