/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The monotonic clock in nanoseconds, for timeouts inside lib/. */
#ifndef AIOCTX_UTIL_NOW_H
#define AIOCTX_UTIL_NOW_H

#include <stdint.h>
#include <time.h>

static inline int64_t aio_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif /* AIOCTX_UTIL_NOW_H */
