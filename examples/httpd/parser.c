/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * httpd's request parser (see parser.h).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parser.h"

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

size_t http_find_head_end(const char *buf, size_t len, size_t from)
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
static int decode_target(HttpRequest *req)
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
static int parse_header(HttpRequest *req, char *line, bool *have_host,
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
    } else if (strcasecmp(line, "Range") == 0) {
        snprintf(req->range, sizeof(req->range), "%s", value);
    } else if (strcasecmp(line, "If-Range") == 0) {
        snprintf(req->if_range, sizeof(req->if_range), "%s", value);
    } else if (strcasecmp(line, "If-None-Match") == 0) {
        snprintf(req->if_none_match, sizeof(req->if_none_match), "%s",
                 value);
    } else if (strcasecmp(line, "If-Modified-Since") == 0) {
        req->if_modified_since = http_parse_date(value);
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        return 501; /* request bodies we cannot delimit */
    }
    return 0;
}

/* Parse the request line "METHOD SP target SP HTTP/1.x". */
static int parse_request_line(HttpRequest *req, char *line)
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

/* See parser.h. */
int http_parse_head(HttpRequest *req, char *head)
{
    bool have_host = false, have_length = false;
    char *pos = head;
    size_t n = strcspn(head, "\r\n");
    int ret;

    /* Everything starts empty: the caller may reuse req. */
    memset(req, 0, offsetof(HttpRequest, path));
    req->path[0] = '\0';
    req->if_modified_since = -1;
    if (n >= sizeof(req->line)) {
        n = sizeof(req->line) - 1;
    }
    memcpy(req->line, head, n);
    req->line[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)req->line[i] < 0x20 || req->line[i] == '"' ||
            (unsigned char)req->line[i] >= 0x7f) {
            req->line[i] = '?'; /* the log line stays one safe line */
        }
    }
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


/* Digits at *p as a number (no sign); false when none or too large. */
static bool parse_u64(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (*s < '0' || *s > '9') {
        return false;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return true;
}

int http_parse_range(const char *value, uint64_t size, uint64_t *start,
                     uint64_t *len)
{
    const char *p = value;
    uint64_t a, b;

    if (strncasecmp(p, "bytes", 5) != 0) {
        return 0;
    }
    p += 5;
    p += strspn(p, " \t");
    if (*p++ != '=') {
        return 0;
    }
    p += strspn(p, " \t");
    if (strchr(p, ',')) {
        return 0; /* several ranges: the whole file instead */
    }
    if (*p == '-') {
        p++;
        if (!parse_u64(&p, &b)) {
            return 0;
        }
        p += strspn(p, " \t");
        if (*p) {
            return 0;
        }
        if (b == 0 || size == 0) {
            return 416;
        }
        if (b > size) {
            b = size;
        }
        *start = size - b;
        *len = b;
        return 206;
    }
    if (!parse_u64(&p, &a) || *p++ != '-') {
        return 0;
    }
    if (*p >= '0' && *p <= '9') {
        if (!parse_u64(&p, &b) || b < a) {
            return 0;
        }
    } else {
        b = UINT64_MAX;
    }
    p += strspn(p, " \t");
    if (*p) {
        return 0;
    }
    if (a >= size) {
        return 416;
    }
    if (b >= size) {
        b = size - 1;
    }
    *start = a;
    *len = b - a + 1;
    return 206;
}

time_t http_parse_date(const char *s)
{
    struct tm tm = { 0 };
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);

    if (!end || *end) {
        return -1;
    }
    return timegm(&tm);
}

void http_format_date(char *buf, size_t len, time_t t)
{
    static const char days[] = "ThuFriSatSunMonTueWed"; /* from 1970-01-01 */
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t secs = (int64_t)t, day = secs / 86400, sod = secs % 86400;
    int64_t era, doe, yoe, doy, mp, y, m, d, wd;

    if (sod < 0) {
        sod += 86400;
        day--;
    }
    wd = (day % 7 + 7) % 7;
    /* The proleptic Gregorian calendar from a day count (no locks, no
     * locale: this runs for every response). */
    day += 719468;
    era = (day >= 0 ? day : day - 146096) / 146097;
    doe = day - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(buf, len, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
             days + 3 * wd, (int)d, months + 3 * (m - 1), (int)y,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
}

bool http_etag_match(const char *list, const char *etag)
{
    const char *p = list;
    size_t elen;

    if (etag[0] == 'W' && etag[1] == '/') {
        etag += 2;
    }
    elen = strlen(etag);
    p += strspn(p, " \t");
    if (strcmp(p, "*") == 0) {
        return true;
    }
    while (*p) {
        const char *q;

        p += strspn(p, " \t,");
        if (p[0] == 'W' && p[1] == '/') {
            p += 2;
        }
        if (*p != '"') {
            return false; /* malformed: no match */
        }
        q = strchr(p + 1, '"');
        if (!q) {
            return false;
        }
        if ((size_t)(q + 1 - p) == elen && memcmp(p, etag, elen) == 0) {
            return true;
        }
        p = q + 1;
        p += strspn(p, " \t");
        if (*p && *p != ',') {
            return false;
        }
    }
    return false;
}

bool http_html_escape(char *out, size_t len, const char *s)
{
    size_t o = 0;

    for (; *s; s++) {
        const char *rep = NULL;
        char one[2] = { *s, '\0' };
        size_t n;

        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: rep = one; break;
        }
        n = strlen(rep);
        if (o + n >= len) {
            out[o] = '\0';
            return false;
        }
        memcpy(out + o, rep, n);
        o += n;
    }
    out[o] = '\0';
    return true;
}

bool http_url_encode(char *out, size_t len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || strchr("-._~/", c);

        if (o + (keep ? 1 : 3) >= len) {
            out[o] = '\0';
            return false;
        }
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return true;
}
