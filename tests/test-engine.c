/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Engines: which one "auto" takes, asking for io_uring by name, falling
 * back to epoll when a seccomp filter refuses io_uring_setup, asking for
 * linux-aio by name and its refusal when io_setup fails with EAGAIN, and
 * behaviour every engine must share under load: many fds with a subset
 * ready, level-triggered readiness across re-arms and CQ overflow, a
 * handler replaced over and over while data arrives, no stale readiness
 * after busy-polling did the work, and sub-millisecond sleeps ended by
 * another thread or by a timer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-seccomp.h"
#include "test-util.h"

#define NPAIRS 1000

static void remove_fd(AioContext *ctx, int fd)
{
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
}

static AioContext *ctx_with_engine(const char *name, Error **errp)
{
    AioContextOptions opts = { .engine = name };

    return aio_context_new_with_options(&opts, errp);
}

/* A pipe handler fires once for one byte: the context really works. */
static void smoke_read_cb(void *opaque)
{
    int *st = opaque; /* st[0] fd, st[1] calls */
    char ch;

    if (read(st[0], &ch, 1) == 1) {
        st[1]++;
    }
}

static bool smoke_works(AioContext *ctx)
{
    int p[2], st[2] = { -1, 0 };
    bool ok;

    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
        return false;
    }
    st[0] = p[0];
    aio_set_fd_handler(ctx, p[0], smoke_read_cb, NULL, NULL, NULL, st);
    ok = write(p[1], "x", 1) == 1;
    for (int i = 0; ok && st[1] == 0 && i < 100; i++) {
        aio_poll(ctx, true);
    }
    remove_fd(ctx, p[0]);
    aio_poll(ctx, false);
    close(p[0]);
    close(p[1]);
    return ok && st[1] == 1;
}

/*
 * Run fn(out) in a child process (so environment changes and seccomp
 * filters stay there) and return what it wrote, at most size - 1 bytes.
 */
static void run_in_child(void (*fn)(char *out, size_t size), char *out,
                         size_t size)
{
    int p[2], status;
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char buf[512] = "";

        close(p[0]);
        fn(buf, sizeof(buf));
        if (test_write(p[1], buf, strlen(buf)) < 0) {
            _exit(2);
        }
        _exit(0);
    }
    close(p[1]);
    while (len < size - 1 &&
           (n = test_read(p[0], out + len, size - 1 - len)) > 0) {
        len += (size_t)n;
    }
    out[len] = '\0';
    close(p[0]);
    ck_assert_int_eq(test_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child failed (status %d), said: %s", status, out);
}

/* ---- selection ---- */

static void default_engine_child(char *out, size_t size)
{
    Error *err = NULL;
    AioContext *ctx;

    unsetenv("AIOCTX_ENGINE");
    ctx = aio_context_new(&err);
    if (!ctx) {
        snprintf(out, size, "error: %s", error_get_pretty(err));
        return;
    }
    snprintf(out, size, "%s%s", aio_context_get_engine_name(ctx),
             smoke_works(ctx) ? "" : " (broken)");
    aio_context_unref(ctx);
}

START_TEST(test_default_prefers_io_uring)
{
    char got[512];

    run_in_child(default_engine_child, got, sizeof(got));
    ck_assert_str_eq(got, aio_engine_available("io_uring") ? "io_uring"
                                                            : "epoll");
}
END_TEST

#if defined(AIOCTX_HAVE_IO_URING)
START_TEST(test_explicit_io_uring)
{
    Error *err = NULL;
    AioContext *ctx = ctx_with_engine("io_uring", &err);

    if (!aio_engine_available("io_uring")) {
        /* Refused here: the error names the engine and the cause. */
        ck_assert_ptr_null(ctx);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strncmp(error_get_pretty(err), "io_uring: ", 10) == 0,
                      "message: %s", error_get_pretty(err));
        error_free(err);
        return;
    }
    ck_assert_msg(ctx != NULL, "io_uring: %s",
                  err ? error_get_pretty(err) : "(no error)");
    ck_assert_ptr_null(err);
    ck_assert_str_eq(aio_context_get_engine_name(ctx), "io_uring");
    ck_assert(smoke_works(ctx));
    aio_context_unref(ctx);
}
END_TEST
#endif

