/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * examples/httpd as a process, with real clients: curl (status codes,
 * bodies byte for byte, Content-Type, HEAD, keep-alive reuse, path
 * traversal attempts) and raw sockets (malformed requests, an oversized
 * head, pipelining, HTTP/1.0, request bodies), then SIGINT or SIGTERM and
 * exit status 0.  Each test serves its own temporary tree:
 *
 *   BASE/secret.txt               outside the root: must never be served
 *   BASE/www/                     the root
 *     hello.txt style.css data.json page.html image.png noext
 *     "a b.txt"  big.bin (1 MiB)
 *     sub/index.html  empty/      (a directory without index.html)
 *     escape -> ..                (a symlink out of the root)
 *     passwd -> /etc/passwd
 *
 * The program's path comes from CMake (HTTPD_PATH); the engine from
 * $AIOCTX_ENGINE, passed on as --engine.  Without /usr/bin/curl only the
 * raw-socket tests run and the suite exits 77 when they pass.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "test-spawn.h"
#include "test-tree.h"
#include "test-util.h"

#ifndef HTTPD_PATH
#error "HTTPD_PATH must name the httpd program"
#endif

#define CURL "/usr/bin/curl"
#define BIG_SIZE (1024 * 1024)
#define SECRET "TOP-SECRET-7f3a"

static char base[80];
static char root[112];

/* ------------------------------------------------------------------ */
/* The served tree                                                     */
/* ------------------------------------------------------------------ */

static void write_file(const char *rel, const void *data, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_text(const char *rel, const char *text)
{
    write_file(rel, text, strlen(text));
}

/* Every byte value, in an order that differs from one MiB to the next. */
static unsigned char *big_content(void)
{
    unsigned char *p = malloc(BIG_SIZE);
    uint32_t x = 2463534242u;

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < BIG_SIZE; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

/*
 * The trees live in one directory made and removed by the parent process
 * (an unchecked fixture), since a failed test's process exits without
 * running its checked teardown.
 */
static char top[48];

static void top_create(void)
{
    snprintf(top, sizeof(top), "/tmp/aioctx-test-httpd-XXXXXX");
    if (!mkdtemp(top)) {
        perror("mkdtemp");
        abort();
    }
}

static void top_remove(void)
{
    test_tree_remove(top);
}

/* Checked fixture: this test's tree. */
static void tree_create(void)
{
    static const unsigned char png[] = { 0x89, 'P', 'N', 'G', '\r', '\n',
                                         0x1a, '\n', 0, 0, 0, 0, 0xff };
    unsigned char *big;
    char path[256];

    snprintf(base, sizeof(base), "%s/t-XXXXXX", top);
    ck_assert_ptr_nonnull(mkdtemp(base));
    snprintf(root, sizeof(root), "%s/www", base);
    ck_assert_int_eq(mkdir(root, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub", root);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/empty", root);
    ck_assert_int_eq(mkdir(path, 0755), 0);

    write_text("secret.txt", SECRET "\n");
    write_text("www/hello.txt", "Hello, world!\n");
    write_text("www/style.css", "body { color: black; }\n");
    write_text("www/data.json", "{\"answer\": 42}\n");
    write_text("www/page.html", "<!DOCTYPE html><p>page</p>\n");
    write_text("www/noext", "no extension\n");
    write_text("www/a b.txt", "a space in the name\n");
    write_text("www/sub/index.html", "<!DOCTYPE html><p>sub index</p>\n");
    write_file("www/image.png", png, sizeof(png));
    big = big_content();
    write_file("www/big.bin", big, BIG_SIZE);
    free(big);

    snprintf(path, sizeof(path), "%s/escape", root);
    ck_assert_int_eq(symlink("..", path), 0);
    snprintf(path, sizeof(path), "%s/passwd", root);
    ck_assert_int_eq(symlink("/etc/passwd", path), 0);
}

static void tree_remove(void)
{
    if (base[0]) {
        test_tree_remove(base);
        base[0] = '\0';
    }
}

/* The whole content of BASE/rel, or of an absolute path. */
static char *read_file(const char *path, size_t *len)
{
    char full[256];
    FILE *f;
    char *buf;
    long n;

    if (path[0] != '/') {
        snprintf(full, sizeof(full), "%s/%s", base, path);
        path = full;
    }
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, n, f), n);
    buf[n] = '\0';
    fclose(f);
    *len = n;
    return buf;
}

/* ------------------------------------------------------------------ */
/* The server                                                          */
/* ------------------------------------------------------------------ */

typedef struct Httpd {
    Spawn sp;
    int port;
    char url[64]; /* http://127.0.0.1:PORT */
} Httpd;

static void httpd_start(Httpd *h)
{
    const char *engine = getenv("AIOCTX_ENGINE");
    const char *argv[12] = { HTTPD_PATH, "--port", "0", "--bind",
                             "127.0.0.1", "--root", root, NULL };
    const char *at;

    if (engine && *engine) {
        argv[7] = "--engine";
        argv[8] = engine;
        argv[9] = NULL;
    }
    spawn_start(&h->sp, argv);
    at = spawn_expect(&h->sp, "httpd: serving ");
    ck_assert_msg(sscanf(at, "httpd: serving %*s on http://127.0.0.1:%d/",
                         &h->port) == 1,
                  "bad start line: %s", at);
    ck_assert_msg(strncmp(at + strlen("httpd: serving "), root,
                          strlen(root)) == 0,
                  "serves another directory: %s", at);
    if (engine && *engine) {
        char want[64];

        snprintf(want, sizeof(want), "(engine %s)", engine);
        spawn_expect(&h->sp, want);
    }
    snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%d", h->port);
}

/* Stop with signo; it must exit with status 0.  Returns its stdout. */
static const char *httpd_stop(Httpd *h, int signo)
{
    int status;

    ck_assert_int_eq(kill(h->sp.pid, signo), 0);
    status = spawn_wait(&h->sp);
    ck_assert_msg(status == 0, "httpd exit status %d; output:\n%s\n%s",
                  status, h->sp.out, h->sp.err);
    ck_assert_msg(strstr(h->sp.err, "shutting down"),
                  "no shutdown message:\n%s", h->sp.err);
    return h->sp.out;
}

/* ------------------------------------------------------------------ */
/* curl                                                                */
/* ------------------------------------------------------------------ */

/*
 * curl -s -S --max-time 10 ARGS...; returns its stdout (the -w output,
 * or headers with -I).  Fails the test when curl itself fails.
 */
static const char *curl(Spawn *sp, const char *const *args)
{
    const char *argv[32] = { CURL, "-s", "-S", "--max-time", "10" };
    int n = 5, status;

    while (*args && n < 31) {
        argv[n++] = *args++;
    }
    argv[n] = NULL;
    status = spawn_run(sp, argv);
    ck_assert_msg(status == 0, "curl exit status %d:\n%s", status, sp->err);
    return sp->out;
}

/* GET url_path into BASE/got; returns "CODE TYPE" from curl. */
static const char *curl_get(Httpd *h, Spawn *sp, const char *url_path,
                            bool as_is)
{
    char url[512], out[256];
    const char *args[] = { "-o", out, "-w", "%{http_code} %{content_type}",
                           url, as_is ? "--path-as-is" : NULL, NULL };

    snprintf(url, sizeof(url), "%s%s", h->url, url_path);
    snprintf(out, sizeof(out), "%s/got", base);
    return curl(sp, args);
}

static void assert_body(const char *want_file)
{
    size_t want_len, got_len;
    char *want = read_file(want_file, &want_len);
    char *got = read_file("got", &got_len);

    ck_assert_msg(got_len == want_len, "%s: got %zu bytes, wanted %zu",
                  want_file, got_len, want_len);
    ck_assert_msg(memcmp(got, want, want_len) == 0,
                  "%s: the body differs", want_file);
    free(want);
    free(got);
}

static bool have_curl(void)
{
    return access(CURL, X_OK) == 0;
}

/* ------------------------------------------------------------------ */
/* Raw sockets                                                         */
/* ------------------------------------------------------------------ */

static int raw_connect(int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port) };
    struct timeval tv = { .tv_sec = 10 };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(test_connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
                  "connect to port %d: %s", port, strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

static void raw_send(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = test_send(fd, buf, len, MSG_NOSIGNAL);

        ck_assert_msg(n > 0, "send: %s", n < 0 ? strerror(errno) : "0");
        buf += n;
        len -= n;
    }
}

