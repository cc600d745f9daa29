/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * httpd: a small static-file HTTP/1.1 server written with coroutines.
 *
 *   httpd [--port N] [--bind ADDR] [--root DIR] [--engine NAME]
 *         [--threads N] [--quiet]
 *
 * One coroutine per connection reads requests with recv() and
 * yield_until_fd_readable() and answers them:
 *  - small bodies are read with aio_file_co_preadv() and sent with their
 *    head in one send(); larger ones go from the file to the socket with
 *    aio_file_co_transfer() (sendfile, no copy in user space);
 *  - GET and HEAD, keep-alive (HTTP/1.1 by default, HTTP/1.0 when asked),
 *    Content-Type from a table of extensions (mime.c), single byte ranges
 *    (206, 416), Last-Modified/If-Modified-Since and ETag/If-None-Match
 *    (304), index.html for directories or else an HTML listing
 *    (listing.c);
 *  - one access-log line per request on stdout in the Common Log Format
 *    (--quiet: none);
 *  - --threads N: N IOThreads, each with its own listening socket on the
 *    same port (SO_REUSEPORT), as echo-server does.
 * The parser (parser.c) is separate so that a fuzzer can drive it.  The
 * served root becomes the working directory; every path is resolved with
 * realpath() and must stay inside the root (".." segments, encoded or not,
 * are refused first).
 *
 * SIGINT/SIGTERM arrive through the main loop (aio_context_add_signal):
 * each server closes its listening socket, shuts idle connections down and
 * lets busy ones finish their response; when the last connection of the
 * last server is gone the program exits with status 0.  SIGUSR1 prints
 * every context's loop metrics (aio_context_get_stats), as does the exit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <aioctx.h>

#include "listing.h"
#include "mime.h"
#include "parser.h"
#include "../print-stats.h"

#define HEAD_MAX HTTP_HEAD_MAX
#define CHUNK_SIZE (64 * 1024)     /* file read / send unit */
#define BODY_DISCARD_MAX (1 << 20) /* request bodies we read and drop */
#define IDLE_TIMEOUT_MS 60000      /* keep-alive connections */
#define LINGER_MS 2000             /* draining a client before closing */
#define STOP_GRACE_MS 3000         /* busy connections at shutdown */
#define SWEEP_MS 1000
#define MAX_THREADS 64
/* Bodies up to this size go with their head in one send(). */
#define SMALL_BODY (16 * 1024)
/* What aio_file_transfer() is asked for at once (an int result is not an
 * issue: it reports 64-bit counts; this only bounds one request). */
#define TRANSFER_MAX (1ULL << 40)

typedef struct Conn Conn;

typedef struct Server {
    AioContext *ctx;
    IOThread *iothread; /* NULL when the main thread serves */
    int listen_fd;
    bool accept_paused; /* out of descriptors: retried by the sweeper */
    QEMUTimer *sweeper;
    Conn *conns;
    unsigned nconns; /* atomic: the main thread reads it for a message */
    bool stopping;
    bool stopped;          /* counted in servers_left */
    int64_t stop_deadline; /* ms; busy connections are cut after it */
    unsigned long connections;
    unsigned long requests;
} Server;

/* What every server shares; read-only once serving. */
static struct {
    char root[PATH_MAX];
    size_t root_len;
    bool quiet;
    AioContext *main_ctx;
    int nservers;
    int servers_left; /* atomic: servers still serving at shutdown */
    Server servers[MAX_THREADS];
} g;

struct Conn {
    Server *srv;
    Conn *next;
    Conn **pprev;
    int fd;
    bool idle;        /* reading a request, no answer in progress */
    unsigned long served; /* requests read so far */
    int64_t deadline; /* ms, 0: none; the sweeper shuts the socket down */
    char peer[INET6_ADDRSTRLEN];
    size_t len;       /* bytes in in[] */
    char in[HEAD_MAX + 1];
    char *out;        /* CHUNK_SIZE bytes */
};

typedef HttpRequest Request;

static void server_stopped(Server *srv);

/* How an answer went, for the access log. */
typedef struct Answer {
    int status;
    uint64_t bytes; /* body bytes sent */
} Answer;

