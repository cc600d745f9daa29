/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coroutine sleeps: qemu_co_sleep_ns() and the wakeable variant.
 *
 * A sleeping coroutine is marked as scheduled (so nobody else may enter
 * it) and publishes itself in its QemuCoSleep; qemu_co_sleep_wake() takes
 * it out atomically, so the timer and an early waker cannot both resume
 * it.  The timer lives on the sleeper's stack, in the context the
 * coroutine sleeps in, so its callback cannot run before the yield.
 */
#include <stdint.h>

#include "aio-internal.h"
#include "coroutine-internal.h"

static const char co_sleep_marker[] = "qemu_co_sleep_ns";

AIOCTX_API void qemu_co_sleep_wake(QemuCoSleep *w)
{
    Coroutine *co = __atomic_exchange_n(&w->to_wake, NULL, __ATOMIC_ACQ_REL);
    const char *expected = co_sleep_marker;

    if (!co) {
        return;
    }
    if (!__atomic_compare_exchange_n(&co->scheduled, &expected, NULL, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        co_die("qemu_co_sleep_wake: sleeping coroutine %p is marked %s",
               (void *)co, expected ? expected : "(nothing)");
    }
    aio_co_wake(co);
}

AIOCTX_API void coroutine_fn qemu_co_sleep(QemuCoSleep *w)
{
    Coroutine *co = qemu_coroutine_self();
    const char *old = NULL;

    if (!co->caller) {
        co_die("qemu_co_sleep called outside a coroutine");
    }
    if (!__atomic_compare_exchange_n(&co->scheduled, &old, co_sleep_marker,
                                     false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        co_die("qemu_co_sleep: coroutine %p is already scheduled by %s",
               (void *)co, old);
    }
    __atomic_store_n(&w->to_wake, co, __ATOMIC_RELEASE);
    qemu_coroutine_yield();
    /* Only qemu_co_sleep_wake() resumes us, and it cleared to_wake. */
}

static void co_sleep_timer_cb(void *opaque)
{
    qemu_co_sleep_wake(opaque);
}

AIOCTX_API void coroutine_fn qemu_co_sleep_ns_wakeable(QemuCoSleep *w,
                                                       QEMUClockType type,
                                                       int64_t ns)
{
    AioContext *ctx = qemu_get_current_aio_context();
    QEMUTimer ts;
    int64_t now;

    if (!qemu_in_coroutine()) {
        co_die("qemu_co_sleep_ns called outside a coroutine");
    }
    if (!ctx) {
        co_die("qemu_co_sleep_ns: the calling thread has no current "
               "AioContext");
    }
    aio_timer_init(ctx, &ts, type, SCALE_NS, co_sleep_timer_cb, w);
    now = qemu_clock_get_ns(type);
    if (ns < 0) {
        ns = 0;
    }
    timer_mod_ns(&ts, ns > INT64_MAX - now ? INT64_MAX : now + ns);
    qemu_co_sleep(w);
    timer_deinit(&ts);
}

AIOCTX_API void coroutine_fn qemu_co_sleep_ns(QEMUClockType type, int64_t ns)
{
    QemuCoSleep w = { .to_wake = NULL };

    qemu_co_sleep_ns_wakeable(&w, type, ns);
}
