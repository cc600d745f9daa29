/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the Check suites.
 */
#ifndef AIOCTX_TEST_UTIL_H
#define AIOCTX_TEST_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <aioctx.h>

#include "test-sys.h"

/* A context on the engine named by $AIOCTX_ENGINE (or the default). */
static inline AioContext *test_ctx_new(void)
{
    Error *err = NULL;
    AioContext *ctx = aio_context_new(&err);

    ck_assert_msg(ctx != NULL, "aio_context_new failed: %s",
                  err ? error_get_pretty(err) : "(no error)");
    return ctx;
}

/* Drain whatever aio_notify() left behind; fails if real work ran. */
static inline void test_consume_notify(AioContext *ctx)
{
    ck_assert(!aio_poll(ctx, false));
}

/* How long the test_poll_until_*() helpers wait before failing. */
#define TEST_GIVE_UP_NS (30LL * 1000 * 1000 * 1000)

/*
 * Blocking aio_poll() until *counter (read with acquire, so another thread
 * may write it) is at least want; false when that takes give_up_ns.
 */
static inline bool test_poll_until_ge_within(AioContext *ctx,
                                             const int *counter, int want,
                                             int64_t give_up_ns)
{
    int64_t end = test_now_ns() + give_up_ns;

    while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < want) {
        if (test_now_ns() >= end) {
            return false;
        }
        aio_poll(ctx, true);
    }
    return true;
}

/* As test_poll_until_ge_within(), failing the test after TEST_GIVE_UP_NS. */
static inline void test_poll_until_ge(AioContext *ctx, const int *counter,
                                      int want)
{
    ck_assert_msg(test_poll_until_ge_within(ctx, counter, want,
                                            TEST_GIVE_UP_NS),
                  "timed out at %d of %d",
                  __atomic_load_n(counter, __ATOMIC_ACQUIRE), want);
}

/* Blocking aio_poll() until *pending is 0; false after give_up_ns. */
static inline bool test_poll_until_zero_within(AioContext *ctx,
                                               const int *pending,
                                               int64_t give_up_ns)
{
    int64_t end = test_now_ns() + give_up_ns;

    while (__atomic_load_n(pending, __ATOMIC_ACQUIRE) > 0) {
        if (test_now_ns() >= end) {
            return false;
        }
        aio_poll(ctx, true);
    }
    return true;
}

/* As test_poll_until_zero_within(), failing after TEST_GIVE_UP_NS. */
static inline void test_poll_until_zero(AioContext *ctx, const int *pending)
{
    ck_assert_msg(test_poll_until_zero_within(ctx, pending, TEST_GIVE_UP_NS),
                  "timed out, %d pending",
                  __atomic_load_n(pending, __ATOMIC_ACQUIRE));
}

/* Non-blocking aio_poll() until idle; returns how many polls progressed. */
static inline int test_poll_until_idle(AioContext *ctx)
{
    int n = 0;

    while (aio_poll(ctx, false)) {
        n++;
    }
    return n;
}

/*
 * Run suite s; exits 77 (skipped) when the requested engine is not
 * available here or no case applies to it, else 0 when every test passed
 * and 1 otherwise.
 */
static inline int test_main(Suite *s)
{
    const char *engine = getenv("AIOCTX_ENGINE");
    SRunner *sr;
    int failed, ran;

    if (engine && *engine && !aio_engine_available(engine)) {
        printf("engine %s is not available here: skipped\n", engine);
        return 77;
    }
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    ran = srunner_ntests_run(sr);
    srunner_free(sr);
    if (!failed && ran == 0) {
        printf("no case applies to this engine: skipped\n");
        return 77;
    }
    return failed ? 1 : 0;
}

#endif /* AIOCTX_TEST_UTIL_H */
