/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: loop metrics.
 *
 * Every context counts what its loop does, always: plain counters written
 * by the thread that polls the context, with no atomic read-modify-write
 * on any hot path, so they can stay on in production.  Counters only grow
 * (they wrap at 2^64); the fields marked "now" are gauges.
 *
 * Errors (aioctx/error.h): aio_context_get_stats() returns 0 or -errno.
 */
#ifndef AIOCTX_STATS_H
#define AIOCTX_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <aioctx/aio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct AioContextStats {
    /* Loop passes: aio_poll() calls, nested ones included, and
     * aio_dispatch() calls. */
    uint64_t iterations;
    /* Passes that asked the engine to sleep (a timeout other than 0), and
     * the nanoseconds spent inside those waits. */
    uint64_t waits;
    uint64_t wait_ns;
    /* Bottom-half callbacks run (aio_bh_call() included). */
    uint64_t bh_runs;
    /* fd handler callbacks run: io_read, io_write and io_poll_ready. */
    uint64_t fd_dispatches;
    /* Busy-polling runs (aio_context_set_poll_params()) that found work
     * before their time was up, and those that did not and went on to
     * the engine's wait. */
    uint64_t poll_hits;
    uint64_t poll_misses;
    /* Timer callbacks run. */
    uint64_t timers_fired;
    /* File requests (aioctx/file-io.h) started, completed (callback run),
     * and in flight now. */
    uint64_t file_submitted;
    uint64_t file_completed;
    uint64_t file_in_flight;
    /* Thread-pool jobs submitted from this context, completed (callback
     * run), waiting for a worker now, and being run by a worker now. */
    uint64_t pool_submitted;
    uint64_t pool_completed;
    uint64_t pool_queued;
    uint64_t pool_running;
} AioContextStats;

/*
 * Copy ctx's counters into *stats.  size is sizeof(*stats) as the caller
 * was compiled: a program built against an older, shorter struct gets the
 * fields it knows; fields a newer library does not have are zeroed.  Any
 * thread; read from a thread other than the one polling ctx, each value is
 * a moment old and the values are not a consistent snapshot.  Returns 0,
 * or -EINVAL when ctx or stats is NULL.
 */
AIOCTX_API int aio_context_get_stats(AioContext *ctx, AioContextStats *stats,
                                     size_t size);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_STATS_H */
