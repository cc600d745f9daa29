/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Error API and EventNotifier.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
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
    suite_add_tcase(s, tc);

    tc = tcase_create("event-notifier");
    tcase_add_test(tc, test_notifier_set_clear);
    tcase_add_test(tc, test_notifier_active);
    suite_add_tcase(s, tc);
    return test_main(s);
}
