/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hand-written switch backend: lays out the first frame of a new
 * coroutine stack so that co_arch_switch() "returns" into
 * aioctx_co_start, which calls co_trampoline(co).  The switch itself is in
 * coroutine-switch-x86_64.S / coroutine-switch-aarch64.S.
 */
#include <stdint.h>

#include "coroutine-internal.h"

void aioctx_co_start(void);

#ifdef AIOCTX_CO_TSAN
const bool co_arch_switches_tsan_fiber = false;
#endif

#if defined(__x86_64__)

/*
 * Popped by co_arch_switch in this order: r15 r14 r13 r12 rbx rbp, then
 * the return address.  After the `ret`, rsp must be 16-byte aligned, as
 * it is right before a `call`.
 */
enum { X_R15, X_R14, X_R13, X_R12, X_RBX, X_RBP, X_RET, X_WORDS };

void co_arch_init(Coroutine *self, Coroutine *co)
{
    uintptr_t top = ((uintptr_t)co->stack + co->stack_size) & ~(uintptr_t)15;
    void **frame = (void **)(top - 16 - X_WORDS * sizeof(void *));

    (void)self;
    for (int i = 0; i < X_WORDS; i++) {
        frame[i] = NULL;
    }
    frame[X_R12] = co;
    frame[X_R13] = (void *)co_trampoline;
    frame[X_RET] = (void *)aioctx_co_start;
    co->arch.sp = frame;
}

#elif defined(__aarch64__)

/* The 160-byte frame of co_arch_switch, in 8-byte words. */
enum { A_X19 = 0, A_X20 = 1, A_X29 = 10, A_X30 = 11, A_WORDS = 20 };

void co_arch_init(Coroutine *self, Coroutine *co)
{
    uintptr_t top = ((uintptr_t)co->stack + co->stack_size) & ~(uintptr_t)15;
    void **frame = (void **)(top - A_WORDS * sizeof(void *));

    (void)self;
    for (int i = 0; i < A_WORDS; i++) {
        frame[i] = NULL;
    }
    frame[A_X19] = co;
    frame[A_X20] = (void *)co_trampoline;
    frame[A_X29] = NULL;
    frame[A_X30] = (void *)aioctx_co_start;
    co->arch.sp = frame;
}

#else
#error "the asm coroutine backend supports x86-64 and aarch64 only"
#endif
