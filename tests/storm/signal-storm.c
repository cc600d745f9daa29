/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A signal storm for the test suite, loaded with LD_PRELOAD.
 *
 * When $AIOCTX_STORM_US is set (a period in microseconds; 300 is typical),
 * each process that loads this object gets a real-time signal every period
 * from a POSIX timer.  Its handler does nothing and is installed without
 * SA_RESTART, so every blocking system call the signal lands in fails with
 * EINTR (or returns short): the code under test and the test helpers must
 * cope.  The signal is process-directed, so any thread that does not block
 * it may take it.
 *
 * fork() does not inherit timers: a pthread_atfork() child handler arms a
 * new one.  exec() deletes the timer but would keep a pending signal,
 * whose default action then kills the new image before its constructor
 * runs; the exec functions are wrapped to delete the timer and block the
 * signal first (the constructor unblocks it after installing the handler).
 * posix_spawn() children start without the timer until they exec.
 *
 * ctest itself is left alone (it is only the runner).  Not for sanitizer
 * builds: their runtimes must be the first object loaded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STORM_MAX_ARGS 256

static bool storm_on;
static bool timer_armed;
static timer_t storm_timer;
static long storm_period_ns;

static int storm_signo(void)
{
    return SIGRTMAX - 3;
}

/* Nothing to do: being there is what interrupts the blocking calls. */
static void storm_handler(int signo)
{
    (void)signo;
}

static void storm_mask(int how)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, storm_signo());
    pthread_sigmask(how, &set, NULL);
}

static void storm_arm(void)
{
    struct sigevent sev = {
        .sigev_notify = SIGEV_SIGNAL,
        .sigev_signo = storm_signo(),
    };
    struct itimerspec its = {
        .it_interval = { storm_period_ns / 1000000000L,
                         storm_period_ns % 1000000000L },
    };

    its.it_value = its.it_interval;
    if (timer_create(CLOCK_MONOTONIC, &sev, &storm_timer) != 0) {
        return;
    }
    if (timer_settime(storm_timer, 0, &its, NULL) != 0) {
        timer_delete(storm_timer);
        return;
    }
    timer_armed = true;
}

static void storm_disarm(void)
{
    if (timer_armed) {
        timer_delete(storm_timer);
        timer_armed = false;
    }
}

static void storm_atfork_child(void)
{
    /* The parent's timer is not inherited: this process gets its own. */
    timer_armed = false;
    storm_arm();
}

__attribute__((constructor)) static void storm_init(void)
{
    const char *us = getenv("AIOCTX_STORM_US");
    struct sigaction sa;
    long period;

    if (!us || !*us || strcmp(program_invocation_short_name, "ctest") == 0) {
        return;
    }
    period = strtol(us, NULL, 10);
    if (period <= 0) {
        return;
    }
    storm_period_ns = period * 1000L;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = storm_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls fail with EINTR */
    if (sigaction(storm_signo(), &sa, NULL) != 0) {
        return;
    }
    /* An exec wrapper of the previous image blocked it: take it now. */
    storm_mask(SIG_UNBLOCK);
    pthread_atfork(NULL, NULL, storm_atfork_child);
    storm_on = true;
    storm_arm();
}

/* Before an exec: no timer, and the signal blocked across it. */
static void storm_before_exec(sigset_t *old)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, storm_signo());
    pthread_sigmask(SIG_BLOCK, &set, old);
    storm_disarm();
}

/* The exec failed: back as before. */
static void storm_after_exec(const sigset_t *old)
{
    int saved = errno;

    if (storm_on) {
        storm_arm();
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
    errno = saved;
}

typedef int (*ExecFn)(const char *, char *const[], char *const[]);

/* The next definition of name (execve or execvpe), storm off around it. */
static int storm_exec(const char *name, const char *file, char *const argv[],
                      char *const envp[])
{
    ExecFn real = (ExecFn)dlsym(RTLD_NEXT, name);
    sigset_t old;
    int ret;

    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    storm_before_exec(&old);
    ret = real(file, argv, envp);
    storm_after_exec(&old);
    return ret;
}

int execve(const char *path, char *const argv[], char *const envp[])
{
    return storm_exec("execve", path, argv, envp);
}

int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return storm_exec("execvpe", file, argv, envp);
}

int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* execl() and execlp(): the arguments after arg into an array. */
static int storm_execl(const char *name, const char *file, const char *arg,
                       va_list ap)
{
    char *argv[STORM_MAX_ARGS + 1];
    int n = 0;

    argv[n++] = (char *)arg;
    while (arg) {
        if (n == STORM_MAX_ARGS) {
            errno = E2BIG;
            return -1;
        }
        arg = va_arg(ap, const char *);
        argv[n++] = (char *)arg;
    }
    return storm_exec(name, file, argv, environ);
}

int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    int ret;

    va_start(ap, arg);
    ret = storm_execl("execve", path, arg, ap);
    va_end(ap);
    return ret;
}

int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    int ret;

    va_start(ap, arg);
    ret = storm_execl("execvpe", file, arg, ap);
    va_end(ap);
    return ret;
}
