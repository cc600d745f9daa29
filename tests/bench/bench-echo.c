/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W5 of bench-workloads.md: TCP echo on loopback, round trips per second.
 *
 * The driver: for every server it starts a fresh server process pinned to
 * CPU0, reads the port it prints, runs the load generator w5-load pinned to
 * CPU1 (50 connections, 64-byte ping-pong, 5 s), then stops the server
 * with SIGTERM.  Servers: examples/echo-server (libaioctx, one thread, per
 * engine) and the peers of w5-server (raw epoll, libev, libevent raw and
 * bufferevent, libuv), interleaved run by run so noise hits all of them.
 * RUNS (default 3) runs each; one RESULT line per server in thousands of
 * round trips per second, then the ratios against srv-epoll and against
 * the best event library.  A second line per server gives the server
 * process's CPU time (user + system, from wait4) per round trip in
 * microseconds, the less noise-sensitive figure on a busy machine.
 *
 *   bench-echo [substring of peer...]   (RUNS=n, W5_SECONDS=s)
 *
 * Check: w5-load saw no mismatching echo and no closed connection, and
 * echo-server exited 0 after SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#ifndef W5_SERVER_PATH
#error "W5_SERVER_PATH must name the w5-server program"
#endif
#ifndef W5_LOAD_PATH
#error "W5_LOAD_PATH must name the w5-load program"
#endif

#define SERVER_CPU 0
#define LOAD_CPU 1
#define MAX_SERVERS 16
#define WAIT_MS 15000

typedef struct W5Server {
    char peer[48];
    const char *argv[10];
    bool libaioctx; /* must exit 0 on SIGTERM */
    BenchSeries series;
    BenchSeries cpu; /* server CPU us per round trip */
} W5Server;

typedef struct Proc {
    pid_t pid;
    int out_fd;
    char out[4096];
    size_t len;
} Proc;

static int64_t now_ms(void)
{
    return bench_now_ns() / 1000000;
}

