/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Error objects: a formatted message plus the errno that caused it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aioctx/error.h"
#include "log-internal.h"

struct Error {
    char *msg;
    int os_errno;
};

AIOCTX_API Error *error_abort;
AIOCTX_API Error *error_fatal;

static void error_deliver(Error **errp, Error *err)
{
    if (errp == &error_abort) {
        aio_fatal("unexpected error: %s", err->msg);
    }
    if (errp == &error_fatal) {
        error_report_err(err);
        exit(1);
    }
    if (!errp || *errp) {
        error_free(err);
        return;
    }
    *errp = err;
}

/*
 * What a failure is reported with when there is no memory left for its own
 * Error: shared, never freed, its message says what happened.
 */
static Error error_oom = {
    .msg = (char *)"out of memory (while reporting an error)",
    .os_errno = ENOMEM,
};

static Error *error_vnew(int os_errno, const char *fmt, va_list ap)
{
    Error *err = calloc(1, sizeof(*err));
    char *msg = NULL;

    if (!err || vasprintf(&msg, fmt, ap) < 0) {
        free(err);
        return &error_oom;
    }
    if (os_errno) {
        char *full = NULL;

        /* Without memory for the suffix, the message alone still tells. */
        if (asprintf(&full, "%s: %s", msg, strerror(os_errno)) >= 0) {
            free(msg);
            msg = full;
        }
    }
    err->msg = msg;
    err->os_errno = os_errno;
    return err;
}

AIOCTX_API void error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;

    if (!errp) {
        return;
    }
    va_start(ap, fmt);
    error_deliver(errp, error_vnew(0, fmt, ap));
    va_end(ap);
}

AIOCTX_API void error_setg_errno(Error **errp, int os_errno, const char *fmt,
                                 ...)
{
    va_list ap;

    if (!errp) {
        return;
    }
    va_start(ap, fmt);
    error_deliver(errp,
                  error_vnew(os_errno < 0 ? -os_errno : os_errno, fmt, ap));
    va_end(ap);
}

AIOCTX_API void error_propagate(Error **dst_errp, Error *local_err)
{
    if (local_err) {
        error_deliver(dst_errp, local_err);
    }
}

AIOCTX_API const char *error_get_pretty(const Error *err)
{
    return err ? err->msg : "";
}

AIOCTX_API int error_get_errno(const Error *err)
{
    return err ? err->os_errno : 0;
}

AIOCTX_API void error_report_err(Error *err)
{
    if (!err) {
        return;
    }
    /* The caller asked for the report: the log handler, else stderr. */
    if (!aio_log_report(err->msg)) {
        fprintf(stderr, "error: %s\n", err->msg);
    }
    error_free(err);
}

AIOCTX_API void error_free(Error *err)
{
    if (!err || err == &error_oom) {
        return;
    }
    free(err->msg);
    free(err);
}
