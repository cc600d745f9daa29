/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W5 of bench-workloads.md: the peer TCP echo servers, one process per
 * run, single-threaded, listening on 127.0.0.1 (port 0 picks a free one,
 * printed as "listening on 127.0.0.1:PORT").  TCP_NODELAY on accepted
 * sockets; each echoes whatever it reads.  SIGTERM/SIGINT end them (the
 * default action).  libaioctx's side is examples/echo-server itself.
 *
 *   w5-server --peer NAME [--port N]
 *
 * Peers:
 *   srv-epoll              raw level-triggered epoll, recv/send
 *   srv-ev                 libev ev_io (EVBACKEND_EPOLL), recv/send
 *   srv-event:raw          libevent plain persistent events, recv/send
 *   srv-event:bufferevent  libevent evconnlistener + bufferevent,
 *                          evbuffer_add_buffer (the idiomatic way)
 *   srv-uv                 libuv uv_read_start with a 64 KiB buffer per
 *                          connection, uv_try_write, uv_write as fallback
 * A peer whose library was not found at configure time is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_LIBEV
#include <ev.h>
#endif
#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#define BUF_SIZE 65536

static void die(const char *what)
{
    fprintf(stderr, "w5-server: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void set_nodelay(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void announce(int fd, const char *peer)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        die("getsockname");
    }
    printf("w5-server: listening on 127.0.0.1:%d (%s)\n", ntohs(sin.sin_port),
           peer);
    fflush(stdout);
}

/* A non-blocking listening socket on 127.0.0.1:port. */
static int listen_socket(int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port) };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        die("socket");
    }
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(fd, 1024) < 0) {
        die("bind/listen");
    }
    return fd;
}

/* Shared by the recv/send servers: a connection and its unsent bytes. */
typedef struct EchoConn {
    int fd;
    size_t len;
    size_t off;
    void *watcher; /* the peer's own per-connection state */
    char buf[BUF_SIZE];
} EchoConn;

/*
 * Read once and echo.  Returns 1 when everything was sent, 0 when bytes
 * are left (wait for writable), -1 when the connection is over.
 */
static int echo_read(EchoConn *c)
{
    ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        return -1;
    }
    if (n < 0) {
        return 1;
    }
    c->len = n;
    c->off = 0;
    while (c->off < c->len) {
        ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off,
                         MSG_NOSIGNAL);

        if (w < 0) {
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        c->off += w;
    }
    return 1;
}

/* Send what is left; same return values as echo_read(). */
static int echo_flush(EchoConn *c)
{
    while (c->off < c->len) {
        ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off,
                         MSG_NOSIGNAL);

        if (w < 0) {
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        c->off += w;
    }
    return 1;
}

static EchoConn *echo_accept(int listen_fd)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    EchoConn *c;

    if (fd < 0) {
        return NULL;
    }
    set_nodelay(fd);
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    return c;
}

/* ---- srv-epoll ---- */

static void epoll_set(int epfd, int op, EchoConn *c, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };

    epoll_ctl(epfd, op, c->fd, &ev);
}

static int run_epoll(int port)
{
    int lfd = listen_socket(port);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    struct epoll_event events[256];

    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        die("epoll");
    }
    announce(lfd, "srv-epoll");
    for (;;) {
        int n = epoll_wait(epfd, events, 256, -1);

        for (int i = 0; i < n; i++) {
            EchoConn *c = events[i].data.ptr;
            int ret;

            if (!c) {
                while ((c = echo_accept(lfd))) {
                    epoll_set(epfd, EPOLL_CTL_ADD, c, EPOLLIN);
                }
                continue;
            }
            ret = (events[i].events & EPOLLOUT) ? echo_flush(c)
                                                : echo_read(c);
            if (ret < 0) {
                close(c->fd); /* leaves the epoll set with it */
                free(c);
            } else if ((ret == 0) != !!(events[i].events & EPOLLOUT)) {
                epoll_set(epfd, EPOLL_CTL_MOD, c, ret ? EPOLLIN : EPOLLOUT);
            }
        }
    }
    return 0;
}

