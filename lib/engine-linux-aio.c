/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "linux-aio" engine: file descriptors are waited for exactly as by
 * "epoll" (the same code, engine-epoll.h); file I/O goes to Linux native
 * AIO through the context's LinuxAioState (linux-aio.c), which init makes:
 * io_setup() for 256 requests in flight (more wait in a queue; each context
 * takes 256 from fs.aio-max-nr), an eventfd registered on the context as an
 * event notifier, completions read from the kernel's ring in user space,
 * submissions batched up to the context's aio_max_batch (default 32).
 *
 * A kernel without Linux AIO (or a seccomp filter refusing io_setup) makes
 * the probe fail: the engine is unavailable.  An io_setup() that fails in
 * init (fs.aio-max-nr used up: EAGAIN) fails the context's creation.
 * Either way asking for the engine by name is an error naming the cause.
 * "auto" never takes it (see engine.h).
 */
#include <errno.h>

#include "aio-internal.h"
#include "engine-epoll.h"
#include "file-io-internal.h"

static int laio_engine_probe(void)
{
    int ret = epoll_engine_probe();

    return ret < 0 ? ret : laio_probe();
}

static int laio_engine_init(AioContext *ctx, Error **errp)
{
    LinuxAioState *s;
    AioFileState *fs;
    int ret = epoll_engine_init(ctx, errp);

    if (ret < 0) {
        return ret;
    }
    ret = laio_state_new(ctx, "linux-aio", &s, errp);
    if (ret < 0) {
        epoll_engine_destroy(ctx);
        return ret;
    }
    fs = aio_file_state_try(ctx);
    if (!fs) {
        error_setg_errno(errp, ENOMEM, "linux-aio");
        laio_state_free(s);
        epoll_engine_destroy(ctx);
        return -ENOMEM;
    }
    /* aio_get_linux_aio() returns it; the front end frees it. */
    aio_store_release(&fs->laio, s);
    return 0;
}

static int laio_engine_file_submit(AioContext *ctx, AioFileReq *req)
{
    (void)ctx;
    return laio_exec.submit(aio_load(&req->fs->laio), req);
}

static void laio_engine_file_cancel(AioContext *ctx, AioFileReq *req)
{
    (void)ctx;
    laio_exec.cancel(aio_load(&req->fs->laio), req);
}

const AioEngineOps aio_engine_linux_aio = {
    .version = AIO_ENGINE_OPS_VERSION,
    .name = "linux-aio",
    .ctx_priv_size = sizeof(EpollEngine),
    .handler_priv_size = sizeof(EpollHandler),
    .probe = laio_engine_probe,
    .init = laio_engine_init,
    .destroy = epoll_engine_destroy,
    .update = epoll_engine_update,
    .wait = epoll_engine_wait,
    .need_wait = epoll_engine_need_wait,
    .pollfd = epoll_engine_pollfd,
    .file_submit = laio_engine_file_submit,
    .file_cancel = laio_engine_file_cancel,
};
