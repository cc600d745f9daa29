/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coroutines: creation, the enter loop, yield, termination, stacks and
 * the pool.  The machine-level switch lives in coroutine-asm.c (+ the
 * coroutine-switch-<arch>.S files) or coroutine-ucontext.c.
 *
 * Per-thread state (current coroutine, the thread's "leader" that stands
 * for code outside any coroutine, the local pool) is reached through
 * co_thread(), a non-inlinable accessor: a coroutine may yield in one
 * thread and resume in another, so no thread-local address may be kept in
 * a register or stack slot across a switch.  co_thread_here() reads it in
 * line, only in functions where no switch follows the read, or where the
 * caller cannot change thread (the enter path).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aio-internal.h"
#include "log-internal.h"
#include "coroutine-internal.h"

#ifdef AIOCTX_CO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef AIOCTX_CO_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#ifdef AIOCTX_CO_VALGRIND
#include <valgrind/valgrind.h>
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define POOL_LOCAL_DEFAULT 64u
#define POOL_GLOBAL_DEFAULT 1024u
#define POOL_REFILL_BATCH 32u
#define STACK_SIZE_MAX ((size_t)1 << 30)

typedef struct CoThread {
    Coroutine *current; /* the running coroutine, or &leader */
    Coroutine leader;
    Coroutine *pool; /* finished coroutines, ready for reuse */
    unsigned pool_len;
#ifdef AIOCTX_CO_ASAN
    Coroutine *asan_from;     /* who is switching (read on arrival) */
    const void *leader_stack; /* the thread's own stack, learnt by ASan */
    size_t leader_stack_size;
#endif
} CoThread;

/*
 * Only a pointer lives in TLS; initial-exec keeps the access one load.
 * The state itself is allocated on a thread's first use.
 */
static __thread CoThread *co_thread_ptr
    __attribute__((tls_model("initial-exec")));

static size_t stack_size = AIOCTX_COROUTINE_STACK_SIZE_DEFAULT; /* atomic */
static unsigned pool_extra;                                     /* atomic */

/* The shared overflow pool. */
static pthread_mutex_t global_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static Coroutine *global_pool;
static unsigned global_pool_len;

static pthread_once_t co_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t co_key;

void co_die(const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    aio_fatal("%s", msg);
}

/* ---- per-thread state ---- */

static void co_thread_exit(void *opaque);

static void co_key_create(void)
{
    if (pthread_key_create(&co_key, co_thread_exit) != 0) {
        co_die("cannot create the coroutine thread key");
    }
}

static __attribute__((noinline)) CoThread *co_thread_setup(void)
{
    CoThread *t = calloc(1, sizeof(*t));

    if (!t) {
        co_die("out of memory allocating coroutine thread state");
    }
    t->current = &t->leader;
#ifdef AIOCTX_CO_TSAN
    t->leader.tsan_fiber = __tsan_get_current_fiber();
#endif
    pthread_once(&co_key_once, co_key_create);
    pthread_setspecific(co_key, t);
    co_thread_ptr = t;
    return t;
}

/*
 * The calling thread's state, read in line.  Only for functions in which
 * no switch can come between this read and the last use of what it
 * returned (entering, creating, the part of yield before the switch):
 * elsewhere the compiler could keep the thread's TLS address across a
 * switch after which the coroutine runs in another thread.
 */
static inline __attribute__((always_inline)) CoThread *co_thread_here(void)
{
    CoThread *t = co_thread_ptr;

    if (unlikely(!t)) {
        t = co_thread_setup();
    }
    return t;
}

/*
 * The calling thread's state, safe anywhere: noinline plus the empty asm
 * make every call really read the TLS slot of the thread it runs on.
 */
static __attribute__((noinline)) CoThread *co_thread(void)
{
    CoThread *t = co_thread_here();

    __asm__ volatile("" : "+r"(t));
    return t;
}

Coroutine *co_self(void)
{
    return co_thread()->current;
}

/* ---- sanitizer hooks ---- */

#ifdef AIOCTX_CO_ASAN
void co_asan_leave(Coroutine *from, Coroutine *to, bool terminating)
{
    CoThread *t = co_thread();
    const void *bottom = to->stack;
    size_t size = to->stack_size;

    if (to == &t->leader) {
        bottom = t->leader_stack;
        size = t->leader_stack_size;
    }
    t->asan_from = from;
    from->asan_fake = NULL;
    __sanitizer_start_switch_fiber(terminating ? NULL : &from->asan_fake,
                                   bottom, size);
}

