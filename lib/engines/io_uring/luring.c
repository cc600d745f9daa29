/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * io_uring block I/O for QEMU's luring_co_submit(): LuringState, one per
 * context (aio_setup_linux_io_uring()).
 *
 * On the "io_uring" engine the state is only a marker: requests go to the
 * engine's own file ring (file-ring.c), the engine's executor.  On any
 * other engine it owns a ring of LURING_ENTRIES submission entries (the
 * kernel gives the completion queue twice that) whose descriptor is
 * watched by the context,
 * with io_poll looking at the completion queue.  Requests, and the
 * cancellations aimed at them, never number more than the completion queue
 * holds; more wait in a FIFO for a free entry.  Entries are filled at once
 * and handed to the kernel from the state's bottom half (one io_uring_enter
 * per loop iteration), or at once when the submission queue is full.
 *
 * A request's user_data is its address; a cancellation's is the address
 * with the low bit set, and holds a reference on the request until its
 * own completion arrives, so the address cannot be reused meanwhile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aio-internal.h"
#include "aioctx/coroutine.h"
#include "engine.h"
#include "engines/io_uring/io_uring.h"
#include "log-internal.h"

#define LURING_ENTRIES 128
#define LURING_MAX_IN_FLIGHT (2 * LURING_ENTRIES) /* the CQ's size */

struct LuringState {
    AioFileExec exec;     /* first: what the front end holds */
    AioContext *ctx;
    AioFileExec *engine;  /* the engine's file ring runs the requests */
    struct io_uring ring;
    unsigned in_flight;   /* entries filled, completion not seen */
    AioFileReqFifo queue; /* waiting for an entry */
    QEMUBH *bh;
};

/* A request's private area. */
typedef struct LuringReq {
    bool queued; /* waiting for a submission entry */
} LuringReq;

/* ---- the dedicated ring ---- */

static struct io_uring_sqe *luring_get_sqe(LuringState *s)
{
    struct io_uring_sqe *sqe;

    if (s->in_flight >= LURING_MAX_IN_FLIGHT) {
        return NULL;
    }
    sqe = aio_ring_get_sqe(&s->ring);
    if (sqe) {
        s->in_flight++;
    }
    return sqe;
}

static bool luring_start(LuringState *s, AioFileReq *req)
{
    struct io_uring_sqe *sqe = luring_get_sqe(s);

    if (!sqe) {
        return false;
    }
    aio_ring_prep_file(sqe, req);
    io_uring_sqe_set_data(sqe, req);
    qemu_bh_schedule(s->bh);
    return true;
}

/* Give waiting requests entries, then the kernel everything filled. */
static void luring_flush(LuringState *s)
{
    AioFileReq *req;

    while ((req = s->queue.head) && luring_start(s, req)) {
        AIO_FIFO_POP(&s->queue, next);
        ((LuringReq *)aio_file_req_priv(req))->queued = false;
    }
    if (io_uring_sq_ready(&s->ring)) {
        io_uring_submit(&s->ring);
    }
}

/*
 * Handle the completions that are there now (not those that callbacks'
 * submissions add meanwhile: the loop must get control back).
 */
static void luring_complete(void *opaque, uint64_t data, int res)
{
    LuringState *s = opaque;

    s->in_flight--;
    if (data & 1) {
        qemu_aio_unref((void *)(uintptr_t)(data & ~(uint64_t)1)); /* cancel */
        return;
    }
    aio_file_req_done((AioFileReq *)(uintptr_t)data, res);
}

static void luring_process(LuringState *s)
{
    if (!io_uring_cq_ready(&s->ring)) {
        return;
    }
    qemu_bh_schedule(s->bh); /* for callbacks that nest aio_poll() */
    aio_ring_reap(&s->ring, 0, luring_complete, s);
    qemu_bh_cancel(s->bh);
}

static void luring_process_and_flush(LuringState *s)
{
    luring_process(s);
    luring_flush(s);
}

static void luring_bh(void *opaque)
{
    luring_process_and_flush(opaque);
}

static void luring_fd_read(void *opaque)
{
    luring_process_and_flush(opaque);
}

static bool luring_fd_poll(void *opaque)
{
    LuringState *s = opaque;

    return io_uring_cq_ready(&s->ring) > 0;
}

static int luring_submit(AioFileExec *exec, AioFileReq *req)
{
    LuringState *s = (LuringState *)exec;
    LuringReq *lr = aio_file_req_priv(req);

    if (!aio_fifo_empty(&s->queue) || !luring_start(s, req)) {
        lr->queued = true;
        AIO_FIFO_PUSH(&s->queue, req, next);
    }
    return 0;
}

