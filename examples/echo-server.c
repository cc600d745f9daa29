/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * echo-server: a TCP echo server written in callback style on one
 * AioContext.  Ctrl-C (SIGINT) or SIGTERM shuts it down cleanly.
 *
 *   echo-server [--port N] [--bind ADDR] [--engine NAME] [--help]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <aioctx.h>

#define BUF_SIZE 65536

typedef struct Server {
    AioContext *ctx;
    int listen_fd;
    int signal_fd;
    bool stop;
    unsigned long connections;
    struct Conn *conns; /* open connections, closed at shutdown */
} Server;

typedef struct Conn {
    Server *srv;
    struct Conn *next;
    struct Conn **pprev;
    int fd;
    size_t len; /* bytes waiting to be written back */
    size_t off;
    char buf[BUF_SIZE];
} Conn;

static void conn_read(void *opaque);
static void conn_write(void *opaque);

static void conn_close(Conn *c)
{
    *c->pprev = c->next;
    if (c->next) {
        c->next->pprev = c->pprev;
    }
    aio_set_fd_handler(c->srv->ctx, c->fd, NULL, NULL, NULL, NULL, NULL);
    close(c->fd);
    free(c);
}

/* Watch for reading while nothing is pending, for writing otherwise. */
static void conn_update(Conn *c)
{
    bool pending = c->off < c->len;

    aio_set_fd_handler(c->srv->ctx, c->fd, pending ? NULL : conn_read,
                       pending ? conn_write : NULL, NULL, NULL, c);
}

/* Write what is buffered; returns false when the connection died. */
static bool conn_flush(Conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off,
                         MSG_NOSIGNAL);

        if (n < 0) {
            return errno == EAGAIN || errno == EINTR;
        }
        c->off += n;
    }
    c->off = c->len = 0;
    return true;
}

static void conn_read(void *opaque)
{
    Conn *c = opaque;
    ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0) {
        return;
    }
    c->len = n;
    c->off = 0;
    if (!conn_flush(c)) {
        conn_close(c);
        return;
    }
    if (c->len) {
        conn_update(c); /* the socket is full: wait until writable */
    }
}

static void conn_write(void *opaque)
{
    Conn *c = opaque;

    if (!conn_flush(c)) {
        conn_close(c);
        return;
    }
    if (!c->len) {
        conn_update(c);
    }
}

static void server_accept(void *opaque)
{
    Server *srv = opaque;
    int one = 1;

    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        Conn *c;

        if (fd < 0) {
            return; /* EAGAIN: all accepted */
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = srv;
        c->fd = fd;
        c->next = srv->conns;
        if (c->next) {
            c->next->pprev = &c->next;
        }
        c->pprev = &srv->conns;
        srv->conns = c;
        srv->connections++;
        conn_update(c);
    }
}

static void server_signal(void *opaque)
{
    Server *srv = opaque;
    struct signalfd_siginfo si;

    if (read(srv->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        fprintf(stderr, "echo-server: %s, shutting down\n",
                strsignal(si.ssi_signo));
        srv->stop = true;
    }
}

static int listen_on(const char *addr, int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port) };
    int one = 1;
    int fd;

    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "echo-server: bad address '%s'\n", addr);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(fd, 1024) < 0) {
        fprintf(stderr, "echo-server: cannot listen on %s:%d: %s\n", addr,
                port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int signals_open(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: echo-server [--port N] [--bind ADDR] [--engine NAME]\n"
            "  --port N       TCP port to listen on (default 7007)\n"
            "  --bind ADDR    IPv4 address to bind (default 127.0.0.1)\n"
            "  --engine NAME  poll, epoll, io_uring, linux-aio or auto\n"
            "  --help         show this text\n"
            "Echoes back whatever each client sends; Ctrl-C stops it.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "engine", required_argument, NULL, 'e' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    AioContextOptions ctx_opts = { .engine = NULL };
    const char *addr = "127.0.0.1";
    Server srv = { 0 };
    Error *err = NULL;
    int port = 7007;
    int c;

    while ((c = getopt_long(argc, argv, "p:b:e:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'b':
            addr = optarg;
            break;
        case 'e':
            ctx_opts.engine = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    srv.ctx = aio_context_new_with_options(&ctx_opts, &err);
    if (!srv.ctx) {
        fprintf(stderr, "echo-server: %s\n", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    srv.listen_fd = listen_on(addr, port);
    srv.signal_fd = signals_open();
    if (srv.listen_fd < 0 || srv.signal_fd < 0) {
        return 1;
    }
    aio_set_fd_handler(srv.ctx, srv.listen_fd, server_accept, NULL, NULL,
                       NULL, &srv);
    aio_set_fd_handler(srv.ctx, srv.signal_fd, server_signal, NULL, NULL,
                       NULL, &srv);
    printf("echo-server: listening on %s:%d (engine %s)\n", addr, port,
           aio_context_get_engine_name(srv.ctx));
    fflush(stdout);

    while (!srv.stop) {
        aio_poll(srv.ctx, true);
    }

    aio_set_fd_handler(srv.ctx, srv.listen_fd, NULL, NULL, NULL, NULL, NULL);
    aio_set_fd_handler(srv.ctx, srv.signal_fd, NULL, NULL, NULL, NULL, NULL);
    close(srv.listen_fd);
    close(srv.signal_fd);
    while (srv.conns) {
        conn_close(srv.conns);
    }
    aio_context_unref(srv.ctx);
    printf("echo-server: served %lu connections\n", srv.connections);
    return 0;
}
