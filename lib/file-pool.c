/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The thread pool as a file I/O executor: the poll and epoll engines'
 * executor, and where Linux AIO sends the flushes its kernel cannot do.
 *
 * A worker makes one system call for the part it is given (preadv,
 * pwritev, fsync or fdatasync).  Before that, a buffered read or write
 * that needs no disk I/O is done at once in the loop thread with
 * RWF_NOWAIT (the kernel says EAGAIN instead of sleeping), saving two
 * thread hand-offs; its completion is still delivered later, from the
 * front end's bottom half (aio_file_req_done() defers completions that
 * arrive while a submit runs).  A partial transfer is fine: the front end
 * submits the rest, which then goes to a worker.  O_DIRECT descriptors
 * skip that path: their reads wait for the device even with RWF_NOWAIT.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "aioctx/thread-pool.h"
#include "file-io-internal.h"

typedef struct PoolReq {
    BlockAIOCB *acb; /* the thread-pool request, until its callback */
} PoolReq;

_Static_assert(sizeof(PoolReq) == sizeof(void *),
               "file-io-internal.h promises a one-pointer area");

/* In a worker: one system call for the part (EINTR retried here). */
static int pool_work(void *opaque)
{
    AioFileReq *req = opaque;
    ssize_t ret;

    do {
        switch (req->type) {
        case QEMU_AIO_READ:
            ret = preadv(req->fd, req->iov, req->iovcnt, (off_t)req->offset);
            break;
        case QEMU_AIO_WRITE:
            ret = pwritev(req->fd, req->iov, req->iovcnt, (off_t)req->offset);
            break;
        default:
            ret = req->datasync ? fdatasync(req->fd) : fsync(req->fd);
            break;
        }
    } while (ret < 0 && errno == EINTR);
    /* One call moves at most 0x7ffff000 bytes, which fits an int. */
    return ret < 0 ? -errno : (int)ret;
}

static void pool_done(void *opaque, int ret)
{
    AioFileReq *req = opaque;
    PoolReq *pr = aio_file_req_priv(req);

    pr->acb = NULL;
    aio_file_req_done(req, ret);
}

/* The RWF_NOWAIT path; false when a worker must do the part. */
static bool pool_try_nowait(AioFileReq *req)
{
    int flags;
    ssize_t ret;

    if (req->type == QEMU_AIO_FLUSH) {
        return false;
    }
    flags = fcntl(req->fd, F_GETFL);
    if (flags < 0 || (flags & O_DIRECT)) {
        return false;
    }
    if (req->type == QEMU_AIO_READ) {
        ret = preadv2(req->fd, req->iov, req->iovcnt, (off_t)req->offset,
                      RWF_NOWAIT);
    } else {
        ret = pwritev2(req->fd, req->iov, req->iovcnt, (off_t)req->offset,
                       RWF_NOWAIT);
    }
    if (ret < 0 || (ret == 0 && req->type == QEMU_AIO_WRITE)) {
        return false; /* EAGAIN, EOPNOTSUPP, ...: the worker finds out */
    }
    aio_file_req_done(req, ret);
    return true;
}

static int pool_submit(AioFileExec *exec, AioFileReq *req)
{
    AioContext *ctx = req->fs->ctx;
    AioContext *current = qemu_get_current_aio_context();
    PoolReq *pr = aio_file_req_priv(req);

    (void)exec;
    if (pool_try_nowait(req)) {
        return 0;
    }
    /*
     * thread_pool_submit_aio() works on the calling thread's current
     * context: make that ctx for the call (nothing can switch coroutines
     * in between).
     */
    qemu_set_current_aio_context(ctx);
    pr->acb = thread_pool_submit_aio(pool_work, req, pool_done, req);
    qemu_set_current_aio_context(current);
    return 0;
}

static void pool_cancel(AioFileExec *exec, AioFileReq *req)
{
    PoolReq *pr = aio_file_req_priv(req);

    (void)exec;
    if (pr->acb) {
        bdrv_aio_cancel_async(pr->acb);
    }
}

const AioFileExecOps aio_file_pool_ops = {
    .name = "thread-pool",
    .req_priv_size = sizeof(PoolReq),
    .submit = pool_submit,
    .cancel = pool_cancel,
};
