/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: error reporting in QEMU's Error style.
 *
 * A function that can fail takes "Error **errp" as its last argument.  On
 * failure it stores a newly allocated Error in *errp (if errp is not NULL);
 * the caller then owns it and must error_free() it or hand it on with
 * error_propagate().  Pass &error_abort to abort on failure (the message
 * goes to the log handler of aioctx/log.h), &error_fatal to report the
 * message with error_report_err() and exit(1), or NULL to ignore the
 * error.  When memory runs out while an error is being made, *errp gets a
 * shared error instead, "out of memory (while reporting an error)" with
 * errno ENOMEM, which error_free() accepts like any other: reporting a
 * failure never aborts.
 *
 * Every function here may be called from any thread.
 *
 * The library's error conventions, stated once (each header says which
 * applies to its functions):
 *  - creating something that can fail for reasons outside the program
 *    (contexts, IOThreads, Linux AIO and io_uring states) takes
 *    Error **errp and returns NULL or false on failure;
 *  - calls that return int (or ssize_t) report failure as a negative errno
 *    value (-EINVAL for bad arguments) and never set errno;
 *  - calls that cannot fail with valid arguments return void; misuse that
 *    cannot be reported (a NULL context, a BH used after deletion) is a
 *    programming error: logged through aioctx/log.h, then abort().
 */
#ifndef AIOCTX_ERROR_H
#define AIOCTX_ERROR_H

#include <stdbool.h>
#include <aioctx/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Error Error;

/* Pass &error_abort as errp: a failure logs its message and aborts. */
AIOCTX_API extern Error *error_abort;
/* Pass &error_fatal as errp: a failure reports its message, exit(1). */
AIOCTX_API extern Error *error_fatal;

/*
 * Store a new error with a printf-formatted message in *errp.
 * errp may be NULL (the error is dropped).  *errp must be NULL on entry.
 */
AIOCTX_API void error_setg(Error **errp, const char *fmt, ...)
    AIOCTX_PRINTF(2, 3);

/*
 * Like error_setg(), then append ": " and strerror(os_errno) to the message.
 * os_errno is a positive errno value (a negative one is accepted too).
 */
AIOCTX_API void error_setg_errno(Error **errp, int os_errno, const char *fmt,
                                 ...) AIOCTX_PRINTF(3, 4);

/*
 * Move local_err into *dst_errp.  If dst_errp is NULL, or *dst_errp already
 * holds an error, local_err is freed instead.  local_err may be NULL.
 */
AIOCTX_API void error_propagate(Error **dst_errp, Error *local_err);

/* Return the human-readable message of err (owned by err). */
AIOCTX_API const char *error_get_pretty(const Error *err);

/*
 * Return the errno value given to error_setg_errno() (positive), or 0 when
 * the error was made by error_setg().  libaioctx's own addition.
 */
AIOCTX_API int error_get_errno(const Error *err);

/*
 * Report err, then free it: to the log handler (aioctx/log.h) at
 * AIO_LOG_ERROR when one is installed, else to stderr with an "error: "
 * prefix - the one place the library writes there, because the caller
 * asked for exactly that.  NULL does nothing.
 */
AIOCTX_API void error_report_err(Error *err);

/* Free err.  NULL is accepted and ignored. */
AIOCTX_API void error_free(Error *err);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_ERROR_H */
