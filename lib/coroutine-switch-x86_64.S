/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coroutine context switch for x86-64 (System V ABI).
 *
 * Only what a function call must preserve is saved: the callee-saved
 * general registers rbx, rbp, r12-r15 and the stack pointer.  Everything
 * else is caller-saved, so the C caller already assumes it is clobbered.
 * No signal mask, no FPU control words (programs that change MXCSR or the
 * x87 control word inside coroutines must restore them before yielding).
 *
 * void co_arch_switch(CoArch *from, CoArch *to)
 *   push the callee-saved registers, store rsp in from->sp (offset 0),
 *   load to->sp, pop the registers saved there and the return address,
 *   and jump to it.
 *
 * Why pop + jmp rather than ret: the CPU predicts `ret` from its return
 * stack buffer, which holds the return addresses of the stack we just
 * left, so a `ret` after a stack switch is (almost) always mispredicted.
 * An indirect jmp is predicted from branch history instead, which learns
 * the usual alternation between a few switch sites.  The cost is one
 * stale return-stack entry per switch, so one later `ret` mispredicts:
 * one miss per enter/yield round trip instead of two.  (This assumes no
 * CET shadow stack / IBT enforcement: the file carries no GNU property
 * note, so the library is never marked compatible with them.)
 *
 * aioctx_co_start: where a fresh stack "returns" to first.  coroutine-asm.c
 * lays out the initial frame with r12 = the Coroutine, r13 = the C entry
 * (co_trampoline) and rbp = 0, so backtraces end here.
 */
    .text

    .globl co_arch_switch
    .hidden co_arch_switch
    .type co_arch_switch, @function
    .p2align 4
co_arch_switch:
    .cfi_startproc
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    pushq %r12
    .cfi_adjust_cfa_offset 8
    pushq %r13
    .cfi_adjust_cfa_offset 8
    pushq %r14
    .cfi_adjust_cfa_offset 8
    pushq %r15
    .cfi_adjust_cfa_offset 8
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    popq %r15
    .cfi_adjust_cfa_offset -8
    popq %r14
    .cfi_adjust_cfa_offset -8
    popq %r13
    .cfi_adjust_cfa_offset -8
    popq %r12
    .cfi_adjust_cfa_offset -8
    popq %rbx
    .cfi_adjust_cfa_offset -8
    popq %rbp
    .cfi_adjust_cfa_offset -8
    popq %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_register rip, rcx
    jmp *%rcx
    .cfi_endproc
    .size co_arch_switch, .-co_arch_switch

    .globl aioctx_co_start
    .hidden aioctx_co_start
    .type aioctx_co_start, @function
    .p2align 4
aioctx_co_start:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size aioctx_co_start, .-aioctx_co_start

    .section .note.GNU-stack,"",@progbits
