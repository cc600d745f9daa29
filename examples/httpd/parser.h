/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * httpd's request parser: pure functions over a buffer, no I/O, so that a
 * fuzzer (tests/fuzz/fuzz-httpd-parser.c) drives exactly what the server
 * runs.
 */
#ifndef HTTPD_PARSER_H
#define HTTPD_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HTTP_HEAD_MAX (8 * 1024) /* request line + headers */

/* What http_parse_head() found. */
typedef struct HttpRequest {
    bool head;         /* HEAD rather than GET */
    bool other_method; /* neither: 405 */
    int minor;         /* HTTP/1.minor */
    bool keep_alive;
    int64_t content_length;
    const char *target; /* as sent, query removed (for redirects) */
    size_t target_len;
    char line[256];            /* the request line, cut, for the log */
    char range[128];           /* Range value, "" when absent */
    char if_range[128];        /* If-Range value, "" when absent */
    char if_none_match[256];   /* If-None-Match value, "" when absent */
    time_t if_modified_since;  /* -1 when absent or not a date */
    char path[HTTP_HEAD_MAX]; /* percent-decoded */
} HttpRequest;

/* Offset just past the blank line ending the head, or 0 if not there. */
size_t http_find_head_end(const char *buf, size_t len, size_t from);

/*
 * Parse a head (NUL-terminated, the final blank line's LF already cut,
 * lines ending in LF or CR LF) into req, modifying head.  Returns 0, or
 * the HTTP status of the error answer: 400 malformed, 403 a ".." segment,
 * 501 Transfer-Encoding, 505 not HTTP/1.x.
 */
int http_parse_head(HttpRequest *req, char *head);

/*
 * A Range value against a file of size bytes: 206 with *start and *len set
 * for one satisfiable byte range ("bytes=a-b", "bytes=a-", "bytes=-n"),
 * 416 for an unsatisfiable one, 0 to ignore it and send everything
 * (absent, malformed, not bytes, or several ranges).
 */
int http_parse_range(const char *value, uint64_t size, uint64_t *start,
                     uint64_t *len);

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as time_t, or -1. */
time_t http_parse_date(const char *s);

/* Format t as an IMF-fixdate into buf (at least 30 bytes). */
void http_format_date(char *buf, size_t len, time_t t);

/*
 * Whether an If-None-Match value ("*" or a list of entity tags) matches
 * etag (weak comparison: W/ prefixes are ignored).
 */
bool http_etag_match(const char *list, const char *etag);

/* Escape s for HTML text and attributes into out; false when it is cut. */
bool http_html_escape(char *out, size_t len, const char *s);

/* Percent-encode s for a URL path (unreserved and '/' stay); as above. */
bool http_url_encode(char *out, size_t len, const char *s);

#endif /* HTTPD_PARSER_H */
