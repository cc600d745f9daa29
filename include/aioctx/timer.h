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
 *
 * Timers of one context fire in deadline order; equal deadlines fire in
 * the order the timers were armed (re-arming counts as arming).  Clocks
 * are visited in index order (REALTIME, VIRTUAL, HOST, VIRTUAL_RT).  A
 * callback may re-arm, delete or free its own timer or any other one.
 * Arming, moving and deleting cost O(log n) (a 4-ary heap per clock and
 * context) and never allocate, except that a list's heap array grows
 * (doubling) the first time it holds that many timers.
 *
 * Differences from QEMU, on purpose:
 *   - the virtual clock runs (following the monotonic clock) until it is
 *     stopped; QEMU starts it stopped;
 *   - a stopped virtual clock still fires the timers that are due at the
 *     time where it stands (that is how qemu_clock_advance_virtual_time()
 *     makes timers fire); stopping the other clocks, as in QEMU, keeps
 *     all their timers from firing until they are enabled again;
 *   - qemu_clock_enable(type, false) does not wait for timer callbacks
 *     that are running in other threads.
 *
 * Deterministic time in tests: stop the virtual clock, arm timers on it,
 * and step it.  Nothing fires while real time passes; each step fires
 * what became due, in deadline order, at the context's next aio_poll():
 *
 *     static void tick(void *opaque) { (*(int *)opaque)++; }
 *
 *     AioContext *ctx = aio_context_new(&error_abort);
 *     QEMUTimer t;
 *     int ticks = 0;
 *
 *     qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);     // stand still
 *     int64_t t0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
 *     aio_timer_init(ctx, &t, QEMU_CLOCK_VIRTUAL, SCALE_MS, tick, &ticks);
 *     timer_mod(&t, t0 / SCALE_MS + 100);               // in 100 ms
 *
 *     qemu_clock_advance_virtual_time(t0 + 99 * SCALE_MS);
 *     aio_poll(ctx, false);                             // ticks == 0
 *     qemu_clock_advance_virtual_time(t0 + 100 * SCALE_MS);
 *     aio_poll(ctx, false);                             // ticks == 1
 *
 *     timer_deinit(&t);
 *     qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);      // runs on, no jump
 *     aio_context_unref(ctx);
 *
 * A callback sees the clock where the step left it.  A periodic timer that
 * re-arms itself from its previous deadline (not from the current time)
 * fires once for every period a step crosses, all in one aio_poll().
 *
 * Errors (aioctx/error.h): nothing here can fail with valid arguments.
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
 * A timer.  Complete so callers can embed it (timer_init_full).  What is
 * public is its size and alignment (48 bytes, 8-aligned on 64-bit targets),
 * which are ABI and stay within a major version; no field is public: read
 * a timer only through the functions below, and never copy a pending one
 * (its list points at it).  A zero-filled QEMUTimer is not initialised:
 * call timer_init_full() or aio_timer_init().
 */
typedef struct QEMUTimer {
    /* Fields used on every arm first, to share a cache line. */
    int64_t expire_time;       /* private: deadline in ns, -1 if idle */
    QEMUTimerList *timer_list; /* private: owning list */
    uint32_t heap_index;       /* private: slot in the list's heap, 0 = none */
    int scale;                 /* private */
    QEMUTimerCB *cb;           /* private */
    void *opaque;              /* private */
    int attributes;            /* private */
} QEMUTimer;

/* ------------------------------------------------------------------ */
/* Clocks                                                              */
/* ------------------------------------------------------------------ */

/*
 * Current time of a clock in nanoseconds (REALTIME, VIRTUAL and
 * VIRTUAL_RT count from an arbitrary start; HOST from the Unix epoch).
 * Returns -1 for an unknown clock type.  Any thread.
 */
AIOCTX_API int64_t qemu_clock_get_ns(QEMUClockType type);

/* qemu_clock_get_ns() in microseconds (rounded down); -1 if unknown. */
AIOCTX_API int64_t qemu_clock_get_us(QEMUClockType type);

/* qemu_clock_get_ns() in milliseconds (rounded down); -1 if unknown. */
AIOCTX_API int64_t qemu_clock_get_ms(QEMUClockType type);

/*
 * Start (enabled true) or stop a clock for the whole process.  Stopping
 * QEMU_CLOCK_VIRTUAL freezes its time where it is; its timers that are due
 * at that time still fire, later ones wait for
 * qemu_clock_advance_virtual_time().  Starting it again resumes from the
 * frozen value without a jump.  Stopping any other clock keeps its time
 * running but keeps all of its timers from firing.  Enabling wakes every
 * context so that sleeping loops recompute their timeouts.  Callbacks
 * already running in other threads are not waited for.  All clocks start
 * enabled.  Unknown types are ignored.  Any thread.
 */
AIOCTX_API void qemu_clock_enable(QEMUClockType type, bool enabled);

