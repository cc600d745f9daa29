/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
/*
 * Loop metrics (aioctx/stats.h): every counter moves by exactly what the
 * loop did, on every engine, and the size argument keeps old and new
 * callers apart.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "test-util.h"

static AioContextStats stats_of(AioContext *ctx)
{
    AioContextStats s;

    ck_assert_int_eq(aio_context_get_stats(ctx, &s, sizeof(s)), 0);
    return s;
}

static void count_cb(void *opaque)
{
    (*(int *)opaque)++;
}

START_TEST(test_fresh_context_is_zero)
{
    AioContext *ctx = test_ctx_new();
    AioContextStats s = stats_of(ctx), zero = { 0 };

    ck_assert_int_eq(memcmp(&s, &zero, sizeof(s)), 0);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_bad_arguments)
{
    AioContext *ctx = test_ctx_new();
    AioContextStats s;

    ck_assert_int_eq(aio_context_get_stats(NULL, &s, sizeof(s)), -EINVAL);
    ck_assert_int_eq(aio_context_get_stats(ctx, NULL, sizeof(s)), -EINVAL);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_iterations_and_bottom_halves)
{
    AioContext *ctx = test_ctx_new();
    AioContextStats before, after;
    int ran = 0;

    before = stats_of(ctx);
    for (int i = 0; i < 3; i++) {
        aio_bh_schedule_oneshot(ctx, count_cb, &ran);
    }
    ck_assert(aio_poll(ctx, false));
    ck_assert(!aio_poll(ctx, false));
    after = stats_of(ctx);
    ck_assert_int_eq(ran, 3);
    ck_assert_uint_eq(after.bh_runs - before.bh_runs, 3);
    ck_assert_uint_eq(after.iterations - before.iterations, 2);
    ck_assert_uint_eq(after.waits, before.waits); /* nothing slept */
    aio_context_unref(ctx);
}
END_TEST

static void read_byte(void *opaque)
{
    int *fds = opaque;
    char c;

    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    fds[2]++;
}

START_TEST(test_fd_dispatches)
{
    AioContext *ctx = test_ctx_new();
    AioContextStats before, after;
    int fds[3] = { -1, -1, 0 };

    ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    aio_set_fd_handler(ctx, fds[0], read_byte, NULL, NULL, NULL, fds);
    before = stats_of(ctx);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(write(fds[1], "x", 1), 1);
        ck_assert(aio_poll(ctx, true));
    }
    after = stats_of(ctx);
    ck_assert_int_eq(fds[2], 4);
    ck_assert_uint_eq(after.fd_dispatches - before.fd_dispatches, 4);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}
END_TEST

static void timer_cb(void *opaque)
{
    (*(int *)opaque)++;
}

START_TEST(test_timers)
{
    AioContext *ctx = test_ctx_new();
    AioContextStats before, after;
    QEMUTimer *a, *b;
    int fired = 0;
    int64_t t0;

    a = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, timer_cb, &fired);
    b = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, timer_cb, &fired);
    before = stats_of(ctx);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    timer_mod_ns(a, t0 + 2 * 1000000);
    timer_mod_ns(b, t0 + 2 * 1000000);
    while (fired < 2) {
        aio_poll(ctx, true);
    }
    after = stats_of(ctx);
    ck_assert_uint_eq(after.timers_fired - before.timers_fired, 2);
    timer_free(a);
    timer_free(b);
    aio_context_unref(ctx);
}
END_TEST

typedef struct LateBh {
    QEMUBH *bh;
    int delay_ms;
} LateBh;

static void *late_bh_thread(void *opaque)
{
    LateBh *lb = opaque;
    struct timespec ts = { 0, lb->delay_ms * 1000000L };

    while (nanosleep(&ts, &ts) < 0) {
        continue; /* EINTR: sleep for what is left */
    }
    qemu_bh_schedule(lb->bh);
    return NULL;
}

/*
 * Nothing is armed: a blocking aio_poll() can only sleep until the bottom
 * half another thread schedules, so it counts one wait, of some time.
 */
START_TEST(test_waits)
{
    AioContext *ctx = test_ctx_new();
    AioContextStats before, after;
    int ran = 0;
    LateBh lb = { .bh = aio_bh_new(ctx, count_cb, &ran), .delay_ms = 10 };
    pthread_t th;

    before = stats_of(ctx);
    ck_assert_int_eq(pthread_create(&th, NULL, late_bh_thread, &lb), 0);
    while (!ran) {
        aio_poll(ctx, true);
    }
    pthread_join(th, NULL);
    after = stats_of(ctx);
    ck_assert_uint_ge(after.waits - before.waits, 1);
    ck_assert_uint_gt(after.wait_ns - before.wait_ns, 0);
    ck_assert_uint_eq(after.bh_runs - before.bh_runs, 1);
    qemu_bh_delete(lb.bh);
    aio_context_unref(ctx);
}
END_TEST

static bool poll_true(void *opaque)
{
    (void)opaque;
    return true;
}

static bool poll_false(void *opaque)
{
    (void)opaque;
    return false;
}

static void nothing(void *opaque)
{
    (void)opaque;
}

