/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IOThread: a thread running its own AioContext until a stop bottom half
 * tells it to return.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio-internal.h"
#include "aioctx/iothread.h"

struct IOThread {
    char *id;
    pthread_t thread;
    AioContext *ctx;
    bool stopping; /* written by the stop BH, read by the loop: one thread */

    /* Hand-shakes with iothread_create() and iothread_destroy(). */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;     /* the loop runs, or ctx is NULL and err set */
    Error *err;
    bool stop_sent; /* iothread_destroy() no longer touches ctx */
};

static void iothread_stop_bh(void *opaque)
{
    IOThread *iothread = opaque;

    iothread->stopping = true;
}

static void iothread_set_name(const char *id)
{
    char name[16];

    snprintf(name, sizeof(name), "%s", id);
    pthread_setname_np(pthread_self(), name);
}

static void *iothread_main(void *opaque)
{
    IOThread *iothread = opaque;
    Error *err = NULL;
    AioContext *ctx;

    iothread_set_name(iothread->id);
    ctx = aio_context_new(&err);
    if (ctx) {
        aio_context_set_poll_params(ctx, AIOCTX_IOTHREAD_POLL_MAX_NS_DEFAULT, 0, 0,
                                    &error_abort);
        qemu_set_current_aio_context(ctx);
    }
    pthread_mutex_lock(&iothread->lock);
    iothread->ctx = ctx;
    iothread->err = err;
    iothread->ready = true;
    pthread_cond_signal(&iothread->cond);
    pthread_mutex_unlock(&iothread->lock);
    if (!ctx) {
        return NULL;
    }

    while (!iothread->stopping) {
        aio_poll(ctx, true);
    }
    /*
     * The stop BH can run before iothread_destroy() has returned from
     * scheduling it (which ends in aio_notify(ctx)); wait for that before
     * dropping what is usually the last reference, so the context is
     * destroyed here, in its own thread.
     */
    pthread_mutex_lock(&iothread->lock);
    while (!iothread->stop_sent) {
        pthread_cond_wait(&iothread->cond, &iothread->lock);
    }
    pthread_mutex_unlock(&iothread->lock);
    aio_context_unref(ctx);
    qemu_set_current_aio_context(NULL);
    return NULL;
}

static void iothread_free(IOThread *iothread)
{
    pthread_cond_destroy(&iothread->cond);
    pthread_mutex_destroy(&iothread->lock);
    free(iothread->id);
    free(iothread);
}

AIOCTX_API IOThread *iothread_create(const char *id, Error **errp)
{
    IOThread *iothread = calloc(1, sizeof(*iothread));
    sigset_t all, old;
    int ret;

    if (iothread) {
        iothread->id = strdup(id && *id ? id : "iothread");
    }
    if (!iothread || !iothread->id) {
        free(iothread);
        error_setg_errno(errp, ENOMEM, "cannot allocate an IOThread");
        return NULL;
    }
    pthread_mutex_init(&iothread->lock, NULL);
    pthread_cond_init(&iothread->cond, NULL);

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = pthread_create(&iothread->thread, NULL, iothread_main, iothread);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret != 0) {
        error_setg_errno(errp, ret, "cannot start IOThread '%s'",
                         iothread->id);
        iothread_free(iothread);
        return NULL;
    }

    pthread_mutex_lock(&iothread->lock);
    while (!iothread->ready) {
        pthread_cond_wait(&iothread->cond, &iothread->lock);
    }
    pthread_mutex_unlock(&iothread->lock);
    if (!iothread->ctx) {
        pthread_join(iothread->thread, NULL);
        error_propagate(errp, iothread->err);
        iothread_free(iothread);
        return NULL;
    }
    return iothread;
}

AIOCTX_API AioContext *iothread_get_aio_context(IOThread *iothread)
{
    return iothread ? iothread->ctx : NULL;
}

AIOCTX_API const char *iothread_get_id(IOThread *iothread)
{
    return iothread ? iothread->id : NULL;
}

AIOCTX_API void iothread_set_poll_params(IOThread *iothread, int64_t max_ns,
                                         int64_t grow, int64_t shrink,
                                         Error **errp)
{
    if (!iothread) {
        error_setg(errp, "iothread_set_poll_params: no IOThread given");
        return;
    }
    aio_context_set_poll_params(iothread->ctx, max_ns, grow, shrink, errp);
}

AIOCTX_API void iothread_destroy(IOThread *iothread)
{
    if (!iothread) {
        return;
    }
    aio_bh_schedule_oneshot(iothread->ctx, iothread_stop_bh, iothread);
    pthread_mutex_lock(&iothread->lock);
    iothread->stop_sent = true;
    pthread_cond_signal(&iothread->cond);
    pthread_mutex_unlock(&iothread->lock);
    pthread_join(iothread->thread, NULL);
    iothread_free(iothread);
}
