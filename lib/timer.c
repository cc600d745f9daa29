/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Timer lists: one per clock in each context's QEMUTimerListGroup.
 *
 * A list is a 4-ary min-heap of (deadline, arming sequence, timer) slots.
 * Deadline and sequence are cached in the slot, so sifting compares slots
 * without touching the timers; each timer records its slot, so moving or
 * deleting it is one sift from where it is.  The sequence number (per
 * list, bumped on every arm) breaks ties, which makes equal deadlines fire
 * in arming order; keeping it in the slot matters because ties are common
 * (deadlines computed from one "now" plus whole milliseconds).  The root
 * sits at index HEAP_ROOT = 3 and the children of slot k are 4k-8 .. 4k-5,
 * so in a 64-byte aligned array of 24-byte slots the four children of a
 * node span exactly two cache lines.  Sifts move a hole rather than swap
 * slots, so each moved slot is written once (and its timer's heap_index
 * once).  Firing takes the root out by walking the hole down along the
 * earliest children to a leaf and moving the last slot up from there: the
 * last slot nearly always belongs near the bottom, so the way down needs
 * no compare against it.
 *
 * Memory: the array doubles when full and never shrinks.  Small arrays
 * are aligned heap blocks; from HEAP_MAP_BYTES on it is a private mapping
 * grown by mremap() (no copy, no second fault on pages already in use),
 * and the part that growth adds is faulted in with one madvise() call,
 * with huge pages from HEAP_HUGE_BYTES on.  On a virtual machine a page
 * fault costs microseconds, so faulting page by page used to dominate the
 * first arming of a large list.
 *
 * Locking: a small spinlock per list guards the heap and the timers'
 * expire_time/heap_index fields: critical sections are a few dozen
 * instructions and never block (except for the rare growth of the heap
 * array), so an uncontended arm costs one atomic exchange, whose latency
 * hides behind the cache miss on the timer itself.  Callbacks run with the
 * lock dropped.
 * head_expire mirrors the root's deadline for lock-free readers (the
 * timeout computation); it is exact whenever the lock is free.
 *
 * Waking a sleeping loop: when an arm makes the list's earliest deadline
 * earlier, the context is notified unless the caller is the thread that
 * last computed the context's timeout (the "poller"), which cannot be
 * asleep while it arms a timer.  The poller publishes itself before it
 * reads head_expire and the armer publishes head_expire before it reads
 * the poller, both sequentially consistent, so at least one of them sees
 * the other: either the poller sees the new deadline or the armer sees a
 * different poller and notifies.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aio-internal.h"
#include "log-internal.h"
#include "timer-internal.h"

#define HEAP_ROOT 3u
#define HEAP_MIN_SLOTS 64u
#define HEAP_EMPTY INT64_MAX /* head_expire of an empty list */
#define LOCK_SPINS 64
#define HEAP_MAP_BYTES (16u << 10) /* from this size on: a mapping */
#define HEAP_HUGE_BYTES (2u << 20) /* from this size on: huge pages */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL */
#endif

typedef struct TimerHeapSlot {
    int64_t expire;
    uint64_t seq; /* arming order: breaks ties without touching the timer */
    QEMUTimer *ts;
} TimerHeapSlot;

struct QEMUTimerList {
    int lock; /* spinlock: 0 free, 1 held */
    QEMUClockType type;
    int64_t head_expire; /* atomic; HEAP_EMPTY when empty */
    TimerHeapSlot *heap; /* 64-byte aligned; slots [HEAP_ROOT, end) used */
    uint32_t end;
    uint32_t cap;
    uint64_t seq; /* arming counter */
    QEMUTimerListGroup *tlg;
} __attribute__((aligned(64)));

struct QEMUTimerListGroup {
    QEMUTimerList tl[QEMU_CLOCK_MAX];
    AioContext *ctx;
    /*
     * Bit 1 << type set while that list holds a timer (atomic): a loop
     * iteration with no timer armed reads one word, not four lists.
     */
    unsigned nonempty;
    const void *poller; /* atomic: token of the thread that may sleep */
    /* Every group, for clock changes (registry_lock). */
    QEMUTimerListGroup *next;
    QEMUTimerListGroup **pprev;
};

