/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "epoll" engine: level-triggered epoll, nanosecond timeouts through
 * epoll_pwait2() where the kernel has it.  O(ready fds) per wait.
 *
 * The set follows the handler list through epoll-set.h.  Descriptors
 * epoll refuses (regular files and block devices give EPERM) are reported
 * ready on every wait, which is what poll(2) does with them; the set's
 * always readable eventfd then makes the epoll descriptor handed out by
 * pollfd() tell a foreign loop there is work.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "log-internal.h"
#include "engines/epoll.h"

#define EPOLL_EVENTS_MIN 128
#define EPOLL_EVENTS_MAX 4096

int epoll_engine_probe(void)
{
    int fd = epoll_create1(EPOLL_CLOEXEC);

    if (fd < 0) {
        return -errno;
    }
    close(fd);
    return 0;
}

int epoll_engine_init(AioContext *ctx, Error **errp)
{
    EpollEngine *ee = aio_engine_priv(ctx);
    struct timespec zero = { 0, 0 };
    struct epoll_event ev;
    int ret = epoll_set_open(&ee->set);

    if (ret < 0) {
        error_setg_errno(errp, -ret, "epoll");
        return ret;
    }
    ee->nevents = EPOLL_EVENTS_MIN;
    ee->events = calloc(ee->nevents, sizeof(*ee->events));
    if (!ee->events) {
        epoll_set_close(&ee->set);
        error_setg_errno(errp, ENOMEM, "epoll");
        return -ENOMEM;
    }
    /* Kernels before 5.11 lack epoll_pwait2: fall back to ms timeouts. */
    ee->have_pwait2 = epoll_pwait2(ee->set.epfd, &ev, 1, &zero, NULL) >= 0 ||
                      errno != ENOSYS;
    return 0;
}

void epoll_engine_destroy(AioContext *ctx)
{
    EpollEngine *ee = aio_engine_priv(ctx);

    epoll_set_close(&ee->set);
    free(ee->events);
}

void epoll_engine_update(AioContext *ctx, AioHandler *old_node,
                         AioHandler *new_node)
{
    EpollEngine *ee = aio_engine_priv(ctx);

    epoll_set_update(&ee->set, old_node, new_node);
}

typedef struct AlwaysReadyWalk {
    AioReadyList *ready;
    int found;
} AlwaysReadyWalk;

static void epoll_add_always_ready(AioHandler *node, void *opaque)
{
    AlwaysReadyWalk *walk = opaque;

    if (!epoll_set_node_refused(node)) {
        return;
    }
    aio_ready_list_add(walk->ready, node,
                       aio_handler_events(node) & (POLLIN | POLLOUT));
    walk->found++;
}

static int epoll_sleep_once(EpollEngine *ee, int64_t timeout_ns)
{
    struct timespec ts;
    int ms;

    if (timeout_ns < 0) {
        return epoll_wait(ee->set.epfd, ee->events, ee->nevents, -1);
    }
    if (ee->have_pwait2) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        return epoll_pwait2(ee->set.epfd, ee->events, ee->nevents, &ts, NULL);
    }
    /* Round up so a timer is never reported before its deadline. */
    ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
    return epoll_wait(ee->set.epfd, ee->events, ee->nevents, ms);
}

static void epoll_grow_events(EpollEngine *ee)
{
    struct epoll_event *bigger;

    if (ee->nevents >= EPOLL_EVENTS_MAX) {
        return;
    }
    bigger = realloc(ee->events, 2 * ee->nevents * sizeof(*bigger));
    if (bigger) {
        ee->events = bigger;
        ee->nevents *= 2;
    }
}

/*
 * One epoll wait: the number of events, or -errno.  EINTR, and EAGAIN
 * (which epoll does not document, but a kernel short of memory might say),
 * end a sleep early with 0: the caller waits again for the time left.  A
 * zero-timeout check must not miss ready fds for them: it is repeated.
 */
static int epoll_sleep(EpollEngine *ee, int64_t timeout_ns)
{
    for (int i = 0;; i++) {
        int n = epoll_sleep_once(ee, timeout_ns);

        if (n >= 0) {
            return n;
        }
        if (errno != EINTR && errno != EAGAIN) {
            return -errno;
        }
        if (timeout_ns != 0 || i == AIO_SYSCALL_RETRIES) {
            return 0;
        }
    }
}

int epoll_engine_wait(AioContext *ctx, AioReadyList *ready,
                      int64_t timeout_ns)
{
    EpollEngine *ee = aio_engine_priv(ctx);
    AlwaysReadyWalk walk = { .ready = ready, .found = 0 };
    bool refused = epoll_set_refused(&ee->set);
    int n;

    if (refused) {
        timeout_ns = 0;
    }
    n = epoll_sleep(ee, timeout_ns);
    if (n > 0) {
        /*
         * Another thread may have made these nodes and registered them
         * under the list lock: pass through the lock so that its writes
         * happen-before ours (the kernel orders them, C11 and TSan do not
         * know it).
         */
        aio_engine_lock(ctx);
        aio_engine_unlock(ctx);
    }
    for (int i = 0; i < n; i++) {
        if (!ee->events[i].data.ptr) {
            walk.found--; /* the always readable eventfd */
            continue;
        }
        aio_ready_list_add(ready, ee->events[i].data.ptr,
                           (int)ee->events[i].events);
    }
    if (n == ee->nevents) {
        epoll_grow_events(ee); /* the rest wait for the next pass */
    }
    if (refused) {
        aio_handlers_foreach(ctx, epoll_add_always_ready, &walk);
    }
    return n < 0 ? n : n + walk.found;
}

bool epoll_engine_need_wait(AioContext *ctx)
{
    return aio_poll_disabled(ctx);
}

int epoll_engine_pollfd(AioContext *ctx)
{
    EpollEngine *ee = aio_engine_priv(ctx);

    return ee->set.epfd;
}

const AioEngineOps aio_engine_epoll = {
    .version = AIO_ENGINE_OPS_VERSION,
    .name = "epoll",
    .ctx_priv_size = sizeof(EpollEngine),
    .handler_priv_size = sizeof(EpollSetNode),
    .probe = epoll_engine_probe,
    .init = epoll_engine_init,
    .destroy = epoll_engine_destroy,
    .update = epoll_engine_update,
    .wait = epoll_engine_wait,
    .need_wait = epoll_engine_need_wait,
    .pollfd = epoll_engine_pollfd,
};
