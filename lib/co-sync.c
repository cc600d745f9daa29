/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coroutine synchronization: CoMutex, CoQueue, CoRwlock.
 *
 * CoMutex keeps its waiters in a FIFO guarded by a tiny spinlock (held for
 * a few loads and stores, never across a yield).  A waiter checks the lock
 * and queues itself under that spinlock, and unlock pops under it, so no
 * wake-up can be lost.  Ownership passes directly to the first waiter
 * (`locked` stays 1), which is resumed with aio_co_wake() in its own
 * context.  That is safe even though the waiter queues itself before it
 * yields: a waiter of another context is resumed by its own thread, which
 * is busy running it until it yields; a waiter of the unlocker's context
 * is resumed after the unlocker yields.
 *
 * CoQueue is a plain FIFO linked through the coroutines.  CoRwlock queues
 * tickets (on the waiters' stacks) under an internal CoMutex and grants
 * them strictly in order, so a queued writer holds back later readers.
 */
#include <sched.h>
#include <stdlib.h>

#include "aio-internal.h"
#include "coroutine-internal.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Spin this long for a holder in another thread before queueing. */
#define MUTEX_SPIN_ITERATIONS 1000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    __asm__ volatile("" ::: "memory");
#endif
}

static void spin_lock(unsigned *spin)
{
    unsigned n = 0;

    while (__atomic_exchange_n(spin, 1, __ATOMIC_ACQUIRE)) {
        while (aio_load(spin)) {
            if (++n % 1024 == 0) {
                sched_yield(); /* the holder may have been preempted */
            } else {
                cpu_relax();
            }
        }
    }
}

static void spin_unlock(unsigned *spin)
{
    __atomic_store_n(spin, 0, __ATOMIC_RELEASE);
}

static Coroutine *need_coroutine(const char *what)
{
    Coroutine *self = qemu_coroutine_self();

    if (unlikely(!self->caller)) {
        co_die("%s called outside a coroutine", what);
    }
    return self;
}

/* ---- CoMutex ---- */

AIOCTX_API void qemu_co_mutex_init(CoMutex *mutex)
{
    *mutex = (CoMutex){ 0 };
}