/* Read until the server closes (fails after 10 s); returns the length. */
static size_t raw_read_to_eof(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (;;) {
        char scratch[4096];
        ssize_t n = len < cap - 1 ? test_recv(fd, buf + len, cap - 1 - len, 0)
                                  : test_recv(fd, scratch, sizeof(scratch), 0);

        ck_assert_msg(n >= 0, "recv: %s (the server kept the connection?)",
                      strerror(errno));
        if (n == 0) {
            break;
        }
        if (len < cap - 1) {
            len += n;
        }
    }
    buf[len] = '\0';
    return len;
}

/* Value of header name in the head at resp, as a number; -1 if none. */
static long header_number(const char *resp, const char *name)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nlen = strlen(name);

    for (const char *p = strstr(resp, "\r\n"); p && p < end;
         p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nlen) == 0 && p[2 + nlen] == ':') {
            return strtol(p + 3 + nlen, NULL, 10);
        }
    }
    return -1;
}

/*
 * Read exactly one response (the head byte by byte, so nothing of a
 * response behind it is taken, then Content-Length bytes of body unless
 * head_only) into buf; returns its total length.
 */
static size_t raw_read_response(int fd, char *buf, size_t cap, bool head_only)
{
    size_t len = 0, total;
    long cl;

    while (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
        ssize_t n = test_recv(fd, buf + len, 1, 0);

        ck_assert_msg(n == 1, "recv: %s after %zu bytes:\n%.*s",
                      n < 0 ? strerror(errno) : "connection closed", len,
                      (int)len, buf);
        len++;
        ck_assert_uint_lt(len, cap);
    }
    buf[len] = '\0';
    cl = header_number(buf, "Content-Length");
    ck_assert_msg(cl >= 0, "no Content-Length:\n%s", buf);
    total = len + (head_only ? 0 : (size_t)cl);
    ck_assert_uint_lt(total, cap);
    while (len < total) {
        ssize_t n = test_recv(fd, buf + len, total - len, 0);

        ck_assert_msg(n > 0, "recv: %s in the body",
                      n < 0 ? strerror(errno) : "connection closed");
        len += n;
    }
    buf[len] = '\0';
    return len;
}

/* Send request on a new connection; the answer up to the server's close. */
static size_t raw_exchange(int port, const char *req, size_t req_len,
                           char *buf, size_t cap)
{
    int fd = raw_connect(port);
    size_t len;

    raw_send(fd, req, req_len);
    len = raw_read_to_eof(fd, buf, cap);
    close(fd);
    return len;
}

static void assert_status_line(const char *resp, int status)
{
    char want[32];

    snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
    ck_assert_msg(strncmp(resp, want, strlen(want)) == 0,
                  "wanted %d, got:\n%s", status, resp);
}

