/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Error API, the log handler and EventNotifier.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-util.h"

START_TEST(test_setg_message)
{
    Error *err = NULL;

    error_setg(&err, "bad value %d in %s", 42, "field");
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(error_get_pretty(err), "bad value 42 in field");
    ck_assert_int_eq(error_get_errno(err), 0);
    error_free(err);
}
END_TEST

START_TEST(test_setg_errno_message)
{
    Error *err = NULL;

    error_setg_errno(&err, ENOENT, "cannot open %s", "x");
    ck_assert_str_eq(error_get_pretty(err),
                     "cannot open x: No such file or directory");
    ck_assert_int_eq(error_get_errno(err), ENOENT);
    error_free(err);

    err = NULL;
    error_setg_errno(&err, -EPERM, "io_uring");
    ck_assert_str_eq(error_get_pretty(err),
                     "io_uring: Operation not permitted");
    error_free(err);
}
END_TEST

START_TEST(test_null_errp_and_propagate)
{
    Error *local = NULL, *dst = NULL;

    error_setg(NULL, "dropped");
    error_setg(&local, "first");
    error_propagate(&dst, local);
    ck_assert_str_eq(error_get_pretty(dst), "first");

    /* A second error into an occupied slot is dropped, not leaked. */
    local = NULL;
    error_setg(&local, "second");
    error_propagate(&dst, local);
    ck_assert_str_eq(error_get_pretty(dst), "first");
    error_propagate(NULL, NULL);
    error_free(dst);
    error_free(NULL);
}
END_TEST

START_TEST(test_error_abort_aborts)
{
    error_setg(&error_abort, "must abort");
}
END_TEST

START_TEST(test_error_fatal_exits)
{
    error_setg(&error_fatal, "must exit");
}
END_TEST

/* ---- the log handler ---- */

typedef struct {
    int calls;
    AioLogLevel level;
    char msg[128];
} LogSeen;

static void log_record(AioLogLevel level, const char *msg, void *opaque)
{
    LogSeen *seen = opaque;

    seen->calls++;
    seen->level = level;
    snprintf(seen->msg, sizeof(seen->msg), "%s", msg);
}

/* Run fn in a child with stderr on a pipe; returns what it wrote. */
static int child_stderr(void (*fn)(void), char *out, size_t size, int *status)
{
    int p[2];
    pid_t pid;
    ssize_t n, total = 0;

    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        fn();
        _exit(0);
    }
    close(p[1]);
    while ((n = read(p[0], out + total, size - 1 - total)) > 0 ||
           (n < 0 && errno == EINTR)) {
        total += n > 0 ? n : 0;
    }
    out[total] = '\0';
    close(p[0]);
    ck_assert_int_eq(test_waitpid(pid, status, 0), pid);
    return (int)total;
}

static void abort_with_message(void)
{
    error_setg(&error_abort, "the disk is on fire");
}

static void fatal_to_handler(void)
{
    aio_log_set_handler(aio_log_to_stderr, NULL, AIO_LOG_WARNING);
    error_setg(&error_abort, "the disk is on fire");
}

START_TEST(test_log_silent_by_default)
{
    char out[256];
    int status;

    /* No handler: the abort says nothing on the terminal. */
    ck_assert_int_eq(
        child_stderr(abort_with_message, out, sizeof(out), &status), 0);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);

    /* The ready-made handler prints the reason first. */
    child_stderr(fatal_to_handler, out, sizeof(out), &status);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    ck_assert_str_eq(
        out, "libaioctx: fatal: unexpected error: the disk is on fire\n");
}
END_TEST

START_TEST(test_log_handler_gets_reports)
{
    LogSeen seen = { 0 };
    Error *err = NULL;

    /* error_report_err() goes to the handler whatever its level. */
    aio_log_set_handler(log_record, &seen, AIO_LOG_FATAL);
    error_setg(&err, "cannot open %s", "w6.dat");
    error_report_err(err);
    ck_assert_int_eq(seen.calls, 1);
    ck_assert_int_eq(seen.level, AIO_LOG_ERROR);
    ck_assert_str_eq(seen.msg, "cannot open w6.dat");

    /* Removed: nothing more arrives. */
    aio_log_set_handler(NULL, NULL, AIO_LOG_DEBUG);
    err = NULL;
    error_setg(&err, "again");
    error_free(err);
    ck_assert_int_eq(seen.calls, 1);
}
END_TEST

/* aio_context_get_pollfd() follows the int convention: -errno, errno kept. */
START_TEST(test_pollfd_null_context)
{
    AioContext *ctx = test_ctx_new();
    int fd;

    errno = 0;
    ck_assert_int_eq(aio_context_get_pollfd(NULL), -EINVAL);
    ck_assert_int_eq(errno, 0);
    fd = aio_context_get_pollfd(ctx);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(aio_context_get_pollfd(ctx), fd);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_notifier_set_clear)
{
    EventNotifier e;
    struct pollfd pfd;

    ck_assert_int_eq(event_notifier_init(&e, 0), 0);
    ck_assert_int_ge(event_notifier_get_fd(&e), 0);
    ck_assert_int_eq(event_notifier_test_and_clear(&e), 0);
    ck_assert_int_eq(event_notifier_set(&e), 0);
    ck_assert_int_eq(event_notifier_set(&e), 0);
    pfd = (struct pollfd){ .fd = event_notifier_get_fd(&e), .events = POLLIN };
    ck_assert_int_eq(poll(&pfd, 1, 0), 1);
    ck_assert_int_eq(event_notifier_test_and_clear(&e), 1);
    ck_assert_int_eq(event_notifier_test_and_clear(&e), 0);
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    event_notifier_cleanup(&e);
    event_notifier_cleanup(&e); /* idempotent */
    ck_assert_int_eq(event_notifier_get_fd(&e), -1);
}
END_TEST

START_TEST(test_notifier_active)
{
    EventNotifier e;

    ck_assert_int_eq(event_notifier_init(&e, 1), 0);
    ck_assert_int_eq(event_notifier_test_and_clear(&e), 1);
    ck_assert_int_eq(event_notifier_set(&e), 0);
    event_notifier_cleanup(&e);
    ck_assert_int_eq(event_notifier_set(&e), -EBADF);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("error");

    tcase_add_test(tc, test_setg_message);
    tcase_add_test(tc, test_setg_errno_message);
    tcase_add_test(tc, test_null_errp_and_propagate);
    tcase_add_test_raise_signal(tc, test_error_abort_aborts, SIGABRT);
    tcase_add_exit_test(tc, test_error_fatal_exits, 1);
    tcase_add_test(tc, test_log_silent_by_default);
    tcase_add_test(tc, test_log_handler_gets_reports);
    tcase_add_test(tc, test_pollfd_null_context);
    suite_add_tcase(s, tc);

    tc = tcase_create("event-notifier");
    tcase_add_test(tc, test_notifier_set_clear);
    tcase_add_test(tc, test_notifier_active);
    suite_add_tcase(s, tc);
    return test_main(s);
}
