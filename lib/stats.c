/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Loop metrics: aio_context_get_stats() (aioctx/stats.h).  The counters
 * live in the context (AioStats, aio-internal.h) and are bumped with
 * aio_stat_add() where the work happens; the thread pool keeps its own.
 */
#include <errno.h>
#include <string.h>

#include "aio-internal.h"
#include "aioctx/stats.h"

AIOCTX_API int aio_context_get_stats(AioContext *ctx, AioContextStats *stats,
                                     size_t size)
{
    AioContextStats s = { 0 };
    const AioStats *c;

    if (!ctx || !stats) {
        return -EINVAL;
    }
    c = &ctx->stats;
    s.iterations = aio_load(&c->iterations);
    s.waits = aio_load(&c->waits);
    s.wait_ns = aio_load(&c->wait_ns);
    s.bh_runs = aio_load(&c->bh_runs);
    s.fd_dispatches = aio_load(&c->fd_dispatches);
    s.poll_hits = aio_load(&c->poll_hits);
    s.poll_misses = aio_load(&c->poll_misses);
    s.timers_fired = aio_load(&c->timers_fired);
    s.file_submitted = aio_load(&c->file_submitted);
    s.file_completed = aio_load(&c->file_completed);
    s.file_in_flight = s.file_submitted > s.file_completed
                           ? s.file_submitted - s.file_completed
                           : 0;
    aio_thread_pool_stats(ctx, &s.pool_submitted, &s.pool_completed,
                          &s.pool_queued, &s.pool_running);
    if (size > sizeof(s)) {
        memset((char *)stats + sizeof(s), 0, size - sizeof(s));
        size = sizeof(s);
    }
    memcpy(stats, &s, size);
    return 0;
}