/* ------------------------------------------------------------------ */
/* Tests with curl                                                     */
/* ------------------------------------------------------------------ */

static const struct {
    const char *url;
    const char *file;
    const char *type;
} get_cases[] = {
    { "/hello.txt", "www/hello.txt", "text/plain; charset=utf-8" },
    { "/big.bin", "www/big.bin", "application/octet-stream" },
    { "/style.css", "www/style.css", "text/css; charset=utf-8" },
    { "/data.json", "www/data.json", "application/json" },
    { "/page.html", "www/page.html", "text/html; charset=utf-8" },
    { "/image.png", "www/image.png", "image/png" },
    { "/noext", "www/noext", "application/octet-stream" },
    { "/a%20b.txt", "www/a b.txt", "text/plain; charset=utf-8" },
    { "/hello.txt?x=1&y=2", "www/hello.txt", "text/plain; charset=utf-8" },
    { "/sub/", "www/sub/index.html", "text/html; charset=utf-8" },
    { "/%73ub/index.html", "www/sub/index.html", "text/html; charset=utf-8" },
};

START_TEST(test_get)
{
    Httpd h;
    Spawn sp;

    httpd_start(&h);
    for (size_t i = 0; i < sizeof(get_cases) / sizeof(get_cases[0]); i++) {
        const char *w = curl_get(&h, &sp, get_cases[i].url, false);
        char want[128];

        snprintf(want, sizeof(want), "200 %s", get_cases[i].type);
        ck_assert_msg(strcmp(w, want) == 0, "%s: \"%s\", wanted \"%s\"",
                      get_cases[i].url, w, want);
        assert_body(get_cases[i].file);
    }
    httpd_stop(&h, SIGINT);
}
END_TEST

