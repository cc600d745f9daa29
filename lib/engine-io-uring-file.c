/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O for the "io_uring" engine, on a ring of its own.
 *
 * The ring is made by the first request and can be entered by any thread
 * (COOP_TASKRUN where the kernel has it), so requests complete whoever
 * polls the context next.  Its descriptor sits in the engine's epoll set
 * (engine-io-uring.c), so a sleeping loop wakes for its completions.
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

#include "engine-io-uring.h"
#include "uring-tsan.h"

#ifdef AIOCTX_URING_TSAN
char aio_uring_tsan_sync;
#endif

/* Ring flags, best first (see uring_setup_flags in engine-io-uring.c). */
static const unsigned uring_file_flags[] = {
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
        IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SUBMIT_ALL,
    0,
};

void uring_file_init(UringFile *uf)
{
    for (int i = 0; i < URING_FILE_SLOTS; i++) {
        uf->free_slots[i] = (uint16_t)(URING_FILE_SLOTS - 1 - i);
    }
    uf->nfree = URING_FILE_SLOTS;
    uf->wait_tail = &uf->wait_head;
    uf->done_tail = &uf->done_head;
}

void uring_file_destroy(UringFile *uf)
{
    if (uf->ring_ok) {
        aio_uring_unmapping();
        io_uring_queue_exit(&uf->ring);
    }
}

static int uring_file_ring(UringFile *uf)
{
    size_t n = sizeof(uring_file_flags) / sizeof(uring_file_flags[0]);
    struct io_uring_params params;
    int ret = -EINVAL;

    if (uf->ring_ok) {
        return 0;
    }
    for (size_t i = 0; ret == -EINVAL && i < n; i++) {
        memset(&params, 0, sizeof(params));
        params.flags = uring_file_flags[i];
        ret = io_uring_queue_init_params(URING_FILE_SLOTS, &uf->ring, &params);
    }
    uf->ring_ok = ret == 0;
    if (uf->ring_ok) {
        aio_uring_mapped();
    }
    return ret;
}

static struct io_uring_sqe *uring_file_sqe(UringFile *uf)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&uf->ring);

    if (!sqe) {
        io_uring_submit(&uf->ring); /* SQ full: hand over what is there */
        sqe = io_uring_get_sqe(&uf->ring);
    }
    return sqe;
}

/* Give req a slot and a prepared entry; false when out of either. */
static bool uring_file_take_slot(UringFile *uf, AioFileReq *req)
{
    struct io_uring_sqe *sqe;
    unsigned idx;

    if (!uf->nfree || !(sqe = uring_file_sqe(uf))) {
        return false;
    }
    idx = uf->free_slots[--uf->nfree];
    uf->slot[idx] = req;
    req->u.uring.tag = (uint32_t)uf->gen[idx] << 16 | idx;
    req->u.uring.where = URING_FILE_IN_RING;
    aio_file_uring_prep(sqe, req);
    io_uring_sqe_set_data64(sqe,
                            (uint64_t)req->u.uring.tag << 32 | URING_TAG_FILE);
    return true;
}

static void uring_file_start_waiting(UringFile *uf)
{
    AioFileReq *req;

    while ((req = uf->wait_head) && uring_file_take_slot(uf, req)) {
        uf->wait_head = req->next;
        if (!uf->wait_head) {
            uf->wait_tail = &uf->wait_head;
        }
    }
}

int uring_file_start_req(UringFile *uf, AioFileReq *req, int64_t max_batch)
{
    int ret = uring_file_ring(uf);

    if (ret < 0) {
        return ret;
    }
    if (uf->wait_head || !uring_file_take_slot(uf, req)) {
        req->next = NULL;
        req->u.uring.where = URING_FILE_WAITING;
        *uf->wait_tail = req;
        uf->wait_tail = &req->next;
        return 0;
    }
    if (max_batch > 0 && io_uring_sq_ready(&uf->ring) >= max_batch) {
        io_uring_submit(&uf->ring);
    }
    return 0;
}

