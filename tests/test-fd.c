/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fd handlers and event notifiers: readiness on pipes, socketpairs and
 * regular files, replacement, removal (also from inside callbacks), EOF and
 * errors, negative fds, busy-poll begin/end hooks, registration from other
 * threads and many fds at once.
 */
#define _GNU_SOURCE /* pipe2, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-util.h"

#define MS 1000000LL

static void put(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void close_pair(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
}

/*
 * One watched fd and what its callbacks saw.  Callbacks that take an
 * FdState read into buf, count their calls and may act on other handlers.
 */
typedef struct FdState {
    AioContext *ctx;
    int fd;
    int reads;
    int writes;
    char buf[256];
    size_t len;
    ssize_t last_ret;
    int last_errno;
    struct FdState *other; /* a handler this one acts on */
    int *other_fds;        /* the other handler's pair, closed by victims */
} FdState;

static void read_into(FdState *s)
{
    ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);

    s->last_ret = n;
    s->last_errno = n < 0 ? errno : 0;
    if (n > 0) {
        s->len += n;
    }
    s->buf[s->len] = '\0';
}

static void read_cb(void *opaque)
{
    FdState *s = opaque;

    s->reads++;
    read_into(s);
}

static void count_read_cb(void *opaque)
{
    FdState *s = opaque;

    s->reads++; /* leaves the data: the fd stays readable */
}

static void count_write_cb(void *opaque)
{
    FdState *s = opaque;

    s->writes++;
}

static void remove_fd(AioContext *ctx, int fd)
{
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
}

/* ---- readiness ---- */

START_TEST(test_pipe_read)
{
    AioContext *ctx = test_ctx_new();
    int p[2];
    FdState s = { 0 };

    make_pipe(p);
    s.fd = p[0];
    aio_set_fd_handler(ctx, p[0], read_cb, NULL, NULL, NULL, &s);
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(s.reads, 0);

    put(p[1], "hello");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(s.reads, 1);
    ck_assert_str_eq(s.buf, "hello");
    ck_assert(!aio_poll(ctx, false)); /* drained: not readable any more */
    ck_assert_int_eq(s.reads, 1);

    put(p[1], " world");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(s.reads, 2);
    ck_assert_str_eq(s.buf, "hello world");

    remove_fd(ctx, p[0]);
    close_pair(p);
    aio_context_unref(ctx);
}
END_TEST

static void write_once_cb(void *opaque)
{
    FdState *s = opaque;

    s->writes++;
    s->last_ret = write(s->fd, "z", 1);
    remove_fd(s->ctx, s->fd);
}

START_TEST(test_pipe_write_readiness)
{
    AioContext *ctx = test_ctx_new();
    char chunk[4096];
    size_t filled = 0, drained = 0;
    ssize_t n;
    int p[2];
    FdState s = { .ctx = ctx };

    make_pipe(p);
    memset(chunk, 'f', sizeof(chunk));
    while ((n = write(p[1], chunk, sizeof(chunk))) > 0) {
        filled += n;
    }
    ck_assert_int_eq(errno, EAGAIN);

    s.fd = p[1];
    aio_set_fd_handler(ctx, p[1], NULL, write_once_cb, NULL, NULL, &s);
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false)); /* full pipe: not writable */
    ck_assert_int_eq(s.writes, 0);

    while ((n = read(p[0], chunk, sizeof(chunk))) > 0) {
        drained += n;
    }
    ck_assert_uint_eq(drained, filled);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(s.writes, 1);
    ck_assert_int_eq(s.last_ret, 1);
    ck_assert_int_eq(read(p[0], chunk, sizeof(chunk)), 1);
    ck_assert_int_eq(chunk[0], 'z');

    /* The callback removed itself: never called again. */
    for (int i = 0; i < 5; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(s.writes, 1);
    close_pair(p);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_socketpair_directions)
{
    AioContext *ctx = test_ctx_new();
    int sv[2];
    FdState a = { 0 }, b = { 0 };

    make_socketpair(sv);
    a.fd = sv[0];
    b.fd = sv[1];
    aio_set_fd_handler(ctx, sv[0], read_cb, NULL, NULL, NULL, &a);
    aio_set_fd_handler(ctx, sv[1], read_cb, NULL, NULL, NULL, &b);
    test_consume_notify(ctx);

    put(sv[1], "ping");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(a.reads, 1);
    ck_assert_int_eq(b.reads, 0);
    ck_assert_str_eq(a.buf, "ping");

    put(sv[0], "pong");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(a.reads, 1);
    ck_assert_int_eq(b.reads, 1);
    ck_assert_str_eq(b.buf, "pong");
    ck_assert(!aio_poll(ctx, false));

    remove_fd(ctx, sv[0]);
    remove_fd(ctx, sv[1]);
    close_pair(sv);
    aio_context_unref(ctx);
}
END_TEST

