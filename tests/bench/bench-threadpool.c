/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W8 of bench-workloads.md: a thread pool driven from a loop thread.
 *
 * N = 1,000,000 trivial jobs (an atomic increment) are submitted from the
 * loop thread and every completion comes back to it (a callback that
 * counts).  Figure: million jobs per second, from the first submission to
 * the last completion callback.
 *
 *  burst1M:  all N submitted up front, then the loop runs until all are done;
 *  window64: 64 jobs in flight, each completion callback submits the next.
 *
 * Each with at most 1 and 4 worker threads (-t1, -t4).  Check: completions
 * == N and job bodies executed == N.
 *
 * Every measured run is preceded by an untimed warm-up pass of the same
 * workload, for every peer, so that all of them run with a warm heap:
 * otherwise the figures mostly measure page faults (a peer that frees a
 * large block between runs makes glibc hand the heap back to the kernel).
 *
 * Peers:
 *  libaioctx       thread_pool_submit_aio() on the loop thread's context,
 *                  a fresh context (and pool) per run, max threads 1 or 4;
 *  libuv           uv_queue_work() with UV_THREADPOOL_SIZE=1 or 4; libuv reads
 *                  that variable once per process, so every libuv run is a
 *                  forked child that sets it first and reports back through
 *                  a pipe;
 *  raw-mutex+cond  the plain pool: a FIFO under a mutex, the condvar
 *                  signalled only when a worker is idle; a done list under a
 *                  second mutex, its eventfd written only when that list was
 *                  empty; the loop thread sleeps in epoll_wait on the eventfd.
 *
 * Usage: bench-threadpool [substring of variant/peer...]  (RUNS=n, default 5)
 * BENCH_SCALE=f multiplies the number of jobs (smoke runs).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <aioctx.h>

#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#include "bench-util.h"

#define N_JOBS 1000000LL

/* The jobs of one run in this process: N_JOBS times BENCH_SCALE. */
static long long n_jobs = N_JOBS;
#define WINDOW 64

typedef enum { MODE_BURST, MODE_WINDOW } Mode;

typedef struct {
    int64_t elapsed_ns;
    long long completed;
    long long executed;
    bool setup_failed;
    char why[80];
} RunResult;

typedef void RunFn(Mode mode, int threads, long long n, RunResult *r);

/* Job bodies of every peer count here. */
static long long executed;

static void job_body(void)
{
    __atomic_fetch_add(&executed, 1, __ATOMIC_RELAXED);
}

/* ---- libaioctx ---- */

typedef struct {
    Mode mode;
    long long n;
    long long submitted;
    long long completed;
} AioState;

static int aio_job(void *arg)
{
    (void)arg;
    job_body();
    return 0;
}

static void aio_done(void *opaque, int ret)
{
    AioState *st = opaque;

    (void)ret;
    st->completed++;
    if (st->mode == MODE_WINDOW && st->submitted < st->n) {
        st->submitted++;
        thread_pool_submit_aio(aio_job, NULL, aio_done, st);
    }
}

static void run_libaioctx(Mode mode, int threads, long long n, RunResult *r)
{
    Error *err = NULL;
    AioContext *ctx = aio_context_new(&err);
    AioState st = { .mode = mode, .n = n };
    long long first;
    int64_t start;

    if (!ctx) {
        r->setup_failed = true;
        snprintf(r->why, sizeof(r->why), "%s", error_get_pretty(err));
        error_free(err);
        return;
    }
    qemu_set_current_aio_context(ctx);
    aio_context_set_thread_pool_params(ctx, 0, threads, &error_abort);
    first = mode == MODE_BURST ? n : (n < WINDOW ? n : WINDOW);

    start = bench_now_ns();
    for (st.submitted = 0; st.submitted < first; st.submitted++) {
        thread_pool_submit_aio(aio_job, NULL, aio_done, &st);
    }
    while (st.completed < n) {
        aio_poll(ctx, true);
    }
    r->elapsed_ns = bench_now_ns() - start;
    r->completed = st.completed;
    aio_context_unref(ctx);
}

