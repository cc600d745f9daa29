/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Coroutine context switch for AArch64 (AAPCS64).
 *
 * Saved: the callee-saved x19-x28, the frame pointer x29, the link
 * register x30, the low halves d8-d15 of v8-v15, and sp.  Nothing else
 * survives a call anyway.  No signal mask, no FPCR.
 *
 * void co_arch_switch(CoArch *from, CoArch *to)
 *   store the registers in a 160-byte frame below sp, store sp in
 *   from->sp (offset 0), switch to to->sp, load the registers saved there
 *   and return through the loaded x30.
 *
 * aioctx_co_start: where a fresh stack first returns to; the initial frame
 * (coroutine-asm.c) holds x19 = the Coroutine, x20 = the C entry
 * (co_trampoline) and x29 = 0.
 */
    .text

    .globl co_arch_switch
    .hidden co_arch_switch
    .type co_arch_switch, %function
    .p2align 4
co_arch_switch:
    .cfi_startproc
    sub sp, sp, #160
    .cfi_adjust_cfa_offset 160
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
    ldr x10, [x1]
    mov sp, x10
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
    .cfi_adjust_cfa_offset -160
    ret
    .cfi_endproc
    .size co_arch_switch, .-co_arch_switch

    .globl aioctx_co_start
    .hidden aioctx_co_start
    .type aioctx_co_start, %function
    .p2align 4
aioctx_co_start:
    .cfi_startproc
    .cfi_undefined x30
    mov x0, x19
    blr x20
    brk #0
    .cfi_endproc
    .size aioctx_co_start, .-aioctx_co_start

    .section .note.GNU-stack,"",%progbits
