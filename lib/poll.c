/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio_poll(): one loop iteration, read as a list of phases:
 * compute the timeout, busy-poll (adaptive), announce the sleep, wait on
 * the engine, acknowledge notifications, run bottom halves, dispatch ready
 * handlers, free deleted handlers, run timers.
 *
 * Also the pieces that let a foreign loop drive a context: aio_prepare(),
 * aio_pending(), aio_dispatch(), aio_compute_timeout().
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "aio-internal.h"
#include "log-internal.h"

#define POLL_GROW_DEFAULT 2
#define POLL_START_NS 4000

/* Minimum of two timeouts where -1 means forever. */
static int64_t soonest(int64_t a, int64_t b)
{
    return (uint64_t)a < (uint64_t)b ? a : b;
}

AIOCTX_API int64_t aio_compute_timeout(AioContext *ctx)
{
    int64_t timeout = aio_bh_timeout(ctx);

    if (timeout == 0) {
        return 0;
    }
    return soonest(timeout, aio_timers_deadline_ns(ctx->tlg));
}

/* The adaptive poll-time rule, applied once per aio_poll. */
static void adjust_poll_time(AioContext *ctx, int64_t block_ns)
{
    int64_t ns = ctx->poll_ns;
    int64_t max_ns = aio_load(&ctx->poll_max_ns);

    if (block_ns <= ns) {
        return;
    }
    if (block_ns > max_ns) {
        int64_t shrink = aio_load(&ctx->poll_shrink);

        ctx->poll_ns = shrink ? ns / shrink : 0;
        return;
    }
    if (ns < max_ns && block_ns < max_ns) {
        int64_t grow = aio_load(&ctx->poll_grow);

        ns = ns ? ns * (grow ? grow : POLL_GROW_DEFAULT) : POLL_START_NS;
        ctx->poll_ns = ns > max_ns ? max_ns : ns;
    }
}

/*
 * Busy-poll the io_poll callbacks for up to the current poll time.  When
 * something is found, *timeout becomes 0; otherwise the polling time is
 * taken off *timeout.  *end_ns gets the last clock reading when it polled.
 * Returns progress.
 */
static bool try_poll_mode(AioContext *ctx, AioReadyList *ready,
                          int64_t *timeout, int64_t *end_ns)
{
    int64_t max_ns = soonest(*timeout, ctx->poll_ns);
    int64_t start, elapsed;
    bool progress = false, any = false;

    if (!max_ns || ctx->engine->need_wait(ctx)) {
        return false;
    }
    aio_poll_set_started(ctx, ready, true, &any);
    start = aio_now_ns();
    do {
        progress |= aio_run_poll_handlers_once(ctx, ready, &any);
        *end_ns = aio_now_ns();
        elapsed = *end_ns - start;
    } while (!any && elapsed < max_ns && !ctx->engine->need_wait(ctx));

    if (any) {
        aio_stat_add(ctx, poll_hits, 1);
    } else {
        aio_stat_add(ctx, poll_misses, 1);
    }
    if (any) {
        *timeout = 0;
    } else if (*timeout > 0) {
        *timeout = *timeout > elapsed ? *timeout - elapsed : 0;
    }
    return progress;
}

/*
 * Non-blocking pass over io_poll callbacks, used when no syscall is
 * needed: every handler can be polled from user space.  Skipped when the
 * context's own notifier is the only handler: its io_poll is never
 * progress, and aio_notify_accept() clears what it would report.
 */
static bool poll_handlers_nonblocking(AioContext *ctx, AioReadyList *ready)
{
    bool any = false;

    if (aio_load(&ctx->handler_count) <= 1) {
        return false;
    }
    return aio_run_poll_handlers_once(ctx, ready, &any);
}

/*
 * The notify_me half of the Dekker pairs with aio_notify() (which sets
 * notified) and with a remote BH push (which reads notify_me after it).
 */
static int64_t announce_sleep(AioContext *ctx, int64_t timeout)
{
    __atomic_fetch_add(&ctx->notify_me, 2, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ctx->notified, __ATOMIC_SEQ_CST) ||
        aio_bh_remote_pending(ctx)) {
        return 0;
    }
    return timeout;
}

/*
 * Become a visitor of the handler list the first time a phase needs it:
 * an iteration that only runs bottom halves and timers never touches the
 * list, so it pays no locked instruction for it.
 */
