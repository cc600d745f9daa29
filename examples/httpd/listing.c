/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* httpd: the HTML listing of a directory (see listing.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "listing.h"
#include "parser.h"

#define MAX_ENTRIES 100000

typedef struct Page {
    char *buf;
    size_t len, cap;
    bool failed;
} Page;

static void page_add(Page *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->failed) {
        return;
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            p->failed = true;
            return;
        }
        if ((size_t)n < p->cap - p->len) {
            p->len += (size_t)n;
            return;
        }
        size_t cap = p->cap * 2 + (size_t)n;
        char *nb = realloc(p->buf, cap);

        if (!nb) {
            p->failed = true;
            return;
        }
        p->buf = nb;
        p->cap = cap;
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *dir_listing(const char *dir, const char *url_path, size_t *len)
{
    char esc[4 * 1024 + 64], enc[3 * 1024 + 64], date[40];
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    Page p = { .cap = 4096 };
    int dfd;
    DIR *d;

    d = opendir(dir);
    if (!d) {
        return NULL;
    }
    dfd = dirfd(d);
    while ((de = readdir(d)) && n < MAX_ENTRIES) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (n == cap) {
            char **nn = realloc(names, (cap = cap * 2 + 64) * sizeof(*nn));

            if (!nn) {
                goto fail;
            }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            goto fail;
        }
        n++;
    }
    if (n > 1) {
        qsort(names, n, sizeof(*names), by_name);
    }

    p.buf = malloc(p.cap);
    if (!p.buf) {
        goto fail;
    }
    http_html_escape(esc, sizeof(esc), url_path);
    page_add(&p,
             "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
             "<title>Index of %s</title></head>\n<body><h1>Index of %s</h1>\n"
             "<table>\n<tr><th>Name</th><th>Size</th>"
             "<th>Last modified (UTC)</th></tr>\n",
             esc, esc);
    if (strcmp(url_path, "/") != 0) {
        page_add(&p, "<tr><td><a href=\"../\">../</a></td><td></td>"
                     "<td></td></tr>\n");
    }
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        bool is_dir;

        if (fstatat(dfd, names[i], &st, 0) < 0 &&
            fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            continue; /* gone meanwhile */
        }
        is_dir = S_ISDIR(st.st_mode);
        http_url_encode(enc, sizeof(enc), names[i]);
        http_html_escape(esc, sizeof(esc), names[i]);
        http_format_date(date, sizeof(date), st.st_mtime);
        if (is_dir) {
            page_add(&p, "<tr><td><a href=\"%s/\">%s/</a></td>"
                         "<td>-</td><td>%s</td></tr>\n", enc, esc, date);
        } else {
            page_add(&p, "<tr><td><a href=\"%s\">%s</a></td>"
                         "<td>%" PRIu64 "</td><td>%s</td></tr>\n",
                     enc, esc, (uint64_t)st.st_size, date);
        }
    }
    page_add(&p, "</table>\n</body></html>\n");
    if (p.failed) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    closedir(d);
    *len = p.len;
    return p.buf;

fail:
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    free(p.buf);
    closedir(d);
    errno = ENOMEM;
    return NULL;
}
