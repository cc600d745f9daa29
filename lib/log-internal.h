/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How lib/ reports what no caller can be told (see aioctx/log.h).  Never
 * write to stdout or stderr from lib/: use these.
 */
#ifndef AIOCTX_LOG_INTERNAL_H
#define AIOCTX_LOG_INTERNAL_H

#include <stdbool.h>

#include "aioctx/log.h"

/*
 * error_report_err(): hand msg to the handler at AIO_LOG_ERROR whatever
 * its level; false when no handler is installed.
 */
bool aio_log_report(const char *msg);

/* Pass a message to the program's handler, if it wants this level. */
void aio_log(AioLogLevel level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log at AIO_LOG_FATAL, then abort(). */
void aio_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif /* AIOCTX_LOG_INTERNAL_H */