void uring_file_cancel_req(UringFile *uf, AioFileReq *req)
{
    struct io_uring_sqe *sqe;
    AioFileReq **p;

    switch (req->u.uring.where) {
    case URING_FILE_WAITING:
        for (p = &uf->wait_head; *p != req; p = &(*p)->next) {
            continue;
        }
        *p = req->next;
        if (!*p) {
            uf->wait_tail = p;
        }
        req->u.uring.where = 0;
        aio_file_req_done(req, -ECANCELED);
        break;
    case URING_FILE_IN_RING:
        sqe = uring_file_sqe(uf);
        if (!sqe) {
            break; /* best effort: it completes normally */
        }
        io_uring_prep_cancel64(
            sqe, (uint64_t)req->u.uring.tag << 32 | URING_TAG_FILE, 0);
        io_uring_sqe_set_data64(sqe, URING_DATA_INTERNAL);
        break;
    default:
        break; /* already done: file_dispatch reports it */
    }
}

/* A request's CQE; returns 1 when it completed a request. */
static int uring_file_complete(UringFile *uf, uint64_t data, int res)
{
    uint32_t tag = (uint32_t)(data >> 32);
    unsigned idx = tag & 0xffff;
    AioFileReq *req;

    if ((uint32_t)data != URING_TAG_FILE || idx >= URING_FILE_SLOTS) {
        return 0; /* a cancellation's own completion */
    }
    req = uf->slot[idx];
    if (!req || req->u.uring.tag != tag) {
        return 0;
    }
    uf->slot[idx] = NULL;
    uf->gen[idx]++;
    uf->free_slots[uf->nfree++] = (uint16_t)idx;
    req->u.uring.res = res;
    req->u.uring.where = URING_FILE_DONE;
    req->next = NULL;
    *uf->done_tail = req;
    uf->done_tail = &req->next;
    uf->ndone++;
    return 1;
}

int uring_file_kick(UringFile *uf)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    int found = 0;

    if (!uf->ring_ok) {
        return 0;
    }
    uring_file_start_waiting(uf);
    /* Also runs the kernel's deferred completion work if it says so. */
    if (io_uring_sq_ready(&uf->ring)) {
        io_uring_submit(&uf->ring);
    } else if (aio_load(uf->ring.sq.kflags) & IORING_SQ_TASKRUN) {
        io_uring_get_events(&uf->ring);
    }
    io_uring_for_each_cqe(&uf->ring, head, cqe)
    {
        found +=
            uring_file_complete(uf, io_uring_cqe_get_data64(cqe), cqe->res);
        seen++;
    }
    io_uring_cq_advance(&uf->ring, seen);
    if (found) {
        uring_file_start_waiting(uf); /* slots were freed */
    }
    return found;
}

/*
 * Whether file I/O needs wait(): completions to report, entries to hand
 * over, or completions the kernel has (in the CQ, or as work waiting for
 * a system call).  Busy-polling stops for them: no io_poll sees them.
 */
bool uring_file_need_wait(UringFile *uf)
{
    if (uf->ndone || (uf->wait_head && uf->nfree)) {
        return true;
    }
    if (!uf->ring_ok || !uring_file_busy(uf)) {
        return false;
    }
    return io_uring_sq_ready(&uf->ring) || io_uring_cq_ready(&uf->ring) ||
           (aio_load(uf->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

/* Run the callbacks of completed requests; true if there were any. */
bool uring_file_report(UringFile *uf)
{
    AioFileReq *req;
    bool progress = false;

    /* One at a time: a callback may nest aio_poll(), which goes on here. */
    while ((req = uf->done_head)) {
        uf->done_head = req->next;
        if (!uf->done_head) {
            uf->done_tail = &uf->done_head;
        }
        uf->ndone--;
        req->u.uring.where = 0;
        aio_file_req_done(req, req->u.uring.res);
        progress = true;
    }
    return progress;
}
