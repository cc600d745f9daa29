/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fd handlers and event notifiers: registration, the ready list, dispatch
 * and the io_poll side of busy-polling.
 *
 * Registering always makes a new node that replaces the old one for the
 * same fd; the old node is marked deleted and freed at once when nobody is
 * walking the list, or later by the outermost walker.  Dispatch checks
 * "deleted" before every callback, so callbacks may change any handler.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio-internal.h"
#include "log-internal.h"

#define EVENTS_READ (POLLIN | POLLHUP | POLLERR)
#define EVENTS_WRITE (POLLOUT | POLLERR)

void *aio_handler_engine_priv(AioHandler *node)
{
    return node->engine_priv;
}

int aio_handler_fd(AioHandler *node)
{
    return node->fd;
}

int aio_handler_events(AioHandler *node)
{
    return node->events;
}

AioHandler *aio_handler_lookup(AioContext *ctx, int fd)
{
    return fd >= 0 && fd < ctx->by_fd_size ? ctx->by_fd[fd] : NULL;
}

unsigned aio_handler_poll_ready_runs(AioHandler *node)
{
    return node->poll_ready_runs;
}

bool aio_handler_deleted(AioHandler *node)
{
    return aio_load(&node->deleted);
}

int aio_handler_count(AioContext *ctx)
{
    return aio_load(&ctx->handler_count);
}

AIOCTX_API bool aio_poll_disabled(AioContext *ctx)
{
    return aio_load(&ctx->poll_disable_cnt) != 0;
}

void aio_handlers_foreach(AioContext *ctx,
                          void (*fn)(AioHandler *node, void *opaque),
                          void *opaque)
{
    for (AioHandler *n = aio_load_acquire(&ctx->handlers); n;
         n = aio_load_acquire(&n->next)) {
        if (!aio_handler_deleted(n)) {
            fn(n, opaque);
        }
    }
}

/* ---- the ready list ---- */

static void ready_list_remove(AioHandler *node)
{
    if (!node->ready_pprev) {
        return;
    }
    *node->ready_pprev = node->ready_next;
    if (node->ready_next) {
        node->ready_next->ready_pprev = node->ready_pprev;
    }
    node->ready_pprev = NULL;
    node->ready_next = NULL;
}

void aio_ready_list_add(AioReadyList *ready, AioHandler *node, int revents)
{
    /* A nested aio_poll may take a node from an outer poll's list. */
    ready_list_remove(node);
    node->revents = revents;
    node->ready_next = ready->head;
    if (node->ready_next) {
        node->ready_next->ready_pprev = &node->ready_next;
    }
    node->ready_pprev = &ready->head;
    ready->head = node;
}

void aio_ready_list_clear(AioReadyList *ready)
{
    while (ready->head) {
        ready->head->revents = 0;
        ready->head->poll_ready = false;
        ready_list_remove(ready->head);
    }
}

static void ready_list_add_polled(AioReadyList *ready, AioHandler *node)
{
    aio_ready_list_add(ready, node, 0);
    node->poll_ready = true;
}

/* ---- registration ---- */

static bool by_fd_reserve(AioContext *ctx, int fd)
{
    int size = ctx->by_fd_size ? ctx->by_fd_size : 64;
    AioHandler **grown;

    if (fd < ctx->by_fd_size) {
        return true;
    }
    while (size <= fd) {
        size *= 2;
    }
    grown = realloc(ctx->by_fd, size * sizeof(*grown));
    if (!grown) {
        return false;
    }
    memset(grown + ctx->by_fd_size, 0,
           (size - ctx->by_fd_size) * sizeof(*grown));
    ctx->by_fd = grown;
    ctx->by_fd_size = size;
    return true;
}

static AioHandler *handler_new(AioContext *ctx)
{
    AioHandler *node =
        calloc(1, sizeof(*node) + ctx->engine->handler_priv_size);

    if (node) {
        node->ctx = ctx;
    }
    return node;
}

static void handler_link(AioContext *ctx, AioHandler *node)
{
    node->next = ctx->handlers;
    if (node->next) {
        node->next->pprev = &node->next;
    }
    node->pprev = &ctx->handlers;
    aio_store_release(&ctx->handlers, node);
}

static void handler_unlink_and_free(AioHandler *node)
{
    aio_store_release(node->pprev, node->next);
    if (node->next) {
        node->next->pprev = node->pprev;
    }
    ready_list_remove(node);
    free(node);
}

