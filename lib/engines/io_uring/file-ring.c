/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O for the "io_uring" engine, on a ring of its own: an executor
 * (file-io-internal.h) that the engine hands the front end.
 *
 * The ring is made by the first request and can be entered by any thread
 * (COOP_TASKRUN where the kernel has it), so requests complete whoever
 * polls the context next.  Its descriptor sits in the engine's epoll set
 * (engine.c), so a sleeping loop wakes for its completions.
 *
 * A request's user_data is (tag << 32 | URING_TAG_FILE), tag being its
 * slot's generation << 16 | the slot's index: a completion finds its
 * request at once, and a cancellation aimed at a request that has finished
 * cannot hit the slot's next user.  At most URING_FILE_SLOTS requests hold
 * slots (prepared, or with the kernel), so with cancellations the 512-entry
 * CQ never overflows; more requests wait in a FIFO for slots.
 *
 * Submission is batched: a request's entry is filled at once and handed to
 * the kernel by the next uring_file_kick(), which the engine's wait() calls
 * before it sleeps; or as soon as the context's aio_max_batch entries wait,
 * when that is set.  Completions found by a kick wait on the done list for
 * file_dispatch.
 */
#include <errno.h>
#include <string.h>

#include "engine.h"
#include "engines/io_uring/io_uring.h"

/* user_data of internal entries (cancellations, no-ops): not a request's. */
#define URING_DATA_INTERNAL UINT64_MAX
/* The low half of file requests' user_data. */
#define URING_TAG_FILE 0xfffffffeu

/* Where a request is (UringReq.where). */
enum {
    URING_FILE_WAITING = 1, /* on the wait list: no slot or entry yet */
    URING_FILE_IN_RING,     /* has a slot: prepared or with the kernel */
    URING_FILE_DONE,        /* on the done list, for file_dispatch */
};

/* A request's private area. */
typedef struct UringReq {
    uint32_t tag; /* slot generation << 16 | slot index */
    int32_t res;  /* result, while on the done list */
    uint8_t where;
} UringReq;

static const AioFileExecOps uring_file_ops;

/* Ring flags, best first. */
static const unsigned uring_file_flags[] = {
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
        IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SUBMIT_ALL,
    0,
};

void uring_file_init(UringFile *uf, AioContext *ctx)
{
    uf->exec.ops = &uring_file_ops;
    uf->ctx = ctx;
    for (int i = 0; i < URING_FILE_SLOTS; i++) {
        uf->free_slots[i] = (uint16_t)(URING_FILE_SLOTS - 1 - i);
    }
    uf->nfree = URING_FILE_SLOTS;
    aio_fifo_init(&uf->waiting);
    aio_fifo_init(&uf->done);
}

void uring_file_destroy(UringFile *uf)
{
    if (uf->ring_ok) {
        aio_ring_teardown(&uf->ring);
    }
}

bool uring_file_is_exec(AioFileExec *exec)
{
    return exec->ops == &uring_file_ops;
}

static int uring_file_ring(UringFile *uf)
{
    int ret;

    if (uf->ring_ok) {
        return 0;
    }
    ret = aio_ring_setup(&uf->ring, URING_FILE_SLOTS, uring_file_flags,
                         sizeof(uring_file_flags) / sizeof(uring_file_flags[0]));
    uf->ring_ok = ret == 0;
    return ret;
}

static uint64_t uring_req_data(UringReq *ur)
{
    return (uint64_t)ur->tag << 32 | URING_TAG_FILE;
}

/* Give req a slot and a prepared entry; false when out of either. */
static bool uring_file_take_slot(UringFile *uf, AioFileReq *req)
{
    UringReq *ur = aio_file_req_priv(req);
    struct io_uring_sqe *sqe;
    unsigned idx;

    if (!uf->nfree || !(sqe = aio_ring_get_sqe(&uf->ring))) {
        return false;
    }
    idx = uf->free_slots[--uf->nfree];
    uf->slot[idx] = req;
    ur->tag = (uint32_t)uf->gen[idx] << 16 | idx;
    ur->where = URING_FILE_IN_RING;
    aio_ring_prep_file(sqe, req);
    io_uring_sqe_set_data64(sqe, uring_req_data(ur));
    return true;
}

static void uring_file_start_waiting(UringFile *uf)
{
    AioFileReq *req;

    while ((req = uf->waiting.head) && uring_file_take_slot(uf, req)) {
        AIO_FIFO_POP(&uf->waiting, next);
    }
}

