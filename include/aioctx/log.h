/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: diagnostics.
 *
 * The library never writes to the program's terminal.  Failures reach the
 * caller (Error, or a negative errno); what is left - a condition the
 * library worked around, or the reason for an abort() on a programming
 * error or on memory exhaustion where the API cannot report it - goes to
 * a handler that the program installs.  With none installed, nothing is
 * written anywhere.
 */
#ifndef AIOCTX_LOG_H
#define AIOCTX_LOG_H

#include <aioctx/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum AioLogLevel {
    AIO_LOG_FATAL,   /* the library aborts right after the message */
    AIO_LOG_ERROR,   /* something failed that no caller could be told of */
    AIO_LOG_WARNING, /* something unexpected that was worked around */
    AIO_LOG_DEBUG,   /* details for whoever debugs the library */
} AioLogLevel;

/*
 * A log handler: msg is one line without a trailing newline, valid only
 * during the call.  It may be called from any thread, with library locks
 * held: it must not call back into libaioctx.
 */
typedef void AioLogFunc(AioLogLevel level, const char *msg, void *opaque);

/*
 * Install fn (NULL: discard everything, the default) to receive messages
 * at max_level and more severe ones.  Any thread; a message being passed
 * to the previous handler at the same time may still reach it.
 */
AIOCTX_API void aio_log_set_handler(AioLogFunc *fn, void *opaque,
                                    AioLogLevel max_level);

/*
 * A ready-made handler that writes "libaioctx: <level>: <msg>" lines to
 * stderr, for programs that want the messages on their terminal
 * (aio_log_set_handler(aio_log_to_stderr, NULL, AIO_LOG_WARNING)).
 */
AIOCTX_API void aio_log_to_stderr(AioLogLevel level, const char *msg,
                                  void *opaque);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_LOG_H */
