/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A watched fd that is closed before its handler is removed: the removal
 * is harmless, and a descriptor that reuses the number afterwards gets
 * only its own events (see aio_set_fd_handler() in aioctx/aio.h).
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-util.h"

typedef struct Watch {
    int fd;
    int reads;
    int ebadf; /* reads that failed with EBADF */
    char buf[64];
    size_t len;
} Watch;

static void watch_read(void *opaque)
{
    Watch *w = opaque;
    ssize_t n = read(w->fd, w->buf + w->len, sizeof(w->buf) - 1 - w->len);

    w->reads++;
    if (n > 0) {
        w->len += (size_t)n;
        w->buf[w->len] = '\0';
    } else if (n < 0 && errno == EBADF) {
        w->ebadf++;
    }
}

static bool is_poll_engine(AioContext *ctx)
{
    return strcmp(aio_context_get_engine_name(ctx), "poll") == 0;
}

static void tick(void *opaque)
{
    (void)opaque;
}

/* Poll until w has read want bytes; at most 200 polls of 10 ms. */
static void poll_until_len(AioContext *ctx, Watch *w, size_t want)
{
    QEMUTimer *t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, tick,
                                 NULL);

    for (int i = 0; i < 200 && w->len < want; i++) {
        /* A 10 ms deadline bounds each blocking poll. */
        timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
        aio_poll(ctx, true);
    }
    timer_free(t);
    ck_assert_uint_eq(w->len, want);
}

/*
 * Register new_fd's handler and check that it alone sees new_fd's data,
 * once, and that old saw nothing after its removal.
 */
static void check_reuse(AioContext *ctx, Watch *old, int old_reads,
                        int reuse[2])
{
    Watch fresh = { .fd = reuse[0] };

    aio_set_fd_handler(ctx, reuse[0], watch_read, NULL, NULL, NULL, &fresh);
    /* Nothing is ready on the new pipe yet: no stale readiness. */
    for (int i = 0; i < 3; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(fresh.reads, 0);
    ck_assert_int_eq(write(reuse[1], "new", 3), 3);
    poll_until_len(ctx, &fresh, 3);
    ck_assert_str_eq(fresh.buf, "new");
    ck_assert_int_eq(fresh.reads, 1);
    ck_assert_int_eq(old->reads, old_reads);
    /* Drained: no further call for either. */
    for (int i = 0; i < 3; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(fresh.reads, 1);
    ck_assert_int_eq(old->reads, old_reads);
    aio_set_fd_handler(ctx, reuse[0], NULL, NULL, NULL, NULL, NULL);
}

/* close(fd), then remove its handler at once, then reuse the number. */
START_TEST(test_close_then_remove)
{
    AioContext *ctx = test_ctx_new();
    int p[2], q[2];
    Watch old;

    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    old = (Watch){ .fd = p[0] };
    aio_set_fd_handler(ctx, p[0], watch_read, NULL, NULL, NULL, &old);
    ck_assert_int_eq(write(p[1], "x", 1), 1); /* ready when closed */
    poll_until_len(ctx, &old, 1);
    ck_assert_int_eq(write(p[1], "y", 1), 1);
    close(p[0]);
    aio_set_fd_handler(ctx, p[0], NULL, NULL, NULL, NULL, NULL);
    close(p[1]);

    ck_assert_int_eq(pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_eq(q[0], p[0]); /* the lowest free number comes back */
    check_reuse(ctx, &old, 1, q);
    close(q[0]);
    close(q[1]);
    aio_context_unref(ctx);
}
END_TEST

/*
 * close(fd), then loop iterations, then the removal.  In between, the
 * epoll-based engines no longer see the closed fd (its handler is not
 * called), the poll engine reports it (POLLNVAL) and calls io_read, whose
 * read fails with EBADF.  Either way nothing crashes and the number is
 * clean once the handler is gone.
 */
START_TEST(test_close_poll_then_remove)
{
    AioContext *ctx = test_ctx_new();
    int p[2], q[2];
    Watch old;

    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    old = (Watch){ .fd = p[0] };
    aio_set_fd_handler(ctx, p[0], watch_read, NULL, NULL, NULL, &old);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    close(p[0]);
    for (int i = 0; i < 3; i++) {
        aio_poll(ctx, false);
    }
    if (is_poll_engine(ctx)) {
        ck_assert_int_eq(old.reads, 3);
        ck_assert_int_eq(old.ebadf, 3);
    } else {
        ck_assert_int_eq(old.reads, 0);
    }
    aio_set_fd_handler(ctx, p[0], NULL, NULL, NULL, NULL, NULL);
    close(p[1]);

    ck_assert_int_eq(pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_eq(q[0], p[0]);
    check_reuse(ctx, &old, old.reads, q);
    close(q[0]);
    close(q[1]);
    aio_context_unref(ctx);
}
END_TEST

/*
 * The number is reused before the stale handler is removed (the removal
 * then names the new descriptor, which the context never watched): the
 * removal only drops the stale handler, and a handler registered for the
 * new descriptor works.
 */
START_TEST(test_reuse_before_remove)
{
    AioContext *ctx = test_ctx_new();
    int p[2], q[2];
    Watch old;

    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    old = (Watch){ .fd = p[0] };
    aio_set_fd_handler(ctx, p[0], watch_read, NULL, NULL, NULL, &old);
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_eq(q[0], p[0]);
    aio_set_fd_handler(ctx, p[0], NULL, NULL, NULL, NULL, NULL);
    check_reuse(ctx, &old, 0, q);
    close(q[0]);
    close(q[1]);
    aio_context_unref(ctx);
}
END_TEST

/* Many rounds of close-while-registered on a socketpair, then reuse. */
START_TEST(test_close_remove_rounds)
{
    AioContext *ctx = test_ctx_new();
    int reads_total = 0;

    for (int round = 0; round < 50; round++) {
        int sv[2];
        Watch w;

        ck_assert_int_eq(socketpair(AF_UNIX,
                                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                    0, sv),
                         0);
        w = (Watch){ .fd = sv[0] };
        aio_set_fd_handler(ctx, sv[0], watch_read, NULL, NULL, NULL, &w);
        ck_assert_int_eq(write(sv[1], "r", 1), 1);
        poll_until_len(ctx, &w, 1);
        ck_assert_int_eq(w.reads, 1);
        reads_total += w.reads;
        ck_assert_int_eq(write(sv[1], "s", 1), 1); /* left unread */
        close(sv[0]);
        aio_set_fd_handler(ctx, sv[0], NULL, NULL, NULL, NULL, NULL);
        close(sv[1]);
    }
    ck_assert_int_eq(reads_total, 50);
    /* Nothing is left registered: a non-blocking pass has nothing to do. */
    ck_assert(!aio_poll(ctx, false));
    aio_context_unref(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fd-lifecycle");
    TCase *tc = tcase_create("close-while-registered");

    tcase_add_test(tc, test_close_then_remove);
    tcase_add_test(tc, test_close_poll_then_remove);
    tcase_add_test(tc, test_reuse_before_remove);
    tcase_add_test(tc, test_close_remove_rounds);
    suite_add_tcase(s, tc);
    return test_main(s);
}
