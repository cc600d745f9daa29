/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * EventNotifier: an eventfd, or a non-blocking pipe when the kernel has no
 * eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aioctx/event-notifier.h"

static int notifier_open_pipe(EventNotifier *e)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        return -errno;
    }
    e->rfd = fds[0];
    e->wfd = fds[1];
    return 0;
}

AIOCTX_API int event_notifier_init(EventNotifier *e, int active)
{
    int fd;

    e->initialized = false;
    e->rfd = e->wfd = -1;
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd >= 0) {
        e->rfd = e->wfd = fd;
    } else if (errno == ENOSYS || errno == EINVAL) {
        int ret = notifier_open_pipe(e);

        if (ret < 0) {
            return ret;
        }
    } else {
        return -errno;
    }
    e->initialized = true;
    if (active) {
        event_notifier_set(e);
    }
    return 0;
}

AIOCTX_API void event_notifier_cleanup(EventNotifier *e)
{
    if (!e->initialized) {
        return;
    }
    if (e->wfd != e->rfd) {
        close(e->wfd);
    }
    close(e->rfd);
    e->rfd = e->wfd = -1;
    e->initialized = false;
}

AIOCTX_API int event_notifier_set(EventNotifier *e)
{
    uint64_t one = 1;
    ssize_t n;

    if (!e->initialized) {
        return -EBADF;
    }
    do {
        /* A pipe only needs one byte; an eventfd needs all eight. */
        n = write(e->wfd, &one, e->wfd == e->rfd ? sizeof(one) : 1);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter or the pipe is full, so it is set already. */
    if (n < 0 && errno != EAGAIN) {
        return -errno;
    }
    return 0;
}

AIOCTX_API int event_notifier_test_and_clear(EventNotifier *e)
{
    char buf[512];
    bool was_set = false;
    ssize_t n;

    if (!e->initialized) {
        return 0;
    }
    for (;;) {
        n = read(e->rfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        was_set = true;
        /* An eventfd is drained by one read; a pipe may need more. */
        if (e->rfd == e->wfd || n < (ssize_t)sizeof(buf)) {
            break;
        }
    }
    return was_set;
}

AIOCTX_API int event_notifier_get_fd(const EventNotifier *e)
{
    return e->initialized ? e->rfd : -1;
}

AIOCTX_API int event_notifier_get_wfd(const EventNotifier *e)
{
    return e->initialized ? e->wfd : -1;
}
