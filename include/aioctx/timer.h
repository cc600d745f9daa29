/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: clocks and timers.
 *
 * Four clocks, all in nanoseconds:
 *   QEMU_CLOCK_REALTIME    CLOCK_MONOTONIC; never stops, never jumps.
 *   QEMU_CLOCK_HOST        the wall clock (CLOCK_REALTIME); may jump when
 *                          the system time is set.
 *   QEMU_CLOCK_VIRTUAL     follows the monotonic clock until the program
 *                          stops it with qemu_clock_enable(..., false);
 *                          while stopped it stands still and can only be
 *                          moved forward by qemu_clock_advance_virtual_time().
 *   QEMU_CLOCK_VIRTUAL_RT  like VIRTUAL, but keeps running while the
 *                          virtual clock is stopped.
 *
 * Each AioContext owns a QEMUTimerListGroup (one timer list per clock);
 * a timer belongs to one group and its callback runs from aio_poll() in
 * that context's thread.
 */
#ifndef AIOCTX_TIMER_H
#define AIOCTX_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <aioctx/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    QEMU_CLOCK_REALTIME = 0,
    QEMU_CLOCK_VIRTUAL = 1,
    QEMU_CLOCK_HOST = 2,
    QEMU_CLOCK_VIRTUAL_RT = 3,
    QEMU_CLOCK_MAX
} QEMUClockType;

#define SCALE_MS 1000000
#define SCALE_US 1000
#define SCALE_NS 1

/* Timer attributes, kept and readable with timer_get_attributes(). */
#define QEMU_TIMER_ATTR_EXTERNAL (1 << 0)
#define QEMU_TIMER_ATTR_ALL 0xffffffff

typedef void QEMUTimerCB(void *opaque);

typedef struct QEMUTimerList QEMUTimerList;
typedef struct QEMUTimerListGroup QEMUTimerListGroup;

/*
 * A timer.  Complete so callers can embed it (timer_init_full); every field
 * is private, read it only through the functions below.
 */
typedef struct QEMUTimer {
    int64_t expire_time;       /* private: deadline in ns, -1 if idle */
    QEMUTimerList *timer_list; /* private: owning list */
    QEMUTimerCB *cb;           /* private */
    void *opaque;              /* private */
    uint64_t seq;              /* private: arming order, ties broken by it */
    uint32_t heap_index;       /* private: slot in the list's heap */
    int scale;                 /* private */
    int attributes;            /* private */
} QEMUTimer;

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_TIMER_H */
