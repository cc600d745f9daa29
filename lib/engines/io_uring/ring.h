/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ring helpers shared by the io_uring code: the engine's file ring
 * (file-ring.c) and a LuringState's ring (luring.c).  Set-up with flag
 * fallback, submission entries when the SQ is full, CQ reaping, and
 * preparing a file request's entry.
 */
#ifndef AIOCTX_ENGINES_IO_URING_RING_H
#define AIOCTX_ENGINES_IO_URING_RING_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>

#include "file-io-internal.h"

/*
 * Make ring with entries SQ entries, trying flags[0], flags[1], ... in turn
 * while the kernel refuses them with EINVAL (older kernels lack some).
 * Returns 0 or -errno.
 */
int aio_ring_setup(struct io_uring *ring, unsigned entries,
                   const unsigned *flags, size_t nflags);
void aio_ring_teardown(struct io_uring *ring);

/*
 * A free submission entry; when the SQ is full, what it holds is handed
 * to the kernel first.  NULL only when that fails.
 */
struct io_uring_sqe *aio_ring_get_sqe(struct io_uring *ring);

/*
 * Hand prepared entries to the kernel; with none, run the completion work
 * the kernel deferred to us (COOP_TASKRUN rings) if it asks for that.
 */
void aio_ring_kick(struct io_uring *ring);

/*
 * Take up to budget completions (0: those there now), one at a time: each
 * is marked seen before fn(opaque, user_data, res) runs, so fn may nest a
 * poll that reaps the next.  Returns how many were taken.
 */
unsigned aio_ring_reap(struct io_uring *ring, unsigned budget,
                       void (*fn)(void *opaque, uint64_t data, int res),
                       void *opaque);

/* Fill sqe for req's current part (read, write or fsync). */
void aio_ring_prep_file(struct io_uring_sqe *sqe, AioFileReq *req);

#endif /* AIOCTX_ENGINES_IO_URING_RING_H */