/*
 * Its address identifies the calling thread.  initial-exec: one load, and
 * no __tls_get_addr (which would make the library need ld.so by name).
 */
static __thread char thread_token __attribute__((tls_model("initial-exec")));

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(QEMUTimer) == 48 && _Alignof(QEMUTimer) == 8,
               "QEMUTimer's size and alignment are ABI");
#endif

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static QEMUTimerListGroup *registry;

static void __attribute__((noreturn)) timer_die(const char *what)
{
    aio_fatal("%s", what);
}

/* ---- the list lock ---- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void __attribute__((noinline)) tl_lock_slow(QEMUTimerList *tl)
{
    unsigned spins = 0;

    do {
        while (__atomic_load_n(&tl->lock, __ATOMIC_RELAXED)) {
            if (++spins < LOCK_SPINS) {
                cpu_relax();
            } else {
                sched_yield();
            }
        }
    } while (__atomic_exchange_n(&tl->lock, 1, __ATOMIC_ACQUIRE));
}

static inline __attribute__((always_inline)) void tl_lock(QEMUTimerList *tl)
{
    if (__builtin_expect(__atomic_exchange_n(&tl->lock, 1, __ATOMIC_ACQUIRE),
                         0)) {
        tl_lock_slow(tl);
    }
}

static inline __attribute__((always_inline)) void tl_unlock(QEMUTimerList *tl)
{
    __atomic_store_n(&tl->lock, 0, __ATOMIC_RELEASE);
}

/* ---- the heap (list lock held) ---- */

#define HOT static inline __attribute__((always_inline))

HOT uint32_t heap_parent(uint32_t k)
{
    return (k >> 2) + 2;
}

HOT uint32_t heap_first_child(uint32_t k)
{
    return (k << 2) - 8;
}

/* Deadline order; the arming sequence breaks ties. */
HOT bool slot_before(const TimerHeapSlot *a, const TimerHeapSlot *b)
{
    if (a->expire != b->expire) {
        return a->expire < b->expire;
    }
    return a->seq < b->seq;
}

HOT void heap_put(TimerHeapSlot *h, uint32_t k, TimerHeapSlot s)
{
    h[k] = s;
    s.ts->heap_index = k;
}

/* Move the hole at k up while s belongs above it, then fill it with s. */
HOT void heap_up(TimerHeapSlot *h, uint32_t k, TimerHeapSlot s)
{
    while (k > HEAP_ROOT) {
        uint32_t p = heap_parent(k);

        if (!slot_before(&s, &h[p])) {
            break;
        }
        heap_put(h, k, h[p]);
        k = p;
    }
    heap_put(h, k, s);
}

/*
 * The earliest of the children of a node, the first being c (< end): a
 * tournament of pairs, so the two first compares do not wait on each other.
 */
HOT uint32_t heap_min_child(const TimerHeapSlot *h, uint32_t c, uint32_t end)
{
    uint32_t best = c;

    if (__builtin_expect(c + 3 < end, 1)) {
        uint32_t x = slot_before(&h[c + 1], &h[c]) ? c + 1 : c;
        uint32_t y = slot_before(&h[c + 3], &h[c + 2]) ? c + 3 : c + 2;

        return slot_before(&h[y], &h[x]) ? y : x;
    }
    for (uint32_t i = c + 1; i < end; i++) {
        best = slot_before(&h[i], &h[best]) ? i : best;
    }
    return best;
}

/* Move the hole at k down while a child belongs above s, then fill it. */
HOT void heap_down(TimerHeapSlot *h, uint32_t end, uint32_t k, TimerHeapSlot s)
{
    for (;;) {
        uint32_t c = heap_first_child(k);

        if (c >= end) {
            break;
        }
        c = heap_min_child(h, c, end);
        if (!slot_before(&h[c], &s)) {
            break;
        }
        heap_put(h, k, h[c]);
        k = c;
    }
    heap_put(h, k, s);
}

