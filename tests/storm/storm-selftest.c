/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Checks that signal-storm.so, preloaded, really interrupts blocking
 * calls: in this process, in a forked child, and after an exec of a
 * forked child (the paths the suites take).  Exit 0 when all three see
 * nanosleep() cut short with EINTR well before its end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool interrupted(const char *who)
{
    struct timespec ts = { 2, 0 };

    if (nanosleep(&ts, NULL) == 0 || errno != EINTR) {
        fprintf(stderr, "%s: nanosleep was not interrupted\n", who);
        return false;
    }
    return true;
}

static int wait_child(pid_t pid)
{
    int status;
    pid_t ret;

    do {
        ret = waitpid(pid, &status, 0);
    } while (ret < 0 && errno == EINTR);
    if (ret != pid) {
        perror("waitpid");
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    pid_t pid;
    int status;

    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        return interrupted("exec'd child") ? 0 : 1;
    }
    if (!interrupted("process")) {
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        _exit(interrupted("forked child") ? 0 : 1);
    }
    if ((status = wait_child(pid)) != 0) {
        fprintf(stderr, "forked child: status %d\n", status);
        return 1;
    }
    /* Many exec's, as the race between a signal and exec is short. */
    for (int i = 0; i < 50; i++) {
        pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
            _exit(127);
        }
        if ((status = wait_child(pid)) != 0) {
            fprintf(stderr, "exec'd child %d: status %d\n", i, status);
            return 1;
        }
    }
    printf("storm: process, forked child and 50 exec'd children interrupted\n");
    return 0;
}
