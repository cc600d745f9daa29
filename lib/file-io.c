/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file I/O front end: aio_file_* requests, whatever executes them.
 *
 * A request is split into parts only when the kernel transfers less than
 * asked: the first part is the whole request; each completion reports the
 * bytes of the part, and while bytes remain and the last part moved some,
 * the front end builds an iovec for the remainder and hands that to the
 * same executor (see file-io-internal.h).  A part that moved nothing ends
 * the request (end of file); an error ends it too.  -EINTR and -EAGAIN
 * resubmit the same part, a bounded number of times.
 *
 * Callbacks never run inside the call that submitted their request: a
 * completion that arrives while an executor's submit runs (a request
 * refused at once, or another request failed by a batched submission) is
 * put on a deferred list and delivered from the state's bottom half.
 *
 * Cancellation may come from any thread.  In the context's own thread (the
 * one whose current context it is) the executor is asked at once; from
 * elsewhere the request is referenced, pushed on a lock-free list, and the
 * bottom half asks the executor in the home thread.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "aio-internal.h"
#include "aioctx/coroutine.h"
#include "file-io-internal.h"
#include "log-internal.h"

/*
 * -EINTR / -EAGAIN (and unasked -ECANCELED) resubmissions of one part
 * before the error stands.
 */
#define FILE_MAX_RETRIES 64
/* Finished requests a context keeps for reuse (saves malloc and free). */
#define FILE_SPARE_MAX 256

static void file_cancel_async(BlockAIOCB *acb);
static void file_bh(void *opaque);

static const AIOCBInfo file_aiocb_info = {
    .cancel_async = file_cancel_async,
    .aiocb_size = sizeof(AioFileReq), /* plus the executor's area */
};

static void file_die(const char *what)
{
    aio_fatal("%s", what);
}

/* ---- per-context state ---- */

AioFileState *aio_file_state_peek(AioContext *ctx)
{
    return aio_load_acquire(&ctx->file_state);
}

AioFileState *aio_file_state(AioContext *ctx)
{
    AioFileState *fs = aio_file_state_try(ctx);

    if (!fs) {
        file_die("out of memory allocating the file I/O state");
    }
    return fs;
}