/*
 * Move QEMU_CLOCK_VIRTUAL forward to target_ns; a target in the past
 * leaves it unchanged (the clock never goes back).  Works whether the
 * clock is stopped or running (running, it jumps forward and keeps
 * running from there).  Every context is woken: the timers that became
 * due fire in deadline order in each context's own thread, at its next
 * aio_poll().  Returns the virtual time after the move.  Any thread.
 */
AIOCTX_API int64_t qemu_clock_advance_virtual_time(int64_t target_ns);

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

/*
 * Initialise caller-owned timer storage: on clock type, in the timer list
 * group tlg (NULL: the group of the calling thread's current AioContext,
 * see qemu_set_current_aio_context()), with deadlines given in units of
 * scale nanoseconds (SCALE_NS, SCALE_US, SCALE_MS or any positive value),
 * attributes kept for timer_get_attributes(), and cb(opaque) run on
 * expiry.  The timer starts idle.  Bad arguments (unknown clock, scale
 * <= 0, cb NULL, no group) are programming errors: the process aborts with
 * a message.  Any thread; the group must outlive the timer's use.
 */
AIOCTX_API void timer_init_full(QEMUTimer *ts, QEMUTimerListGroup *tlg,
                                QEMUClockType type, int scale, int attributes,
                                QEMUTimerCB *cb, void *opaque);

/*
 * Allocate and initialise a timer as timer_init_full() does.  Returns
 * the timer, to be released with timer_free(), or NULL for bad arguments
 * (unknown clock, scale <= 0, cb NULL, no group).  Aborts when out of
 * memory.  Any thread.
 */
AIOCTX_API QEMUTimer *timer_new_full(QEMUTimerListGroup *tlg,
                                     QEMUClockType type, int scale,
                                     int attributes, QEMUTimerCB *cb,
                                     void *opaque);

/*
 * Arm (or move) ts to fire at expire_time, in units of the timer's scale
 * on its clock.  A time in the past fires at the next aio_poll(); negative
 * values count as 0 and overflowing ones as the far future.  Re-arming
 * counts as arming for the order of equal deadlines.  When the new
 * deadline is the earliest of the timer's list and the caller is not the
 * context's polling thread, the context is woken (aio_notify) so that a
 * sleeping aio_poll() recomputes its timeout.  O(log n), no allocation
 * for a timer already armed once.  The timer's context must still exist.
 * Any thread.
 */
AIOCTX_API void timer_mod(QEMUTimer *ts, int64_t expire_time);

/* timer_mod() with expire_time in nanoseconds, whatever the scale. */
AIOCTX_API void timer_mod_ns(QEMUTimer *ts, int64_t expire_time);

/*
 * Like timer_mod(), but only ever moves the deadline earlier: if ts is
 * pending with a deadline at or before expire_time, nothing happens.  An
 * idle timer is armed.  Any thread.
 */
AIOCTX_API void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time);

/* timer_mod_anticipate() with expire_time in nanoseconds. */
AIOCTX_API void timer_mod_anticipate_ns(QEMUTimer *ts, int64_t expire_time);

/*
 * Disarm ts.  Deleting an idle timer (or NULL) does nothing.  Called in
 * the context's thread, the callback will not run after this returns.
 * From another thread, a callback that aio_poll() has already started (or
 * is about to start) may still run.  Still valid after the timer's
 * context is destroyed.  O(log n).  Any thread.
 */
AIOCTX_API void timer_del(QEMUTimer *ts);

/*
 * Release a timer made by timer_init_full()/aio_timer_init(): disarms it
 * if needed and unbinds it from its group.  The storage may then be
 * reused.  NULL does nothing.  Any thread.
 */
AIOCTX_API void timer_deinit(QEMUTimer *ts);

/*
 * Delete and free a timer made by timer_new_full()/aio_timer_new().  NULL
 * does nothing.  Safe from the timer's own callback, and after its
 * context has been destroyed.  Any thread.
 */
AIOCTX_API void timer_free(QEMUTimer *ts);

/* Whether ts is armed (NULL: false).  Any thread. */
AIOCTX_API bool timer_pending(QEMUTimer *ts);

/*
 * Whether ts's deadline is at or before current_time (in the timer's
 * scale).  As in QEMU, an idle timer counts as expired.  NULL: false.
 * Any thread.
 */
AIOCTX_API bool timer_expired(QEMUTimer *ts, int64_t current_time);

/*
 * Deadline of ts in nanoseconds, or -1 when it is idle (or NULL).  Any
 * thread.
 */
AIOCTX_API int64_t timer_expire_time_ns(QEMUTimer *ts);

/*
 * Attributes given when ts was initialised (QEMU_TIMER_ATTR_* bits);
 * 0 for NULL.  Any thread.
 */
AIOCTX_API int timer_get_attributes(QEMUTimer *ts);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_TIMER_H */