/* ---- srv-ev ---- */

#ifdef HAVE_LIBEV
static void ev_conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    EchoConn *c = w->data;
    int ret = (revents & EV_WRITE) ? echo_flush(c) : echo_read(c);

    if (ret < 0) {
        ev_io_stop(loop, w);
        close(c->fd);
        free(w);
        free(c);
        return;
    }
    if ((ret == 0) != !!(revents & EV_WRITE)) {
        ev_io_stop(loop, w);
        ev_io_set(w, c->fd, ret ? EV_READ : EV_WRITE);
        ev_io_start(loop, w);
    }
}

static void ev_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    EchoConn *c;

    (void)revents;
    while ((c = echo_accept(w->fd))) {
        ev_io *cw = malloc(sizeof(*cw));

        ev_io_init(cw, ev_conn_cb, c->fd, EV_READ);
        cw->data = c;
        ev_io_start(loop, cw);
    }
}

static int run_ev(int port)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    int lfd = listen_socket(port);
    ev_io lw;

    if (!loop) {
        die("ev_loop_new");
    }
    ev_io_init(&lw, ev_accept_cb, lfd, EV_READ);
    ev_io_start(loop, &lw);
    announce(lfd, "srv-ev");
    ev_run(loop, 0);
    return 0;
}
#endif

/* ---- srv-event:raw and srv-event:bufferevent ---- */

/*
 * Included only here: libevent's EV_READ/EV_WRITE macros (2 and 4) would
 * replace libev's enum constants (1 and 2) in the libev code above.
 */
#ifdef HAVE_LIBEVENT
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

typedef struct EventConn {
    EchoConn echo;
    struct event *ev;
    struct event_base *base;
} EventConn;

static void event_conn_cb(evutil_socket_t fd, short what, void *arg)
{
    EventConn *ec = arg;
    bool writing = what & EV_WRITE;
    int ret = writing ? echo_flush(&ec->echo) : echo_read(&ec->echo);

    if (ret < 0) {
        event_free(ec->ev);
        close(fd);
        free(ec);
        return;
    }
    if ((ret == 0) != writing) {
        event_del(ec->ev);
        event_assign(ec->ev, ec->base, fd,
                     (ret ? EV_READ : EV_WRITE) | EV_PERSIST, event_conn_cb,
                     ec);
        event_add(ec->ev, NULL);
    }
}

static void event_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct event_base *base = arg;
    EchoConn *c;

    (void)what;
    while ((c = echo_accept(lfd))) {
        EventConn *ec = realloc(c, sizeof(*ec));

        if (!ec) {
            close(c->fd);
            free(c);
            continue;
        }
        ec->base = base;
        ec->ev = event_new(base, ec->echo.fd, EV_READ | EV_PERSIST,
                           event_conn_cb, ec);
        event_add(ec->ev, NULL);
    }
}

static struct event_base *event_base_epoll(void)
{
    struct event_base *base = event_base_new();

    if (!base) {
        die("event_base_new");
    }
    if (strcmp(event_base_get_method(base), "epoll") != 0) {
        fprintf(stderr, "w5-server: libevent uses %s, not epoll\n",
                event_base_get_method(base));
    }
    return base;
}

static int run_event_raw(int port)
{
    struct event_base *base = event_base_epoll();
    int lfd = listen_socket(port);
    struct event *lev = event_new(base, lfd, EV_READ | EV_PERSIST,
                                  event_accept_cb, base);

    event_add(lev, NULL);
    announce(lfd, "srv-event:raw");
    event_base_dispatch(base);
    return 0;
}

static void bev_read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev),
                        bufferevent_get_input(bev));
}

static void bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        bufferevent_free(bev);
    }
}

static void bev_accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
                          struct sockaddr *sa, int socklen, void *arg)
{
    struct event_base *base = evconnlistener_get_base(listener);
    struct bufferevent *bev;