AioFileState *aio_file_state_try(AioContext *ctx)
{
    AioFileState *fs = aio_load_acquire(&ctx->file_state);
    AioFileState *expected = NULL;

    if (fs) {
        return fs;
    }
    fs = calloc(1, sizeof(*fs));
    if (!fs) {
        return NULL;
    }
    fs->ctx = ctx;
    aio_fifo_init(&fs->deferred);
    fs->pool_exec.ops = &aio_file_pool_ops;
    fs->engine_exec = ctx->engine->file_exec ? ctx->engine->file_exec(ctx)
                                             : NULL;
    if (!fs->engine_exec) {
        fs->engine_exec = &fs->pool_exec;
    }
    fs->bh = aio_bh_try_new(ctx, file_bh, fs, "file_bh");
    if (!fs->bh) {
        free(fs);
        return NULL;
    }
    if (!__atomic_compare_exchange_n(&ctx->file_state, &expected, fs, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        qemu_bh_delete(fs->bh);
        free(fs);
        return expected;
    }
    return fs;
}

/* ---- a request's life ---- */

/* Describe what is left after req->done bytes; false when out of memory. */
static bool req_trim(AioFileReq *req)
{
    size_t skip = req->done;
    int first = 0, n;

    while (first < req->orig_iovcnt && skip >= req->orig_iov[first].iov_len) {
        skip -= req->orig_iov[first].iov_len;
        first++;
    }
    n = req->orig_iovcnt - first; /* > 0: done < size */
    free(req->rest);
    req->rest = malloc((size_t)n * sizeof(*req->rest));
    if (!req->rest) {
        req->error = -ENOMEM;
        return false;
    }
    memcpy(req->rest, req->orig_iov + first, (size_t)n * sizeof(*req->rest));
    req->rest[0].iov_base = (char *)req->rest[0].iov_base + skip;
    req->rest[0].iov_len -= skip;
    req->iov = req->rest;
    req->iovcnt = n;
    req->offset = req->orig_offset + req->done;
    return true;
}

/* Account for a part's result; true when another part must be submitted. */
static bool req_advance(AioFileReq *req, int64_t res)
{
    size_t left = req->size - req->done;

    /*
     * io_uring completes a request with -ECANCELED when it cannot start
     * an io-wq worker for it: thread creation interrupted by signals is
     * retried only a few times.  Nobody asked to cancel: submit it again.
     */
    if ((res == -EINTR || res == -EAGAIN || res == -ECANCELED) &&
        !req->cancel_asked && req->retries < FILE_MAX_RETRIES) {
        req->retries++;
        return true; /* the same part again */
    }
    if (res < 0) {
        req->error = (int)res;
        return false;
    }
    if (req->type == QEMU_AIO_FLUSH) {
        return false;
    }
    if ((uint64_t)res > left) {
        res = (int64_t)left; /* never more than asked */
    }
    req->done += (size_t)res;
    if (res == 0 || req->done == req->size) {
        return false; /* complete, or end of file */
    }
    return req_trim(req);
}

/* Hand the current part to the executor; 0 or -errno. */
static int req_submit_part(AioFileReq *req)
{
    AioFileState *fs = req->fs;
    int ret;

    req->stage = AIO_FILE_EXEC;
    memset(req->priv, 0, req->exec->ops->req_priv_size);
    fs->submitting++;
    ret = req->exec->ops->submit(req->exec, req);
    fs->submitting--;
    if (ret < 0) {
        req->stage = AIO_FILE_FRONT;
    }
    return ret;
}

int aio_file_req_redirect(AioFileReq *req, AioFileExec *exec)
{
    assert(exec->ops->req_priv_size <= req->priv_size);
    req->exec = exec;
    memset(req->priv, 0, exec->ops->req_priv_size);
    return exec->ops->submit(exec, req);
}

/* Ask req's executor to cancel it (it has req, and was not asked yet). */
static void exec_cancel(AioFileReq *req)
{
    req->cancel_asked = true;
    if (req->exec->ops->cancel) {
        req->exec->ops->cancel(req->exec, req);
    }
}

static void req_finish(AioFileReq *req)
{
    AioFileState *fs = req->fs;
    int64_t ret;

    if (req->type == QEMU_AIO_FLUSH) {
        ret = req->error;
    } else if (req->error && req->done == 0) {
        ret = req->error;
    } else {
        ret = (int64_t)req->done; /* bytes moved before an error count */
    }
    free(req->rest);
    req->rest = NULL;
    fs->unfinished--;
    aio_stat_add(fs->ctx, file_completed, 1);
    req->finish(req, ret);
    /*
     * Nobody may take a reference once the callback has returned, so
     * with only ours left the block can be reused.
     */
    if (aio_load_acquire(&req->common.refcnt) == 1 && !fs->destroying &&
        fs->nspare < FILE_SPARE_MAX) {
        req->next = fs->spare;
        fs->spare = req;
        fs->nspare++;
        return;
    }
    qemu_aio_unref(req);
}

/* Continue after a part finished with res, or finish. */
static void req_complete(AioFileReq *req, int64_t res)
{
    int ret;

    while (req_advance(req, res)) {
        if (req->fs->destroying) {
            if (!req->done) {
                req->error = -ECANCELED;
            }
            break;
        }
        ret = req_submit_part(req);
        if (ret == 0) {
            return;
        }
        res = ret;
    }
    req_finish(req);
}

static void req_defer(AioFileReq *req, int64_t res)
{
    AioFileState *fs = req->fs;

    req->res = res;
    AIO_FIFO_PUSH(&fs->deferred, req, next);
    qemu_bh_schedule(fs->bh);
}

void aio_file_req_done(AioFileReq *req, int64_t res)
{
    req->stage = AIO_FILE_FRONT;
    if (req->fs->submitting) {
        req_defer(req, res); /* never inside the submitting call */
        return;
    }
    req_complete(req, res);
}

/* Run what other threads asked to cancel; then deferred completions. */
static void file_bh(void *opaque)
{
    AioFileState *fs = opaque;
    AioFileReq *list, *req;
    bool rearmed = false;

    list = __atomic_exchange_n(&fs->cancel_list, NULL, __ATOMIC_ACQUIRE);
    while ((req = list)) {
        list = req->cancel_next;
        if (req->stage == AIO_FILE_EXEC && !req->cancel_asked) {
            exec_cancel(req);
        }
        qemu_aio_unref(req);
    }
    while ((req = AIO_FIFO_POP(&fs->deferred, next))) {
        if (!aio_fifo_empty(&fs->deferred) && !rearmed) {
            /* A callback that nests aio_poll() gets the others there. */
            rearmed = true;
            qemu_bh_schedule(fs->bh);
        }
        req_complete(req, req->res);
    }
    if (rearmed) {
        qemu_bh_cancel(fs->bh);
        if (aio_load(&fs->cancel_list) || !aio_fifo_empty(&fs->deferred)) {
            qemu_bh_schedule(fs->bh);
        }
    }
}

static void file_cancel_async(BlockAIOCB *acb)
{
    AioFileReq *req = (AioFileReq *)acb;
    AioFileState *fs = req->fs;
    AioFileReq *head;

    if (__atomic_exchange_n(&req->cancel_once, true, __ATOMIC_ACQ_REL)) {
        return; /* asked before: it is on its way */
    }
    if (qemu_get_current_aio_context() == fs->ctx) {
        /* The home thread: ask now, before the executor moves on. */
        if (req->stage == AIO_FILE_EXEC && !req->cancel_asked) {
            fs->submitting++; /* its callback still runs later */
            exec_cancel(req);
            fs->submitting--;
        }
        return;
    }
    qemu_aio_ref(req);
    head = aio_load(&fs->cancel_list);
    do {
        req->cancel_next = head;
    } while (!__atomic_compare_exchange_n(&fs->cancel_list, &head, req, true,
                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    qemu_bh_schedule(fs->bh);
}

static void finish_cb(AioFileReq *req, int64_t ret)
{
    if (req->common.cb) {
        req->common.cb(req->common.opaque, (int)ret);
    }
}

/* Total length of iov, or -1 when refused (see file-io.h). */
static ssize_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t size = 0;

    if (iovcnt < 0 || (iovcnt > 0 && !iov)) {
        return -1;
    }
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > (size_t)INT_MAX - size) {
            return -1;
        }
        size += iov[i].iov_len;
    }
    return (ssize_t)size;
}

