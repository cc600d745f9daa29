/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An epoll set following a handler list: see epoll-set.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engines/epoll-set.h"
#include "log-internal.h"

int epoll_set_open(EpollSet *set)
{
    set->always_fd = -1;
    set->refused = 0;
    set->epfd = epoll_create1(EPOLL_CLOEXEC);
    return set->epfd < 0 ? -errno : 0;
}

void epoll_set_close(EpollSet *set)
{
    if (set->epfd >= 0) {
        close(set->epfd);
        set->epfd = -1;
    }
    if (set->always_fd >= 0) {
        close(set->always_fd);
        set->always_fd = -1;
    }
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

static int set_ctl(EpollSet *set, int op, int fd, int events, void *ptr)
{
    struct epoll_event ev = { .events = (uint32_t)events, .data.ptr = ptr };

    return aio_epoll_ctl(set->epfd, op, fd, &ev);
}

/* One more (delta 1) or one fewer (-1) refused handler. */
static void set_refused_add(EpollSet *set, int delta)
{
    int n = set->refused + delta;

    __atomic_store_n(&set->refused, n, __ATOMIC_RELAXED);
    if (delta > 0 && n == 1) {
        if (set->always_fd < 0) {
            set->always_fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        }
        if (set->always_fd >= 0) {
            set_ctl(set, EPOLL_CTL_ADD, set->always_fd, EPOLLIN, NULL);
        }
    } else if (delta < 0 && n == 0 && set->always_fd >= 0) {
        set_ctl(set, EPOLL_CTL_DEL, set->always_fd, 0, NULL);
    }
}

/*
 * Put node's fd in the set; in_set says whether it is there already (for
 * the handler node replaces).  ADD and MOD are retried as each other: a
 * closed and reused fd number leaves the set's view stale either way.
 */
static void set_watch(EpollSet *set, AioHandler *node, bool in_set)
{
    EpollSetNode *sn = aio_handler_engine_priv(node);
    int fd = aio_handler_fd(node), events = aio_handler_events(node);
    int ret = set_ctl(set, in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, events,
                      node);

    if (ret == -ENOENT) {
        ret = set_ctl(set, EPOLL_CTL_ADD, fd, events, node);
    } else if (ret == -EEXIST) {
        ret = set_ctl(set, EPOLL_CTL_MOD, fd, events, node);
    }
    if (ret == 0) {
        sn->in_set = true;
        return;
    }
    /*
     * EPERM: a regular file or block device.  Anything else (ENOMEM,
     * ENOSPC from max_user_watches, EBADF for a closed fd) leaves the fd
     * unwatched; reporting it ready on every wait, as poll(2) would,
     * loses no event at the price of polling it.
     */
    if (ret != -EPERM) {
        aio_log(AIO_LOG_WARNING, "epoll cannot watch fd %d (%s): polled",
                fd, strerror(-ret));
    }
    __atomic_store_n(&sn->refused, true, __ATOMIC_RELAXED);
    set_refused_add(set, 1);
}

void epoll_set_update(EpollSet *set, AioHandler *old_node,
                      AioHandler *new_node)
{
    bool in_set = false;

    if (old_node) {
        EpollSetNode *sn = aio_handler_engine_priv(old_node);

        in_set = sn->in_set;
        sn->in_set = false;
        if (sn->refused) {
            __atomic_store_n(&sn->refused, false, __ATOMIC_RELAXED);
            set_refused_add(set, -1);
        }
    }
    if (new_node && aio_handler_events(new_node)) {
        set_watch(set, new_node, in_set);
    } else if (in_set) {
        /* Fails harmlessly if the fd was closed while registered. */
        set_ctl(set, EPOLL_CTL_DEL, aio_handler_fd(old_node), 0, NULL);
    }
}