    (void)sa;
    (void)socklen;
    (void)arg;
    set_nodelay(fd);
    bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return;
    }
    bufferevent_setcb(bev, bev_read_cb, NULL, bev_event_cb, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int run_event_bufferevent(int port)
{
    struct event_base *base = event_base_epoll();
    int lfd = listen_socket(port);
    struct evconnlistener *listener;

    listener = evconnlistener_new(base, bev_accept_cb, NULL,
                                  LEV_OPT_CLOSE_ON_FREE, -1, lfd);
    if (!listener) {
        die("evconnlistener_new");
    }
    announce(lfd, "srv-event:bufferevent");
    event_base_dispatch(base);
    return 0;
}
#endif

/* ---- srv-uv ---- */

#ifdef HAVE_LIBUV
typedef struct UvConn {
    uv_tcp_t tcp;
    char buf[BUF_SIZE];
} UvConn;

typedef struct UvWrite {
    uv_write_t req;
    char data[];
} UvWrite;

static void srv_uv_closed(uv_handle_t *h)
{
    free(h->data);
}

static void srv_uv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    UvConn *c = h->data;

    (void)suggested;
    *buf = uv_buf_init(c->buf, sizeof(c->buf));
}

static void srv_uv_write_done(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void srv_uv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    uv_buf_t out;
    UvWrite *w;
    int sent;

    if (nread < 0) {
        uv_close((uv_handle_t *)s, srv_uv_closed);
        return;
    }
    if (nread == 0) {
        return;
    }
    out = uv_buf_init(buf->base, (unsigned)nread);
    sent = uv_try_write(s, &out, 1);
    if (sent == nread) {
        return;
    }
    if (sent < 0) {
        sent = 0; /* UV_EAGAIN: queue it all */
    }
    w = malloc(sizeof(*w) + nread - sent);
    memcpy(w->data, buf->base + sent, nread - sent);
    out = uv_buf_init(w->data, (unsigned)(nread - sent));
    uv_write(&w->req, s, &out, 1, srv_uv_write_done);
}

static void srv_uv_connection(uv_stream_t *server, int status)
{
    UvConn *c;

    if (status < 0) {
        return;
    }
    c = malloc(sizeof(*c));
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, srv_uv_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, srv_uv_alloc, srv_uv_read);
}

static int run_uv(int port)
{
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in sin;
    uv_os_fd_t fd;
    uv_tcp_t server;

    uv_tcp_init(loop, &server);
    uv_ip4_addr("127.0.0.1", port, &sin);
    if (uv_tcp_bind(&server, (struct sockaddr *)&sin, 0) < 0 ||
        uv_listen((uv_stream_t *)&server, 1024, srv_uv_connection) < 0) {
        die("uv_listen");
    }
    uv_fileno((uv_handle_t *)&server, &fd);
    announce(fd, "srv-uv");
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
#endif

typedef struct W5Peer {
    const char *name;
    int (*run)(int port);
} W5Peer;

static const W5Peer peers[] = {
    { "srv-epoll", run_epoll },
#ifdef HAVE_LIBEV
    { "srv-ev", run_ev },
#endif
#ifdef HAVE_LIBEVENT
    { "srv-event:raw", run_event_raw },
    { "srv-event:bufferevent", run_event_bufferevent },
#endif
#ifdef HAVE_LIBUV
    { "srv-uv", run_uv },
#endif
};

int main(int argc, char **argv)
{
    const char *peer = NULL;
    int port = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--peer") && i + 1 < argc) {
            peer = argv[++i];
        } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--list")) {
            for (size_t p = 0; p < sizeof(peers) / sizeof(peers[0]); p++) {
                printf("%s\n", peers[p].name);
            }
            return 0;
        } else {
            peer = NULL;
            break;
        }
    }
    for (size_t p = 0; peer && p < sizeof(peers) / sizeof(peers[0]); p++) {
        if (!strcmp(peers[p].name, peer)) {
            return peers[p].run(port);
        }
    }
    fprintf(stderr, "usage: w5-server --peer NAME [--port N] | --list\n");
    return 2;
}
