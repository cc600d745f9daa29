/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * AioContext life cycle, the current-context thread variable, aio_notify()
 * and the tuning parameters.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "aio-internal.h"

#define THREAD_POOL_MAX_DEFAULT 64

/* See aio-internal.h; initial-exec so reading it is one load. */
__thread AioContext *aio_tls_current_ctx
    __attribute__((tls_model("initial-exec")));

/* ---- the context's own notifier ---- */

static void ctx_notifier_read(void *opaque)
{
    event_notifier_test_and_clear(opaque);
}

static bool ctx_notifier_poll(void *opaque)
{
    EventNotifier *e = opaque;
    AioContext *ctx =
        (AioContext *)((char *)e - offsetof(AioContext, notifier));

    return aio_load(&ctx->notified);
}

static void ctx_notifier_poll_ready(void *opaque)
{
    (void)opaque; /* the wake-up itself was the point */
}

AIOCTX_API void aio_notify(AioContext *ctx)
{
    /* Publish earlier writes, set the flag, full barrier (one xchg). */
    (void)__atomic_exchange_n(&ctx->notified, true, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ctx->notify_me, __ATOMIC_SEQ_CST)) {
        event_notifier_set(&ctx->notifier);
    }
}

AIOCTX_API void aio_notify_accept(AioContext *ctx)
{
    /*
     * Clear the flag before looking for work.  When it is already clear a
     * late aio_notify() leaves it set, which only makes the next blocking
     * poll look again instead of sleeping.
     */
    if (aio_load(&ctx->notified)) {
        (void)__atomic_exchange_n(&ctx->notified, false, __ATOMIC_SEQ_CST);
    }
}

/* ---- creation ---- */

static const AioEngineOps *engine_choose(const char *name, Error **errp)
{
    const AioEngineOps *ops;
    int ret;

    ops = aio_engine_find(name);
    if (!ops && aio_engine_left_out(name)) {
        error_setg_errno(errp, ENOTSUP,
                         "engine '%s' was left out of this build of "
                         "libaioctx (built: %s)", name, aio_engine_names());
        return NULL;
    }
    if (!ops) {
        error_setg(errp, "unknown engine '%s' (known: auto, %s)", name,
                   aio_engine_names());
        return NULL;
    }
    ret = ops->probe();
    if (ret < 0) {
        error_setg_errno(errp, -ret, "%s", ops->name);
        return NULL;
    }
    return ops;
}

static void ctx_free(AioContext *ctx);

