/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W5 of bench-workloads.md: the load generator, the same binary for every
 * echo server.  One thread (pinned to --cpu, default 1), epoll, C
 * connections (default 50) to 127.0.0.1:PORT, each keeping exactly one
 * message of --size bytes (default 64) in flight: send it, wait for it to
 * come back, compare it byte for byte (it carries the connection id and a
 * sequence number), send the next.  Counts round trips for --seconds
 * (default 5) after every connection is up, then prints
 *
 *   W5LOAD rtps=<round trips per second> roundtrips=<n> seconds=<s> check=ok
 *
 * or check=FAIL(<why>) on a mismatching echo, a closed connection or an
 * error.  Exit status 0 only with check=ok.
 *
 *   w5-load --port N [--conns C] [--size B] [--seconds S] [--cpu K]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 4096

typedef struct LoadConn {
    int fd;
    uint32_t id;
    uint64_t seq;
    size_t got;
    unsigned char sent[MAX_SIZE];
    unsigned char back[MAX_SIZE];
} LoadConn;

typedef struct Load {
    int port;
    int conns;
    size_t size;
    double seconds;
    int cpu;
    char why[128];
} Load;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        fprintf(stderr, "# w5-load: cannot pin to CPU%d: %s\n", cpu,
                strerror(errno));
    }
}

/* The message: id, sequence, then bytes that depend on both. */
static void fill(LoadConn *c, size_t size)
{
    memcpy(c->sent, &c->id, 4);
    memcpy(c->sent + 4, &c->seq, 8);
    for (size_t i = 12; i < size; i++) {
        c->sent[i] = (unsigned char)(c->id * 131 + c->seq * 17 + i);
    }
}

/* Send the whole current message (a 64-byte send never blocks for long). */
static bool send_msg(LoadConn *c, size_t size)
{
    size_t off = 0;

    while (off < size) {
        ssize_t n = send(c->fd, c->sent + off, size - off, MSG_NOSIGNAL);

        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        off += n;
    }
    return true;
}

static int connect_one(int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port) };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Non-blocking from now on: the loop below only reads when told to. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Returns round trips done in the measured window, or -1 (see l->why). */
static int64_t run(Load *l, LoadConn *cs, double *elapsed_s)
{
    struct epoll_event evs[256];
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    int64_t count = 0, start, end, now;

    for (int i = 0; i < l->conns; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };

        cs[i].id = (uint32_t)i;
        cs[i].fd = connect_one(l->port);
        if (cs[i].fd < 0) {
            snprintf(l->why, sizeof(l->why), "connect %d: %s", i,
                     strerror(errno));
            return -1;
        }
        epoll_ctl(epfd, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    start = now_ns();
    end = start + (int64_t)(l->seconds * 1e9);
    for (int i = 0; i < l->conns; i++) {
        fill(&cs[i], l->size);
        if (!send_msg(&cs[i], l->size)) {
            snprintf(l->why, sizeof(l->why), "send: %s", strerror(errno));
            return -1;
        }
    }
    for (now = start; now < end; now = now_ns()) {
        int ms = (int)((end - now) / 1000000) + 1;
        int n = epoll_wait(epfd, evs, 256, ms);

        for (int i = 0; i < n; i++) {
            LoadConn *c = evs[i].data.ptr;
            ssize_t r = recv(c->fd, c->back + c->got, l->size - c->got, 0);

            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                continue;
            }
            if (r <= 0) {
                snprintf(l->why, sizeof(l->why), "connection %u %s", c->id,
                         r == 0 ? "closed" : strerror(errno));
                return -1;
            }
            c->got += r;
            if (c->got < l->size) {
                continue;
            }
            if (memcmp(c->sent, c->back, l->size) != 0) {
                snprintf(l->why, sizeof(l->why),
                         "connection %u seq %llu: echo differs", c->id,
                         (unsigned long long)c->seq);
                return -1;
            }
            count++;
            c->got = 0;
            c->seq++;
            fill(c, l->size);
            if (!send_msg(c, l->size)) {
                snprintf(l->why, sizeof(l->why), "send: %s",
                         strerror(errno));
                return -1;
            }
        }
    }
    *elapsed_s = (now - start) / 1e9;
    for (int i = 0; i < l->conns; i++) {
        close(cs[i].fd);
    }
    close(epfd);
    return count;
}

int main(int argc, char **argv)
{
    Load l = { .port = 0, .conns = 50, .size = 64, .seconds = 5, .cpu = 1 };
    double elapsed = 0;
    LoadConn *cs;
    int64_t count;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) {
            l.port = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--conns")) {
            l.conns = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--size")) {
            l.size = (size_t)atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--seconds")) {
            l.seconds = atof(argv[i + 1]);
        } else if (!strcmp(argv[i], "--cpu")) {
            l.cpu = atoi(argv[i + 1]);
        }
    }
    if (l.port <= 0 || l.conns <= 0 || l.size < 12 || l.size > MAX_SIZE ||
        l.seconds <= 0) {
        fprintf(stderr, "usage: w5-load --port N [--conns C] [--size B 12.."
                        "4096] [--seconds S] [--cpu K]\n");
        return 2;
    }
    if (l.cpu >= 0) {
        pin(l.cpu);
    }
    cs = calloc(l.conns, sizeof(*cs));
    count = run(&l, cs, &elapsed);
    if (count == 0) {
        snprintf(l.why, sizeof(l.why), "no echo came back");
        count = -1;
    }
    if (count < 0) {
        printf("W5LOAD rtps=0 roundtrips=0 seconds=0 check=FAIL(%s)\n",
               l.why);
        return 1;
    }
    printf("W5LOAD rtps=%.1f roundtrips=%lld seconds=%.3f check=ok\n",
           count / elapsed, (long long)count, elapsed);
    free(cs);
    return 0;
}
