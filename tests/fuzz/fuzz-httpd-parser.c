/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness for httpd's request parser (examples/httpd/parser.c):
 * the input is what a client sends.  It goes through the same steps as in
 * the server (head end, NUL check, parse), then every parsed field through
 * the range, date, entity-tag and escaping helpers.  Besides the
 * sanitizers' findings, broken invariants abort:
 *  - a parsed path starts with '/' and has no ".." segment;
 *  - a 206 range lies inside the file and is not empty;
 *  - escaped text has no raw '<', '>', '&', '"' or quote, an encoded URL
 *    no byte outside the unreserved set, '/' and '%'.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Iexamples/httpd \
 *       tests/fuzz/fuzz-httpd-parser.c examples/httpd/parser.c
 * (tests/fuzz/run-fuzz.sh does that and runs it for a bounded time).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static void check_range(const char *value)
{
    static const uint64_t sizes[] = { 0, 1, 14, 4096, 1 << 20,
                                      UINT64_MAX / 2, UINT64_MAX };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t start = 0, len = 0;
        int st = http_parse_range(value, sizes[i], &start, &len);

        check(st == 0 || st == 206 || st == 416, "range status");
        if (st == 206) {
            check(len > 0 && start < sizes[i] && len <= sizes[i] - start,
                  "range inside the file");
        }
    }
}

static void check_escapes(const char *s)
{
    char esc[512], enc[512];

    http_html_escape(esc, sizeof(esc), s);
    check(!strpbrk(esc, "<>\"'"), "html escape");
    for (const char *p = strchr(esc, '&'); p; p = strchr(p + 1, '&')) {
        check(strncmp(p, "&amp;", 5) == 0 || strncmp(p, "&lt;", 4) == 0 ||
                  strncmp(p, "&gt;", 4) == 0 ||
                  strncmp(p, "&quot;", 6) == 0 ||
                  strncmp(p, "&#39;", 5) == 0,
              "html entity");
    }
    http_url_encode(enc, sizeof(enc), s);
    for (const char *p = enc; *p; p++) {
        unsigned char c = (unsigned char)*p;

        check((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || strchr("-._~/%", c),
              "url encoding");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    HttpRequest *req;
    char *buf;
    size_t end;

    if (size > HTTP_HEAD_MAX) {
        return 0; /* the server answers 413 before parsing */
    }
    buf = malloc(size + 1);
    req = malloc(sizeof(*req));
    if (!buf || !req) {
        abort();
    }
    memcpy(buf, data, size);
    buf[size] = '\0';

    /* The whole input as a header value too. */
    check_range(buf);
    (void)http_parse_date(buf);
    (void)http_etag_match(buf, "\"1-2-3\"");
    (void)http_etag_match("\"1-2-3\", W/\"x\"", buf);
    check_escapes(buf);

    end = http_find_head_end(buf, size, 0);
    check(end <= size, "head end inside the input");
    if (end && !memchr(buf, '\0', end)) {
        int st;

        buf[end - 1] = '\0'; /* as the server does */
        st = http_parse_head(req, buf);
        check(st == 0 || st == 400 || st == 403 || st == 501 || st == 505,
              "parse status");
        check(strlen(req->line) < sizeof(req->line) &&
                  !strchr(req->line, '"'),
              "log line");
        if (st == 0) {
            check(req->path[0] == '/', "path is absolute");
            check(!strstr(req->path, "/../") &&
                      !(strlen(req->path) >= 3 &&
                        strcmp(req->path + strlen(req->path) - 3, "/..") ==
                            0),
                  "no .. segment");
            check(req->target_len <= strlen(req->target), "target length");
            check_range(req->range);
            (void)http_etag_match(req->if_none_match, "\"1-2-3\"");
            check_escapes(req->path);
        }
    }
    free(req);
    free(buf);
    return 0;
}
