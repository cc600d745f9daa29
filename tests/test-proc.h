/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers for suites that watch the process's threads and descriptors
 * through /proc/self: counting them, waiting for a count, thread names.
 */
#ifndef AIOCTX_TEST_PROC_H
#define AIOCTX_TEST_PROC_H

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "test-sys.h"

/* Entries of a /proc directory, "." and ".." excluded. */
static inline int proc_count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    if (!d) {
        return -1;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Threads of this process. */
static inline int proc_task_count(void)
{
    return proc_count_entries("/proc/self/task");
}

/* Open descriptors of this process (the directory's own one excluded). */
static inline int proc_fd_count(void)
{
    return proc_count_entries("/proc/self/fd") - 1;
}

/* Threads whose name (comm) is exactly name. */
static inline int proc_task_count_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    int n = 0;

    if (!d) {
        return -1;
    }
    while ((de = readdir(d))) {
        char path[300], comm[64] = "";
        FILE *f;

        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        f = fopen(path, "r");
        if (!f) {
            continue; /* the thread just exited */
        }
        if (fgets(comm, sizeof(comm), f)) {
            comm[strcspn(comm, "\n")] = '\0';
        }
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

static inline void proc_sleep_ms(int ms)
{
    test_sleep_ms(ms);
}

static inline void *proc_nop_thread(void *arg)
{
    return arg;
}

/*
 * The thread count to compare against later.  Starts and joins one thread
 * first, because some runtimes (ThreadSanitizer) add a helper thread of
 * their own the first time a thread is created.
 */
static inline int proc_task_baseline(void)
{
    int before = proc_task_count();
    pthread_t t;
    int n;

    if (pthread_create(&t, NULL, proc_nop_thread, NULL) == 0) {
        pthread_join(t, NULL);
    }
    /*
     * The joined thread can stay listed for a moment: wait for it to go,
     * but not for long, as a runtime's helper thread never goes.
     */
    n = proc_task_count();
    for (int waited = 0; n > before && waited < 200; waited++) {
        proc_sleep_ms(1);
        n = proc_task_count();
    }
    return n;
}

/*
 * Wait (up to timeout_ms) until count() returns want; returns the last
 * value seen, so the caller asserts on it.  A joined thread can stay listed
 * in /proc/self/task for a moment after pthread_join() returns, so thread
 * counts are always read through this.
 */
static inline int proc_wait_count(int (*count)(void), int want,
                                  int timeout_ms)
{
    int n = count();

    for (int waited = 0; n != want && waited < timeout_ms; waited++) {
        proc_sleep_ms(1);
        n = count();
    }
    return n;
}

#endif /* AIOCTX_TEST_PROC_H */
