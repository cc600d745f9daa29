/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Running coroutines in an AioContext: aio_co_schedule, aio_co_wake,
 * aio_co_enter, aio_co_reschedule_self.
 *
 * Each context has a lock-free LIFO of scheduled coroutines and an
 * internal bottom half, co_schedule_bh, that takes the whole LIFO, turns
 * it into FIFO order and enters each coroutine in the context's thread.
 */
#include <stdio.h>
#include <stdlib.h>

#include "aio-internal.h"
#include "coroutine-internal.h"

static const char co_schedule_marker[] = "aio_co_schedule";

static void co_schedule_bh_cb(void *opaque)
{
    AioContext *ctx = opaque;
    Coroutine *lifo = __atomic_exchange_n(&ctx->scheduled_coroutines, NULL,
                                          __ATOMIC_ACQUIRE);
    Coroutine *fifo = NULL;

    while (lifo) {
        Coroutine *next = lifo->co_scheduled_next;

        lifo->co_scheduled_next = fifo;
        fifo = lifo;
        lifo = next;
    }
    while (fifo) {
        Coroutine *co = fifo;
        const char *marker;

        fifo = co->co_scheduled_next;
        co->co_scheduled_next = NULL;
        marker = __atomic_exchange_n(&co->scheduled, NULL, __ATOMIC_ACQ_REL);
        if (marker != co_schedule_marker) {
            co_die("coroutine %p was on the schedule list but marked %s",
                   (void *)co, marker ? marker : "(nothing)");
        }
        qemu_aio_coroutine_enter(ctx, co);
    }
}

bool aio_co_init_ctx(AioContext *ctx)
{
    ctx->scheduled_coroutines = NULL;
    ctx->co_schedule_bh =
        aio_bh_try_new(ctx, co_schedule_bh_cb, ctx, "co_schedule_bh");
    return ctx->co_schedule_bh != NULL;
}

void aio_co_destroy_ctx(AioContext *ctx)
{
    Coroutine *co = aio_load_acquire(&ctx->scheduled_coroutines);

    if (co) {
        co_die("AioContext %p destroyed while coroutine %p is scheduled "
               "in it", (void *)ctx, (void *)co);
    }
    if (ctx->co_schedule_bh) {
        qemu_bh_delete(ctx->co_schedule_bh);
        ctx->co_schedule_bh = NULL;
    }
}

AIOCTX_API void aio_co_schedule(AioContext *ctx, Coroutine *co)
{
    const char *old = NULL;
    Coroutine *head;

    if (!__atomic_compare_exchange_n(&co->scheduled, &old, co_schedule_marker,
                                     false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        co_die("aio_co_schedule: coroutine %p is already scheduled by %s",
               (void *)co, old);
    }
    if (!ctx) {
        co_die("aio_co_schedule: coroutine %p: no AioContext given "
               "(it last ran in a thread without one?)", (void *)co);
    }
    /* The coroutine may run and drop the last reference before we return. */
    aio_context_ref(ctx);
    head = aio_load(&ctx->scheduled_coroutines);
    do {
        co->co_scheduled_next = head;
    } while (!__atomic_compare_exchange_n(&ctx->scheduled_coroutines, &head,
                                          co, true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    qemu_bh_schedule(ctx->co_schedule_bh);
    aio_context_unref(ctx);
}

AIOCTX_API void aio_co_enter(AioContext *ctx, Coroutine *co)
{
    AioContext *here = qemu_get_current_aio_context();
    Coroutine *self;

    if (!ctx) {
        /* Never ran, or ran outside any context: it belongs nowhere. */
        ctx = here;
    }
    if (ctx != here) {
        aio_co_schedule(ctx, co);
        return;
    }
    if (!qemu_in_coroutine()) {
        qemu_aio_coroutine_enter(ctx, co);
        return;
    }
    /* Run it after the current coroutine yields: the stack stays flat. */
    self = qemu_coroutine_self();
    if (self == co) {
        co_die("aio_co_enter: coroutine %p wakes itself", (void *)co);
    }
    co->co_queue_next = NULL;
    if (self->wakeup_tail) {
        self->wakeup_tail->co_queue_next = co;
    } else {
        self->wakeup_head = co;
    }
    self->wakeup_tail = co;
}

AIOCTX_API void aio_co_wake(Coroutine *co)
{
    /* Acquire pairs with the release store of co->ctx when it was entered. */
    aio_co_enter(aio_load_acquire(&co->ctx), co);
}

AIOCTX_API void coroutine_fn aio_co_reschedule_self(AioContext *new_ctx)
{
    Coroutine *self = qemu_coroutine_self();

    if (!qemu_in_coroutine()) {
        co_die("aio_co_reschedule_self called outside a coroutine");
    }
    if (!new_ctx) {
        co_die("aio_co_reschedule_self: no AioContext given");
    }
    if (new_ctx == qemu_get_current_aio_context()) {
        return;
    }
    /*
     * The enter loop that gets control back schedules us once we have
     * switched out, so the new thread cannot enter us too early.
     */
    self->reschedule_ctx = new_ctx;
    qemu_coroutine_yield();
}
