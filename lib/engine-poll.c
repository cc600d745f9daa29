/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "poll" engine: ppoll(2) over every watched fd, rebuilt on each wait.
 * O(registered fds) per wait; the portable fallback.
 *
 * poll(2) leaves nothing a foreign loop could sleep on, so the first
 * pollfd() call builds a "mirror": an epoll set holding every watched fd
 * with the same events, kept in step by update() from then on (one
 * epoll_ctl per handler change).  Only its readiness matters; wait() keeps
 * using ppoll.  Fds epoll refuses (regular files) are ready for poll(2),
 * so while any is watched the mirror also holds an eventfd that is always
 * readable.  The mirror is created and changed under the list lock.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "aio-internal.h"
#include "engine-epoll.h" /* aio_epoll_ctl */
#include "file-io-internal.h"

typedef struct PollEngine {
    struct pollfd *fds;
    AioHandler **nodes;
    int nfds;
    int capacity;
    /* The pollfd() mirror; both -1 until first asked for. */
    int mirror_fd;    /* the epoll set; under the list lock */
    int published_fd; /* atomic: mirror_fd once filled, for pollfd() */
    int always_fd;    /* readable eventfd, in the mirror while refused > 0 */
    int refused;      /* watched fds the mirror's epoll refused */
} PollEngine;

typedef struct PollHandler {
    bool refused; /* in the mirror's eyes: always ready */
} PollHandler;

static int poll_probe(void)
{
    return 0;
}

static int poll_init(AioContext *ctx, Error **errp)
{
    PollEngine *pe = aio_engine_priv(ctx);

    (void)errp;
    pe->mirror_fd = -1;
    pe->published_fd = -1;
    pe->always_fd = -1;
    return 0;
}

static void poll_destroy(AioContext *ctx)
{
    PollEngine *pe = aio_engine_priv(ctx);

    free(pe->fds);
    free(pe->nodes);
    if (pe->mirror_fd >= 0) {
        close(pe->mirror_fd);
    }
    if (pe->always_fd >= 0) {
        close(pe->always_fd);
    }
}

/* ---- the pollfd() mirror; every function here runs under the lock ---- */

static int mirror_ctl(PollEngine *pe, int op, int fd, int events)
{
    struct epoll_event ev = { .events = (uint32_t)events };

    return aio_epoll_ctl(pe->mirror_fd, op, fd, &ev);
}

/* One more (delta 1) or one fewer (-1) fd the mirror cannot watch. */
static void mirror_refused_add(PollEngine *pe, int delta)
{
    pe->refused += delta;
    if (delta > 0 && pe->refused == 1) {
        if (pe->always_fd < 0) {
            pe->always_fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        }
        if (pe->always_fd >= 0) {
            mirror_ctl(pe, EPOLL_CTL_ADD, pe->always_fd, EPOLLIN);
        }
    } else if (delta < 0 && pe->refused == 0 && pe->always_fd >= 0) {
        mirror_ctl(pe, EPOLL_CTL_DEL, pe->always_fd, 0);
    }
}

static void mirror_watch(PollEngine *pe, AioHandler *node, bool had_old)
{
    PollHandler *ph = aio_handler_engine_priv(node);
    int fd = aio_handler_fd(node), events = aio_handler_events(node);
    int ret = mirror_ctl(pe, had_old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
                         events);

    if (ret == -ENOENT) {
        ret = mirror_ctl(pe, EPOLL_CTL_ADD, fd, events);
    } else if (ret == -EEXIST) {
        ret = mirror_ctl(pe, EPOLL_CTL_MOD, fd, events);
    }
    if (ret == -EPERM) {
        ph->refused = true;
        mirror_refused_add(pe, 1);
    }
}

static void mirror_update(PollEngine *pe, AioHandler *old_node,
                          AioHandler *new_node)
{
    bool had_old = false;

    if (old_node) {
        PollHandler *ph = aio_handler_engine_priv(old_node);

        had_old = !ph->refused && aio_handler_events(old_node);
        if (ph->refused) {
            ph->refused = false;
            mirror_refused_add(pe, -1);
        }
    }
    /* Handlers without events are skipped by poll_wait(): leave them out. */
    if (new_node && aio_handler_events(new_node)) {
        mirror_watch(pe, new_node, had_old);
    } else if (had_old) {
        /* Fails harmlessly if the fd was closed while registered. */
        mirror_ctl(pe, EPOLL_CTL_DEL, aio_handler_fd(old_node), 0);
    }
}

