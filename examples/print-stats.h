/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Print a context's loop metrics (aioctx/stats.h) on one line; shared by
 * the example servers, which do it on SIGUSR1 and at exit.
 */
#ifndef EXAMPLES_PRINT_STATS_H
#define EXAMPLES_PRINT_STATS_H

#include <inttypes.h>
#include <stdio.h>

#include <aioctx.h>

static inline void print_stats(FILE *out, const char *prog, const char *who,
                               AioContext *ctx)
{
    AioContextStats s;

    if (aio_context_get_stats(ctx, &s, sizeof(s)) < 0) {
        return;
    }
    fprintf(out,
            "%s: stats %s: iterations %" PRIu64 ", waits %" PRIu64
            " (%.3f s), bh %" PRIu64 ", fd callbacks %" PRIu64
            ", busy-poll hits %" PRIu64 " misses %" PRIu64 ", timers %" PRIu64
            ", file requests %" PRIu64 "/%" PRIu64 " (%" PRIu64
            " in flight), pool jobs %" PRIu64 "/%" PRIu64 " (%" PRIu64
            " queued, %" PRIu64 " running)\n",
            prog, who, s.iterations, s.waits, s.wait_ns / 1e9, s.bh_runs,
            s.fd_dispatches, s.poll_hits, s.poll_misses, s.timers_fired,
            s.file_completed, s.file_submitted, s.file_in_flight,
            s.pool_completed, s.pool_submitted, s.pool_queued, s.pool_running);
    fflush(out);
}

#endif /* EXAMPLES_PRINT_STATS_H */