START_TEST(test_head)
{
    const char *args[] = { "-I", NULL, NULL };
    char url[128], resp[4096], req[128];
    const char *hdrs;
    Httpd h;
    Spawn sp;
    size_t len;
    int n;

    httpd_start(&h);
    snprintf(url, sizeof(url), "%s/big.bin", h.url);
    args[1] = url;
    hdrs = curl(&sp, args);
    ck_assert_msg(strncmp(hdrs, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", hdrs);
    ck_assert_int_eq(header_number(hdrs, "Content-Length"), BIG_SIZE);
    ck_assert_msg(strstr(hdrs, "Content-Type: application/octet-stream\r\n"),
                  "%s", hdrs);

    /* Nothing follows the head, up to the close that was asked for. */
    n = snprintf(req, sizeof(req), "HEAD /big.bin HTTP/1.1\r\nHost: t\r\n"
                 "Connection: close\r\n\r\n");
    len = raw_exchange(h.port, req, n, resp, sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert_int_eq(header_number(resp, "Content-Length"), BIG_SIZE);
    ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\n"));
    ck_assert_uint_eq(len, strstr(resp, "\r\n\r\n") + 4 - resp);

    /* HEAD of an error: the same head as GET, no body. */
    n = snprintf(req, sizeof(req), "HEAD /missing HTTP/1.0\r\n\r\n");
    len = raw_exchange(h.port, req, n, resp, sizeof(resp));
    assert_status_line(resp, 404);
    ck_assert_int_gt(header_number(resp, "Content-Length"), 0);
    ck_assert_uint_eq(len, strstr(resp, "\r\n\r\n") + 4 - resp);
    httpd_stop(&h, SIGINT);
}
END_TEST

START_TEST(test_not_found_and_redirect)
{
    /* "/empty/" (no index.html) is a listing now: test_listing. */
    static const char *const missing[] = { "/missing.txt", "/sub/nope.html",
                                           "/hello.txt/x" };
    char url[128], want[160];
    const char *args[] = { "-o", "/dev/null", "-w",
                           "%{http_code} %{redirect_url}", url, NULL };
    Httpd h;
    Spawn sp;

    httpd_start(&h);
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        const char *w = curl_get(&h, &sp, missing[i], false);

        ck_assert_msg(strncmp(w, "404 text/html", 13) == 0, "%s: %s",
                      missing[i], w);
    }
    /* A directory without the slash: redirected to it. */
    snprintf(url, sizeof(url), "%s/sub", h.url);
    snprintf(want, sizeof(want), "301 %s/sub/", h.url);
    ck_assert_str_eq(curl(&sp, args), want);
    httpd_stop(&h, SIGINT);
}
END_TEST

/* Attempts to leave the root; none may get past it. */
static const char *const traversals[] = {
    "/../secret.txt",
    "/../../../../etc/passwd",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/%2e%2e/%2e%2e/etc/passwd",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/.%2e/secret.txt",
    "/escape/secret.txt", /* a symlink out of the root */
    "/passwd",            /* a symlink to /etc/passwd */
};

START_TEST(test_traversal_refused)
{
    Httpd h;
    Spawn sp;

    httpd_start(&h);
    for (size_t i = 0; i < sizeof(traversals) / sizeof(traversals[0]);
         i++) {
        const char *w = curl_get(&h, &sp, traversals[i], true);
        size_t len;
        char *body;

        ck_assert_msg(strncmp(w, "403 ", 4) == 0 || strncmp(w, "404 ", 4) == 0,
                      "%s: %s", traversals[i], w);
        body = read_file("got", &len);
        ck_assert_msg(!strstr(body, SECRET) && !strstr(body, "root:"),
                      "%s leaked:\n%s", traversals[i], body);
        free(body);
    }
    httpd_stop(&h, SIGINT);
}
END_TEST

/* curl fetching three URLs in one invocation reuses its connection. */
START_TEST(test_keep_alive_reuse)
{
    char u1[128], u2[128], u3[128];
    const char *args[] = { "-v", "-o", "/dev/null", "-o", "/dev/null", "-o",
                           "/dev/null", u1, u2, u3, NULL };
    const char *out;
    Httpd h;
    Spawn sp;

    httpd_start(&h);
    snprintf(u1, sizeof(u1), "%s/hello.txt", h.url);
    snprintf(u2, sizeof(u2), "%s/big.bin", h.url);
    snprintf(u3, sizeof(u3), "%s/missing", h.url);
    curl(&sp, args);
    ck_assert_msg(strstr(sp.err, "Re-using existing connection"),
                  "no connection reuse:\n%s", sp.err);
    out = httpd_stop(&h, SIGINT);
    ck_assert_msg(strstr(out, "served 3 requests on 1 connection\n"),
                  "%s", out);
}
END_TEST

START_TEST(test_method_not_allowed)
{
    char url[128];
    const char *post[] = { "-X", "POST", "-d", "payload", "-D", "-", "-o",
                           "/dev/null", url, NULL };
    const char *del[] = { "-X", "DELETE", "-o", "/dev/null", "-w",
                          "%{http_code}", url, NULL };
    const char *out;
    Httpd h;
    Spawn sp;

    httpd_start(&h);
    snprintf(url, sizeof(url), "%s/hello.txt", h.url);
    out = curl(&sp, post);
    ck_assert_msg(strncmp(out, "HTTP/1.1 405 ", 13) == 0, "%s", out);
    ck_assert_msg(strstr(out, "Allow: GET, HEAD\r\n"), "%s", out);
    ck_assert_str_eq(curl(&sp, del), "405");
    httpd_stop(&h, SIGINT);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Tests with raw sockets                                              */
/* ------------------------------------------------------------------ */

static const char *const malformed[] = {
    "GARBAGE\r\n\r\n",
    "GET /hello.txt\r\n\r\n",                            /* no version */
    "GET /hello.txt HTTP/1.1\r\n\r\n",                   /* no Host */
    "GET hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",         /* not a path */
    "GET  /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",       /* two spaces */
    "GET /hello.txt HTTP/1.1 x\r\nHost: t\r\n\r\n",
    "GET /hello.txt HTTP/one\r\nHost: t\r\n\r\n",
    "GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n",              /* bad escape */
    "GET /hello.txt%00.png HTTP/1.1\r\nHost: t\r\n\r\n", /* NUL */
    "GET /hello.txt HTTP/1.1\r\nHost: t\r\nNo colon\r\n\r\n",
    "GET /hello.txt HTTP/1.1\r\nHost: t\r\nName : v\r\n\r\n",
    "GET /hello.txt HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n",
    "GET /hello.txt HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
    "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
};

START_TEST(test_bad_request)
{
    char resp[4096];
    Httpd h;

    httpd_start(&h);
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        raw_exchange(h.port, malformed[i], strlen(malformed[i]), resp,
                     sizeof(resp));
        ck_assert_msg(strncmp(resp, "HTTP/1.1 400 ", 13) == 0,
                      "request %zu: wanted 400, got:\n%s", i, resp);
        ck_assert_msg(strstr(resp, "Connection: close\r\n"), "%s", resp);
    }
    httpd_stop(&h, SIGINT);
}
END_TEST

/* A head over the 8 KiB limit gets 413; one just under it is served. */
START_TEST(test_header_too_large)
{
    size_t cap = 32 * 1024, len;
    char *req = malloc(cap), resp[4096];
    Httpd h;

    httpd_start(&h);
    for (int big = 0; big < 2; big++) {
        size_t fill = big ? 16 * 1024 : 7 * 1024;

        len = snprintf(req, cap, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n"
                       "Connection: close\r\nX-Fill: ");
        memset(req + len, 'a', fill);
        len += fill;
        len += snprintf(req + len, cap - len, "\r\n\r\n");
        raw_exchange(h.port, req, len, resp, sizeof(resp));
        assert_status_line(resp, big ? 413 : 200);
    }
    free(req);
    httpd_stop(&h, SIGINT);
}
END_TEST

/* Two requests in one packet, then Connection: close is honoured. */
START_TEST(test_pipelining_and_close)
{
    static const char two[] =
        "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char last[] =
        "GET /data.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char resp[4096];
    int fd;
    Httpd h;

    httpd_start(&h);
    fd = raw_connect(h.port);
    raw_send(fd, two, sizeof(two) - 1);
    raw_read_response(fd, resp, sizeof(resp), false);
    assert_status_line(resp, 200);
    ck_assert_msg(strstr(resp, "\r\n\r\nHello, world!\n"), "%s", resp);
    raw_read_response(fd, resp, sizeof(resp), false);
    ck_assert_msg(strstr(resp, "\r\n\r\nbody { color"), "%s", resp);

    raw_send(fd, last, sizeof(last) - 1);
    raw_read_to_eof(fd, resp, sizeof(resp)); /* fails unless closed */
    assert_status_line(resp, 200);
    ck_assert_msg(strstr(resp, "Connection: close\r\n"), "%s", resp);
    ck_assert_msg(strstr(resp, "\r\n\r\n{\"answer\": 42}\n"), "%s", resp);
    close(fd);
    ck_assert_msg(strstr(httpd_stop(&h, SIGINT),
                         "served 3 requests on 1 connection\n"),
                  "%s", h.sp.out);
}
END_TEST

/* HTTP/1.0 closes unless keep-alive is asked for. */
START_TEST(test_http10)
{
    static const char plain[] = "GET /hello.txt HTTP/1.0\r\n\r\n";
    static const char keep[] =
        "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    char resp[4096];
    int fd;
    Httpd h;

    httpd_start(&h);
    raw_exchange(h.port, plain, sizeof(plain) - 1, resp, sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert_msg(strstr(resp, "Connection: close\r\n"), "%s", resp);

    fd = raw_connect(h.port);
    for (int i = 0; i < 2; i++) {
        raw_send(fd, keep, sizeof(keep) - 1);
        raw_read_response(fd, resp, sizeof(resp), false);
        assert_status_line(resp, 200);
        ck_assert_msg(strstr(resp, "Connection: keep-alive\r\n"), "%s",
                      resp);
    }
    close(fd);
    httpd_stop(&h, SIGTERM);
}
END_TEST

/* The absolute form of the target names the same file. */
START_TEST(test_absolute_form)
{
    static const char req[] = "GET http://t/sub/ HTTP/1.1\r\nHost: t\r\n"
                              "Connection: close\r\n\r\n";
    char resp[4096];
    Httpd h;

    httpd_start(&h);
    raw_exchange(h.port, req, sizeof(req) - 1, resp, sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert_msg(strstr(resp, "\r\n\r\n<!DOCTYPE html><p>sub index</p>\n"),
                  "%s", resp);
    httpd_stop(&h, SIGINT);
}
END_TEST

/* A 405 with a body keeps the connection: the body is skipped. */
START_TEST(test_request_body_skipped)
{
    static const char req[] =
        "POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n"
        "GET /x 1\n"
        "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    char resp[4096];
    int fd;
    Httpd h;

    httpd_start(&h);
    fd = raw_connect(h.port);
    raw_send(fd, req, sizeof(req) - 1);
    raw_read_response(fd, resp, sizeof(resp), false);
    assert_status_line(resp, 405);
    ck_assert_msg(strstr(resp, "Allow: GET, HEAD\r\n"), "%s", resp);
    raw_read_response(fd, resp, sizeof(resp), false);
    assert_status_line(resp, 200);
    ck_assert_msg(strstr(resp, "\r\n\r\nHello, world!\n"), "%s", resp);
    close(fd);
    httpd_stop(&h, SIGINT);
}
END_TEST

/*
 * SIGTERM with an idle keep-alive connection, a half-sent request and a
 * large response in progress: exit status 0, the idle one closed.
 */
START_TEST(test_shutdown_with_connections)
{
    static const char get[] = "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char half[] = "GET /hello.txt HTTP/1.1\r\nHo";
    static const char big[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    char resp[4096], byte;
    int idle, partial, slow;
    const char *out;
    Httpd h;

    httpd_start(&h);
    idle = raw_connect(h.port);
    raw_send(idle, get, sizeof(get) - 1);
    raw_read_response(idle, resp, sizeof(resp), false);
    partial = raw_connect(h.port);
    raw_send(partial, half, sizeof(half) - 1);
    slow = raw_connect(h.port); /* does not read its 1 MiB */
    raw_send(slow, big, sizeof(big) - 1);
    ck_assert_int_eq(test_recv(slow, resp, 100, MSG_WAITALL), 100);

    out = httpd_stop(&h, SIGTERM);
    ck_assert_msg(strstr(out, "on 3 connections\n"), "%s", out);
    ck_assert_int_eq(test_recv(idle, &byte, 1, 0), 0);
    close(idle);
    close(partial);
    close(slow);
}
END_TEST

START_TEST(test_help_and_errors)
{
    const char *help[] = { HTTPD_PATH, "--help", NULL };
    const char *bad[] = { HTTPD_PATH, "--port", "http", NULL };
    const char *noroot[] = { HTTPD_PATH, "--port", "0", "--root",
                             "/nonexistent/dir", NULL };
    Spawn sp;

    ck_assert_int_eq(spawn_run(&sp, help), 0);
    for (int i = 0; i < 5; i++) {
        static const char *const opts[] = { "--port", "--bind", "--root",
                                            "--engine", "--help" };

        ck_assert_msg(strstr(sp.out, opts[i]), "--help lacks %s:\n%s",
                      opts[i], sp.out);
    }
    ck_assert_int_eq(spawn_run(&sp, bad), 2);
    ck_assert_int_eq(spawn_run(&sp, noroot), 1);
    ck_assert_msg(strstr(sp.err, "/nonexistent/dir"), "%s", sp.err);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Ranges, validators, listings, types, the log, threads               */
/* ------------------------------------------------------------------ */

/* httpd_start() with extra options (NULL-terminated, up to 6). */
static void httpd_start_with(Httpd *h, const char *const *extra)
{
    const char *engine = getenv("AIOCTX_ENGINE");
    const char *argv[20] = { HTTPD_PATH, "--port", "0", "--bind",
                             "127.0.0.1", "--root", root };
    int n = 7;
    const char *at;

    if (engine && *engine) {
        argv[n++] = "--engine";
        argv[n++] = engine;
    }
    while (*extra && n < 19) {
        argv[n++] = *extra++;
    }
    argv[n] = NULL;
    spawn_start(&h->sp, argv);
    at = spawn_expect(&h->sp, "httpd: serving ");
    ck_assert_msg(sscanf(at, "httpd: serving %*s on http://127.0.0.1:%d/",
                         &h->port) == 1,
                  "bad start line: %s", at);
    snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%d", h->port);
}

/* A raw GET of path with extra header lines; the answer in resp. */
static void raw_get(Httpd *h, const char *path, const char *hdrs, char *resp,
                    size_t cap)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n"
                     "\r\n", path, hdrs);

    raw_exchange(h->port, req, n, resp, cap);
}

/* The value of header name (up to CR LF) into out; false if absent. */
static bool header_value(const char *resp, const char *name, char *out,
                         size_t cap)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nlen = strlen(name);

    for (const char *p = strstr(resp, "\r\n"); p && p < end;
         p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nlen) == 0 && p[2 + nlen] == ':') {
            const char *v = p + 3 + nlen + strspn(p + 3 + nlen, " ");
            size_t vlen = strcspn(v, "\r");

            snprintf(out, cap, "%.*s", (int)vlen, v);
            return true;
        }
    }
    return false;
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");

    ck_assert_ptr_nonnull(p);
    return p + 4;
}

START_TEST(test_range)
{
    static char resp[BIG_SIZE + 4096];
    unsigned char *big = big_content();
    char v[128];
    size_t len;
    Httpd h;

    httpd_start(&h);
    /* a-b, inside the file (through the transfer: more than 16 KiB). */
    raw_get(&h, "/big.bin", "Range: bytes=1000-900999\r\n", resp,
            sizeof(resp));
    assert_status_line(resp, 206);
    ck_assert_int_eq(header_number(resp, "Content-Length"), 900000);
    ck_assert(header_value(resp, "Content-Range", v, sizeof(v)));
    ck_assert_str_eq(v, "bytes 1000-900999/1048576");
    ck_assert(memcmp(body_of(resp), big + 1000, 900000) == 0);
    /* a-, and a suffix -n. */
    raw_get(&h, "/big.bin", "Range: bytes=1048000-\r\n", resp, sizeof(resp));
    assert_status_line(resp, 206);
    ck_assert(header_value(resp, "Content-Range", v, sizeof(v)));
    ck_assert_str_eq(v, "bytes 1048000-1048575/1048576");
    ck_assert(memcmp(body_of(resp), big + 1048000, 576) == 0);
    len = strlen("Hello, world!\n");
    raw_get(&h, "/hello.txt", "Range: bytes=-6\r\n", resp, sizeof(resp));
    assert_status_line(resp, 206);
    ck_assert_str_eq(body_of(resp), "orld!\n");
    /* An end past the file is cut to it. */
    raw_get(&h, "/hello.txt", "Range: bytes=7-999\r\n", resp, sizeof(resp));
    assert_status_line(resp, 206);
    ck_assert(header_value(resp, "Content-Range", v, sizeof(v)));
    ck_assert_str_eq(v, "bytes 7-13/14");
    ck_assert_str_eq(body_of(resp), "world!\n");
    /* Unsatisfiable: 416 with the size. */
    raw_get(&h, "/hello.txt", "Range: bytes=14-\r\n", resp, sizeof(resp));
    assert_status_line(resp, 416);
    ck_assert(header_value(resp, "Content-Range", v, sizeof(v)));
    ck_assert_str_eq(v, "bytes */14");
    /* Several ranges, or nonsense: the whole file with 200. */
    raw_get(&h, "/hello.txt", "Range: bytes=0-1,3-4\r\n", resp,
            sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert_int_eq(header_number(resp, "Content-Length"), (long)len);
    raw_get(&h, "/hello.txt", "Range: pages=1-2\r\n", resp, sizeof(resp));
    assert_status_line(resp, 200);
    /* If-Range with another version: the whole file. */
    raw_get(&h, "/hello.txt", "Range: bytes=0-1\r\nIf-Range: \"x\"\r\n",
            resp, sizeof(resp));
    assert_status_line(resp, 200);
    free(big);
    httpd_stop(&h, SIGINT);
}
END_TEST

START_TEST(test_conditional)
{
    char resp[8192], etag[128], lastmod[64], hdr[256];
    Httpd h;

    httpd_start(&h);
    raw_get(&h, "/hello.txt", "", resp, sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert(header_value(resp, "ETag", etag, sizeof(etag)));
    ck_assert(header_value(resp, "Last-Modified", lastmod, sizeof(lastmod)));
    ck_assert_int_eq(etag[0], '"');
    /* The same tag: 304, no body, the validators again. */
    snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", etag);
    raw_get(&h, "/hello.txt", hdr, resp, sizeof(resp));
    assert_status_line(resp, 304);
    ck_assert_str_eq(body_of(resp), "");
    ck_assert(header_value(resp, "ETag", hdr, sizeof(hdr)));
    ck_assert_str_eq(hdr, etag);
    /* In a list, weak: still a match; another tag: 200. */
    snprintf(hdr, sizeof(hdr), "If-None-Match: \"zz\", W/%s\r\n", etag);
    raw_get(&h, "/hello.txt", hdr, resp, sizeof(resp));
    assert_status_line(resp, 304);
    raw_get(&h, "/hello.txt", "If-None-Match: \"zz\"\r\n", resp,
            sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert_str_eq(body_of(resp), "Hello, world!\n");
    /* If-Modified-Since: the same date 304, an older one 200. */
    snprintf(hdr, sizeof(hdr), "If-Modified-Since: %s\r\n", lastmod);
    raw_get(&h, "/hello.txt", hdr, resp, sizeof(resp));
    assert_status_line(resp, 304);
    raw_get(&h, "/hello.txt",
            "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n", resp,
            sizeof(resp));
    assert_status_line(resp, 200);
    /* If-None-Match wins over If-Modified-Since. */
    snprintf(hdr, sizeof(hdr),
             "If-None-Match: \"zz\"\r\nIf-Modified-Since: %s\r\n", lastmod);
    raw_get(&h, "/hello.txt", hdr, resp, sizeof(resp));
    assert_status_line(resp, 200);
    /* A changed file: a new tag, so the old one gets 200. */
    write_text("www/hello.txt", "Hello, again, world!\n");
    snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", etag);
    raw_get(&h, "/hello.txt", hdr, resp, sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert_str_eq(body_of(resp), "Hello, again, world!\n");
    httpd_stop(&h, SIGINT);
}
END_TEST

START_TEST(test_listing)
{
    static char resp[65536];
    Httpd h;
    const char *b;

    write_text("www/<x>&'q'.txt", "odd\n");
    httpd_start(&h);
    /* The root has no index.html: a listing. */
    raw_get(&h, "/", "", resp, sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert_msg(strstr(resp, "Content-Type: text/html; charset=utf-8\r\n"),
                  "%s", resp);
    b = body_of(resp);
    ck_assert_int_eq(header_number(resp, "Content-Length"), (long)strlen(b));
    ck_assert_msg(strstr(b, "<title>Index of /</title>"), "%s", b);
    ck_assert_msg(strstr(b, "<a href=\"hello.txt\">hello.txt</a></td>"
                            "<td>14</td>"), "%s", b);
    ck_assert_msg(strstr(b, "<a href=\"a%20b.txt\">a b.txt</a>"), "%s", b);
    ck_assert_msg(strstr(b, "<a href=\"sub/\">sub/</a>"), "%s", b);
    ck_assert_msg(strstr(b, "<a href=\"%3Cx%3E%26%27q%27.txt\">"
                            "&lt;x&gt;&amp;&#39;q&#39;.txt</a>"), "%s", b);
    ck_assert_msg(!strstr(b, "<x>"), "unescaped name:\n%s", b);
    ck_assert_msg(!strstr(b, "href=\"../\""), "%s", b); /* the top */
    ck_assert_msg(strstr(b, " GMT</td>"), "no dates:\n%s", b);
    /* Sorted by name. */
    ck_assert(strstr(b, "a%20b.txt") < strstr(b, "hello.txt"));
    /* A sub-directory: a way up; an empty one lists nothing else. */
    raw_get(&h, "/empty/", "", resp, sizeof(resp));
    assert_status_line(resp, 200);
    b = body_of(resp);
    ck_assert_msg(strstr(b, "<title>Index of /empty/</title>"), "%s", b);
    ck_assert_msg(strstr(b, "<a href=\"../\">../</a>"), "%s", b);
    ck_assert_msg(!strstr(b, "hello.txt"), "%s", b);
    /* A directory with index.html still gets it. */
    raw_get(&h, "/sub/", "", resp, sizeof(resp));
    ck_assert_str_eq(body_of(resp), "<!DOCTYPE html><p>sub index</p>\n");
    /* A linked name resolves to the file. */
    raw_get(&h, "/%3Cx%3E%26%27q%27.txt", "", resp, sizeof(resp));
    assert_status_line(resp, 200);
    ck_assert_str_eq(body_of(resp), "odd\n");
    httpd_stop(&h, SIGINT);
}
END_TEST

START_TEST(test_content_types)
{
    static const struct {
        const char *name, *type;
    } cases[] = {
        { "README.md", "text/markdown; charset=utf-8" },
        { "notes.TXT", "text/plain; charset=utf-8" },
        { "main.c", "text/plain; charset=utf-8" },
        { "COPYING", "text/plain; charset=utf-8" },
        { "x.svg", "image/svg+xml" },
        { "x.wasm", "application/wasm" },
        { "x.unknown", "application/octet-stream" },
    };
    char resp[8192], path[128], v[128];
    Httpd h;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), "www/%s", cases[i].name);
        write_text(path, "x\n");
    }
    httpd_start(&h);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), "/%s", cases[i].name);
        raw_get(&h, path, "", resp, sizeof(resp));
        assert_status_line(resp, 200);
        ck_assert(header_value(resp, "Content-Type", v, sizeof(v)));
        ck_assert_msg(strcmp(v, cases[i].type) == 0, "%s: %s, wanted %s",
                      cases[i].name, v, cases[i].type);
    }
    httpd_stop(&h, SIGINT);
}
END_TEST