/* Fill the hole at k (< end) with s, moving it up or down as needed. */
HOT void heap_place(TimerHeapSlot *h, uint32_t end, uint32_t k, TimerHeapSlot s)
{
    uint32_t p = heap_parent(k);

    if (k > HEAP_ROOT && slot_before(&s, &h[p])) {
        heap_put(h, k, h[p]);
        heap_up(h, p, s);
    } else {
        heap_down(h, end, k, s);
    }
}

/*
 * Fill the hole at the root with s, which comes from the bottom: walk the
 * hole down along the earliest children to a leaf, then move s up from
 * there.  s (the old last slot) nearly always belongs near the bottom, so
 * this saves the compare against s on the way down.
 */
HOT void heap_pop_fill(TimerHeapSlot *h, uint32_t end, TimerHeapSlot s)
{
    uint32_t k = HEAP_ROOT;

    for (;;) {
        uint32_t c = heap_first_child(k);

        if (c >= end) {
            break;
        }
        c = heap_min_child(h, c, end);
        heap_put(h, k, h[c]);
        k = c;
    }
    heap_up(h, k, s);
}

/* Bytes of a heap array of cap slots; from HEAP_MAP_BYTES on it is mmap'ed. */
static size_t heap_bytes(uint32_t cap)
{
    return (size_t)cap * sizeof(TimerHeapSlot);
}

/*
 * Fault in the part of a mapping that a grown heap will fill, in one call
 * rather than one page fault per page (page faults are the main cost of
 * the first arms of a large list); large arrays ask for huge pages, which
 * also spares the sifts TLB misses.  Both are hints: errors are ignored.
 */
static void heap_populate(char *base, size_t from, size_t to)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    from &= ~(page - 1);
    if (to >= HEAP_HUGE_BYTES) {
        madvise(base, to, MADV_HUGEPAGE);
    }
    madvise(base + from, to - from, MADV_POPULATE_WRITE);
}

/*
 * A heap array of new_bytes holding the used bytes of old (old_bytes
 * long), or NULL.  Small arrays are aligned heap blocks; large ones are
 * mappings that mremap() grows without copying or touching their pages.
 */
