/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The four clocks.
 *
 * REALTIME and VIRTUAL_RT read CLOCK_MONOTONIC, HOST reads CLOCK_REALTIME.
 * VIRTUAL is monotonic time plus an offset while it runs, and a frozen
 * value while it is stopped.  Its state (running flag, offset, frozen
 * value) changes rarely and is read on every look at a virtual timer, so
 * it sits behind a sequence counter: writers (serialised by a mutex) make
 * the counter odd while they change the fields, readers retry when they
 * saw it odd or changing.  Every field is accessed atomically; the fields
 * are stored with release and loaded with acquire, so a reader that sees
 * any new field also sees the counter moved and retries.
 */
#include <pthread.h>
#include <time.h>

#include "aio-internal.h"
#include "timer-internal.h"

static struct {
    pthread_mutex_t lock;        /* serialises writers */
    bool enabled[QEMU_CLOCK_MAX]; /* atomic; VIRTUAL's also under seq */
    unsigned seq;                /* atomic; odd while VIRTUAL changes */
    int64_t virt_offset;         /* atomic; running: mono + offset */
    int64_t virt_frozen;         /* atomic; stopped: this value */
} clocks = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .enabled = { true, true, true, true },
};

static int64_t read_os_clock(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool clock_type_valid(QEMUClockType type)
{
    return (unsigned)type < QEMU_CLOCK_MAX;
}

/* A consistent snapshot of the virtual clock. */
static int64_t virtual_read(bool *running)
{
    unsigned s1, s2;
    bool on;
    int64_t value;

    do {
        s1 = __atomic_load_n(&clocks.seq, __ATOMIC_ACQUIRE);
        on = __atomic_load_n(&clocks.enabled[QEMU_CLOCK_VIRTUAL],
                             __ATOMIC_ACQUIRE);
        value = on ? __atomic_load_n(&clocks.virt_offset, __ATOMIC_ACQUIRE)
                   : __atomic_load_n(&clocks.virt_frozen, __ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&clocks.seq, __ATOMIC_ACQUIRE);
    } while ((s1 & 1) || s1 != s2);

    *running = on;
    return on ? read_os_clock(CLOCK_MONOTONIC) + value : value;
}

/* Writer side: caller holds clocks.lock. */
static void virtual_write_begin(void)
{
    __atomic_store_n(&clocks.seq, clocks.seq + 1, __ATOMIC_RELEASE);
}

static void virtual_write_end(void)
{
    __atomic_store_n(&clocks.seq, clocks.seq + 1, __ATOMIC_RELEASE);
}

int64_t aio_clock_read(QEMUClockType type, AioClockState *state)
{
    AioClockState st = AIO_CLOCK_RUNNING;
    int64_t now;
    bool running;

    switch (type) {
    case QEMU_CLOCK_VIRTUAL:
        now = virtual_read(&running);
        st = running ? AIO_CLOCK_RUNNING : AIO_CLOCK_FROZEN;
        break;
    case QEMU_CLOCK_HOST:
        now = read_os_clock(CLOCK_REALTIME);
        break;
    default:
        now = read_os_clock(CLOCK_MONOTONIC);
        break;
    }
    if (state) {
        if (st == AIO_CLOCK_RUNNING &&
            !__atomic_load_n(&clocks.enabled[type], __ATOMIC_ACQUIRE)) {
            st = AIO_CLOCK_OFF;
        }
        *state = st;
    }
    return now;
}

AIOCTX_API int64_t qemu_clock_get_ns(QEMUClockType type)
{
    if (!clock_type_valid(type)) {
        return -1;
    }
    return aio_clock_read(type, NULL);
}

AIOCTX_API int64_t qemu_clock_get_us(QEMUClockType type)
{
    int64_t ns = qemu_clock_get_ns(type);

    return ns < 0 ? ns : ns / SCALE_US;
}

AIOCTX_API int64_t qemu_clock_get_ms(QEMUClockType type)
{
    int64_t ns = qemu_clock_get_ns(type);

    return ns < 0 ? ns : ns / SCALE_MS;
}

/* Stop or restart the virtual clock; caller holds clocks.lock. */
static void virtual_set_running(bool enabled)
{
    int64_t mono = read_os_clock(CLOCK_MONOTONIC);

    virtual_write_begin();
    if (enabled) {
        /* Resume from the frozen value: no jump. */
        __atomic_store_n(&clocks.virt_offset, clocks.virt_frozen - mono,
                         __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&clocks.virt_frozen, mono + clocks.virt_offset,
                         __ATOMIC_RELEASE);
    }
    __atomic_store_n(&clocks.enabled[QEMU_CLOCK_VIRTUAL], enabled,
                     __ATOMIC_RELEASE);
    virtual_write_end();
}

AIOCTX_API void qemu_clock_enable(QEMUClockType type, bool enabled)
{
    bool changed;

    if (!clock_type_valid(type)) {
        return;
    }
    pthread_mutex_lock(&clocks.lock);
    changed = clocks.enabled[type] != enabled;
    if (changed && type == QEMU_CLOCK_VIRTUAL) {
        virtual_set_running(enabled);
    } else if (changed) {
        __atomic_store_n(&clocks.enabled[type], enabled, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&clocks.lock);
    if (changed && enabled) {
        aio_timers_wake_all();
    }
}

AIOCTX_API int64_t qemu_clock_advance_virtual_time(int64_t target_ns)
{
    int64_t now;
    bool running;

    pthread_mutex_lock(&clocks.lock);
    now = virtual_read(&running);
    if (target_ns > now) {
        virtual_write_begin();
        if (running) {
            __atomic_store_n(&clocks.virt_offset,
                             clocks.virt_offset + (target_ns - now),
                             __ATOMIC_RELEASE);
        } else {
            __atomic_store_n(&clocks.virt_frozen, target_ns, __ATOMIC_RELEASE);
        }
        virtual_write_end();
        now = target_ns;
    }
    pthread_mutex_unlock(&clocks.lock);
    aio_timers_wake_all();
    return now;
}
