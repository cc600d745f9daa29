/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the "io_uring" engine: engine.c (fds through epoll, waiting)
 * and file-ring.c (file I/O on the engine's ring, an executor).
 */
#ifndef AIOCTX_ENGINES_IO_URING_H
#define AIOCTX_ENGINES_IO_URING_H

#include <liburing.h>

#include "engines/io_uring/ring.h"
#include "file-io-internal.h"

/* File requests in the kernel at once, per context (half its CQ). */
#define URING_FILE_SLOTS 256

typedef struct UringFile {
    AioFileExec exec;     /* first: what the front end holds */
    AioContext *ctx;
    struct io_uring ring; /* made by the first request */
    bool ring_ok;
    AioFileReq *slot[URING_FILE_SLOTS];
    uint16_t gen[URING_FILE_SLOTS];
    uint16_t free_slots[URING_FILE_SLOTS];
    int nfree;
    AioFileReqFifo waiting; /* no slot or entry yet */
    AioFileReqFifo done;    /* for file_dispatch */
    int ndone;
} UringFile;

/* All of these run in the context's home thread. */
void uring_file_init(UringFile *uf, AioContext *ctx);
void uring_file_destroy(UringFile *uf);
/* Hand over prepared entries, take completions; returns those completed. */
int uring_file_kick(UringFile *uf);
/* Whether requests are in the file ring (not yet completed). */
static inline bool uring_file_busy(const UringFile *uf)
{
    return uf->nfree < URING_FILE_SLOTS;
}
bool uring_file_need_wait(UringFile *uf);
/* Run the callbacks of completed requests; true if there were any. */
bool uring_file_report(UringFile *uf);
/* Context destruction: fail what waits for a slot. */
void uring_file_cancel_waiting(UringFile *uf);
/* Post a no-op whose completion keeps the ring's fd readable. */
void uring_file_post_nop(UringFile *uf);

/* Whether exec is an io_uring engine's file ring (for luring.c). */
bool uring_file_is_exec(AioFileExec *exec);

#endif /* AIOCTX_ENGINES_IO_URING_H */