static void *heap_realloc(void *old, size_t used, size_t old_bytes,
                          size_t new_bytes)
{
    void *mem;

    if (new_bytes < HEAP_MAP_BYTES) {
        if (posix_memalign(&mem, 64, new_bytes)) {
            return NULL;
        }
    } else if (old_bytes >= HEAP_MAP_BYTES) {
        mem = mremap(old, old_bytes, new_bytes, MREMAP_MAYMOVE);
        old = NULL; /* moved, nothing to copy or free */
    } else {
        mem = mmap(NULL, new_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (mem == MAP_FAILED) {
        return NULL;
    }
    if (old) {
        memcpy(mem, old, used);
        free(old);
    }
    if (new_bytes >= HEAP_MAP_BYTES) {
        heap_populate(mem, old_bytes, new_bytes);
    }
    return mem;
}

static void heap_release(TimerHeapSlot *heap, uint32_t cap)
{
    if (heap_bytes(cap) >= HEAP_MAP_BYTES) {
        munmap(heap, heap_bytes(cap));
    } else {
        free(heap);
    }
}

static void __attribute__((noinline)) heap_grow(QEMUTimerList *tl)
{
    uint32_t cap = tl->cap ? tl->cap * 2 : HEAP_MIN_SLOTS;
    void *mem = NULL;

    if (cap > tl->cap && cap <= UINT32_MAX / 2) {
        mem = heap_realloc(tl->heap, heap_bytes(tl->end), heap_bytes(tl->cap),
                           heap_bytes(cap));
    }
    if (!mem) {
        timer_die("out of memory growing a timer list");
    }
    tl->heap = mem;
    tl->cap = cap;
}

/*
 * head_expire after a change under the lock: returns true when the earliest
 * deadline became earlier, which only an arm can do (by making its timer
 * the root), and publishes it sequentially consistent then, as half of the
 * Dekker pair with group_claim_poller().
 */
HOT bool publish_head(QEMUTimerList *tl, int64_t old_head)
{
    int64_t head =
        tl->end > HEAP_ROOT ? tl->heap[HEAP_ROOT].expire : HEAP_EMPTY;

    if (__builtin_expect(head == old_head, 1)) {
        return false;
    }
    if (head < old_head) {
        __atomic_store_n(&tl->head_expire, head, __ATOMIC_SEQ_CST);
        if (old_head == HEAP_EMPTY) {
            __atomic_fetch_or(&tl->tlg->nonempty, 1u << tl->type,
                              __ATOMIC_RELEASE);
        }
        return true;
    }
    __atomic_store_n(&tl->head_expire, head, __ATOMIC_RELEASE);
    if (head == HEAP_EMPTY) {
        __atomic_fetch_and(&tl->tlg->nonempty, ~(1u << tl->type),
                           __ATOMIC_RELEASE);
    }
    return false;
}

/* Unlink the timer in slot k and close the hole with the last slot. */
HOT void heap_remove(QEMUTimerList *tl, uint32_t k)
{
    TimerHeapSlot *h = tl->heap;
    uint32_t last = --tl->end;

    h[k].ts->heap_index = 0;
    if (k == last) {
        return;
    }
    if (k == HEAP_ROOT) {
        heap_pop_fill(h, last, h[last]);
    } else {
        heap_place(h, last, k, h[last]);
    }
}

/*
 * Arm or move ts to expire (ns, >= 0).  Returns true when this made the
 * list's earliest deadline earlier.  head_expire is exact while the lock
 * is held, so it serves as the old head without touching the heap.
 */
HOT bool list_arm_locked(QEMUTimerList *tl, QEMUTimer *ts, int64_t expire)
{
    int64_t old_head = __atomic_load_n(&tl->head_expire, __ATOMIC_RELAXED);
    TimerHeapSlot s = { expire, ++tl->seq, ts };
    uint32_t k = ts->heap_index;

    if (!k) {
        if (__builtin_expect(tl->end >= tl->cap, 0)) {
            heap_grow(tl);
        }
        k = tl->end++;
    }
    __atomic_store_n(&ts->expire_time, expire, __ATOMIC_RELAXED);
    heap_place(tl->heap, tl->end, k, s);
    return publish_head(tl, old_head);
}

static void list_del_locked(QEMUTimerList *tl, QEMUTimer *ts)
{
    int64_t old_head = __atomic_load_n(&tl->head_expire, __ATOMIC_RELAXED);

    if (ts->heap_index) {
        heap_remove(tl, ts->heap_index);
        __atomic_store_n(&ts->expire_time, -1, __ATOMIC_RELAXED);
        publish_head(tl, old_head);
    }
}

/* ---- groups ---- */

QEMUTimerListGroup *aio_timers_new(AioContext *ctx)
{
    QEMUTimerListGroup *tlg;

    if (posix_memalign((void **)&tlg, 64, sizeof(*tlg))) {
        return NULL;
    }
    memset(tlg, 0, sizeof(*tlg));
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        QEMUTimerList *tl = &tlg->tl[type];

        tl->type = type;
        tl->end = HEAP_ROOT;
        tl->head_expire = HEAP_EMPTY;
        tl->tlg = tlg;
    }
    tlg->ctx = ctx;
    /* The creating thread is the likely poller. */
    tlg->poller = &thread_token;

    pthread_mutex_lock(&registry_lock);
    tlg->next = registry;
    if (registry) {
        registry->pprev = &tlg->next;
    }
    tlg->pprev = &registry;
    registry = tlg;
    pthread_mutex_unlock(&registry_lock);
    return tlg;
}

void aio_timers_free(QEMUTimerListGroup *tlg)
{
    if (!tlg) {
        return;
    }
    pthread_mutex_lock(&registry_lock);
    *tlg->pprev = tlg->next;
    if (tlg->next) {
        tlg->next->pprev = tlg->pprev;
    }
    pthread_mutex_unlock(&registry_lock);

    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        QEMUTimerList *tl = &tlg->tl[type];

        tl_lock(tl);
        for (uint32_t k = HEAP_ROOT; k < tl->end; k++) {
            QEMUTimer *ts = tl->heap[k].ts;

            ts->heap_index = 0;
            ts->timer_list = NULL;
            __atomic_store_n(&ts->expire_time, -1, __ATOMIC_RELAXED);
        }
        tl->end = HEAP_ROOT;
        tl_unlock(tl);
        heap_release(tl->heap, tl->cap);
    }
    free(tlg);
}

