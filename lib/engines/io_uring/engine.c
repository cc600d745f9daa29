/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "io_uring" engine: file I/O on an io_uring, fd readiness from a
 * level-triggered epoll set.
 *
 * File descriptors are watched exactly as by the "epoll" engine, with its
 * code (engines/epoll.h): the context's area starts with an EpollEngine and
 * each handler's area is an EpollSetNode.  File I/O goes to a ring made by
 * the first request (file-ring.c, the executor file_exec returns).  From then on that ring's
 * descriptor is also in the epoll set (data.ptr NULL, so the epoll code
 * skips it as it skips its own always-readable eventfd): it polls readable
 * while completions wait in the ring's CQ, so one epoll wait sleeps on
 * fds, file completions and the timeout at once, and the epoll descriptor
 * is the single descriptor aio_context_get_pollfd() promises.  When the
 * kernel finishes a request with task work (the ring is COOP_TASKRUN), the
 * thread that submitted it is woken to run that work, which posts the
 * completion and so wakes whichever thread sleeps on the epoll set.  Every
 * wait hands prepared file requests to the kernel before it sleeps and
 * collects completions after.
 *
 * Why not io_uring polls for fds: one-shot IORING_OP_POLL_ADD per fd (the
 * design this replaces) adds a kernel wait-queue entry and a task-work run
 * per callback and needs a slot table, generations and, on a single-issuer
 * ring, a take-over when the polling thread changes; it ran W4 up to 1.08x
 * the epoll engine (tests/bench/README.md).  A ring that only watches the
 * epoll descriptor costs a second system call per sleep (io_uring_enter,
 * then epoll_wait to harvest), and its poll request belongs to the thread
 * that armed it.  Nothing here is tied to a thread: any thread may poll the
 * context, and no ring needs enabling (io_uring_register may be refused).
 *
 * If the ring's descriptor cannot join the epoll set (ENOMEM), waits do
 * not sleep while file requests are in flight, and retry joining.
 */
#include <errno.h>
#include <sys/epoll.h>

#include "engines/epoll.h"
#include "engines/io_uring/io_uring.h"
#include "engines/io_uring/tsan.h"

#define URING_PROBE_ENTRIES 2

typedef struct UringEngine {
    EpollEngine ep;    /* first: engine-epoll.h's functions use it */
    bool ring_watched; /* the file ring's fd is in ep.epfd's set */
    UringFile file;    /* home thread only */
} UringEngine;

/* ---- probe, init, destroy ---- */

static int uring_probe(void)
{
    struct io_uring ring;
    int ret = io_uring_queue_init(URING_PROBE_ENTRIES, &ring, 0);

    if (ret < 0) {
        return ret;
    }
    aio_uring_mapped();
    aio_uring_unmapping();
    io_uring_queue_exit(&ring);
    return epoll_engine_probe();
}

/*
 * The file ring is made by the first request.  That the kernel gives rings
 * at all was checked by uring_probe(), which context creation runs just
 * before init: asking for "io_uring" where it is refused fails there.
 */
static int uring_init(AioContext *ctx, Error **errp)
{
    UringEngine *ue = aio_engine_priv(ctx);
    int ret = epoll_engine_init(ctx, errp);

    if (ret < 0) {
        return ret;
    }
    uring_file_init(&ue->file, ctx);
    return 0;
}

static void uring_destroy(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    uring_file_destroy(&ue->file);
    epoll_engine_destroy(ctx);
}

/* ---- the file ring in the epoll set ---- */

/* Put the file ring's fd in the epoll set once the ring exists. */
static void uring_watch_ring(UringEngine *ue)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

    if (ue->ring_watched || !ue->file.ring_ok) {
        return;
    }
    ue->ring_watched =
        aio_epoll_ctl(ue->ep.set.epfd, EPOLL_CTL_ADD, ue->file.ring.ring_fd,
                      &ev) == 0;
}

static AioFileExec *uring_file_exec(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    return &ue->file.exec;
}