#ifdef TEST_HAVE_SECCOMP
static __attribute__((unused)) void seccomp_child(char *out, size_t size)
{
    Error *err = NULL;
    AioContext *ctx;
    int ret;

    unsetenv("AIOCTX_ENGINE");
    ret = test_seccomp_refuse(__NR_io_uring_setup, EPERM, -1, 0);
    if (ret < 0) {
        snprintf(out, size, "seccomp: %s", strerror(-ret));
        return;
    }
    if (aio_engine_available("io_uring")) {
        snprintf(out, size, "io_uring still reported available");
        return;
    }

    /* The default quietly takes epoll. */
    ctx = aio_context_new(&err);
    if (!ctx || err) {
        snprintf(out, size, "default: %s",
                 err ? error_get_pretty(err) : "no context, no error");
        return;
    }
    if (strcmp(aio_context_get_engine_name(ctx), "epoll") != 0 ||
        !smoke_works(ctx)) {
        snprintf(out, size, "default engine %s (works: %d)",
                 aio_context_get_engine_name(ctx), smoke_works(ctx));
        return;
    }
    aio_context_unref(ctx);

    /* "auto" is the same thing. */
    ctx = ctx_with_engine("auto", &err);
    if (!ctx || strcmp(aio_context_get_engine_name(ctx), "epoll") != 0) {
        snprintf(out, size, "auto: %s",
                 ctx ? aio_context_get_engine_name(ctx)
                     : error_get_pretty(err));
        return;
    }
    aio_context_unref(ctx);

    /* Asking by name is an error that names the cause. */
    ctx = ctx_with_engine("io_uring", &err);
    if (ctx) {
        snprintf(out, size, "explicit io_uring was created");
        return;
    }
    snprintf(out, size, "%s", err ? error_get_pretty(err) : "(no error)");
    error_free(err);
}

#if defined(AIOCTX_HAVE_IO_URING)
START_TEST(test_seccomp_refused_io_uring)
{
    char got[512];

    run_in_child(seccomp_child, got, sizeof(got));
    ck_assert_str_eq(got, "io_uring: Operation not permitted");
}
END_TEST
#endif

/* ---- Linux AIO: by name, and refused when io_setup says EAGAIN ---- */

static void file_io_done_cb(void *opaque, int ret)
{
    *(int *)opaque = ret;
}

/* One 64-byte read of this program through ctx's file I/O; its result. */
static int file_io_works(AioContext *ctx)
{
    char buf[64];
    struct iovec iov = { buf, sizeof(buf) };
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    int ret = INT32_MIN;

    if (fd < 0 ||
        !aio_file_preadv(ctx, fd, 0, &iov, 1, file_io_done_cb, &ret)) {
        return -1;
    }
    for (int i = 0; ret == INT32_MIN && i < 1000; i++) {
        aio_poll(ctx, true);
    }
    close(fd);
    return ret;
}

#if defined(AIOCTX_HAVE_LINUX_AIO)
START_TEST(test_explicit_linux_aio)
{
    Error *err = NULL;
    AioContext *ctx = ctx_with_engine("linux-aio", &err);

    if (!aio_engine_available("linux-aio")) {
        ck_assert_ptr_null(ctx);
        ck_assert_msg(strncmp(error_get_pretty(err), "linux-aio: ", 11) == 0,
                      "message: %s", error_get_pretty(err));
        error_free(err);
        return;
    }
    ck_assert_msg(ctx != NULL, "linux-aio: %s",
                  err ? error_get_pretty(err) : "(no error)");
    ck_assert_str_eq(aio_context_get_engine_name(ctx), "linux-aio");
    ck_assert_ptr_nonnull(aio_get_linux_aio(ctx));
    ck_assert(smoke_works(ctx));
    ck_assert_int_eq(file_io_works(ctx), 64);
    aio_context_unref(ctx);
}
END_TEST
#endif