void co_asan_arrive(Coroutine *self)
{
    CoThread *t = co_thread();
    const void *bottom;
    size_t size;

    __sanitizer_finish_switch_fiber(self ? self->asan_fake : NULL, &bottom,
                                    &size);
    if (t->asan_from == &t->leader && !t->leader_stack) {
        t->leader_stack = bottom;
        t->leader_stack_size = size;
    }
}
#else
void co_asan_leave(Coroutine *from, Coroutine *to, bool terminating)
{
    (void)from;
    (void)to;
    (void)terminating;
}

void co_asan_arrive(Coroutine *self)
{
    (void)self;
}
#endif

static inline void co_tsan_switch(Coroutine *to)
{
#ifdef AIOCTX_CO_TSAN
    if (!co_arch_switches_tsan_fiber) {
        __tsan_switch_to_fiber(to->tsan_fiber, 0);
    }
#else
    (void)to;
#endif
}

/* ---- the switch ---- */

_Static_assert(offsetof(Coroutine, arch) == 0,
               "the switch backends find the Coroutine from its CoArch");

/*
 * A switch from `from` (running in t's thread) to `to` is:
 * co_switch_begin(), co_arch_switch(&from->arch, &to->arch), and, once
 * something switches back to `from` (maybe in another thread),
 * co_switch_end(), which returns the action that party switched with.
 * They are inlined so that the machine switch is called straight from
 * the enter loop, the trampoline and (as a tail call) from yield: fewer
 * return addresses that the CPU mispredicts after the stack changes.
 */
static inline __attribute__((always_inline)) void
co_switch_begin(CoThread *t, Coroutine *from, Coroutine *to, CoAction action)
{
    t->current = to;
    to->resume_action = action;
    co_asan_leave(from, to, action == CO_ACTION_TERMINATE);
    co_tsan_switch(to);
}

static inline __attribute__((always_inline)) CoAction
co_switch_end(Coroutine *from)
{
    co_asan_arrive(from);
    return from->resume_action;
}

void co_trampoline(Coroutine *co)
{
    co_asan_arrive(NULL);
    for (;;) {
        Coroutine *caller;

        co->entry(co->entry_arg);
        co->entry = NULL;
        caller = co->caller;
        aio_store(&co->caller, NULL);
        /* Comes back only when the pool hands co out again. */
        co_switch_begin(co_thread(), co, caller, CO_ACTION_TERMINATE);
        co_arch_switch(&co->arch, &caller->arch);
        co_switch_end(co);
    }
}

/* ---- stacks ---- */

static size_t page_size(void)
{
    static size_t page; /* benign race: every thread computes the same */
    size_t p = aio_load(&page);

    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        aio_store(&page, p);
    }
    return p;
}

static int co_stack_map(Coroutine *co, size_t size)
{
    size_t page = page_size();
    void *map;

    size = (size + page - 1) & ~(page - 1);
    map = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        return -errno;
    }
    /* The lowest page is the guard: stacks grow down into it. */
    if (mprotect(map, page, PROT_NONE) < 0) {
        int err = errno;

        munmap(map, size + page);
        return -err;
    }
    co->map = map;
    co->map_size = size + page;
    co->stack = (char *)map + page;
    co->stack_size = size;
#ifdef AIOCTX_CO_VALGRIND
    co->valgrind_id =
        VALGRIND_STACK_REGISTER(co->stack, (char *)co->stack + size);
#endif
    return 0;
}

static void co_free(Coroutine *co)
{
#ifdef AIOCTX_CO_VALGRIND
    VALGRIND_STACK_DEREGISTER(co->valgrind_id);
#endif
#ifdef AIOCTX_CO_TSAN
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    munmap(co->map, co->map_size);
    free(co);
}

/* A brand new coroutine, suspended at the start of co_trampoline(). */
static Coroutine *co_new(CoThread *t, size_t size)
{
    Coroutine *co = calloc(1, sizeof(*co));
    int ret;

    if (!co) {
        co_die("out of memory allocating a coroutine");
    }
    ret = co_stack_map(co, size);
    if (ret < 0) {
        co_die("cannot map a %zu-byte coroutine stack: %s", size,
               strerror(-ret));
    }
#ifdef AIOCTX_CO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    co_arch_init(t->current, co);
    return co;
}

/* ---- the pool ---- */

static unsigned pool_local_max(void)
{
    return POOL_LOCAL_DEFAULT + aio_load(&pool_extra);
}

static unsigned pool_global_max(void)
{
    return POOL_GLOBAL_DEFAULT + aio_load(&pool_extra);
}

