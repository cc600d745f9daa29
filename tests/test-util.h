/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the Check suites.
 */
#ifndef AIOCTX_TEST_UTIL_H
#define AIOCTX_TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include <aioctx.h>

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

/*
 * Run suite s; exits 77 (skipped) when the requested engine is not
 * available here, else 0 when every test passed and 1 otherwise.
 */
static inline int test_main(Suite *s)
{
    const char *engine = getenv("AIOCTX_ENGINE");
    SRunner *sr;
    int failed;

    if (engine && *engine && !aio_engine_available(engine)) {
        printf("engine %s is not available here: skipped\n", engine);
        return 77;
    }
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif /* AIOCTX_TEST_UTIL_H */