void aio_timers_wake_all(void)
{
    pthread_mutex_lock(&registry_lock);
    for (QEMUTimerListGroup *tlg = registry; tlg; tlg = tlg->next) {
        aio_notify(tlg->ctx);
    }
    pthread_mutex_unlock(&registry_lock);
}

/* The calling thread is about to compute a timeout and maybe sleep. */
static inline void group_claim_poller(QEMUTimerListGroup *tlg)
{
    if (__atomic_load_n(&tlg->poller, __ATOMIC_RELAXED) != &thread_token) {
        __atomic_store_n(&tlg->poller, &thread_token, __ATOMIC_SEQ_CST);
    }
}

/* After an arm made a list's deadline earlier. */
static void group_wake(QEMUTimerListGroup *tlg)
{
    if (__atomic_load_n(&tlg->poller, __ATOMIC_SEQ_CST) != &thread_token) {
        aio_notify(tlg->ctx);
    }
}

static inline int64_t soonest(int64_t a, int64_t b)
{
    return (uint64_t)a < (uint64_t)b ? a : b;
}

int64_t aio_timers_deadline_ns(QEMUTimerListGroup *tlg)
{
    int64_t best = -1;

    group_claim_poller(tlg);
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        int64_t head =
            __atomic_load_n(&tlg->tl[type].head_expire, __ATOMIC_SEQ_CST);
        AioClockState st;
        int64_t now;

        if (head == HEAP_EMPTY) {
            continue;
        }
        now = aio_clock_read(type, &st);
        if (st == AIO_CLOCK_OFF) {
            continue;
        }
        if (head <= now) {
            return 0;
        }
        if (st == AIO_CLOCK_RUNNING) {
            best = soonest(best, head - now);
        }
        /* A frozen clock only moves by an advance, which notifies. */
    }
    return best;
}

/* Run the due timers of one list; now is read once.  Returns how many. */
static unsigned list_run(QEMUTimerList *tl)
{
    AioClockState st;
    int64_t now;
    unsigned fired = 0;

    if (__atomic_load_n(&tl->head_expire, __ATOMIC_ACQUIRE) == HEAP_EMPTY) {
        return 0;
    }
    now = aio_clock_read(tl->type, &st);
    if (st == AIO_CLOCK_OFF) {
        return 0;
    }
    tl_lock(tl);
    while (tl->end > HEAP_ROOT && tl->heap[HEAP_ROOT].expire <= now) {
        int64_t old_head = __atomic_load_n(&tl->head_expire, __ATOMIC_RELAXED);
        QEMUTimer *ts = tl->heap[HEAP_ROOT].ts;
        QEMUTimerCB *cb = ts->cb;
        void *opaque = ts->opaque;

        heap_remove(tl, HEAP_ROOT);
        __atomic_store_n(&ts->expire_time, -1, __ATOMIC_RELAXED);
        publish_head(tl, old_head);
        tl_unlock(tl);
        /* ts may be re-armed, deleted or freed from here on. */
        cb(opaque);
        fired++;
        tl_lock(tl);
    }
    tl_unlock(tl);
    return fired;
}

