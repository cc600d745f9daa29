/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O inside lib/: the request, the executor interface, and what the
 * front end (file-io.c) offers executors.
 *
 * An executor hands a request to the kernel.  There are four, all behind
 * AioFileExecOps: the thread pool with its RWF_NOWAIT page-cache path
 * (file-pool.c; the poll and epoll engines use it), Linux AIO
 * (engines/linux-aio/laio.c), the io_uring engine's file ring
 * (engines/io_uring/file-ring.c) and a LuringState's ring
 * (engines/io_uring/luring.c).  The front end owns a request's life:
 * validation, short transfers (it resubmits the remainder through the same
 * executor), retries after -EINTR/-EAGAIN, cancellation requests from any
 * thread, and the final callback.  An executor only runs the part the
 * front end gives it and reports that part's result with
 * aio_file_req_done().  What an executor keeps per request lives in the
 * request's private area (aio_file_req_priv()), req_priv_size bytes that
 * the front end allocates with the request and zeroes before each submit.
 *
 * Everything here runs in the context's home thread unless said otherwise.
 */
#ifndef AIOCTX_FILE_IO_INTERNAL_H
#define AIOCTX_FILE_IO_INTERNAL_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "aioctx/file-io.h"
#include "util/atomic.h"
#include "util/fifo.h"

typedef struct AioFileReq AioFileReq;
typedef struct AioFileState AioFileState;
typedef struct AioFileExec AioFileExec;
typedef AIO_FIFO(AioFileReq) AioFileReqFifo;

typedef struct AioFileExecOps {
    /* For diagnostics. */
    const char *name;
    /* Bytes of per-request state, reached with aio_file_req_priv(). */
    size_t req_priv_size;
    /*
     * Start req's current part (req->type, fd, iov, iovcnt, offset,
     * datasync).  Must not call aio_file_req_done() for req itself before
     * returning; may do so for other requests (the front end defers those
     * callbacks).  Returns 0, or -errno when the part cannot be started
     * (the front end then completes req with it).
     */
    int (*submit)(AioFileExec *exec, AioFileReq *req);
    /*
     * Ask for req's cancellation; req was submitted and has not been
     * reported done.  Best effort: req still completes through
     * aio_file_req_done(), with -ECANCELED if the cancellation won.  May
     * report it done before returning.  NULL: requests always run.
     */
    void (*cancel)(AioFileExec *exec, AioFileReq *req);
} AioFileExecOps;

/* An executor instance: embedded first in the executor's own state. */
struct AioFileExec {
    const AioFileExecOps *ops;
};

/* Where a request is; front end bookkeeping. */
enum {
    AIO_FILE_FRONT, /* with the front end (new, deferred or finishing) */
    AIO_FILE_EXEC,  /* the executor has it */
};

struct AioFileReq {
    BlockAIOCB common; /* first: what callers get */
    AioFileState *fs;
    AioFileExec *exec;
    /* Runs once with the final result; the callback form calls cb. */
    void (*finish)(AioFileReq *req, int64_t ret);
    AioFileReq *next;        /* executor queues, then the deferred list */
    AioFileReq *cancel_next; /* fs->cancel_list (atomic LIFO) */

    int type; /* QEMU_AIO_READ, _WRITE or _FLUSH */
    int fd;
    bool datasync;     /* flushes: fdatasync rather than fsync */
    bool cancel_once;  /* atomic: a cancellation was asked for */
    bool cancel_asked; /* the executor was asked to cancel */
    uint8_t stage;     /* AIO_FILE_FRONT or AIO_FILE_EXEC */
    uint8_t retries;   /* -EINTR/-EAGAIN resubmissions so far */

    /* The part the executor runs now. */
    const struct iovec *iov;
    int iovcnt;
    uint64_t offset;