/* Two ends bouncing a counter: each reads it and sends it on plus one. */
typedef struct {
    int fd;
    int calls;
    int last;
    int limit;
} Echo;

static void echo_cb(void *opaque)
{
    Echo *e = opaque;
    int v;

    e->calls++;
    ck_assert_int_eq(read(e->fd, &v, sizeof(v)), (ssize_t)sizeof(v));
    ck_assert_int_eq(v, e->last + 2); /* each end sees every other value */
    e->last = v;
    if (v < e->limit) {
        v++;
        ck_assert_int_eq(write(e->fd, &v, sizeof(v)), (ssize_t)sizeof(v));
    }
}

START_TEST(test_socketpair_ping_pong)
{
    enum { LIMIT = 200 };
    AioContext *ctx = test_ctx_new();
    int sv[2], v = 1, polls = 0;
    Echo a = { .last = -1, .limit = LIMIT }, b = { .last = 0, .limit = LIMIT };

    make_socketpair(sv);
    a.fd = sv[0];
    b.fd = sv[1];
    aio_set_fd_handler(ctx, sv[0], echo_cb, NULL, NULL, NULL, &a);
    aio_set_fd_handler(ctx, sv[1], echo_cb, NULL, NULL, NULL, &b);
    ck_assert_int_eq(write(sv[1], &v, sizeof(v)), (ssize_t)sizeof(v));
    while (a.last < LIMIT && b.last < LIMIT && polls++ < 10 * LIMIT) {
        aio_poll(ctx, true);
    }
    /* a got the odd values 1..LIMIT-1, b the even ones 2..LIMIT. */
    ck_assert_int_eq(a.calls, LIMIT / 2);
    ck_assert_int_eq(b.calls, LIMIT / 2);
    ck_assert_int_eq(a.last, LIMIT - 1);
    ck_assert_int_eq(b.last, LIMIT);
    ck_assert(!aio_poll(ctx, false));

    remove_fd(ctx, sv[0]);
    remove_fd(ctx, sv[1]);
    close_pair(sv);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_read_and_write_same_fd)
{
    AioContext *ctx = test_ctx_new();
    int sv[2];
    FdState s = { 0 };

    make_socketpair(sv);
    s.fd = sv[0];
    aio_set_fd_handler(ctx, sv[0], read_cb, count_write_cb, NULL, NULL, &s);
    ck_assert(aio_poll(ctx, false)); /* writable at once */
    ck_assert_int_eq(s.writes, 1);
    ck_assert_int_eq(s.reads, 0);

    put(sv[1], "in");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(s.writes, 2);
    ck_assert_int_eq(s.reads, 1);
    ck_assert_str_eq(s.buf, "in");

    /* Drop the write interest: nothing left to report. */
    aio_set_fd_handler(ctx, sv[0], read_cb, NULL, NULL, NULL, &s);
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(s.writes, 2);

    remove_fd(ctx, sv[0]);
    close_pair(sv);
    aio_context_unref(ctx);
}
END_TEST

/* ---- replacement and removal ---- */

START_TEST(test_handler_replacement)
{
    AioContext *ctx = test_ctx_new();
    int p[2];
    FdState a = { 0 }, b = { 0 };

    make_pipe(p);
    a.fd = b.fd = p[0];
    aio_set_fd_handler(ctx, p[0], read_cb, NULL, NULL, NULL, &a);
    put(p[1], "1");
    /* Same fd again: the new callbacks and opaque replace the old ones. */
    aio_set_fd_handler(ctx, p[0], read_cb, NULL, NULL, NULL, &b);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(a.reads, 0);
    ck_assert_int_eq(b.reads, 1);
    ck_assert_str_eq(b.buf, "1");

    aio_set_fd_handler(ctx, p[0], read_cb, NULL, NULL, NULL, &a);
    put(p[1], "2");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(a.reads, 1);
    ck_assert_int_eq(b.reads, 1);
    ck_assert_str_eq(a.buf, "2");

    /* Replacing with a different callback on the same opaque. */
    aio_set_fd_handler(ctx, p[0], count_read_cb, NULL, NULL, NULL, &a);
    put(p[1], "3");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(a.reads, 2);
    ck_assert_str_eq(a.buf, "2"); /* count_read_cb does not read */

    remove_fd(ctx, p[0]);
    close_pair(p);
    aio_context_unref(ctx);
}
END_TEST

static void switch_to_other_cb(void *opaque)
{
    FdState *s = opaque;

    s->reads++;
    aio_set_fd_handler(s->ctx, s->fd, read_cb, NULL, NULL, NULL, s->other);
}

