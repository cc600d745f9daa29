/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * httpd: a small static-file HTTP/1.1 server written with coroutines.
 *
 *   httpd [--port N] [--bind ADDR] [--root DIR] [--engine NAME]
 *
 * One coroutine per connection reads requests with recv() and
 * yield_until_fd_readable(), reads file bodies with aio_file_co_preadv()
 * in 64 KiB chunks (io_uring, Linux AIO or the context's thread pool,
 * depending on the engine) and sends with qemu_co_send().  GET and HEAD,
 * keep-alive (HTTP/1.1 by default, HTTP/1.0 when asked for), Content-Type
 * by file extension, index.html for directories.  The served root becomes
 * the working directory; every path is resolved with realpath() and must
 * stay inside the root (".." segments, encoded or not, are refused first).
 *
 * SIGINT/SIGTERM arrive through the loop (aio_context_add_signal): the
 * listening socket is closed, idle connections are shut down, busy ones
 * finish their response and close, and when the last one is gone the loop
 * stops and the program exits with status 0.
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

#define HEAD_MAX (8 * 1024)        /* request line + headers */
#define CHUNK_SIZE (64 * 1024)     /* file read / send unit */
#define BODY_DISCARD_MAX (1 << 20) /* request bodies we read and drop */
#define IDLE_TIMEOUT_MS 60000      /* keep-alive connections */
#define LINGER_MS 2000             /* draining a client before closing */
#define STOP_GRACE_MS 3000         /* busy connections at shutdown */
#define SWEEP_MS 1000

typedef struct Conn Conn;

typedef struct Server {
    AioContext *ctx;
    int listen_fd;
    bool accept_paused; /* out of descriptors: retried by the sweeper */
    char root[PATH_MAX];
    size_t root_len;
    QEMUTimer *sweeper;
    Conn *conns;
    unsigned nconns;
    bool stopping;
    int64_t stop_deadline; /* ms; busy connections are cut after it */
    unsigned long connections;
    unsigned long requests;
} Server;

struct Conn {
    Server *srv;
    Conn *next;
    Conn **pprev;
    int fd;
    bool idle;        /* reading a request, no answer in progress */
    unsigned long served; /* requests read so far */
    int64_t deadline; /* ms, 0: none; the sweeper shuts the socket down */
    size_t len;       /* bytes in in[] */
    char in[HEAD_MAX + 1];
    char *out;        /* CHUNK_SIZE bytes */
    char *out2;       /* a second one for files larger than a chunk */
};

/* What read_request() found. */
typedef struct Request {
    bool head;         /* HEAD rather than GET */
    bool other_method; /* neither: 405 */
    int minor;         /* HTTP/1.minor */
    bool keep_alive;
    int64_t content_length;
    const char *target; /* as sent, query removed (for redirects) */
    size_t target_len;
    char path[HEAD_MAX]; /* percent-decoded */
} Request;

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    { "html", "text/html; charset=utf-8" },
    { "htm", "text/html; charset=utf-8" },
    { "txt", "text/plain; charset=utf-8" },
    { "css", "text/css; charset=utf-8" },
    { "js", "text/javascript; charset=utf-8" },
    { "json", "application/json" },
    { "png", "image/png" },
    { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "gif", "image/gif" },
    { "svg", "image/svg+xml" },
    { "pdf", "application/pdf" },
};

