/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Running programs from Check tests: start one with its stdout and stderr
 * on pipes, wait (bounded) for text to appear or for it to exit, collect
 * both outputs.  Used by the suites that drive the example programs and
 * real clients (curl) as processes.
 */
#ifndef AIOCTX_TEST_SPAWN_H
#define AIOCTX_TEST_SPAWN_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-sys.h"

#define SPAWN_WAIT_MS 20000
#define SPAWN_OUT_MAX 65536

typedef struct Spawn {
    const char *prog;
    pid_t pid;
    int fd[2];                   /* stdout, stderr; -1 once closed */
    char out[SPAWN_OUT_MAX + 1]; /* what it wrote to stdout */
    char err[SPAWN_OUT_MAX + 1]; /* ... and to stderr */
    size_t len[2];
} Spawn;

/* Start argv[0] with argv (NULL-terminated). */
static inline void spawn_start(Spawn *sp, const char *const *argv)
{
    pid_t parent = getpid();
    int out[2], err[2];

    memset(sp, 0, sizeof(*sp));
    sp->prog = argv[0];
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    sp->pid = fork();
    ck_assert_int_ge(sp->pid, 0);
    if (sp->pid == 0) {
        /* A failed test exits without stopping it: die with the test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    sp->fd[0] = out[0];
    sp->fd[1] = err[0];
    fcntl(sp->fd[0], F_SETFL, O_NONBLOCK);
    fcntl(sp->fd[1], F_SETFL, O_NONBLOCK);
}

/* Read what is there, waiting up to timeout_ms; false when nothing came. */
static inline bool spawn_pump(Spawn *sp, int timeout_ms)
{
    struct pollfd pfd[2];
    bool got = false;

    for (int i = 0; i < 2; i++) {
        pfd[i].fd = sp->fd[i];
        pfd[i].events = POLLIN;
    }
    if (test_poll(pfd, 2, timeout_ms) <= 0) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        char *buf = i ? sp->err : sp->out;
        char scratch[4096];
        ssize_t n;

        if (sp->fd[i] < 0 || !(pfd[i].revents & (POLLIN | POLLHUP))) {
            continue;
        }
        if (sp->len[i] < SPAWN_OUT_MAX) {
            n = test_read(sp->fd[i], buf + sp->len[i], SPAWN_OUT_MAX - sp->len[i]);
        } else {
            n = test_read(sp->fd[i], scratch, sizeof(scratch)); /* dropped */
        }
        if (n > 0) {
            if (sp->len[i] < SPAWN_OUT_MAX) {
                sp->len[i] += n;
                buf[sp->len[i]] = '\0';
            }
            got = true;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(sp->fd[i]);
            sp->fd[i] = -1;
        }
    }
    return got;
}

/* Wait until stdout or stderr contains needle; returns where, or fails. */
static inline const char *spawn_expect(Spawn *sp, const char *needle)
{
    int64_t deadline = test_now_ms() + SPAWN_WAIT_MS;
    const char *at;

    while (!(at = strstr(sp->out, needle)) && !(at = strstr(sp->err, needle))) {
        if (test_now_ms() >= deadline ||
            (sp->fd[0] < 0 && sp->fd[1] < 0)) {
            break;
        }
        spawn_pump(sp, 50);
    }
    ck_assert_msg(at != NULL, "%s: no \"%s\" in the output:\n%s\n%s",
                  sp->prog, needle, sp->out, sp->err);
    return at;
}

/*
 * Wait (bounded) for the program to exit and read all its output.
 * Returns the exit status, or 128 + the signal that killed it.
 */
static inline int spawn_wait(Spawn *sp)
{
    int64_t deadline = test_now_ms() + SPAWN_WAIT_MS;
    int status = 0;
    pid_t ret;

    while ((ret = test_waitpid(sp->pid, &status, WNOHANG)) == 0 &&
           test_now_ms() < deadline) {
        spawn_pump(sp, 10);
    }
    if (ret == 0) {
        kill(sp->pid, SIGKILL);
        test_waitpid(sp->pid, &status, 0);
        ck_abort_msg("%s did not exit; output:\n%s\n%s", sp->prog, sp->out,
                     sp->err);
    }
    while (sp->fd[0] >= 0 || sp->fd[1] >= 0) {
        if (!spawn_pump(sp, 1000)) {
            break; /* a grandchild keeps the pipe: enough */
        }
    }
    for (int i = 0; i < 2; i++) {
        if (sp->fd[i] >= 0) {
            close(sp->fd[i]);
            sp->fd[i] = -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + WTERMSIG(status);
}

/* Run argv to completion; returns the exit status as spawn_wait(). */
static inline int spawn_run(Spawn *sp, const char *const *argv)
{
    spawn_start(sp, argv);
    return spawn_wait(sp);
}

#endif /* AIOCTX_TEST_SPAWN_H */
