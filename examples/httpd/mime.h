/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* httpd: Content-Type by file name. */
#ifndef HTTPD_MIME_H
#define HTTPD_MIME_H

/*
 * The media type for path's extension (case-insensitive), text types with
 * "; charset=utf-8"; a few well-known names without one (README, LICENSE,
 * Makefile...) are text/plain; anything else application/octet-stream.
 * The string is static.
 */
const char *mime_type(const char *path);

#endif /* HTTPD_MIME_H */