static int64_t now_ms(void)
{
    return qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* An HTTP date, recomputed at most once a second. */
static const char *http_date_now(void)
{
    static char buf[40];
    static time_t cached = -1;
    time_t t = time(NULL);
    struct tm tm;

    if (t != cached) {
        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = t;
    }
    return buf;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

static void conn_free(Conn *c)
{
    Server *srv = c->srv;

    *c->pprev = c->next;
    if (c->next) {
        c->next->pprev = c->pprev;
    }
    close(c->fd);
    free(c->out);
    free(c);
    if (__atomic_sub_fetch(&srv->nconns, 1, __ATOMIC_RELAXED) == 0 &&
        srv->stopping) {
        server_stopped(srv);
    }
}

/*
 * Receive more bytes into c->in.  Returns the count, 0 at end of file, or
 * -1 on an error.  Yields while the socket is empty.
 */
static ssize_t coroutine_fn conn_recv(Conn *c, size_t room)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->len, room, 0);

        if (n >= 0) {
            return n;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            yield_until_fd_readable(c->fd);
        } else if (errno != EINTR) {
            return -1;
        }
    }
}

/* Send everything, with a deadline so a stuck client cannot hold us. */
static bool coroutine_fn conn_send(Conn *c, void *buf, size_t len)
{
    ssize_t n;

    c->deadline = now_ms() + IDLE_TIMEOUT_MS;
    n = qemu_co_send(c->fd, buf, len);
    c->deadline = 0;
    return n == (ssize_t)len;
}

/*
 * Close politely after an answer the client may not have finished
 * sending a request for: stop writing, then read and drop what it still
 * sends until it closes (bounded in time), so that the kernel does not
 * answer the unread bytes with a reset that could destroy our response.
 */
static void coroutine_fn conn_linger(Conn *c)
{
    size_t dropped = 0;

    shutdown(c->fd, SHUT_WR);
    c->deadline = now_ms() + LINGER_MS;
    while (dropped < BODY_DISCARD_MAX) {
        c->len = 0;
        ssize_t n = conn_recv(c, HEAD_MAX);

        if (n <= 0) {
            break;
        }
        dropped += n;
    }
    c->deadline = 0;
}

/* ------------------------------------------------------------------ */
/* Reading and parsing a request                                       */
/* ------------------------------------------------------------------ */

/*
 * Read the next request head into c->in and parse it.  Returns 0 when a
 * request was parsed, an HTTP status for a request that gets an error
 * answer, or -1 when the connection ended (or failed) first.  *consumed
 * is set to the head's length.
 */
static int coroutine_fn read_request(Conn *c, Request *req, size_t *consumed)
{
    size_t end;

    memset(req, 0, offsetof(Request, path));
    req->if_modified_since = -1;
    c->idle = true; /* no answer in progress: shutdown may cut it */
    c->deadline = now_ms() + IDLE_TIMEOUT_MS;
    while (!(end = http_find_head_end(c->in, c->len, 0))) {
        size_t blank;
        ssize_t n;

        if (c->len >= HEAD_MAX) {
            *consumed = c->len;
            c->idle = false;
            return 413;
        }
        if (c->srv->stopping) {
            return -1;
        }
        if (c->len == 0 && c->served) {
            /* After a response the next request takes a while. */
            yield_until_fd_readable(c->fd);
        }
        n = conn_recv(c, HEAD_MAX - c->len);
        if (n <= 0) {
            return -1;
        }
        c->len += n;
        /* Empty lines before a request line are to be ignored. */
        blank = 0;
        while (blank < c->len &&
               (c->in[blank] == '\r' || c->in[blank] == '\n')) {
            blank++;
        }
        c->len -= blank;
        memmove(c->in, c->in + blank, c->len);
    }
    c->idle = false;
    c->deadline = 0;
    c->served++;
    *consumed = end;
    if (memchr(c->in, '\0', end)) {
        return 400;
    }
    c->in[end - 1] = '\0'; /* the final LF; the line before is empty */
    return http_parse_head(req, c->in);
}

