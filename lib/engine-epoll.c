/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "epoll" engine: level-triggered epoll, nanosecond timeouts through
 * epoll_pwait2() where the kernel has it.  O(ready fds) per wait.
 *
 * Descriptors epoll refuses (regular files and block devices give EPERM)
 * are reported ready on every wait, which is what poll(2) does with them.
 * While there are such fds, the epoll set also holds an always readable
 * eventfd (data.ptr NULL, skipped by wait()), so that the epoll descriptor
 * handed out by pollfd() tells a foreign loop there is work.
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

#include "aio-internal.h"
#include "log-internal.h"
#include "engine-epoll.h"
#include "file-io-internal.h"

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

    ee->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ee->epfd < 0) {
        int err = errno;

        error_setg_errno(errp, err, "epoll");
        return -err;
    }
    ee->always_fd = -1;
    ee->nevents = EPOLL_EVENTS_MIN;
    ee->events = calloc(ee->nevents, sizeof(*ee->events));
    if (!ee->events) {
        close(ee->epfd);
        error_setg_errno(errp, ENOMEM, "epoll");
        return -ENOMEM;
    }
    /* Kernels before 5.11 lack epoll_pwait2: fall back to ms timeouts. */
    ee->have_pwait2 = epoll_pwait2(ee->epfd, &ev, 1, &zero, NULL) >= 0 ||
                      errno != ENOSYS;
    return 0;
}

void epoll_engine_destroy(AioContext *ctx)
{
    EpollEngine *ee = aio_engine_priv(ctx);

    close(ee->epfd);
    if (ee->always_fd >= 0) {
        close(ee->always_fd);
    }
    free(ee->events);
}

int aio_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int err;

    for (int i = 0;; i++) {
        if (epoll_ctl(epfd, op, fd, ev) == 0) {
            return 0;
        }
        err = errno;
        /* A failed EPOLL_CTL_DEL would leave a stale node pointer behind. */
        if ((err != EINTR && err != EAGAIN && err != ENOMEM) ||
            i == AIO_SYSCALL_RETRIES) {
            return -err;
        }
    }
}

static int epoll_ctl_node(EpollEngine *ee, int op, AioHandler *node)
{
    struct epoll_event ev = { .events = (uint32_t)aio_handler_events(node),
                              .data.ptr = node };

    return aio_epoll_ctl(ee->epfd, op, aio_handler_fd(node), &ev);
}

/* One more (delta 1) or one fewer (-1) refused handler; under the lock. */
static void epoll_always_ready_add(EpollEngine *ee, int delta)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    int n = ee->always_ready + delta;

    aio_store(&ee->always_ready, n);
    if (delta > 0 && n == 1) {
        if (ee->always_fd < 0) {
            ee->always_fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        }
        if (ee->always_fd >= 0) {
            aio_epoll_ctl(ee->epfd, EPOLL_CTL_ADD, ee->always_fd, &ev);
        }
    } else if (delta < 0 && n == 0 && ee->always_fd >= 0) {
        aio_epoll_ctl(ee->epfd, EPOLL_CTL_DEL, ee->always_fd, NULL);
    }
}

/* Watch new_node; ADD and MOD are retried as each other for reused fds. */
static void epoll_watch(EpollEngine *ee, AioHandler *new_node, bool had_old)
{
    EpollHandler *eh = aio_handler_engine_priv(new_node);
    int ret = epoll_ctl_node(ee, had_old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                             new_node);

    if (ret == -ENOENT) {
        ret = epoll_ctl_node(ee, EPOLL_CTL_ADD, new_node);
    } else if (ret == -EEXIST) {
        ret = epoll_ctl_node(ee, EPOLL_CTL_MOD, new_node);
    }
    if (ret == -EPERM) {
        aio_store(&eh->always_ready, true);
        epoll_always_ready_add(ee, 1);
        return;
    }
    if (ret < 0) {
        aio_log(AIO_LOG_ERROR, "epoll cannot watch fd %d: %s",
                aio_handler_fd(new_node), strerror(-ret));
    }
}