static inline void handlers_visit(AioContext *ctx, bool *visiting)
{
    if (!*visiting) {
        lockcnt_inc(&ctx->list_lock);
        *visiting = true;
    }
}

/* Did something arrive that a sleeping wait would have been woken for? */
static bool wake_pending(AioContext *ctx)
{
    return __atomic_load_n(&ctx->notified, __ATOMIC_SEQ_CST) ||
           aio_bh_remote_pending(ctx);
}

/*
 * The engine's wait failed with err (not EINTR: engines return 0 for it).
 * The failure is reported through the log hook when a run of failures
 * starts and then at each power of two, so a persistent one is visible
 * without flooding.  A blocking wait then sleeps on the context's notifier
 * alone for the time asked: aio_notify(), bottom halves from other threads
 * and timers keep working and the loop does not spin, though fds are not
 * seen until the engine recovers.
 */
static void wait_failed(AioContext *ctx, int err, int64_t timeout)
{
    struct pollfd pfd = { .fd = event_notifier_get_fd(&ctx->notifier),
                          .events = POLLIN };
    struct timespec ts, *tsp = NULL;
    unsigned n = ++ctx->wait_failures;
    int64_t end = 0;

    if ((n & (n - 1)) == 0) {
        aio_log(AIO_LOG_ERROR, "engine %s: waiting failed (%u in a row): %s",
                ctx->engine->name, n, strerror(-err));
    }
    if (timeout == 0) {
        return;
    }
    if (timeout > 0) {
        end = aio_now_ns() + timeout;
        tsp = &ts;
    }
    /*
     * A signal does not count as another failure: sleep on for the time
     * left (a wake-up writes the notifier, which ends this too).
     */
    for (;;) {
        if (tsp) {
            int64_t left = end - aio_now_ns();

            if (left <= 0) {
                return;
            }
            ts.tv_sec = left / 1000000000LL;
            ts.tv_nsec = left % 1000000000LL;
        }
        if (ppoll(&pfd, 1, tsp, NULL) >= 0 || errno != EINTR) {
            return;
        }
    }
}

/*
 * Wait on the engine.  A wait that ends with nothing found before its
 * deadline (a signal interrupted it, or the engine woke for its own
 * bookkeeping) waits again for the time that is left, so that a blocking
 * aio_poll() returns only after progress, a wake-up, or its deadline.
 */
static bool wait_on_engine(AioContext *ctx, AioReadyList *ready,
                           int64_t timeout)
{
    bool progress = false, any = false;
    int64_t deadline = 0, start = 0;
    int n;

    progress = aio_poll_set_started(ctx, ready, false, &any);
    if (any) {
        timeout = 0;
    }
    if (timeout != 0) {
        start = aio_now_ns();
        deadline = start + timeout;
    }
    for (;;) {
        n = ctx->engine->wait(ctx, ready, timeout);
        if (n < 0) {
            wait_failed(ctx, n, timeout);
            n = 0;
        } else if (ctx->wait_failures) {
            aio_log(AIO_LOG_WARNING, "engine %s: waiting works again",
                    ctx->engine->name);
            ctx->wait_failures = 0;
        }
        /*
         * Only the notifier, yet nothing notified: the eventfd write of an
         * aio_notify() that was already accepted (it raced with a wake-up
         * by a signal, say).  Clear it and wait on.
         */
        if (n == 1 && timeout != 0 && aio_ready_list_only_notifier(ready) &&
            !wake_pending(ctx)) {
            aio_dispatch_ready(ctx, ready);
            n = 0;
        }
        if (n != 0 || ready->head || timeout == 0 || wake_pending(ctx)) {
            break;
        }
        if (timeout > 0) {
            timeout = deadline - aio_now_ns();
            if (timeout <= 0) {
                break;
            }
        }
    }
    if (start) {
        aio_stat_add(ctx, waits, 1);
        aio_stat_add(ctx, wait_ns, (uint64_t)(aio_now_ns() - start));
    }
    return progress;
}

/*
 * One iteration.  force_wait asks the engine for ready fds even when a
 * non-blocking pass could skip the syscall (aio_dispatch() does).
 */