static AioContext *ctx_alloc(const AioEngineOps *ops)
{
    aio_bh_global_init();
    /* Cache-line aligned: the BH fields are laid out by line. */
    size_t size = (sizeof(AioContext) + 63) & ~(size_t)63;
    AioContext *ctx = aligned_alloc(_Alignof(AioContext), size);
    pthread_mutexattr_t attr;

    if (!ctx) {
        return NULL;
    }
    memset(ctx, 0, size);
    ctx->engine_priv = calloc(1, ops->ctx_priv_size ? ops->ctx_priv_size : 1);
    if (!ctx->engine_priv) {
        free(ctx);
        return NULL;
    }
    ctx->tlg = aio_timers_new(ctx);
    if (!ctx->tlg) {
        free(ctx->engine_priv);
        free(ctx);
        return NULL;
    }
    ctx->refcnt = 1;
    ctx->engine = ops;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&ctx->acquire_lock, &attr);
    pthread_mutexattr_destroy(&attr);
    aio_bh_init_ctx(ctx);
    lockcnt_init(&ctx->list_lock);
    ctx->thread_pool_max = THREAD_POOL_MAX_DEFAULT;
    if (!aio_co_init_ctx(ctx)) {
        ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

static void ctx_free(AioContext *ctx)
{
    /* A BH scheduled from another thread may still be notifying us. */
    while (__atomic_load_n(&ctx->enqueuers, __ATOMIC_ACQUIRE)) {
        sched_yield();
    }
    /* Armed timers are disarmed, none runs; the timers stay the caller's. */
    aio_timers_free(ctx->tlg);
    aio_bh_destroy_ctx(ctx);
    pthread_mutex_destroy(&ctx->acquire_lock);
    free(ctx->engine_priv);
    free(ctx);
}

/* Build a context on ops; NULL with *errp set on failure. */
static AioContext *ctx_create(const AioEngineOps *ops, Error **errp)
{
    AioContext *ctx = ctx_alloc(ops);
    int ret;

    if (!ctx) {
        error_setg_errno(errp, ENOMEM, "cannot allocate an AioContext");
        return NULL;
    }
    ret = event_notifier_init(&ctx->notifier, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot create the context notifier");
        ctx_free(ctx);
        return NULL;
    }
    if (ops->init(ctx, errp) < 0) {
        /* init may have grown the fd table before failing. */
        aio_handlers_destroy_ctx(ctx);
        event_notifier_cleanup(&ctx->notifier);
        ctx_free(ctx);
        return NULL;
    }
    if (!aio_set_fd_handler_full(ctx, event_notifier_get_fd(&ctx->notifier),
                                 ctx_notifier_read, NULL, ctx_notifier_poll,
                                 ctx_notifier_poll_ready, &ctx->notifier,
                                 true)) {
        error_setg_errno(errp, ENOMEM, "cannot watch the context notifier");
        aio_file_destroy_ctx(ctx); /* the linux-aio engine made one */
        aio_handlers_destroy_ctx(ctx);
        ops->destroy(ctx);
        event_notifier_cleanup(&ctx->notifier);
        ctx_free(ctx);
        return NULL;
    }
    aio_notify_accept(ctx);
    return ctx;
}

/* "auto": the engines in preference order, skipping refused ones. */
static AioContext *ctx_create_auto(Error **errp)
{
    Error *last = NULL;

    for (int i = 0; aio_engines[i]; i++) {
        AioContext *ctx;

        if (aio_engines[i]->probe() < 0) {
            continue;
        }
        error_free(last);
        last = NULL;
        ctx = ctx_create(aio_engines[i], &last);
        if (ctx) {
            return ctx;
        }
    }
    if (last) {
        error_propagate(errp, last);
    } else {
        error_setg(errp, "no usable engine on this machine");
    }
    return NULL;
}

AIOCTX_API AioContext *
aio_context_new_with_options(const AioContextOptions *opts, Error **errp)
{
    const char *name = opts ? opts->engine : NULL;
    const AioEngineOps *ops;

    if (!name || !*name) {
        name = secure_getenv("AIOCTX_ENGINE");
    }
    if (!name || !*name || strcmp(name, "auto") == 0) {
        return ctx_create_auto(errp);
    }
    ops = engine_choose(name, errp);
    return ops ? ctx_create(ops, errp) : NULL;
}

AIOCTX_API AioContext *aio_context_new(Error **errp)
{
    return aio_context_new_with_options(NULL, errp);
}

AIOCTX_API void aio_context_ref(AioContext *ctx)
{
    __atomic_fetch_add(&ctx->refcnt, 1, __ATOMIC_RELAXED);
}

static void ctx_destroy(AioContext *ctx)
{
    /* First, while BHs and handlers still exist: see thread-pool.h. */
    aio_transfer_destroy_ctx(ctx); /* its workers' part ends in the pool's */
    aio_thread_pool_destroy_ctx(ctx);
    aio_file_destroy_ctx(ctx); /* after the pool: see file-io.h */
    aio_co_destroy_ctx(ctx);
    aio_loop_destroy_ctx(ctx);
    aio_handlers_destroy_ctx(ctx);
    ctx->engine->destroy(ctx);
    event_notifier_cleanup(&ctx->notifier);
    if (aio_tls_current_ctx == ctx) {
        aio_tls_current_ctx = NULL;
    }
    ctx_free(ctx);
}

AIOCTX_API void aio_context_unref(AioContext *ctx)
{
    if (!ctx) {
        return;
    }
    if (__atomic_sub_fetch(&ctx->refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
        ctx_destroy(ctx);
    }
}

AIOCTX_API const char *aio_context_get_engine_name(AioContext *ctx)
{
    return ctx ? ctx->engine->name : NULL;
}

AIOCTX_API bool aio_engine_available(const char *name)
{
    const AioEngineOps *ops;

    if (name && strcmp(name, "auto") == 0) {
        return true;
    }
    ops = name ? aio_engine_find(name) : NULL;
    return ops && ops->probe() == 0;
}

void *aio_engine_priv(AioContext *ctx)
{
    return ctx->engine_priv;
}

int64_t aio_engine_max_batch(AioContext *ctx)
{
    return aio_load(&ctx->aio_max_batch);
}

void aio_engine_lock(AioContext *ctx)
{
    lockcnt_lock(&ctx->list_lock);
}

void aio_engine_unlock(AioContext *ctx)
{
    lockcnt_unlock(&ctx->list_lock);
}

void aio_engine_visit_begin(AioContext *ctx)
{
    lockcnt_inc(&ctx->list_lock);
}

void aio_engine_visit_end(AioContext *ctx)
{
    lockcnt_dec(&ctx->list_lock);
}

/* ---- ownership and the current context ---- */

AIOCTX_API void aio_context_acquire(AioContext *ctx)
{
    pthread_mutex_lock(&ctx->acquire_lock);
}

AIOCTX_API void aio_context_release(AioContext *ctx)
{
    pthread_mutex_unlock(&ctx->acquire_lock);
}

AIOCTX_API AioContext *qemu_get_current_aio_context(void)
{
    return aio_tls_current_ctx;
}

AIOCTX_API void qemu_set_current_aio_context(AioContext *ctx)
{
    aio_tls_current_ctx = ctx;
}

/* ---- parameters ---- */

AIOCTX_API void aio_context_set_poll_params(AioContext *ctx, int64_t max_ns,
                                            int64_t grow, int64_t shrink,
                                            Error **errp)
{
    if (!ctx) {
        error_setg(errp, "poll parameters: no context given");
        return;
    }
    if (max_ns < 0 || grow < 0 || shrink < 0) {
        error_setg(errp,
                   "poll parameters must not be negative (max_ns=%lld, "
                   "grow=%lld, shrink=%lld)",
                   (long long)max_ns, (long long)grow, (long long)shrink);
        return;
    }
    aio_store(&ctx->poll_max_ns, max_ns);
    aio_store(&ctx->poll_grow, grow);
    aio_store(&ctx->poll_shrink, shrink);
    /* poll_ns belongs to the home thread: ask it to restart from 0. */
    aio_store_release(&ctx->poll_reset, true);
    aio_notify(ctx);
}

AIOCTX_API void aio_context_set_aio_params(AioContext *ctx, int64_t max_batch,
                                           Error **errp)
{
    if (!ctx) {
        error_setg(errp, "aio parameters: no context given");
        return;
    }
    if (max_batch < 0) {
        error_setg(errp, "aio max_batch must not be negative (got %lld)",
                   (long long)max_batch);
        return;
    }
    aio_store(&ctx->aio_max_batch, max_batch);
    aio_notify(ctx);
}

AIOCTX_API void aio_context_set_thread_pool_params(AioContext *ctx, int64_t min,
                                                   int64_t max, Error **errp)
{
    if (!ctx) {
        error_setg(errp, "thread pool parameters: no context given");
        return;
    }
    if (min < 0 || max < 1 || min > max || max > INT32_MAX) {
        error_setg(errp,
                   "thread pool parameters need 0 <= min <= max, 1 <= max "
                   "(got min=%lld, max=%lld)",
                   (long long)min, (long long)max);
        return;
    }
    aio_store(&ctx->thread_pool_min, (int)min);
    aio_store(&ctx->thread_pool_max, (int)max);
    aio_thread_pool_update_params(ctx);
}