static int uring_file_submit(AioFileExec *exec, AioFileReq *req)
{
    UringFile *uf = (UringFile *)exec;
    UringReq *ur = aio_file_req_priv(req);
    int64_t max_batch = aio_engine_max_batch(uf->ctx);
    int ret = uring_file_ring(uf);

    if (ret < 0) {
        return ret;
    }
    if (!aio_fifo_empty(&uf->waiting) || !uring_file_take_slot(uf, req)) {
        ur->where = URING_FILE_WAITING;
        AIO_FIFO_PUSH(&uf->waiting, req, next);
        return 0;
    }
    if (max_batch > 0 && io_uring_sq_ready(&uf->ring) >= max_batch) {
        io_uring_submit(&uf->ring);
    }
    return 0;
}

static void uring_file_cancel(AioFileExec *exec, AioFileReq *req)
{
    UringFile *uf = (UringFile *)exec;
    UringReq *ur = aio_file_req_priv(req);
    struct io_uring_sqe *sqe;

    switch (ur->where) {
    case URING_FILE_WAITING:
        AIO_FIFO_REMOVE(&uf->waiting, req, next);
        ur->where = 0;
        aio_file_req_done(req, -ECANCELED);
        break;
    case URING_FILE_IN_RING:
        sqe = aio_ring_get_sqe(&uf->ring);
        if (!sqe) {
            break; /* best effort: it completes normally */
        }
        io_uring_prep_cancel64(sqe, uring_req_data(ur), 0);
        io_uring_sqe_set_data64(sqe, URING_DATA_INTERNAL);
        break;
    default:
        break; /* already done: file_dispatch reports it */
    }
}

static const AioFileExecOps uring_file_ops = {
    .name = "io_uring",
    .req_priv_size = sizeof(UringReq),
    .submit = uring_file_submit,
    .cancel = uring_file_cancel,
};

void uring_file_cancel_waiting(UringFile *uf)
{
    AioFileReq *req;

    while ((req = AIO_FIFO_POP(&uf->waiting, next))) {
        UringReq *ur = aio_file_req_priv(req);

        ur->where = 0;
        aio_file_req_done(req, -ECANCELED);
    }
}

void uring_file_post_nop(UringFile *uf)
{
    struct io_uring_sqe *sqe = aio_ring_get_sqe(&uf->ring);

    if (!sqe) {
        return;
    }
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, URING_DATA_INTERNAL);
    io_uring_submit(&uf->ring);
}

/* A completion: a request's goes to the done list. */
static void uring_file_complete(void *opaque, uint64_t data, int res)
{
    UringFile *uf = opaque;
    uint32_t tag = (uint32_t)(data >> 32);
    unsigned idx = tag & 0xffff;
    AioFileReq *req;
    UringReq *ur;

    if ((uint32_t)data != URING_TAG_FILE || idx >= URING_FILE_SLOTS) {
        return; /* a cancellation's or a no-op's own completion */
    }
    req = uf->slot[idx];
    if (!req) {
        return;
    }
    ur = aio_file_req_priv(req);
    if (ur->tag != tag) {
        return;
    }
    uf->slot[idx] = NULL;
    uf->gen[idx]++;
    uf->free_slots[uf->nfree++] = (uint16_t)idx;
    ur->res = res;
    ur->where = URING_FILE_DONE;
    AIO_FIFO_PUSH(&uf->done, req, next);
    uf->ndone++;
}

int uring_file_kick(UringFile *uf)
{
    int before = uf->ndone;

    if (!uf->ring_ok) {
        return 0;
    }
    uring_file_start_waiting(uf);
    aio_ring_kick(&uf->ring);
    aio_ring_reap(&uf->ring, 0, uring_file_complete, uf);
    if (uf->ndone != before) {
        uring_file_start_waiting(uf); /* slots were freed */
    }
    return uf->ndone - before;
}

/*
 * Whether file I/O needs wait(): completions to report, entries to hand
 * over, or completions the kernel has (in the CQ, or as work waiting for
 * a system call).  Busy-polling stops for them: no io_poll sees them.
 */
bool uring_file_need_wait(UringFile *uf)
{
    if (uf->ndone || (!aio_fifo_empty(&uf->waiting) && uf->nfree)) {
        return true;
    }
    if (!uf->ring_ok || !uring_file_busy(uf)) {
        return false;
    }
    return io_uring_sq_ready(&uf->ring) || io_uring_cq_ready(&uf->ring) ||
           (__atomic_load_n(uf->ring.sq.kflags, __ATOMIC_RELAXED) &
            IORING_SQ_TASKRUN);
}

bool uring_file_report(UringFile *uf)
{
    AioFileReq *req;
    bool progress = false;

    /* One at a time: a callback may nest aio_poll(), which goes on here. */
    while ((req = AIO_FIFO_POP(&uf->done, next))) {
        UringReq *ur = aio_file_req_priv(req);

        uf->ndone--;
        ur->where = 0;
        aio_file_req_done(req, ur->res);
        progress = true;
    }
    return progress;
}