/* Take old out of service; list lock held. */
static void handler_retire(AioContext *ctx, AioHandler *old)
{
    /*
     * Leave revents/poll_ready alone: from another thread the home thread
     * may be filling them in right now.  Dispatch skips deleted nodes.
     */
    aio_store(&old->deleted, true);
    ctx->handler_count--;
    if (!old->io_poll) {
        aio_store(&ctx->poll_disable_cnt, ctx->poll_disable_cnt - 1);
    }
    if (lockcnt_count(&ctx->list_lock) == 0) {
        handler_unlink_and_free(old);
    } else {
        aio_store(&ctx->deleted_count, ctx->deleted_count + 1);
    }
}

bool aio_set_fd_handler_full(AioContext *ctx, int fd, IOHandler *io_read,
                             IOHandler *io_write, AioPollFn *io_poll,
                             IOHandler *io_poll_ready, void *opaque,
                             bool is_notifier)
{
    AioHandler *old, *node = NULL;

    if (!ctx || fd < 0) {
        return true;
    }
    if (!io_poll_ready) {
        io_poll = NULL; /* io_poll alone could never do the work */
    }
    lockcnt_lock(&ctx->list_lock);
    old = fd < ctx->by_fd_size ? ctx->by_fd[fd] : NULL;
    if (!io_read && !io_write && !io_poll) {
        if (!old) {
            lockcnt_unlock(&ctx->list_lock);
            return true;
        }
        ctx->by_fd[fd] = NULL;
    } else {
        /* Out of memory: nothing changes, the old handler stays. */
        node = by_fd_reserve(ctx, fd) ? handler_new(ctx) : NULL;
        if (!node) {
            lockcnt_unlock(&ctx->list_lock);
            aio_log(AIO_LOG_ERROR,
                    "out of memory watching fd %d: its handler is unchanged",
                    fd);
            return false;
        }
        node->fd = fd;
        node->io_read = io_read;
        node->io_write = io_write;
        node->io_poll = io_poll;
        node->io_poll_ready = io_poll_ready;
        node->opaque = opaque;
        node->is_notifier = is_notifier;
        node->events =
            (io_read ? EVENTS_READ : 0) | (io_write ? EVENTS_WRITE : 0);
        if (old) {
            node->io_poll_begin = old->io_poll_begin;
            node->io_poll_end = old->io_poll_end;
        }
        handler_link(ctx, node);
        ctx->by_fd[fd] = node;
        ctx->handler_count++;
        if (!io_poll) {
            aio_store(&ctx->poll_disable_cnt, ctx->poll_disable_cnt + 1);
        }
    }
    ctx->engine->update(ctx, old, node);
    if (old) {
        handler_retire(ctx, old);
    }
    lockcnt_unlock(&ctx->list_lock);
    aio_notify(ctx);
    return true;
}

AIOCTX_API void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                                   IOHandler *io_write, AioPollFn *io_poll,
                                   IOHandler *io_poll_ready, void *opaque)
{
    if (ctx && fd >= 0 && fd == event_notifier_get_fd(&ctx->notifier)) {
        return; /* the context's own notifier is not for the taking */
    }
    (void)aio_set_fd_handler_full(ctx, fd, io_read, io_write, io_poll,
                                  io_poll_ready, opaque, false);
}

AIOCTX_API void aio_set_event_notifier(AioContext *ctx, EventNotifier *notifier,
                                       EventNotifierHandler *io_read,
                                       AioPollFn *io_poll,
                                       EventNotifierHandler *io_poll_ready)
{
    if (!notifier) {
        return;
    }
    aio_set_fd_handler(ctx, event_notifier_get_fd(notifier),
                       (IOHandler *)io_read, NULL, io_poll,
                       (IOHandler *)io_poll_ready, notifier);
}

AIOCTX_API void aio_set_event_notifier_poll(AioContext *ctx,
                                            EventNotifier *notifier,
                                            EventNotifierHandler *io_poll_begin,
                                            EventNotifierHandler *io_poll_end)
{
    int fd = notifier ? event_notifier_get_fd(notifier) : -1;
    AioHandler *node;

    if (!ctx || fd < 0) {
        return;
    }
    lockcnt_lock(&ctx->list_lock);
    node = fd < ctx->by_fd_size ? ctx->by_fd[fd] : NULL;
    if (node) {
        node->io_poll_begin = (IOHandler *)io_poll_begin;
        node->io_poll_end = (IOHandler *)io_poll_end;
    }
    lockcnt_unlock(&ctx->list_lock);
}