static bool uring_file_dispatch(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    /* Every loop iteration comes here: the common case is one load. */
    return ue->file.ndone && uring_file_report(&ue->file);
}

/* ---- wait ---- */

/* May wait() sleep: no completion to report, none it could miss. */
static bool uring_may_sleep(UringEngine *ue)
{
    UringFile *uf = &ue->file;

    if (!uf->ring_ok) {
        return true;
    }
    uring_file_kick(uf); /* hand over what is prepared; collect */
    uring_watch_ring(ue);
    return !uf->ndone && (ue->ring_watched || !uring_file_busy(uf));
}

/* One pass: sleep up to timeout_ns, then collect file completions. */
static int uring_wait_once(AioContext *ctx, AioReadyList *ready,
                           int64_t timeout_ns)
{
    UringEngine *ue = aio_engine_priv(ctx);
    int n;

    if (timeout_ns != 0 && !uring_may_sleep(ue)) {
        timeout_ns = 0;
    }
    n = epoll_engine_wait(ctx, ready, timeout_ns);
    if (n < 0 || !ue->file.ring_ok) {
        return n;
    }
    uring_file_kick(&ue->file);
    return n + ue->file.ndone;
}

/*
 * See wait in engine.h.  A pass that found nothing before the timeout (a
 * signal, task work for a file request that is not done yet) sleeps again
 * for what is left.
 */
static int uring_wait(AioContext *ctx, AioReadyList *ready, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns > 0 ? aio_now_ns() + timeout_ns : 0;
    int n;

    for (;;) {
        n = uring_wait_once(ctx, ready, timeout_ns);
        if (n != 0 || timeout_ns == 0) {
            return n;
        }
        if (timeout_ns > 0) {
            timeout_ns = deadline - aio_now_ns();
            if (timeout_ns <= 0) {
                return 0;
            }
        }
    }
}

/* Context destruction: see file_drain in engine.h. */
static void uring_file_drain(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);
    UringFile *uf = &ue->file;
    AioReadyList ready = { NULL };

    uring_file_cancel_waiting(uf);
    aio_engine_visit_begin(ctx);
    uring_file_dispatch(ctx);
    while (uring_file_busy(uf)) {
        if (uring_wait(ctx, &ready, -1) < 0) {
            break;
        }
        aio_ready_list_clear(&ready); /* fds no longer matter */
        uring_file_dispatch(ctx);
    }
    aio_engine_visit_end(ctx);
}

/*
 * Busy-polling: fds follow the epoll engine's rule (io_poll sees all their
 * work while every handler has one; the set is level-triggered, so nothing
 * is lost by waiting later).  No io_poll sees file I/O: a file completion,
 * or an entry still to hand over, stops busy-polling.
 */
static bool uring_need_wait(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    if (aio_poll_disabled(ctx)) {
        return true;
    }
    /* No ring yet: no file request was ever made. */
    return ue->file.ring_ok && uring_file_need_wait(&ue->file);
}

/*
 * Before a foreign loop sleeps on the epoll descriptor: hand file requests
 * to the kernel, and if completions already wait for file_dispatch, make
 * sure the descriptor polls readable.
 */
static void uring_flush(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);
    UringFile *uf = &ue->file;

    if (!uf->ring_ok) {
        return;
    }
    uring_file_kick(uf);
    uring_watch_ring(ue);
    if (uf->ndone) {
        uring_file_post_nop(uf);
    }
}

const AioEngineOps aio_engine_io_uring = {
    .version = AIO_ENGINE_OPS_VERSION,
    .name = "io_uring",
    .ctx_priv_size = sizeof(UringEngine),
    .handler_priv_size = sizeof(EpollSetNode),
    .probe = uring_probe,
    .init = uring_init,
    .destroy = uring_destroy,
    .update = epoll_engine_update,
    .wait = uring_wait,
    .need_wait = uring_need_wait,
    .pollfd = epoll_engine_pollfd,
    .flush = uring_flush,
    .file_exec = uring_file_exec,
    .file_dispatch = uring_file_dispatch,
    .file_drain = uring_file_drain,
};