/* Move up to POOL_REFILL_BATCH coroutines from the shared pool to t's. */
static void pool_refill(CoThread *t)
{
    if (!aio_load(&global_pool)) {
        return;
    }
    pthread_mutex_lock(&global_pool_lock);
    while (global_pool && t->pool_len < POOL_REFILL_BATCH) {
        Coroutine *co = global_pool;

        global_pool = co->pool_next;
        global_pool_len--;
        co->pool_next = t->pool;
        t->pool = co;
        t->pool_len++;
    }
    aio_store(&global_pool, global_pool); /* publish for the racy peek */
    pthread_mutex_unlock(&global_pool_lock);
}

static void pool_put_global(Coroutine *co)
{
    pthread_mutex_lock(&global_pool_lock);
    if (global_pool_len < pool_global_max()) {
        co->pool_next = global_pool;
        aio_store(&global_pool, co);
        global_pool_len++;
        co = NULL;
    }
    pthread_mutex_unlock(&global_pool_lock);
    if (co) {
        co_free(co);
    }
}

static Coroutine *pool_get(CoThread *t, size_t size)
{
    for (;;) {
        Coroutine *co = t->pool;

        if (unlikely(!co)) {
            pool_refill(t);
            co = t->pool;
            if (!co) {
                return NULL;
            }
        }
        t->pool = co->pool_next;
        t->pool_len--;
        if (likely(co->stack_size == size)) {
            return co;
        }
        co_free(co); /* made before the stack size changed */
    }
}

static void pool_put(CoThread *t, Coroutine *co)
{
    if (likely(t->pool_len < pool_local_max())) {
        co->pool_next = t->pool;
        t->pool = co;
        t->pool_len++;
        return;
    }
    pool_put_global(co);
}

/* Thread exit: the thread's pool goes to the shared one (or is freed). */
static void co_thread_exit(void *opaque)
{
    CoThread *t = opaque;

    while (t->pool) {
        Coroutine *co = t->pool;

        t->pool = co->pool_next;
        pool_put_global(co);
    }
    co_thread_ptr = NULL;
    free(t);
}

AIOCTX_API int qemu_coroutine_set_stack_size(size_t size)
{
    if (size < AIOCTX_COROUTINE_STACK_SIZE_MIN || size > STACK_SIZE_MAX) {
        return -EINVAL;
    }
    size = (size + page_size() - 1) & ~(page_size() - 1);
    aio_store(&stack_size, size);
    return 0;
}

AIOCTX_API size_t qemu_coroutine_get_stack_size(void)
{
    return aio_load(&stack_size);
}

AIOCTX_API void qemu_coroutine_inc_pool_size(unsigned int n)
{
    __atomic_fetch_add(&pool_extra, n, __ATOMIC_RELAXED);
}

AIOCTX_API void qemu_coroutine_dec_pool_size(unsigned int n)
{
    __atomic_fetch_sub(&pool_extra, n, __ATOMIC_RELAXED);
}

/* ---- the API ---- */

AIOCTX_API Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque)
{
    CoThread *t = co_thread_here();
    size_t size = aio_load(&stack_size);
    Coroutine *co = pool_get(t, size);

    if (unlikely(!co)) {
        co = co_new(t, size);
    }
    co->entry = entry;
    co->entry_arg = opaque;
    co->wakeup_head = NULL;
    co->wakeup_tail = NULL;
    co->co_queue_next = NULL;
    return co;
}

/* Abort with a clear message if `to` may not be entered now. */
static inline void co_check_enter(Coroutine *to)
{
    const char *scheduled = aio_load_acquire(&to->scheduled);

    if (unlikely(scheduled)) {
        co_die("%s: coroutine %p entered while it is scheduled by %s",
               "qemu_coroutine_enter", (void *)to, scheduled);
    }
    if (unlikely(to->caller)) {
        co_die("%s: coroutine %p re-entered while it is running "
               "(already entered and not yielded)",
               "qemu_coroutine_enter", (void *)to);
    }
    if (unlikely(!to->entry)) {
        co_die("%s: coroutine %p has terminated (or is not a coroutine "
               "made by qemu_coroutine_create)",
               "qemu_coroutine_enter", (void *)to);
    }
}

/* `to` returned from its entry function: recycle it. */
static inline void co_terminated(CoThread *t, Coroutine *to)
{
    if (unlikely(to->locks_held)) {
        co_die("coroutine %p terminated while holding %u lock(s)", (void *)to,
               to->locks_held);
    }
    aio_store(&to->ctx, NULL);
    pool_put(t, to);
}