/* Drop the request body (after its head has been taken off c->in). */
static bool coroutine_fn discard_body(Conn *c, int64_t len)
{
    while (len > 0) {
        size_t n = c->len < (uint64_t)len ? c->len : (size_t)len;

        memmove(c->in, c->in + n, c->len - n);
        c->len -= n;
        len -= n;
        if (len > 0) {
            ssize_t got;

            c->deadline = now_ms() + IDLE_TIMEOUT_MS;
            got = conn_recv(c, HEAD_MAX);
            c->deadline = 0;
            if (got <= 0) {
                return false;
            }
            c->len = got;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

/* Format the status line and common headers into c->out; its length. */
static int format_head(Conn *c, int status, const Request *req,
                       const char *type, uint64_t length,
                       const char *extra)
{
    bool keep = req->keep_alive;

    return snprintf(c->out, CHUNK_SIZE,
                    "HTTP/1.1 %d %s\r\n"
                    "Server: aioctx-httpd\r\n"
                    "Date: %s\r\n"
                    "%s%s%s"
                    "Content-Length: %" PRIu64 "\r\n"
                    "%s"
                    "%s"
                    "\r\n",
                    status, reason(status), http_date_now(),
                    type ? "Content-Type: " : "", type ? type : "",
                    type ? "\r\n" : "", length, extra ? extra : "",
                    !keep ? "Connection: close\r\n"
                    : req->minor == 0 ? "Connection: keep-alive\r\n" : "");
}

/* A small HTML error page (no body for HEAD); false if sending failed. */
static bool coroutine_fn send_error(Conn *c, int status, const Request *req,
                                    const char *extra, Answer *ans)
{
    char body[256];
    int blen = snprintf(body, sizeof(body),
                        "<!DOCTYPE html>\n<html><head><title>%d %s</title>"
                        "</head><body><h1>%d %s</h1></body></html>\n",
                        status, reason(status), status, reason(status));
    int hlen = format_head(c, status, req, "text/html; charset=utf-8", blen,
                           extra);

    ans->status = status;
    if (!req->head) {
        memcpy(c->out + hlen, body, blen);
        hlen += blen;
        ans->bytes = (uint64_t)blen;
    }
    return conn_send(c, c->out, hlen);
}

/* Whether path (canonical) is the root or inside it. */
static bool inside_root(const char *path)
{
    if (g.root_len == 1) {
        return true; /* serving "/" */
    }
    return strncmp(path, g.root, g.root_len) == 0 &&
           (path[g.root_len] == '/' || path[g.root_len] == '\0');
}

static int errno_status(int err)
{
    return err == EACCES || err == EPERM ? 403 : 404;
}

#define TARGET_LISTING (-1000) /* a directory without index.html */

/*
 * Resolve req->path under the root and open it.  Returns the descriptor
 * (with *st filled and canon the canonical name), TARGET_LISTING (canon
 * is then the directory), or -status.
 */
static int open_target(Request *req, char *canon, struct stat *st)
{
    char full[PATH_MAX], dir[PATH_MAX];
    size_t plen = strlen(req->path);
    int fd;

    /*
     * Relative to the root, which is the working directory: realpath()
     * then only looks at the components under the root.
     */
    if (plen + 2 > sizeof(full)) {
        return -404;
    }
    full[0] = '.';
    memcpy(full + 1, req->path, plen + 1);
    for (int tries = 0; tries < 2; tries++) {
        if (!realpath(full, canon)) {
            if (tries && errno == ENOENT) {
                memcpy(canon, dir, sizeof(dir));
                return TARGET_LISTING;
            }
            return -errno_status(errno);
        }
        if (!inside_root(canon)) {
            return -403;
        }
        fd = open(canon, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
            return -errno_status(errno);
        }
        if (fstat(fd, st) < 0) {
            close(fd);
            return -500;
        }
        if (S_ISREG(st->st_mode)) {
            return fd;
        }
        close(fd);
        if (!S_ISDIR(st->st_mode) || tries) {
            return tries ? -404 : -403;
        }
        if (req->path[plen - 1] != '/') {
            return -301;
        }
        /* A directory: its index.html, resolved and checked again. */
        const char *rel = canon + (g.root_len > 1 ? g.root_len : 0);
        size_t rlen = strlen(rel);

        if (rlen + 1 + sizeof("/index.html") > sizeof(full)) {
            return -404;
        }
        memcpy(dir, canon, sizeof(dir));
        full[0] = '.';
        memcpy(full + 1, rel, rlen);
        memcpy(full + 1 + rlen, "/index.html", sizeof("/index.html"));
    }
    return -404;
}

static bool read_failed(ssize_t got, size_t want)
{
    if (got == (ssize_t)want) {
        return false;
    }
    /* The file shrank or failed under us: the length is already sent. */
    fprintf(stderr, "httpd: read error: %s\n",
            got < 0 ? strerror((int)-got) : "file shrank");
    return true;
}

/*
 * Send len bytes of fd from off after the head in c->out[0..hlen): a small
 * body is read behind the head and both go in one send(); a larger one
 * follows the head (sent with MSG_MORE) through aio_file_co_transfer().
 * False when the connection must be closed; *sent counts body bytes.
 */
static bool coroutine_fn send_body(Conn *c, int fd, uint64_t off,
                                   uint64_t len, size_t hlen, uint64_t *sent)
{
    int64_t moved;
    int err = 0;
    ssize_t n;

    if (len <= SMALL_BODY && len <= CHUNK_SIZE - hlen) {
        struct iovec iov = { .iov_base = c->out + hlen, .iov_len = len };

        if (len && read_failed(aio_file_co_preadv(fd, off, &iov, 1), len)) {
            return false;
        }
        if (!conn_send(c, c->out, hlen + len)) {
            return false;
        }
        *sent = len;
        return true;
    }
    /* The head: usually all of it at once, flushed with the body. */
    do {
        n = send(c->fd, c->out, hlen, MSG_MORE | MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN) {
            return false;
        }
        n = 0;
    }
    if ((size_t)n < hlen && !conn_send(c, c->out + n, hlen - (size_t)n)) {
        return false;
    }
    c->deadline = now_ms() + IDLE_TIMEOUT_MS;
    while (len > 0) {
        uint64_t ask = len < TRANSFER_MAX ? len : TRANSFER_MAX;

        moved = aio_file_co_transfer(c->fd, fd, off, ask, &err);
        if (moved > 0) {
            *sent += (uint64_t)moved;
            off += (uint64_t)moved;
            len -= (uint64_t)moved;
        }
        if (err || moved <= 0 || (uint64_t)moved < ask) {
            break;
        }
    }
    c->deadline = 0;
    if (err == 0 && len > 0) {
        read_failed(0, 1); /* the file shrank */
    }
    return err == 0 && len == 0;
}

/* The validators of a file: a strong ETag and its Last-Modified date. */
static void validators(const struct stat *st, char *etag, size_t elen,
                       char *lastmod, size_t llen)
{
    snprintf(etag, elen, "\"%" PRIx64 "-%" PRIx64 "-%lx\"",
             (uint64_t)st->st_ino, (uint64_t)st->st_size,
             (unsigned long)st->st_mtim.tv_sec * 1000000000UL +
                 (unsigned long)st->st_mtim.tv_nsec);
    http_format_date(lastmod, llen, st->st_mtime);
}

/* Whether the client's copy is current (If-None-Match, If-Modified-Since). */
static bool not_modified(const Request *req, const struct stat *st,
                         const char *etag)
{
    if (req->if_none_match[0]) {
        return http_etag_match(req->if_none_match, etag);
    }
    return req->if_modified_since >= 0 &&
           st->st_mtime <= req->if_modified_since;
}

/* A listing of directory dir for a GET or HEAD of req->path. */
static bool coroutine_fn serve_listing(Conn *c, Request *req, const char *dir,
                                       Answer *ans)
{
    size_t len = 0;
    char *page = dir_listing(dir, req->path, &len);
    int hlen;
    bool ok;

    if (!page) {
        return send_error(c, errno_status(errno), req, NULL, ans);
    }
    hlen = format_head(c, 200, req, "text/html; charset=utf-8", len,
                       "Cache-Control: no-cache\r\n");
    ans->status = 200;
    ok = conn_send(c, c->out, hlen);
    if (ok && !req->head) {
        ok = conn_send(c, page, len);
        ans->bytes = ok ? len : 0;
    }
    free(page);
    return ok;
}

/* Answer one parsed GET or HEAD; false when the connection must close. */
static bool coroutine_fn serve_file(Conn *c, Request *req, Answer *ans)
{
    char canon[PATH_MAX], etag[80], lastmod[40], extra[512];
    uint64_t size, start = 0, len;
    struct stat st;
    int fd = open_target(req, canon, &st);
    int status = 200, hlen;
    bool ok;

    if (fd == -301) {
        char loc[HEAD_MAX + 32];

        snprintf(loc, sizeof(loc), "Location: %.*s/\r\n",
                 (int)req->target_len, req->target);
        return send_error(c, 301, req, loc, ans);
    }
    if (fd == TARGET_LISTING) {
        return serve_listing(c, req, canon, ans);
    }
    if (fd < 0) {
        return send_error(c, -fd, req, NULL, ans);
    }
    size = (uint64_t)st.st_size;
    len = size;
    validators(&st, etag, sizeof(etag), lastmod, sizeof(lastmod));
    if (not_modified(req, &st, etag)) {
        snprintf(extra, sizeof(extra), "ETag: %s\r\nLast-Modified: %s\r\n",
                 etag, lastmod);
        hlen = snprintf(c->out, CHUNK_SIZE,
                        "HTTP/1.1 304 Not Modified\r\n"
                        "Server: aioctx-httpd\r\nDate: %s\r\n%s%s\r\n",
                        http_date_now(), extra,
                        !req->keep_alive ? "Connection: close\r\n"
                        : req->minor == 0 ? "Connection: keep-alive\r\n"
                                          : "");
        ans->status = 304;
        close(fd);
        return conn_send(c, c->out, hlen);
    }
    /* If-Range: the range only for the same version. */
    if (req->range[0] && (!req->if_range[0] ||
                          strcmp(req->if_range, etag) == 0 ||
                          strcmp(req->if_range, lastmod) == 0)) {
        status = http_parse_range(req->range, size, &start, &len);
        if (status == 0) {
            status = 200;
            start = 0;
            len = size;
        }
    }
    if (status == 416) {
        snprintf(extra, sizeof(extra), "Content-Range: bytes */%" PRIu64
                 "\r\n", size);
        close(fd);
        return send_error(c, 416, req, extra, ans);
    }
    if (status == 206) {
        snprintf(extra, sizeof(extra),
                 "Accept-Ranges: bytes\r\nETag: %s\r\nLast-Modified: %s\r\n"
                 "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64
                 "\r\n", etag, lastmod, start, start + len - 1, size);
    } else {
        snprintf(extra, sizeof(extra),
                 "Accept-Ranges: bytes\r\nETag: %s\r\nLast-Modified: %s\r\n",
                 etag, lastmod);
    }
    hlen = format_head(c, status, req, mime_type(canon), len, extra);
    ans->status = status;
    if (req->head) {
        ok = conn_send(c, c->out, hlen);
    } else {
        ok = send_body(c, fd, start, len, hlen, &ans->bytes);
    }
    close(fd);
    return ok;
}

/* One Common Log Format line: host - - [date] "line" status bytes. */
static void access_log(Conn *c, const Request *req, const Answer *ans)
{
    char date[40], line[512];
    time_t t = time(NULL);
    struct tm tm;
    int n;

    if (g.quiet) {
        return;
    }
    localtime_r(&t, &tm);
    strftime(date, sizeof(date), "%d/%b/%Y:%H:%M:%S %z", &tm);
    n = snprintf(line, sizeof(line), "%s - - [%s] \"%s\" %d ", c->peer, date,
                 req->line[0] ? req->line : "-", ans->status);
    if (n < 0 || (size_t)n >= sizeof(line) - 24) {
        return;
    }
    if (ans->bytes) {
        snprintf(line + n, sizeof(line) - n, "%" PRIu64 "\n", ans->bytes);
    } else {
        snprintf(line + n, sizeof(line) - n, "-\n");
    }
    fputs(line, stdout); /* one call: whole lines from every thread */
}

/* ------------------------------------------------------------------ */
/* The connection coroutine                                            */
/* ------------------------------------------------------------------ */

/* Serve one request; false when the connection is to be closed. */
static bool coroutine_fn serve_one(Conn *c)
{
    Request r;
    size_t consumed = 0;
    Answer ans = { 0 };
    int status;
    bool ok;

    status = read_request(c, &r, &consumed);
    if (status < 0) {
        return false;
    }
    c->srv->requests++;
    if (status == 0 && r.other_method) {
        status = 405;
    }
    if (status) {
        /*
         * An error answer.  Only a 405 whose body can be skipped keeps the
         * connection; otherwise close, draining what the client sends.
         */
        bool framed = status == 405 && r.content_length <= BODY_DISCARD_MAX;

        if (!framed) {
            r.keep_alive = false;
        }
        if (c->srv->stopping) {
            r.keep_alive = false;
        }
        c->len -= consumed;
        memmove(c->in, c->in + consumed, c->len);
        if (framed && !discard_body(c, r.content_length)) {
            return false;
        }
        ok = send_error(c, status, &r,
                        status == 405 ? "Allow: GET, HEAD\r\n" : NULL, &ans);
        access_log(c, &r, &ans);
        if (!ok) {
            return false;
        }
        if (!r.keep_alive) {
            conn_linger(c);
        }
        return r.keep_alive;
    }

    if (c->srv->stopping) {
        r.keep_alive = false;
    }
    if (r.content_length > BODY_DISCARD_MAX) {
        r.keep_alive = false;
    }
    /* Before c->in moves: r.target points into it. */
    ok = serve_file(c, &r, &ans);
    access_log(c, &r, &ans);
    if (!ok) {
        return false;
    }
    c->len -= consumed;
    memmove(c->in, c->in + consumed, c->len);
    if (r.keep_alive && !discard_body(c, r.content_length)) {
        return false;
    }
    if (!r.keep_alive) {
        conn_linger(c);
    }
    return r.keep_alive;
}

static void coroutine_fn conn_co(void *opaque)
{
    Conn *c = opaque;

    while (serve_one(c)) {
    }
    conn_free(c);
}

/* ------------------------------------------------------------------ */
/* The servers                                                         */
/* ------------------------------------------------------------------ */

static void peer_name(Conn *c, const struct sockaddr_storage *ss)
{
    const void *addr = ss->ss_family == AF_INET6
                           ? (const void *)&((const struct sockaddr_in6 *)ss)
                                 ->sin6_addr
                           : (const void *)&((const struct sockaddr_in *)ss)
                                 ->sin_addr;

    if (!inet_ntop(ss->ss_family, addr, c->peer, sizeof(c->peer))) {
        snprintf(c->peer, sizeof(c->peer), "-");
    }
}

static void server_accept(void *opaque)
{
    Server *srv = opaque;
    int one = 1;

    for (;;) {
        struct sockaddr_storage ss;
        socklen_t slen = sizeof(ss);
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &slen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        Conn *c;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* Try again at the next sweep rather than spin. */
                aio_set_fd_handler(srv->ctx, srv->listen_fd, NULL, NULL,
                                   NULL, NULL, NULL);
                srv->accept_paused = true;
            }
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c) {
            c->out = malloc(CHUNK_SIZE);
        }
        if (!c || !c->out) {
            free(c);
            close(fd);
            continue;
        }
        c->srv = srv;
        c->fd = fd;
        peer_name(c, &ss);
        c->next = srv->conns;
        if (c->next) {
            c->next->pprev = &c->next;
        }
        c->pprev = &srv->conns;
        srv->conns = c;
        __atomic_add_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
        srv->connections++;
        qemu_coroutine_enter(qemu_coroutine_create(conn_co, c));
    }
}

/* Once a second: cut connections past their deadline, resume accepting. */
static void server_sweep(void *opaque)
{
    Server *srv = opaque;
    int64_t now = now_ms();

    for (Conn *c = srv->conns; c; c = c->next) {
        if ((c->deadline && now > c->deadline) ||
            (srv->stopping && now > srv->stop_deadline)) {
            shutdown(c->fd, SHUT_RDWR); /* wakes the coroutine */
        }
    }
    if (srv->accept_paused && !srv->stopping) {
        srv->accept_paused = false;
        aio_set_fd_handler(srv->ctx, srv->listen_fd, server_accept, NULL,
                           NULL, NULL, srv);
    }
    timer_mod(srv->sweeper, now + SWEEP_MS);
}

/* The server has no connection left at shutdown: tell the main loop. */
static void server_stopped(Server *srv)
{
    if (srv->stopped) {
        return;
    }
    srv->stopped = true;
    if (__atomic_sub_fetch(&g.servers_left, 1, __ATOMIC_ACQ_REL) == 0) {
        aio_context_stop(g.main_ctx);
    }
}

/* In the server's thread: stop accepting, let connections finish. */
static void server_begin_stop(void *opaque)
{
    Server *srv = opaque;

    if (srv->stopping) {
        /* A second signal: cut the busy ones now. */
        srv->stop_deadline = 0;
        server_sweep(srv);
        return;
    }
    srv->stopping = true;
    srv->stop_deadline = now_ms() + STOP_GRACE_MS;
    aio_set_fd_handler(srv->ctx, srv->listen_fd, NULL, NULL, NULL, NULL,
                       NULL);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    /* Connections between requests go now, busy ones after answering. */
    for (Conn *c = srv->conns; c; c = c->next) {
        if (c->idle) {
            shutdown(c->fd, SHUT_RDWR);
        }
    }
    if (!srv->nconns) {
        server_stopped(srv);
    }
}

/* In the server's thread, after the stop: release the timer. */
static void server_cleanup(void *opaque)
{
    Server *srv = opaque;

    timer_free(srv->sweeper);
    srv->sweeper = NULL;
    if (srv->listen_fd >= 0) {
        aio_set_fd_handler(srv->ctx, srv->listen_fd, NULL, NULL, NULL, NULL,
                           NULL);
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
}

/* In the server's thread: start accepting. */
static void server_begin(void *opaque)
{
    Server *srv = opaque;

    aio_set_fd_handler(srv->ctx, srv->listen_fd, server_accept, NULL, NULL,
                       NULL, srv);
    srv->sweeper = aio_timer_new(srv->ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                 server_sweep, srv);
    timer_mod(srv->sweeper, now_ms() + SWEEP_MS);
}

static bool stopping_all;

/* The loop metrics of every context: the main one, then each IOThread's. */
static void print_all_stats(void)
{
    print_stats(stdout, "httpd", "main", g.main_ctx);
    for (int i = 0; i < g.nservers; i++) {
        char who[32];

        if (g.servers[i].iothread && g.servers[i].ctx) {
            snprintf(who, sizeof(who), "thread %d", i);
            print_stats(stdout, "httpd", who, g.servers[i].ctx);
        }
    }
}

static void on_usr1(int signo, void *opaque)
{
    (void)signo;
    (void)opaque;
    print_all_stats();
}

static void on_signal(int signo, void *opaque)
{
    unsigned busy = 0;

    (void)opaque;
    for (int i = 0; i < g.nservers; i++) {
        busy += __atomic_load_n(&g.servers[i].nconns, __ATOMIC_RELAXED);
    }
    if (stopping_all) {
        fprintf(stderr, "httpd: %s again, dropping %u connection%s\n",
                strsignal(signo), busy, busy == 1 ? "" : "s");
    } else {
        fprintf(stderr, "httpd: %s, shutting down\n", strsignal(signo));
    }
    stopping_all = true;
    for (int i = 0; i < g.nservers; i++) {
        Server *srv = &g.servers[i];

        if (srv->iothread) {
            aio_bh_schedule_oneshot(srv->ctx, server_begin_stop, srv);
        } else {
            server_begin_stop(srv);
        }
    }
}

/*
 * Listen on addr:port (IPv4 or IPv6); stores the URL form of the address
 * and the port picked (for port 0), which further sockets then share
 * (SO_REUSEPORT when reuse is set).
 */
static int listen_on(const char *addr, int *port, char *url_host,
                     size_t url_host_len, bool reuse)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                              .ai_socktype = SOCK_STREAM };
    struct sockaddr_storage ss;
    socklen_t slen = sizeof(ss);
    struct addrinfo *ai;
    char portstr[16];
    int one = 1;
    int fd, ret;

    snprintf(portstr, sizeof(portstr), "%d", *port);
    ret = getaddrinfo(addr, portstr, &hints, &ai);
    if (ret) {
        fprintf(stderr, "httpd: bad address '%s': %s\n", addr,
                gai_strerror(ret));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("httpd: socket");
        freeaddrinfo(ai);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &slen) < 0) {
        fprintf(stderr, "httpd: cannot listen on %s port %d: %s\n", addr,
                *port, strerror(errno));
        close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    if (ai->ai_family == AF_INET6) {
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(url_host, url_host_len, "[%s]", addr);
    } else {
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(url_host, url_host_len, "%s", addr);
    }
    freeaddrinfo(ai);
    return fd;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: httpd [--port N] [--bind ADDR] [--root DIR] "
            "[--engine NAME] [--threads N] [--quiet]\n"
            "  --port N       TCP port (default 8080; 0 picks a free one)\n"
            "  --bind ADDR    IPv4 or IPv6 address (default 127.0.0.1)\n"
            "  --root DIR     directory to serve (default: the current "
            "directory)\n"
            "  --engine NAME  poll, epoll, io_uring, linux-aio or auto\n"
            "  --threads N    serve from N IOThreads sharing the port with "
            "SO_REUSEPORT\n"
            "  --quiet        no access log on stdout\n"
            "  --help         show this text\n"
            "Serves the files under DIR with GET and HEAD over HTTP/1.1 "
            "(index.html or a\n"
            "listing for directories, byte ranges, conditional requests) "
            "and logs each\n"
            "request on stdout (Common Log Format); Ctrl-C (SIGINT) or "
            "SIGTERM stops it,\nSIGUSR1 prints the loop metrics.\n");
}

