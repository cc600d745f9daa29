/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* httpd: Content-Type by file name (see mime.h). */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "mime.h"

#define TEXT(t) t "; charset=utf-8"

static const struct {
    const char *ext;
    const char *type;
} by_ext[] = {
    /* Text a browser shows. */
    { "html", TEXT("text/html") },
    { "htm", TEXT("text/html") },
    { "css", TEXT("text/css") },
    { "js", TEXT("text/javascript") },
    { "mjs", TEXT("text/javascript") },
    { "md", TEXT("text/markdown") },
    { "markdown", TEXT("text/markdown") },
    { "csv", TEXT("text/csv") },
    { "xml", TEXT("text/xml") },
    { "txt", TEXT("text/plain") },
    { "text", TEXT("text/plain") },
    { "log", TEXT("text/plain") },
    { "c", TEXT("text/plain") },
    { "h", TEXT("text/plain") },
    { "cc", TEXT("text/plain") },
    { "cpp", TEXT("text/plain") },
    { "hpp", TEXT("text/plain") },
    { "S", TEXT("text/plain") },
    { "s", TEXT("text/plain") },
    { "py", TEXT("text/plain") },
    { "sh", TEXT("text/plain") },
    { "rs", TEXT("text/plain") },
    { "go", TEXT("text/plain") },
    { "awk", TEXT("text/plain") },
    { "cmake", TEXT("text/plain") },
    { "in", TEXT("text/plain") },
    { "map", TEXT("text/plain") },
    { "abi", TEXT("text/plain") },
    { "pml", TEXT("text/plain") },
    { "conf", TEXT("text/plain") },
    { "cfg", TEXT("text/plain") },
    { "ini", TEXT("text/plain") },
    { "toml", TEXT("text/plain") },
    { "yaml", TEXT("text/plain") },
    { "yml", TEXT("text/plain") },
    { "rst", TEXT("text/plain") },
    { "diff", TEXT("text/plain") },
    { "patch", TEXT("text/plain") },
    { "json", "application/json" },
    { "pdf", "application/pdf" },
    { "wasm", "application/wasm" },
    { "zip", "application/zip" },
    { "gz", "application/gzip" },
    { "tar", "application/x-tar" },
    { "png", "image/png" },
    { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "gif", "image/gif" },
    { "webp", "image/webp" },
    { "svg", "image/svg+xml" },
    { "ico", "image/vnd.microsoft.icon" },
    { "mp4", "video/mp4" },
    { "webm", "video/webm" },
    { "mp3", "audio/mpeg" },
    { "wav", "audio/wav" },
    { "woff", "font/woff" },
    { "woff2", "font/woff2" },
};

/* Names that are text without an extension. */
static const char *const text_names[] = {
    "README", "LICENSE", "COPYING", "AUTHORS", "NEWS", "CHANGELOG",
    "INSTALL", "Makefile", "Dockerfile", "TODO",
};

const char *mime_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');

    if (dot && dot != name) {
        for (size_t i = 0; i < sizeof(by_ext) / sizeof(by_ext[0]); i++) {
            if (strcasecmp(dot + 1, by_ext[i].ext) == 0) {
                return by_ext[i].type;
            }
        }
        return "application/octet-stream";
    }
    for (size_t i = 0; i < sizeof(text_names) / sizeof(text_names[0]); i++) {
        if (strcmp(name, text_names[i]) == 0) {
            return TEXT("text/plain");
        }
    }
    return "application/octet-stream";
}