static void luring_cancel(AioFileExec *exec, AioFileReq *req)
{
    LuringState *s = (LuringState *)exec;
    LuringReq *lr = aio_file_req_priv(req);
    struct io_uring_sqe *sqe;

    if (lr->queued) {
        AIO_FIFO_REMOVE(&s->queue, req, next);
        lr->queued = false;
        aio_file_req_done(req, -ECANCELED);
        return;
    }
    sqe = luring_get_sqe(s);
    if (!sqe) {
        return; /* best effort: it completes normally */
    }
    io_uring_prep_cancel(sqe, req, 0);
    io_uring_sqe_set_data(sqe, (void *)((uintptr_t)req | 1));
    qemu_aio_ref(req);
    qemu_bh_schedule(s->bh);
}

static const AioFileExecOps luring_ops = {
    .name = "luring",
    .req_priv_size = sizeof(LuringReq),
    .submit = luring_submit,
    .cancel = luring_cancel,
};

/* ---- life cycle ---- */

void luring_state_free(LuringState *s)
{
    AioFileReq *req;

    if (s->engine) {
        free(s);
        return;
    }
    while ((req = AIO_FIFO_POP(&s->queue, next))) {
        ((LuringReq *)aio_file_req_priv(req))->queued = false;
        aio_file_req_done(req, -ECANCELED);
    }
    while (s->in_flight) {
        int ret = io_uring_submit_and_wait(&s->ring, 1);

        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
            aio_log(AIO_LOG_ERROR, "io_uring_enter: %s", strerror(-ret));
            break;
        }
        luring_process(s);
    }
    aio_set_fd_handler(s->ctx, s->ring.ring_fd, NULL, NULL, NULL, NULL, NULL);
    qemu_bh_delete(s->bh);
    aio_ring_teardown(&s->ring);
    free(s);
}

static LuringState *luring_state_new(AioContext *ctx, Error **errp)
{
    static const unsigned no_flags = 0;
    LuringState *s = calloc(1, sizeof(*s));
    int ret;

    if (!s) {
        error_setg_errno(errp, ENOMEM, "io_uring");
        return NULL;
    }
    s->exec.ops = &luring_ops;
    s->ctx = ctx;
    /* aio_setup_linux_io_uring() made the front end state already. */
    if (uring_file_is_exec(aio_file_state_peek(ctx)->engine_exec)) {
        s->engine = aio_file_state_peek(ctx)->engine_exec;
        return s;
    }
    ret = aio_ring_setup(&s->ring, LURING_ENTRIES, &no_flags, 1);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "io_uring");
        free(s);
        return NULL;
    }
    aio_fifo_init(&s->queue);
    s->bh = aio_bh_try_new(ctx, luring_bh, s, "luring_bh");
    if (!s->bh) {
        error_setg_errno(errp, ENOMEM, "io_uring");
        aio_ring_teardown(&s->ring);
        free(s);
        return NULL;
    }
    if (!aio_set_fd_handler_full(ctx, s->ring.ring_fd, luring_fd_read, NULL,
                                 luring_fd_poll, luring_fd_read, s, false)) {
        error_setg_errno(errp, ENOMEM, "io_uring: cannot watch the ring");
        qemu_bh_delete(s->bh);
        aio_ring_teardown(&s->ring);
        free(s);
        return NULL;
    }
    return s;
}

/* ---- QEMU's entry points ---- */

AIOCTX_API LuringState *aio_setup_linux_io_uring(AioContext *ctx, Error **errp)
{
    LuringState *s, *expected = NULL;
    AioFileState *fs;

    if (!ctx) {
        error_setg(errp, "io_uring: no context given");
        return NULL;
    }
    fs = aio_file_state_try(ctx);
    if (!fs) {
        error_setg_errno(errp, ENOMEM, "io_uring");
        return NULL;
    }
    s = aio_load_acquire(&fs->luring);
    if (s) {
        return s;
    }
    s = luring_state_new(ctx, errp);
    if (!s) {
        return NULL;
    }
    if (!__atomic_compare_exchange_n(&fs->luring, &expected, s, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        luring_state_free(s);
        return expected;
    }
    return s;
}

AIOCTX_API LuringState *aio_get_linux_io_uring(AioContext *ctx)
{
    AioFileState *fs = ctx ? aio_file_state_peek(ctx) : NULL;

    return fs ? aio_load_acquire(&fs->luring) : NULL;
}

AIOCTX_API int coroutine_fn luring_co_submit(BlockDriverState *bs, int fd,
                                             uint64_t offset,
                                             QEMUIOVector *qiov, int type)
{
    AioContext *ctx = qemu_get_current_aio_context();
    LuringState *s = aio_get_linux_io_uring(ctx);

    (void)bs;
    if (!s && qemu_in_coroutine()) {
        return -ENXIO;
    }
    return aio_file_co_qemu("luring_co_submit",
                            !s ? NULL : s->engine ? s->engine : &s->exec, fd,
                            offset, qiov, type, 0);
}