START_TEST(test_access_log)
{
    static const char *const quiet[] = { "--quiet", NULL };
    static const char *const none[] = { NULL };
    char resp[8192];
    const char *out, *line;
    Httpd h;

    httpd_start_with(&h, none);
    raw_get(&h, "/hello.txt", "", resp, sizeof(resp));
    raw_get(&h, "/missing", "", resp, sizeof(resp));
    raw_get(&h, "/big.bin", "Range: bytes=0-99\r\n", resp, sizeof(resp));
    raw_exchange(h.port, "HEAD /hello.txt HTTP/1.0\r\n\r\n", 28, resp,
                 sizeof(resp));
    raw_exchange(h.port, "BAD\"REQ\r\n\r\n", 11, resp, sizeof(resp));
    out = httpd_stop(&h, SIGINT);
    /* host ident user [date] "request" status bytes */
    line = strstr(out, "127.0.0.1 - - [");
    ck_assert_msg(line, "no log line:\n%s", out);
    ck_assert_msg(strstr(line, "] \"GET /hello.txt HTTP/1.1\" 200 14\n"),
                  "%s", out);
    ck_assert_msg(strstr(out, "\"GET /missing HTTP/1.1\" 404 "), "%s", out);
    ck_assert_msg(strstr(out, "\"GET /big.bin HTTP/1.1\" 206 100\n"), "%s",
                  out);
    ck_assert_msg(strstr(out, "\"HEAD /hello.txt HTTP/1.0\" 200 -\n"), "%s",
                  out);
    /* A quote in the request line cannot break the quoted field. */
    ck_assert_msg(strstr(out, "\"BAD?REQ\" 400 "), "%s", out);
    /* The date: [dd/Mon/yyyy:hh:mm:ss +zzzz] */
    {
        int d, y, hh, mm, ss, z;
        char mon[4];

        ck_assert_int_eq(sscanf(line, "127.0.0.1 - - [%d/%3s/%d:%d:%d:%d %d]",
                                &d, mon, &y, &hh, &mm, &ss, &z),
                         7);
        ck_assert_int_ge(y, 2024);
    }
    httpd_start_with(&h, quiet);
    raw_get(&h, "/hello.txt", "", resp, sizeof(resp));
    assert_status_line(resp, 200);
    out = httpd_stop(&h, SIGINT);
    ck_assert_msg(!strstr(out, "\"GET /hello.txt"), "logged:\n%s", out);
    ck_assert_msg(strstr(out, "served 1 request on 1 connection"), "%s", out);
}
END_TEST

