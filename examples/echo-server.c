/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * echo-server: a TCP echo server written in callback style.
 *
 *   echo-server [--port N] [--bind ADDR] [--engine NAME] [--threads N]
 *
 * Without --threads, one AioContext in the main thread does everything.
 * With --threads N, N IOThreads each own a listening socket bound to the
 * same port with SO_REUSEPORT (the kernel spreads new connections over
 * them) and serve their connections; the main thread's context only waits
 * for SIGINT/SIGTERM.  The signals arrive as loop events
 * (aio_context_add_signal), so shutting down is ordinary code: stop the
 * main loop, let every IOThread close its sockets in its own thread, stop
 * the IOThreads, destroy the contexts.  SIGUSR1 prints every context's
 * loop metrics (aioctx/stats.h); they are printed at exit too.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <aioctx.h>

#include "print-stats.h"

#define BUF_SIZE 65536
#define MAX_THREADS 64

typedef struct Conn Conn;

/* One serving loop: its context, listening socket and connections. */
typedef struct Server {
    AioContext *ctx;
    IOThread *iothread; /* NULL when the main thread serves */
    int listen_fd;
    unsigned long connections;
    Conn *conns; /* open connections, closed at shutdown */
} Server;

struct Conn {
    Server *srv;
    Conn *next;
    Conn **pprev;
    int fd;
    size_t len; /* bytes waiting to be written back */
    size_t off;
    char buf[BUF_SIZE];
};

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

/* Close the listening socket and every connection; in the server's thread. */
static void server_shutdown(void *opaque)
{
    Server *srv = opaque;

    aio_set_fd_handler(srv->ctx, srv->listen_fd, NULL, NULL, NULL, NULL,
                       NULL);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    while (srv->conns) {
        conn_close(srv->conns);
    }
}

/*
 * A listening socket on addr:*port.  Port 0 picks a free port and stores
 * it in *port, so that further sockets (SO_REUSEPORT) join the same one.
 */
static int listen_on(const char *addr, int *port, bool reuseport)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(*port) };
    socklen_t len = sizeof(sin);
    int one = 1;
    int fd;

    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "echo-server: bad address '%s'\n", addr);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("echo-server: socket");
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        fprintf(stderr, "echo-server: cannot listen on %s:%d: %s\n", addr,
                *port, strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

/* What the signal callbacks need. */
typedef struct App {
    AioContext *main_ctx;
    Server *servers;
    int n;
    bool threads;
} App;

/* The loop metrics of every context: the main one, then each IOThread's. */
static void app_print_stats(App *app)
{
    print_stats(stdout, "echo-server", "main", app->main_ctx);
    for (int i = 0; app->threads && i < app->n; i++) {
        char who[32];

        if (app->servers[i].ctx) {
            snprintf(who, sizeof(who), "thread %d", i);
            print_stats(stdout, "echo-server", who, app->servers[i].ctx);
        }
    }
}

static void on_usr1(int signo, void *opaque)
{
    (void)signo;
    app_print_stats(opaque);
}

static void on_signal(int signo, void *opaque)
{
    AioContext *main_ctx = opaque;

    fprintf(stderr, "echo-server: %s, shutting down\n", strsignal(signo));
    aio_context_stop(main_ctx);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: echo-server [--port N] [--bind ADDR] [--engine NAME] "
            "[--threads N]\n"
            "  --port N       TCP port to listen on (default 7007; 0 picks "
            "a free one)\n"
            "  --bind ADDR    IPv4 address to bind (default 127.0.0.1)\n"
            "  --engine NAME  poll, epoll, io_uring, linux-aio or auto\n"
            "  --threads N    serve from N IOThreads sharing the port with "
            "SO_REUSEPORT\n"
            "                 (default 0: serve from the main thread; at "
            "most %d)\n"
            "  --help         show this text\n"
            "Echoes back whatever each client sends; Ctrl-C (SIGINT) or "
            "SIGTERM stops it,\nSIGUSR1 prints the loop metrics.\n",
            MAX_THREADS);
}

typedef struct Options {
    const char *addr;
    const char *engine;
    int port;
    int threads;
} Options;

/* Returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, Options *o)
{
    static const struct option opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "engine", required_argument, NULL, 'e' },
        { "threads", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "p:b:e:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->port = (int)strtol(optarg, &end, 10);
            if (*end || o->port < 0 || o->port > 65535) {
                fprintf(stderr, "echo-server: bad port '%s'\n", optarg);
                return 2;
            }
            break;
        case 'b':
            o->addr = optarg;
            break;
        case 'e':
            o->engine = optarg;
            break;
        case 't':
            o->threads = (int)strtol(optarg, &end, 10);
            if (*end || o->threads < 0 || o->threads > MAX_THREADS) {
                fprintf(stderr, "echo-server: bad thread count '%s'\n",
                        optarg);
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
    return -1;
}

/*
 * Give every server its context: the main one, or a new IOThread's.  The
 * IOThreads use the main context's engine (through AIOCTX_ENGINE, which
 * iothread_create() reads; set here before any thread exists).
 */