void epoll_engine_update(AioContext *ctx, AioHandler *old_node,
                         AioHandler *new_node)
{
    EpollEngine *ee = aio_engine_priv(ctx);
    bool old_refused = false;

    if (old_node) {
        EpollHandler *eh = aio_handler_engine_priv(old_node);

        old_refused = aio_load(&eh->always_ready);
        if (old_refused) {
            aio_store(&eh->always_ready, false);
            epoll_always_ready_add(ee, -1);
        }
    }
    if (new_node) {
        epoll_watch(ee, new_node, old_node && !old_refused);
        return;
    }
    if (old_node && !old_refused) {
        /* Fails harmlessly if the fd was closed while registered. */
        aio_epoll_ctl(ee->epfd, EPOLL_CTL_DEL, aio_handler_fd(old_node), NULL);
    }
}

typedef struct AlwaysReadyWalk {
    AioReadyList *ready;
    int found;
} AlwaysReadyWalk;

static void epoll_add_always_ready(AioHandler *node, void *opaque)
{
    EpollHandler *eh = aio_handler_engine_priv(node);
    AlwaysReadyWalk *walk = opaque;

    if (!aio_load(&eh->always_ready)) {
        return;
    }
    aio_ready_list_add(walk->ready, node,
                       aio_handler_events(node) & (POLLIN | POLLOUT));
    walk->found++;
}

static int epoll_sleep(EpollEngine *ee, int64_t timeout_ns)
{
    struct timespec ts;
    int ms;

    if (timeout_ns < 0) {
        return epoll_wait(ee->epfd, ee->events, ee->nevents, -1);
    }
    if (ee->have_pwait2) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        return epoll_pwait2(ee->epfd, ee->events, ee->nevents, &ts, NULL);
    }
    /* Round up so a timer is never reported before its deadline. */
    ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
    return epoll_wait(ee->epfd, ee->events, ee->nevents, ms);
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

int epoll_engine_wait(AioContext *ctx, AioReadyList *ready,
                      int64_t timeout_ns)
{
    EpollEngine *ee = aio_engine_priv(ctx);
    AlwaysReadyWalk walk = { .ready = ready, .found = 0 };
    int n;

    bool refused = aio_load(&ee->always_ready) != 0;

    if (refused) {
        timeout_ns = 0;
    }
    /*
     * EINTR, and EAGAIN (which epoll does not document, but a kernel short
     * of memory might say), end a sleep early: the caller waits again for
     * the time left.  A zero-timeout check must not miss ready fds for
     * them: it is simply repeated.
     */
    for (int i = 0;; i++) {
        n = epoll_sleep(ee, timeout_ns);
        if (n >= 0 || (errno != EINTR && errno != EAGAIN)) {
            break;
        }
        if (timeout_ns != 0 || i == AIO_SYSCALL_RETRIES) {
            n = 0;
            break;
        }
    }
    if (n < 0) {
        n = -errno;
    }
    if (n > 0) {
        /*
         * Another thread may have made these nodes and registered them
         * under the list lock: pass through the lock so that its writes
         * happen-before ours (the kernel orders them, C11 and TSan do not
         * know it).
         */
        lockcnt_lock(&ctx->list_lock);
        lockcnt_unlock(&ctx->list_lock);
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

    return ee->epfd;
}

const AioEngineOps aio_engine_epoll = {
    .version = AIO_ENGINE_OPS_VERSION,
    .name = "epoll",
    .ctx_priv_size = sizeof(EpollEngine),
    .handler_priv_size = sizeof(EpollHandler),
    .probe = epoll_engine_probe,
    .init = epoll_engine_init,
    .destroy = epoll_engine_destroy,
    .update = epoll_engine_update,
    .wait = epoll_engine_wait,
    .need_wait = epoll_engine_need_wait,
    .pollfd = epoll_engine_pollfd,
    .file_submit = aio_file_pool_submit,
    .file_cancel = aio_file_pool_cancel,
};
