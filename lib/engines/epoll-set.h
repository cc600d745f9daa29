/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An epoll set that follows a context's handler list: the "epoll",
 * "linux-aio" and "io_uring" engines wait on one, and the "poll" engine
 * keeps one as the descriptor it hands to foreign loops.
 *
 * Each watched handler is in the set with its events and data.ptr set to
 * the handler.  Handlers without events are left out.  Descriptors epoll
 * refuses (regular files and block devices give EPERM) are "refused":
 * poll(2) reports them always ready, and so must the engine.  While any
 * handler is refused the set also holds an always readable eventfd
 * (data.ptr NULL), so that the set's descriptor polls readable.
 *
 * Every function except epoll_set_refused() runs with the handler list
 * locked (aio_engine_lock(), or from the engine's update slot).
 */
#ifndef AIOCTX_ENGINES_EPOLL_SET_H
#define AIOCTX_ENGINES_EPOLL_SET_H

#include <stdbool.h>
#include <sys/epoll.h>

#include "engine.h"

/*
 * Retries of a system call that failed with a transient error (EINTR,
 * EAGAIN, ENOMEM) before the error stands.
 */
#define AIO_SYSCALL_RETRIES 16

/* epoll_ctl() retried on transient errors; 0 or -errno. */
int aio_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);

typedef struct EpollSet {
    int epfd;
    int always_fd; /* readable eventfd, in the set while refused > 0 */
    int refused;   /* atomic: watched handlers epoll refused */
} EpollSet;

/* The per-handler area of an engine using an EpollSet starts with this. */
typedef struct EpollSetNode {
    bool in_set;  /* the fd is in the set for this handler */
    bool refused; /* atomic: epoll refused the fd */
} EpollSetNode;

/* Create the epoll descriptor; 0 or -errno. */
int epoll_set_open(EpollSet *set);
void epoll_set_close(EpollSet *set);

/* Follow a handler change (the engine's update slot, see engine.h). */
void epoll_set_update(EpollSet *set, AioHandler *old_node,
                      AioHandler *new_node);

/* Whether any watched handler is refused.  Any thread. */
static inline bool epoll_set_refused(EpollSet *set)
{
    return __atomic_load_n(&set->refused, __ATOMIC_RELAXED) != 0;
}

/* Whether epoll refused node's fd.  Any thread. */
static inline bool epoll_set_node_refused(AioHandler *node)
{
    EpollSetNode *sn = aio_handler_engine_priv(node);

    return __atomic_load_n(&sn->refused, __ATOMIC_RELAXED);
}

#endif /* AIOCTX_ENGINES_EPOLL_SET_H */