START_TEST(test_threads)
{
    static const char *const two[] = { "--threads", "2", "--quiet", NULL };
    static char resp[BIG_SIZE + 4096];
    unsigned char *big = big_content();
    unsigned long t0 = 0, t1 = 0;
    const char *out, *p;
    Httpd h;

    httpd_start_with(&h, two);
    ck_assert_msg(strstr(h.sp.out, ", 2 IOThreads)"), "%s", h.sp.out);
    /* Separate connections: the kernel spreads them over both. */
    for (int i = 0; i < 40; i++) {
        raw_get(&h, i % 4 ? "/hello.txt" : "/big.bin", "", resp,
                sizeof(resp));
        assert_status_line(resp, 200);
        if (i % 4) {
            ck_assert_str_eq(body_of(resp), "Hello, world!\n");
        } else {
            ck_assert(memcmp(body_of(resp), big, BIG_SIZE) == 0);
        }
    }
    out = httpd_stop(&h, SIGTERM);
    ck_assert_msg(strstr(out, "served 40 requests on 40 connections"), "%s",
                  out);
    p = strstr(out, "thread 0 served ");
    ck_assert_msg(p && sscanf(p, "thread 0 served %lu", &t0) == 1, "%s", out);
    p = strstr(out, "thread 1 served ");
    ck_assert_msg(p && sscanf(p, "thread 1 served %lu", &t1) == 1, "%s", out);
    ck_assert_uint_eq(t0 + t1, 40);
    free(big);
}
END_TEST