/*
 * A request block with room for a private area of priv_size bytes: a spare
 * one if one is big enough, else a new one.  Every area can hold the
 * thread pool's (see aio_file_req_redirect()).
 */
static AioFileReq *req_alloc(AioFileState *fs, size_t priv_size,
                             BlockCompletionFunc *cb, void *opaque)
{
    AioFileReq *req;

    if (priv_size < aio_file_pool_ops.req_priv_size) {
        priv_size = aio_file_pool_ops.req_priv_size;
    }
    while ((req = fs->spare)) {
        fs->spare = req->next;
        fs->nspare--;
        if (req->priv_size >= priv_size) {
            priv_size = req->priv_size;
            break;
        }
        qemu_aio_unref(req);
    }
    if (!req) {
        req = aiocb_alloc(sizeof(*req) + priv_size);
    }
    memset(req, 0, sizeof(*req));
    req->common = (BlockAIOCB){ .aiocb_info = &file_aiocb_info,
                                .cb = cb,
                                .opaque = opaque,
                                .refcnt = 1 };
    req->priv_size = priv_size;
    return req;
}

/*
 * A new request on ctx run by exec (NULL: the engine's executor), or NULL
 * when the arguments are refused.
 */
static AioFileReq *req_new(AioContext *ctx, int type, int fd, uint64_t offset,
                           const struct iovec *iov, int iovcnt, bool datasync,
                           AioFileExec *exec, BlockCompletionFunc *cb,
                           void *opaque)
{
    ssize_t size = type == QEMU_AIO_FLUSH ? 0 : iov_total(iov, iovcnt);
    AioFileState *fs;
    AioFileReq *req;

    if (!ctx || size < 0) {
        return NULL;
    }
    fs = aio_file_state(ctx);
    if (!exec) {
        exec = fs->engine_exec;
    }
    req = req_alloc(fs, exec->ops->req_priv_size, cb, opaque);
    req->fs = fs;
    req->exec = exec;
    req->finish = finish_cb;
    req->type = type;
    req->fd = fd;
    req->datasync = datasync;
    if (type != QEMU_AIO_FLUSH) {
        req->iov = req->orig_iov = iov;
        req->iovcnt = req->orig_iovcnt = iovcnt;
        req->offset = req->orig_offset = offset;
        req->size = (size_t)size;
    }
    return req;
}