/* ---- raw mutex + condvar pool ---- */

typedef struct RawJob RawJob;
struct RawJob {
    RawJob *next;
};

typedef struct {
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    RawJob *qhead;
    RawJob **qtail;
    int idle;
    bool stop;

    pthread_mutex_t dlock;
    RawJob *dhead;
    RawJob **dtail;
    int efd;
    int epfd;
    pthread_t threads[8];
    int nthreads;
} RawPool;

static void *raw_worker(void *opaque)
{
    RawPool *p = opaque;

    pthread_mutex_lock(&p->qlock);
    for (;;) {
        RawJob *j;
        bool was_empty;

        while (!p->qhead && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->qcond, &p->qlock);
            p->idle--;
        }
        if (!p->qhead) {
            break;
        }
        j = p->qhead;
        p->qhead = j->next;
        if (!p->qhead) {
            p->qtail = &p->qhead;
        }
        pthread_mutex_unlock(&p->qlock);

        job_body();

        j->next = NULL;
        pthread_mutex_lock(&p->dlock);
        was_empty = !p->dhead;
        *p->dtail = j;
        p->dtail = &j->next;
        pthread_mutex_unlock(&p->dlock);
        if (was_empty) {
            uint64_t one = 1;

            if (write(p->efd, &one, sizeof(one)) < 0) {
                abort();
            }
        }
        pthread_mutex_lock(&p->qlock);
    }
    pthread_mutex_unlock(&p->qlock);
    return NULL;
}

static void raw_submit(RawPool *p, RawJob *j)
{
    j->next = NULL;
    pthread_mutex_lock(&p->qlock);
    *p->qtail = j;
    p->qtail = &j->next;
    if (p->idle) {
        pthread_cond_signal(&p->qcond);
    }
    pthread_mutex_unlock(&p->qlock);
}

static bool raw_init(RawPool *p, int threads)
{
    struct epoll_event ev = { .events = EPOLLIN };

    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->qlock, NULL);
    pthread_cond_init(&p->qcond, NULL);
    pthread_mutex_init(&p->dlock, NULL);
    p->qtail = &p->qhead;
    p->dtail = &p->dhead;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->efd < 0 || p->epfd < 0 ||
        epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->efd, &ev) < 0) {
        return false;
    }
    for (p->nthreads = 0; p->nthreads < threads; p->nthreads++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, raw_worker, p)) {
            return false;
        }
    }
    return true;
}

static void raw_destroy(RawPool *p)
{
    pthread_mutex_lock(&p->qlock);
    p->stop = true;
    pthread_cond_broadcast(&p->qcond);
    pthread_mutex_unlock(&p->qlock);
    for (int i = 0; i < p->nthreads; i++) {
        pthread_join(p->threads[i], NULL);
    }
    close(p->efd);
    close(p->epfd);
    pthread_mutex_destroy(&p->qlock);
    pthread_cond_destroy(&p->qcond);
    pthread_mutex_destroy(&p->dlock);
}

static void run_raw(Mode mode, int threads, long long n, RunResult *r)
{
    long long njobs = mode == MODE_BURST ? n : WINDOW;
    RawJob *jobs = calloc(njobs, sizeof(*jobs));
    long long submitted = 0, completed = 0;
    RawPool p;
    int64_t start;

    if (!jobs || !raw_init(&p, threads)) {
        r->setup_failed = true;
        snprintf(r->why, sizeof(r->why), "raw pool set-up: %s",
                 strerror(errno));
        free(jobs);
        return;
    }
    start = bench_now_ns();
    for (; submitted < njobs && submitted < n; submitted++) {
        raw_submit(&p, &jobs[submitted]);
    }
    while (completed < n) {
        struct epoll_event ev;
        uint64_t val;
        RawJob *j;

        if (epoll_wait(p.epfd, &ev, 1, -1) < 1) {
            continue;
        }
        if (read(p.efd, &val, sizeof(val)) < 0 && errno != EAGAIN) {
            abort();
        }
        pthread_mutex_lock(&p.dlock);
        j = p.dhead;
        p.dhead = NULL;
        p.dtail = &p.dhead;
        pthread_mutex_unlock(&p.dlock);
        while (j) {
            RawJob *next = j->next;

            completed++;
            if (mode == MODE_WINDOW && submitted < n) {
                submitted++;
                raw_submit(&p, j);
            }
            j = next;
        }
    }
    r->elapsed_ns = bench_now_ns() - start;
    r->completed = completed;
    raw_destroy(&p);
    free(jobs);
}

