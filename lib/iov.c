/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QEMUIOVector: a growable array of struct iovec that keeps its total
 * length.  nalloc == -1 marks an array borrowed from the caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aioctx/file-io.h"
#include "log-internal.h"

static void iov_die(const char *what)
{
    aio_fatal("%s", what);
}

AIOCTX_API void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint)
{
    if (alloc_hint < 1) {
        alloc_hint = 1;
    }
    qiov->iov = malloc((size_t)alloc_hint * sizeof(*qiov->iov));
    if (!qiov->iov) {
        iov_die("out of memory allocating a QEMUIOVector");
    }
    qiov->niov = 0;
    qiov->nalloc = alloc_hint;
    qiov->size = 0;
}

AIOCTX_API void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov,
                                         int niov)
{
    qiov->iov = iov;
    qiov->niov = niov;
    qiov->nalloc = -1;
    qiov->size = 0;
    for (int i = 0; i < niov; i++) {
        qiov->size += iov[i].iov_len;
    }
}

AIOCTX_API void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len)
{
    if (qiov->nalloc == -1) {
        iov_die("qemu_iovec_add on a vector made by qemu_iovec_init_external");
    }
    if (qiov->niov == qiov->nalloc) {
        int n = 2 * qiov->nalloc + 1;
        struct iovec *grown = realloc(qiov->iov, (size_t)n * sizeof(*grown));

        if (!grown) {
            iov_die("out of memory growing a QEMUIOVector");
        }
        qiov->iov = grown;
        qiov->nalloc = n;
    }
    qiov->iov[qiov->niov].iov_base = base;
    qiov->iov[qiov->niov].iov_len = len;
    qiov->niov++;
    qiov->size += len;
}

AIOCTX_API void qemu_iovec_reset(QEMUIOVector *qiov)
{
    if (qiov->nalloc == -1) {
        iov_die("qemu_iovec_reset on a vector made by "
                "qemu_iovec_init_external");
    }
    qiov->niov = 0;
    qiov->size = 0;
}

AIOCTX_API void qemu_iovec_destroy(QEMUIOVector *qiov)
{
    if (qiov->nalloc != -1) {
        free(qiov->iov);
    }
    memset(qiov, 0, sizeof(*qiov));
}
