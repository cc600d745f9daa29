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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "aioctx/coroutine.h"
#include "log-internal.h"
#include "aioctx/thread-pool.h"
#include "file-io-internal.h"

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
    .aiocb_size = sizeof(AioFileReq),
};

static void file_die(const char *what)
{
    aio_fatal("%s", what);
}

/* ---- per-context state ---- */

AioFileState *aio_file_state(AioContext *ctx)
{
    AioFileState *fs = aio_load_acquire(&ctx->file_state);
    AioFileState *expected = NULL;

    if (fs) {
        return fs;
    }
    fs = calloc(1, sizeof(*fs));
    if (!fs) {
        file_die("out of memory allocating the file I/O state");
    }
    fs->ctx = ctx;
    fs->deferred_tail = &fs->deferred_head;
    fs->bh = aio_bh_new(ctx, file_bh, fs);
    if (!__atomic_compare_exchange_n(&ctx->file_state, &expected, fs, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        qemu_bh_delete(fs->bh);
        free(fs);
        return expected;
    }
    return fs;
}

/* ---- the engine and the thread pool as executors ---- */

static int engine_exec_submit(void *opaque, AioFileReq *req)
{
    AioContext *ctx = opaque;

    return ctx->engine->file_submit(ctx, req);
}

static void engine_exec_cancel(void *opaque, AioFileReq *req)
{
    AioContext *ctx = opaque;

    if (ctx->engine->file_cancel) {
        ctx->engine->file_cancel(ctx, req);
    }
}

static const AioFileExec engine_exec = {
    .submit = engine_exec_submit,
    .cancel = engine_exec_cancel,
};

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

    req->u.pool.acb = NULL;
    aio_file_req_done(req, ret);
}

/*
 * The page cache fast path: a buffered read or write that needs no disk
 * I/O is done at once with RWF_NOWAIT (the kernel says EAGAIN instead of
 * sleeping), saving two thread hand-offs; its completion is still
 * delivered later, from the front end's bottom half (aio_file_req_done()
 * defers completions that arrive while a submit runs).  A partial transfer
 * is fine: the front end submits the rest, which then goes to the pool.
 * Not for O_DIRECT descriptors, whose reads wait for the device even with
 * RWF_NOWAIT.  Returns false when the worker must do it.
 */
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

int aio_file_pool_submit(AioContext *ctx, AioFileReq *req)
{
    AioContext *current = qemu_get_current_aio_context();

    if (pool_try_nowait(req)) {
        return 0;
    }

    /*
     * thread_pool_submit_aio() works on the calling thread's current
     * context: make that ctx for the call (nothing can switch coroutines
     * in between).
     */
    qemu_set_current_aio_context(ctx);
    req->u.pool.acb = thread_pool_submit_aio(pool_work, req, pool_done, req);
    qemu_set_current_aio_context(current);
    return 0;
}

void aio_file_pool_cancel(AioContext *ctx, AioFileReq *req)
{
    (void)ctx;
    if (req->u.pool.acb) {
        bdrv_aio_cancel_async(req->u.pool.acb);
    }
}

static int pool_exec_submit(void *opaque, AioFileReq *req)
{
    return aio_file_pool_submit(opaque, req);
}

static void pool_exec_cancel(void *opaque, AioFileReq *req)
{
    aio_file_pool_cancel(opaque, req);
}

const AioFileExec aio_file_pool_exec = {
    .submit = pool_exec_submit,
    .cancel = pool_exec_cancel,
};

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
    fs->submitting++;
    ret = req->exec->submit(req->exec_opaque, req);
    fs->submitting--;
    if (ret < 0) {
        req->stage = AIO_FILE_FRONT;
    }
    return ret;
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
    req->next = NULL;
    *fs->deferred_tail = req;
    fs->deferred_tail = &req->next;
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
            req->cancel_asked = true;
            req->exec->cancel(req->exec_opaque, req);
        }
        qemu_aio_unref(req);
    }
    while ((req = fs->deferred_head)) {
        fs->deferred_head = req->next;
        if (!fs->deferred_head) {
            fs->deferred_tail = &fs->deferred_head;
        } else if (!rearmed) {
            /* A callback that nests aio_poll() gets the others there. */
            rearmed = true;
            qemu_bh_schedule(fs->bh);
        }
        req_complete(req, req->res);
    }
    if (rearmed) {
        qemu_bh_cancel(fs->bh);
        if (aio_load(&fs->cancel_list) || fs->deferred_head) {
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
            req->cancel_asked = true;
            fs->submitting++; /* its callback still runs later */
            req->exec->cancel(req->exec_opaque, req);
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
 * A new request on ctx run by exec (NULL: the engine's slots), or NULL when
 * the arguments are refused.
 */
static AioFileReq *req_new(AioContext *ctx, int type, int fd, uint64_t offset,
                           const struct iovec *iov, int iovcnt, bool datasync,
                           const AioFileExec *exec, void *exec_opaque,
                           BlockCompletionFunc *cb, void *opaque)
{
    ssize_t size = type == QEMU_AIO_FLUSH ? 0 : iov_total(iov, iovcnt);
    AioFileState *fs;
    AioFileReq *req;

    if (!ctx || size < 0) {
        return NULL;
    }
    fs = aio_file_state(ctx);
    req = fs->spare;
    if (req) {
        fs->spare = req->next;
        fs->nspare--;
        memset(req, 0, sizeof(*req));
        req->common = (BlockAIOCB){ .aiocb_info = &file_aiocb_info,
                                    .cb = cb,
                                    .opaque = opaque,
                                    .refcnt = 1 };
    } else {
        req = qemu_aio_get(&file_aiocb_info, NULL, cb, opaque);
    }
    req->fs = fs;
    req->exec = exec ? exec : &engine_exec;
    req->exec_opaque = exec ? exec_opaque : ctx;
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
    AioFileReq *req = req_new(ctx, type, fd, offset, iov, iovcnt, datasync,
                              NULL, NULL, cb, opaque);

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
                                     const AioFileExec *exec, void *exec_opaque,
                                     uint64_t max_batch)
{
    AioContext *ctx = qemu_get_current_aio_context();
    AioFileReq *req;

    *w = (FileCoWait){ .co = qemu_coroutine_self() };
    req = req_new(ctx, type, fd, offset, iov, iovcnt, datasync, exec,
                  exec_opaque, NULL, w);
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
    if (!file_co_run(&w, type, fd, offset, iov, iovcnt, datasync, NULL, NULL,
                     0)) {
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
int coroutine_fn aio_file_co_qemu(const char *fn, const AioFileExec *exec,
                                  void *exec_opaque, int fd, uint64_t offset,
                                  QEMUIOVector *qiov, int type,
                                  uint64_t max_batch)
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
                     qiov ? qiov->niov : 0, true, exec, exec_opaque, max_batch);
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
    LinuxAioState *laio;
    LuringState *luring;

    if (!fs) {
        return;
    }
    fs->destroying = true;
    file_bh(fs);
    if (ctx->engine->file_drain) {
        ctx->engine->file_drain(ctx);
    }
    laio = aio_load_acquire(&fs->laio);
    if (laio) {
        laio_state_free(laio);
    }
    luring = aio_load_acquire(&fs->luring);
    if (luring) {
        luring_state_free(luring);
    }
    /* What those callbacks submitted was refused: deliver it too. */
    while (fs->deferred_head || aio_load(&fs->cancel_list)) {
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