START_TEST(test_stats)
{
    static const char *const two[] = { "--threads", "2", "--quiet", NULL };
    char resp[8192];
    const char *out, *at;
    unsigned long long it = 0;
    Httpd h;

    httpd_start(&h);
    raw_get(&h, "/hello.txt", "", resp, sizeof(resp));
    ck_assert_int_eq(kill(h.sp.pid, SIGUSR1), 0);
    at = spawn_expect(&h.sp, "httpd: stats main: iterations ");
    ck_assert_int_eq(sscanf(at, "httpd: stats main: iterations %llu", &it),
                     1);
    ck_assert_uint_gt(it, 0);
    out = httpd_stop(&h, SIGINT);
    /* At exit too: a second line after the first. */
    at = strstr(out, "httpd: stats main: ");
    ck_assert_ptr_nonnull(at);
    ck_assert_msg(strstr(at + 1, "httpd: stats main: "), "%s", out);

    httpd_start_with(&h, two);
    raw_get(&h, "/hello.txt", "", resp, sizeof(resp));
    out = httpd_stop(&h, SIGINT);
    ck_assert_msg(strstr(out, "httpd: stats thread 0: iterations "), "%s",
                  out);
    ck_assert_msg(strstr(out, "httpd: stats thread 1: iterations "), "%s",
                  out);
}
END_TEST

