/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An AioContext embedded in foreign loops, as processes: examples/embed-glib
 * (a GSource on glib's default GMainContext) and examples/embed-uv (uv_poll,
 * uv_prepare, uv_check and a uv_timer on libuv's default loop), each run on
 * $AIOCTX_ENGINE.  Each must run every kind of work through the embedding
 * (bottom halves from its own thread and from another one, a timer, an fd
 * handler, a coroutine sleeping and doing file I/O) and then sit idle
 * without spinning.
 *
 * The idle check: IDLE_MS of idleness must cost under 5% of its wall time
 * in CPU and take at most MAX_IDLE_ITERATIONS loop iterations.  Two
 * seconds are enough to tell a loop that sleeps from one that spins or
 * wakes up periodically: a spin burns the whole 2000 ms of CPU, and even a
 * slow periodic wake-up (every 100 ms, say) shows up as 20 iterations,
 * where a sleeping loop has 1 or 2 (the foreign loop's own end-of-idle
 * timer).  A minute would tell nothing more and cost a minute per engine
 * and program in CI.  Which program paths exist comes from CMake
 * (EMBED_GLIB_PATH, EMBED_UV_PATH: each only when its library was found).
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "test-spawn.h"
#include "test-util.h"

#define IDLE_MS 2000
#define MAX_IDLE_ITERATIONS 5

static void check_embedding(const char *prog, const char *loop_name)
{
    const char *engine = getenv("AIOCTX_ENGINE");
    const char *argv[6] = { prog, "--idle", "2000", NULL, NULL, NULL };
    char want[128];
    const char *at;
    double wall, cpu, pct;
    unsigned iterations;
    Spawn sp;

    ck_assert_int_eq(IDLE_MS, atoi(argv[2]));
    if (engine && *engine) {
        argv[3] = "--engine";
        argv[4] = engine;
    }
    spawn_start(&sp, argv);
    ck_assert_int_eq(spawn_wait(&sp), 0);
    if (engine && *engine) {
        snprintf(want, sizeof(want), "engine %s,", engine);
        spawn_expect(&sp, want);
    }
    spawn_expect(&sp, "] bottom half ran");
    spawn_expect(&sp, "] bottom half scheduled by another thread ran");
    spawn_expect(&sp, "] timer fired");
    spawn_expect(&sp, "] fd handler read the pipe");
    spawn_expect(&sp, "] coroutine slept, then wrote, flushed and read back "
                      "4096 bytes");
    snprintf(want, sizeof(want), "all 5 steps ran through %s", loop_name);
    spawn_expect(&sp, want);
    spawn_expect(&sp, "5 of 5 steps done");

    at = spawn_expect(&sp, "idle: wall ");
    ck_assert_int_eq(sscanf(at, "idle: wall %lf ms, cpu %lf ms (%lf%%), %u",
                            &wall, &cpu, &pct, &iterations), 4);
    ck_assert_msg(wall >= IDLE_MS - 5, "idle for %.0f ms only", wall);
    ck_assert_msg(cpu < wall * 0.05,
                  "%s spins: %.1f ms of CPU in %.0f ms idle", prog, cpu, wall);
    ck_assert_msg(iterations <= MAX_IDLE_ITERATIONS,
                  "%s wakes up while idle: %u loop iterations in %.0f ms",
                  prog, iterations, wall);
}

#ifdef EMBED_GLIB_PATH
START_TEST(test_embed_glib)
{
    check_embedding(EMBED_GLIB_PATH, "glib");
}
END_TEST
#endif

#ifdef EMBED_UV_PATH
START_TEST(test_embed_uv)
{
    check_embedding(EMBED_UV_PATH, "libuv");
}
END_TEST
#endif

/* Bad options are refused with the usage text; --help prints it. */
static void check_usage(const char *prog)
{
    const char *bad[] = { prog, "--idle", "x", NULL };
    const char *extra[] = { prog, "surplus", NULL };
    const char *help[] = { prog, "--help", NULL };
    const char *engine[] = { prog, "--engine", "nonesuch", NULL };
    Spawn sp;

    ck_assert_int_eq(spawn_run(&sp, bad), 2);
    spawn_expect(&sp, "bad idle time 'x'");
    ck_assert_int_eq(spawn_run(&sp, extra), 2);
    spawn_expect(&sp, "usage:");
    ck_assert_int_eq(spawn_run(&sp, help), 0);
    spawn_expect(&sp, "--idle MS");
    ck_assert_int_eq(spawn_run(&sp, engine), 1);
    spawn_expect(&sp, "unknown engine 'nonesuch'");
}

START_TEST(test_usage)
{
#ifdef EMBED_GLIB_PATH
    check_usage(EMBED_GLIB_PATH);
#endif
#ifdef EMBED_UV_PATH
    check_usage(EMBED_UV_PATH);
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("foreign loops");

    tcase_set_timeout(tc, 60);
#ifdef EMBED_GLIB_PATH
    tcase_add_test(tc, test_embed_glib);
#endif
#ifdef EMBED_UV_PATH
    tcase_add_test(tc, test_embed_uv);
#endif
    tcase_add_test(tc, test_usage);
    suite_add_tcase(s, tc);
    return test_main(s);
}
