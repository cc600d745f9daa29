/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O from coroutines on every engine: the coroutine forms of the
 * calls, and QEMU's laio_co_submit and luring_co_submit.
 */
#define _GNU_SOURCE
#include "test-file-io.h"

/* ---- the coroutine forms ---- */

typedef struct CoCase {
    TFile *f;
    bool done;
} CoCase;

static void coroutine_fn co_file_body(void *opaque)
{
    CoCase *c = opaque;
    int fd = c->f->fd;
    uint8_t out[6000], in[6000];
    struct iovec wr[3] = { { out, 1000 }, { out + 1000, 3000 },
                           { out + 4000, 2000 } };
    struct iovec rd[2] = { { in, 2500 }, { in + 2500, 3500 } };
    uint64_t seed = 99;

    fill_random(out, sizeof(out), &seed);
    ck_assert_int_eq(aio_file_co_pwritev(fd, 10000, wr, 3), 6000);
    memcpy(c->f->shadow + 10000, out, 6000);
    ck_assert_int_eq(aio_file_co_fsync(fd, false), 0);
    ck_assert_int_eq(aio_file_co_fsync(fd, true), 0);
    ck_assert_int_eq(aio_file_co_preadv(fd, 10000, rd, 2), 6000);
    ck_assert(memcmp(in, out, 6000) == 0);
    ck_assert_int_eq(aio_file_co_preadv(fd, c->f->size - 100, rd, 2), 100);
    ck_assert(memcmp(in, c->f->shadow + c->f->size - 100, 100) == 0);
    ck_assert_int_eq(aio_file_co_preadv(fd, c->f->size, rd, 2), 0);
    ck_assert_int_eq(aio_file_co_fsync(-1, false), -EBADF);
    ck_assert_int_eq(aio_file_co_preadv(fd, 0, NULL, 1), -EINVAL);
    c->done = true;
}

static void coroutine_fn co_no_context_body(void *opaque)
{
    CoCase *c = opaque;
    uint8_t buf[8];
    struct iovec iov = { buf, sizeof(buf) };

    ck_assert_int_eq(aio_file_co_preadv(c->f->fd, 0, &iov, 1), -EINVAL);
    ck_assert_int_eq(aio_file_co_fsync(c->f->fd, true), -EINVAL);
    c->done = true;
}

static void run_coroutine(AioContext *ctx, CoroutineEntry *entry,
                          CoCase *c)
{
    int64_t give_up = test_now_ns() + GIVE_UP_NS;

    c->done = false;
    qemu_coroutine_enter(qemu_coroutine_create(entry, c));
    while (!c->done) {
        ck_assert(test_now_ns() < give_up);
        aio_poll(ctx, true);
    }
}

START_TEST(test_coroutine_forms)
{
    AioContext *ctx = test_ctx_new();
    CoCase c;
    TFile f;

    tfile_open(&f, FSIZE, false, 15);
    c.f = &f;
    qemu_set_current_aio_context(NULL);
    qemu_coroutine_enter(qemu_coroutine_create(co_no_context_body, &c));
    ck_assert(c.done);
    qemu_set_current_aio_context(ctx);
    run_coroutine(ctx, co_file_body, &c);
    qemu_set_current_aio_context(NULL);
    tfile_verify(&f);
    tfile_close(&f);
    aio_context_unref(ctx);
}
END_TEST

/* ---- laio_co_submit and luring_co_submit ---- */

typedef int coroutine_fn RawSubmit(int fd, uint64_t offset,
                                   QEMUIOVector *qiov, int type);

static int coroutine_fn raw_laio(int fd, uint64_t offset, QEMUIOVector *qiov,
                                 int type)
{
    return laio_co_submit(fd, offset, qiov, type, 0);
}

static int coroutine_fn raw_laio_batch1(int fd, uint64_t offset,
                                        QEMUIOVector *qiov, int type)
{
    return laio_co_submit(fd, offset, qiov, type, 1);
}

static int coroutine_fn raw_luring(int fd, uint64_t offset,
                                   QEMUIOVector *qiov, int type)
{
    return luring_co_submit(NULL, fd, offset, qiov, type);
}

typedef struct RawCase {
    RawSubmit *submit;
    TFile *f;
    int index;
    int *running;
    bool expect_enxio;
    bool done;
} RawCase;

static void coroutine_fn raw_unset_body(void *opaque)
{
    RawCase *r = opaque;
    uint8_t buf[16];
    struct iovec iov = { buf, sizeof(buf) };
    QEMUIOVector qiov;

    qemu_iovec_init_external(&qiov, &iov, 1);
    ck_assert_int_eq(r->submit(r->f->fd, 0, &qiov, QEMU_AIO_READ), -ENXIO);
    r->done = true;
}

