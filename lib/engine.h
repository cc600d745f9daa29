/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine vtable: how an AioContext waits for file descriptors and how
 * it submits file I/O.
 *
 * One engine is one lib/engine-<name>.c file defining a single
 * "const AioEngineOps"; lib/engine.c lists them in preference order.  The
 * core never looks inside an engine: it allocates ctx_priv_size bytes per
 * context and handler_priv_size bytes per handler for the engine's own use
 * (zero-filled) and reaches them with aio_engine_priv() and
 * aio_handler_engine_priv().  Engines see the context only through the
 * functions declared at the end of this file.
 *
 * Threads and locks:
 *  - probe may run in any thread at any time and must have no side effects;
 *  - init/destroy run once per context, with no other user;
 *  - update runs with the handler list LOCKED (aio_engine_lock()), in any
 *    thread;
 *  - wait/pollfd run in the home thread while the handler list is being
 *    visited (handlers may be marked deleted meanwhile but are not
 *    freed);
 *  - need_wait and file_dispatch run in the home thread on every loop
 *    iteration, without the visitor count (an iteration that only runs
 *    bottom halves takes none): they must not touch handler nodes, and
 *    should answer from a field or two.
 */
#ifndef AIOCTX_ENGINE_H
#define AIOCTX_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aioctx/aio.h"
#include "util/atomic.h"
#include "util/now.h"

typedef struct AioHandler AioHandler;
/* Handlers found ready by wait(), linked through the handlers. */
typedef struct AioReadyList {
    AioHandler *head;
} AioReadyList;
typedef struct AioFileExec AioFileExec;

#define AIO_ENGINE_OPS_VERSION 2

typedef struct AioEngineOps {
    /* AIO_ENGINE_OPS_VERSION; the struct only grows at the end. */
    int version;
    /* Name used by AIOCTX_ENGINE and AioContextOptions.engine. */
    const char *name;
    /* Bytes of private state per context and per handler. */
    size_t ctx_priv_size;
    size_t handler_priv_size;

    /*
     * Can this engine work here?  Returns 0 or the -errno the kernel gave.
     * No side effects (resources made to find out are released).
     */
    int (*probe)(void);

    /*
     * Set up the engine for ctx.  Returns 0, or -errno with *errp set to a
     * message that names the engine and the cause.
     */
    int (*init)(AioContext *ctx, Error **errp);

    /* Release everything init made.  Handlers are already gone. */
    void (*destroy)(AioContext *ctx);

    /*
     * A handler was added (old_node NULL), changed (both set; new_node
     * replaces old_node for the same fd) or removed (new_node NULL).
     * Engines that fail to watch an fd must still keep the loop working
     * (for example by reporting the fd as always ready, as poll(2) does
     * for regular files).
     */
    void (*update)(AioContext *ctx, AioHandler *old_node,
                   AioHandler *new_node);

    /*
     * Wait up to timeout_ns (-1 forever, 0 not at all) for watched fds and
     * add the ready ones to ready with aio_ready_list_add().  Returns the
     * number added (plus the file I/O completions waiting for
     * file_dispatch, for engines that have it), or -errno (EINTR is not an
     * error: return 0).  A file I/O completion ends the wait like a ready
     * fd does.
     */
    int (*wait)(AioContext *ctx, AioReadyList *ready, int64_t timeout_ns);

    /*
     * True when wait() must be called because fds may be ready that
     * io_poll callbacks do not see (asked while busy-polling, and before
     * an iteration skips the wait).  Home thread, no visitor count.
     */
    bool (*need_wait)(AioContext *ctx);

    /*
     * A single descriptor that polls readable whenever wait() would find
     * something (for embedding in a foreign loop), or -errno when it cannot
     * be had now.  May be NULL (the engine has none).
     */
    int (*pollfd)(AioContext *ctx);

    /*
     * Hand queued changes to the kernel so that pollfd() turns readable for
     * everything wait() would find; aio_prepare() calls it before a foreign
     * loop sleeps on pollfd().  Home thread.  May be NULL.
     */
    void (*flush)(AioContext *ctx);

    /*
     * ---- File I/O (aio_file_*, lib/file-io-internal.h) ----
     * The executor that runs ctx's file requests (an AioFileExec the
     * engine keeps in its own state), or NULL for the thread pool.  Asked
     * in the home thread, once per context, after init.  May be NULL.
     */
    AioFileExec *(*file_exec)(AioContext *ctx);

    /*
     * Report the completions wait() collected (aio_file_req_done(), which
     * runs callbacks that may nest aio_poll()).  aio_poll() calls it after
     * dispatching fd handlers, with the list lock's visitor count held;
     * returns true if it reported anything.  wait() counts completions
     * waiting here in its return value, and need_wait() is true while there
     * are any (or while submissions wait to be handed over).  NULL for
     * engines whose completions arrive through a handler or bottom half.
     */
    bool (*file_dispatch)(AioContext *ctx);

    /*
     * Context destruction (before handlers go; the front end accepts no new
     * request): report every request the engine holds, those the kernel
     * has not received with -ECANCELED, the others with their result once
     * the kernel is done with them.  May be NULL if file_dispatch is.
     */
    void (*file_drain)(AioContext *ctx);
} AioEngineOps;

