/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A visitor count combined with a lock, in one futex word.
 *
 * Walkers of a list (the home thread inside aio_poll) increment the count
 * and may walk without the lock; mutators (aio_set_fd_handler from any
 * thread) take the lock.  While the lock is held the count may still grow
 * from 1 upwards (nested walkers) but never leave 0, so a mutator that sees
 * count 0 under the lock may free nodes at once; otherwise it defers the
 * free to the last walker (lockcnt_dec_if_lock).
 *
 * Word layout: bits 0-1 hold the lock state, the count is in steps of 4.
 */
#ifndef AIOCTX_LOCKCNT_H
#define AIOCTX_LOCKCNT_H

#include <stdbool.h>

typedef struct AioLockCnt {
    unsigned word;
} AioLockCnt;

void lockcnt_init(AioLockCnt *lc);
/* Become a visitor; waits only if the count is 0 and the lock is held. */
void lockcnt_inc(AioLockCnt *lc);
/* Stop being a visitor. */
void lockcnt_dec(AioLockCnt *lc);
/*
 * If the caller is the only visitor and nobody holds the lock, drop the
 * count to 0, take the lock and return true; else change nothing.
 */
bool lockcnt_dec_if_lock(AioLockCnt *lc);
/* Become a visitor again and release the lock, atomically. */
void lockcnt_inc_and_unlock(AioLockCnt *lc);
void lockcnt_lock(AioLockCnt *lc);
void lockcnt_unlock(AioLockCnt *lc);
/* Current number of visitors (a snapshot). */
unsigned lockcnt_count(AioLockCnt *lc);

#endif /* AIOCTX_LOCKCNT_H */
