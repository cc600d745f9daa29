/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W3 (timers) as bench-workloads.md defines it: the generator, the counts
 * and the delays every peer uses, so that all of them do the same work.
 */
#ifndef AIOCTX_W3_COMMON_H
#define AIOCTX_W3_COMMON_H

#include <stdint.h>

#define W3_SEED_FIRE 42      /* (a): delay_i = x % 1000 ms */
#define W3_SEED_CHURN_INIT 42 /* (b): the initial deadlines */
#define W3_SEED_CHURN 7      /* (b): the re-arm sequence */
#define W3_FIRE_SPAN_MS 1000
#define W3_CHURN_TIMERS 10000
#define W3_CHURN_OPS 10000000LL
#define W3_CHURN_OPS_LIST 20000LL /* the O(n) sorted list */
#define W3_EARLY_FAIL_NS 1000000  /* early by more than this: FAIL */

static inline uint64_t w3_xorshift64(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* (a): the next delay, in whole milliseconds (libuv's resolution). */
static inline int64_t w3_fire_delay_ms(uint64_t *x)
{
    return (int64_t)(w3_xorshift64(x) % W3_FIRE_SPAN_MS);
}

/* (b): a delay of 1000 s + (r % 1,000,000) ms, in ms (0..2000 s). */
static inline int64_t w3_churn_delay_ms(uint64_t r)
{
    return 1000 * 1000 + (int64_t)(r % 1000000);
}

/* (b): the next re-arm: which timer, and its new delay in ms. */
static inline void w3_churn_next(uint64_t *x, uint32_t *idx, int64_t *ms)
{
    uint64_t r = w3_xorshift64(x);

    *idx = (uint32_t)(r % W3_CHURN_TIMERS);
    *ms = w3_churn_delay_ms(r >> 32);
}

#endif /* AIOCTX_W3_COMMON_H */