unsigned aio_timers_run(QEMUTimerListGroup *tlg)
{
    /*
     * A timer armed by another thread that this load misses is seen by the
     * next iteration: its arming notified the loop, and
     * aio_timers_deadline_ns() reads the lists themselves.
     */
    unsigned nonempty = __atomic_load_n(&tlg->nonempty, __ATOMIC_ACQUIRE);
    unsigned fired = 0;

    while (nonempty) {
        int type = __builtin_ctz(nonempty);

        nonempty &= nonempty - 1;
        fired += list_run(&tlg->tl[type]);
    }
    return fired;
}

AIOCTX_API QEMUTimerListGroup *aio_get_timer_list_group(AioContext *ctx)
{
    return ctx ? ctx->tlg : NULL;
}

/* ---- timers ---- */

static const char *timer_args_error(QEMUTimerListGroup *tlg, QEMUClockType type,
                                    int scale, QEMUTimerCB *cb)
{
    if ((unsigned)type >= QEMU_CLOCK_MAX) {
        return "timer: unknown clock type";
    }
    if (scale <= 0) {
        return "timer: scale must be positive";
    }
    if (!cb) {
        return "timer: no callback given";
    }
    if (!tlg) {
        return "timer: no timer list group and no current AioContext";
    }
    return NULL;
}

static QEMUTimerListGroup *group_or_current(QEMUTimerListGroup *tlg)
{
    return tlg ? tlg : aio_get_timer_list_group(qemu_get_current_aio_context());
}

static void timer_setup(QEMUTimer *ts, QEMUTimerListGroup *tlg,
                        QEMUClockType type, int scale, int attributes,
                        QEMUTimerCB *cb, void *opaque)
{
    *ts = (QEMUTimer){
        .expire_time = -1,
        .timer_list = &tlg->tl[type],
        .cb = cb,
        .opaque = opaque,
        .scale = scale,
        .attributes = attributes,
    };
}

AIOCTX_API void timer_init_full(QEMUTimer *ts, QEMUTimerListGroup *tlg,
                                QEMUClockType type, int scale, int attributes,
                                QEMUTimerCB *cb, void *opaque)
{
    const char *err;

    tlg = group_or_current(tlg);
    err = ts ? timer_args_error(tlg, type, scale, cb) : "timer: NULL timer";
    if (err) {
        timer_die(err);
    }
    timer_setup(ts, tlg, type, scale, attributes, cb, opaque);
}

AIOCTX_API QEMUTimer *timer_new_full(QEMUTimerListGroup *tlg,
                                     QEMUClockType type, int scale,
                                     int attributes, QEMUTimerCB *cb,
                                     void *opaque)
{
    QEMUTimer *ts;

    tlg = group_or_current(tlg);
    if (timer_args_error(tlg, type, scale, cb)) {
        return NULL;
    }
    ts = malloc(sizeof(*ts));
    if (!ts) {
        timer_die("out of memory allocating a timer");
    }
    timer_setup(ts, tlg, type, scale, attributes, cb, opaque);
    return ts;
}

AIOCTX_API QEMUTimer *aio_timer_new_with_attrs(AioContext *ctx,
                                               QEMUClockType type, int scale,
                                               int attributes, QEMUTimerCB *cb,
                                               void *opaque)
{
    if (!ctx) {
        return NULL;
    }
    return timer_new_full(ctx->tlg, type, scale, attributes, cb, opaque);
}

AIOCTX_API QEMUTimer *aio_timer_new(AioContext *ctx, QEMUClockType type,
                                    int scale, QEMUTimerCB *cb, void *opaque)
{
    return aio_timer_new_with_attrs(ctx, type, scale, 0, cb, opaque);
}