void aio_free_deleted_handlers(AioContext *ctx)
{
    AioHandler *node, *next;

    if (!aio_load(&ctx->deleted_count) ||
        !lockcnt_dec_if_lock(&ctx->list_lock)) {
        return; /* nothing to free, or an outer walker will do it */
    }
    for (node = ctx->handlers; node; node = next) {
        next = node->next;
        if (node->deleted) {
            handler_unlink_and_free(node);
        }
    }
    aio_store(&ctx->deleted_count, 0);
    lockcnt_inc_and_unlock(&ctx->list_lock);
}

void aio_handlers_destroy_ctx(AioContext *ctx)
{
    while (ctx->handlers) {
        AioHandler *node = ctx->handlers;

        if (!node->deleted) {
            ctx->engine->update(ctx, node, NULL);
        }
        handler_unlink_and_free(node);
    }
    free(ctx->by_fd);
    ctx->by_fd = NULL;
    ctx->by_fd_size = 0;
}

/* ---- dispatch ---- */

/* Run node's callbacks for what it is ready for; *calls counts them. */
static bool dispatch_handler(AioHandler *node, unsigned *calls)
{
    int revents = node->revents & (node->events | POLLNVAL);
    bool poll_ready = node->poll_ready;
    bool progress = false;

    node->revents = 0;
    node->poll_ready = false;

    if (poll_ready && !revents && node->io_poll_ready &&
        !aio_handler_deleted(node)) {
        node->in_poll_ready = true;
        node->poll_ready_runs++;
        (*calls)++;
        node->io_poll_ready(node->opaque);
        node->in_poll_ready = false;
        return !node->is_notifier;
    }
    if ((revents & EVENTS_READ) && node->io_read &&
        !aio_handler_deleted(node)) {
        (*calls)++;
        node->io_read(node->opaque);
        progress = !node->is_notifier;
    }
    if ((revents & EVENTS_WRITE) && node->io_write &&
        !aio_handler_deleted(node)) {
        (*calls)++;
        node->io_write(node->opaque);
        progress = true;
    }
    return progress;
}

bool aio_dispatch_ready(AioContext *ctx, AioReadyList *ready)
{
    bool progress = false;
    AioHandler *node;

    unsigned calls = 0;

    while ((node = ready->head)) {
        ready_list_remove(node);
        progress |= dispatch_handler(node, &calls);
    }
    if (calls) {
        aio_stat_add(ctx, fd_dispatches, calls);
    }
    return progress;
}

bool aio_ready_list_only_notifier(const AioReadyList *ready)
{
    return ready->head && ready->head->is_notifier && !ready->head->ready_next;
}

/* ---- busy-polling ---- */

bool aio_run_poll_handlers_once(AioContext *ctx, AioReadyList *ready,
                                bool *any_ready)
{
    bool progress = false;

    for (AioHandler *n = aio_load_acquire(&ctx->handlers); n;
         n = aio_load_acquire(&n->next)) {
        if (!n->io_poll || n->in_poll_ready || n->poll_ready ||
            aio_handler_deleted(n)) {
            continue;
        }
        if (n->io_poll(n->opaque)) {
            *any_ready = true;
            progress |= !n->is_notifier;
            if (ready) {
                ready_list_add_polled(ready, n);
            }
        }
    }
    return progress;
}

bool aio_poll_set_started(AioContext *ctx, AioReadyList *ready, bool started,
                          bool *any_ready)
{
    bool progress = false;

    if (ctx->poll_started == started) {
        return false;
    }
    ctx->poll_started = started;
    for (AioHandler *n = aio_load_acquire(&ctx->handlers); n;
         n = aio_load_acquire(&n->next)) {
        IOHandler *fn = started ? n->io_poll_begin : n->io_poll_end;

        if (aio_handler_deleted(n)) {
            continue;
        }
        if (fn) {
            fn(n->opaque);
        }
        /* Work that arrived just before polling ended must not wait. */
        if (!started && n->io_poll && !n->in_poll_ready && !n->poll_ready &&
            !aio_handler_deleted(n) && n->io_poll(n->opaque)) {
            ready_list_add_polled(ready, n);
            *any_ready = true;
            progress |= !n->is_notifier;
        }
    }
    return progress;
}