/*
 * io_setup fails with EAGAIN (as when fs.aio-max-nr is used up): the
 * default context is unaffected (auto never takes linux-aio) and its file
 * I/O works; Linux AIO on it and the linux-aio engine by name are errors
 * naming the cause.
 */
static __attribute__((unused)) void io_setup_eagain_child(char *out,
                                                          size_t size)
{
    const char *want = aio_engine_available("io_uring") ? "io_uring"
                                                        : "epoll";
    char laio_msg[200];
    Error *err = NULL;
    AioContext *ctx;
    int ret;

    unsetenv("AIOCTX_ENGINE");
    ret = test_seccomp_refuse(__NR_io_setup, EAGAIN, -1, 0);
    if (ret < 0) {
        snprintf(out, size, "seccomp: %s", strerror(-ret));
        return;
    }
    if (aio_engine_available("linux-aio")) {
        snprintf(out, size, "linux-aio still reported available");
        return;
    }
    ctx = aio_context_new(&err);
    if (!ctx || strcmp(aio_context_get_engine_name(ctx), want) != 0 ||
        !smoke_works(ctx) || file_io_works(ctx) != 64) {
        snprintf(out, size, "default: %s",
                 ctx ? aio_context_get_engine_name(ctx)
                     : error_get_pretty(err));
        return;
    }
    if (aio_setup_linux_aio(ctx, &err) || !err) {
        snprintf(out, size, "aio_setup_linux_aio succeeded");
        return;
    }
    snprintf(laio_msg, sizeof(laio_msg), "%s", error_get_pretty(err));
    error_free(err);
    err = NULL;
    if (file_io_works(ctx) != 64) {
        snprintf(out, size, "file I/O broken after the refusal");
        return;
    }
    aio_context_unref(ctx);

    ctx = ctx_with_engine("linux-aio", &err);
    if (ctx) {
        snprintf(out, size, "explicit linux-aio was created");
        return;
    }
    snprintf(out, size, "%s | %s", laio_msg,
             err ? error_get_pretty(err) : "(no error)");
    error_free(err);
}

#if defined(AIOCTX_HAVE_LINUX_AIO)
START_TEST(test_io_setup_eagain)
{
    char got[512];

    run_in_child(io_setup_eagain_child, got, sizeof(got));
    ck_assert_str_eq(got, "Linux AIO: Resource temporarily unavailable | "
                          "linux-aio: Resource temporarily unavailable");
}
END_TEST
#endif
#endif

/* ---- many handlers, a subset ready ---- */

typedef struct Many {
    int sv[NPAIRS][2];
    int calls[NPAIRS];
    int bytes[NPAIRS];
} Many;

typedef struct ManyRef {
    Many *m;
    int i;
} ManyRef;

/* Reads one byte per call: what is left must be reported again. */
static void many_read_one_cb(void *opaque)
{
    ManyRef *r = opaque;
    char ch;

    r->m->calls[r->i]++;
    if (read(r->m->sv[r->i][0], &ch, 1) == 1) {
        r->m->bytes[r->i]++;
    }
}