static bool poll_once(AioContext *ctx, bool blocking, bool force_wait)
{
    AioReadyList ready = { NULL };
    bool progress = false, use_notify_me, visiting = false;
    int64_t timeout, start = 0, poll_end = 0;
    bool polling = aio_load(&ctx->poll_max_ns) != 0;
    AioContext *outer = aio_bh_enter_poll(ctx);
    unsigned fired;

    aio_stat_add(ctx, iterations, 1);
    /* Also when polling was just turned off: a stale poll_ns would spin. */
    if (aio_load_acquire(&ctx->poll_reset)) {
        aio_store(&ctx->poll_reset, false);
        ctx->poll_ns = 0;
    }
    /* Deleted handlers left by another walker are freed below. */
    if (polling || aio_load(&ctx->deleted_count)) {
        handlers_visit(ctx, &visiting);
    }
    if (polling) {
        start = aio_now_ns();
    }

    timeout = blocking ? aio_compute_timeout(ctx) : 0;
    if (polling) {
        progress = try_poll_mode(ctx, &ready, &timeout, &poll_end);
    }

    use_notify_me = timeout != 0;
    if (use_notify_me) {
        timeout = announce_sleep(ctx, timeout);
    }
    if (timeout != 0 || force_wait || ctx->engine->need_wait(ctx)) {
        handlers_visit(ctx, &visiting);
        progress |= wait_on_engine(ctx, &ready, timeout);
        poll_end = 0; /* the wait took time of its own */
    } else if (!ready.head && aio_load(&ctx->handler_count) > 1) {
        handlers_visit(ctx, &visiting);
        progress |= poll_handlers_nonblocking(ctx, &ready);
    }
    if (use_notify_me) {
        __atomic_fetch_sub(&ctx->notify_me, 2, __ATOMIC_RELEASE);
    }
    aio_notify_accept(ctx);

    if (polling) {
        /* Busy-polling that ended the wait read the clock last: reuse it. */
        adjust_poll_time(ctx, (poll_end ? poll_end : aio_now_ns()) - start);
    }

    progress |= aio_bh_poll(ctx);
    if (ready.head) {
        progress |= aio_dispatch_ready(ctx, &ready);
    }
    if (ctx->engine->file_dispatch) {
        progress |= ctx->engine->file_dispatch(ctx); /* file I/O completions */
    }
    if (visiting) {
        aio_free_deleted_handlers(ctx);
        lockcnt_dec(&ctx->list_lock);
    }

    fired = aio_timers_run(ctx->tlg);
    if (fired) {
        aio_stat_add(ctx, timers_fired, fired);
        progress = true;
    }
    aio_bh_leave_poll(outer);
    return progress;
}

AIOCTX_API bool aio_poll(AioContext *ctx, bool blocking)
{
    return poll_once(ctx, blocking, false);
}

/* The embedding calls read the home list: the caller polls ctx now. */
static void claim_home(AioContext *ctx)
{
    if (aio_load(&ctx->home_thread) != aio_thread_id()) {
        aio_bh_take_home(ctx);
    }
}

AIOCTX_API bool aio_prepare(AioContext *ctx)
{
    bool any = false;

    claim_home(ctx);
    __atomic_fetch_or(&ctx->notify_me, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ctx->notified, __ATOMIC_SEQ_CST) ||
        aio_bh_remote_pending(ctx) || aio_compute_timeout(ctx) == 0) {
        return true;
    }
    /* The engine's pollfd must cover every handler before we sleep. */
    if (ctx->engine->flush) {
        ctx->engine->flush(ctx);
    }
    /* Handlers that can be polled from user space may have work too. */
    lockcnt_inc(&ctx->list_lock);
    aio_run_poll_handlers_once(ctx, NULL, &any);
    lockcnt_dec(&ctx->list_lock);
    return any;
}

AIOCTX_API bool aio_pending(AioContext *ctx)
{
    AioReadyList ready = { NULL };
    bool pending;

    claim_home(ctx);
    if (aio_compute_timeout(ctx) == 0) {
        return true;
    }
    lockcnt_inc(&ctx->list_lock);
    pending = ctx->engine->wait(ctx, &ready, 0) > 0;
    /* Only a question: aio_dispatch() looks again and runs them. */
    aio_ready_list_clear(&ready);
    lockcnt_dec(&ctx->list_lock);
    return pending;
}

AIOCTX_API void aio_dispatch(AioContext *ctx)
{
    __atomic_fetch_and(&ctx->notify_me, ~1u, __ATOMIC_RELEASE);
    poll_once(ctx, false, true);
}
