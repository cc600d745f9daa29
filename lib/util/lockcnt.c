/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Futex-based visitor count plus lock; see lockcnt.h for the contract.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/lockcnt.h"

enum {
    LC_FREE = 0,
    LC_LOCKED = 1,
    LC_WAITERS = 2, /* locked, and someone sleeps on the word */
    LC_STATE = 3,
    LC_ONE = 4,
};

static void lc_futex_wait(AioLockCnt *lc, unsigned expected)
{
    syscall(SYS_futex, &lc->word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void lc_futex_wake_all(AioLockCnt *lc)
{
    syscall(SYS_futex, &lc->word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static unsigned lc_load(AioLockCnt *lc)
{
    return __atomic_load_n(&lc->word, __ATOMIC_ACQUIRE);
}

static bool lc_cas(AioLockCnt *lc, unsigned *expected, unsigned desired)
{
    return __atomic_compare_exchange_n(&lc->word, expected, desired, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Mark the word as having sleepers, then sleep while it is unchanged. */
static void lc_sleep(AioLockCnt *lc, unsigned v)
{
    unsigned want = (v & ~LC_STATE) | LC_WAITERS;

    if ((v & LC_STATE) != LC_WAITERS && !lc_cas(lc, &v, want)) {
        return; /* the word changed: let the caller look again */
    }
    lc_futex_wait(lc, want);
}

void lockcnt_init(AioLockCnt *lc)
{
    lc->word = 0;
}

void lockcnt_inc(AioLockCnt *lc)
{
    unsigned v = lc_load(lc);

    for (;;) {
        if (v >= LC_ONE || (v & LC_STATE) == LC_FREE) {
            if (lc_cas(lc, &v, v + LC_ONE)) {
                return;
            }
            continue;
        }
        lc_sleep(lc, v);
        v = lc_load(lc);
    }
}

void lockcnt_dec(AioLockCnt *lc)
{
    __atomic_fetch_sub(&lc->word, LC_ONE, __ATOMIC_RELEASE);
}

bool lockcnt_dec_if_lock(AioLockCnt *lc)
{
    unsigned v = LC_ONE | LC_FREE;

    return lc_cas(lc, &v, LC_LOCKED);
}

void lockcnt_inc_and_unlock(AioLockCnt *lc)
{
    unsigned v = lc_load(lc);

    while (!lc_cas(lc, &v, (v & ~LC_STATE) + LC_ONE)) {
    }
    if ((v & LC_STATE) == LC_WAITERS) {
        lc_futex_wake_all(lc);
    }
}

void lockcnt_lock(AioLockCnt *lc)
{
    unsigned v = lc_load(lc);

    for (;;) {
        if ((v & LC_STATE) == LC_FREE) {
            if (lc_cas(lc, &v, v | LC_LOCKED)) {
                return;
            }
            continue;
        }
        lc_sleep(lc, v);
        v = lc_load(lc);
    }
}

void lockcnt_unlock(AioLockCnt *lc)
{
    unsigned v = __atomic_fetch_and(&lc->word, ~(unsigned)LC_STATE,
                                    __ATOMIC_RELEASE);

    if ((v & LC_STATE) == LC_WAITERS) {
        lc_futex_wake_all(lc);
    }
}

unsigned lockcnt_count(AioLockCnt *lc)
{
    return lc_load(lc) / LC_ONE;
}
