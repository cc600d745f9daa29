/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The epoll engine's slots, for engines that wait on fds the same way
 * (linux-aio, io_uring): such an engine puts an EpollEngine at the start of
 * its per-context area, uses EpollSetNode as its per-handler area and calls
 * these functions from its own slots.  It may add descriptors of its own to
 * set.epfd with data.ptr NULL: epoll_engine_wait() wakes for them but
 * neither reports nor counts them (the engine looks at what they announce
 * itself).
 */
#ifndef AIOCTX_ENGINES_EPOLL_H
#define AIOCTX_ENGINES_EPOLL_H

#include <stdbool.h>
#include <sys/epoll.h>

#include "engines/epoll-set.h"

typedef struct EpollEngine {
    EpollSet set;
    bool have_pwait2;
    struct epoll_event *events;
    int nevents;
} EpollEngine;

/* The AioEngineOps slots of the same names (engine.h). */
int epoll_engine_probe(void);
int epoll_engine_init(AioContext *ctx, Error **errp);
void epoll_engine_destroy(AioContext *ctx);
void epoll_engine_update(AioContext *ctx, AioHandler *old_node,
                         AioHandler *new_node);
int epoll_engine_wait(AioContext *ctx, AioReadyList *ready, int64_t timeout_ns);
bool epoll_engine_need_wait(AioContext *ctx);
int epoll_engine_pollfd(AioContext *ctx);

#endif /* AIOCTX_ENGINES_EPOLL_H */
