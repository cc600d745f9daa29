/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bottom halves.
 *
 * Scheduling pushes the BH onto the context's lock-free LIFO (bh_list) and
 * calls aio_notify().  aio_bh_poll() takes the whole LIFO at once, turns it
 * into a FIFO "slice" and appends the slice to ctx->slice_head.  It then
 * runs slices from the first one, so a nested aio_bh_poll() (a BH that runs
 * aio_poll) finishes what the outer call started before its own slice, and
 * BHs scheduled while a slice runs wait for the next aio_bh_poll().
 */
#include <stdio.h>
#include <stdlib.h>

#include "aio-internal.h"

enum {
    BH_PENDING = 1 << 0,   /* linked into bh_list or a slice */
    BH_SCHEDULED = 1 << 1, /* the callback should run */
    BH_DELETED = 1 << 2,   /* free without running */
    BH_ONESHOT = 1 << 3,   /* free after running */
    BH_IDLE = 1 << 4,      /* scheduled with qemu_bh_schedule_idle */
};

#define BH_IDLE_TIMEOUT_NS (10 * 1000 * 1000)

struct QEMUBH {
    AioContext *ctx;
    QEMUBHFunc *cb;
    void *opaque;
    const char *name;
    MemReentrancyGuard *guard;
    QEMUBH *next;   /* bh_list or slice link */
    unsigned flags; /* atomic BH_* */
    /* ctx->bh_all membership (not for one-shot BHs). */
    QEMUBH *all_next;
    QEMUBH **all_pprev;
};

static QEMUBH *bh_alloc(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                        const char *name, MemReentrancyGuard *guard)
{
    QEMUBH *bh = malloc(sizeof(*bh));

    if (!bh) {
        fprintf(stderr, "libaioctx: out of memory allocating a BH\n");
        abort();
    }
    *bh = (QEMUBH){ .ctx = ctx, .cb = cb, .opaque = opaque, .name = name,
                    .guard = guard };
    return bh;
}

static void bh_all_add(AioContext *ctx, QEMUBH *bh)
{
    pthread_mutex_lock(&ctx->bh_all_lock);
    bh->all_next = ctx->bh_all;
    if (bh->all_next) {
        bh->all_next->all_pprev = &bh->all_next;
    }
    bh->all_pprev = &ctx->bh_all;
    ctx->bh_all = bh;
    pthread_mutex_unlock(&ctx->bh_all_lock);
}

static void bh_all_remove_locked(QEMUBH *bh)
{
    *bh->all_pprev = bh->all_next;
    if (bh->all_next) {
        bh->all_next->all_pprev = bh->all_pprev;
    }
}

static void bh_free(QEMUBH *bh)
{
    AioContext *ctx = bh->ctx;

    if (bh->all_pprev) {
        pthread_mutex_lock(&ctx->bh_all_lock);
        bh_all_remove_locked(bh);
        pthread_mutex_unlock(&ctx->bh_all_lock);
    }
    free(bh);
}

/* Set flags; link the BH unless it was linked already; wake the loop. */
static void bh_enqueue(QEMUBH *bh, unsigned new_flags)
{
    AioContext *ctx = bh->ctx;
    /*
     * From another thread, the BH may run and its context be freed before
     * aio_notify() below is done with it: ctx_free() waits for enqueuers.
     */
    bool foreign = aio_tls_current_ctx != ctx;
    unsigned old;

    if (foreign) {
        __atomic_fetch_add(&ctx->enqueuers, 1, __ATOMIC_SEQ_CST);
    }
    old = __atomic_fetch_or(&bh->flags, BH_PENDING | new_flags,
                            __ATOMIC_ACQ_REL);
    if (!(old & BH_PENDING)) {
        QEMUBH *head = aio_load(&ctx->bh_list);

        do {
            bh->next = head;
        } while (!__atomic_compare_exchange_n(&ctx->bh_list, &head, bh, true,
                                              __ATOMIC_RELEASE,
                                              __ATOMIC_RELAXED));
    }
    aio_notify(ctx);
    if (foreign) {
        __atomic_fetch_sub(&ctx->enqueuers, 1, __ATOMIC_RELEASE);
    }
}

/* Unlink the first BH of a slice; returns its flags before clearing. */
static QEMUBH *slice_pop(BHSlice *slice, unsigned *flags)
{
    QEMUBH *bh = slice->head;

    if (!bh) {
        return NULL;
    }
    /* Read next before clearing PENDING: a re-schedule rewrites it. */
    slice->head = bh->next;
    *flags = __atomic_fetch_and(&bh->flags,
                                ~(unsigned)(BH_PENDING | BH_SCHEDULED | BH_IDLE),
                                __ATOMIC_ACQ_REL);
    return bh;
}

static QEMUBH *bh_list_reverse(QEMUBH *bh)
{
    QEMUBH *fifo = NULL;

    while (bh) {
        QEMUBH *next = bh->next;

        bh->next = fifo;
        fifo = bh;
        bh = next;
    }
    return fifo;
}