AIOCTX_API void aio_timer_init_with_attrs(AioContext *ctx, QEMUTimer *ts,
                                          QEMUClockType type, int scale,
                                          int attributes, QEMUTimerCB *cb,
                                          void *opaque)
{
    if (!ctx) {
        timer_die("aio_timer_init: no context given");
    }
    timer_init_full(ts, ctx->tlg, type, scale, attributes, cb, opaque);
}

AIOCTX_API void aio_timer_init(AioContext *ctx, QEMUTimer *ts,
                               QEMUClockType type, int scale, QEMUTimerCB *cb,
                               void *opaque)
{
    aio_timer_init_with_attrs(ctx, ts, type, scale, 0, cb, opaque);
}

HOT QEMUTimerList *timer_list_or_die(QEMUTimer *ts)
{
    if (__builtin_expect(!ts || !ts->timer_list, 0)) {
        timer_die("timer_mod: timer not initialised, or its context is gone");
    }
    return ts->timer_list;
}

/* value * scale, saturated to the int64_t range. */
static int64_t scale_sat(int64_t value, int scale)
{
    int64_t ns;

    if (__builtin_mul_overflow(value, (int64_t)scale, &ns)) {
        return value > 0 ? INT64_MAX : INT64_MIN;
    }
    return ns;
}

HOT void timer_arm(QEMUTimer *ts, int64_t expire_ns, bool anticipate)
{
    QEMUTimerList *tl = timer_list_or_die(ts);
    bool earlier = false;

    if (__builtin_expect(expire_ns < 0, 0)) {
        expire_ns = 0;
    }
    tl_lock(tl);
    if (!anticipate || !ts->heap_index || expire_ns < ts->expire_time) {
        earlier = list_arm_locked(tl, ts, expire_ns);
    }
    tl_unlock(tl);
    if (__builtin_expect(earlier, 0)) {
        group_wake(tl->tlg);
    }
}

AIOCTX_API void timer_mod_ns(QEMUTimer *ts, int64_t expire_time)
{
    timer_arm(ts, expire_time, false);
}

AIOCTX_API void timer_mod(QEMUTimer *ts, int64_t expire_time)
{
    timer_list_or_die(ts);
    timer_arm(ts, scale_sat(expire_time, ts->scale), false);
}

AIOCTX_API void timer_mod_anticipate_ns(QEMUTimer *ts, int64_t expire_time)
{
    timer_arm(ts, expire_time, true);
}

AIOCTX_API void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time)
{
    timer_list_or_die(ts);
    timer_arm(ts, scale_sat(expire_time, ts->scale), true);
}

AIOCTX_API void timer_del(QEMUTimer *ts)
{
    QEMUTimerList *tl;

    /* Idle timers (also those of a destroyed context) need no lock. */
    if (!ts || __atomic_load_n(&ts->expire_time, __ATOMIC_ACQUIRE) < 0) {
        return;
    }
    tl = ts->timer_list;
    tl_lock(tl);
    list_del_locked(tl, ts);
    tl_unlock(tl);
}

AIOCTX_API void timer_deinit(QEMUTimer *ts)
{
    if (!ts) {
        return;
    }
    timer_del(ts);
    ts->timer_list = NULL;
}

AIOCTX_API void timer_free(QEMUTimer *ts)
{
    timer_del(ts);
    free(ts);
}

AIOCTX_API bool timer_pending(QEMUTimer *ts)
{
    return ts && __atomic_load_n(&ts->expire_time, __ATOMIC_ACQUIRE) >= 0;
}

AIOCTX_API bool timer_expired(QEMUTimer *ts, int64_t current_time)
{
    if (!ts) {
        return false;
    }
    return __atomic_load_n(&ts->expire_time, __ATOMIC_ACQUIRE) <=
           scale_sat(current_time, ts->scale);
}

AIOCTX_API int64_t timer_expire_time_ns(QEMUTimer *ts)
{
    return ts ? __atomic_load_n(&ts->expire_time, __ATOMIC_ACQUIRE) : -1;
}

AIOCTX_API int timer_get_attributes(QEMUTimer *ts)
{
    return ts ? ts->attributes : 0;
}