START_TEST(test_replace_self_in_callback)
{
    AioContext *ctx = test_ctx_new();
    int p[2];
    FdState b = { 0 };
    FdState a = { .ctx = ctx, .other = &b };

    make_pipe(p);
    a.fd = b.fd = p[0];
    aio_set_fd_handler(ctx, p[0], switch_to_other_cb, NULL, NULL, NULL, &a);
    put(p[1], "x");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(a.reads, 1);
    for (int i = 0; i < 3 && b.reads == 0; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(a.reads, 1);
    ck_assert_int_eq(b.reads, 1);
    ck_assert_str_eq(b.buf, "x");

    remove_fd(ctx, p[0]);
    close_pair(p);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_remove_handler)
{
    AioContext *ctx = test_ctx_new();
    int p[2], q[2];
    FdState s = { 0 };

    make_pipe(p);
    make_pipe(q);
    s.fd = p[0];
    aio_set_fd_handler(ctx, p[0], count_read_cb, NULL, NULL, NULL, &s);
    put(p[1], "x");
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(s.reads, 1);

    remove_fd(ctx, p[0]);
    test_consume_notify(ctx);
    for (int i = 0; i < 5; i++) {
        ck_assert(!aio_poll(ctx, false)); /* data is still there */
    }
    ck_assert_int_eq(s.reads, 1);

    /* Removing again, or removing an fd never registered, is a no-op. */
    remove_fd(ctx, p[0]);
    remove_fd(ctx, q[0]);
    remove_fd(ctx, 100000);
    /* All three of io_read, io_write, io_poll NULL removes. */
    aio_set_fd_handler(ctx, q[0], count_read_cb, NULL, NULL, NULL, &s);
    aio_set_fd_handler(ctx, q[0], NULL, NULL, NULL, count_read_cb, &s);
    put(q[1], "y");
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(s.reads, 1);

    close_pair(p);
    close_pair(q);
    aio_context_unref(ctx);
}
END_TEST

static void remove_self_cb(void *opaque)
{
    FdState *s = opaque;

    s->reads++;
    remove_fd(s->ctx, s->fd);
}

START_TEST(test_remove_self_in_callback)
{
    AioContext *ctx = test_ctx_new();
    int sv[2];
    FdState s = { .ctx = ctx };

    make_socketpair(sv);
    s.fd = sv[0];
    /* Readable and writable at once; io_read runs first and removes. */
    aio_set_fd_handler(ctx, sv[0], remove_self_cb, count_write_cb, NULL, NULL,
                       &s);
    put(sv[1], "data");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(s.reads, 1);
    ck_assert_int_eq(s.writes, 0); /* removed before io_write's turn */
    for (int i = 0; i < 5; i++) {
        ck_assert(!aio_poll(ctx, false));
    }
    ck_assert_int_eq(s.reads, 1);
    ck_assert_int_eq(s.writes, 0);
    close_pair(sv);
    aio_context_unref(ctx);
}
END_TEST

/* Remove the other handler and close its fds (it may already be ready). */
static void remove_other_cb(void *opaque)
{
    FdState *s = opaque;

    s->reads++;
    if (s->other_fds[0] >= 0) {
        remove_fd(s->ctx, s->other->fd);
        close_pair(s->other_fds);
        s->other_fds[0] = s->other_fds[1] = -1;
    }
}

START_TEST(test_remove_other_in_callback)
{
    AioContext *ctx = test_ctx_new();
    int pa[2], pb[2];
    FdState a = { .ctx = ctx }, b = { .ctx = ctx };
    FdState *survivor, *victim;

    make_pipe(pa);
    make_pipe(pb);
    a.fd = pa[0];
    b.fd = pb[0];
    a.other = &b;
    a.other_fds = pb;
    b.other = &a;
    b.other_fds = pa;
    aio_set_fd_handler(ctx, pa[0], remove_other_cb, NULL, NULL, NULL, &a);
    aio_set_fd_handler(ctx, pb[0], remove_other_cb, NULL, NULL, NULL, &b);
    put(pa[1], "a");
    put(pb[1], "b");

    /* Both are ready; whichever runs first removes the other. */
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(a.reads + b.reads, 1);
    survivor = a.reads ? &a : &b;
    victim = a.reads ? &b : &a;
    for (int i = 2; i < 6; i++) {
        ck_assert(aio_poll(ctx, false)); /* survivor's data is unread */
        ck_assert_int_eq(survivor->reads, i);
        ck_assert_int_eq(victim->reads, 0);
    }
    remove_fd(ctx, survivor->fd);
    close_pair(survivor == &a ? pa : pb);
    aio_context_unref(ctx);
}
END_TEST

/* Register a handler for the other fd, then remove ourselves. */
static void add_other_cb(void *opaque)
{
    FdState *s = opaque;

    s->reads++;
    aio_set_fd_handler(s->ctx, s->other->fd, read_cb, NULL, NULL, NULL,
                       s->other);
    remove_fd(s->ctx, s->fd);
}

START_TEST(test_add_handler_in_callback)
{
    AioContext *ctx = test_ctx_new();
    int pa[2], pb[2];
    FdState b = { 0 };
    FdState a = { .ctx = ctx, .other = &b };

    make_pipe(pa);
    make_pipe(pb);
    a.fd = pa[0];
    b.fd = pb[0];
    put(pb[1], "new"); /* ready before its handler even exists */
    aio_set_fd_handler(ctx, pa[0], add_other_cb, NULL, NULL, NULL, &a);
    put(pa[1], "a");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(a.reads, 1);
    for (int i = 0; i < 3 && b.reads == 0; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(b.reads, 1);
    ck_assert_str_eq(b.buf, "new");
    ck_assert_int_eq(a.reads, 1);
    ck_assert(!aio_poll(ctx, false));

    remove_fd(ctx, pb[0]);
    close_pair(pa);
    close_pair(pb);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_removed_fd_number_reused)
{
    AioContext *ctx = test_ctx_new();
    int p[2], q[2];
    FdState old = { 0 }, fresh = { 0 };

    make_pipe(p);
    old.fd = p[0];
    aio_set_fd_handler(ctx, p[0], read_cb, NULL, NULL, NULL, &old);
    put(p[1], "old");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(old.reads, 1);
    remove_fd(ctx, p[0]);
    close_pair(p);

    make_pipe(q); /* usually gets the same numbers back */
    fresh.fd = q[0];
    aio_set_fd_handler(ctx, q[0], read_cb, NULL, NULL, NULL, &fresh);
    put(q[1], "fresh");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(fresh.reads, 1);
    ck_assert_str_eq(fresh.buf, "fresh");
    ck_assert_int_eq(old.reads, 1);

    remove_fd(ctx, q[0]);
    close_pair(q);
    aio_context_unref(ctx);
}
END_TEST

/* ---- hang-up, EOF and errors ---- */

/* Read; on EOF (or an error) unregister. */
static void read_until_eof_cb(void *opaque)
{
    FdState *s = opaque;

    read_cb(s);
    if (s->last_ret <= 0) {
        remove_fd(s->ctx, s->fd);
    }
}

START_TEST(test_pipe_eof)
{
    AioContext *ctx = test_ctx_new();
    int p[2];
    FdState s = { .ctx = ctx, .last_ret = -1 };

    make_pipe(p);
    s.fd = p[0];
    aio_set_fd_handler(ctx, p[0], read_until_eof_cb, NULL, NULL, NULL, &s);
    put(p[1], "bye");
    close(p[1]); /* data, then hang-up */
    for (int i = 0; i < 10 && s.last_ret != 0; i++) {
        ck_assert(aio_poll(ctx, true));
    }
    ck_assert_int_eq(s.reads, 2);
    ck_assert_str_eq(s.buf, "bye");
    ck_assert_int_eq(s.last_ret, 0);
    ck_assert(!aio_poll(ctx, false));
    close(p[0]);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_socket_hangup)
{
    AioContext *ctx = test_ctx_new();
    int sv[2], sw[2];
    FdState s = { .ctx = ctx }, t = { .ctx = ctx };

    make_socketpair(sv);
    make_socketpair(sw);
    s.fd = sv[0];
    t.fd = sw[0];
    aio_set_fd_handler(ctx, sv[0], read_until_eof_cb, NULL, NULL, NULL, &s);
    aio_set_fd_handler(ctx, sw[0], read_until_eof_cb, NULL, NULL, NULL, &t);
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));

    close(sv[1]);                                  /* peer gone */
    ck_assert_int_eq(shutdown(sw[1], SHUT_WR), 0); /* peer done writing */
    for (int i = 0; i < 10 && (s.reads == 0 || t.reads == 0); i++) {
        ck_assert(aio_poll(ctx, true));
    }
    ck_assert_int_eq(s.reads, 1);
    ck_assert_int_eq(s.last_ret, 0);
    ck_assert_int_eq(t.reads, 1);
    ck_assert_int_eq(t.last_ret, 0);
    ck_assert(!aio_poll(ctx, false));
    close(sv[0]);
    close_pair(sw);
    aio_context_unref(ctx);
}
END_TEST

