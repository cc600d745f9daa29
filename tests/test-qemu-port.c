/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * examples/qemu-port (the worked example of docs/porting-from-qemu.md) as
 * a process on $AIOCTX_ENGINE: its sum of a file's bytes matches one
 * computed here, for an empty file, a file smaller than one chunk and one
 * of many chunks, with one and with several worker coroutines; a missing
 * file is reported through its Error with exit status 1.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>

#include "test-spawn.h"
#include "test-util.h"

#ifndef QEMU_PORT_PATH
#error "QEMU_PORT_PATH must name the qemu-port program"
#endif

/* Write size pseudo-random bytes to a new file; returns their sum. */
static uint64_t make_file(char *path, size_t size)
{
    static unsigned char buf[65536];
    uint64_t sum = 0, x = 0x9e3779b97f4a7c15ull ^ size;
    int fd = mkostemp(path, O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    while (size > 0) {
        size_t n = size < sizeof(buf) ? size : sizeof(buf);

        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = (unsigned char)(x >> 56);
            sum += buf[i];
        }
        ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
        size -= n;
    }
    close(fd);
    return sum;
}

START_TEST(test_sums)
{
    static const size_t sizes[] = { 0, 1000, 5 * 65536 + 17 };
    const char *workers[] = { "1", "5" };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char path[] = "/tmp/test-qemu-port-XXXXXX", want[128];
        uint64_t sum = make_file(path, sizes[i]);

        snprintf(want, sizeof(want), "%s: sum %" PRIu64 "\n", path, sum);
        for (int w = 0; w < 2; w++) {
            const char *argv[] = { QEMU_PORT_PATH, "--workers", workers[w],
                                   path, NULL };
            Spawn sp;

            ck_assert_int_eq(spawn_run(&sp, argv), 0);
            ck_assert_str_eq(sp.out, want);
        }
        unlink(path);
    }
}
END_TEST

START_TEST(test_missing_file)
{
    const char *argv[] = { QEMU_PORT_PATH, "/nonexistent/qemu-port", NULL };
    const char *usage[] = { QEMU_PORT_PATH, NULL };
    Spawn sp;

    ck_assert_int_eq(spawn_run(&sp, argv), 1);
    spawn_expect(&sp, "Could not open '/nonexistent/qemu-port': No such file "
                      "or directory");
    ck_assert_str_eq(sp.out, "");
    ck_assert_int_eq(spawn_run(&sp, usage), 2);
    spawn_expect(&sp, "usage: qemu-port");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qemu-port");
    TCase *tc = tcase_create("qemu-port");

    tcase_add_test(tc, test_sums);
    tcase_add_test(tc, test_missing_file);
    suite_add_tcase(s, tc);
    return test_main(s);
}
