/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Asynchronous request control blocks (BlockAIOCB): allocation, reference
 * counting and cancellation.  A request type describes itself with an
 * AIOCBInfo: how big its control block is and how to ask for cancellation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio-internal.h"
#include "log-internal.h"
#include "aioctx/thread-pool.h"

static void aiocb_oom(void)
{
    aio_fatal("out of memory allocating an AIOCB");
}

/*
 * Control block memory.  Requests are many and short-lived, and a burst of
 * them can be outstanding at once, so blocks are not malloc'd one by one:
 * each thread carves blocks, in order, from a current slab per block size
 * (for a few sizes).  A slab counts its blocks that are not freed yet, plus
 * one while a thread still carves from it.  Freeing a block, in any thread,
 * is one atomic decrement; whoever brings the count to zero recycles the
 * slab: it becomes that thread's one spare slab, or is freed.  So a thread
 * holds at most its current slabs and one spare.  A pointer to the slab
 * sits right before each block (NULL before a block too large for slabs,
 * which has a malloc of its own).
 *
 * Under AddressSanitizer each block is a plain malloc, so that use after
 * free is still caught.
 */
#if defined(__SANITIZE_ADDRESS__)
#define AIOCB_PLAIN_MALLOC
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIOCB_PLAIN_MALLOC
#endif
#endif

#ifdef AIOCB_PLAIN_MALLOC

void *aiocb_alloc(size_t size)
{
    void *p = malloc(size);

    if (!p) {
        aiocb_oom();
    }
    return p;
}

void aiocb_free(void *p)
{
    free(p);
}

void aiocb_free_batched(AiocbFreeBatch *b, void *p)
{
    (void)b;
    free(p);
}

void aiocb_free_flush(AiocbFreeBatch *b)
{
    (void)b;
}

#else

#define SLAB_BYTES (16 * 1024)
#define BLOCK_ALIGN 16       /* what malloc guarantees */
#define SLAB_MAX_STRIDE 1024 /* larger blocks are malloc'd alone */
#define SLAB_SLOTS 4         /* block sizes a thread carves at once */

/*
 * A slab: this header, then units of stride bytes from offset
 * sizeof(void *), each a slab pointer followed by a block, so that every
 * block is BLOCK_ALIGN aligned.
 */
typedef struct AiocbSlab {
    unsigned live; /* atomic: blocks not freed, +1 while carved from */
} AiocbSlab;

typedef struct AiocbSlot {
    AiocbSlab *slab; /* NULL: unused */
    char *next;      /* the next block to hand out */
    unsigned left;   /* blocks left to hand out */
    unsigned stride;
} AiocbSlot;

typedef struct AiocbCache {
    AiocbSlot slot[SLAB_SLOTS];
    AiocbSlab *spare;
    unsigned victim; /* the slot to take over when none is free */
} AiocbCache;

static __thread AiocbCache *aiocb_cache
    __attribute__((tls_model("initial-exec")));

static pthread_once_t aiocb_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t aiocb_key;

static AiocbSlab **slab_of(void *block)
{
    return (AiocbSlab **)block - 1;
}

/* The count reached zero in the calling thread: keep or free the slab. */
static void slab_recycle(AiocbSlab *slab)
{
    AiocbCache *c = aiocb_cache;

    if (c && !c->spare) {
        c->spare = slab;
        return;
    }
    free(slab);
}

/* Stop carving from a slot's slab: uncount the blocks never handed out. */
static void slot_retire(AiocbSlot *s)
{
    AiocbSlab *slab = s->slab;

    if (!slab) {
        return;
    }
    if (__atomic_sub_fetch(&slab->live, s->left + 1, __ATOMIC_ACQ_REL) == 0) {
        slab_recycle(slab);
    }
    s->slab = NULL;
    s->left = 0;
}

/* Give back what the calling thread holds; it may start over later. */
static void cache_release(AiocbCache *c)
{
    aiocb_cache = NULL;
    for (int i = 0; i < SLAB_SLOTS; i++) {
        slot_retire(&c->slot[i]);
    }
    free(c->spare);
    free(c);
}

static void cache_thread_exit(void *opaque)
{
    cache_release(opaque);
}

static void cache_key_create(void)
{
    if (pthread_key_create(&aiocb_key, cache_thread_exit) != 0) {
        aio_fatal("cannot create the AIOCB cache key");
    }
}

/* The main thread runs no key destructor when the process exits. */
static __attribute__((destructor)) void cache_process_exit(void)
{
    AiocbCache *c = aiocb_cache;

    if (c) {
        pthread_setspecific(aiocb_key, NULL);
        cache_release(c);
    }
}

