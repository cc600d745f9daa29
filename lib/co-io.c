/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coroutines waiting for file descriptors: yield_until_fd_readable() and
 * the all-or-error qemu_co_recv() / qemu_co_send().
 *
 * errno is thread-local and glibc declares its accessor `const`, so the
 * compiler may compute its address once per function; a coroutine can
 * resume in another thread, so errno is only ever read through
 * co_errno(), right after the failing call.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aio-internal.h"
#include "coroutine-internal.h"

typedef struct FdWait {
    AioContext *ctx;
    int fd;
    Coroutine *co;
} FdWait;

static __attribute__((noinline)) int co_errno(void)
{
    int err = errno;

    __asm__ volatile("" : "+r"(err));
    return err;
}

static void fd_wait_ready(void *opaque)
{
    FdWait *w = opaque;

    aio_set_fd_handler(w->ctx, w->fd, NULL, NULL, NULL, NULL, NULL);
    aio_co_wake(w->co);
}

/* Yield until fd is readable (write false) or writable (write true). */
static void coroutine_fn yield_until_fd_ready(int fd, bool write,
                                              const char *what)
{
    FdWait w = { .fd = fd };

    w.co = qemu_coroutine_self();
    if (!w.co->caller) {
        co_die("%s called outside a coroutine", what);
    }
    w.ctx = qemu_get_current_aio_context();
    if (!w.ctx) {
        co_die("%s: the calling thread has no current AioContext", what);
    }
    /* Out of memory: return at once, as a spurious wake-up would. */
    if (aio_set_fd_handler_full(w.ctx, fd, write ? NULL : fd_wait_ready,
                                write ? fd_wait_ready : NULL, NULL, NULL, &w,
                                false)) {
        qemu_coroutine_yield();
    }
}

AIOCTX_API void coroutine_fn yield_until_fd_readable(int fd)
{
    yield_until_fd_ready(fd, false, "yield_until_fd_readable");
}

/* One recv/send (read/write when fd is not a socket); -errno on error. */
static ssize_t transfer_once(int fd, char *buf, size_t len, bool send_it,
                             bool *not_socket)
{
    ssize_t ret;

    for (;;) {
        if (*not_socket) {
            ret = send_it ? write(fd, buf, len) : read(fd, buf, len);
        } else {
            ret = send_it ? send(fd, buf, len, MSG_NOSIGNAL)
                          : recv(fd, buf, len, 0);
        }
        if (ret >= 0) {
            return ret;
        }
        ret = -co_errno();
        if (ret == -ENOTSOCK && !*not_socket) {
            *not_socket = true;
            continue;
        }
        if (ret != -EINTR) {
            return ret;
        }
    }
}

static ssize_t coroutine_fn co_transfer(int fd, void *buf, size_t bytes,
                                        bool send_it)
{
    const char *what = send_it ? "qemu_co_send" : "qemu_co_recv";
    bool not_socket = false;
    size_t done = 0;

    while (done < bytes) {
        ssize_t ret = transfer_once(fd, (char *)buf + done, bytes - done,
                                    send_it, &not_socket);

        if (ret > 0) {
            done += (size_t)ret;
        } else if (ret == -EAGAIN || ret == -EWOULDBLOCK) {
            yield_until_fd_ready(fd, send_it, what);
        } else if (ret < 0) {
            return done ? (ssize_t)done : ret;
        } else {
            break; /* recv: end of file; send: nothing accepted */
        }
    }
    return (ssize_t)done;
}

AIOCTX_API ssize_t coroutine_fn qemu_co_recv(int sockfd, void *buf,
                                             size_t bytes)
{
    return co_transfer(sockfd, buf, bytes, false);
}

AIOCTX_API ssize_t coroutine_fn qemu_co_send(int sockfd, void *buf,
                                             size_t bytes)
{
    return co_transfer(sockfd, buf, bytes, true);
}
