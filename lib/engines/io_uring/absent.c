/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QEMU's io_uring block I/O entry points in a build without the io_uring
 * engine (CMake AIOCTX_WITH_IO_URING=OFF, or liburing not found): they
 * exist, so the ABI is the same, and say that io_uring is not available.
 */
#include <errno.h>

#include "aioctx/coroutine.h"
#include "aioctx/file-io.h"

AIOCTX_API LuringState *aio_setup_linux_io_uring(AioContext *ctx,
                                                 Error **errp)
{
    (void)ctx;
    error_setg_errno(errp, ENOTSUP, "io_uring: libaioctx was built without it");
    return NULL;
}

AIOCTX_API LuringState *aio_get_linux_io_uring(AioContext *ctx)
{
    (void)ctx;
    return NULL;
}

AIOCTX_API int coroutine_fn luring_co_submit(BlockDriverState *bs, int fd,
                                             uint64_t offset,
                                             QEMUIOVector *qiov, int type)
{
    (void)bs;
    (void)fd;
    (void)offset;
    (void)qiov;
    (void)type;
    return -ENXIO; /* no state can have been set up */
}
