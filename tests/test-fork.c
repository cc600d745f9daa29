/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fork() with a live context: the child leaves the inherited context
 * alone (see aioctx/aio.h) and creates a fresh one, on which bottom
 * halves, fd handlers, timers, the thread pool and file I/O work; the
 * parent's context keeps working, undisturbed by the child.
 */
#define _GNU_SOURCE /* pipe2, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-util.h"

typedef struct State {
    int bh_runs;
    int reads;
    int rfd;
    char buf[32];
    int timer_runs;
    int io_done;
    int io_ret;
    int pool_done;
    int pool_ret;
} State;

static void on_bh(void *opaque)
{
    ((State *)opaque)->bh_runs++;
}

static void on_read(void *opaque)
{
    State *s = opaque;
    ssize_t n = read(s->rfd, s->buf, sizeof(s->buf) - 1);

    s->reads++;
    s->buf[n > 0 ? n : 0] = '\0';
}

static void on_timer(void *opaque)
{
    ((State *)opaque)->timer_runs++;
}

static void on_io(void *opaque, int ret)
{
    State *s = opaque;

    s->io_done++;
    s->io_ret = ret;
}

static int job(void *arg)
{
    return *(int *)arg * 2;
}

static void on_job(void *opaque, int ret)
{
    State *s = opaque;

    s->pool_done++;
    s->pool_ret = ret;
}

/* Blocking polls (a timer bounds each to 10 ms) until *flag; at most 2 s. */
static bool poll_until(AioContext *ctx, int *flag)
{
    QEMUTimer *bound = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                     on_timer, &(State){ 0 });

    for (int i = 0; i < 200 && !*flag; i++) {
        timer_mod(bound, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
        aio_poll(ctx, true);
    }
    timer_free(bound);
    return *flag != 0;
}

/*
 * Use every kind of source on ctx: a BH, a pipe's handler, a timer, a
 * thread-pool job and a write then read of a temporary file.  Returns 0,
 * or the number of the step that failed.  No Check assertions: this also
 * runs in forked children.
 */
static int exercise(AioContext *ctx, const char *text)
{
    State s = { 0 };
    QEMUTimer *t;
    int p[2], fd, arg = 21, step = 0;
    char path[] = "/tmp/aioctx-fork-XXXXXX", back[32] = "";
    struct iovec out = { (void *)text, strlen(text) };
    struct iovec in = { back, strlen(text) };

    aio_bh_schedule_oneshot(ctx, on_bh, &s);
    if (!poll_until(ctx, &s.bh_runs) || s.bh_runs != 1) {
        return 1;
    }

    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
        return 2;
    }
    s.rfd = p[0];
    aio_set_fd_handler(ctx, p[0], on_read, NULL, NULL, NULL, &s);
    if (write(p[1], text, strlen(text)) != (ssize_t)strlen(text) ||
        !poll_until(ctx, &s.reads) || strcmp(s.buf, text) != 0) {
        step = 3;
    }
    aio_set_fd_handler(ctx, p[0], NULL, NULL, NULL, NULL, NULL);
    close(p[0]);
    close(p[1]);
    if (step) {
        return step;
    }

    t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, on_timer, &s);
    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 5);
    if (!poll_until(ctx, &s.timer_runs) || s.timer_runs != 1) {
        step = 4;
    }
    timer_free(t);
    if (step) {
        return step;
    }

    if (!thread_pool_submit_aio(job, &arg, on_job, &s) ||
        !poll_until(ctx, &s.pool_done) || s.pool_ret != 42) {
        return 5;
    }

    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        return 6;
    }
    unlink(path);
    if (!aio_file_pwritev(ctx, fd, 0, &out, 1, on_io, &s) ||
        !poll_until(ctx, &s.io_done) || s.io_ret != (int)strlen(text)) {
        step = 7;
    } else {
        s.io_done = 0;
        if (!aio_file_preadv(ctx, fd, 0, &in, 1, on_io, &s) ||
            !poll_until(ctx, &s.io_done) ||
            s.io_ret != (int)strlen(text) || strcmp(back, text) != 0) {
            step = 8;
        }
    }
    close(fd);
    return step;
}

