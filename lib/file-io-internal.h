/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * File I/O inside lib/: the request every executor shares, and what the
 * front end (file-io.c) offers executors.
 *
 * An executor is whatever hands a request to the kernel: the engine's
 * file I/O slots (engine.h), a LinuxAioState (linux-aio.c) or a dedicated
 * LuringState ring (luring.c).  The front end owns a request's life:
 * validation, short transfers (it resubmits the remainder through the same
 * executor), retries after -EINTR/-EAGAIN, cancellation requests from any
 * thread, and the final callback.  An executor only runs the part the
 * front end gives it and reports that part's result with
 * aio_file_req_done().
 *
 * Everything here runs in the context's home thread unless said otherwise.
 */
#ifndef AIOCTX_FILE_IO_INTERNAL_H
#define AIOCTX_FILE_IO_INTERNAL_H

#include <libaio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "aio-internal.h"
#include "aioctx/file-io.h"

typedef struct AioFileReq AioFileReq;
typedef struct AioFileState AioFileState;

typedef struct AioFileExec {
    /*
     * Start req's current part (req->type, fd, iov, iovcnt, offset,
     * datasync).  Must not call aio_file_req_done() for req itself before
     * returning; may do so for other requests (the front end defers those
     * callbacks).  Returns 0, or -errno when the part cannot be started
     * (the front end then completes req with it).
     */
    int (*submit)(void *opaque, AioFileReq *req);
    /*
     * Ask for req's cancellation; req was submitted and has not been
     * reported done.  Best effort: req still completes through
     * aio_file_req_done(), with -ECANCELED if the cancellation won.  May
     * report it done before returning.
     */
    void (*cancel)(void *opaque, AioFileReq *req);
} AioFileExec;

/* Where a request is; front end bookkeeping. */
enum {
    AIO_FILE_FRONT,    /* with the front end (new, deferred or finishing) */
    AIO_FILE_EXEC,     /* the executor has it */
};

struct AioFileReq {
    BlockAIOCB common;          /* first: what callers get */
    AioFileState *fs;
    const AioFileExec *exec;
    void *exec_opaque;
    /* Runs once with the final result; the callback form calls cb. */
    void (*finish)(AioFileReq *req, int64_t ret);
    AioFileReq *next;           /* executor queues, then the deferred list */
    AioFileReq *cancel_next;    /* fs->cancel_list (atomic LIFO) */

    int type;                   /* QEMU_AIO_READ, _WRITE or _FLUSH */
    int fd;
    bool datasync;              /* flushes: fdatasync rather than fsync */
    bool cancel_once;           /* atomic: a cancellation was asked for */
    bool cancel_asked;          /* the executor was asked to cancel */
    uint8_t stage;              /* AIO_FILE_FRONT or AIO_FILE_EXEC */
    uint8_t retries;            /* -EINTR/-EAGAIN resubmissions so far */

    /* The part the executor runs now. */
    const struct iovec *iov;
    int iovcnt;
    uint64_t offset;

    /* The whole request. */
    const struct iovec *orig_iov;
    int orig_iovcnt;
    uint64_t orig_offset;
    size_t size;                /* bytes asked for */
    size_t done;                /* bytes transferred so far */
    int error;                  /* the error that ended it, or 0 */
    struct iovec *rest;         /* owned copy describing the remainder */
    int64_t res;                /* a deferred part result */
    uint64_t max_batch;         /* laio_co_submit's dev_max_batch, or 0 */

    /* The executor's own state. */
    union {
        struct {
            BlockAIOCB *acb;    /* the thread-pool request, until its cb */
        } pool;
        struct {
            uint32_t tag;       /* slot generation << 16 | slot index */
            int32_t res;        /* result, while on the done list */
            uint8_t where;      /* see engine-io-uring.c */
        } uring;
        struct {
            struct iocb iocb;
            bool queued;        /* in the state's queue, not submitted */
        } laio;
        struct {
            bool queued;        /* waiting for a submission entry */
        } luring;
    } u;
};

/*
 * Per-context front end state, made on first use and freed when the
 * context is destroyed.
 */
struct AioFileState {
    AioContext *ctx;
    QEMUBH *bh;                 /* deferred completions, cancellations */
    AioFileReq *cancel_list;    /* atomic LIFO, any thread pushes */
    AioFileReq *deferred_head;  /* completions held back (submit path) */
    AioFileReq **deferred_tail;
    int submitting;             /* nesting of executor submit calls */
    bool destroying;            /* no new requests start */
    unsigned unfinished;        /* requests whose callback has not run */
    LinuxAioState *laio;        /* atomic; aio_setup_linux_aio() */
    LuringState *luring;        /* atomic; aio_setup_linux_io_uring() */
    AioFileReq *spare;          /* finished requests kept for reuse */
    int nspare;
};

/* file-io.c */

/* ctx's front end state, made if needed (dies when out of memory).  Any thread. */
AioFileState *aio_file_state(AioContext *ctx);
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
 * The thread pool as an executor (the poll and epoll engines' file I/O
 * slots, and Linux AIO's fallback for flushes the kernel cannot do).
 */
int aio_file_pool_submit(AioContext *ctx, AioFileReq *req);
void aio_file_pool_cancel(AioContext *ctx, AioFileReq *req);
extern const AioFileExec aio_file_pool_exec; /* opaque: the AioContext */

/*
 * laio_co_submit() and luring_co_submit(): a request on the current
 * context through exec (NULL: the engine's slots), with QEMU's results (see
 * aioctx/file-io.h).  fn names the caller for the message when called
 * outside a coroutine.
 */
int coroutine_fn aio_file_co_qemu(const char *fn, const AioFileExec *exec,
                                  void *exec_opaque, int fd, uint64_t offset,
                                  QEMUIOVector *qiov, int type,
                                  uint64_t max_batch);

/* linux-aio.c */

/*
 * Make a Linux AIO state bound to ctx in *ps; returns 0, or -errno with
 * *errp set to a message starting with who.
 */
int laio_state_new(AioContext *ctx, const char *who, LinuxAioState **ps,
                   Error **errp);
/* Complete everything (see aio_file_destroy_ctx()), then free s. */
void laio_state_free(LinuxAioState *s);
/* Zero, or the -errno io_setup() gives for one event (no side effects). */
int laio_probe(void);
extern const AioFileExec laio_exec; /* opaque: the LinuxAioState */

/* luring.c */

/* Complete everything (see aio_file_destroy_ctx()), then free s. */
void luring_state_free(LuringState *s);
/* Fill sqe for req's current part (read, write or fsync). */
struct io_uring_sqe;
void aio_file_uring_prep(struct io_uring_sqe *sqe, AioFileReq *req);

#endif /* AIOCTX_FILE_IO_INTERNAL_H */
