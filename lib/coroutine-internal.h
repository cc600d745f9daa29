/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private coroutine structures shared by coroutine.c, the switch backends,
 * co-schedule.c, co-sync.c, co-sleep.c and co-io.c.
 */
#ifndef AIOCTX_COROUTINE_INTERNAL_H
#define AIOCTX_COROUTINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aioctx/coroutine.h"

/* ---- sanitizer and valgrind detection ---- */

#if defined(__SANITIZE_ADDRESS__)
#define AIOCTX_CO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIOCTX_CO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define AIOCTX_CO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AIOCTX_CO_TSAN 1
#endif
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#define AIOCTX_CO_VALGRIND 1
#endif
#endif

/*
 * ---- the machine state a switch saves ----
 *
 * The backend is chosen by which files are linked in (CMake option
 * AIOCTX_COROUTINE_BACKEND), so the generic code does not depend on it:
 * the asm backend uses sp (it must stay at offset 0: the .S files store
 * and load it there), the ucontext backend uses env.
 */
#include <setjmp.h>
typedef union CoArch {
    void *sp; /* asm: stack pointer, callee-saved registers below it */
    sigjmp_buf env; /* ucontext: sigsetjmp(env, 0) state */
} CoArch;

/* Why a coroutine switched away; what the resumed side gets back. */
typedef enum CoAction {
    CO_ACTION_ENTER = 1,
    CO_ACTION_YIELD = 2,
    CO_ACTION_TERMINATE = 3,
} CoAction;

struct Coroutine {
    CoArch arch;
    /* Who entered us and gets control back on yield; NULL when inactive. */
    Coroutine *caller;
    /* NULL once the entry function returned (or for a thread's leader). */
    CoroutineEntry *entry;
    void *entry_arg;
    /* Set by whoever switches to this coroutine; read when it resumes. */
    CoAction resume_action;
    unsigned locks_held;
    /* The context the coroutine last ran in (atomic; NULL outside any). */
    AioContext *ctx;
    /* Non-NULL (a marker string) while aio_co_schedule/sleep owns it. */
    const char *scheduled;
    /* Link in a CoQueue, a CoMutex's waiters, an enter loop's pending list. */
    Coroutine *co_queue_next;
    /* Coroutines woken by this one; run after it yields or terminates. */
    Coroutine *wakeup_head;
    Coroutine *wakeup_tail;
    /* aio_co_reschedule_self: schedule here once switched out. */
    AioContext *reschedule_ctx;
    /* Link in a context's scheduled_coroutines stack. */
    Coroutine *co_scheduled_next;
    /* Link in a free pool. */
    Coroutine *pool_next;

    /* Stack: [stack, stack + stack_size) plus a guard page below it. */
    void *stack;
    size_t stack_size;
    void *map;
    size_t map_size;
#ifdef AIOCTX_CO_VALGRIND
    unsigned valgrind_id;
#endif
#ifdef AIOCTX_CO_TSAN
    void *tsan_fiber;
#endif
#ifdef AIOCTX_CO_ASAN
    /*
     * ASan's fake stack while switched out.  Kept here, not in a local of
     * the switch: a terminated coroutine's fake frames are dropped, and
     * the pool resumes it inside that very switch call.
     */
    void *asan_fake;
#endif
};

/* ---- coroutine.c ---- */

/* The calling thread's current coroutine (its leader outside any). */
Coroutine *co_self(void);

/* The body every coroutine stack starts in; never returns. */
__attribute__((noreturn)) void co_trampoline(Coroutine *co);

/* Log "<message>" at AIO_LOG_FATAL (log-internal.h) and abort. */
__attribute__((noreturn, format(printf, 1, 2))) void co_die(const char *fmt,
                                                            ...);

/*
 * Sanitizer bookkeeping around a switch; see coroutine.c.  co_asan_leave()
 * is called right before the stack changes (terminating: `from` will only
 * come back as a fresh coroutine, so ASan may drop its fake stack),
 * co_asan_arrive(self) right after arriving in self (NULL: a coroutine's
 * very first arrival).
 */
void co_asan_leave(Coroutine *from, Coroutine *to, bool terminating);
void co_asan_arrive(Coroutine *self);

/* ---- the backend (coroutine-asm.c / coroutine-ucontext.c) ---- */

/*
 * Prepare co->arch so that the first switch to co runs co_trampoline(co)
 * on co's stack.  Called by the creating coroutine `self`.
 */
void co_arch_init(Coroutine *self, Coroutine *co);

/*
 * Save the current machine state in from, load to's.  Both are the arch
 * member (the first) of a Coroutine.
 */
void co_arch_switch(CoArch *from, CoArch *to);

#ifdef AIOCTX_CO_TSAN
/*
 * True when co_arch_switch() switches the TSan fiber itself (ucontext:
 * between its sigsetjmp and siglongjmp, which TSan tracks per fiber);
 * else the generic code does it right before co_arch_switch().
 */
extern const bool co_arch_switches_tsan_fiber;
#endif

#endif /* AIOCTX_COROUTINE_INTERNAL_H */