static void mirror_add_node(AioHandler *node, void *opaque)
{
    mirror_update(opaque, NULL, node);
}

static int poll_pollfd(AioContext *ctx)
{
    PollEngine *pe = aio_engine_priv(ctx);
    int fd = aio_load_acquire(&pe->published_fd);

    if (fd >= 0) {
        return fd;
    }
    lockcnt_lock(&ctx->list_lock);
    fd = pe->mirror_fd;
    if (fd < 0) {
        fd = epoll_create1(EPOLL_CLOEXEC);
        if (fd >= 0) {
            pe->mirror_fd = fd;
            aio_handlers_foreach(ctx, mirror_add_node, pe);
            aio_store_release(&pe->published_fd, fd);
        }
    }
    lockcnt_unlock(&ctx->list_lock);
    return fd;
}

static void poll_update(AioContext *ctx, AioHandler *old_node,
                        AioHandler *new_node)
{
    PollEngine *pe = aio_engine_priv(ctx);

    /* The ppoll set is rebuilt on every wait; only the mirror follows. */
    if (pe->mirror_fd >= 0) {
        mirror_update(pe, old_node, new_node);
    }
}

static bool poll_reserve(PollEngine *pe, int n)
{
    struct pollfd *fds;
    AioHandler **nodes;
    int cap = pe->capacity ? pe->capacity : 16;

    if (n <= pe->capacity) {
        return true;
    }
    while (cap < n) {
        cap *= 2;
    }
    fds = realloc(pe->fds, cap * sizeof(*fds));
    if (!fds) {
        return false;
    }
    pe->fds = fds;
    nodes = realloc(pe->nodes, cap * sizeof(*nodes));
    if (!nodes) {
        return false;
    }
    pe->nodes = nodes;
    pe->capacity = cap;
    return true;
}

static void poll_collect(AioHandler *node, void *opaque)
{
    PollEngine *pe = opaque;
    int events = aio_handler_events(node);

    if (!events || !poll_reserve(pe, pe->nfds + 1)) {
        return;
    }
    pe->fds[pe->nfds] = (struct pollfd){ .fd = aio_handler_fd(node),
                                         .events = (short)events };
    pe->nodes[pe->nfds] = node;
    pe->nfds++;
}

static int poll_wait(AioContext *ctx, AioReadyList *ready, int64_t timeout_ns)
{
    PollEngine *pe = aio_engine_priv(ctx);
    struct timespec ts, *tsp = NULL;
    int n, found = 0;

    pe->nfds = 0;
    aio_handlers_foreach(ctx, poll_collect, pe);
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        tsp = &ts;
    }
    /* EINTR and EAGAIN: as in epoll_engine_wait(). */
    for (int i = 0;; i++) {
        n = ppoll(pe->fds, pe->nfds, tsp, NULL);
        if (n >= 0) {
            break;
        }
        if (errno != EINTR && errno != EAGAIN) {
            return -errno;
        }
        if (timeout_ns != 0 || i == AIO_SYSCALL_RETRIES) {
            return 0;
        }
    }
    for (int i = 0; i < pe->nfds && found < n; i++) {
        int revents = pe->fds[i].revents;

        if (!revents) {
            continue;
        }
        if (revents & POLLNVAL) {
            revents = (revents & ~POLLNVAL) | POLLERR; /* fd was closed */
        }
        aio_ready_list_add(ready, pe->nodes[i], revents);
        found++;
    }
    return found;
}

static bool poll_need_wait(AioContext *ctx)
{
    return aio_poll_disabled(ctx);
}

const AioEngineOps aio_engine_poll = {
    .version = AIO_ENGINE_OPS_VERSION,
    .name = "poll",
    .ctx_priv_size = sizeof(PollEngine),
    .handler_priv_size = sizeof(PollHandler),
    .probe = poll_probe,
    .init = poll_init,
    .destroy = poll_destroy,
    .update = poll_update,
    .wait = poll_wait,
    .need_wait = poll_need_wait,
    .pollfd = poll_pollfd,
    .file_submit = aio_file_pool_submit,
    .file_cancel = aio_file_pool_cancel,
};