static int64_t now_ms(void)
{
    return qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static const char *mime_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');

    if (dot && (!slash || dot > slash)) {
        for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]);
             i++) {
            if (strcasecmp(dot + 1, mime_types[i].ext) == 0) {
                return mime_types[i].type;
            }
        }
    }
    return "application/octet-stream";
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
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

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
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
    free(c->out2);
    free(c);
    if (--srv->nconns == 0 && srv->stopping) {
        aio_context_stop(srv->ctx);
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

/* Offset just past the blank line ending the head, or 0 if not there. */
static size_t find_head_end(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i < len; i++) {
        if (buf[i] != '\n') {
            continue;
        }
        if (i + 1 < len && buf[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

/* Split off the next line of the head, without its CR LF. */
static char *next_line(char **pos)
{
    char *line = *pos;
    char *nl = strchr(line, '\n');

    if (nl) {
        *nl = '\0';
        *pos = nl + 1;
    } else {
        nl = line + strlen(line); /* the last line */
        *pos = nl;
    }
    if (nl > line && nl[-1] == '\r') {
        nl[-1] = '\0';
    }
    return line;
}

/*
 * Decode the request target's path into req->path; returns an HTTP
 * status (0 when fine).  Refuses encoded NUL bytes and bad escapes (400)
 * and ".." segments, encoded or not (403).
 */
static int decode_target(Request *req)
{
    const char *t = req->target;
    char *out = req->path;
    size_t len;
    char *seg;

    /* The absolute form "http://host/path" names the same path. */
    if (strncasecmp(t, "http://", 7) == 0 ||
        strncasecmp(t, "https://", 8) == 0) {
        t = strchr(strstr(t, "//") + 2, '/');
        if (!t) {
            t = "/";
        }
        req->target = t;
    }
    if (t[0] != '/') {
        return 400;
    }
    len = strcspn(t, "?#");
    req->target_len = len;
    for (size_t i = 0; i < len; i++) {
        if (t[i] != '%') {
            *out++ = t[i];
            continue;
        }
        int hi = i + 2 < len ? hex_value(t[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(t[i + 2]) : -1;

        if (lo < 0 || (hi == 0 && lo == 0)) {
            return 400;
        }
        *out++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *out = '\0';

    for (seg = req->path; seg; seg = strchr(seg + 1, '/')) {
        const char *s = seg + 1;
        size_t n = strcspn(s, "/");

        if (n == 2 && s[0] == '.' && s[1] == '.') {
            return 403;
        }
    }
    return 0;
}

/* Parse one "Name: value" line; returns an HTTP status (0 when fine). */
static int parse_header(Request *req, char *line, bool *have_host,
                        bool *have_length)
{
    char *colon = line;
    char *value, *end;

    while (is_tchar((unsigned char)*colon)) {
        colon++;
    }
    if (colon == line || *colon != ':') {
        return 400; /* empty name, space before the colon, folding... */
    }
    *colon = '\0';
    value = colon + 1;
    value += strspn(value, " \t");
    end = value + strlen(value);
    while (end > value && (end[-1] == ' ' || end[-1] == '\t')) {
        *--end = '\0';
    }
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\t') {
            return 400;
        }
    }

    if (strcasecmp(line, "Host") == 0) {
        if (*have_host) {
            return 400;
        }
        *have_host = true;
    } else if (strcasecmp(line, "Connection") == 0) {
        char *save = NULL;

        for (char *tok = strtok_r(value, ", \t", &save); tok;
             tok = strtok_r(NULL, ", \t", &save)) {
            if (strcasecmp(tok, "close") == 0) {
                req->keep_alive = false;
            } else if (strcasecmp(tok, "keep-alive") == 0 &&
                       req->minor == 0) {
                req->keep_alive = true;
            }
        }
    } else if (strcasecmp(line, "Content-Length") == 0) {
        int64_t n = 0;

        if (!*value || *have_length) {
            return 400;
        }
        for (const char *p = value; *p; p++) {
            if (*p < '0' || *p > '9' || n > INT64_MAX / 10 - 10) {
                return 400;
            }
            n = n * 10 + (*p - '0');
        }
        req->content_length = n;
        *have_length = true;
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        return 501; /* request bodies we cannot delimit */
    }
    return 0;
}

/* Parse the request line "METHOD SP target SP HTTP/1.x". */
static int parse_request_line(Request *req, char *line)
{
    char *method = line;
    char *sp1 = strchr(line, ' ');
    char *sp2, *version;

    if (!sp1 || sp1 == line) {
        return 400;
    }
    *sp1 = '\0';
    for (char *p = method; *p; p++) {
        if (!is_tchar((unsigned char)*p)) {
            return 400;
        }
    }
    req->target = sp1 + 1;
    sp2 = strchr(req->target, ' ');
    if (!sp2 || sp2 == req->target) {
        return 400;
    }
    *sp2 = '\0';
    for (const char *p = req->target; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            return 400;
        }
    }
    version = sp2 + 1;
    if (strncmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' ||
        version[7] > '9' || version[8]) {
        return 400;
    }
    if (version[5] != '1') {
        return 505;
    }
    req->minor = version[7] - '0';
    req->keep_alive = req->minor >= 1;
    req->head = strcmp(method, "HEAD") == 0;
    req->other_method = !req->head && strcmp(method, "GET") != 0;
    return 0;
}

/* Parse the head (NUL-terminated, lines end in LF); an HTTP status. */
static int parse_head(Request *req, char *head)
{
    bool have_host = false, have_length = false;
    char *pos = head;
    int ret;

    ret = parse_request_line(req, next_line(&pos));
    if (ret) {
        return ret;
    }
    for (;;) {
        char *line = next_line(&pos);

        if (!*line) {
            break;
        }
        ret = parse_header(req, line, &have_host, &have_length);
        if (ret) {
            return ret;
        }
    }
    if (req->minor >= 1 && !have_host) {
        return 400;
    }
    return decode_target(req);
}

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
    c->idle = true; /* no answer in progress: shutdown may cut it */
    c->deadline = now_ms() + IDLE_TIMEOUT_MS;
    while (!(end = find_head_end(c->in, c->len, 0))) {
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
    return parse_head(req, c->in);
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
                    "Content-Type: %s\r\n"
                    "Content-Length: %" PRIu64 "\r\n"
                    "%s"
                    "%s"
                    "\r\n",
                    status, reason(status), http_date_now(), type, length,
                    extra ? extra : "",
                    !keep ? "Connection: close\r\n"
                    : req->minor == 0 ? "Connection: keep-alive\r\n" : "");
}

/* A small HTML error page (no body for HEAD); false if sending failed. */
static bool coroutine_fn send_error(Conn *c, int status, const Request *req,
                                    const char *extra)
{
    char body[256];
    int blen = snprintf(body, sizeof(body),
                        "<!DOCTYPE html>\n<html><head><title>%d %s</title>"
                        "</head><body><h1>%d %s</h1></body></html>\n",
                        status, reason(status), status, reason(status));
    int hlen = format_head(c, status, req, "text/html; charset=utf-8", blen,
                           extra);

    if (!req->head) {
        memcpy(c->out + hlen, body, blen);
        hlen += blen;
    }
    return conn_send(c, c->out, hlen);
}

/* Whether path (canonical) is the root or inside it. */
static bool inside_root(const Server *srv, const char *path)
{
    if (srv->root_len == 1) {
        return true; /* serving "/" */
    }
    return strncmp(path, srv->root, srv->root_len) == 0 &&
           (path[srv->root_len] == '/' || path[srv->root_len] == '\0');
}

static int errno_status(int err)
{
    return err == EACCES || err == EPERM ? 403 : 404;
}

/*
 * Resolve req->path under the root and open it.  Returns the descriptor
 * (with *st filled and canon the canonical name), or -status.
 */
static int open_target(Server *srv, Request *req, char *canon,
                       struct stat *st)
{
    char full[PATH_MAX];
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
            return -errno_status(errno);
        }
        if (!inside_root(srv, canon)) {
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
        const char *rel = canon + (srv->root_len > 1 ? srv->root_len : 0);
        size_t rlen = strlen(rel);

        if (rlen + 1 + sizeof("/index.html") > sizeof(full)) {
            return -404;
        }
        full[0] = '.';
        memcpy(full + 1, rel, rlen);
        memcpy(full + 1 + rlen, "/index.html", sizeof("/index.html"));
    }
    return -404;
}

/* A read started with the callback API while the coroutine sends. */
typedef struct ReadAhead {
    Coroutine *co;
    struct iovec iov;
    bool done;
    bool waiting; /* the coroutine yielded for this read */
    int ret;
} ReadAhead;

static void read_ahead_done(void *opaque, int ret)
{
    ReadAhead *ra = opaque;

    ra->ret = ret;
    ra->done = true;
    if (ra->waiting) {
        aio_co_wake(ra->co);
    }
}

static void coroutine_fn read_ahead_wait(ReadAhead *ra)
{
    while (!ra->done) {
        ra->waiting = true;
        qemu_coroutine_yield();
        ra->waiting = false;
    }
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
 * Send the file's body after the head already in c->out[0..hlen).  The
 * first chunk is read with aio_file_co_preadv() right behind the head;
 * then, while one CHUNK_SIZE buffer is being sent, the next chunk is read
 * into the other with aio_file_preadv().  False when the connection must
 * be closed.
 */
static bool coroutine_fn send_file(Conn *c, int fd, uint64_t size,
                                   size_t hlen)
{
    size_t want = size < CHUNK_SIZE - hlen ? (size_t)size : CHUNK_SIZE - hlen;
    struct iovec iov = { .iov_base = c->out + hlen, .iov_len = want };
    char *buf[2] = { c->out, c->out2 };
    uint64_t off = want;
    size_t len = hlen + want;
    int cur = 0;

    if (want && read_failed(aio_file_co_preadv(fd, 0, &iov, 1), want)) {
        return false;
    }
    if (off < size && !buf[1]) {
        buf[1] = c->out2 = malloc(CHUNK_SIZE);
        if (!buf[1]) {
            return false;
        }
    }
    for (;;) {
        ReadAhead ra = { .co = qemu_coroutine_self() };
        size_t next = size - off < CHUNK_SIZE ? (size_t)(size - off)
                                              : CHUNK_SIZE;
        bool sent;

        if (next) {
            ra.iov.iov_base = buf[!cur];
            ra.iov.iov_len = next;
            if (!aio_file_preadv(c->srv->ctx, fd, off, &ra.iov, 1,
                                 read_ahead_done, &ra)) {
                return false;
            }
        }
        sent = conn_send(c, buf[cur], len);
        if (!next) {
            return sent;
        }
        read_ahead_wait(&ra); /* the buffer is the request's until then */
        if (!sent || read_failed(ra.ret, next)) {
            return false;
        }
        off += next;
        len = next;
        cur = !cur;
    }
}

/* Answer one parsed GET or HEAD; false when the connection must close. */
static bool coroutine_fn serve_file(Conn *c, Request *req)
{
    char canon[PATH_MAX];
    struct stat st;
    int fd = open_target(c->srv, req, canon, &st);
    bool ok;
    int hlen;

    if (fd == -301) {
        char loc[HEAD_MAX + 32];

        snprintf(loc, sizeof(loc), "Location: %.*s/\r\n",
                 (int)req->target_len, req->target);
        return send_error(c, 301, req, loc);
    }
    if (fd < 0) {
        return send_error(c, -fd, req, NULL);
    }
    hlen = format_head(c, 200, req, mime_type(canon), (uint64_t)st.st_size,
                       NULL);
    if (req->head) {
        ok = conn_send(c, c->out, hlen);
    } else {
        ok = send_file(c, fd, (uint64_t)st.st_size, hlen);
    }
    close(fd);
    return ok;
}

/* ------------------------------------------------------------------ */
/* The connection coroutine                                            */
/* ------------------------------------------------------------------ */

/* Serve one request; false when the connection is to be closed. */
static bool coroutine_fn serve_one(Conn *c)
{
    Request r;
    size_t consumed = 0;
    int status;

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
        if (!send_error(c, status, &r,
                        status == 405 ? "Allow: GET, HEAD\r\n" : NULL)) {
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
    if (!serve_file(c, &r)) {
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
/* The server                                                          */
/* ------------------------------------------------------------------ */

static void server_accept(void *opaque)
{
    Server *srv = opaque;
    int one = 1;

    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL,
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
        c->next = srv->conns;
        if (c->next) {
            c->next->pprev = &c->next;
        }
        c->pprev = &srv->conns;
        srv->conns = c;
        srv->nconns++;
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

static void on_signal(int signo, void *opaque)
{
    Server *srv = opaque;

    if (srv->stopping) {
        fprintf(stderr, "httpd: %s again, dropping %u connection%s\n",
                strsignal(signo), srv->nconns, srv->nconns == 1 ? "" : "s");
        srv->stop_deadline = 0;
        server_sweep(srv);
        return;
    }
    fprintf(stderr, "httpd: %s, shutting down\n", strsignal(signo));
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
        aio_context_stop(srv->ctx);
    }
}

/* Listen on addr:port (IPv4 or IPv6); stores the URL form of the address. */
static int listen_on(const char *addr, int *port, char *url_host,
                     size_t url_host_len)
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
            "[--engine NAME]\n"
            "  --port N       TCP port (default 8080; 0 picks a free one)\n"
            "  --bind ADDR    IPv4 or IPv6 address (default 127.0.0.1)\n"
            "  --root DIR     directory to serve (default: the current "
            "directory)\n"
            "  --engine NAME  poll, epoll, io_uring, linux-aio or auto\n"
            "  --help         show this text\n"
            "Serves the files under DIR with GET and HEAD over HTTP/1.1 "
            "(index.html for\n"
            "directories); Ctrl-C (SIGINT) or SIGTERM stops it.\n");
}

typedef struct Options {
    const char *addr;
    const char *root;
    const char *engine;
    int port;
} Options;

/* Returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, Options *o)
{
    static const struct option opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "root", required_argument, NULL, 'r' },
        { "engine", required_argument, NULL, 'e' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "p:b:r:e:h", opts, NULL)) != -1) {
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

static bool set_root(Server *srv, const char *dir)
{
    struct stat st;

    if (!realpath(dir, srv->root) || stat(srv->root, &st) < 0) {
        fprintf(stderr, "httpd: cannot serve '%s': %s\n", dir,
                strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "httpd: cannot serve '%s': not a directory\n", dir);
        return false;
    }
    if (chdir(srv->root) < 0) {
        fprintf(stderr, "httpd: cannot enter '%s': %s\n", srv->root,
                strerror(errno));
        return false;
    }
    srv->root_len = strlen(srv->root);
    return true;
}

int main(int argc, char **argv)
{
    Options o = { .addr = "127.0.0.1", .root = ".", .port = 8080 };
    AioContextOptions ctx_opts = { .engine = NULL };
    static Server srv = { .listen_fd = -1 };
    char url_host[INET6_ADDRSTRLEN + 2];
    Error *err = NULL;
    int ret;

    ret = parse_options(argc, argv, &o);
    if (ret >= 0) {
        return ret;
    }
    if (!set_root(&srv, o.root)) {
        return 1;
    }
    ctx_opts.engine = o.engine;
    srv.ctx = aio_context_new_with_options(&ctx_opts, &err);
    if (!srv.ctx) {
        fprintf(stderr, "httpd: %s\n", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    /* Before the thread pool or anything else starts a thread. */
    if (aio_context_add_signal(srv.ctx, SIGINT, on_signal, &srv, &err) < 0 ||
        aio_context_add_signal(srv.ctx, SIGTERM, on_signal, &srv, &err) < 0) {
        fprintf(stderr, "httpd: %s\n", error_get_pretty(err));
        error_free(err);
        aio_context_unref(srv.ctx);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    srv.listen_fd = listen_on(o.addr, &o.port, url_host, sizeof(url_host));
    if (srv.listen_fd < 0) {
        aio_context_unref(srv.ctx);
        return 1;
    }
    aio_set_fd_handler(srv.ctx, srv.listen_fd, server_accept, NULL, NULL,
                       NULL, &srv);
    srv.sweeper = aio_timer_new(srv.ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                server_sweep, &srv);
    timer_mod(srv.sweeper, now_ms() + SWEEP_MS);

    printf("httpd: serving %s on http://%s:%d/ (engine %s)\n", srv.root,
           url_host, o.port, aio_context_get_engine_name(srv.ctx));
    fflush(stdout);

    aio_context_run(srv.ctx);

    timer_free(srv.sweeper);
    aio_context_unref(srv.ctx);
    printf("httpd: served %lu request%s on %lu connection%s\n", srv.requests,
           srv.requests == 1 ? "" : "s", srv.connections,
           srv.connections == 1 ? "" : "s");
    return 0;
}
