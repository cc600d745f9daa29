/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Diagnostics through the handler the program installs (aioctx/log.h).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log-internal.h"

/* The handler and its argument change together, under the lock. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static AioLogFunc *log_fn;
static void *log_opaque;
static AioLogLevel log_max = AIO_LOG_WARNING;

AIOCTX_API void aio_log_set_handler(AioLogFunc *fn, void *opaque,
                                    AioLogLevel max_level)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_opaque = opaque;
    log_max = max_level;
    pthread_mutex_unlock(&log_lock);
}

AIOCTX_API void aio_log_to_stderr(AioLogLevel level, const char *msg,
                                  void *opaque)
{
    static const char *const names[] = { "fatal", "error", "warning", "debug" };

    (void)opaque;
    fprintf(stderr, "libaioctx: %s: %s\n",
            (unsigned)level < 4 ? names[level] : "?", msg);
}

static void log_va(AioLogLevel level, const char *fmt, va_list ap)
{
    char msg[512];
    AioLogFunc *fn;
    void *opaque;

    pthread_mutex_lock(&log_lock);
    fn = level <= log_max ? log_fn : NULL;
    opaque = log_opaque;
    pthread_mutex_unlock(&log_lock);
    if (!fn) {
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    fn(level, msg, opaque);
}

bool aio_log_report(const char *msg)
{
    AioLogFunc *fn;
    void *opaque;

    pthread_mutex_lock(&log_lock);
    fn = log_fn;
    opaque = log_opaque;
    pthread_mutex_unlock(&log_lock);
    if (fn) {
        fn(AIO_LOG_ERROR, msg, opaque);
    }
    return fn != NULL;
}

void aio_log(AioLogLevel level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_va(level, fmt, ap);
    va_end(ap);
}

void aio_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_va(AIO_LOG_FATAL, fmt, ap);
    va_end(ap);
    abort();
}
