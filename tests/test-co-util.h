/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the coroutine suites: a thread running its own
 * AioContext, resident memory, and running a misuse in a child process
 * to check that it aborts with a given message.
 */
#ifndef AIOCTX_TEST_CO_UTIL_H
#define AIOCTX_TEST_CO_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-util.h"

/*
 * Under ThreadSanitizer every coroutine is a TSan fiber, and gcc 12's
 * runtime gives each one about 1 MiB of trace memory and allows only
 * about 8000 of them alive: tests that keep many coroutines alive, or
 * churn through a million, use the smaller count there.  The behaviour
 * checked is the same; the full counts run in the other builds.
 */
#if defined(__SANITIZE_THREAD__)
#define TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_UNDER_TSAN 1
#endif
#endif
#ifndef TEST_UNDER_TSAN
#define TEST_UNDER_TSAN 0
#endif
#define TEST_CO_COUNT(normal, tsan) (TEST_UNDER_TSAN ? (tsan) : (normal))

#if defined(__SANITIZE_ADDRESS__)
#define TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#endif
#ifndef TEST_UNDER_ASAN
#define TEST_UNDER_ASAN 0
#endif

/* ---- a thread that runs aio_poll on its own context until stopped ---- */

typedef struct LoopThread {
    pthread_t tid;
    AioContext *ctx;
    bool stop; /* atomic */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;
} LoopThread;

static void *loop_thread_main(void *opaque)
{
    LoopThread *lt = opaque;
    AioContext *ctx = aio_context_new(NULL);

    qemu_set_current_aio_context(ctx);
    pthread_mutex_lock(&lt->lock);
    lt->ctx = ctx;
    lt->ready = true;
    pthread_cond_signal(&lt->cond);
    pthread_mutex_unlock(&lt->lock);
    if (!ctx) {
        return NULL;
    }
    while (!__atomic_load_n(&lt->stop, __ATOMIC_ACQUIRE)) {
        aio_poll(ctx, true);
    }
    /* Run whatever was scheduled together with the stop request. */
    while (aio_poll(ctx, false)) {
    }
    qemu_set_current_aio_context(NULL);
    return NULL;
}

static inline void loop_thread_start(LoopThread *lt)
{
    memset(lt, 0, sizeof(*lt));
    pthread_mutex_init(&lt->lock, NULL);
    pthread_cond_init(&lt->cond, NULL);
    ck_assert_int_eq(pthread_create(&lt->tid, NULL, loop_thread_main, lt), 0);
    pthread_mutex_lock(&lt->lock);
    while (!lt->ready) {
        pthread_cond_wait(&lt->cond, &lt->lock);
    }
    pthread_mutex_unlock(&lt->lock);
    ck_assert_msg(lt->ctx != NULL, "loop thread could not create a context");
}

static void loop_thread_stop_cb(void *opaque)
{
    LoopThread *lt = opaque;

    __atomic_store_n(&lt->stop, true, __ATOMIC_RELEASE);
}

static inline void loop_thread_stop(LoopThread *lt)
{
    aio_bh_schedule_oneshot(lt->ctx, loop_thread_stop_cb, lt);
    pthread_join(lt->tid, NULL);
    aio_context_unref(lt->ctx);
    pthread_mutex_destroy(&lt->lock);
    pthread_cond_destroy(&lt->cond);
}

/* ---- memory ---- */

/* Resident set size in bytes, from /proc/self/statm. */
static inline long test_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* ---- misuse in a child process ---- */

/*
 * Run fn(arg) in a forked child with stderr captured.  Asserts that the
 * child was killed by SIGABRT and that its stderr contains `expect`.
 */
static inline void test_expect_abort(void (*fn)(void *), void *arg,
                                     const char *expect)
{
    char out[4096];
    size_t len = 0;
    int pipefd[2], status;
    pid_t pid;

    ck_assert_int_eq(pipe(pipefd), 0);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], STDERR_FILENO);
        /* The library is silent unless the program asks for messages. */
        aio_log_set_handler(aio_log_to_stderr, NULL, AIO_LOG_WARNING);
        fn(arg);
        _exit(0); /* did not abort: the parent reports it */
    }
    close(pipefd[1]);
    for (;;) {
        ssize_t n = read(pipefd[0], out + len, sizeof(out) - 1 - len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        if (len == sizeof(out) - 1) {
            break;
        }
    }
    out[len] = '\0';
    close(pipefd[0]);
    ck_assert_int_eq(test_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "child did not abort (status 0x%x), stderr: %s", status,
                  out);
    ck_assert_msg(strstr(out, expect) != NULL,
                  "stderr lacks \"%s\": %s", expect, out);
}

#endif /* AIOCTX_TEST_CO_UTIL_H */
