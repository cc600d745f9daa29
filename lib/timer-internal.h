/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What clock.c and timer.c tell each other.  Private to lib/.
 */
#ifndef AIOCTX_TIMER_INTERNAL_H
#define AIOCTX_TIMER_INTERNAL_H

#include <stdint.h>

#include "aioctx/timer.h"

/* How a clock's timers behave right now. */
typedef enum {
    AIO_CLOCK_RUNNING, /* time moves, due timers fire */
    AIO_CLOCK_FROZEN,  /* stopped virtual clock: stands still, due ones fire */
    AIO_CLOCK_OFF,     /* stopped clock: no timer fires */
} AioClockState;

/* clock.c: the clock's time in ns and, if state is not NULL, its state. */
int64_t aio_clock_read(QEMUClockType type, AioClockState *state);

/* timer.c: wake every context so it looks at its timers again. */
void aio_timers_wake_all(void);

#endif /* AIOCTX_TIMER_INTERNAL_H */
