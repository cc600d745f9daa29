/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The portable switch backend.
 *
 * A new stack is entered once with makecontext + swapcontext; the code
 * that starts there saves a sigjmp_buf and jumps straight back, so
 * creation does not run the coroutine.  Every later switch is
 * sigsetjmp(from, 0) + siglongjmp(to): no signal mask is saved, so no
 * system call happens (swapcontext would make one per switch).
 */
#undef _FORTIFY_SOURCE /* its longjmp check rejects jumps between stacks */

#include <setjmp.h>
#include <stdint.h>
#include <ucontext.h>

#include "coroutine-internal.h"

#ifdef AIOCTX_CO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#ifdef AIOCTX_CO_TSAN
const bool co_arch_switches_tsan_fiber = true;
#endif

typedef struct CoBoot {
    Coroutine *co;
    Coroutine *creator;
    sigjmp_buf back;
} CoBoot;

static inline void uc_tsan_switch(Coroutine *to)
{
#ifdef AIOCTX_CO_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
    (void)to;
#endif
}

/* Runs first on the new stack; makecontext passes the CoBoot as 2 ints. */
static void co_boot(unsigned int lo, unsigned int hi)
{
    CoBoot *boot = (CoBoot *)(uintptr_t)(((uint64_t)hi << 32) | lo);
    Coroutine *co = boot->co;

    co_asan_arrive(NULL);
    if (!sigsetjmp(co->arch.env, 0)) {
        /* Back to the creator; this frame is resumed by the first enter. */
        co_asan_leave(co, boot->creator, true);
        uc_tsan_switch(boot->creator);
        siglongjmp(boot->back, 1);
    }
    co_trampoline(co);
}

void co_arch_init(Coroutine *self, Coroutine *co)
{
    uintptr_t p;
    ucontext_t uc, old_uc;
    CoBoot boot = { .co = co, .creator = self };

    if (getcontext(&uc) < 0) {
        co_die("getcontext failed");
    }
    uc.uc_link = NULL;
    uc.uc_stack.ss_sp = co->stack;
    uc.uc_stack.ss_size = co->stack_size;
    uc.uc_stack.ss_flags = 0;
    p = (uintptr_t)&boot;
    makecontext(&uc, (void (*)(void))co_boot, 2, (unsigned int)p,
                (unsigned int)((uint64_t)p >> 32));
    if (!sigsetjmp(boot.back, 0)) {
        co_asan_leave(self, co, false);
        uc_tsan_switch(co);
        swapcontext(&old_uc, &uc);
    }
    co_asan_arrive(self);
}

__attribute__((noinline)) void co_arch_switch(CoArch *from, CoArch *to)
{
    if (!sigsetjmp(from->env, 0)) {
        /* TSan files a jmp_buf under the fiber current at sigsetjmp. */
        uc_tsan_switch((Coroutine *)to);
        siglongjmp(to->env, 1);
    }
}
