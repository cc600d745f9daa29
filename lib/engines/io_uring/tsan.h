/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * liburing maps and unmaps rings with raw system calls, which
 * ThreadSanitizer does not see.  When one thread unmaps a ring and another
 * maps a new one at the same address, TSan takes the new ring's first
 * writes for races with the old ring's last ones.  So every ring teardown
 * releases, and every new ring acquires, one sync point: that orders them
 * for TSan.  Nothing at all in other builds.
 */
#ifndef AIOCTX_URING_TSAN_H
#define AIOCTX_URING_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define AIOCTX_URING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AIOCTX_URING_TSAN 1
#endif
#endif

#ifdef AIOCTX_URING_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char aio_uring_tsan_sync; /* ring.c */

/* Right after a ring was mapped. */
static inline void aio_uring_mapped(void)
{
    __tsan_acquire(&aio_uring_tsan_sync);
}

/* Right before a ring is unmapped. */
static inline void aio_uring_unmapping(void)
{
    __tsan_release(&aio_uring_tsan_sync);
}
#else
static inline void aio_uring_mapped(void)
{
}

static inline void aio_uring_unmapping(void)
{
}
#endif

#endif /* AIOCTX_URING_TSAN_H */
