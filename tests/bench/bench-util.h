/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the benchmarks: the clock, RUNS from the environment,
 * CPU pinning, peer selection from the command line and the
 * RESULT|workload|variant|peer|unit|median|min|max|runs|check line that
 * ../../shared/bench-workloads.md asks for.
 *
 * A benchmark collects one sample per run in a BenchSeries and prints the
 * RESULT line with bench_series_report() once every run is done.
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
 * "variant/peer", so "libaioctx", "raw" or "chain/libev" all work).
 */
static inline bool bench_selected(int argc, char **argv, const char *peer)
{
    if (argc < 2) {
        return true;
    }
    for (int i = 1; i < argc; i++) {
        if (strstr(peer, argv[i])) {
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
