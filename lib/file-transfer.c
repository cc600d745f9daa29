/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File-to-socket and file-to-pipe transfers: aio_file_transfer().
 *
 * A transfer moves through these stages, all decided in the home thread:
 *
 *   XFER_RUN    sendfile() in the loop thread, window by window, while the
 *               page cache holds the window (cachestat(2), or a one-byte
 *               RWF_NOWAIT read at each end of the window where cachestat
 *               is missing) and the target takes data.  A burst is bounded
 *               (XFER_BURST bytes): then the transfer is put back on the
 *               state's ready list and the bottom half continues it, so a
 *               fast reader cannot starve the other handlers;
 *   XFER_WAIT   the target said EAGAIN: a write handler on a duplicate of
 *               the target fd (the caller's own handlers on the fd stay
 *               untouched) brings it back to XFER_RUN;
 *   XFER_POOL   one window may need the disk (or the input is a block
 *               device): a thread-pool worker runs the sendfile()
 *               calls for it, still without waiting for the target;
 *   XFER_READY  queued for the bottom half: to run again, or, when
 *               x->finished, to have its callback delivered (a completion
 *               reached inside the submitting or cancelling call).
 *
 * Cancellation from the home thread sets x->cancelled and brings the
 * transfer back to the front at once (a worker's window is asked to stop
 * through the pool; if it already runs, it finishes first).  From another
 * thread the request is referenced and pushed on a lock-free list that the
 * bottom half empties.
 *
 * Destruction (aio_transfer_destroy_ctx(), first step of the context's):
 * everything not in a worker is completed at once; what is in a worker is
 * asked to stop and completed when the pool's destruction, which comes
 * next, delivers the worker's result.  The state goes with the last one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "aio-internal.h"
#include "aioctx/coroutine.h"
#include "aioctx/file-io.h"
#include "aioctx/thread-pool.h"
#include "log-internal.h"

/* Bytes probed and sent per step (one probe, one worker job). */
#define XFER_WINDOW (4u << 20)
/* Bytes the loop thread sends for one transfer before letting others run. */
#define XFER_BURST (16u << 20)

#ifndef SYS_cachestat
#define SYS_cachestat 451 /* the same number on every architecture */
#endif

enum {
    XFER_RUN,
    XFER_WAIT,
    XFER_POOL,
    XFER_READY,
};

typedef struct AioXfer AioXfer;
typedef struct AioXferState AioXferState;

struct AioXfer {
    BlockAIOCB common; /* first: what callers get */
    AioXferState *xs;
    AioXfer *next, **pprev; /* the state's live list */
    AioXfer *ready_next;
    AioXfer *cancel_next; /* the lock-free cancel list */
    bool cancel_once;     /* atomic: cancellation asked */
    bool cancelled;       /* home thread: act on it */
    bool finished;        /* result final; the callback is due */
    bool watching;        /* a handler on wait_fd */
    bool in_call;         /* inside the submitting or cancelling call */
    bool checked;         /* descriptors validated */
    bool out_pipe;        /* splice(), whatever the pipe's O_NONBLOCK */
    bool in_probe;        /* the page cache can be probed for in_fd */
    bool pipe_ignored;    /* SIGPIPE was ignored when the transfer began */
    int stage;
    int out_fd, in_fd;
    int wait_fd; /* duplicate of out_fd, -1 until the first wait */
    uint64_t offset; /* next byte of in_fd */
    uint64_t count;  /* asked */
    uint64_t done;   /* moved */
    uint64_t size;   /* in_fd's size when probed */
    uint64_t cached_end; /* [offset, cached_end) was found in the cache */
    int error;
    BlockAIOCB *pool_acb;
    /* A worker's window: what it moved and how it stopped. */
    uint64_t pool_moved;
    int pool_error;
    bool pool_eof;
    AioFileTransferFunc *cb;
    void *opaque;
};

struct AioXferState {
    AioContext *ctx;
    QEMUBH *bh;
    AioXfer *live;
    AioXfer *ready_head, **ready_tail;
    AioXfer *cancel_list; /* atomic */
    unsigned nlive;
    bool destroying;
};

static void xfer_cancel_async(BlockAIOCB *acb);
static void xfer_run(AioXfer *x);
static void xfer_bh(void *opaque);

static const AIOCBInfo xfer_aiocb_info = {
    .cancel_async = xfer_cancel_async,
    .aiocb_size = sizeof(AioXfer),
};

static bool cachestat_missing; /* atomic: the kernel has no cachestat(2) */

/* ---- SIGPIPE: blocked around sendfile(), the one we cause discarded ---- */

typedef struct PipeGuard {
    sigset_t old;
    bool was_blocked; /* the thread blocked SIGPIPE already */
    bool was_pending; /* and one was pending: not ours to take */
    bool active;
} PipeGuard;

static void pipe_guard_begin(PipeGuard *g)
{
    sigset_t one, pending;

    if (g->active) {
        return;
    }
    sigemptyset(&one);
    sigaddset(&one, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &one, &g->old);
    g->was_blocked = sigismember(&g->old, SIGPIPE);
    g->was_pending = false;
    if (g->was_blocked && sigpending(&pending) == 0) {
        g->was_pending = sigismember(&pending, SIGPIPE);
    }
    g->active = true;
}

/* After an EPIPE: take the SIGPIPE it queued on this thread, if any. */
static void pipe_guard_swallow(PipeGuard *g)
{
    const struct timespec zero = { 0, 0 };
    sigset_t one;
    int ret;

    if (g->was_pending) {
        return; /* cannot tell ours from the one already there */
    }
    sigemptyset(&one);
    sigaddset(&one, SIGPIPE);
    do {
        ret = sigtimedwait(&one, NULL, &zero);
    } while (ret < 0 && errno == EINTR);
}

static void pipe_guard_end(PipeGuard *g)
{
    if (g->active && !g->was_blocked) {
        pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    }
    g->active = false;
}

/*
 * Move up to len bytes at *off without waiting for the target: sendfile()
 * to a socket (non-blocking), splice() with SPLICE_F_NONBLOCK to a pipe
 * (blocking or not).  Returns the bytes moved, 0 at end of file, or -errno.
 */
static int64_t send_part(PipeGuard *g, AioXfer *x, uint64_t *off, uint64_t len)
{
    off_t pos = (off_t)*off;
    ssize_t n;

    if (len > 0x7ffff000) {
        len = 0x7ffff000; /* what one call moves at most anyway */
    }
    if (!x->pipe_ignored) {
        pipe_guard_begin(g);
    }
    do {
        if (x->out_pipe) {
            n = splice(x->in_fd, &pos, x->out_fd, NULL, (size_t)len,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        } else {
            n = sendfile(x->out_fd, x->in_fd, &pos, (size_t)len);
        }
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;

        if (err == EPIPE && g->active) {
            pipe_guard_swallow(g);
        }
        return -err;
    }
    *off = (uint64_t)pos;
    return n;
}

/* ---- per-context state ---- */

static AioXferState *xfer_state(AioContext *ctx)
{
    AioXferState *xs = ctx->xfer_state;

    if (xs) {
        return xs;
    }
    xs = calloc(1, sizeof(*xs));
    if (!xs) {
        aio_fatal("out of memory allocating the transfer state");
    }
    xs->ctx = ctx;
    xs->ready_tail = &xs->ready_head;
    xs->bh = aio_bh_new(ctx, xfer_bh, xs);
    ctx->xfer_state = xs;
    return xs;
}

static void xfer_state_free(AioXferState *xs)
{
    qemu_bh_delete(xs->bh);
    xs->ctx->xfer_state = NULL;
    free(xs);
}

static void ready_push(AioXfer *x)
{
    AioXferState *xs = x->xs;

    x->stage = XFER_READY;
    x->ready_next = NULL;
    *xs->ready_tail = x;
    xs->ready_tail = &x->ready_next;
    qemu_bh_schedule(xs->bh);
}

static AioXfer *ready_pop(AioXferState *xs)
{
    AioXfer *x = xs->ready_head;

    if (x) {
        xs->ready_head = x->ready_next;
        if (!xs->ready_head) {
            xs->ready_tail = &xs->ready_head;
        }
    }
    return x;
}

/* ---- waiting for the target ---- */

static void xfer_writable(void *opaque)
{
    AioXfer *x = opaque;

    x->stage = XFER_RUN;
    xfer_run(x);
}

static void xfer_unwatch(AioXfer *x)
{
    if (x->watching) {
        aio_set_fd_handler(x->xs->ctx, x->wait_fd, NULL, NULL, NULL, NULL,
                           NULL);
        x->watching = false;
    }
}

/* Wait until out_fd is writable (or in error); false with x->error set. */
static bool xfer_watch(AioXfer *x)
{
    if (x->wait_fd < 0) {
        x->wait_fd = fcntl(x->out_fd, F_DUPFD_CLOEXEC, 0);
        if (x->wait_fd < 0) {
            x->error = -errno;
            return false;
        }
    }
    x->stage = XFER_WAIT;
    if (!x->watching) {
        /* io_write also runs for POLLERR: a pipe without readers. */
        aio_set_fd_handler(x->xs->ctx, x->wait_fd, NULL, xfer_writable, NULL,
                           NULL, x);
        x->watching = true;
    }
    return true;
}

/* ---- finishing ---- */

static void xfer_deliver(AioXfer *x)
{
    AioXferState *xs = x->xs;

    *x->pprev = x->next;
    if (x->next) {
        x->next->pprev = x->pprev;
    }
    xs->nlive--;
    if (x->cb) {
        x->cb(x->opaque, (int64_t)x->done, x->error);
    }
    qemu_aio_unref(x);
    if (xs->destroying && xs->nlive == 0) {
        xfer_state_free(xs);
    }
}

/* The result is final: release what the transfer holds, then deliver. */
static void xfer_finish(AioXfer *x)
{
    xfer_unwatch(x);
    if (x->wait_fd >= 0) {
        close(x->wait_fd);
        x->wait_fd = -1;
    }
    if (x->cancelled && !x->error && x->done < x->count) {
        x->error = -ECANCELED;
    }
    x->finished = true;
    if (x->in_call) {
        ready_push(x); /* never inside the caller's own call */
        return;
    }
    xfer_deliver(x);
}

/* ---- the steps ---- */

/* Whether len bytes from x->offset need no disk read. */
static bool range_cached(AioXfer *x, uint64_t len)
{
    struct {
        uint64_t off, len;
    } range;
    struct {
        uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted,
            nr_recently_evicted;
    } cs;
    uint64_t end, page = (uint64_t)sysconf(_SC_PAGESIZE);
    char byte;
    struct iovec iov = { &byte, 1 };

    if (!x->in_probe) {
        return false;
    }
    if (x->offset >= x->size) {
        return true; /* end of file, as far as we know: sendfile says 0 */
    }
    end = x->offset + len < x->size ? x->offset + len : x->size;
    if (end <= x->cached_end) {
        /*
         * Probed already, moments ago (the target was full in between):
         * no second system call for the same pages.
         */
        return true;
    }
    if (!aio_load(&cachestat_missing)) {
        range.off = x->offset;
        range.len = end - x->offset;
        if (syscall(SYS_cachestat, x->in_fd, &range, &cs, 0) == 0) {
            if (cs.nr_cache < (end - 1) / page - x->offset / page + 1) {
                return false;
            }
            x->cached_end = end;
            return true;
        }
        if (errno != ENOSYS && errno != EPERM) {
            return false;
        }
        aio_store(&cachestat_missing, true);
    }
    /* Without cachestat: the window's first and last pages. */
    if (preadv2(x->in_fd, &iov, 1, (off_t)x->offset, RWF_NOWAIT) != 1) {
        return false;
    }
    return preadv2(x->in_fd, &iov, 1, (off_t)(end - 1), RWF_NOWAIT) == 1;
}

static uint64_t window(AioXfer *x)
{
    uint64_t left = x->count - x->done;

    return left < XFER_WINDOW ? left : XFER_WINDOW;
}

/* In a worker: one window; the home thread reads the outcome. */
static int xfer_work(void *opaque)
{
    AioXfer *x = opaque;
    uint64_t off = x->offset, want = window(x), moved = 0;
    PipeGuard g = { .active = false };
    int64_t n;

    x->pool_error = 0;
    x->pool_eof = false;
    while (moved < want) {
        n = send_part(&g, x, &off, want - moved);
        if (n < 0) {
            x->pool_error = (int)n;
            break;
        }
        if (n == 0) {
            x->pool_eof = true;
            break;
        }
        moved += (uint64_t)n;
        if (aio_load(&x->cancel_once)) {
            break;
        }
    }
    pipe_guard_end(&g);
    x->pool_moved = moved;
    return 0;
}

static void xfer_pool_done(void *opaque, int ret)
{
    AioXfer *x = opaque;

    x->pool_acb = NULL;
    x->stage = XFER_RUN;
    if (ret == -ECANCELED) {
        /* Dropped before a worker took it: nothing moved. */
        if (!x->error) {
            x->error = -ECANCELED;
        }
        xfer_finish(x);
        return;
    }
    x->done += x->pool_moved;
    x->offset += x->pool_moved;
    if (x->pool_eof) {
        xfer_finish(x);
        return;
    }
    if (x->pool_error && x->pool_error != -EAGAIN) {
        x->error = x->pool_error;
        xfer_finish(x);
        return;
    }
    if (x->xs->destroying) {
        x->cancelled = true;
        xfer_finish(x);
        return;
    }
    if (x->pool_error == -EAGAIN && !x->cancelled && x->done < x->count) {
        if (!xfer_watch(x)) {
            xfer_finish(x);
        }
        return;
    }
    xfer_run(x);
}

static void xfer_to_pool(AioXfer *x)
{
    xfer_unwatch(x);
    x->stage = XFER_POOL;
    x->pool_acb = aio_thread_pool_submit(x->xs->ctx, xfer_work, x,
                                         xfer_pool_done, x);
}

/* Validate the descriptors; false with x->error set. */
static bool xfer_check(AioXfer *x)
{
    struct stat in_st, out_st;
    int in_flags, out_flags;

    if (fstat(x->in_fd, &in_st) < 0 || fstat(x->out_fd, &out_st) < 0) {
        x->error = -errno;
        return false;
    }
    if ((!S_ISREG(in_st.st_mode) && !S_ISBLK(in_st.st_mode)) ||
        (!S_ISSOCK(out_st.st_mode) && !S_ISFIFO(out_st.st_mode))) {
        x->error = -EINVAL;
        return false;
    }
    in_flags = fcntl(x->in_fd, F_GETFL);
    out_flags = fcntl(x->out_fd, F_GETFL);
    if (in_flags < 0 || out_flags < 0) {
        x->error = -errno;
        return false;
    }
    if ((in_flags & O_ACCMODE) == O_WRONLY ||
        (out_flags & O_ACCMODE) == O_RDONLY) {
        x->error = -EBADF;
        return false;
    }
    if (in_flags & O_DIRECT) {
        /*
         * The kernel's O_DIRECT splice reads need aligned offsets, which a
         * socket's partial sends do not keep.  Cold buffered data goes to
         * a worker anyway.
         */
        x->error = -EINVAL;
        return false;
    }
    x->out_pipe = S_ISFIFO(out_st.st_mode);
    if (!x->out_pipe && !(out_flags & O_NONBLOCK)) {
        x->error = -EINVAL; /* a blocking socket would hold a worker */
        return false;
    }
    x->in_probe = S_ISREG(in_st.st_mode);
    {
        struct sigaction sa;

        /* Ignored (servers usually do): no blocking around each call. */
        x->pipe_ignored = sigaction(SIGPIPE, NULL, &sa) == 0 &&
                          sa.sa_handler == SIG_IGN;
    }
    x->size = (uint64_t)in_st.st_size;
    x->checked = true;
    return true;
}

/* In the home thread: send while it goes, then wait, hand off or finish. */
static void xfer_run(AioXfer *x)
{
    PipeGuard g = { .active = false };
    uint64_t burst = 0, want;
    int64_t n;

    x->stage = XFER_RUN;
    if (!x->checked && !xfer_check(x)) {
        xfer_finish(x);
        return;
    }
    while (!x->cancelled && !x->xs->destroying && x->done < x->count) {
        if (burst >= XFER_BURST) {
            pipe_guard_end(&g);
            xfer_unwatch(x);
            ready_push(x); /* the bottom half goes on */
            return;
        }
        want = window(x);
        if (!range_cached(x, want)) {
            pipe_guard_end(&g);
            xfer_to_pool(x);
            return;
        }
        n = send_part(&g, x, &x->offset, want);
        if (n == -EAGAIN) {
            pipe_guard_end(&g);
            if (!xfer_watch(x)) {
                xfer_finish(x);
            }
            return;
        }
        if (n < 0) {
            x->error = (int)n;
            break;
        }
        if (n == 0) {
            break; /* end of file */
        }
        x->done += (uint64_t)n;
        burst += (uint64_t)n;
        if (x->offset >= x->size) {
            x->size = x->offset; /* the file grew: probe further */
        }
    }
    pipe_guard_end(&g);
    xfer_finish(x);
}

/* ---- cancellation ---- */

/* Home thread: stop x at the next step boundary. */
static void xfer_cancel_home(AioXfer *x)
{
    if (x->finished || x->cancelled) {
        return;
    }
    x->cancelled = true;
    switch (x->stage) {
    case XFER_WAIT:
        xfer_unwatch(x);
        x->in_call = true;
        xfer_finish(x);
        x->in_call = false;
        break;
    case XFER_POOL:
        if (x->pool_acb) {
            bdrv_aio_cancel_async(x->pool_acb);
        }
        break;
    default:
        break; /* XFER_READY: the bottom half sees the flag */
    }
}

static void xfer_bh(void *opaque)
{
    AioXferState *xs = opaque;
    AioXfer *list, *x;

    list = __atomic_exchange_n(&xs->cancel_list, NULL, __ATOMIC_ACQUIRE);
    while ((x = list)) {
        list = x->cancel_next;
        xfer_cancel_home(x);
        qemu_aio_unref(x);
    }
    /* Only what is queued now: a transfer re-queued goes next time. */
    list = xs->ready_head;
    xs->ready_head = NULL;
    xs->ready_tail = &xs->ready_head;
    while ((x = list)) {
        list = x->ready_next;
        x->in_call = false;
        if (x->finished) {
            xfer_deliver(x);
        } else {
            xfer_run(x);
        }
    }
}

static void xfer_cancel_async(BlockAIOCB *acb)
{
    AioXfer *x = (AioXfer *)acb;
    AioXferState *xs = x->xs;
    AioXfer *head;

    if (__atomic_exchange_n(&x->cancel_once, true, __ATOMIC_ACQ_REL)) {
        return;
    }
    if (qemu_get_current_aio_context() == xs->ctx) {
        xfer_cancel_home(x);
        return;
    }
    qemu_aio_ref(x);
    head = aio_load(&xs->cancel_list);
    do {
        x->cancel_next = head;
    } while (!__atomic_compare_exchange_n(&xs->cancel_list, &head, x, true,
                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    qemu_bh_schedule(xs->bh);
}

/* ---- the public calls ---- */

AIOCTX_API BlockAIOCB *aio_file_transfer(AioContext *ctx, int out_fd,
                                         int in_fd, uint64_t offset,
                                         uint64_t count,
                                         AioFileTransferFunc *cb, void *opaque)
{
    AioXferState *xs;
    AioXfer *x;

    if (!ctx || offset > (uint64_t)INT64_MAX) {
        return NULL;
    }
    if (count > (uint64_t)INT64_MAX - offset) {
        count = (uint64_t)INT64_MAX - offset;
    }
    xs = xfer_state(ctx);
    x = qemu_aio_get(&xfer_aiocb_info, NULL, NULL, NULL);
    x->xs = xs;
    x->out_fd = out_fd;
    x->in_fd = in_fd;
    x->wait_fd = -1;
    x->offset = offset;
    x->count = count;
    x->cb = cb;
    x->opaque = opaque;
    x->next = xs->live;
    if (x->next) {
        x->next->pprev = &x->next;
    }
    x->pprev = &xs->live;
    xs->live = x;
    xs->nlive++;
    x->in_call = true;
    if (xs->destroying) {
        x->cancelled = true;
        xfer_finish(x);
    } else {
        xfer_run(x);
    }
    x->in_call = false;
    return &x->common;
}

typedef struct XferCoWait {
    Coroutine *co;
    int64_t done;
    int error;
    bool finished;
    AioXferState *xs;
} XferCoWait;

static void xfer_co_done(void *opaque, int64_t done, int error)
{
    XferCoWait *w = opaque;

    w->done = done;
    w->error = error;
    w->finished = true;
    if (w->xs->destroying) {
        qemu_coroutine_enter(w->co); /* its context is going away */
    } else {
        aio_co_wake(w->co);
    }
}

AIOCTX_API int64_t coroutine_fn aio_file_co_transfer(int out_fd, int in_fd,
                                                     uint64_t offset,
                                                     uint64_t count,
                                                     int *error)
{
    AioContext *ctx = qemu_get_current_aio_context();
    XferCoWait w = { 0 };

    if (!qemu_in_coroutine()) {
        aio_fatal("aio_file_co_transfer called outside a coroutine");
    }
    if (!ctx || offset > (uint64_t)INT64_MAX) {
        if (error) {
            *error = -EINVAL;
        }
        return -EINVAL;
    }
    w.co = qemu_coroutine_self();
    w.xs = xfer_state(ctx);
    aio_file_transfer(ctx, out_fd, in_fd, offset, count, xfer_co_done, &w);
    while (!w.finished) {
        qemu_coroutine_yield();
    }
    if (error) {
        *error = w.error;
    }
    return w.done == 0 && w.error ? w.error : w.done;
}

/* ---- destruction ---- */

void aio_transfer_destroy_ctx(AioContext *ctx)
{
    AioXferState *xs = ctx->xfer_state;
    AioXfer *x, *list;
    bool again = true;

    if (!xs) {
        return;
    }
    xs->destroying = true;
    xs->nlive++; /* a pin: xs outlives this function's loops */
    list = __atomic_exchange_n(&xs->cancel_list, NULL, __ATOMIC_ACQUIRE);
    while ((x = list)) {
        list = x->cancel_next;
        qemu_aio_unref(x); /* everything is cancelled below anyway */
    }
    /* Callbacks may submit more: those finish at once too. */
    while (again) {
        again = false;
        while ((x = ready_pop(xs))) {
            x->in_call = false;
            x->cancelled = true;
            if (x->finished) {
                xfer_deliver(x);
            } else {
                xfer_finish(x);
            }
            again = true;
        }
        for (x = xs->live; x; x = x->next) {
            if (x->stage == XFER_POOL) {
                if (x->pool_acb && !x->cancelled) {
                    x->cancelled = true;
                    bdrv_aio_cancel_async(x->pool_acb);
                }
                continue;
            }
            x->cancelled = true;
            xfer_finish(x);
            again = true;
            break; /* the list changed */
        }
    }
    /* What workers have ends when the pool's destruction delivers it. */
    if (--xs->nlive == 0) {
        xfer_state_free(xs);
    }
}