static inline bool mutex_try(CoMutex *mutex)
{
    unsigned expected = 0;

    return __atomic_compare_exchange_n(&mutex->locked, &expected, 1, false,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* Spinning only helps against a holder running in another thread. */
static bool mutex_spin(CoMutex *mutex)
{
    AioContext *holder_ctx = aio_load(&mutex->ctx);

    if (!holder_ctx || holder_ctx == qemu_get_current_aio_context()) {
        return false;
    }
    for (int i = 0; i < MUTEX_SPIN_ITERATIONS; i++) {
        if (!aio_load(&mutex->locked)) {
            if (mutex_try(mutex)) {
                return true;
            }
        } else if (aio_load(&mutex->waiters_head)) {
            return false; /* queued waiters get it first anyway */
        }
        cpu_relax();
    }
    return false;
}

static void mutex_acquired(CoMutex *mutex, Coroutine *self)
{
    aio_store(&mutex->holder, self);
    aio_store(&mutex->ctx, qemu_get_current_aio_context());
    self->locks_held++;
}

AIOCTX_API void coroutine_fn qemu_co_mutex_lock(CoMutex *mutex)
{
    Coroutine *self = need_coroutine("qemu_co_mutex_lock");

    if (likely(mutex_try(mutex)) || mutex_spin(mutex)) {
        mutex_acquired(mutex, self);
        return;
    }
    spin_lock(&mutex->spin);
    if (mutex_try(mutex)) {
        spin_unlock(&mutex->spin);
        mutex_acquired(mutex, self);
        return;
    }
    self->co_queue_next = NULL;
    if (mutex->waiters_tail) {
        mutex->waiters_tail->co_queue_next = self;
    } else {
        aio_store(&mutex->waiters_head, self);
    }
    mutex->waiters_tail = self;
    spin_unlock(&mutex->spin);

    qemu_coroutine_yield();
    /* The unlocker handed the mutex over: `locked` is still 1 for us. */
    mutex_acquired(mutex, qemu_coroutine_self());
}

AIOCTX_API void coroutine_fn qemu_co_mutex_unlock(CoMutex *mutex)
{
    Coroutine *self = need_coroutine("qemu_co_mutex_unlock");
    Coroutine *next;

    if (unlikely(!aio_load(&mutex->locked) ||
                 aio_load(&mutex->holder) != self)) {
        co_die("qemu_co_mutex_unlock: CoMutex %p is not held by the "
               "calling coroutine %p", (void *)mutex, (void *)self);
    }
    self->locks_held--;
    aio_store(&mutex->holder, NULL);
    aio_store(&mutex->ctx, NULL);

    spin_lock(&mutex->spin);
    next = mutex->waiters_head;
    if (next) {
        aio_store(&mutex->waiters_head, next->co_queue_next);
        if (!next->co_queue_next) {
            mutex->waiters_tail = NULL;
        }
        next->co_queue_next = NULL;
    } else {
        __atomic_store_n(&mutex->locked, 0, __ATOMIC_RELEASE);
    }
    spin_unlock(&mutex->spin);

    if (next) {
        aio_co_wake(next);
    }
}

AIOCTX_API void qemu_co_mutex_assert_locked(CoMutex *mutex)
{
    Coroutine *self = qemu_coroutine_self();

    if (!aio_load(&mutex->locked) || aio_load(&mutex->holder) != self) {
        co_die("CoMutex %p is not held by the calling coroutine %p",
               (void *)mutex, (void *)self);
    }
}

/* ---- CoQueue ---- */

AIOCTX_API void qemu_co_queue_init(CoQueue *queue)
{
    queue->head = NULL;
    queue->tail = NULL;
}

static Coroutine *queue_pop(CoQueue *queue)
{
    Coroutine *co = queue->head;

    if (co) {
        queue->head = co->co_queue_next;
        if (!queue->head) {
            queue->tail = NULL;
        }
        co->co_queue_next = NULL;
    }
    return co;
}

AIOCTX_API void coroutine_fn qemu_co_queue_wait(CoQueue *queue, CoMutex *lock)
{
    Coroutine *self = need_coroutine("qemu_co_queue_wait");

    self->co_queue_next = NULL;
    if (queue->tail) {
        queue->tail->co_queue_next = self;
    } else {
        queue->head = self;
    }
    queue->tail = self;
    if (lock) {
        qemu_co_mutex_unlock(lock);
    }
    qemu_coroutine_yield();
    if (lock) {
        qemu_co_mutex_lock(lock);
    }
}

AIOCTX_API bool coroutine_fn qemu_co_queue_next(CoQueue *queue)
{
    Coroutine *co = queue_pop(queue);

    if (!co) {
        return false;
    }
    aio_co_wake(co);
    return true;
}

AIOCTX_API void coroutine_fn qemu_co_queue_restart_all(CoQueue *queue)
{
    while (qemu_co_queue_next(queue)) {
    }
}

AIOCTX_API bool qemu_co_enter_next(CoQueue *queue, CoMutex *lock)
{
    Coroutine *co = queue_pop(queue);

    if (!co) {
        return false;
    }
    if (lock) {
        qemu_co_mutex_unlock(lock);
    }
    aio_co_wake(co);
    if (lock) {
        qemu_co_mutex_lock(lock);
    }
    return true;
}

AIOCTX_API bool qemu_co_queue_empty(CoQueue *queue)
{
    return queue->head == NULL;
}

/* ---- CoRwlock ---- */

struct CoRwTicket {
    bool read;
    Coroutine *co;
    CoRwTicket *next;
};

AIOCTX_API void qemu_co_rwlock_init(CoRwlock *lock)
{
    *lock = (CoRwlock){ .owners = 0 };
    qemu_co_mutex_init(&lock->mutex);
}

static void rw_enqueue(CoRwlock *lock, CoRwTicket *tkt)
{
    tkt->next = NULL;
    if (lock->tickets_tail) {
        lock->tickets_tail->next = tkt;
    } else {
        lock->tickets_head = tkt;
    }
    lock->tickets_tail = tkt;
}

/*
 * Grant the first ticket if it fits the current owners, then drop the
 * internal mutex.  The owners count is updated before the wake, so no
 * newcomer can slip in between.
 */
static void rw_wake_one_and_unlock(CoRwlock *lock)
{
    CoRwTicket *tkt = lock->tickets_head;
    Coroutine *co = NULL;

    if (tkt) {
        if (tkt->read && lock->owners >= 0) {
            lock->owners++;
            co = tkt->co;
        } else if (!tkt->read && lock->owners == 0) {
            lock->owners = -1;
            co = tkt->co;
        }
    }
    if (co) {
        lock->tickets_head = tkt->next;
        if (!lock->tickets_head) {
            lock->tickets_tail = NULL;
        }
    }
    qemu_co_mutex_unlock(&lock->mutex);
    if (co) {
        aio_co_wake(co);
    }
}

AIOCTX_API void coroutine_fn qemu_co_rwlock_rdlock(CoRwlock *lock)
{
    Coroutine *self = need_coroutine("qemu_co_rwlock_rdlock");

    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners == 0 || (lock->owners > 0 && !lock->tickets_head)) {
        lock->owners++;
        qemu_co_mutex_unlock(&lock->mutex);
    } else {
        CoRwTicket tkt = { .read = true, .co = self };

        rw_enqueue(lock, &tkt);
        qemu_co_mutex_unlock(&lock->mutex);
        qemu_coroutine_yield();
        /* Granted (owners already counts us); let the next reader in. */
        qemu_co_mutex_lock(&lock->mutex);
        rw_wake_one_and_unlock(lock);
    }
    qemu_coroutine_self()->locks_held++;
}

AIOCTX_API void coroutine_fn qemu_co_rwlock_wrlock(CoRwlock *lock)
{
    Coroutine *self = need_coroutine("qemu_co_rwlock_wrlock");

    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners == 0) {
        lock->owners = -1;
        qemu_co_mutex_unlock(&lock->mutex);
    } else {
        CoRwTicket tkt = { .read = false, .co = self };

        rw_enqueue(lock, &tkt);
        qemu_co_mutex_unlock(&lock->mutex);
        qemu_coroutine_yield();
    }
    qemu_coroutine_self()->locks_held++;
}

