/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bottom halves.
 *
 * A BH reaches its context by one of two lists:
 *
 *  - the home list, a plain FIFO that only the context's home thread
 *    touches: the thread that polled it last (aio_poll() takes the home
 *    over when another thread polls; see aio_bh_take_home()).  A BH
 *    scheduled from inside aio_poll() (by a callback, a timer, a coroutine
 *    it entered) takes this path with plain stores only; from the home
 *    thread outside aio_poll() it costs one fence, the half of a Dekker
 *    handshake with the take-over.  No wake-up: the scheduler is the loop;
 *  - the remote list, a lock-free LIFO that any other thread pushes onto
 *    (fetch_or of the BH's flags, one compare-and-swap, then a wake-up only
 *    when the loop announced that it may sleep).
 *
 * A BH may sit on both lists at once (scheduled from inside and outside
 * the loop at the same time); whichever entry is reached first runs the
 * callback and clears the other's request, so the callback runs once.
 *
 * aio_bh_poll() takes both lists at once into a "slice" appended to
 * ctx->slice_head, home entries first, then the remote ones in the order
 * they were pushed.  It runs slices from the first one, so a nested
 * aio_bh_poll() (a BH that runs aio_poll) finishes what the outer call
 * started before its own slice, and BHs scheduled while a slice runs wait
 * for the next aio_bh_poll().
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aio-internal.h"
#include "log-internal.h"

/* bh->flags: shared with other threads, changed with atomics. */
enum {
    BH_PENDING = 1 << 0,   /* linked into the remote list or its slice */
    BH_SCHEDULED = 1 << 1, /* remote request: the callback should run */
    BH_DELETED = 1 << 2,   /* free without running */
    BH_ONESHOT = 1 << 3,   /* free after running (set at creation) */
    BH_IDLE = 1 << 4,      /* remote request came from schedule_idle */
};

#define BH_IDLE_TIMEOUT_NS (10 * 1000 * 1000)

struct QEMUBH {
    AioContext *ctx;
    QEMUBHFunc *cb;
    void *opaque;
    const char *name;
    MemReentrancyGuard *guard;
    QEMUBH *next;   /* remote list or remote part of a slice */
    unsigned flags; /* atomic BH_* */
    /*
     * qemu_bh_cancel() from another thread cannot touch the home fields:
     * it bumps cancels, and a home request made before that no longer runs.
     */
    unsigned cancels; /* atomic */
    /* Home list state: only the thread inside aio_poll(ctx) uses these. */
    QEMUBH *home_next;
    unsigned home_cancels; /* cancels when the home request was made */
    bool home_linked;
    bool home_sched;
    bool home_idle;
    /* ctx->bh_all membership (not for one-shot BHs). */
    QEMUBH *all_next;
    QEMUBH **all_pprev;
};

/* See aio-internal.h. */
__thread AioContext *aio_tls_polling_ctx
    __attribute__((tls_model("initial-exec")));
__thread uint64_t aio_tls_thread_id __attribute__((tls_model("initial-exec")));

static uint64_t bh_thread_ids; /* atomic; ids are never reused */

uint64_t aio_thread_id_slow(void)
{
    aio_tls_thread_id = __atomic_add_fetch(&bh_thread_ids, 1, __ATOMIC_RELAXED);
    return aio_tls_thread_id;
}

/*
 * The calling thread polls ctx but was not its home thread.  Become it,
 * then wait until the previous home thread has finished an append that
 * it may have begun before it could see the change: the two sides are a
 * Dekker pair (home_thread here, home_busy in bh_schedule_home_outside).
 */
/*
 * The fence of that Dekker pair can be asymmetric: with membarrier(2) the
 * taking thread makes every other thread of the process execute a full
 * barrier, so the home thread's side needs none (the common side: every
 * schedule from outside aio_poll()).  Decided once, before the first
 * context exists; without membarrier (old kernel, seccomp) both sides
 * fence.  ThreadSanitizer cannot see membarrier's ordering: its builds
 * always fence.
 */