/* In the child: a fresh context, used, destroyed; the exit status says. */
static int child_main(AioContext *inherited)
{
    AioContext *ctx;
    int step;

    /* The thread's current context is inherited too: point it away. */
    if (qemu_get_current_aio_context() != inherited) {
        return 20;
    }
    ctx = aio_context_new(NULL);
    if (!ctx) {
        return 21;
    }
    qemu_set_current_aio_context(ctx);
    if (strcmp(aio_context_get_engine_name(ctx),
               aio_context_get_engine_name(inherited)) != 0) {
        step = 22;
    } else {
        step = exercise(ctx, "child");
    }
    aio_context_unref(ctx);
    /* inherited is leaked, as documented. */
    return step;
}

static int wait_child(pid_t pid)
{
    int status;
    pid_t r;

    do {
        r = waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    ck_assert_int_eq(r, pid);
    ck_assert_msg(WIFEXITED(status), "child died (status %#x)", status);
    return WEXITSTATUS(status);
}

/*
 * A parent context with a registered fd, an armed timer, a thread pool with
 * a live worker and file I/O done forks; the child works on a fresh
 * context; afterwards the parent's registration, timer, pool and file I/O
 * still work, and the parent's pipe data was not consumed by the child.
 */
START_TEST(test_fork_child_uses_fresh_context)
{
    AioContext *ctx = test_ctx_new();
    State s = { 0 };
    QEMUTimer *t;
    int p[2];
    pid_t pid;

    qemu_set_current_aio_context(ctx);
    aio_context_set_thread_pool_params(ctx, 1, 4, &error_abort);
    ck_assert_int_eq(exercise(ctx, "before"), 0);
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    s.rfd = p[0];
    aio_set_fd_handler(ctx, p[0], on_read, NULL, NULL, NULL, &s);
    t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, on_timer, &s);
    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 300);
    /* Data ready at fork time: only the parent may consume it. */
    ck_assert_int_eq(write(p[1], "parent", 6), 6);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        _exit(child_main(ctx));
    }
    ck_assert_int_eq(wait_child(pid), 0);

    ck_assert(poll_until(ctx, &s.reads));
    ck_assert_str_eq(s.buf, "parent");
    ck_assert_int_eq(s.reads, 1);
    ck_assert(poll_until(ctx, &s.timer_runs));
    ck_assert_int_eq(s.timer_runs, 1);
    ck_assert_int_eq(exercise(ctx, "after"), 0);
    timer_free(t);
    aio_set_fd_handler(ctx, p[0], NULL, NULL, NULL, NULL, NULL);
    close(p[0]);
    close(p[1]);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

/*
 * Forking from inside a callback of the parent's loop (the context is in
 * the middle of aio_poll()): the child still gets a working fresh context.
 */
static void fork_from_bh(void *opaque)
{
    int *status = opaque;
    pid_t pid = fork();

    if (pid == 0) {
        _exit(child_main(qemu_get_current_aio_context()));
    }
    *status = pid < 0 ? -1 : wait_child(pid);
}

START_TEST(test_fork_inside_callback)
{
    AioContext *ctx = test_ctx_new();
    int status = -2;

    qemu_set_current_aio_context(ctx);
    aio_bh_schedule_oneshot(ctx, fork_from_bh, &status);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(exercise(ctx, "parent"), 0);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

/* Several children in a row, each with its own fresh context. */
START_TEST(test_fork_repeatedly)
{
    AioContext *ctx = test_ctx_new();

    qemu_set_current_aio_context(ctx);
    for (int i = 0; i < 4; i++) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            _exit(child_main(ctx));
        }
        ck_assert_msg(wait_child(pid) == 0, "child %d failed", i);
    }
    ck_assert_int_eq(exercise(ctx, "parent"), 0);
    qemu_set_current_aio_context(NULL);
    aio_context_unref(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fork");
    TCase *tc = tcase_create("fork");

    tcase_add_test(tc, test_fork_child_uses_fresh_context);
    tcase_add_test(tc, test_fork_inside_callback);
    tcase_add_test(tc, test_fork_repeatedly);
    suite_add_tcase(s, tc);
    return test_main(s);
}
