/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "linux-aio" engine: file descriptors are waited for exactly as by
 * "epoll" (the same code, engines/epoll.h); file I/O goes to Linux native
 * AIO through the context's LinuxAioState (laio.c), which init makes:
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

#include "engine.h"
#include "engines/epoll.h"
#include "file-io-internal.h"

typedef struct LaioEngine {
    EpollEngine ep;      /* first: engines/epoll.h's functions use it */
    LinuxAioState *laio; /* the front end frees it */
} LaioEngine;

static int laio_engine_probe(void)
{
    int ret = epoll_engine_probe();

    return ret < 0 ? ret : laio_probe();
}

static int laio_engine_init(AioContext *ctx, Error **errp)
{
    LaioEngine *le = aio_engine_priv(ctx);
    AioFileState *fs;
    int ret = epoll_engine_init(ctx, errp);

    if (ret < 0) {
        return ret;
    }
    ret = laio_state_new(ctx, "linux-aio", &le->laio, errp);
    if (ret < 0) {
        epoll_engine_destroy(ctx);
        return ret;
    }
    fs = aio_file_state_try(ctx);
    if (!fs) {
        error_setg_errno(errp, ENOMEM, "linux-aio");
        laio_state_free(le->laio);
        epoll_engine_destroy(ctx);
        return -ENOMEM;
    }
    /* aio_get_linux_aio() returns it; the front end frees it. */
    aio_store_release(&fs->laio, le->laio);
    return 0;
}

static AioFileExec *laio_engine_file_exec(AioContext *ctx)
{
    LaioEngine *le = aio_engine_priv(ctx);

    return laio_state_exec(le->laio);
}

const AioEngineOps aio_engine_linux_aio = {
    .version = AIO_ENGINE_OPS_VERSION,
    .name = "linux-aio",
    .ctx_priv_size = sizeof(LaioEngine),
    .handler_priv_size = sizeof(EpollSetNode),
    .probe = laio_engine_probe,
    .init = laio_engine_init,
    .destroy = epoll_engine_destroy,
    .update = epoll_engine_update,
    .wait = epoll_engine_wait,
    .need_wait = epoll_engine_need_wait,
    .pollfd = epoll_engine_pollfd,
    .file_exec = laio_engine_file_exec,
};
