/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seccomp filters for tests that need the kernel to refuse a system call:
 * installed in a child process (they cannot be removed, and they survive
 * exec), they make one system call fail with a chosen errno, always or
 * only when one of its arguments is above a value.
 */
#ifndef AIOCTX_TEST_SECCOMP_H
#define AIOCTX_TEST_SECCOMP_H

#include <endian.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef TEST_AUDIT_ARCH
#define TEST_HAVE_SECCOMP 1

/* Offset of the low 32 bits of system call argument i. */
#define TEST_SECCOMP_ARG_LO(i)                                                 \
    (offsetof(struct seccomp_data, args) + 8 * (i) +                           \
     (__BYTE_ORDER == __BIG_ENDIAN ? 4 : 0))

static inline int test_seccomp_install(struct sock_filter *filter,
                                       unsigned short len)
{
    struct sock_fprog prog = { .len = len, .filter = filter };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        return -errno;
    }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
        return -errno;
    }
    return 0;
}

/*
 * From now on, in this process and what it execs, system call nr fails
 * with err when the low 32 bits of argument arg are above (unsigned) above;
 * pass arg -1 to make it fail always.  Returns 0 or -errno.
 */
static inline int test_seccomp_refuse(int nr, int err, int arg,
                                      uint32_t above)
{
    struct sock_filter always[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & 0xffff)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_filter if_above[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 (uint32_t)TEST_SECCOMP_ARG_LO(arg < 0 ? 0 : arg)),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, above, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & 0xffff)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };

    if (arg < 0) {
        return test_seccomp_install(always,
                                    sizeof(always) / sizeof(always[0]));
    }
    return test_seccomp_install(if_above,
                                sizeof(if_above) / sizeof(if_above[0]));
}
#else
#define TEST_HAVE_SECCOMP 0
#endif

#endif /* AIOCTX_TEST_SECCOMP_H */
