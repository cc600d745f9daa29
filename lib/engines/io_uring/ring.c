/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ring helpers shared by the io_uring code: see ring.h.
 */
#include <errno.h>
#include <string.h>

#include "engines/io_uring/ring.h"
#include "engines/io_uring/tsan.h"

#ifdef AIOCTX_URING_TSAN
char aio_uring_tsan_sync;
#endif

int aio_ring_setup(struct io_uring *ring, unsigned entries,
                   const unsigned *flags, size_t nflags)
{
    struct io_uring_params params;
    int ret = -EINVAL;

    for (size_t i = 0; ret == -EINVAL && i < nflags; i++) {
        memset(&params, 0, sizeof(params));
        params.flags = flags[i];
        ret = io_uring_queue_init_params(entries, ring, &params);
    }
    if (ret == 0) {
        aio_uring_mapped();
    }
    return ret;
}

void aio_ring_teardown(struct io_uring *ring)
{
    aio_uring_unmapping();
    io_uring_queue_exit(ring);
}

struct io_uring_sqe *aio_ring_get_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

    if (!sqe) {
        io_uring_submit(ring); /* SQ full: hand over what is there */
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

void aio_ring_kick(struct io_uring *ring)
{
    if (io_uring_sq_ready(ring)) {
        io_uring_submit(ring);
    } else if (__atomic_load_n(ring->sq.kflags, __ATOMIC_RELAXED) &
               IORING_SQ_TASKRUN) {
        io_uring_get_events(ring);
    }
}

unsigned aio_ring_reap(struct io_uring *ring, unsigned budget,
                       void (*fn)(void *opaque, uint64_t data, int res),
                       void *opaque)
{
    struct io_uring_cqe *cqe;
    unsigned taken = 0;

    if (!budget) {
        budget = io_uring_cq_ready(ring);
    }
    while (taken < budget && io_uring_peek_cqe(ring, &cqe) == 0) {
        uint64_t data = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(ring, cqe);
        taken++;
        fn(opaque, data, res);
    }
    return taken;
}

void aio_ring_prep_file(struct io_uring_sqe *sqe, AioFileReq *req)
{
    const struct iovec *iov = req->iov;

    switch (req->type) {
    case QEMU_AIO_READ:
        if (req->iovcnt == 1) {
            io_uring_prep_read(sqe, req->fd, iov[0].iov_base,
                               (unsigned)iov[0].iov_len, req->offset);
        } else {
            io_uring_prep_readv(sqe, req->fd, iov, (unsigned)req->iovcnt,
                                req->offset);
        }
        break;
    case QEMU_AIO_WRITE:
        if (req->iovcnt == 1) {
            io_uring_prep_write(sqe, req->fd, iov[0].iov_base,
                                (unsigned)iov[0].iov_len, req->offset);
        } else {
            io_uring_prep_writev(sqe, req->fd, iov, (unsigned)req->iovcnt,
                                 req->offset);
        }
        break;
    default:
        io_uring_prep_fsync(sqe, req->fd,
                            req->datasync ? IORING_FSYNC_DATASYNC : 0);
        break;
    }
}
