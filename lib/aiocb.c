/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Asynchronous request control blocks (BlockAIOCB): allocation, reference
 * counting and cancellation.  A request type describes itself with an
 * AIOCBInfo: how big its control block is and how to ask for cancellation.
 */
#include <stdio.h>
#include <stdlib.h>

#include "aio-internal.h"
#include "aioctx/thread-pool.h"

AIOCTX_API void *qemu_aio_get(const AIOCBInfo *aiocb_info,
                              BlockDriverState *bs, BlockCompletionFunc *cb,
                              void *opaque)
{
    size_t size = aiocb_info->aiocb_size;
    BlockAIOCB *acb;

    if (size < sizeof(BlockAIOCB)) {
        size = sizeof(BlockAIOCB);
    }
    acb = calloc(1, size);
    if (!acb) {
        fprintf(stderr, "libaioctx: out of memory allocating an AIOCB\n");
        abort();
    }
    acb->aiocb_info = aiocb_info;
    acb->bs = bs;
    acb->cb = cb;
    acb->opaque = opaque;
    acb->refcnt = 1;
    return acb;
}

AIOCTX_API void qemu_aio_ref(void *p)
{
    BlockAIOCB *acb = p;

    __atomic_fetch_add(&acb->refcnt, 1, __ATOMIC_RELAXED);
}

AIOCTX_API void qemu_aio_unref(void *p)
{
    BlockAIOCB *acb = p;

    if (!acb) {
        return;
    }
    if (__atomic_sub_fetch(&acb->refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
        free(acb);
    }
}

AIOCTX_API void bdrv_aio_cancel_async(BlockAIOCB *acb)
{
    if (acb && acb->aiocb_info->cancel_async) {
        acb->aiocb_info->cancel_async(acb);
    }
}

AIOCTX_API void bdrv_aio_cancel(BlockAIOCB *acb)
{
    AioContext *ctx = qemu_get_current_aio_context();

    if (!acb) {
        return;
    }
    if (!ctx) {
        fprintf(stderr, "libaioctx: bdrv_aio_cancel called from a thread "
                        "without a current AioContext\n");
        abort();
    }
    /*
     * Our reference keeps the block alive; the completion path drops the
     * submitter's one after the callback, which is how we know it ran.
     */
    qemu_aio_ref(acb);
    bdrv_aio_cancel_async(acb);
    while (__atomic_load_n(&acb->refcnt, __ATOMIC_ACQUIRE) > 1) {
        aio_poll(ctx, true);
    }
    qemu_aio_unref(acb);
}