static void write_fail_cb(void *opaque)
{
    FdState *s = opaque;

    s->writes++;
    s->last_ret = write(s->fd, "x", 1);
    s->last_errno = s->last_ret < 0 ? errno : 0;
    remove_fd(s->ctx, s->fd);
}

START_TEST(test_write_to_closed_pipe)
{
    AioContext *ctx = test_ctx_new();
    int p[2];
    FdState s = { .ctx = ctx };

    make_pipe(p);
    close(p[0]);
    s.fd = p[1];
    aio_set_fd_handler(ctx, p[1], NULL, write_fail_cb, NULL, NULL, &s);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(s.writes, 1);
    ck_assert_int_eq(s.last_ret, -1);
    ck_assert_int_eq(s.last_errno, EPIPE);
    ck_assert(!aio_poll(ctx, false));
    close(p[1]);
    aio_context_unref(ctx);
}
END_TEST

/* ---- regular files, negative fds ---- */

static int make_temp_file(const char *content)
{
    char path[] = "/tmp/aioctx-test-fd-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    unlink(path);
    put(fd, content);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void bh_count_cb(void *opaque)
{
    int *n = opaque;

    (*n)++;
}

START_TEST(test_regular_file)
{
    AioContext *ctx = test_ctx_new();
    int fd = make_temp_file("data");
    int p[2], bh_runs = 0;
    FdState f = { .ctx = ctx }, w = { .ctx = ctx }, pipe_s = { 0 };
    char back[16] = { 0 };

    /* A regular file is always ready, as poll(2) reports it. */
    f.fd = fd;
    aio_set_fd_handler(ctx, fd, read_cb, NULL, NULL, NULL, &f);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(f.reads, 1);
    ck_assert_str_eq(f.buf, "data");
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(f.reads, 2);
    ck_assert_int_eq(f.last_ret, 0); /* at EOF, still "ready" */

    /* Other fds keep working next to it. */
    make_pipe(p);
    pipe_s.fd = p[0];
    aio_set_fd_handler(ctx, p[0], read_cb, NULL, NULL, NULL, &pipe_s);
    put(p[1], "pipe");
    for (int i = 0; i < 5 && pipe_s.reads == 0; i++) {
        ck_assert(aio_poll(ctx, true));
    }
    ck_assert_int_eq(pipe_s.reads, 1);
    ck_assert_str_eq(pipe_s.buf, "pipe");

    /* Removal stops the calls. */
    remove_fd(ctx, fd);
    remove_fd(ctx, p[0]);
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));
    f.reads = 0;
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(f.reads, 0);

    /* Write interest on the file, replaced by the callback's removal. */
    w.fd = fd;
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), 4);
    aio_set_fd_handler(ctx, fd, NULL, write_once_cb, NULL, NULL, &w);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(w.writes, 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(w.writes, 1);
    ck_assert_int_eq(pread(fd, back, sizeof(back) - 1, 0), 5);
    ck_assert_str_eq(back, "dataz");

    /* Read interest, replaced (not removed) by read+write, then removed. */
    aio_set_fd_handler(ctx, fd, count_read_cb, NULL, NULL, NULL, &f);
    aio_set_fd_handler(ctx, fd, count_read_cb, count_write_cb, NULL, NULL,
                       &f);
    ck_assert(aio_poll(ctx, false));
    ck_assert_int_eq(f.reads, 1);
    ck_assert_int_eq(f.writes, 1);
    remove_fd(ctx, fd);

    /* Nothing left: the loop is idle again and BHs still run. */
    test_consume_notify(ctx);
    ck_assert_int_eq(aio_compute_timeout(ctx), -1);
    aio_bh_schedule_oneshot(ctx, bh_count_cb, &bh_runs);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(bh_runs, 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(f.reads, 1);

    close(fd);
    close_pair(p);
    aio_context_unref(ctx);
}
END_TEST

static void notifier_count_cb(EventNotifier *e)
{
    (void)e;
    ck_abort_msg("a callback registered on a bad fd ran");
}

START_TEST(test_negative_fd_is_noop)
{
    AioContext *ctx = test_ctx_new();
    EventNotifier dead = { .rfd = -1, .wfd = -1, .initialized = false };
    FdState s = { 0 };
    int p[2], bh_runs = 0;

    test_consume_notify(ctx);
    aio_set_fd_handler(ctx, -1, count_read_cb, count_write_cb, NULL, NULL,
                       &s);
    aio_set_fd_handler(ctx, -42, count_read_cb, NULL, NULL, NULL, &s);
    aio_set_fd_handler(ctx, -1, NULL, NULL, NULL, NULL, NULL);
    aio_set_event_notifier(ctx, &dead, notifier_count_cb, NULL, NULL);
    aio_set_event_notifier_poll(ctx, &dead, notifier_count_cb,
                                notifier_count_cb);
    /* Nothing was registered: no handler without io_poll appeared. */
    ck_assert(!aio_poll_disabled(ctx));
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(s.reads + s.writes, 0);

    /* The context still works. */
    make_pipe(p);
    s.fd = p[0];
    aio_set_fd_handler(ctx, p[0], read_cb, NULL, NULL, NULL, &s);
    ck_assert(aio_poll_disabled(ctx));
    put(p[1], "ok");
    ck_assert(aio_poll(ctx, true));
    ck_assert_str_eq(s.buf, "ok");
    aio_bh_schedule_oneshot(ctx, bh_count_cb, &bh_runs);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(bh_runs, 1);
    ck_assert_int_eq(s.writes, 0);
    remove_fd(ctx, p[0]);
    close_pair(p);
    aio_context_unref(ctx);
}
END_TEST

/* ---- event notifiers ---- */

typedef struct {
    EventNotifier e; /* first: callbacks get &e */
    AioContext *ctx;
    int reads;
    int polls;
    int polls_while_polling;
    int poll_readys;
    int begins;
    int ends;
    bool polling; /* between io_poll_begin and io_poll_end */
    bool want;    /* what io_poll reports */
} Notif;

static void notif_read_cb(EventNotifier *e)
{
    Notif *n = (Notif *)e;

    n->reads++;
    ck_assert(event_notifier_test_and_clear(e));
}

static bool notif_poll_cb(void *opaque)
{
    Notif *n = opaque;

    n->polls++;
    if (n->polling) {
        n->polls_while_polling++;
    }
    return n->want;
}

static void notif_poll_ready_cb(EventNotifier *e)
{
    Notif *n = (Notif *)e;

    n->poll_readys++;
    n->want = false;
    event_notifier_test_and_clear(e);
}

static void notif_begin_cb(EventNotifier *e)
{
    Notif *n = (Notif *)e;

    ck_assert(!n->polling);
    n->begins++;
    n->polling = true;
}

static void notif_end_cb(EventNotifier *e)
{
    Notif *n = (Notif *)e;

    ck_assert(n->polling);
    n->ends++;
    n->polling = false;
}

START_TEST(test_event_notifier)
{
    AioContext *ctx = test_ctx_new();
    Notif n = { 0 }, m = { 0 };

    ck_assert_int_eq(event_notifier_init(&n.e, 0), 0);
    aio_set_event_notifier(ctx, &n.e, notif_read_cb, NULL, NULL);
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(n.reads, 0);

    /* Set twice before the loop looks: one callback. */
    ck_assert_int_eq(event_notifier_set(&n.e), 0);
    ck_assert_int_eq(event_notifier_set(&n.e), 0);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(n.reads, 1);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(n.reads, 1);

    for (int i = 2; i <= 10; i++) {
        ck_assert_int_eq(event_notifier_set(&n.e), 0);
        ck_assert(aio_poll(ctx, true));
        ck_assert_int_eq(n.reads, i);
    }

    /* One created set fires as soon as it is registered. */
    ck_assert_int_eq(event_notifier_init(&m.e, 1), 0);
    aio_set_event_notifier(ctx, &m.e, notif_read_cb, NULL, NULL);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(m.reads, 1);
    ck_assert_int_eq(n.reads, 10);

    /* Removed: setting it does nothing any more. */
    aio_set_event_notifier(ctx, &n.e, NULL, NULL, NULL);
    aio_set_event_notifier(ctx, &m.e, NULL, NULL, NULL);
    test_consume_notify(ctx);
    ck_assert_int_eq(event_notifier_set(&n.e), 0);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(n.reads, 10);
    ck_assert(event_notifier_test_and_clear(&n.e)); /* still set */

    event_notifier_cleanup(&n.e);
    event_notifier_cleanup(&m.e);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_event_notifier_poll_begin_end)
{
    AioContext *ctx = test_ctx_new();
    Error *err = NULL;
    Notif n = { 0 }, late = { 0 };

    ck_assert_int_eq(event_notifier_init(&n.e, 0), 0);
    ck_assert_int_eq(event_notifier_init(&late.e, 0), 0);
    /* Not registered yet: this must do nothing, now or later. */
    aio_set_event_notifier_poll(ctx, &late.e, notif_begin_cb, notif_end_cb);

    aio_context_set_poll_params(ctx, 50 * MS, 0, 0, &err);
    ck_assert_ptr_null(err);
    aio_set_event_notifier(ctx, &n.e, notif_read_cb, notif_poll_cb,
                           notif_poll_ready_cb);
    aio_set_event_notifier_poll(ctx, &n.e, notif_begin_cb, notif_end_cb);
    aio_set_event_notifier(ctx, &late.e, notif_read_cb, notif_poll_cb,
                           notif_poll_ready_cb);
    ck_assert(!aio_poll_disabled(ctx));
    /* Quick iterations let the adaptive poll time grow from 0. */
    for (int i = 0; i < 4; i++) {
        aio_poll(ctx, false);
    }
    ck_assert_int_eq(n.begins, 0);

    /*
     * Work that io_poll sees: found by busy-polling, run by io_poll_ready,
     * and counted as progress.  The notifier is set too, so a loop that
     * did not busy-poll would run io_read instead of hanging.
     */
    n.want = true;
    ck_assert_int_eq(event_notifier_set(&n.e), 0);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(n.begins, 1);
    ck_assert_int_ge(n.polls_while_polling, 1);
    ck_assert_int_eq(n.poll_readys, 1);
    ck_assert_int_eq(n.reads, 0);
    ck_assert_int_eq(late.begins, 0);

    /* Nothing for io_poll: polling ends before the loop sleeps on fds. */
    ck_assert_int_eq(event_notifier_set(&n.e), 0);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(n.reads, 1);
    ck_assert_int_eq(n.begins, 1);
    ck_assert_int_eq(n.ends, 1);
    ck_assert(!n.polling);

    /* And starts again on the next blocking wait. */
    n.want = true;
    ck_assert_int_eq(event_notifier_set(&n.e), 0);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(n.begins, 2);
    ck_assert_int_eq(n.poll_readys, 2);
    ck_assert_int_eq(late.begins + late.ends, 0);

    aio_set_event_notifier(ctx, &n.e, NULL, NULL, NULL);
    aio_set_event_notifier(ctx, &late.e, NULL, NULL, NULL);
    event_notifier_cleanup(&n.e);
    event_notifier_cleanup(&late.e);
    aio_context_unref(ctx);
}
END_TEST

/* ---- another thread registers and removes while the loop sleeps ---- */

typedef struct {
    AioContext *ctx;
    int p[2];
    FdState s;    /* s.reads is read by the helper thread */
    bool done;    /* atomic */
    int bh_runs;
} CrossReg;

static void cross_read_cb(void *opaque)
{
    CrossReg *c = opaque;
    char ch;

    ck_assert_int_eq(read(c->p[0], &ch, 1), 1);
    c->s.buf[c->s.len++] = ch;
    __atomic_add_fetch(&c->s.reads, 1, __ATOMIC_SEQ_CST);
}

static void cross_done_cb(void *opaque)
{
    CrossReg *c = opaque;

    c->bh_runs++;
    __atomic_store_n(&c->done, true, __ATOMIC_SEQ_CST);
}

static void *cross_reg_thread(void *opaque)
{
    CrossReg *c = opaque;

    /* Register while the home thread sleeps, then make the fd ready. */
    test_sleep_us(20000);
    aio_set_fd_handler(c->ctx, c->p[0], cross_read_cb, NULL, NULL, NULL, c);
    test_sleep_us(20000);
    put(c->p[1], "a");
    while (__atomic_load_n(&c->s.reads, __ATOMIC_SEQ_CST) == 0) {
        test_sleep_us(1000);
    }
    /* Remove while it sleeps again; data written afterwards is ignored. */
    test_sleep_us(20000);
    remove_fd(c->ctx, c->p[0]);
    put(c->p[1], "b");
    test_sleep_us(20000);
    aio_bh_schedule_oneshot(c->ctx, cross_done_cb, c);
    return NULL;
}

START_TEST(test_cross_thread_register_remove)
{
    AioContext *ctx = test_ctx_new();
    CrossReg c = { .ctx = ctx };
    pthread_t th;
    char ch;
    int polls = 0;

    make_pipe(c.p);
    test_consume_notify(ctx);
    pthread_create(&th, NULL, cross_reg_thread, &c);
    while (!__atomic_load_n(&c.done, __ATOMIC_SEQ_CST) && polls++ < 1000) {
        aio_poll(ctx, true);
    }
    pthread_join(th, NULL);
    ck_assert(c.done);
    ck_assert_int_eq(c.bh_runs, 1);
    ck_assert_int_eq(c.s.reads, 1);
    ck_assert_uint_eq(c.s.len, 1);
    ck_assert_int_eq(c.s.buf[0], 'a');
    ck_assert_int_eq(read(c.p[0], &ch, 1), 1); /* "b" was never taken */
    ck_assert_int_eq(ch, 'b');
    close_pair(c.p);
    aio_context_unref(ctx);
}
END_TEST

/* ---- many fds ---- */

enum { NPAIRS = 500 };

typedef struct {
    int sv[NPAIRS][2];
    int calls[NPAIRS];
    char got[NPAIRS];
} Many;

typedef struct {
    Many *m;
    int idx;
} ManyRef;

static void many_read_cb(void *opaque)
{
    ManyRef *r = opaque;

    r->m->calls[r->idx]++;
    ck_assert_int_eq(read(r->m->sv[r->idx][0], &r->m->got[r->idx], 1), 1);
}

/* Make the pairs selected by (i % mod == rem) ready; check the dispatch. */
static void many_round(AioContext *ctx, Many *m, int mod, int rem,
                       const bool *registered)
{
    int expected = 0, total = 0, polls = 0;

    memset(m->calls, 0, sizeof(m->calls));
    memset(m->got, 0, sizeof(m->got));
    for (int i = 0; i < NPAIRS; i++) {
        if (i % mod == rem) {
            char ch = (char)('A' + i % 26);

            ck_assert_int_eq(write(m->sv[i][1], &ch, 1), 1);
            expected += registered[i];
        }
    }
    while (total < expected && polls++ < 100) {
        aio_poll(ctx, true);
        total = 0;
        for (int i = 0; i < NPAIRS; i++) {
            total += m->calls[i];
        }
    }
    while (aio_poll(ctx, false) && polls++ < 200) {
    }
    for (int i = 0; i < NPAIRS; i++) {
        bool want = i % mod == rem && registered[i];

        ck_assert_msg(m->calls[i] == (want ? 1 : 0),
                      "pair %d: %d calls, expected %d", i, m->calls[i],
                      want ? 1 : 0);
        if (want) {
            ck_assert_int_eq(m->got[i], 'A' + i % 26);
        }
    }
}

START_TEST(test_many_socketpairs)
{
    AioContext *ctx = test_ctx_new();
    Many *m = calloc(1, sizeof(*m));
    ManyRef *refs = calloc(NPAIRS, sizeof(*refs));
    bool registered[NPAIRS];
    struct rlimit rl;
    char ch;

    /* Two fds per pair: make sure the soft limit allows them. */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * NPAIRS + 64 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    for (int i = 0; i < NPAIRS; i++) {
        make_socketpair(m->sv[i]);
        refs[i] = (ManyRef){ m, i };
        aio_set_fd_handler(ctx, m->sv[i][0], many_read_cb, NULL, NULL, NULL,
                           &refs[i]);
        registered[i] = true;
    }
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));

    many_round(ctx, m, 7, 3, registered);   /* 71 ready */
    many_round(ctx, m, 2, 0, registered);   /* 250 ready */
    many_round(ctx, m, 1, 0, registered);   /* all of them */

    /* Unregister every odd one: only even ones may run. */
    for (int i = 1; i < NPAIRS; i += 2) {
        remove_fd(ctx, m->sv[i][0]);
        registered[i] = false;
    }
    many_round(ctx, m, 1, 0, registered);
    for (int i = 1; i < NPAIRS; i += 2) {
        ck_assert_int_eq(read(m->sv[i][0], &ch, 1), 1); /* left unread */
    }

    for (int i = 0; i < NPAIRS; i++) {
        remove_fd(ctx, m->sv[i][0]);
        close_pair(m->sv[i]);
    }
    aio_context_unref(ctx);
    free(refs);
    free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fd");
    TCase *tc = tcase_create("readiness");

    signal(SIGPIPE, SIG_IGN);
    tcase_add_test(tc, test_pipe_read);
    tcase_add_test(tc, test_pipe_write_readiness);
    tcase_add_test(tc, test_socketpair_directions);
    tcase_add_test(tc, test_socketpair_ping_pong);
    tcase_add_test(tc, test_read_and_write_same_fd);
    tcase_add_test(tc, test_pipe_eof);
    tcase_add_test(tc, test_socket_hangup);
    tcase_add_test(tc, test_write_to_closed_pipe);
    tcase_add_test(tc, test_regular_file);
    tcase_add_test(tc, test_negative_fd_is_noop);
    suite_add_tcase(s, tc);

    tc = tcase_create("registration");
    tcase_add_test(tc, test_handler_replacement);
    tcase_add_test(tc, test_replace_self_in_callback);
    tcase_add_test(tc, test_remove_handler);
    tcase_add_test(tc, test_remove_self_in_callback);
    tcase_add_test(tc, test_remove_other_in_callback);
    tcase_add_test(tc, test_add_handler_in_callback);
    tcase_add_test(tc, test_removed_fd_number_reused);
    tcase_add_test(tc, test_many_socketpairs);
    suite_add_tcase(s, tc);

    tc = tcase_create("notifiers");
    tcase_add_test(tc, test_event_notifier);
    tcase_add_test(tc, test_event_notifier_poll_begin_end);
    suite_add_tcase(s, tc);

    tc = tcase_create("cross-thread");
    tcase_add_test(tc, test_cross_thread_register_remove);
    suite_add_tcase(s, tc);
    return test_main(s);
}