/* ---- libuv (in a forked child, see the top) ---- */

#ifdef HAVE_LIBUV
typedef struct {
    uv_loop_t *loop;
    uv_work_t *reqs;
    Mode mode;
    long long n;
    long long submitted;
    long long completed;
} UvState;

static void uv_job(uv_work_t *req)
{
    (void)req;
    job_body();
}

static void uv_done(uv_work_t *req, int status)
{
    UvState *st = req->data;

    (void)status;
    st->completed++;
    if (st->mode == MODE_WINDOW && st->submitted < st->n) {
        st->submitted++;
        uv_queue_work(st->loop, req, uv_job, uv_done);
    }
}

static void run_libuv_here(Mode mode, long long n, RunResult *r)
{
    long long first = mode == MODE_BURST ? n : (n < WINDOW ? n : WINDOW);
    UvState st = { .mode = mode, .n = n };
    uv_loop_t loop;
    int64_t start;

    st.reqs = calloc(first, sizeof(uv_work_t));
    if (!st.reqs || uv_loop_init(&loop) != 0) {
        r->setup_failed = true;
        snprintf(r->why, sizeof(r->why), "libuv set-up failed");
        return;
    }
    st.loop = &loop;
    start = bench_now_ns();
    for (st.submitted = 0; st.submitted < first; st.submitted++) {
        st.reqs[st.submitted].data = &st;
        uv_queue_work(&loop, &st.reqs[st.submitted], uv_job, uv_done);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    r->elapsed_ns = bench_now_ns() - start;
    r->completed = st.completed;
    uv_loop_close(&loop);
    free(st.reqs);
}

static void run_libuv(Mode mode, int threads, long long n, RunResult *r)
{
    int fds[2];
    pid_t pid;
    ssize_t got;
    int status;

    if (pipe(fds) < 0) {
        r->setup_failed = true;
        snprintf(r->why, sizeof(r->why), "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        char size[16];

        close(fds[0]);
        snprintf(size, sizeof(size), "%d", threads);
        setenv("UV_THREADPOOL_SIZE", size, 1);
        memset(r, 0, sizeof(*r));
        run_libuv_here(mode, n, r); /* warm-up */
        memset(r, 0, sizeof(*r));
        executed = 0;
        run_libuv_here(mode, n, r);
        r->executed = __atomic_load_n(&executed, __ATOMIC_RELAXED);
        if (write(fds[1], r, sizeof(*r)) != sizeof(*r)) {
            _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    got = pid > 0 ? read(fds[0], r, sizeof(*r)) : -1;
    close(fds[0]);
    if (pid > 0) {
        waitpid(pid, &status, 0);
    }
    if (got != sizeof(*r)) {
        memset(r, 0, sizeof(*r));
        r->setup_failed = true;
        snprintf(r->why, sizeof(r->why), "libuv child failed");
    }
}
#endif

/* ---- driver ---- */

typedef struct {
    const char *variant;
    const char *peer;
    Mode mode;
    int threads;
    RunFn *fn;
    BenchSeries series;
} W8Peer;

#define PEER_SET(variant, mode, threads)                                       \
    { variant, "libaioctx", mode, threads, run_libaioctx, { 0 } },             \
    { variant, "raw-mutex+cond", mode, threads, run_raw, { 0 } }

static W8Peer peers[] = {
    PEER_SET("burst1M-t1", MODE_BURST, 1),
    PEER_SET("burst1M-t4", MODE_BURST, 4),
    PEER_SET("window64-t1", MODE_WINDOW, 1),
    PEER_SET("window64-t4", MODE_WINDOW, 4),
#ifdef HAVE_LIBUV
    { "burst1M-t1", "libuv", MODE_BURST, 1, run_libuv, { 0 } },
    { "burst1M-t4", "libuv", MODE_BURST, 4, run_libuv, { 0 } },
    { "window64-t1", "libuv", MODE_WINDOW, 1, run_libuv, { 0 } },
    { "window64-t4", "libuv", MODE_WINDOW, 4, run_libuv, { 0 } },
#endif
};

#define NPEERS ((int)(sizeof(peers) / sizeof(peers[0])))

static void run_one(W8Peer *p)
{
    RunResult r = { 0 };
    bool forked = p->fn != run_libaioctx && p->fn != run_raw;
    bool ok;

    if (!forked) {
        p->fn(p->mode, p->threads, n_jobs, &r); /* warm-up */
        memset(&r, 0, sizeof(r));
    }
    executed = 0;
    p->fn(p->mode, p->threads, n_jobs, &r);
    if (r.setup_failed) {
        bench_series_add(&p->series, 0, false, "%s", r.why);
        return;
    }
    if (!forked) {
        r.executed = __atomic_load_n(&executed, __ATOMIC_RELAXED);
    }
    ok = r.completed == n_jobs && r.executed == n_jobs;
    bench_series_add(&p->series, (double)n_jobs * 1e3 / (double)r.elapsed_ns,
                     ok, "completed=%lld executed=%lld", r.completed,
                     r.executed);
}

static W8Peer *find_peer(const char *variant, const char *peer)
{
    for (int i = 0; i < NPEERS; i++) {
        if (!strcmp(peers[i].variant, variant) &&
            !strcmp(peers[i].peer, peer) && peers[i].series.nsamples) {
            return &peers[i];
        }
    }
    return NULL;
}

static void print_ratios(void)
{
    const char *variants[] = { "burst1M-t1", "burst1M-t4", "window64-t1",
                               "window64-t4" };
    const char *bases[] = { "libuv", "raw-mutex+cond" };

    for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
        W8Peer *a = find_peer(variants[v], "libaioctx");

        for (size_t b = 0; a && b < sizeof(bases) / sizeof(bases[0]); b++) {
            W8Peer *base = find_peer(variants[v], bases[b]);

            if (base) {
                bench_print_ratio(&a->series, &base->series);
            }
        }
    }
}

int main(int argc, char **argv)
{
    int runs = bench_runs(5);
    AioContext *probe = aio_context_new(NULL);

    n_jobs = bench_scaled(N_JOBS, WINDOW);
    printf("# W8 thread pool: %lld jobs, %d runs, libaioctx engine %s\n",
           n_jobs, runs, probe ? aio_context_get_engine_name(probe) : "(none)");
    fflush(stdout);
    aio_context_unref(probe);
    for (int i = 0; i < NPEERS; i++) {
        bench_series_init(&peers[i].series, "W8", peers[i].variant,
                          peers[i].peer, "Mjobs/s");
        if (n_jobs != N_JOBS) {
            bench_series_note(&peers[i].series, "N=%lld", n_jobs);
        }
    }
    /* Interleave the peers run by run so that noise hits all of them. */
    for (int run = 0; run < runs; run++) {
        for (int i = 0; i < NPEERS; i++) {
            char name[96];

            snprintf(name, sizeof(name), "%s/%s", peers[i].variant,
                     peers[i].peer);
            if (bench_selected(argc, argv, name)) {
                run_one(&peers[i]);
            }
        }
    }
    for (int i = 0; i < NPEERS; i++) {
        bench_series_report(&peers[i].series);
    }
    print_ratios();
    return 0;
}
