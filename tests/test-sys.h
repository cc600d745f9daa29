/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * System calls for the suites' helpers, safe under signals: every
 * blocking call here survives EINTR, and the ones with a timeout recompute
 * what is left of it (the suites also run under a signal storm, see
 * tests/storm/signal-storm.c).  Plus the descriptors most suites make.
 */
#ifndef AIOCTX_TEST_SYS_H
#define AIOCTX_TEST_SYS_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t test_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline int64_t test_now_ms(void)
{
    return test_now_ns() / 1000000;
}

/* Sleep at least ns nanoseconds, signals or not. */
static inline void test_sleep_ns(int64_t ns)
{
    int64_t end = test_now_ns() + (ns > 0 ? ns : 0);
    struct timespec ts = { end / 1000000000, end % 1000000000 };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR) {
    }
}

static inline void test_sleep_us(int64_t us)
{
    test_sleep_ns(us * 1000);
}

static inline void test_sleep_ms(int64_t ms)
{
    test_sleep_ns(ms * 1000000);
}

/*
 * poll(2) that waits the whole timeout_ms (negative: no limit) across
 * signals; returns poll's result: the ready count, 0 on timeout, or -1
 * for an error other than EINTR.
 */
static inline int test_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    int64_t end = test_now_ms() + timeout_ms;
    int ret;

    for (;;) {
        int left = timeout_ms;

        if (timeout_ms > 0) {
            int64_t now = test_now_ms();

            left = now >= end ? 0 : (int)(end - now);
        }
        ret = poll(fds, n, left);
        if (ret >= 0 || errno != EINTR) {
            return ret;
        }
    }
}

/* poll(2) on one descriptor for events; as test_poll(). */
static inline int test_poll_fd(int fd, short events, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = events };

    return test_poll(&pfd, 1, timeout_ms);
}

/* waitpid(2) retried after EINTR. */
static inline pid_t test_waitpid(pid_t pid, int *status, int flags)
{
    pid_t ret;

    do {
        ret = waitpid(pid, status, flags);
    } while (ret < 0 && errno == EINTR);
    return ret;
}

/* read(2) retried after EINTR. */
static inline ssize_t test_read(int fd, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = read(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* write(2) retried after EINTR. */
static inline ssize_t test_write(int fd, const void *buf, size_t len)
{
    ssize_t n;

    do {
        n = write(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* recv(2) retried after EINTR. */
static inline ssize_t test_recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t n;

    do {
        n = recv(fd, buf, len, flags);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* send(2) retried after EINTR. */
static inline ssize_t test_send(int fd, const void *buf, size_t len, int flags)
{
    ssize_t n;

    do {
        n = send(fd, buf, len, flags);
    } while (n < 0 && errno == EINTR);
    return n;
}

/*
 * connect(2) on a blocking socket, completed across signals: an
 * interrupted connect goes on in the background, so wait for it to finish
 * and take its result.  Returns 0, or -1 with errno set.
 */
static inline int test_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    socklen_t elen = sizeof(int);
    int err = 0;

    if (connect(fd, sa, len) == 0) {
        return 0;
    }
    if (errno != EINTR) {
        return -1;
    }
    if (test_poll_fd(fd, POLLOUT, -1) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
        return -1;
    }
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* A non-blocking close-on-exec pipe. */
static inline void make_pipe(int fds[2])
{
    ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

/* A non-blocking close-on-exec AF_UNIX stream pair. */
static inline void make_socketpair(int sv[2])
{
    ck_assert_int_eq(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
}

#endif /* AIOCTX_TEST_SYS_H */