    /* The whole request. */
    const struct iovec *orig_iov;
    int orig_iovcnt;
    uint64_t orig_offset;
    size_t size;         /* bytes asked for */
    size_t done;         /* bytes transferred so far */
    int error;           /* the error that ended it, or 0 */
    struct iovec *rest;  /* owned copy describing the remainder */
    int64_t res;         /* a deferred part result */
    uint64_t max_batch;  /* laio_co_submit's dev_max_batch, or 0 */
    size_t priv_size;    /* bytes allocated for priv */

    /* The executor's area (AioFileExecOps.req_priv_size bytes). */
    alignas(max_align_t) unsigned char priv[];
};

static inline void *aio_file_req_priv(AioFileReq *req)
{
    return req->priv;
}

/*
 * Per-context front end state, made on first use and freed when the
 * context is destroyed.
 */
struct AioFileState {
    AioContext *ctx;
    QEMUBH *bh;                /* deferred completions, cancellations */
    AioFileReq *cancel_list;   /* atomic LIFO, any thread pushes */
    AioFileReqFifo deferred;   /* completions held back (submit path) */
    int submitting;            /* nesting of executor submit calls */
    bool destroying;           /* no new requests start */
    unsigned unfinished;       /* requests whose callback has not run */
    AioFileExec *engine_exec;  /* the engine's executor (engine.h) */
    AioFileExec pool_exec;     /* the thread pool (file-pool.c) */
    LinuxAioState *laio;       /* atomic; aio_setup_linux_aio() */
    LuringState *luring;       /* atomic; aio_setup_linux_io_uring() */
    AioFileReq *spare;         /* finished requests kept for reuse */
    int nspare;
};

/* file-io.c */

/*
 * ctx's front end state, made if needed (dies when out of memory).  Any
 * thread.
 */
AioFileState *aio_file_state(AioContext *ctx);
/* ctx's front end state if it was made, else NULL.  Any thread. */
AioFileState *aio_file_state_peek(AioContext *ctx);
/* The same, or NULL when out of memory. */
AioFileState *aio_file_state_try(AioContext *ctx);

/*
 * The executor is done with req's current part: res is the bytes it
 * transferred or -errno.  The front end resubmits, or finishes req and
 * runs its callback (later, from a bottom half, when called inside an
 * executor's submit).
 */
void aio_file_req_done(AioFileReq *req, int64_t res);

/*
 * Move req, which its executor has not started, to exec (whose private
 * area must fit in req's) and submit it there.  For executors that find
 * out only at submission that another one must do the work.
 */
int aio_file_req_redirect(AioFileReq *req, AioFileExec *exec);

/*
 * laio_co_submit() and luring_co_submit(): a request on the current
 * context through exec (NULL: the engine's executor), with QEMU's results
 * (see aioctx/file-io.h).  fn names the caller for the message when called
 * outside a coroutine.
 */
int coroutine_fn aio_file_co_qemu(const char *fn, AioFileExec *exec, int fd,
                                  uint64_t offset, QEMUIOVector *qiov,
                                  int type, uint64_t max_batch);

/*
 * file-pool.c: the thread pool as an executor (fs->pool_exec).  Its
 * private area is one pointer, so any request can be redirected to it.
 */
extern const AioFileExecOps aio_file_pool_ops;

/* engines/linux-aio/laio.c */

/*
 * Make a Linux AIO state bound to ctx in *ps; returns 0, or -errno with
 * *errp set to a message starting with who.
 */
int laio_state_new(AioContext *ctx, const char *who, LinuxAioState **ps,
                   Error **errp);
/* Complete everything (see aio_file_destroy_ctx()), then free s. */
void laio_state_free(LinuxAioState *s);
/* s as an executor. */
AioFileExec *laio_state_exec(LinuxAioState *s);
/* Zero, or the -errno io_setup() gives for one event (no side effects). */
int laio_probe(void);

/* engines/io_uring/luring.c */

/* Complete everything (see aio_file_destroy_ctx()), then free s. */
void luring_state_free(LuringState *s);

#endif /* AIOCTX_FILE_IO_INTERNAL_H */
