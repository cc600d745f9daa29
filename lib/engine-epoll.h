/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The epoll engine's pieces, for engines that wait on fds the same way
 * (linux-aio, io_uring): such an engine puts an EpollEngine at the start of
 * its per-context area, uses EpollHandler as its per-handler area and calls
 * these functions from its own slots.  It may add descriptors of its own to
 * epfd with data.ptr NULL: epoll_engine_wait() wakes for them but neither
 * reports nor counts them (the engine looks at what they announce itself).
 */
#ifndef AIOCTX_ENGINE_EPOLL_H
#define AIOCTX_ENGINE_EPOLL_H

#include <stdbool.h>
#include <sys/epoll.h>

#include "engine.h"

typedef struct EpollEngine {
    int epfd;
    bool have_pwait2;
    int always_ready; /* handlers epoll refused */
    int always_fd;    /* readable eventfd, in the set while always_ready */
    struct epoll_event *events;
    int nevents;
} EpollEngine;

typedef struct EpollHandler {
    bool always_ready;
} EpollHandler;

/* The AioEngineOps slots of the same names (engine.h). */
/*
 * Retries of a system call that failed with a transient error (EINTR,
 * EAGAIN, ENOMEM) before the error stands.
 */
#define AIO_SYSCALL_RETRIES 16

/* epoll_ctl() retried on transient errors; 0 or -errno. */
int aio_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);

int epoll_engine_probe(void);
int epoll_engine_init(AioContext *ctx, Error **errp);
void epoll_engine_destroy(AioContext *ctx);
void epoll_engine_update(AioContext *ctx, AioHandler *old_node,
                         AioHandler *new_node);
int epoll_engine_wait(AioContext *ctx, AioReadyList *ready, int64_t timeout_ns);
bool epoll_engine_need_wait(AioContext *ctx);
int epoll_engine_pollfd(AioContext *ctx);

#endif /* AIOCTX_ENGINE_EPOLL_H */
