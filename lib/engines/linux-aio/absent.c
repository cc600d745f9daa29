/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QEMU's Linux AIO entry points in a build without the linux-aio engine
 * (CMake AIOCTX_WITH_LINUX_AIO=OFF, or libaio not found): they exist, so
 * the ABI is the same, and say that Linux AIO is not available.
 */
#include <errno.h>

#include "aioctx/coroutine.h"
#include "aioctx/file-io.h"

AIOCTX_API LinuxAioState *aio_setup_linux_aio(AioContext *ctx, Error **errp)
{
    (void)ctx;
    error_setg_errno(errp, ENOTSUP,
                     "Linux AIO: libaioctx was built without it");
    return NULL;
}

AIOCTX_API LinuxAioState *aio_get_linux_aio(AioContext *ctx)
{
    (void)ctx;
    return NULL;
}

AIOCTX_API int coroutine_fn laio_co_submit(int fd, uint64_t offset,
                                           QEMUIOVector *qiov, int type,
                                           uint64_t dev_max_batch)
{
    (void)fd;
    (void)offset;
    (void)qiov;
    (void)type;
    (void)dev_max_batch;
    return -ENXIO; /* no state can have been set up */
}
