/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * examples/aio-copy as a process: random files of 0 bytes, 1 byte,
 * 1 MiB + 123 and 8 MiB copied at queue depth 1 and 32, buffered and with
 * O_DIRECT, each result compared with the source byte for byte; --verify,
 * the progress and summary output, refused arguments, and SIGINT; DST "-"
 * through a pipe (byte for byte, and a reader that leaves early).
 *
 * The program's path comes from CMake (AIO_COPY_PATH); the engine from
 * $AIOCTX_ENGINE, passed on as --engine.  Files live in a temporary
 * directory under $TMPDIR (or /tmp); when that filesystem refuses O_DIRECT
 * (tmpfs), the current directory is tried, and failing that the O_DIRECT
 * test checks that aio-copy reports the refusal.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "test-spawn.h"
#include "test-tree.h"
#include "test-util.h"

#ifndef AIO_COPY_PATH
#error "AIO_COPY_PATH must name the aio-copy program"
#endif

static const size_t sizes[] = { 0, 1, (1 << 20) + 123, 8 << 20 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static char dir[1100];
static bool direct_ok;

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* size bytes from a generator seeded with seed. */
static void write_random(const char *name, size_t size, uint32_t seed)
{
    char path[4200];
    unsigned char buf[65536];
    uint32_t x = seed * 2654435761u + 1;
    FILE *f;

    path_of(path, sizeof(path), name);
    f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    while (size) {
        size_t n = size < sizeof(buf) ? size : sizeof(buf);

        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf[i] = (unsigned char)(x >> 8);
        }
        ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
        size -= n;
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* cmp: the files are equal in size and every byte. */
static void assert_same(const char *a_name, const char *b_name)
{
    char a_path[4200], b_path[4200];
    unsigned char a[65536], b[65536];
    FILE *fa, *fb;
    uint64_t off = 0;

    path_of(a_path, sizeof(a_path), a_name);
    path_of(b_path, sizeof(b_path), b_name);
    fa = fopen(a_path, "rb");
    fb = fopen(b_path, "rb");
    ck_assert_msg(fa && fb, "cannot open %s or %s", a_path, b_path);
    for (;;) {
        size_t na = fread(a, 1, sizeof(a), fa);
        size_t nb = fread(b, 1, sizeof(b), fb);
        size_t n = na < nb ? na : nb;

        if (memcmp(a, b, n) != 0) {
            size_t i = 0;

            while (a[i] == b[i]) {
                i++;
            }
            ck_abort_msg("%s and %s differ at byte %" PRIu64, a_name,
                         b_name, off + i);
        }
        ck_assert_msg(na == nb, "%s and %s differ in size (after %" PRIu64
                      " bytes)", a_name, b_name, off + n);
        if (!na) {
            break;
        }
        off += na;
    }
    fclose(fa);
    fclose(fb);
}

static bool probe_direct(const char *d)
{
    char path[4200];
    int fd;

    snprintf(path, sizeof(path), "%s/probe", d);
    fd = open(path, O_WRONLY | O_CREAT | O_DIRECT, 0600);
    if (fd >= 0) {
        close(fd);
    }
    unlink(path);
    return fd >= 0;
}

/*
 * Each test's directory lives in one made and removed by the parent
 * process (an unchecked fixture), since a failed test's process exits
 * without running its checked teardown.
 */
static char top[1024];

/* Unchecked fixture: TOP under $TMPDIR, or in the current directory when
 * that filesystem refuses O_DIRECT (tmpfs) and the current one does not. */
static void top_create(void)
{
    const char *tmp = getenv("TMPDIR");
    char cwd[960];

    snprintf(top, sizeof(top), "%s/aioctx-test-aio-copy-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(top)) {
        perror("mkdtemp");
        abort();
    }
    direct_ok = probe_direct(top);
    if (!direct_ok && getcwd(cwd, sizeof(cwd))) {
        char alt[sizeof(top)];

        snprintf(alt, sizeof(alt), "%s/aioctx-test-aio-copy-XXXXXX", cwd);
        if (mkdtemp(alt) && probe_direct(alt)) {
            rmdir(top);
            memcpy(top, alt, sizeof(top));
            direct_ok = true;
        } else {
            rmdir(alt);
        }
    }
}

/* Checked fixture: this test's directory. */
static void dir_create(void)
{
    snprintf(dir, sizeof(dir), "%s/t-XXXXXX", top);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void dir_remove(void)
{
    test_tree_remove(dir);
}

static void top_remove(void)
{
    test_tree_remove(top);
}

/* ------------------------------------------------------------------ */
/* Running aio-copy                                                    */
/* ------------------------------------------------------------------ */

/* aio-copy ARGS... SRC DST (names in the temporary dir), plus --engine. */
static int run_copy(Spawn *sp, const char *const *args, const char *src,
                    const char *dst)
{
    const char *engine = getenv("AIOCTX_ENGINE");
    const char *argv[24] = { AIO_COPY_PATH };
    char src_path[4200], dst_path[4200];
    int n = 1;

    while (*args && n < 18) {
        argv[n++] = *args++;
    }
    if (engine && *engine) {
        argv[n++] = "--engine";
        argv[n++] = engine;
    }
    path_of(src_path, sizeof(src_path), src);
    path_of(dst_path, sizeof(dst_path), dst);
    argv[n++] = src_path;
    argv[n++] = dst_path;
    argv[n] = NULL;
    return spawn_run(sp, argv);
}

/* Copy each size at qd 1 and 32 with extra args; check each copy. */
static void copy_all_sizes(const char *const *extra, const char *mode)
{
    static const char *const qds[] = { "1", "32" };

    for (size_t i = 0; i < NSIZES; i++) {
        char src[32], want[128], dst_path[4200];

        snprintf(src, sizeof(src), "src-%zu", i);
        write_random(src, sizes[i], (uint32_t)i + 1);
        for (int q = 0; q < 2; q++) {
            const char *args[8] = { "--qd", qds[q] };
            int n = 2, status;
            Spawn sp;

            for (int e = 0; extra[e]; e++) {
                args[n++] = extra[e];
            }
            args[n] = NULL;
            status = run_copy(&sp, args, src, "dst");
            ck_assert_msg(status == 0, "size %zu qd %s: exit %d\n%s\n%s",
                          sizes[i], qds[q], status, sp.out, sp.err);
            snprintf(want, sizeof(want), "aio-copy: copied %zu bytes in ",
                     sizes[i]);
            ck_assert_msg(strstr(sp.out, want), "%s", sp.out);
            snprintf(want, sizeof(want), "qd %s, bs 131072, %s)", qds[q],
                     mode);
            ck_assert_msg(strstr(sp.out, want), "%s", sp.out);
            assert_same(src, "dst");
            path_of(dst_path, sizeof(dst_path), "dst");
            ck_assert_int_eq(unlink(dst_path), 0); /* the next creates it */
        }
    }
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

START_TEST(test_copy_buffered)
{
    static const char *const extra[] = { NULL };

    copy_all_sizes(extra, "buffered");
}
END_TEST

START_TEST(test_copy_direct)
{
    static const char *const extra[] = { "--direct", NULL };
    static const char *const args[] = { "--direct", NULL };
    Spawn sp;

    if (direct_ok) {
        copy_all_sizes(extra, "O_DIRECT");
        return;
    }
    /* Nowhere to test O_DIRECT: the refusal must be reported. */
    write_random("src", 4096, 7);
    ck_assert_int_eq(run_copy(&sp, args, "src", "dst"), 1);
    ck_assert_msg(strstr(sp.err, "O_DIRECT"), "%s", sp.err);
}
END_TEST

/* --verify re-reads both files: exit 0 and "identical" for every size. */
START_TEST(test_verify)
{
    for (int direct = 0; direct < 1 + direct_ok; direct++) {
        for (size_t i = 0; i < NSIZES; i++) {
            const char *args[] = { "--verify", direct ? "--direct" : NULL,
                                   NULL };
            char src[32], want[96];
            Spawn sp;
            int status;

            snprintf(src, sizeof(src), "v-%zu", i);
            write_random(src, sizes[i], (uint32_t)i + 11);
            status = run_copy(&sp, args, src, "dst");
            ck_assert_msg(status == 0, "exit %d\n%s\n%s", status, sp.out,
                          sp.err);
            snprintf(want, sizeof(want),
                     "aio-copy: verified %zu bytes: identical\n", sizes[i]);
            ck_assert_msg(strstr(sp.out, want), "%s", sp.out);
            assert_same(src, "dst");
        }
    }
}
END_TEST

/* Block sizes that do not divide the file, more slots than blocks. */
START_TEST(test_odd_block_sizes)
{
    static const char *const bss[] = { "1000", "4K", "3M" };

    write_random("src", (1 << 20) + 123, 99);
    for (int i = 0; i < 3; i++) {
        const char *args[] = { "--bs", bss[i], "--qd", "7", "--verify",
                               NULL };
        Spawn sp;
        int status = run_copy(&sp, args, "src", "dst");

        ck_assert_msg(status == 0, "bs %s: exit %d\n%s", bss[i], status,
                      sp.err);
        assert_same("src", "dst");
    }
}
END_TEST

/* Not a terminal: plain progress lines on stderr, a summary on stdout. */
START_TEST(test_output)
{
    static const char *const args[] = { NULL };
    Spawn sp;

    write_random("src", 8 << 20, 5);
    ck_assert_int_eq(run_copy(&sp, args, "src", "dst"), 0);
    ck_assert_msg(strstr(sp.err, "aio-copy: copy 100% 8.0/8.0 MiB "),
                  "%s", sp.err);
    ck_assert_msg(!strchr(sp.err, '\r'), "a terminal bar on a pipe:\n%s",
                  sp.err);
    ck_assert_msg(strstr(sp.out, " MiB/s; engine "), "%s", sp.out);
}
END_TEST

START_TEST(test_refused)
{
    static const char *const none[] = { NULL };
    static const char *const bad_bs[] = { "--direct", "--bs", "1000", NULL };
    static const char *const bad_qd[] = { "--qd", "0", NULL };
    const char *help[] = { AIO_COPY_PATH, "--help", NULL };
    const char *one_arg[] = { AIO_COPY_PATH, "x", NULL };
    Spawn sp;

    ck_assert_int_eq(run_copy(&sp, none, "missing", "dst"), 1);
    ck_assert_msg(strstr(sp.err, "missing"), "%s", sp.err);

    write_random("src", 5000, 3);
    ck_assert_int_eq(run_copy(&sp, none, "src", "src"), 1);
    ck_assert_msg(strstr(sp.err, "same file"), "%s", sp.err);
    write_random("ref", 5000, 3);
    assert_same("src", "ref"); /* untouched */

    ck_assert_int_eq(run_copy(&sp, bad_bs, "src", "dst"), 2);
    ck_assert_int_eq(run_copy(&sp, bad_qd, "src", "dst"), 2);
    ck_assert_int_eq(spawn_run(&sp, one_arg), 2);
    ck_assert_int_eq(spawn_run(&sp, help), 0);
    ck_assert_msg(strstr(sp.out, "--qd") && strstr(sp.out, "--verify") &&
                  strstr(sp.out, "--direct") && strstr(sp.out, "--engine"),
                  "%s", sp.out);
}
END_TEST

/* SIGINT in the middle: in-flight requests finish, exit status 1. */
START_TEST(test_interrupted)
{
    char src_path[4200], dst_path[4200];
    const char *engine = getenv("AIOCTX_ENGINE");
    const char *argv[12] = { AIO_COPY_PATH, "--qd", "1", "--bs", "4K",
                             src_path, dst_path, NULL };
    Spawn sp;
    int fd, status;

    path_of(src_path, sizeof(src_path), "sparse");
    path_of(dst_path, sizeof(dst_path), "dst");
    fd = open(src_path, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)4 << 30), 0); /* 4 GiB of hole */
    close(fd);
    if (engine && *engine) {
        argv[5] = "--engine";
        argv[6] = engine;
        argv[7] = src_path;
        argv[8] = dst_path;
        argv[9] = NULL;
    }
    spawn_start(&sp, argv);
    spawn_expect(&sp, "aio-copy: copy "); /* the first progress line */
    ck_assert_int_eq(kill(sp.pid, SIGINT), 0);
    status = spawn_wait(&sp);
    ck_assert_msg(status == 1, "exit %d\n%s\n%s", status, sp.out, sp.err);
    ck_assert_msg(strstr(sp.err, "aio-copy: interrupted after "), "%s",
                  sp.err);
}
END_TEST

/* ------------------------------------------------------------------ */
/* DST "-": to a pipe with aio_file_transfer()                         */
/* ------------------------------------------------------------------ */

/* sh -c SCRIPT with $1 = aio-copy, $2 = the directory, $3 = --engine arg. */
static int run_sh(Spawn *sp, const char *script)
{
    const char *engine = getenv("AIOCTX_ENGINE");
    char eng[64];
    const char *argv[] = { "/bin/sh", "-c", script, "sh", AIO_COPY_PATH, dir,
                           eng, NULL };

    snprintf(eng, sizeof(eng), "--engine=%s",
             engine && *engine ? engine : "auto");
    return spawn_run(sp, argv);
}

START_TEST(test_to_stdout_pipe)
{
    for (size_t i = 0; i < NSIZES; i++) {
        char src[32], want[128];
        Spawn sp;
        int status;

        snprintf(src, sizeof(src), "src-%zu", i);
        write_random(src, sizes[i], (uint32_t)i + 7);
        snprintf(want, sizeof(want),
                 "\"$1\" \"$3\" \"$2/%s\" - 2>\"$2/log\" | cat >\"$2/dst\"",
                 src);
        status = run_sh(&sp, want);
        ck_assert_msg(status == 0, "size %zu: exit %d\n%s", sizes[i], status,
                      sp.err);
        assert_same(src, "dst");
    }
    /* The summary went to stderr, the data alone to the pipe. */
    {
        size_t len;
        char path[4200];
        char *log;
        FILE *f;

        path_of(path, sizeof(path), "log");
        f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        log = calloc(1, 65536);
        len = fread(log, 1, 65535, f);
        fclose(f);
        ck_assert_uint_gt(len, 0);
        ck_assert_msg(strstr(log, "aio-copy: sent 8388608 bytes to stdout "),
                      "%s", log);
        ck_assert_msg(strstr(log, "aio_file_transfer)"), "%s", log);
        free(log);
    }
}
END_TEST

START_TEST(test_to_stdout_reader_leaves)
{
    char path[4200];
    Spawn sp;
    int status;
    FILE *f;
    char buf[512] = "";

    write_random("src", 8 << 20, 3);
    /* head takes 10 bytes and exits: aio-copy gets EPIPE, not SIGPIPE. */
    status = run_sh(&sp, "(\"$1\" \"$3\" \"$2/src\" - 2>\"$2/log\"; "
                         "echo $? >\"$2/status\") | head -c 10 >/dev/null");
    ck_assert_int_eq(status, 0);
    path_of(path, sizeof(path), "status");
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    ck_assert_str_eq(buf, "1\n"); /* 141 would be death by SIGPIPE */
    path_of(path, sizeof(path), "log");
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    memset(buf, 0, sizeof(buf));
    ck_assert_uint_gt(fread(buf, 1, sizeof(buf) - 1, f), 0);
    fclose(f);
    ck_assert_msg(strstr(buf, "transfer to stdout failed: Broken pipe"),
                  "%s", buf);
    /* Not a pipe: refused with a message; --verify refused with "-". */
    status = run_sh(&sp, "\"$1\" \"$3\" \"$2/src\" - >\"$2/file\"");
    ck_assert_int_eq(status, 1);
    ck_assert_msg(strstr(sp.err, "must be a pipe or a socket"), "%s", sp.err);
    status = run_sh(&sp, "\"$1\" --verify \"$2/src\" - | cat >/dev/null");
    ck_assert_msg(strstr(sp.err, "--direct and --verify need a file"), "%s",
                  sp.err);
}
END_TEST

static Suite *aio_copy_suite(void)
{
    Suite *s = suite_create("aio-copy");
    TCase *tc = tcase_create("aio-copy");

    tcase_add_unchecked_fixture(tc, top_create, top_remove);
    tcase_add_checked_fixture(tc, dir_create, dir_remove);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_copy_buffered);
    tcase_add_test(tc, test_copy_direct);
    tcase_add_test(tc, test_verify);
    tcase_add_test(tc, test_odd_block_sizes);
    tcase_add_test(tc, test_output);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_interrupted);
    tcase_add_test(tc, test_to_stdout_pipe);
    tcase_add_test(tc, test_to_stdout_reader_leaves);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_main(aio_copy_suite());
}