/* Engine lookup (engine.c). */

/* The engine called name, or NULL. "auto" is not an engine. */
const AioEngineOps *aio_engine_find(const char *name);
/* Whether name is an optional engine this build left out. */
bool aio_engine_left_out(const char *name);
/* Comma-separated list of every compiled-in engine, for messages. */
const char *aio_engine_names(void);
/*
 * The engines "auto" tries, best first, NULL-terminated.  linux-aio is not
 * among them (it is only taken by name): it waits on fds exactly as epoll
 * does, and Linux AIO only helps O_DIRECT files, executing buffered I/O
 * synchronously inside io_submit().
 */
extern const AioEngineOps *const aio_engines[];

extern const AioEngineOps aio_engine_poll;
extern const AioEngineOps aio_engine_epoll;
extern const AioEngineOps aio_engine_io_uring;
extern const AioEngineOps aio_engine_linux_aio;

/* Services the core offers engines (context.c / handlers.c). */

/* The context's aio_max_batch (0: the engine's default).  Any thread. */
int64_t aio_engine_max_batch(AioContext *ctx);
/*
 * Take and release the handler list's lock (update runs under it).  An
 * engine that changes its own fd bookkeeping from wait/pollfd takes it.
 */
void aio_engine_lock(AioContext *ctx);
void aio_engine_unlock(AioContext *ctx);
/*
 * Bracket a walk of the handler list outside wait() (for example a drain
 * at destruction that calls wait() itself): handlers are not freed
 * meanwhile.  Home thread.
 */
void aio_engine_visit_begin(AioContext *ctx);
void aio_engine_visit_end(AioContext *ctx);

void *aio_engine_priv(AioContext *ctx);
void *aio_handler_engine_priv(AioHandler *node);
int aio_handler_fd(AioHandler *node);
/* POLLIN/POLLOUT-style interest of the handler (0 when being removed). */
int aio_handler_events(AioHandler *node);
/* The live handler watching fd, or NULL; ctx->list_lock must be held. */
AioHandler *aio_handler_lookup(AioContext *ctx, int fd);
/*
 * How many times busy-polling ran the handler's io_poll_ready (home thread):
 * engines whose readiness reports can be consumed late use it to tell that
 * the work may already have been done.
 */
unsigned aio_handler_poll_ready_runs(AioHandler *node);
/* True once the handler was removed or replaced. */
bool aio_handler_deleted(AioHandler *node);
/* Report node as ready with revents (POLLIN, POLLOUT, POLLHUP, POLLERR). */
void aio_ready_list_add(AioReadyList *ready, AioHandler *node, int revents);
/* Forget what a ready list holds. */
void aio_ready_list_clear(AioReadyList *ready);
/* Call fn on every live handler (visitor count held by the caller). */
void aio_handlers_foreach(AioContext *ctx,
                          void (*fn)(AioHandler *node, void *opaque),
                          void *opaque);
/* Number of live handlers. */
int aio_handler_count(AioContext *ctx);
/* Whether busy polling is disabled (some handler lacks io_poll). */
bool aio_poll_disabled(AioContext *ctx);

#endif /* AIOCTX_ENGINE_H */