void aio_bh_init_ctx(AioContext *ctx)
{
    ctx->bh_list = NULL;
    ctx->slice_head = NULL;
    ctx->slice_tailp = &ctx->slice_head;
    ctx->bh_all = NULL;
    pthread_mutex_init(&ctx->bh_all_lock, NULL);
}

void aio_bh_destroy_ctx(AioContext *ctx)
{
    QEMUBH *bh = __atomic_exchange_n(&ctx->bh_list, NULL, __ATOMIC_ACQUIRE);

    /* One-shot BHs live only in bh_list; the rest are on bh_all. */
    while (bh) {
        QEMUBH *next = bh->next;

        if (aio_load(&bh->flags) & BH_ONESHOT) {
            free(bh);
        }
        bh = next;
    }
    while (ctx->bh_all) {
        bh = ctx->bh_all;
        bh_all_remove_locked(bh);
        free(bh);
    }
    pthread_mutex_destroy(&ctx->bh_all_lock);
}

AIOCTX_API QEMUBH *aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb,
                                   void *opaque, const char *name,
                                   MemReentrancyGuard *reentrancy_guard)
{
    QEMUBH *bh = bh_alloc(ctx, cb, opaque, name, reentrancy_guard);

    bh_all_add(ctx, bh);
    return bh;
}

AIOCTX_API void aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb,
                                             void *opaque, const char *name)
{
    QEMUBH *bh = bh_alloc(ctx, cb, opaque, name, NULL);

    bh->flags = BH_ONESHOT;
    bh_enqueue(bh, BH_SCHEDULED);
}

AIOCTX_API void qemu_bh_schedule(QEMUBH *bh)
{
    bh_enqueue(bh, BH_SCHEDULED);
}

AIOCTX_API void qemu_bh_schedule_idle(QEMUBH *bh)
{
    bh_enqueue(bh, BH_SCHEDULED | BH_IDLE);
}

AIOCTX_API void qemu_bh_cancel(QEMUBH *bh)
{
    /*
     * Acquire too: a caller that cancels and then looks for work must see
     * whatever a racing qemu_bh_schedule() published before it scheduled.
     */
    __atomic_fetch_and(&bh->flags, ~(unsigned)BH_SCHEDULED, __ATOMIC_ACQ_REL);
}

AIOCTX_API void qemu_bh_delete(QEMUBH *bh)
{
    bh_enqueue(bh, BH_DELETED);
}

/* aio_bh_call(), called directly: no PLT hop from aio_bh_poll(). */
static inline void bh_call(QEMUBH *bh)
{
    MemReentrancyGuard *guard = bh->guard; /* cb may free bh */
    bool was_engaged = false;

    if (guard) {
        was_engaged = guard->engaged_in_io;
        guard->engaged_in_io = true;
    }
    bh->cb(bh->opaque);
    if (guard) {
        guard->engaged_in_io = was_engaged;
    }
}

AIOCTX_API void aio_bh_call(QEMUBH *bh)
{
    bh_call(bh);
}

AIOCTX_API int aio_bh_poll(AioContext *ctx)
{
    BHSlice slice = { .next = NULL };
    BHSlice *s;
    int ret = 0;

    /*
     * Nothing scheduled and no outer call to finish: skip the locked
     * exchange.  The acquire load pairs with bh_enqueue()'s release push
     * just as the exchange would; a later push is seen on the next call.
     */
    if (!ctx->slice_head && !aio_load_acquire(&ctx->bh_list)) {
        return 0;
    }
    slice.head = bh_list_reverse(
        __atomic_exchange_n(&ctx->bh_list, NULL, __ATOMIC_ACQUIRE));
    *ctx->slice_tailp = &slice;
    ctx->slice_tailp = &slice.next;

    while ((s = ctx->slice_head)) {
        unsigned flags;
        QEMUBH *bh = slice_pop(s, &flags);

        if (!bh) {
            ctx->slice_head = s->next;
            if (!s->next) {
                ctx->slice_tailp = &ctx->slice_head;
            }
            continue;
        }
        if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
            if (!(flags & BH_IDLE)) {
                ret = 1;
            }
            bh_call(bh);
        }
        if (flags & (BH_DELETED | BH_ONESHOT)) {
            bh_free(bh);
        }
    }
    return ret;
}

/* What the BHs on one chain ask of the timeout, folded into *timeout. */
static bool bh_chain_timeout(QEMUBH *bh, int64_t *timeout)
{
    for (; bh; bh = aio_load(&bh->next)) {
        unsigned flags = aio_load(&bh->flags);

        if ((flags & (BH_SCHEDULED | BH_DELETED)) != BH_SCHEDULED) {
            continue;
        }
        if (!(flags & BH_IDLE)) {
            *timeout = 0;
            return true;
        }
        *timeout = BH_IDLE_TIMEOUT_NS;
    }
    return false;
}

int64_t aio_bh_timeout(AioContext *ctx)
{
    int64_t timeout = -1;

    if (bh_chain_timeout(aio_load_acquire(&ctx->bh_list), &timeout)) {
        return 0;
    }
    for (BHSlice *s = ctx->slice_head; s; s = s->next) {
        if (bh_chain_timeout(s->head, &timeout)) {
            return 0;
        }
    }
    return timeout;
}