START_TEST(test_busy_poll_hits_and_misses)
{
    AioContext *ctx = test_ctx_new();
    AioContextStats before, after;
    QEMUTimer *t;
    int fds[2], fired = 0;

    ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    aio_context_set_poll_params(ctx, 1000 * 1000, 2, 2, &error_abort);

    /*
     * io_poll says "ready" at once.  Busy-polling starts once the adaptive
     * poll time has grown (after short waits): from then on, hits.
     */
    aio_set_fd_handler(ctx, fds[0], nothing, NULL, poll_true, nothing, NULL);
    before = stats_of(ctx);
    for (int i = 0; i < 100 && stats_of(ctx).poll_hits == before.poll_hits;
         i++) {
        aio_poll(ctx, true);
    }
    after = stats_of(ctx);
    ck_assert_uint_ge(after.poll_hits - before.poll_hits, 1);
    ck_assert_uint_eq(after.poll_misses, before.poll_misses);

    /*
     * io_poll never ready, timers 200 us apart (under the 1 ms maximum, so
     * the poll time grows): polling gives up before each deadline, a miss.
     */
    aio_set_fd_handler(ctx, fds[0], nothing, NULL, poll_false, nothing, NULL);
    t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_US, timer_cb, &fired);
    before = stats_of(ctx);
    for (int i = 0; i < 100 && stats_of(ctx).poll_misses == before.poll_misses;
         i++) {
        timer_mod(t, qemu_clock_get_us(QEMU_CLOCK_REALTIME) + 200);
        for (int want = fired + 1; fired < want;) {
            aio_poll(ctx, true);
        }
    }
    after = stats_of(ctx);
    ck_assert_uint_ge(after.poll_misses - before.poll_misses, 1);
    ck_assert_uint_eq(after.timers_fired - before.timers_fired,
                      (uint64_t)fired);

    timer_free(t);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL, NULL);
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
}
END_TEST

static void file_done(void *opaque, int ret)
{
    *(int *)opaque = ret;
}

START_TEST(test_file_requests)
{
    AioContext *ctx = test_ctx_new();
    char path[] = "/tmp/aioctx-stats-XXXXXX", buf[64];
    struct iovec iov = { buf, sizeof(buf) };
    AioContextStats s;
    int fd = mkstemp(path), ret = 1;

    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(pwrite(fd, "0123456789", 10, 0), 10);
    ck_assert_ptr_nonnull(aio_file_preadv(ctx, fd, 0, &iov, 1, file_done, &ret));
    s = stats_of(ctx);
    ck_assert_uint_eq(s.file_submitted, 1);
    ck_assert_uint_eq(s.file_in_flight, 1);
    ck_assert_uint_eq(s.file_completed, 0);
    while (ret == 1) {
        aio_poll(ctx, true);
    }
    ck_assert_int_eq(ret, 10);
    s = stats_of(ctx);
    ck_assert_uint_eq(s.file_submitted, 1);
    ck_assert_uint_eq(s.file_completed, 1);
    ck_assert_uint_eq(s.file_in_flight, 0);
    close(fd);
    aio_context_unref(ctx);
}
END_TEST

static sem_t job_gate;

static int blocked_job(void *opaque)
{
    (void)opaque;
    while (sem_wait(&job_gate) < 0 && errno == EINTR) {
        continue;
    }
    return 7;
}

static void job_done(void *opaque, int ret)
{
    ck_assert_int_eq(ret, 7);
    (*(int *)opaque)++;
}

START_TEST(test_thread_pool_jobs)
{
    AioContext *ctx = test_ctx_new();
    AioContextStats s;
    int done = 0;

    ck_assert_int_eq(sem_init(&job_gate, 0, 0), 0);
    qemu_set_current_aio_context(ctx);
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(
            thread_pool_submit_aio(blocked_job, NULL, job_done, &done));
    }
    s = stats_of(ctx);
    ck_assert_uint_eq(s.pool_submitted, 3);
    ck_assert_uint_eq(s.pool_completed, 0);
    ck_assert_uint_eq(s.pool_queued + s.pool_running, 3);
    for (int i = 0; i < 3; i++) {
        sem_post(&job_gate);
    }
    while (done < 3) {
        aio_poll(ctx, true);
    }
    s = stats_of(ctx);
    ck_assert_uint_eq(s.pool_submitted, 3);
    ck_assert_uint_eq(s.pool_completed, 3);
    ck_assert_uint_eq(s.pool_queued + s.pool_running, 0);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
    sem_destroy(&job_gate);
}
END_TEST

/* A caller built against a shorter struct gets only what it knows. */
START_TEST(test_size_shorter_and_longer)
{
    AioContext *ctx = test_ctx_new();
    unsigned char buf[sizeof(AioContextStats) + 32];
    AioContextStats *s = (AioContextStats *)buf;
    size_t old = offsetof(AioContextStats, bh_runs);
    int ran = 0;

    aio_bh_schedule_oneshot(ctx, count_cb, &ran);
    aio_poll(ctx, false);

    memset(buf, 0xaa, sizeof(buf));
    ck_assert_int_eq(aio_context_get_stats(ctx, s, old), 0);
    ck_assert_uint_eq(s->iterations, 1);
    for (size_t i = old; i < sizeof(buf); i++) {
        ck_assert_uint_eq(buf[i], 0xaa);
    }

    memset(buf, 0xaa, sizeof(buf));
    ck_assert_int_eq(aio_context_get_stats(ctx, s, sizeof(buf)), 0);
    ck_assert_uint_eq(s->bh_runs, 1);
    for (size_t i = sizeof(AioContextStats); i < sizeof(buf); i++) {
        ck_assert_uint_eq(buf[i], 0);
    }
    aio_context_unref(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("counters");

    tcase_add_test(tc, test_fresh_context_is_zero);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_iterations_and_bottom_halves);
    tcase_add_test(tc, test_fd_dispatches);
    tcase_add_test(tc, test_timers);
    tcase_add_test(tc, test_waits);
    tcase_add_test(tc, test_busy_poll_hits_and_misses);
    tcase_add_test(tc, test_file_requests);
    tcase_add_test(tc, test_thread_pool_jobs);
    tcase_add_test(tc, test_size_shorter_and_longer);
    suite_add_tcase(s, tc);
    return test_main(s);
}
