/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* httpd: the HTML listing of a directory without index.html. */
#ifndef HTTPD_LISTING_H
#define HTTPD_LISTING_H

#include <stddef.h>

/*
 * The listing of directory dir (a path the server may open) shown at
 * url_path (decoded, ending in '/'): one row per entry, sorted by name,
 * with the name escaped (and percent-encoded in its link), a trailing '/'
 * for directories, the size in bytes and the modification time (UTC);
 * "." and ".." are left out, except a "../" link below the root.
 * Returns a malloc'ed page with its length in *len, or NULL with errno.
 */
char *dir_listing(const char *dir, const char *url_path, size_t *len);

#endif /* HTTPD_LISTING_H */