static bool proc_start(Proc *p, const char *const *argv, int cpu)
{
    int fds[2];

    memset(p, 0, sizeof(*p));
    if (pipe2(fds, O_CLOEXEC) < 0) {
        return false;
    }
    p->pid = fork();
    if (p->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (p->pid == 0) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
        dup2(fds[1], STDOUT_FILENO);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "# cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    p->out_fd = fds[0];
    return true;
}

/* Read more output (up to timeout_ms); false at EOF or on timeout. */
static bool proc_read(Proc *p, int timeout_ms)
{
    struct pollfd pfd = { .fd = p->out_fd, .events = POLLIN };
    ssize_t n;

    if (p->len + 1 >= sizeof(p->out) || poll(&pfd, 1, timeout_ms) <= 0) {
        return false;
    }
    n = read(p->out_fd, p->out + p->len, sizeof(p->out) - 1 - p->len);
    if (n <= 0) {
        return false;
    }
    p->len += n;
    p->out[p->len] = '\0';
    return true;
}

/*
 * Wait for exit (bounded, then SIGKILL); returns the wait status and, in
 * *cpu_us when not NULL, the child's user + system CPU time.
 */
static int proc_wait(Proc *p, double *cpu_us)
{
    int64_t deadline = now_ms() + WAIT_MS;
    struct rusage ru = { 0 };
    int status = 0;
    pid_t ret;

    while ((ret = wait4(p->pid, &status, WNOHANG, &ru)) == 0 &&
           now_ms() < deadline) {
        proc_read(p, 10);
    }
    if (ret == 0) {
        kill(p->pid, SIGKILL);
        wait4(p->pid, &status, 0, &ru);
    }
    close(p->out_fd);
    if (cpu_us) {
        *cpu_us = ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec +
                  ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
    }
    return status;
}

/* The port from "listening on 127.0.0.1:PORT", or -1. */
static int wait_port(Proc *p)
{
    int64_t deadline = now_ms() + WAIT_MS;
    const char *at;
    int port;

    while (!(at = strstr(p->out, "listening on 127.0.0.1:")) &&
           now_ms() < deadline) {
        proc_read(p, 100);
    }
    if (!at || sscanf(at, "listening on 127.0.0.1:%d", &port) != 1) {
        return -1;
    }
    return port;
}

/* One run against one server: a sample (k round trips/s) or a failure. */
static void run_once(W5Server *s, const char *seconds)
{
    char port_arg[16];
    const char *load_argv[] = { W5_LOAD_PATH, "--port", port_arg,
                                "--conns", "50", "--size", "64",
                                "--seconds", seconds, "--cpu", "1", NULL };
    Proc server, load;
    double rtps = 0, cpu_us = 0;
    long long roundtrips = 0;
    char check[96] = "";
    int port, status;

    if (!proc_start(&server, s->argv, SERVER_CPU)) {
        bench_series_add(&s->series, 0, false, "cannot start the server");
        return;
    }
    port = wait_port(&server);
    if (port < 0) {
        kill(server.pid, SIGKILL);
        proc_wait(&server, NULL);
        bench_series_add(&s->series, 0, false, "server printed no port");
        return;
    }
    snprintf(port_arg, sizeof(port_arg), "%d", port);
    if (proc_start(&load, load_argv, LOAD_CPU)) {
        const char *at;

        while (proc_read(&load, WAIT_MS)) {
        }
        proc_wait(&load, NULL);
        at = strstr(load.out, "W5LOAD ");
        if (!at || sscanf(at, "W5LOAD rtps=%lf roundtrips=%lld "
                              "seconds=%*s check=%95s",
                          &rtps, &roundtrips, check) != 3) {
            snprintf(check, sizeof(check), "no result from w5-load");
        }
    } else {
        snprintf(check, sizeof(check), "cannot start w5-load");
    }
    kill(server.pid, SIGTERM);
    status = proc_wait(&server, &cpu_us);
    if (!strcmp(check, "ok") && s->libaioctx &&
        !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        snprintf(check, sizeof(check), "server exit status 0x%x", status);
    }
    bench_series_add(&s->series, rtps / 1000.0, !strcmp(check, "ok"), "%s",
                     check);
    bench_series_add(&s->cpu, roundtrips ? cpu_us / roundtrips : 0,
                     !strcmp(check, "ok") && roundtrips, "%s", check);
}

/* The peers w5-server was built with, one per line of --list. */
static int list_peers(W5Server *servers, int n)
{
    const char *argv[] = { W5_SERVER_PATH, "--list", NULL };
    Proc p;
    char *line, *save = NULL;

    if (!proc_start(&p, argv, SERVER_CPU)) {
        return n;
    }
    while (proc_read(&p, WAIT_MS)) {
    }
    proc_wait(&p, NULL);
    for (line = strtok_r(p.out, "\n", &save); line && n < MAX_SERVERS;
         line = strtok_r(NULL, "\n", &save)) {
        W5Server *s = &servers[n++];

        snprintf(s->peer, sizeof(s->peer), "%s", line);
        s->argv[0] = W5_SERVER_PATH;
        s->argv[1] = "--peer";
        s->argv[2] = s->peer;
        s->argv[3] = "--port";
        s->argv[4] = "0";
    }
    return n;
}

static W5Server *find(W5Server *servers, int n, const char *peer)
{
    for (int i = 0; i < n; i++) {
        if (!strcmp(servers[i].peer, peer) && servers[i].series.nsamples) {
            return &servers[i];
        }
    }
    return NULL;
}

static void print_ratios(W5Server *servers, int n)
{
    static const char *const libs[] = { "srv-ev", "srv-event:raw",
                                        "srv-event:bufferevent", "srv-uv" };
    W5Server *raw = find(servers, n, "srv-epoll"), *best = NULL;

    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
        W5Server *s = find(servers, n, libs[i]);

        if (s && (!best || bench_series_median(&s->series) >
                               bench_series_median(&best->series))) {
            best = s;
        }
    }
    for (int i = 0; i < n; i++) {
        if (raw && &servers[i] != raw && servers[i].series.nsamples) {
            bench_print_ratio(&servers[i].series, &raw->series);
        }
    }
    for (int i = 0; i < n; i++) {
        if (best && servers[i].libaioctx && servers[i].series.nsamples) {
            bench_print_ratio(&servers[i].series, &best->series);
        }
    }
    /* CPU per round trip: lower is better. */
    for (int i = 0; i < n; i++) {
        if (raw && servers[i].libaioctx && servers[i].cpu.nsamples) {
            bench_print_ratio(&servers[i].cpu, &raw->cpu);
        }
    }
}

int main(int argc, char **argv)
{
    static const char *const engines[] = { "epoll", "io_uring", "poll" };
    W5Server servers[MAX_SERVERS];
    const char *seconds = getenv("W5_SECONDS");
    int runs = bench_runs(3);
    int n = 0;

    memset(servers, 0, sizeof(servers));
    if (!seconds || !*seconds) {
        seconds = "5";
    }
#ifdef ECHO_SERVER_PATH
    for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
        W5Server *s = &servers[n++];

        snprintf(s->peer, sizeof(s->peer), "libaioctx(%s)", engines[i]);
        s->argv[0] = ECHO_SERVER_PATH;
        s->argv[1] = "--port";
        s->argv[2] = "0";
        s->argv[3] = "--engine";
        s->argv[4] = engines[i];
        s->libaioctx = true;
    }
#else
    (void)engines;
    printf("# examples not built: no libaioctx echo-server\n");
#endif
    n = list_peers(servers, n);
    printf("# W5 TCP echo: 50 connections, 64 B ping-pong, %s s, %d runs; "
           "server on CPU%d, w5-load on CPU%d\n",
           seconds, runs, SERVER_CPU, LOAD_CPU);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        bench_series_init(&servers[i].series, "W5", "echo64x50",
                          servers[i].peer, "krt/s");
        bench_series_init(&servers[i].cpu, "W5", "echo64x50-server-cpu",
                          servers[i].peer, "us/rt");
    }
    for (int run = 0; run < runs; run++) {
        for (int i = 0; i < n; i++) {
            if (bench_selected(argc, argv, servers[i].peer)) {
                run_once(&servers[i], seconds);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        bench_series_report(&servers[i].series);
    }
    for (int i = 0; i < n; i++) {
        bench_series_report(&servers[i].cpu);
    }
    print_ratios(servers, n);
    return 0;
}