static void req_start(AioFileReq *req)
{
    AioFileState *fs = req->fs;
    int ret;

    fs->unfinished++;
    aio_stat_add(fs->ctx, file_submitted, 1);
    if (fs->destroying) {
        req_defer(req, -ECANCELED);
        return;
    }
    if (req->type != QEMU_AIO_FLUSH && req->offset > (uint64_t)INT64_MAX) {
        /* pread() says so; io_uring would take it for "current position". */
        req_defer(req, -EINVAL);
        return;
    }
    ret = req_submit_part(req);
    if (ret < 0) {
        req_defer(req, ret);
    }
}

/* ---- the callback form ---- */

static BlockAIOCB *file_submit_cb(AioContext *ctx, int type, int fd,
                                  uint64_t offset, const struct iovec *iov,
                                  int iovcnt, bool datasync,
                                  BlockCompletionFunc *cb, void *opaque)
{
    AioFileReq *req =
        req_new(ctx, type, fd, offset, iov, iovcnt, datasync, NULL, cb, opaque);

    if (!req) {
        return NULL;
    }
    req_start(req);
    return &req->common;
}

AIOCTX_API BlockAIOCB *aio_file_preadv(AioContext *ctx, int fd, uint64_t offset,
                                       const struct iovec *iov, int iovcnt,
                                       BlockCompletionFunc *cb, void *opaque)
{
    return file_submit_cb(ctx, QEMU_AIO_READ, fd, offset, iov, iovcnt, false,
                          cb, opaque);
}

AIOCTX_API BlockAIOCB *aio_file_pwritev(AioContext *ctx, int fd,
                                        uint64_t offset,
                                        const struct iovec *iov, int iovcnt,
                                        BlockCompletionFunc *cb, void *opaque)
{
    return file_submit_cb(ctx, QEMU_AIO_WRITE, fd, offset, iov, iovcnt, false,
                          cb, opaque);
}

AIOCTX_API BlockAIOCB *aio_file_fsync(AioContext *ctx, int fd, bool datasync,
                                      BlockCompletionFunc *cb, void *opaque)
{
    return file_submit_cb(ctx, QEMU_AIO_FLUSH, fd, 0, NULL, 0, datasync, cb,
                          opaque);
}

/* ---- the coroutine forms ---- */

typedef struct FileCoWait {
    Coroutine *co;
    int64_t ret;
    size_t done; /* for QEMU-style results */
    size_t size;
    int error;
    bool finished;
} FileCoWait;

static void finish_co(AioFileReq *req, int64_t ret)
{
    FileCoWait *w = req->common.opaque;

    w->ret = ret;
    w->done = req->done;
    w->size = req->size;
    w->error = req->error;
    w->finished = true;
    if (req->fs->destroying) {
        qemu_coroutine_enter(w->co); /* its context is going away */
    } else {
        aio_co_wake(w->co);
    }
}

static void require_coroutine(const char *fn)
{
    if (!qemu_in_coroutine()) {
        aio_fatal("%s called outside a coroutine", fn);
    }
}

/*
 * Submit on the current context and wait; fills *w.  Returns false (and
 * nothing was submitted) when there is no current context or the
 * arguments are refused.
 */
static bool coroutine_fn file_co_run(FileCoWait *w, int type, int fd,
                                     uint64_t offset, const struct iovec *iov,
                                     int iovcnt, bool datasync,
                                     AioFileExec *exec, uint64_t max_batch)
{
    AioContext *ctx = qemu_get_current_aio_context();
    AioFileReq *req;

    *w = (FileCoWait){ .co = qemu_coroutine_self() };
    req = req_new(ctx, type, fd, offset, iov, iovcnt, datasync, exec, NULL,
                  w);
    if (!req) {
        return false;
    }
    req->finish = finish_co;
    req->max_batch = max_batch;
    req_start(req);
    while (!w->finished) {
        qemu_coroutine_yield();
    }
    return true;
}

static ssize_t coroutine_fn file_co_simple(const char *fn, int type, int fd,
                                           uint64_t offset,
                                           const struct iovec *iov, int iovcnt,
                                           bool datasync)
{
    FileCoWait w;

    require_coroutine(fn);
    if (!file_co_run(&w, type, fd, offset, iov, iovcnt, datasync, NULL, 0)) {
        return -EINVAL;
    }
    return (ssize_t)w.ret;
}