AIOCTX_API void coroutine_fn qemu_co_rwlock_unlock(CoRwlock *lock)
{
    Coroutine *self = need_coroutine("qemu_co_rwlock_unlock");

    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners == 0) {
        qemu_co_mutex_unlock(&lock->mutex);
        co_die("qemu_co_rwlock_unlock: CoRwlock %p is not locked",
               (void *)lock);
    }
    if (lock->owners < 0) {
        lock->owners = 0;
    } else {
        lock->owners--;
    }
    self->locks_held--;
    rw_wake_one_and_unlock(lock);
}

AIOCTX_API void coroutine_fn qemu_co_rwlock_downgrade(CoRwlock *lock)
{
    need_coroutine("qemu_co_rwlock_downgrade");
    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners != -1) {
        qemu_co_mutex_unlock(&lock->mutex);
        co_die("qemu_co_rwlock_downgrade: CoRwlock %p is not write-locked",
               (void *)lock);
    }
    lock->owners = 1;
    rw_wake_one_and_unlock(lock);
}

AIOCTX_API void coroutine_fn qemu_co_rwlock_upgrade(CoRwlock *lock)
{
    Coroutine *self = need_coroutine("qemu_co_rwlock_upgrade");

    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners <= 0) {
        qemu_co_mutex_unlock(&lock->mutex);
        co_die("qemu_co_rwlock_upgrade: CoRwlock %p is not read-locked",
               (void *)lock);
    }
    if (lock->owners == 1 && !lock->tickets_head) {
        lock->owners = -1;
        qemu_co_mutex_unlock(&lock->mutex);
    } else {
        CoRwTicket tkt = { .read = false, .co = self };

        lock->owners--;
        rw_enqueue(lock, &tkt);
        rw_wake_one_and_unlock(lock);
        qemu_coroutine_yield();
    }
}
