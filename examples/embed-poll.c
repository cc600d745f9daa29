/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * embed-poll: an AioContext driven by somebody else's loop, here a
 * hand-written poll(2) loop that also watches a descriptor of its own.
 *
 *   embed-poll [--engine NAME] [--delay MS] [--help]
 *
 * The context contributes one descriptor (aio_context_get_pollfd()) and a
 * timeout (aio_compute_timeout()); the foreign loop calls aio_prepare()
 * before sleeping and aio_dispatch() after.  What happens, in order:
 *   1. a bottom half runs and arms a timer of --delay ms;
 *   2. the timer fires and writes "ping" into a pipe the context watches;
 *   3. the context's fd handler reads it and writes "pong" into a pipe
 *      that only the foreign loop watches;
 *   4. the foreign loop reads "pong" and leaves.
 * Every step is printed; the exit status is 0 when all four happened.
 * SIGINT (delivered through the context as a loop event) ends it early
 * with status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <aioctx.h>

typedef struct Demo {
    AioContext *ctx;
    QEMUTimer timer;
    int delay_ms;
    int ping[2]; /* timer -> context's fd handler */
    int pong[2]; /* context's fd handler -> foreign loop */
    int64_t start_ns;
    bool interrupted;
    int steps;
} Demo;

static double elapsed_ms(Demo *d)
{
    return (qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - d->start_ns) / 1e6;
}

static void on_timer(void *opaque)
{
    Demo *d = opaque;

    printf("[%7.2f ms] 2. timer fired in the context; writing \"ping\"\n",
           elapsed_ms(d));
    d->steps++;
    if (write(d->ping[1], "ping", 4) != 4) {
        perror("embed-poll: write");
    }
}

static void on_bh(void *opaque)
{
    Demo *d = opaque;

    printf("[%7.2f ms] 1. bottom half ran; arming a %d ms timer\n",
           elapsed_ms(d), d->delay_ms);
    d->steps++;
    timer_mod(&d->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                             d->delay_ms);
}

static void on_ping(void *opaque)
{
    Demo *d = opaque;
    char buf[16];
    ssize_t n = read(d->ping[0], buf, sizeof(buf));

    if (n <= 0) {
        return;
    }
    printf("[%7.2f ms] 3. fd handler read \"%.*s\"; writing \"pong\" for "
           "the foreign loop\n",
           elapsed_ms(d), (int)n, buf);
    d->steps++;
    if (write(d->pong[1], "pong", 4) != 4) {
        perror("embed-poll: write");
    }
}

static void on_sigint(int signo, void *opaque)
{
    Demo *d = opaque;

    (void)signo;
    printf("[%7.2f ms] interrupted\n", elapsed_ms(d));
    d->interrupted = true;
}

/* poll(2)'s timeout in ms for aio_compute_timeout()'s ns, rounded up. */
static int ns_to_poll_ms(int64_t ns)
{
    if (ns < 0) {
        return -1;
    }
    return ns / 1000000 > 60000 ? 60000 : (int)((ns + 999999) / 1000000);
}

/* The foreign loop: returns once "pong" arrived or on SIGINT. */
static void foreign_loop(Demo *d)
{
    struct pollfd fds[2] = {
        { .fd = aio_context_get_pollfd(d->ctx), .events = POLLIN },
        { .fd = d->pong[0], .events = POLLIN },
    };
    unsigned iterations = 0, ctx_wakeups = 0, timeouts = 0;

    while (!d->interrupted) {
        int64_t ns = aio_prepare(d->ctx) ? 0 : aio_compute_timeout(d->ctx);
        int ret = poll(fds, 2, ns_to_poll_ms(ns));

        iterations++;
        if (ret < 0 && errno != EINTR) {
            perror("embed-poll: poll");
            break;
        }
        if (ret == 0 && ns != 0) {
            timeouts++;
        }
        if (ret > 0 && (fds[0].revents & POLLIN)) {
            ctx_wakeups++;
        }
        aio_dispatch(d->ctx); /* always: timers are due after a timeout */

        if (ret > 0 && (fds[1].revents & POLLIN)) {
            char buf[16];
            ssize_t n = read(d->pong[0], buf, sizeof(buf));

            if (n > 0) {
                printf("[%7.2f ms] 4. foreign loop read \"%.*s\" from its "
                       "own descriptor\n",
                       elapsed_ms(d), (int)n, buf);
                d->steps++;
                break;
            }
        }
    }
    printf("foreign loop: %u iterations, %u woken by the context's "
           "descriptor, %u timeouts\n",
           iterations, ctx_wakeups, timeouts);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: embed-poll [--engine NAME] [--delay MS]\n"
            "  --engine NAME  poll, epoll, io_uring, linux-aio or auto\n"
            "  --delay MS     timer delay in milliseconds (default 50)\n"
            "  --help         show this text\n"
            "Drives an AioContext from a hand-written poll() loop: a bottom "
            "half, a timer\nand an fd handler run, then it exits 0.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "engine", required_argument, NULL, 'e' },
        { "delay", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    AioContextOptions ctx_opts = { .engine = NULL };
    Demo d = { .delay_ms = 50 };
    Error *err = NULL;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "e:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            ctx_opts.engine = optarg;
            break;
        case 'd':
            d.delay_ms = (int)strtol(optarg, &end, 10);
            if (*end || d.delay_ms < 0) {
                fprintf(stderr, "embed-poll: bad delay '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* show each step as it happens */
    d.ctx = aio_context_new_with_options(&ctx_opts, &err);
    if (!d.ctx) {
        fprintf(stderr, "embed-poll: %s\n", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    if (pipe2(d.ping, O_NONBLOCK | O_CLOEXEC) < 0 ||
        pipe2(d.pong, O_NONBLOCK | O_CLOEXEC) < 0) {
        perror("embed-poll: pipe");
        return 1;
    }
    aio_context_add_signal(d.ctx, SIGINT, on_sigint, &d, &error_fatal);
    aio_timer_init(d.ctx, &d.timer, QEMU_CLOCK_REALTIME, SCALE_MS, on_timer,
                   &d);
    aio_set_fd_handler(d.ctx, d.ping[0], on_ping, NULL, NULL, NULL, &d);
    printf("embed-poll: engine %s, context descriptor %d\n",
           aio_context_get_engine_name(d.ctx),
           aio_context_get_pollfd(d.ctx));

    d.start_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    aio_bh_schedule_oneshot(d.ctx, on_bh, &d);
    foreign_loop(&d);

    timer_del(&d.timer);
    aio_set_fd_handler(d.ctx, d.ping[0], NULL, NULL, NULL, NULL, NULL);
    aio_context_unref(d.ctx);
    for (int i = 0; i < 2; i++) {
        close(d.ping[i]);
        close(d.pong[i]);
    }
    printf("embed-poll: %d of 4 steps done\n", d.steps);
    return d.steps == 4 ? 0 : 1;
}