/*
 * Switch from self (running in t's thread) into `to`, as its caller.
 * Returns how `to` came back.  The caller of this stays blocked in this
 * thread until `to` yields or terminates, so t stays valid here.
 */
static inline __attribute__((always_inline)) CoAction
co_enter_one(CoThread *t, Coroutine *self, AioContext *ctx, Coroutine *to)
{
    co_check_enter(to);
    aio_store(&to->caller, self);
    /* Release: a waker reading co->ctx sees the coroutine's state. */
    aio_store_release(&to->ctx, ctx);
    co_switch_begin(t, self, to, CO_ACTION_ENTER);
    co_arch_switch(&self->arch, &to->arch);
    return co_switch_end(self);
}

/*
 * `to` came back with action: put what it woke in front of *pending,
 * then recycle it (terminated) or hand it to the context it moves to.
 */
static void co_after(CoThread *t, Coroutine *to, CoAction action,
                     Coroutine **pending)
{
    AioContext *resched;

    if (to->wakeup_head) {
        to->wakeup_tail->co_queue_next = *pending;
        *pending = to->wakeup_head;
        to->wakeup_head = NULL;
        to->wakeup_tail = NULL;
    }
    if (action == CO_ACTION_TERMINATE) {
        co_terminated(t, to);
        return;
    }
    resched = to->reschedule_ctx;
    if (resched) {
        /* It has switched out completely: now it may run elsewhere. */
        to->reschedule_ctx = NULL;
        aio_co_schedule(resched, to);
    }
}

/*
 * The general case: `first` came back with action and woke others, or
 * must be recycled or rescheduled.  Coroutines woken run depth-first,
 * each right after the one that woke it.
 */
static __attribute__((noinline)) void
co_enter_rest(AioContext *ctx, Coroutine *first, CoAction action)
{
    CoThread *t = co_thread();
    Coroutine *self = t->current;
    Coroutine *pending = NULL;

    co_after(t, first, action, &pending);
    while (pending) {
        Coroutine *to = pending;

        pending = to->co_queue_next;
        action = co_enter_one(t, self, ctx, to);
        co_after(t, to, action, &pending);
    }
}

/* Enter co; the common outcomes are handled without leaving this frame. */
static inline __attribute__((always_inline)) void co_enter(AioContext *ctx,
                                                           Coroutine *co)
{
    CoThread *t = co_thread_here();
    CoAction action = co_enter_one(t, t->current, ctx, co);

    if (likely(!co->wakeup_head)) {
        if (likely(action == CO_ACTION_YIELD && !co->reschedule_ctx)) {
            return;
        }
        if (action == CO_ACTION_TERMINATE) {
            co_terminated(t, co);
            return;
        }
    }
    co_enter_rest(ctx, co, action);
}

AIOCTX_API void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co)
{
    co_enter(ctx, co);
}

AIOCTX_API void qemu_coroutine_enter(Coroutine *co)
{
    co_enter(aio_tls_current_ctx, co);
}

AIOCTX_API void qemu_coroutine_enter_if_inactive(Coroutine *co)
{
    if (!qemu_coroutine_entered(co)) {
        qemu_coroutine_enter(co);
    }
}

AIOCTX_API void coroutine_fn qemu_coroutine_yield(void)
{
    CoThread *t = co_thread_here(); /* nothing uses it after the switch */
    Coroutine *self = t->current;
    Coroutine *to = self->caller;

    if (unlikely(!to)) {
        co_die("qemu_coroutine_yield called outside a coroutine");
    }
    aio_store(&self->caller, NULL);
    co_switch_begin(t, self, to, CO_ACTION_YIELD);
    /*
     * Without ASan nothing follows the switch, so the compiler makes it a
     * tail call: the resumed side returns straight to our caller.
     */
    co_arch_switch(&self->arch, &to->arch);
#ifdef AIOCTX_CO_ASAN
    co_switch_end(self);
#endif
}

AIOCTX_API Coroutine *qemu_coroutine_self(void)
{
    return co_thread()->current;
}

AIOCTX_API bool qemu_in_coroutine(void)
{
    return co_thread()->current->caller != NULL;
}

AIOCTX_API bool qemu_coroutine_entered(Coroutine *co)
{
    return aio_load(&co->caller) != NULL;
}

AIOCTX_API AioContext *qemu_coroutine_get_aio_context(Coroutine *co)
{
    return aio_load(&co->ctx);
}