static Suite *httpd_suite(bool curl_tests)
{
    Suite *s = suite_create("httpd");
    TCase *tc;

    if (curl_tests) {
        tc = tcase_create("curl");
        tcase_add_unchecked_fixture(tc, top_create, top_remove);
        tcase_add_checked_fixture(tc, tree_create, tree_remove);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_get);
        tcase_add_test(tc, test_head);
        tcase_add_test(tc, test_not_found_and_redirect);
        tcase_add_test(tc, test_traversal_refused);
        tcase_add_test(tc, test_keep_alive_reuse);
        tcase_add_test(tc, test_method_not_allowed);
        suite_add_tcase(s, tc);
    }

    tc = tcase_create("raw");
    tcase_add_unchecked_fixture(tc, top_create, top_remove);
    tcase_add_checked_fixture(tc, tree_create, tree_remove);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bad_request);
    tcase_add_test(tc, test_header_too_large);
    tcase_add_test(tc, test_pipelining_and_close);
    tcase_add_test(tc, test_http10);
    tcase_add_test(tc, test_absolute_form);
    tcase_add_test(tc, test_request_body_skipped);
    tcase_add_test(tc, test_shutdown_with_connections);
    tcase_add_test(tc, test_help_and_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("features");
    tcase_add_unchecked_fixture(tc, top_create, top_remove);
    tcase_add_checked_fixture(tc, tree_create, tree_remove);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_range);
    tcase_add_test(tc, test_conditional);
    tcase_add_test(tc, test_listing);
    tcase_add_test(tc, test_content_types);
    tcase_add_test(tc, test_access_log);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_stats);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    bool curl_tests = have_curl();
    int ret;

    signal(SIGPIPE, SIG_IGN);
    ret = test_main(httpd_suite(curl_tests));
    if (ret == 0 && !curl_tests) {
        printf("%s not found: the curl tests were skipped\n", CURL);
        return 77;
    }
    return ret;
}