typedef struct Options {
    const char *addr;
    const char *root;
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
        { "root", required_argument, NULL, 'r' },
        { "engine", required_argument, NULL, 'e' },
        { "threads", required_argument, NULL, 't' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "p:b:r:e:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            errno = 0;
            o->port = (int)strtol(optarg, &end, 10);
            if (*end || !*optarg || o->port < 0 || o->port > 65535) {
                fprintf(stderr, "httpd: bad port '%s'\n", optarg);
                return 2;
            }
            break;
        case 'b':
            o->addr = optarg;
            break;
        case 'r':
            o->root = optarg;
            break;
        case 'e':
            o->engine = optarg;
            break;
        case 't':
            o->threads = (int)strtol(optarg, &end, 10);
            if (*end || !*optarg || o->threads < 0 ||
                o->threads > MAX_THREADS) {
                fprintf(stderr, "httpd: bad thread count '%s' (0 to %d)\n",
                        optarg, MAX_THREADS);
                return 2;
            }
            break;
        case 'q':
            g.quiet = true;
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

static bool set_root(const char *dir)
{
    struct stat st;

    if (!realpath(dir, g.root) || stat(g.root, &st) < 0) {
        fprintf(stderr, "httpd: cannot serve '%s': %s\n", dir,
                strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "httpd: cannot serve '%s': not a directory\n", dir);
        return false;
    }
    if (chdir(g.root) < 0) {
        fprintf(stderr, "httpd: cannot enter '%s': %s\n", g.root,
                strerror(errno));
        return false;
    }
    g.root_len = strlen(g.root);
    return true;
}

/* Give every server its context: the main one, or a new IOThread's. */
static bool servers_start(int threads)
{
    Error *err = NULL;

    if (!threads) {
        g.servers[0].ctx = g.main_ctx;
        return true;
    }
    /* iothread_create() reads it; set before any thread exists. */
    setenv("AIOCTX_ENGINE", aio_context_get_engine_name(g.main_ctx), 1);
    for (int i = 0; i < threads; i++) {
        char id[24];

        snprintf(id, sizeof(id), "httpd-%d", i);
        g.servers[i].iothread = iothread_create(id, &err);
        if (!g.servers[i].iothread) {
            fprintf(stderr, "httpd: %s\n", error_get_pretty(err));
            error_free(err);
            return false;
        }
        g.servers[i].ctx = iothread_get_aio_context(g.servers[i].iothread);
    }
    return true;
}

/* Release each server in its own thread, then stop the IOThreads. */
static void servers_end(void)
{
    for (int i = 0; i < g.nservers; i++) {
        Server *srv = &g.servers[i];

        if (!srv->ctx) {
            continue;
        }
        if (!srv->iothread) {
            server_cleanup(srv);
            continue;
        }
        /* Runs before the IOThread's stop request, queued behind it. */
        aio_bh_schedule_oneshot(srv->ctx, server_cleanup, srv);
        iothread_destroy(srv->iothread);
    }
}

int main(int argc, char **argv)
{
    Options o = { .addr = "127.0.0.1", .root = ".", .port = 8080 };
    AioContextOptions ctx_opts = { .engine = NULL };
    char url_host[INET6_ADDRSTRLEN + 2];
    unsigned long requests = 0, connections = 0;
    Error *err = NULL;
    int ret, status = 1;

    ret = parse_options(argc, argv, &o);
    if (ret >= 0) {
        return ret;
    }
    if (!set_root(o.root)) {
        return 1;
    }
    ctx_opts.engine = o.engine;
    g.main_ctx = aio_context_new_with_options(&ctx_opts, &err);
    if (!g.main_ctx) {
        fprintf(stderr, "httpd: %s\n", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    /* Before the thread pool or anything else starts a thread. */
    if (aio_context_add_signal(g.main_ctx, SIGINT, on_signal, NULL, &err) <
            0 ||
        aio_context_add_signal(g.main_ctx, SIGTERM, on_signal, NULL, &err) <
            0 ||
        aio_context_add_signal(g.main_ctx, SIGUSR1, on_usr1, NULL, &err) <
            0) {
        fprintf(stderr, "httpd: %s\n", error_get_pretty(err));
        error_free(err);
        aio_context_unref(g.main_ctx);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    g.nservers = o.threads ? o.threads : 1;
    for (int i = 0; i < g.nservers; i++) {
        g.servers[i].listen_fd = -1;
    }
    if (!servers_start(o.threads)) {
        goto out;
    }
    for (int i = 0; i < g.nservers; i++) {
        g.servers[i].listen_fd = listen_on(o.addr, &o.port, url_host,
                                           sizeof(url_host), o.threads > 0);
        if (g.servers[i].listen_fd < 0) {
            goto out;
        }
    }
    g.servers_left = g.nservers;
    printf("httpd: serving %s on http://%s:%d/ (engine %s", g.root, url_host,
           o.port, aio_context_get_engine_name(g.main_ctx));
    if (o.threads) {
        printf(", %d IOThread%s", o.threads, o.threads > 1 ? "s" : "");
    }
    printf(")\n");
    fflush(stdout);
    if (!g.quiet) {
        setvbuf(stdout, NULL, _IOLBF, 0); /* a log line as it happens */
    }
    for (int i = 0; i < g.nservers; i++) {
        if (g.servers[i].iothread) {
            aio_bh_schedule_oneshot(g.servers[i].ctx, server_begin,
                                    &g.servers[i]);
        } else {
            server_begin(&g.servers[i]);
        }
    }

    aio_context_run(g.main_ctx);
    status = 0;

out:
    if (status == 0) {
        print_all_stats();
    }
    servers_end();
    for (int i = 0; i < g.nservers; i++) {
        requests += g.servers[i].requests;
        connections += g.servers[i].connections;
        if (o.threads && g.servers[i].ctx && status == 0) {
            printf("httpd: thread %d served %lu request%s\n", i,
                   g.servers[i].requests,
                   g.servers[i].requests == 1 ? "" : "s");
        }
    }
    aio_context_unref(g.main_ctx);
    if (status == 0) {
        printf("httpd: served %lu request%s on %lu connection%s\n", requests,
               requests == 1 ? "" : "s", connections,
               connections == 1 ? "" : "s");
    }
    return status;
}