static void raise_fd_limit(int need)
{
    struct rlimit rl;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < (rlim_t)need && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/*
 * Write nbytes to every pair with i % mod == 0, then poll until each of
 * them was called nbytes times (one byte per call); no other pair may run.
 */
static void many_round(AioContext *ctx, Many *m, int mod, int nbytes)
{
    int expected = 0, total = 0;
    char buf[8] = "abcdefg";

    memset(m->calls, 0, sizeof(m->calls));
    memset(m->bytes, 0, sizeof(m->bytes));
    for (int i = 0; i < NPAIRS; i += mod) {
        ck_assert_int_eq(write(m->sv[i][1], buf, nbytes), nbytes);
        expected += nbytes;
    }
    for (int iter = 0; total < expected && iter < 10 * nbytes + 100;
         iter++) {
        aio_poll(ctx, true);
        total = 0;
        for (int i = 0; i < NPAIRS; i++) {
            total += m->bytes[i];
        }
    }
    for (int i = 0; i < NPAIRS; i++) {
        int want = i % mod == 0 ? nbytes : 0;

        ck_assert_msg(m->calls[i] == want && m->bytes[i] == want,
                      "pair %d: %d calls, %d bytes, expected %d", i,
                      m->calls[i], m->bytes[i], want);
    }
    /* Everything was read: nothing more runs. */
    ck_assert(!aio_poll(ctx, false));
}

START_TEST(test_many_handlers_subset_ready)
{
    AioContext *ctx = test_ctx_new();
    Many *m = calloc(1, sizeof(*m));
    ManyRef *refs = calloc(NPAIRS, sizeof(*refs));

    raise_fd_limit(2 * NPAIRS + 64);
    for (int i = 0; i < NPAIRS; i++) {
        make_socketpair(m->sv[i]);
        refs[i] = (ManyRef){ m, i };
        aio_set_fd_handler(ctx, m->sv[i][0], many_read_one_cb, NULL, NULL,
                           NULL, &refs[i]);
    }
    test_consume_notify(ctx);
    ck_assert(!aio_poll(ctx, false));

    many_round(ctx, m, 13, 1); /* 77 ready */
    many_round(ctx, m, 3, 3);  /* 334 ready, each three times */
    many_round(ctx, m, 1, 2);  /* all at once, more than a CQ holds */
    many_round(ctx, m, 97, 1); /* and still watched after that */

    for (int i = 0; i < NPAIRS; i++) {
        remove_fd(ctx, m->sv[i][0]);
        close(m->sv[i][0]);
        close(m->sv[i][1]);
    }
    aio_context_unref(ctx);
    free(refs);
    free(m);
}
END_TEST

/* ---- a handler replaced many times while data arrives ---- */

#define STORM_BYTES 2000

typedef struct Storm {
    AioContext *ctx;
    int sv[2];
    int got;     /* bytes read by callbacks (home thread) */
    int calls_a; /* per callback, home thread */
    int calls_b;
    bool done;   /* atomic: the home thread has everything */
} Storm;

static void storm_cb_a(void *opaque);
static void storm_cb_b(void *opaque);

static void storm_read_one(Storm *s)
{
    char ch;

    if (read(s->sv[0], &ch, 1) == 1) {
        s->got++;
    }
}

/* Each callback reads one byte and hands the fd to the other one. */
static void storm_cb_a(void *opaque)
{
    Storm *s = opaque;

    s->calls_a++;
    storm_read_one(s);
    aio_set_fd_handler(s->ctx, s->sv[0], storm_cb_b, NULL, NULL, NULL, s);
}

static void storm_cb_b(void *opaque)
{
    Storm *s = opaque;

    s->calls_b++;
    storm_read_one(s);
    aio_set_fd_handler(s->ctx, s->sv[0], storm_cb_a, NULL, NULL, NULL, s);
}

START_TEST(test_replace_in_callback_keeps_level)
{
    AioContext *ctx = test_ctx_new();
    Storm s = { .ctx = ctx };
    char buf[STORM_BYTES];

    make_socketpair(s.sv);
    memset(buf, 'z', sizeof(buf));
    aio_set_fd_handler(ctx, s.sv[0], storm_cb_a, NULL, NULL, NULL, &s);
    ck_assert_int_eq(write(s.sv[1], buf, sizeof(buf)), sizeof(buf));
    for (int i = 0; s.got < STORM_BYTES && i < 4 * STORM_BYTES; i++) {
        ck_assert(aio_poll(ctx, true));
    }
    ck_assert_int_eq(s.got, STORM_BYTES);
    ck_assert_int_eq(s.calls_a, STORM_BYTES / 2);
    ck_assert_int_eq(s.calls_b, STORM_BYTES / 2);
    ck_assert(!aio_poll(ctx, false));
    remove_fd(ctx, s.sv[0]);
    close(s.sv[0]);
    close(s.sv[1]);
    aio_context_unref(ctx);
}
END_TEST

static void storm_count_cb(void *opaque)
{
    Storm *s = opaque;

    s->calls_a++;
    storm_read_one(s);
}

static void storm_tick_cb(void *opaque)
{
    (void)opaque; /* only wakes the loop up */
}

/* Replace the handler from this thread while writing bytes in between. */
static void *storm_thread(void *opaque)
{
    Storm *s = opaque;
    int64_t give_up = test_now_ns() + 10 * 1000000000LL;
    int sent = 0;

    for (int i = 0; sent < STORM_BYTES; i++) {
        aio_set_fd_handler(s->ctx, s->sv[0],
                           i % 2 ? storm_count_cb : storm_cb_a, NULL, NULL,
                           NULL, s);
        if (i % 3 == 0) {
            ssize_t n = write(s->sv[1], "y", 1);

            if (n < 0 && errno == EAGAIN) {
                test_sleep_us(100); /* the reader is behind: let it catch up */
                continue;
            }
            ck_assert_int_eq(n, 1);
            sent++;
        }
    }
    /* Leave a handler that does not replace itself, then keep waking. */
    aio_set_fd_handler(s->ctx, s->sv[0], storm_count_cb, NULL, NULL, NULL, s);
    while (!__atomic_load_n(&s->done, __ATOMIC_SEQ_CST) && test_now_ns() < give_up) {
        aio_bh_schedule_oneshot(s->ctx, storm_tick_cb, s);
        test_sleep_us(1000);
    }
    return NULL;
}

START_TEST(test_replace_from_thread_loses_nothing)
{
    AioContext *ctx = test_ctx_new();
    Storm s = { .ctx = ctx };
    int64_t give_up = test_now_ns() + 10 * 1000000000LL;
    pthread_t th;

    make_socketpair(s.sv);
    ck_assert_int_eq(pthread_create(&th, NULL, storm_thread, &s), 0);
    while (s.got < STORM_BYTES && test_now_ns() < give_up) {
        aio_poll(ctx, true);
    }
    __atomic_store_n(&s.done, true, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    ck_assert_int_eq(s.got, STORM_BYTES);
    remove_fd(ctx, s.sv[0]);
    aio_poll(ctx, false);
    close(s.sv[0]);
    close(s.sv[1]);
    aio_context_unref(ctx);
}
END_TEST

/* ---- busy-polling consumes work the fd also announced ---- */

typedef struct Polled {
    int p[2];
    int reads;
    int poll_readys;
    bool armed; /* what io_poll reports */
} Polled;

static void polled_drain(Polled *s)
{
    char buf[64];

    while (read(s->p[0], buf, sizeof(buf)) > 0) {
        continue;
    }
}

static void polled_read_cb(void *opaque)
{
    Polled *s = opaque;

    s->reads++;
    polled_drain(s);
}

static bool polled_poll_cb(void *opaque)
{
    Polled *s = opaque;

    return s->armed;
}

static void polled_ready_cb(void *opaque)
{
    Polled *s = opaque;

    s->poll_readys++;
    s->armed = false;
    polled_drain(s);
}

static void plain_read_cb(void *opaque)
{
    (void)opaque;
}

START_TEST(test_poll_ready_leaves_no_stale_readiness)
{
    AioContext *ctx = test_ctx_new();
    Polled s = { 0 };
    Error *err = NULL;
    int plain[2];

    ck_assert_int_eq(pipe2(s.p, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(plain, O_NONBLOCK | O_CLOEXEC), 0);
    aio_context_set_poll_params(ctx, 50 * 1000000LL, 0, 0, &err);
    ck_assert_ptr_null(err);
    aio_set_fd_handler(ctx, s.p[0], polled_read_cb, NULL, polled_poll_cb,
                       polled_ready_cb, &s);
    test_consume_notify(ctx);
    for (int i = 0; i < 4; i++) {
        aio_poll(ctx, false); /* the poll time grows from 0 */
    }
    ck_assert(!aio_pending(ctx)); /* the fd is watched, nothing is ready */

    for (int round = 1; round <= 3; round++) {
        /* Both io_poll and the fd report the work; busy-polling wins. */
        s.armed = true;
        ck_assert_int_eq(write(s.p[1], "x", 1), 1);
        ck_assert(aio_poll(ctx, true));
        ck_assert_int_eq(s.poll_readys, round);
        ck_assert_int_eq(s.reads, 0);

        /* The work is done: the fd's earlier readiness must not show. */
        ck_assert(!aio_pending(ctx));
        ck_assert(!aio_poll(ctx, false));
        ck_assert_int_eq(s.reads, 0);
    }

    /* Handlers without io_poll make every iteration ask the engine. */
    aio_set_fd_handler(ctx, plain[0], plain_read_cb, NULL, NULL, NULL, NULL);
    aio_poll(ctx, false);
    ck_assert(!aio_poll(ctx, false));
    ck_assert_int_eq(s.reads, 0);

    /* And the fd is still watched. */
    ck_assert_int_eq(write(s.p[1], "y", 1), 1);
    ck_assert(aio_poll(ctx, true));
    ck_assert_int_eq(s.reads, 1);

    remove_fd(ctx, plain[0]);
    remove_fd(ctx, s.p[0]);
    aio_poll(ctx, false);
    close(plain[0]);
    close(plain[1]);
    close(s.p[0]);
    close(s.p[1]);
    aio_context_unref(ctx);
}
END_TEST

/* ---- sub-millisecond sleeps ---- */

typedef struct Later {
    AioContext *ctx;
    int64_t delay_ns;
    int runs; /* atomic */
} Later;

static void later_cb(void *opaque)
{
    Later *l = opaque;

    __atomic_add_fetch(&l->runs, 1, __ATOMIC_SEQ_CST);
}

static void *later_thread(void *opaque)
{
    Later *l = opaque;

    test_sleep_ns(l->delay_ns);
    aio_bh_schedule_oneshot(l->ctx, later_cb, l);
    return NULL;
}

START_TEST(test_blocking_poll_woken_by_late_bh)
{
    AioContext *ctx = test_ctx_new();
    Later l = { .ctx = ctx, .delay_ns = 2000000 };
    pthread_t th;

    test_consume_notify(ctx);
    for (int round = 0; round < 20; round++) {
        l.runs = 0;
        ck_assert_int_eq(pthread_create(&th, NULL, later_thread, &l), 0);
        /* Nothing else is scheduled: only the BH can end this. */
        ck_assert(aio_poll(ctx, true));
        pthread_join(th, NULL);
        ck_assert_int_eq(__atomic_load_n(&l.runs, __ATOMIC_SEQ_CST), 1);
        ck_assert(!aio_poll(ctx, false));
    }
    aio_context_unref(ctx);
}
END_TEST

static void timer_cb(void *opaque)
{
    int64_t *fired_at = opaque;

    *fired_at = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

START_TEST(test_sub_ms_timer)
{
    AioContext *ctx = test_ctx_new();
    int64_t fired_at = 0, deadline;
    QEMUTimer *t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS,
                                 timer_cb, &fired_at);

    ck_assert_ptr_nonnull(t);
    test_consume_notify(ctx);
    for (int delay = 50000; delay <= 800000; delay *= 2) {
        fired_at = 0;
        deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + delay;
        timer_mod(t, deadline);
        for (int i = 0; !fired_at && i < 1000; i++) {
            aio_poll(ctx, true);
        }
        /* Fired, and never before its deadline. */
        ck_assert_int_ne(fired_at, 0);
        ck_assert_int_ge(fired_at, deadline);
    }
    timer_free(t);
    aio_context_unref(ctx);
}
END_TEST

#if !defined(AIOCTX_HAVE_IO_URING) || !defined(AIOCTX_HAVE_LINUX_AIO)
/* An engine left out of the build: named, refused, and its QEMU calls too. */
static void check_left_out(const char *name)
{
    Error *err = NULL;
    AioContext *ctx = ctx_with_engine(name, &err);
    const char *built;
    char want[128];

    ck_assert_ptr_null(ctx);
    ck_assert_ptr_nonnull(err);
    snprintf(want, sizeof(want), "engine '%s' was left out of this build", name);
    ck_assert_msg(strncmp(error_get_pretty(err), want, strlen(want)) == 0,
                  "message: %s", error_get_pretty(err));
    built = strstr(error_get_pretty(err), "(built: ");
    ck_assert_ptr_nonnull(built);
    ck_assert_msg(strstr(built, "epoll") && !strstr(built, name),
                  "the built list: %s", built);
    error_free(err);
    ck_assert(!aio_engine_available(name));
}

START_TEST(test_left_out_engines)
{
    AioContext *ctx = test_ctx_new();
    Error *err = NULL;

#ifndef AIOCTX_HAVE_IO_URING
    check_left_out("io_uring");
    ck_assert_ptr_null(aio_setup_linux_io_uring(ctx, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "io_uring: libaioctx was built without it: "
                     "Operation not supported");
    error_free(err);
    err = NULL;
    ck_assert_ptr_null(aio_get_linux_io_uring(ctx));
#endif
#ifndef AIOCTX_HAVE_LINUX_AIO
    check_left_out("linux-aio");
    ck_assert_ptr_null(aio_setup_linux_aio(ctx, &err));
    ck_assert_str_eq(error_get_pretty(err),
                     "Linux AIO: libaioctx was built without it: "
                     "Operation not supported");
    error_free(err);
    ck_assert_ptr_null(aio_get_linux_aio(ctx));
#endif
    ck_assert(smoke_works(ctx)); /* the context is still fine */
    aio_context_unref(ctx);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("selection");

    signal(SIGPIPE, SIG_IGN);
    tcase_add_test(tc, test_default_prefers_io_uring);
#ifdef AIOCTX_HAVE_IO_URING
    tcase_add_test(tc, test_explicit_io_uring);
#ifdef TEST_HAVE_SECCOMP
    tcase_add_test(tc, test_seccomp_refused_io_uring);
#endif
#endif
#if defined(AIOCTX_HAVE_LINUX_AIO) && defined(TEST_HAVE_SECCOMP)
    tcase_add_test(tc, test_explicit_linux_aio);
    tcase_add_test(tc, test_io_setup_eagain);
#endif
#if !defined(AIOCTX_HAVE_IO_URING) || !defined(AIOCTX_HAVE_LINUX_AIO)
    tcase_add_test(tc, test_left_out_engines);
#endif
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_test(tc, test_many_handlers_subset_ready);
    tcase_add_test(tc, test_replace_in_callback_keeps_level);
    tcase_add_test(tc, test_replace_from_thread_loses_nothing);
    tcase_add_test(tc, test_poll_ready_leaves_no_stale_readiness);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeouts");
    tcase_add_test(tc, test_blocking_poll_woken_by_late_bh);
    tcase_add_test(tc, test_sub_ms_timer);
    suite_add_tcase(s, tc);
    return test_main(s);
}
