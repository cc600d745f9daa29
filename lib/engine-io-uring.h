/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the "io_uring" engine: engine-io-uring.c (fds through epoll,
 * waiting) and engine-io-uring-file.c (file I/O on the engine's ring).
 */
#ifndef AIOCTX_ENGINE_IO_URING_H
#define AIOCTX_ENGINE_IO_URING_H

#include <liburing.h>

#include "aio-internal.h"
#include "file-io-internal.h"

/*
 * The low half of internal requests' user_data (no-ops the engine posts to
 * keep the ring readable); liburing's timeouts (all ones) too.
 */
#define URING_TAG_INTERNAL 0xffffffffu
#define URING_DATA_INTERNAL UINT64_MAX
/* The low half of file requests' user_data. */
#define URING_TAG_FILE 0xfffffffeu
/* File requests in the kernel at once, per context (half its CQ). */
#define URING_FILE_SLOTS 256

/* Where a file request is (AioFileReq.u.uring.where). */
enum {
    URING_FILE_WAITING = 1, /* on the wait list: no slot or entry yet */
    URING_FILE_IN_RING,     /* has a slot: prepared or with the kernel */
    URING_FILE_DONE,        /* on the done list, for file_dispatch */
};

typedef struct UringFile {
    struct io_uring ring; /* made by the first request */
    bool ring_ok;
    AioFileReq *slot[URING_FILE_SLOTS];
    uint16_t gen[URING_FILE_SLOTS];
    uint16_t free_slots[URING_FILE_SLOTS];
    int nfree;
    AioFileReq *wait_head; /* FIFO: no slot or entry yet */
    AioFileReq **wait_tail;
    AioFileReq *done_head; /* FIFO: for file_dispatch */
    AioFileReq **done_tail;
    int ndone;
} UringFile;

/* All of these run in the context's home thread. */
void uring_file_init(UringFile *uf);
void uring_file_destroy(UringFile *uf);
int uring_file_start_req(UringFile *uf, AioFileReq *req, int64_t max_batch);
void uring_file_cancel_req(UringFile *uf, AioFileReq *req);
/* Hand over prepared entries, take completions; returns those completed. */
int uring_file_kick(UringFile *uf);
/* Whether requests are in the file ring (not yet completed). */
static inline bool uring_file_busy(const UringFile *uf)
{
    return uf->nfree < URING_FILE_SLOTS;
}
bool uring_file_need_wait(UringFile *uf);
bool uring_file_report(UringFile *uf);

#endif /* AIOCTX_ENGINE_IO_URING_H */