#if defined(__SANITIZE_THREAD__)
#define BH_TRY_MEMBARRIER 0
#else
#define BH_TRY_MEMBARRIER 1
#endif

static bool bh_asym_fence;

static void bh_membarrier_register(void)
{
    if (BH_TRY_MEMBARRIER &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                0) == 0) {
        bh_asym_fence = true;
    }
}

void aio_bh_global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, bh_membarrier_register);
}

void aio_bh_take_home(AioContext *ctx)
{
    __atomic_store_n(&ctx->home_thread, aio_thread_id(), __ATOMIC_SEQ_CST);
    if (bh_asym_fence &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) < 0) {
        aio_fatal("membarrier failed after registration");
    }
    /* Seeing home_busy clear also acquires what that thread appended. */
    while (__atomic_load_n(&ctx->home_busy, __ATOMIC_SEQ_CST)) {
        sched_yield();
    }
}

/* Inside aio_poll(ctx): the home list is ours. */
static inline bool bh_is_home(AioContext *ctx)
{
    return aio_tls_polling_ctx == ctx;
}

static QEMUBH *bh_alloc(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                        const char *name, MemReentrancyGuard *guard)
{
    QEMUBH *bh = malloc(sizeof(*bh));

    if (!bh) {
        return NULL;
    }
    *bh = (QEMUBH){
        .ctx = ctx, .cb = cb, .opaque = opaque, .name = name, .guard = guard
    };
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

/* ---- scheduling ---- */

/* Append bh to the home FIFO unless it is on it (or in a slice) already. */
static void bh_home_link(AioContext *ctx, QEMUBH *bh)
{
    if (bh->home_linked) {
        return;
    }
    bh->home_linked = true;
    bh->home_next = NULL;
    *ctx->home_tailp = bh;
    ctx->home_tailp = &bh->home_next;
}

/* Schedule from inside ctx's aio_poll(): plain stores only. */
static void bh_schedule_home(QEMUBH *bh, bool idle)
{
    AioContext *ctx = bh->ctx;
    unsigned flags = aio_load(&bh->flags);

    /* Already requested remotely, as strongly: nothing more to do. */
    if ((flags & BH_SCHEDULED) && (idle || !(flags & BH_IDLE))) {
        return;
    }
    bh->home_idle = bh->home_sched ? bh->home_idle && idle : idle;
    bh->home_sched = true;
    bh->home_cancels = aio_load(&bh->cancels);
    bh_home_link(ctx, bh);
    /* aio_prepare() may have announced a sleep in a foreign loop. */
    if (aio_load(&ctx->notify_me)) {
        aio_notify(ctx);
    }
}

/* Push bh onto the remote LIFO; true if it was empty. */
static void bh_push_remote(AioContext *ctx, QEMUBH *bh)
{
    QEMUBH *head = aio_load(&ctx->bh_list);

    do {
        bh->next = head;
    } while (!__atomic_compare_exchange_n(&ctx->bh_list, &head, bh, true,
                                          __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
}

/*
 * Set flags, link bh unless it is linked already, wake the loop if it may
 * sleep.  The push and the read of notify_me are both sequentially
 * consistent: announce_sleep() in poll.c adds to notify_me and then looks
 * at the remote list, so one of the two sides sees the other.
 */
static void bh_enqueue_remote(QEMUBH *bh, unsigned new_flags)
{
    AioContext *ctx = bh->ctx;
    /*
     * From another thread, the BH may run and its context be freed before
     * the wake-up below is done with it: ctx_free() waits for enqueuers.
     */
    bool foreign = aio_tls_current_ctx != ctx;
    unsigned old;

    if (foreign) {
        __atomic_fetch_add(&ctx->enqueuers, 1, __ATOMIC_SEQ_CST);
    }
    old =
        __atomic_fetch_or(&bh->flags, BH_PENDING | new_flags, __ATOMIC_ACQ_REL);
    if (old & BH_PENDING) {
        /* Linked already, maybe cancelled since: the loop must look again. */
        aio_notify(ctx);
    } else {
        bh_push_remote(ctx, bh);
        /* For busy-polling loops, which watch the flag rather than sleep. */
        aio_store_release(&ctx->notified, true);
        if (__atomic_load_n(&ctx->notify_me, __ATOMIC_SEQ_CST)) {
            event_notifier_set(&ctx->notifier);
        }
    }
    if (foreign) {
        __atomic_fetch_sub(&ctx->enqueuers, 1, __ATOMIC_RELEASE);
    }
}

/*
 * May the calling thread touch ctx's home list and the home fields of its
 * BHs?  Inside aio_poll(ctx), yes.  In the home thread outside aio_poll(),
 * yes, between this call and bh_home_end(), bracketed by home_busy so that
 * a thread taking the home over waits for it (*bracketed is set).
 */
static bool bh_home_begin(AioContext *ctx, bool *bracketed)
{
    uint64_t me = aio_tls_thread_id;

    *bracketed = false;
    if (bh_is_home(ctx)) {
        return true;
    }
    if (!me || aio_load(&ctx->home_thread) != me) {
        return false;
    }
    if (bh_asym_fence) {
        /* aio_bh_take_home()'s membarrier is the fence for this store. */
        aio_store(&ctx->home_busy, true);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    } else {
        __atomic_store_n(&ctx->home_busy, true, __ATOMIC_SEQ_CST);
    }
    if (__atomic_load_n(&ctx->home_thread, __ATOMIC_SEQ_CST) != me) {
        /* Taken over meanwhile: the new home thread may be reading. */
        __atomic_store_n(&ctx->home_busy, false, __ATOMIC_RELEASE);
        return false;
    }
    *bracketed = true;
    return true;
}

static void bh_home_end(AioContext *ctx, bool bracketed)
{
    if (bracketed) {
        __atomic_store_n(&ctx->home_busy, false, __ATOMIC_RELEASE);
    }
}

static void bh_schedule(QEMUBH *bh, bool idle)
{
    AioContext *ctx = bh->ctx;
    bool bracketed;

    if (bh_home_begin(ctx, &bracketed)) {
        bh_schedule_home(bh, idle);
        bh_home_end(ctx, bracketed);
        return;
    }
    bh_enqueue_remote(bh, BH_SCHEDULED | (idle ? BH_IDLE : 0));
}

/* ---- running ---- */

/* aio_bh_call(), called directly: no PLT hop from aio_bh_poll(). */
static inline void bh_call(QEMUBH *bh)
{
    MemReentrancyGuard *guard = bh->guard; /* cb may free bh */
    bool was_engaged = false;

    aio_stat_add(bh->ctx, bh_runs, 1);
    if (guard) {
        was_engaged = guard->engaged_in_io;
        guard->engaged_in_io = true;
    }
    bh->cb(bh->opaque);
    if (guard) {
        guard->engaged_in_io = was_engaged;
    }
}

/*
 * One-shot BHs that have run are kept for reuse, up to a bound, by the
 * thread that runs them; aio_bh_schedule_oneshot() from inside aio_poll()
 * (the same thread) takes them back without malloc.
 */
#define BH_ONESHOT_CACHE_MAX 64

static void bh_oneshot_recycle(AioContext *ctx, QEMUBH *bh)
{
    if (ctx->oneshot_cached >= BH_ONESHOT_CACHE_MAX) {
        free(bh);
        return;
    }
    bh->home_next = ctx->oneshot_cache;
    ctx->oneshot_cache = bh;
    ctx->oneshot_cached++;
}

static QEMUBH *bh_oneshot_reuse(AioContext *ctx)
{
    QEMUBH *bh = ctx->oneshot_cache;

    if (bh) {
        ctx->oneshot_cache = bh->home_next;
        ctx->oneshot_cached--;
    }
    return bh;
}

/* Run bh if asked (idle says how); recycle a one-shot BH afterwards. */
static int bh_run(QEMUBH *bh, unsigned flags, bool idle)
{
    if (flags & BH_ONESHOT) {
        AioContext *ctx = bh->ctx;

        bh_call(bh);
        bh_oneshot_recycle(ctx, bh);
        return !idle;
    }
    bh_call(bh);
    return !idle;
}

/*
 * Take the remote request too, if there is one, so that a BH scheduled
 * both ways runs once.  Returns the flags seen.
 */
static unsigned bh_take_remote_request(QEMUBH *bh, bool *run, bool *idle)
{
    unsigned flags = aio_load_acquire(&bh->flags);

    if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
        flags = __atomic_fetch_and(
            &bh->flags, ~(unsigned)(BH_SCHEDULED | BH_IDLE), __ATOMIC_ACQ_REL);
        if (flags & BH_SCHEDULED) {
            *idle = *run ? *idle && (flags & BH_IDLE) : (flags & BH_IDLE);
            *run = true;
        }
    }
    return flags;
}

/* A home request stands: made, and no other thread cancelled it since. */
static inline bool bh_home_requested(QEMUBH *bh)
{
    return bh->home_sched &&
           bh->home_cancels == __atomic_load_n(&bh->cancels, __ATOMIC_ACQUIRE);
}

/* One entry of a slice's home part. */
static inline __attribute__((always_inline)) int bh_pop_home(BHSlice *s)
{
    QEMUBH *bh = s->home;
    bool run, idle = bh->home_idle;
    unsigned flags;

    s->home = bh->home_next;
    bh->home_linked = false;
    run = bh_home_requested(bh);
    bh->home_sched = false;
    flags = bh_take_remote_request(bh, &run, &idle);
    if (flags & BH_DELETED) {
        /* The remote entry, if any, frees it. */
        if (!(flags & BH_PENDING)) {
            bh_free(bh);
        }
        return 0;
    }
    return run ? bh_run(bh, flags, idle) : 0;
}

/* One entry of a slice's remote part. */
static int bh_pop_remote(BHSlice *s)
{
    QEMUBH *bh = s->remote;
    unsigned flags;
    bool run, idle;

    /* Read next before clearing PENDING: a re-schedule rewrites it. */
    s->remote = bh->next;
    flags = __atomic_fetch_and(&bh->flags,
                               ~(unsigned)(BH_PENDING | BH_SCHEDULED | BH_IDLE),
                               __ATOMIC_ACQ_REL);
    if (flags & BH_DELETED) {
        /* The home entry, if any, frees it. */
        if (!bh->home_linked) {
            bh_free(bh);
        }
        return 0;
    }
    run = flags & BH_SCHEDULED;
    idle = flags & BH_IDLE;
    if (bh_home_requested(bh)) {
        idle = run ? idle && bh->home_idle : bh->home_idle;
        run = true;
    }
    bh->home_sched = false; /* a home entry still linked finds nothing */
    return run ? bh_run(bh, flags, idle) : 0;
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

/* Move both lists into slice, home entries first. */
static void bh_take_lists(AioContext *ctx, BHSlice *slice)
{
    slice->home = ctx->home_head;
    ctx->home_head = NULL;
    ctx->home_tailp = &ctx->home_head;
    slice->remote = NULL;
    if (aio_load(&ctx->bh_list)) {
        slice->remote = bh_list_reverse(
            __atomic_exchange_n(&ctx->bh_list, NULL, __ATOMIC_ACQUIRE));
    }
}

AIOCTX_API int aio_bh_poll(AioContext *ctx)
{
    BHSlice slice = { .next = NULL };
    BHSlice *s;
    int ret = 0;

    /*
     * Nothing scheduled and no outer call to finish: skip the locked
     * exchange.  The acquire load pairs with the remote push just as the
     * exchange would; a later push is seen on the next call.
     */
    if (!ctx->slice_head && !aio_load_acquire(&ctx->bh_list)) {
        QEMUBH *bh = ctx->home_head;

        if (!bh) {
            return 0;
        }
        if (!bh->home_next) {
            /* One BH and no outer call: nothing for a nested call to finish. */
            slice.home = bh;
            ctx->home_head = NULL;
            ctx->home_tailp = &ctx->home_head;
            return bh_pop_home(&slice);
        }
    }
    bh_take_lists(ctx, &slice);
    *ctx->slice_tailp = &slice;
    ctx->slice_tailp = &slice.next;

    /* A nested call may drain and unlink any slice, ours included. */
    while ((s = ctx->slice_head)) {
        while (s->home) {
            ret |= bh_pop_home(s);
        }
        while (s->remote) {
            ret |= bh_pop_remote(s);
        }
        if (ctx->slice_head == s && !s->home) {
            ctx->slice_head = s->next;
            if (!s->next) {
                ctx->slice_tailp = &ctx->slice_head;
            }
        }
    }
    return ret;
}

/* ---- life cycle ---- */

void aio_bh_init_ctx(AioContext *ctx)
{
    ctx->bh_list = NULL;
    ctx->home_head = NULL;
    ctx->home_tailp = &ctx->home_head;
    ctx->slice_head = NULL;
    ctx->slice_tailp = &ctx->slice_head;
    ctx->bh_all = NULL;
    ctx->oneshot_cache = NULL;
    ctx->oneshot_cached = 0;
    pthread_mutex_init(&ctx->bh_all_lock, NULL);
}

void aio_bh_destroy_ctx(AioContext *ctx)
{
    QEMUBH *bh = __atomic_exchange_n(&ctx->bh_list, NULL, __ATOMIC_ACQUIRE);

    /* One-shot BHs live only on one list; the rest are on bh_all. */
    while (bh) {
        QEMUBH *next = bh->next;

        if (aio_load(&bh->flags) & BH_ONESHOT) {
            free(bh);
        }
        bh = next;
    }
    for (bh = ctx->home_head; bh;) {
        QEMUBH *next = bh->home_next;

        if (aio_load(&bh->flags) & BH_ONESHOT) {
            free(bh);
        }
        bh = next;
    }
    ctx->home_head = NULL;
    while ((bh = bh_oneshot_reuse(ctx))) {
        free(bh);
    }
    while (ctx->bh_all) {
        bh = ctx->bh_all;
        bh_all_remove_locked(bh);
        free(bh);
    }
    pthread_mutex_destroy(&ctx->bh_all_lock);
}

/* ---- the public calls ---- */

AIOCTX_API QEMUBH *aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb,
                                   void *opaque, const char *name,
                                   MemReentrancyGuard *reentrancy_guard)
{
    QEMUBH *bh = bh_alloc(ctx, cb, opaque, name, reentrancy_guard);

    if (!bh) {
        /* QEMU's BH constructors cannot fail either. */
        aio_fatal("out of memory allocating bottom half %s",
                  name ? name : "(unnamed)");
    }
    bh_all_add(ctx, bh);
    return bh;
}

QEMUBH *aio_bh_try_new(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                       const char *name)
{
    QEMUBH *bh = bh_alloc(ctx, cb, opaque, name, NULL);

    if (bh) {
        bh_all_add(ctx, bh);
    }
    return bh;
}

AIOCTX_API void aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb,
                                             void *opaque, const char *name)
{
    QEMUBH *bh;

    if (bh_is_home(ctx) && (bh = bh_oneshot_reuse(ctx))) {
        *bh = (QEMUBH){ .ctx = ctx,
                        .cb = cb,
                        .opaque = opaque,
                        .name = name,
                        .flags = BH_ONESHOT };
        bh_schedule_home(bh, false);
        return;
    }
    bh = bh_alloc(ctx, cb, opaque, name, NULL);
    if (!bh) {
        aio_fatal("out of memory scheduling bottom half %s",
                  name ? name : "(unnamed)");
    }
    bh->flags = BH_ONESHOT;
    bh_schedule(bh, false);
}

AIOCTX_API void qemu_bh_schedule(QEMUBH *bh)
{
    bh_schedule(bh, false);
}

AIOCTX_API void qemu_bh_schedule_idle(QEMUBH *bh)
{
    bh_schedule(bh, true);
}

AIOCTX_API void qemu_bh_cancel(QEMUBH *bh)
{
    AioContext *ctx = bh->ctx;
    bool bracketed;

    if (bh_home_begin(ctx, &bracketed)) {
        bh->home_sched = false;
        bh_home_end(ctx, bracketed);
    } else {
        /* Home requests made before this call no longer run. */
        __atomic_fetch_add(&bh->cancels, 1, __ATOMIC_RELEASE);
    }
    /*
     * Acquire too: a caller that cancels and then looks for work must see
     * whatever a racing qemu_bh_schedule() published before it scheduled.
     */
    if (aio_load(&bh->flags) & BH_SCHEDULED) {
        __atomic_fetch_and(&bh->flags, ~(unsigned)BH_SCHEDULED,
                           __ATOMIC_ACQ_REL);
    }
}

AIOCTX_API void qemu_bh_delete(QEMUBH *bh)
{
    AioContext *ctx = bh->ctx;
    bool bracketed;

    if (!bh_home_begin(ctx, &bracketed)) {
        /*
         * A home request made before this no longer stands (as after
         * qemu_bh_cancel): aio_bh_timeout() must not count it.
         */
        __atomic_fetch_add(&bh->cancels, 1, __ATOMIC_RELEASE);
        bh_enqueue_remote(bh, BH_DELETED);
        return;
    }
    /* Mark it; whichever list entry is reached last frees it. */
    bh->home_sched = false;
    __atomic_fetch_or(&bh->flags, BH_DELETED, __ATOMIC_RELEASE);
    bh_home_link(ctx, bh);
    bh_home_end(ctx, bracketed);
}

AIOCTX_API void aio_bh_call(QEMUBH *bh)
{
    bh_call(bh);
}

/* ---- what the scheduled BHs ask of the timeout ---- */

/* Fold one request into *timeout; true when it asks for no wait at all. */
static bool bh_request_timeout(bool idle, int64_t *timeout)
{
    if (!idle) {
        *timeout = 0;
        return true;
    }
    *timeout = BH_IDLE_TIMEOUT_NS;
    return false;
}

static bool bh_remote_chain_timeout(QEMUBH *bh, int64_t *timeout)
{
    for (; bh; bh = aio_load(&bh->next)) {
        unsigned flags = aio_load(&bh->flags);

        if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED &&
            bh_request_timeout(flags & BH_IDLE, timeout)) {
            return true;
        }
    }
    return false;
}

static bool bh_home_chain_timeout(QEMUBH *bh, int64_t *timeout)
{
    for (; bh; bh = bh->home_next) {
        if (bh_home_requested(bh) &&
            bh_request_timeout(bh->home_idle, timeout)) {
            return true;
        }
    }
    return false;
}

int64_t aio_bh_timeout(AioContext *ctx)
{
    int64_t timeout = -1;

    /* The common case of a BH scheduled from inside the loop, at once. */
    if (ctx->home_head && !ctx->home_head->home_idle &&
        bh_home_requested(ctx->home_head)) {
        return 0;
    }
    if (bh_home_chain_timeout(ctx->home_head, &timeout) ||
        bh_remote_chain_timeout(aio_load_acquire(&ctx->bh_list), &timeout)) {
        return 0;
    }
    for (BHSlice *s = ctx->slice_head; s; s = s->next) {
        if (bh_home_chain_timeout(s->home, &timeout) ||
            bh_remote_chain_timeout(s->remote, &timeout)) {
            return 0;
        }
    }
    return timeout;
}

bool aio_bh_remote_pending(AioContext *ctx)
{
    return __atomic_load_n(&ctx->bh_list, __ATOMIC_SEQ_CST) != NULL;
}
