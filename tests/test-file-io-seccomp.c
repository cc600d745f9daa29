/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O under seccomp filters, in children: the other test-file-io*
 * suites again on the epoll fallback when io_uring_setup is refused, on
 * io_uring when io_uring_register is, and on linux-aio when io_submit
 * refuses batches with EAGAIN; requests that stay queued (not failed)
 * while io_submit always says EAGAIN; io_setup refused with EAGAIN
 * (linux-aio an Error, epoll still working).
 */
#define _GNU_SOURCE
#include "test-file-io.h"

#if TEST_HAVE_SECCOMP
/* The other test-file-io* suites, run again under each filter. */
static const char *const filtered_suites[] = {
    FILE_IO_PATH,
    FILE_IO_CANCEL_PATH,
    FILE_IO_THREADS_PATH,
    FILE_IO_CO_PATH,
};

/*
 * Run the suite at path again in a child after installing a filter making
 * nr fail with err (when argument arg is above `above`, or always for arg
 * -1), with the engine set to engine (NULL: the default).  The child
 * checks that the filter bites and which engine the default gives
 * (child_mode, see file_io_child_preflight), then runs its cases.
 */
static void rerun_one_filtered(const char *path, int nr, int err, int arg,
                               uint32_t above, const char *engine,
                               const char *child_mode)
{
    int status;
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int ret = test_seccomp_refuse(nr, err, arg, above);

        if (ret < 0) {
            fprintf(stderr, "seccomp: %s\n", strerror(-ret));
            _exit(3);
        }
        if (engine) {
            setenv("AIOCTX_ENGINE", engine, 1);
        } else {
            unsetenv("AIOCTX_ENGINE");
        }
        setenv(CHILD_ENV, child_mode, 1);
        unsetenv("CK_RUN_CASE");
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(test_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s under the filter failed (status %#x)", path, status);
}

/* rerun_one_filtered() for every suite in filtered_suites. */
static void rerun_suite_filtered(int nr, int err, int arg, uint32_t above,
                                 const char *engine, const char *child_mode)
{
    for (size_t i = 0;
         i < sizeof(filtered_suites) / sizeof(filtered_suites[0]); i++) {
        rerun_one_filtered(filtered_suites[i], nr, err, arg, above, engine,
                           child_mode);
    }
}

/* io_uring_setup refused: the default is epoll, and everything works. */
START_TEST(test_suite_on_epoll_fallback)
{
    rerun_suite_filtered(__NR_io_uring_setup, EPERM, -1, 0, NULL,
                         "expect-epoll");
}
END_TEST

/*
 * io_uring_register refused (the io_uring engine's ring starts disabled and
 * is enabled through it): the engine falls back to a ring that needs no
 * enabling, and everything works.
 */
START_TEST(test_suite_with_io_uring_register_refused)
{
    rerun_suite_filtered(__NR_io_uring_register, EPERM, -1, 0, "io_uring",
                         "io-uring-register-refused");
}
END_TEST

/* io_submit refuses every batch of more than one: EAGAIN, retried. */
START_TEST(test_suite_with_io_submit_eagain)
{
    if (!aio_engine_available("linux-aio")) {
        printf("linux-aio is not available here: case skipped\n");
        return;
    }
    rerun_suite_filtered(__NR_io_submit, EAGAIN, 1, 1, "linux-aio",
                         "io-submit-eagain");
}
END_TEST

/*
 * io_submit always says EAGAIN: requests wait (no callback runs, however
 * long the loop turns) until they are cancelled.  In a child.
 */
static int always_eagain_child(void)
{
    AioContext *ctx;
    uint8_t buf[10][512];
    Op ops[10];
    int pending = 0;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    BlockAIOCB *acbs[10];

    if (test_seccomp_refuse(__NR_io_submit, EAGAIN, -1, 0) < 0) {
        return 3;
    }
    ctx = ctx_with_engine("linux-aio", NULL);
    if (!ctx || fd < 0) {
        return 4;
    }
    for (int i = 0; i < 10; i++) {
        ops[i] = (Op){ .pending = &pending };
        ops[i].iov[0] = (struct iovec){ buf[i], 512 };
        pending++;
        acbs[i] = aio_file_preadv(ctx, fd, (uint64_t)i * 512, ops[i].iov, 1,
                                  op_cb, &ops[i]);
    }
    for (int i = 0; i < 40; i++) {
        aio_poll(ctx, i % 2); /* blocking ones end on the retry timer */
    }
    if (pending != 10) {
        fprintf(stderr, "%d requests completed under EAGAIN\n",
                10 - pending);
        return 5;
    }
    for (int i = 0; i < 10; i++) {
        bdrv_aio_cancel_async(acbs[i]);
    }
    for (int i = 0; i < 1000 && pending; i++) {
        aio_poll(ctx, true);
    }
    for (int i = 0; i < 10; i++) {
        if (ops[i].calls != 1 || ops[i].ret != -ECANCELED) {
            fprintf(stderr, "request %d: %d calls, %d\n", i, ops[i].calls,
                    ops[i].ret);
            return 6;
        }
    }
    aio_context_unref(ctx);
    close(fd);
    return 0;
}

START_TEST(test_io_submit_always_eagain)
{
    int status;
    pid_t pid;

    if (!aio_engine_available("linux-aio")) {
        printf("linux-aio is not available here: case skipped\n");
        return;
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        _exit(always_eagain_child());
    }
    ck_assert_int_eq(test_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %#x", status);
}
END_TEST

/*
 * io_setup for any events says EAGAIN (as when fs.aio-max-nr is used up);
 * the probe's io_setup(0) still says EINVAL, so linux-aio looks available.
 * In a child: asking for linux-aio is an Error naming the engine and the
 * cause, other contexts are still made, and aio_setup_linux_aio() on an
 * epoll context fails cleanly, leaving file I/O (thread pool) and bottom
 * halves working there.
 */
#define SETUP_EAGAIN_LEN (64 * 1024 + 100)

static void count_bh(void *opaque)
{
    (*(int *)opaque)++;
}

/* err is set, says EAGAIN, and its message contains who and the cause. */
static bool error_is_eagain(Error *err, const char *who)
{
    const char *msg = err ? error_get_pretty(err) : NULL;

    if (!err) {
        fprintf(stderr, "%s: no Error set\n", who);
        return false;
    }
    if (!strstr(msg, who) || !strstr(msg, strerror(EAGAIN))) {
        fprintf(stderr, "Error \"%s\" does not name \"%s\" and \"%s\"\n",
                msg, who, strerror(EAGAIN));
        return false;
    }
    if (error_get_errno(err) != EAGAIN) {
        fprintf(stderr, "Error \"%s\": errno %d, not EAGAIN\n", msg,
                error_get_errno(err));
        return false;
    }
    return true;
}

/* One request through ctx; its result, or INT_MIN when it did not end. */
static int child_one_op(AioContext *ctx, bool write, int fd,
                        const struct iovec *iov, int iovcnt)
{
    int pending = 1;
    Op op = { .pending = &pending };
    BlockAIOCB *acb;

    if (write) {
        acb = aio_file_pwritev(ctx, fd, 0, iov, iovcnt, op_cb, &op);
    } else {
        acb = aio_file_preadv(ctx, fd, 0, iov, iovcnt, op_cb, &op);
    }
    if (!acb || !test_poll_until_zero_within(ctx, &pending, GIVE_UP_NS) || op.calls != 1 ||
        !pthread_equal(op.thread, pthread_self())) {
        return INT_MIN;
    }
    return op.ret;
}

/*
 * Through ctx, write SETUP_EAGAIN_LEN random bytes (two buffers) to a new
 * file, then read them back (three buffers); compare with what was written
 * and with pread.  0, or an exit code after saying what failed.
 */
static int child_file_rw(AioContext *ctx, const char *what)
{
    char path[] = "/tmp/aioctx-file-io-XXXXXX";
    const size_t len = SETUP_EAGAIN_LEN, w1 = 5000, r1 = 4096, r2 = 40000;
    uint8_t *src = malloc(len), *dst = calloc(1, len), *raw = calloc(1, len);
    uint64_t seed = 0x5e7a9a17ULL;
    struct iovec wiov[2] = { { src, w1 }, { src + w1, len - w1 } };
    struct iovec riov[3] = { { dst, r1 }, { dst + r1, r2 },
                             { dst + r1 + r2, len - r1 - r2 } };
    int fd = mkostemp(path, O_CLOEXEC);
    int ret, rc = 0;

    if (fd < 0 || !src || !dst || !raw) {
        fprintf(stderr, "%s: no test file or no memory\n", what);
        rc = 20;
        goto out;
    }
    unlink(path);
    fill_random(src, len, &seed);
    ret = child_one_op(ctx, true, fd, wiov, 2);
    if (ret != (int)len) {
        fprintf(stderr, "%s: aio_file_pwritev gave %d, not %zu\n", what, ret,
                len);
        rc = 21;
        goto out;
    }
    if (pread(fd, raw, len, 0) != (ssize_t)len || memcmp(raw, src, len)) {
        fprintf(stderr, "%s: the file is not what was written\n", what);
        rc = 22;
        goto out;
    }
    ret = child_one_op(ctx, false, fd, riov, 3);
    if (ret != (int)len || memcmp(dst, src, len)) {
        fprintf(stderr, "%s: aio_file_preadv gave %d, not %zu, or other "
                "bytes\n", what, ret, len);
        rc = 23;
    }
out:
    free(src);
    free(dst);
    free(raw);
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

static int io_setup_eagain_child(void)
{
    aio_context_t probe = 0;
    AioContext *def, *ep;
    Error *err = NULL;
    QEMUBH *bh;
    int ran = 0, rc;

    /* io_setup(nr_events, ...): arg 0 above 0 refused. */
    if (test_seccomp_refuse(__NR_io_setup, EAGAIN, 0, 0) < 0) {
        return 3;
    }
    if (syscall(__NR_io_setup, 1, &probe) != -1 || errno != EAGAIN ||
        !aio_engine_available("linux-aio")) {
        fprintf(stderr, "io_setup(1) not refused with EAGAIN, or linux-aio "
                "not available\n");
        return 4;
    }

    /* 1. linux-aio asked for: an Error naming it and the cause. */
    if (ctx_with_engine("linux-aio", &err) ||
        !error_is_eagain(err, "linux-aio")) {
        fprintf(stderr, "linux-aio context: not refused as expected\n");
        return 5;
    }
    error_free(err);
    err = NULL;

    /* 2. The default (auto: the suite's AIOCTX_ENGINE goes) and epoll. */
    unsetenv("AIOCTX_ENGINE");
    def = aio_context_new(&err);
    if (!def || !strcmp(aio_context_get_engine_name(def), "linux-aio")) {
        fprintf(stderr, "default context: %s\n",
                def ? aio_context_get_engine_name(def)
                    : error_get_pretty(err));
        return 6;
    }
    ep = ctx_with_engine("epoll", &err);
    if (!ep) {
        fprintf(stderr, "epoll context: %s\n", error_get_pretty(err));
        return 7;
    }

    /* aio_setup_linux_aio() fails, twice alike, and sets nothing up. */
    for (int i = 0; i < 2; i++) {
        if (aio_setup_linux_aio(ep, &err) ||
            !error_is_eagain(err, "Linux AIO") || aio_get_linux_aio(ep)) {
            fprintf(stderr, "aio_setup_linux_aio (call %d): not refused "
                    "cleanly\n", i + 1);
            return 8;
        }
        error_free(err);
        err = NULL;
    }

    /* The epoll context still runs bottom halves and does file I/O. */
    bh = aio_bh_new(ep, count_bh, &ran);
    qemu_bh_schedule(bh);
    for (int i = 0; i < 100 && !ran; i++) {
        aio_poll(ep, true);
    }
    qemu_bh_delete(bh);
    if (ran != 1) {
        fprintf(stderr, "epoll: the bottom half ran %d times\n", ran);
        return 9;
    }
    rc = child_file_rw(ep, "epoll after aio_setup_linux_aio");
    if (rc) {
        return rc;
    }
    rc = child_file_rw(def, aio_context_get_engine_name(def));
    if (rc) {
        return rc + 10;
    }
    aio_context_unref(ep);
    aio_context_unref(def);
    return 0;
}

START_TEST(test_io_setup_eagain)
{
    int status;
    pid_t pid;

    if (!aio_engine_available("linux-aio")) {
        printf("linux-aio is not available here: case skipped\n");
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* exit(), not _exit(): LeakSanitizer checks the child too. */
        exit(io_setup_eagain_child());
    }
    ck_assert_int_eq(test_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %#x", status);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("file-io-seccomp");
#if TEST_HAVE_SECCOMP
    const char *engine = current_engine();
    TCase *tc = tcase_create("seccomp");

    tcase_set_timeout(tc, 300);
    if (!strcmp(engine, "io_uring") || !strcmp(engine, "auto")) {
        tcase_add_test(tc, test_suite_on_epoll_fallback);
    }
    if (!strcmp(engine, "io_uring")) {
        tcase_add_test(tc, test_suite_with_io_uring_register_refused);
    }
    if (!strcmp(engine, "linux-aio")) {
        tcase_add_test(tc, test_suite_with_io_submit_eagain);
        tcase_add_test(tc, test_io_submit_always_eagain);
        tcase_add_test(tc, test_io_setup_eagain);
    }
    suite_add_tcase(s, tc);
#endif
    return file_io_main(s);
}
