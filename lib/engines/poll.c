/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "poll" engine: ppoll(2) over every watched fd, rebuilt on each wait.
 * O(registered fds) per wait; the portable fallback.
 *
 * poll(2) leaves nothing a foreign loop could sleep on, so the first
 * pollfd() call builds a "mirror": an epoll set (epoll-set.h) holding
 * every watched fd with the same events, kept in step by update() from
 * then on (one epoll_ctl per handler change).  Only its readiness matters;
 * wait() keeps using ppoll.  The mirror is created and changed under the
 * list lock.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "engines/epoll-set.h"

typedef struct PollEngine {
    struct pollfd *fds;
    AioHandler **nodes;
    int nfds;
    int capacity;
    bool short_of_memory; /* the last collection could not grow the set */
    /* The pollfd() mirror: set.epfd is -1 until first asked for. */
    EpollSet mirror;  /* under the list lock */
    int published_fd; /* atomic: mirror.epfd once filled, for pollfd() */
} PollEngine;

static int poll_probe(void)
{
    return 0;
}

static int poll_init(AioContext *ctx, Error **errp)
{
    PollEngine *pe = aio_engine_priv(ctx);

    (void)errp;
    pe->mirror.epfd = -1;
    pe->mirror.always_fd = -1;
    pe->published_fd = -1;
    return 0;
}

static void poll_destroy(AioContext *ctx)
{
    PollEngine *pe = aio_engine_priv(ctx);

    free(pe->fds);
    free(pe->nodes);
    epoll_set_close(&pe->mirror);
}

static void mirror_add_node(AioHandler *node, void *opaque)
{
    epoll_set_update(opaque, NULL, node);
}

static int poll_pollfd(AioContext *ctx)
{
    PollEngine *pe = aio_engine_priv(ctx);
    int fd = aio_load_acquire(&pe->published_fd);
    int ret = 0;

    if (fd >= 0) {
        return fd;
    }
    aio_engine_lock(ctx);
    if (pe->mirror.epfd < 0) {
        ret = epoll_set_open(&pe->mirror);
        if (ret == 0) {
            aio_handlers_foreach(ctx, mirror_add_node, &pe->mirror);
            aio_store_release(&pe->published_fd, pe->mirror.epfd);
        }
    }
    fd = pe->mirror.epfd;
    aio_engine_unlock(ctx);
    return ret < 0 ? ret : fd;
}

static void poll_update(AioContext *ctx, AioHandler *old_node,
                        AioHandler *new_node)
{
    PollEngine *pe = aio_engine_priv(ctx);

    /* The ppoll set is rebuilt on every wait; only the mirror follows. */
    if (pe->mirror.epfd >= 0) {
        epoll_set_update(&pe->mirror, old_node, new_node);
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

    if (!events) {
        return;
    }
    if (!poll_reserve(pe, pe->nfds + 1)) {
        pe->short_of_memory = true;
        return;
    }
    pe->fds[pe->nfds] = (struct pollfd){ .fd = aio_handler_fd(node),
                                         .events = (short)events };
    pe->nodes[pe->nfds] = node;
    pe->nfds++;
}

/* One ppoll(): EINTR and EAGAIN as in epoll.c's epoll_sleep(). */
static int poll_sleep(PollEngine *pe, const struct timespec *tsp)
{
    bool zero = tsp && tsp->tv_sec == 0 && tsp->tv_nsec == 0;

    for (int i = 0;; i++) {
        int n = ppoll(pe->fds, pe->nfds, tsp, NULL);

        if (n >= 0) {
            return n;
        }
        if (errno != EINTR && errno != EAGAIN) {
            return -errno;
        }
        if (!zero || i == AIO_SYSCALL_RETRIES) {
            return 0;
        }
    }
}

static int poll_wait(AioContext *ctx, AioReadyList *ready, int64_t timeout_ns)
{
    PollEngine *pe = aio_engine_priv(ctx);
    struct timespec ts, *tsp = NULL;
    int n, found = 0;

    pe->nfds = 0;
    pe->short_of_memory = false;
    aio_handlers_foreach(ctx, poll_collect, pe);
    if (pe->short_of_memory) {
        /*
         * A set without some handlers could sleep through their events:
         * fail the wait (the caller reports it and sleeps on the
         * context's notifier only); the next wait tries again.
         */
        return -ENOMEM;
    }
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        tsp = &ts;
    }
    n = poll_sleep(pe, tsp);
    if (n <= 0) {
        return n;
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
    .handler_priv_size = sizeof(EpollSetNode),
    .probe = poll_probe,
    .init = poll_init,
    .destroy = poll_destroy,
    .update = poll_update,
    .wait = poll_wait,
    .need_wait = poll_need_wait,
    .pollfd = poll_pollfd,
};