static AiocbCache *cache_get(void)
{
    AiocbCache *c = aiocb_cache;

    if (c) {
        return c;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        aiocb_oom();
    }
    pthread_once(&aiocb_key_once, cache_key_create);
    pthread_setspecific(aiocb_key, c);
    aiocb_cache = c;
    return c;
}

/* Point slot s at a fresh slab of stride-byte units. */
static void slot_refill(AiocbCache *c, AiocbSlot *s, size_t stride)
{
    AiocbSlab *slab = c->spare;
    unsigned n = (unsigned)((SLAB_BYTES - sizeof(void *)) / stride);

    if (slab) {
        c->spare = NULL;
    } else {
        slab = malloc(SLAB_BYTES);
        if (!slab) {
            aiocb_oom();
        }
    }
    /* Ours alone until a block is handed out. */
    slab->live = n + 1;
    s->slab = slab;
    s->next = (char *)slab + 2 * sizeof(void *);
    s->left = n;
    s->stride = (unsigned)stride;
}

static __attribute__((noinline)) void *alloc_slow(size_t size, size_t stride)
{
    AiocbCache *c = cache_get();
    AiocbSlot *s = NULL;
    void *p;

    if (size > SLAB_MAX_STRIDE || stride > SLAB_MAX_STRIDE) {
        /* A slab pointer of NULL, then the block, aligned. */
        char *base = malloc(BLOCK_ALIGN + size);

        if (!base) {
            aiocb_oom();
        }
        p = base + BLOCK_ALIGN;
        *slab_of(p) = NULL;
        return p;
    }
    for (int i = 0; i < SLAB_SLOTS && !s; i++) {
        if (c->slot[i].slab && c->slot[i].stride == stride) {
            s = &c->slot[i]; /* used up */
        }
    }
    for (int i = 0; i < SLAB_SLOTS && !s; i++) {
        if (!c->slot[i].slab) {
            s = &c->slot[i];
        }
    }
    if (!s) {
        s = &c->slot[c->victim];
        c->victim = (c->victim + 1) % SLAB_SLOTS;
    }
    slot_retire(s);
    slot_refill(c, s, stride);
    p = s->next;
    s->next += stride;
    s->left--;
    *slab_of(p) = s->slab;
    return p;
}

void *aiocb_alloc(size_t size)
{
    size_t stride =
        (size + sizeof(void *) + BLOCK_ALIGN - 1) & ~(size_t)(BLOCK_ALIGN - 1);
    AiocbCache *c = aiocb_cache;

    if (c && size <= SLAB_MAX_STRIDE) {
        for (int i = 0; i < SLAB_SLOTS; i++) {
            AiocbSlot *s = &c->slot[i];

            if (s->stride == stride && s->left) {
                void *p = s->next;

                s->next += stride;
                s->left--;
                *slab_of(p) = s->slab;
                return p;
            }
        }
    }
    return alloc_slow(size, stride);
}

void aiocb_free(void *p)
{
    AiocbSlab *slab = *slab_of(p);

    if (!slab) {
        free((char *)p - BLOCK_ALIGN);
        return;
    }
    if (__atomic_sub_fetch(&slab->live, 1, __ATOMIC_ACQ_REL) == 0) {
        slab_recycle(slab);
    }
}

void aiocb_free_flush(AiocbFreeBatch *b)
{
    AiocbSlab *slab = b->slab;

    if (slab && __atomic_sub_fetch(&slab->live, b->n, __ATOMIC_ACQ_REL) == 0) {
        slab_recycle(slab);
    }
    b->slab = NULL;
    b->n = 0;
}

void aiocb_free_batched(AiocbFreeBatch *b, void *p)
{
    AiocbSlab *slab = *slab_of(p);

    if (slab && slab == b->slab) {
        b->n++;
        return;
    }
    aiocb_free_flush(b);
    if (!slab) {
        free((char *)p - BLOCK_ALIGN);
        return;
    }
    b->slab = slab;
    b->n = 1;
}

#endif /* !AIOCB_PLAIN_MALLOC */

AIOCTX_API void *qemu_aio_get(const AIOCBInfo *aiocb_info, BlockDriverState *bs,
                              BlockCompletionFunc *cb, void *opaque)
{
    size_t size = aiocb_info->aiocb_size;
    BlockAIOCB *acb;

    if (size < sizeof(BlockAIOCB)) {
        size = sizeof(BlockAIOCB);
    }
    acb = aiocb_alloc(size);
    memset(acb, 0, size);
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
        aiocb_free(acb);
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
        aio_fatal("bdrv_aio_cancel called from a thread without a current "
                  "AioContext");
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