/* One coroutine's worth of QEMU-style requests on its own 64 KiB. */
static void coroutine_fn raw_body(void *opaque)
{
    RawCase *r = opaque;
    TFile *f = r->f;
    uint64_t base = (uint64_t)r->index * 65536, seed = 500 + r->index;
    /* Zeroed: valgrind does not see the kernel (io_uring, aio) fill in. */
    uint8_t *out = calloc(1, 20000), *in = calloc(1, 20000);
    QEMUIOVector qiov;

    fill_random(out, 20000, &seed);
    qemu_iovec_init(&qiov, 1);
    qemu_iovec_add(&qiov, out, 7000);
    qemu_iovec_add(&qiov, out + 7000, 13000);
    ck_assert_uint_eq(qiov.size, 20000);
    ck_assert_int_eq(qiov.niov, 2);
    ck_assert_int_eq(r->submit(f->fd, base + 100, &qiov, QEMU_AIO_WRITE), 0);
    memcpy(f->shadow + base + 100, out, 20000);
    ck_assert_int_eq(r->submit(f->fd, 0, NULL, QEMU_AIO_FLUSH), 0);

    qemu_iovec_reset(&qiov);
    ck_assert_uint_eq(qiov.size, 0);
    qemu_iovec_add(&qiov, in, 1);
    qemu_iovec_add(&qiov, in + 1, 19999);
    ck_assert_int_eq(r->submit(f->fd, base + 100, &qiov, QEMU_AIO_READ), 0);
    ck_assert(memcmp(in, out, 20000) == 0);

    /* Across the end of the file: the rest is zeroed, the result 0. */
    memset(in, 0xee, 20000);
    ck_assert_int_eq(r->submit(f->fd, f->size - 5000, &qiov, QEMU_AIO_READ),
                     0);
    ck_assert(memcmp(in, f->shadow + f->size - 5000, 5000) == 0);
    ck_assert(in[5000] == 0 && memcmp(in + 5000, in + 5001, 14999) == 0);
    /* An unknown type is -EIO; a bad descriptor the kernel's error. */
    ck_assert_int_eq(r->submit(f->fd, 0, &qiov, 0x4), -EIO);
    ck_assert_int_eq(r->submit(-1, 0, &qiov, QEMU_AIO_READ), -EBADF);
    qemu_iovec_destroy(&qiov);
    ck_assert_ptr_null(qiov.iov);
    free(out);
    free(in);
    (*r->running)--;
}

static void raw_case(RawSubmit *submit, bool linux_aio)
{
    AioContext *ctx = test_ctx_new();
    const char *engine = aio_context_get_engine_name(ctx);
    bool built_in = linux_aio ? !strcmp(engine, "linux-aio")
                              : !strcmp(engine, "io_uring");
    const char *name = linux_aio ? "linux-aio" : "io_uring";
    RawCase r[16];
    int running = 16;
    int64_t give_up = test_now_ns() + GIVE_UP_NS;
    Error *err = NULL;
    void *state;
    TFile f;

    tfile_open(&f, 16 * 65536 + 3000, false, 16);
    qemu_set_current_aio_context(ctx);
    state = linux_aio ? (void *)aio_get_linux_aio(ctx)
                      : (void *)aio_get_linux_io_uring(ctx);
    ck_assert(linux_aio && built_in ? state != NULL : state == NULL);
    if (!state) {
        r[0] = (RawCase){ .submit = submit, .f = &f };
        qemu_coroutine_enter(qemu_coroutine_create(raw_unset_body, &r[0]));
        ck_assert(r[0].done);
    }
    state = linux_aio ? (void *)aio_setup_linux_aio(ctx, &err)
                      : (void *)aio_setup_linux_io_uring(ctx, &err);
    if (!aio_engine_available(name)) {
        /* Refused here: the error says why. */
        ck_assert_ptr_null(state);
        ck_assert_ptr_nonnull(err);
        printf("%s refused: %s\n", name, error_get_pretty(err));
        error_free(err);
        goto out;
    }
    ck_assert_msg(state != NULL, "%s", err ? error_get_pretty(err) : "?");
    ck_assert(state == (linux_aio ? (void *)aio_setup_linux_aio(ctx, NULL)
                                  : (void *)aio_setup_linux_io_uring(ctx,
                                                                     NULL)));
    ck_assert(state == (linux_aio ? (void *)aio_get_linux_aio(ctx)
                                  : (void *)aio_get_linux_io_uring(ctx)));
    for (int i = 0; i < 16; i++) {
        r[i] = (RawCase){ .submit = submit, .f = &f, .index = i,
                          .running = &running };
        qemu_coroutine_enter(qemu_coroutine_create(raw_body, &r[i]));
    }
    while (running > 0) {
        ck_assert(test_now_ns() < give_up);
        aio_poll(ctx, true);
    }
    tfile_verify(&f);
    /* The engine-neutral calls keep working next to it. */
    random_reads(ctx, &f, false, 64, 32, 600);
out:
    qemu_set_current_aio_context(NULL);
    tfile_close(&f);
    aio_context_unref(ctx);
}

START_TEST(test_laio_co_submit)
{
    raw_case(raw_laio, true);
}
END_TEST

START_TEST(test_laio_co_submit_batch1)
{
    raw_case(raw_laio_batch1, true);
}
END_TEST

START_TEST(test_luring_co_submit)
{
    raw_case(raw_luring, false);
}
END_TEST


int main(void)
{
    Suite *s = suite_create("file-io-co");
    TCase *tc = tcase_create("coroutine");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_coroutine_forms);
    tcase_add_test(tc, test_laio_co_submit);
    tcase_add_test(tc, test_laio_co_submit_batch1);
    tcase_add_test(tc, test_luring_co_submit);
    suite_add_tcase(s, tc);
    return file_io_main(s);
}
