/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the benchmarks: the clock, RUNS from the environment,
 * CPU pinning, peer selection from the command line and the
 * RESULT|workload|variant|peer|unit|median|min|max|runs|check line that
 * ../../shared/bench-workloads.md asks for.
 *
 * A benchmark collects one sample per run in a BenchSeries and prints the
 * RESULT line with bench_series_report() once every run is done.
 *
 * BENCH_SCALE (a factor, default 1) multiplies the operation counts of the
 * programs that support it, for smoke runs (tests/bench/run --quick) and
 * for counting instructions under valgrind: the default counts are always
 * the workload's.  Such a program sets the operations of one run of each
 * series with bench_series_set_ops(), and bench_series_report() then also
 * prints "# ops|workload|variant|peer|n" for tests/bench/run.
 */
#ifndef AIOCTX_BENCH_UTIL_H
#define AIOCTX_BENCH_UTIL_H

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_RUNS 101

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* RUNS from the environment, else dflt; clamped to 1..BENCH_MAX_RUNS. */
static inline int bench_runs(int dflt)
{
    const char *s = getenv("RUNS");
    int n = s && *s ? atoi(s) : dflt;

    if (n < 1) {
        n = 1;
    }
    return n > BENCH_MAX_RUNS ? BENCH_MAX_RUNS : n;
}

/*
 * BENCH_SCALE from the environment: 1 unless it is a number > 0.  The
 * first call of a process that gets another factor says so on stderr.
 */
static inline double bench_scale(void)
{
    static bool said;
    const char *s = getenv("BENCH_SCALE");
    double f = s && *s ? atof(s) : 1;

    if (f <= 0) {
        f = 1;
    }
    if (f != 1 && !said) {
        fprintf(stderr, "# BENCH_SCALE=%g: reduced operation counts\n", f);
        said = true;
    }
    return f;
}

/* n scaled by BENCH_SCALE, rounded down to a multiple of unit (>= unit). */
static inline int64_t bench_scaled(int64_t n, int64_t unit)
{
    double f = bench_scale();
    int64_t m;

    if (f == 1) {
        return n;
    }
    m = (int64_t)((double)n * f) / unit * unit;
    return m < unit ? unit : m;
}

/* Pin the calling thread to one CPU; false (and a note) if refused. */
static inline bool bench_pin_self(int cpu)
{
    cpu_set_t set;
    int ret;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ret = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (ret != 0) {
        fprintf(stderr, "# cannot pin to CPU%d: %s\n", cpu, strerror(ret));
        return false;
    }
    return true;
}

/*
 * Peer selection: with no arguments every peer runs; otherwise a peer runs
 * when one argument is a substring of its name (the benchmarks pass
 * "variant/peer", so "libaioctx", "raw" or "chain/libev" all work).  An
 * argument that starts with '=' selects the one name equal to the rest
 * ("=chain/libaioctx-bh").
 */
static inline bool bench_selected(int argc, char **argv, const char *peer)
{
    if (argc < 2) {
        return true;
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '=' ? !strcmp(peer, argv[i] + 1)
                              : strstr(peer, argv[i]) != NULL) {
            return true;
        }
    }
    return false;
}

/* The samples of one workload/variant/peer, one per run. */
typedef struct BenchSeries {
    const char *workload;
    const char *variant;
    const char *peer;
    const char *unit;
    double samples[BENCH_MAX_RUNS];
    int nsamples;
    char check[96]; /* "ok", "ok(note)", or the first failure */
    bool failed;
    int64_t ops; /* operations per run, when the program tells */
} BenchSeries;

static inline void bench_series_init(BenchSeries *s, const char *workload,
                                     const char *variant, const char *peer,
                                     const char *unit)
{
    memset(s, 0, sizeof(*s));
    s->workload = workload;
    s->variant = variant;
    s->peer = peer;
    s->unit = unit;
    snprintf(s->check, sizeof(s->check), "ok");
}

/* A note that goes into the check column as ok(note) unless a run fails. */
static inline void bench_series_note(BenchSeries *s, const char *fmt, ...)
{
    char note[80];
    va_list ap;

    if (s->failed) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(note, sizeof(note), fmt, ap);
    va_end(ap);
    snprintf(s->check, sizeof(s->check), "ok(%s)", note);
}

/* The operations one run performs (the "# ops" line of the report). */
static inline void bench_series_set_ops(BenchSeries *s, int64_t ops)
{
    s->ops = ops;
}

/* Record one run's figure; a failed check marks the whole series invalid. */
static inline void bench_series_add(BenchSeries *s, double value, bool ok,
                                    const char *fail_fmt, ...)
{
    if (s->nsamples < BENCH_MAX_RUNS) {
        s->samples[s->nsamples++] = value;
    }
    fprintf(stderr, "# %s|%s|%s run %d: %.3f %s%s\n", s->workload, s->variant,
            s->peer, s->nsamples, value, s->unit, ok ? "" : " CHECK FAILED");
    if (!ok && !s->failed) {
        char why[80];
        va_list ap;

        va_start(ap, fail_fmt);
        vsnprintf(why, sizeof(why), fail_fmt, ap);
        va_end(ap);
        snprintf(s->check, sizeof(s->check), "FAIL(%s)", why);
        s->failed = true;
    }
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Median of the samples (mean of the middle two for an even count). */
static inline double bench_series_median(const BenchSeries *s)
{
    double sorted[BENCH_MAX_RUNS];
    int n = s->nsamples;

    if (n == 0) {
        return 0;
    }
    memcpy(sorted, s->samples, n * sizeof(double));
    qsort(sorted, n, sizeof(double), bench_cmp_double);
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static inline void bench_series_report(const BenchSeries *s)
{
    double lo = s->samples[0], hi = s->samples[0];

    if (s->nsamples == 0) {
        return;
    }
    for (int i = 1; i < s->nsamples; i++) {
        lo = s->samples[i] < lo ? s->samples[i] : lo;
        hi = s->samples[i] > hi ? s->samples[i] : hi;
    }
    printf("RESULT|%s|%s|%s|%s|%.3f|%.3f|%.3f|%d|%s\n", s->workload,
           s->variant, s->peer, s->unit, bench_series_median(s), lo, hi,
           s->nsamples, s->check);
    if (s->ops) {
        printf("# ops|%s|%s|%s|%lld\n", s->workload, s->variant, s->peer,
               (long long)s->ops);
    }
    fflush(stdout);
}

/* "RATIO a/b = x" for two reported series, when both have samples. */
static inline void bench_print_ratio(const BenchSeries *a,
                                     const BenchSeries *b)
{
    if (!a->nsamples || !b->nsamples) {
        return;
    }
    printf("# ratio %s|%s / %s|%s = %.2f\n", a->variant, a->peer, b->variant,
           b->peer, bench_series_median(a) / bench_series_median(b));
}

#endif /* AIOCTX_BENCH_UTIL_H */