static bool servers_start(Server *servers, int n, AioContext *main_ctx,
                          int threads)
{
    Error *err = NULL;

    if (!threads) {
        servers[0].ctx = main_ctx;
        return true;
    }
    setenv("AIOCTX_ENGINE", aio_context_get_engine_name(main_ctx), 1);
    for (int i = 0; i < n; i++) {
        char id[16];

        snprintf(id, sizeof(id), "echo-%d", i);
        servers[i].iothread = iothread_create(id, &err);
        if (!servers[i].iothread) {
            fprintf(stderr, "echo-server: %s\n", error_get_pretty(err));
            error_free(err);
            return false;
        }
        servers[i].ctx = iothread_get_aio_context(servers[i].iothread);
    }
    return true;
}

/* Close everything in each server's own thread, then stop the IOThreads. */
static void servers_stop(Server *servers, int n)
{
    for (int i = 0; i < n; i++) {
        Server *srv = &servers[i];

        if (!srv->ctx) {
            continue;
        }
        if (!srv->iothread) {
            if (srv->listen_fd >= 0) {
                server_shutdown(srv);
            }
            continue;
        }
        if (srv->listen_fd >= 0) {
            /* Runs before the IOThread's stop request, queued behind it. */
            aio_bh_schedule_oneshot(srv->ctx, server_shutdown, srv);
        }
        iothread_destroy(srv->iothread);
    }
}

int main(int argc, char **argv)
{
    Options o = { .addr = "127.0.0.1", .port = 7007 };
    AioContextOptions ctx_opts = { .engine = NULL };
    Server servers[MAX_THREADS];
    unsigned long total = 0;
    AioContext *main_ctx;
    Error *err = NULL;
    int ret, n, status = 1;
    App app;

    ret = parse_options(argc, argv, &o);
    if (ret >= 0) {
        return ret;
    }
    ctx_opts.engine = o.engine;
    main_ctx = aio_context_new_with_options(&ctx_opts, &err);
    if (!main_ctx) {
        fprintf(stderr, "echo-server: %s\n", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    n = o.threads ? o.threads : 1;
    app = (App){ main_ctx, servers, n, o.threads > 0 };
    /* Before any thread exists, so that every thread blocks them. */
    if (aio_context_add_signal(main_ctx, SIGINT, on_signal, main_ctx,
                               &err) < 0 ||
        aio_context_add_signal(main_ctx, SIGTERM, on_signal, main_ctx,
                               &err) < 0 ||
        aio_context_add_signal(main_ctx, SIGUSR1, on_usr1, &app, &err) < 0) {
        fprintf(stderr, "echo-server: %s\n", error_get_pretty(err));
        error_free(err);
        aio_context_unref(main_ctx);
        return 1;
    }

    memset(servers, 0, sizeof(servers));
    for (int i = 0; i < n; i++) {
        servers[i].listen_fd = -1;
    }
    if (!servers_start(servers, n, main_ctx, o.threads)) {
        goto out;
    }
    for (int i = 0; i < n; i++) {
        servers[i].listen_fd = listen_on(o.addr, &o.port, o.threads > 0);
        if (servers[i].listen_fd < 0) {
            goto out;
        }
        aio_set_fd_handler(servers[i].ctx, servers[i].listen_fd,
                           server_accept, NULL, NULL, NULL, &servers[i]);
    }
    printf("echo-server: listening on %s:%d (engine %s, ", o.addr, o.port,
           aio_context_get_engine_name(main_ctx));
    if (o.threads) {
        printf("%d IOThread%s)\n", o.threads, o.threads > 1 ? "s" : "");
    } else {
        printf("main thread)\n");
    }
    fflush(stdout);

    aio_context_run(main_ctx);
    status = 0;

out:
    app_print_stats(&app);
    servers_stop(servers, n);
    for (int i = 0; i < n; i++) {
        total += servers[i].connections;
        if (o.threads && servers[i].ctx) {
            printf("echo-server: thread %d served %lu connections\n", i,
                   servers[i].connections);
        }
    }
    aio_context_unref(main_ctx);
    printf("echo-server: served %lu connections\n", total);
    return status;
}
