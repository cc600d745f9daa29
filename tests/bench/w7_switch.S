/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W7 floor: the barest stack switch, for bench-coroutine.
 *
 * void w7_switch(void **save_sp, void *new_sp)
 *   x86-64: push the six callee-saved GPRs, swap rsp, pop, ret.
 *   aarch64: x19-x30 and d8-d15 in a 160-byte frame, swap sp, ret.
 * No FPU control words, no signal mask, no shadow stack.
 *
 * w7_start: a fresh stack "returns" here; it calls fn(arg) with fn and
 * arg taken from the callee-saved slots the C side filled in (x86-64:
 * r13/r12, aarch64: x20/x19).  fn must never return.
 */
#if defined(__x86_64__)
    .text
    .globl w7_switch
    .type w7_switch, @function
    .p2align 4
w7_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size w7_switch, .-w7_switch

    .globl w7_start
    .type w7_start, @function
    .p2align 4
w7_start:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size w7_start, .-w7_start
    .section .note.GNU-stack,"",@progbits

#elif defined(__aarch64__)
    .text
    .globl w7_switch
    .type w7_switch, %function
    .p2align 4
w7_switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
    .size w7_switch, .-w7_switch

    .globl w7_start
    .type w7_start, %function
    .p2align 4
w7_start:
    mov x0, x19
    blr x20
    brk #0
    .size w7_start, .-w7_start
    .section .note.GNU-stack,"",%progbits
#else
    .section .note.GNU-stack,"",%progbits
#endif