AIOCTX_API ssize_t coroutine_fn aio_file_co_preadv(int fd, uint64_t offset,
                                                   const struct iovec *iov,
                                                   int iovcnt)
{
    return file_co_simple("aio_file_co_preadv", QEMU_AIO_READ, fd, offset, iov,
                          iovcnt, false);
}

AIOCTX_API ssize_t coroutine_fn aio_file_co_pwritev(int fd, uint64_t offset,
                                                    const struct iovec *iov,
                                                    int iovcnt)
{
    return file_co_simple("aio_file_co_pwritev", QEMU_AIO_WRITE, fd, offset,
                          iov, iovcnt, false);
}

AIOCTX_API int coroutine_fn aio_file_co_fsync(int fd, bool datasync)
{
    return (int)file_co_simple("aio_file_co_fsync", QEMU_AIO_FLUSH, fd, 0, NULL,
                               0, datasync);
}

/* Zero qiov from byte from to its end. */
static void qiov_zero_from(QEMUIOVector *qiov, size_t from)
{
    for (int i = 0; i < qiov->niov; i++) {
        size_t len = qiov->iov[i].iov_len;

        if (from < len) {
            memset((char *)qiov->iov[i].iov_base + from, 0, len - from);
            from = 0;
        } else {
            from -= len;
        }
    }
}

/*
 * QEMU's raw-aio request through exec: 0 when everything moved, -errno;
 * end of file zero-fills the rest of a read; a short write is -ENOSPC.
 */
int coroutine_fn aio_file_co_qemu(const char *fn, AioFileExec *exec, int fd,
                                  uint64_t offset, QEMUIOVector *qiov,
                                  int type, uint64_t max_batch)
{
    FileCoWait w;
    bool ok;

    require_coroutine(fn);
    if (type != QEMU_AIO_READ && type != QEMU_AIO_WRITE &&
        type != QEMU_AIO_FLUSH) {
        return -EIO;
    }
    if (type != QEMU_AIO_FLUSH && !qiov) {
        return -EINVAL;
    }
    ok = file_co_run(&w, type, fd, offset, qiov ? qiov->iov : NULL,
                     qiov ? qiov->niov : 0, true, exec, max_batch);
    if (!ok) {
        return -EINVAL;
    }
    if (w.error) {
        return w.error;
    }
    if (type == QEMU_AIO_READ && w.done < w.size) {
        qiov_zero_from(qiov, w.done);
    } else if (type == QEMU_AIO_WRITE && w.done < w.size) {
        return -ENOSPC;
    }
    return 0;
}

/* ---- destruction ---- */

void aio_file_destroy_ctx(AioContext *ctx)
{
    AioFileState *fs = aio_load_acquire(&ctx->file_state);
#ifdef AIOCTX_HAVE_LINUX_AIO
    LinuxAioState *laio;
#endif
#ifdef AIOCTX_HAVE_IO_URING
    LuringState *luring;
#endif

    if (!fs) {
        return;
    }
    fs->destroying = true;
    file_bh(fs);
    if (ctx->engine->file_drain) {
        ctx->engine->file_drain(ctx);
    }
#ifdef AIOCTX_HAVE_LINUX_AIO
    laio = aio_load_acquire(&fs->laio);
    if (laio) {
        laio_state_free(laio);
    }
#endif
#ifdef AIOCTX_HAVE_IO_URING
    luring = aio_load_acquire(&fs->luring);
    if (luring) {
        luring_state_free(luring);
    }
#endif
    /* What those callbacks submitted was refused: deliver it too. */
    while (!aio_fifo_empty(&fs->deferred) || aio_load(&fs->cancel_list)) {
        file_bh(fs);
    }
    if (fs->unfinished) {
        aio_log(AIO_LOG_WARNING, "%u file I/O requests never completed",
                fs->unfinished);
    }
    while (fs->spare) {
        AioFileReq *req = fs->spare;

        fs->spare = req->next;
        qemu_aio_unref(req); /* from qemu_aio_get(): not free() */
    }
    qemu_bh_delete(fs->bh);
    aio_store_release(&ctx->file_state, NULL);
    free(fs);
}
