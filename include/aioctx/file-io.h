/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: asynchronous file I/O.
 *
 * Reads, writes and flushes of regular files and block devices, completed
 * from a context's aio_poll().  Every engine can do them; how depends on
 * the engine the context was created with:
 *
 *   io_uring    io_uring: requests reach the kernel in batches, at the
 *               latest when the loop next waits (or every aio_max_batch
 *               requests when aio_context_set_aio_params() set one), and
 *               complete in the loop iteration that sees them, like ready
 *               fds; a bounded number are in the kernel at once, the rest
 *               wait in the context;
 *   linux-aio   Linux native AIO: io_submit() in batches of aio_max_batch
 *               (default 32), completions delivered by the loop like ready
 *               fds (see aio_setup_linux_aio());
 *   poll, epoll the context's worker thread pool (preadv, pwritev, fsync,
 *               fdatasync in a worker; see aioctx/thread-pool.h), except
 *               that a read or write of a buffered descriptor is first
 *               tried at once with RWF_NOWAIT, which succeeds when the
 *               page cache can serve it without waiting (its callback
 *               still runs later, from aio_poll()).
 *
 * Whatever the engine:
 *  - results are bytes transferred or -errno (0 for a flush); a request
 *    the kernel transferred only partly is resubmitted for the rest, so a
 *    result smaller than the request means end of file (a read at or past
 *    the end returns what exists, 0 at the end) or an error after some
 *    bytes were transferred (the bytes are returned, the error dropped);
 *  - buffered and O_DIRECT descriptors both work.  O_DIRECT requests must
 *    meet the device's alignment (offset, lengths and buffer addresses);
 *    the kernel refuses misaligned ones with -EINVAL, which is what the
 *    callback gets.  Linux AIO executes buffered requests synchronously
 *    inside io_submit: correct, but not asynchronous;
 *  - the completion callback runs in the context's home thread, from
 *    aio_poll(), exactly once, and never from inside the submitting call;
 *  - the iovec array and the buffers it points to belong to the request
 *    until its callback has run (the kernel or a worker reads the array
 *    after the submitting call has returned);
 *  - destroying a context with requests outstanding waits for those the
 *    kernel (or a worker) already has, completes the others with
 *    -ECANCELED, and runs every callback in the destroying thread, inside
 *    aio_context_unref(); such callbacks must not use the context.
 *
 * Errors (aioctx/error.h): request results are -errno; the aio_setup_*
 * calls take Error **errp; calls returning NULL refuse their arguments.
 */
#ifndef AIOCTX_FILE_IO_H
#define AIOCTX_FILE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <aioctx/export.h>
#include <aioctx/error.h>
#include <aioctx/aio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* QEMUIOVector: a growable iovec array with its total size            */
/* ------------------------------------------------------------------ */

/*
 * Public fields: iov (the array), niov (entries in use), size (sum of
 * their lengths).  nalloc is the array's capacity, or -1 when the array
 * belongs to the caller (qemu_iovec_init_external()).  By value; not
 * thread-safe (one owner at a time).
 */
typedef struct QEMUIOVector {
    struct iovec *iov;
    int niov;
    int nalloc;
    size_t size;
} QEMUIOVector;

/*
 * Start an empty vector with room for alloc_hint entries (it grows as
 * needed).  Aborts when out of memory.  Free it with qemu_iovec_destroy().
 */
AIOCTX_API void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint);

/*
 * Wrap the caller's array of niov entries without copying it; size is
 * computed.  Such a vector cannot grow (qemu_iovec_add() and
 * qemu_iovec_reset() abort) and qemu_iovec_destroy() leaves the array alone.
 */
AIOCTX_API void qemu_iovec_init_external(QEMUIOVector *qiov,
                                         struct iovec *iov, int niov);

/* Append one buffer of len bytes.  Aborts on an external vector or ENOMEM. */
AIOCTX_API void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len);

/* Forget every entry (the array is kept).  Aborts on an external vector. */
AIOCTX_API void qemu_iovec_reset(QEMUIOVector *qiov);

/* Free the array if the vector owns it and zero the vector. */
AIOCTX_API void qemu_iovec_destroy(QEMUIOVector *qiov);

/* ------------------------------------------------------------------ */
/* Request types of laio_co_submit() and luring_co_submit()            */
/* ------------------------------------------------------------------ */

#define QEMU_AIO_READ  0x0001
#define QEMU_AIO_WRITE 0x0002
#define QEMU_AIO_FLUSH 0x0008 /* fdatasync */

/* ------------------------------------------------------------------ */
/* Engine-neutral file I/O                                             */
/* ------------------------------------------------------------------ */

/*
 * Read iovcnt buffers from fd at offset.  cb(opaque, ret) gets the bytes
 * read or -errno (see the top of this file); cb may be NULL.
 *
 * Returns the request, valid until cb has returned (qemu_aio_ref() keeps it
 * longer); cancel it with bdrv_aio_cancel_async() or bdrv_aio_cancel()
 * (aioctx/thread-pool.h): a request the kernel or a worker has not started
 * completes with -ECANCELED, one already started completes normally.
 * Returns NULL, and cb never runs, when ctx is NULL, iovcnt is negative,
 * iov is NULL with iovcnt > 0, or the lengths add up to more than INT_MAX.
 * Thread: ctx's home thread.
 */
AIOCTX_API BlockAIOCB *aio_file_preadv(AioContext *ctx, int fd,
                                       uint64_t offset,
                                       const struct iovec *iov, int iovcnt,
                                       BlockCompletionFunc *cb, void *opaque);

/* Write iovcnt buffers to fd at offset; as aio_file_preadv(). */
AIOCTX_API BlockAIOCB *aio_file_pwritev(AioContext *ctx, int fd,
                                        uint64_t offset,
                                        const struct iovec *iov, int iovcnt,
                                        BlockCompletionFunc *cb,
                                        void *opaque);

/*
 * Flush fd to stable storage: fsync, or fdatasync when datasync is true.
 * cb gets 0 or -errno.  Returns NULL only for a NULL ctx; otherwise as
 * aio_file_preadv().  Thread: ctx's home thread.
 */
AIOCTX_API BlockAIOCB *aio_file_fsync(AioContext *ctx, int fd, bool datasync,
                                      BlockCompletionFunc *cb, void *opaque);

/*
 * The coroutine forms of aio_file_preadv(), aio_file_pwritev() and
 * aio_file_fsync().  Each submits to the calling thread's current context
 * (see qemu_get_current_aio_context()), yields until the request completes
 * and returns its result: bytes transferred (0 for a flush) or -errno.
 * Returns -EINVAL at once when there is no current context or the
 * arguments are refused as above.  Coroutine only (aborts with a message
 * otherwise).
 */
AIOCTX_API ssize_t coroutine_fn aio_file_co_preadv(int fd, uint64_t offset,
                                                   const struct iovec *iov,
                                                   int iovcnt);
AIOCTX_API ssize_t coroutine_fn aio_file_co_pwritev(int fd, uint64_t offset,
                                                    const struct iovec *iov,
                                                    int iovcnt);
AIOCTX_API int coroutine_fn aio_file_co_fsync(int fd, bool datasync);

/* ------------------------------------------------------------------ */
/* File-to-socket and file-to-pipe transfer (no user-space copy)       */
/* ------------------------------------------------------------------ */

/*
 * A transfer's completion: done is the number of bytes moved (>= 0) and
 * error 0 or -errno.  Every outcome is exact:
 *   done == count, error == 0    everything moved;
 *   done <  count, error == 0    the file ended at offset + done;
 *   error <  0                   stopped by the error after done bytes
 *                                (-EPIPE or -ECONNRESET for a peer that
 *                                went away, -ECANCELED when cancelled).
 */
typedef void AioFileTransferFunc(void *opaque, int64_t done, int error);

/*
 * Move up to count bytes of in_fd, from offset on, to out_fd without
 * copying them through user space (sendfile(2) to a socket, splice(2) to a
 * pipe); in_fd's file position is neither used nor changed.  in_fd must be
 * a regular file or a block device opened for reading, without O_DIRECT
 * (the kernel's direct splice reads need aligned offsets); out_fd must be a non-blocking socket (O_NONBLOCK) or a pipe
 * (blocking or not) open for writing.  Works the same on every engine:
 *  - data the page cache holds is sent from the loop thread, as long as
 *    out_fd takes it; when out_fd is full the transfer waits for it to be
 *    writable through the loop (on a duplicate of out_fd, so the caller may
 *    keep its own handlers on out_fd meanwhile) and goes on;
 *  - data that may need the disk (a probe of the page cache says so, or
 *    in_fd is a block device) is sent by a worker of the
 *    context's thread pool, so the loop thread never waits for the disk;
 *    the worker does not wait for out_fd either.
 * The caller must not write to out_fd, nor close either descriptor, until
 * cb has run.  SIGPIPE is never raised for the caller: unless it is
 * ignored when the transfer starts, the library blocks it in the sending
 * thread around each sendfile()/splice() and discards the one it caused;
 * either way the failure is reported as -EPIPE, and the process's signal
 * dispositions are left alone.  Errors go to cb: -EBADF for a closed descriptor or one open in
 * the wrong direction, -EINVAL when in_fd is not a regular file or block
 * device or is O_DIRECT, or out_fd is neither a socket nor a pipe, or is a socket in
 * blocking mode, -EMFILE when out_fd
 * cannot be duplicated for the wait.  An offset at or past the end of the
 * file gives done == 0, error == 0.  count is capped so that offset + count
 * stays below 2^63.
 *
 * cb runs once, in ctx's home thread, from aio_poll(), never inside this
 * call.  Returns the request, valid until cb has returned; cancel it with
 * bdrv_aio_cancel_async() or bdrv_aio_cancel() (aioctx/thread-pool.h) from
 * any thread: the transfer stops at the next step boundary (a worker's
 * sendfile() in progress finishes first) and cb gets the bytes moved so
 * far with -ECANCELED.  Destroying the context with transfers in flight
 * completes them the same way, inside aio_context_unref().  Returns NULL,
 * and cb never runs, when ctx is NULL or offset is above INT64_MAX.
 * Thread: ctx's home thread.
 */
AIOCTX_API BlockAIOCB *aio_file_transfer(AioContext *ctx, int out_fd,
                                         int in_fd, uint64_t offset,
                                         uint64_t count,
                                         AioFileTransferFunc *cb,
                                         void *opaque);

/*
 * Coroutine form of aio_file_transfer() on the current context: yield until
 * the transfer ends and return the bytes moved, or the -errno when it
 * failed before moving any.  When error is not NULL it gets the error part
 * of the outcome (0 or -errno) whatever the bytes moved.  Returns -EINVAL
 * (and sets *error) at once when there is no current context or offset is
 * above INT64_MAX.  Coroutine only (abort with a message otherwise).
 */
AIOCTX_API int64_t coroutine_fn aio_file_co_transfer(int out_fd, int in_fd,
                                                     uint64_t offset,
                                                     uint64_t count,
                                                     int *error);

/* ------------------------------------------------------------------ */
/* QEMU's raw-aio entry points                                         */
/* ------------------------------------------------------------------ */

/* A context's Linux AIO state (opaque). */
typedef struct LinuxAioState LinuxAioState;
/* A context's io_uring block I/O state (opaque). */
typedef struct LuringState LuringState;

/*
 * Give ctx a Linux AIO state, or return the one it has.  Works on every
 * engine: it opens an eventfd, registers it on ctx as an event notifier
 * and calls io_setup() for LAIO_MAX_EVENTS (256) requests, which is also
 * the most it keeps in the kernel at once (more wait in a queue); each
 * state takes 256 from the system-wide fs.aio-max-nr.  On the "linux-aio"
 * engine the context has one from its creation.  Returns NULL with *errp
 * set when the kernel refuses (for example "Linux AIO: Resource
 * temporarily unavailable" once fs.aio-max-nr is used up).  The state lives
 * as long as ctx.  Thread: ctx's home thread.
 */
AIOCTX_API LinuxAioState *aio_setup_linux_aio(AioContext *ctx, Error **errp);

/* ctx's Linux AIO state, or NULL when it has none.  Any thread. */
AIOCTX_API LinuxAioState *aio_get_linux_aio(AioContext *ctx);

/*
 * Give ctx an io_uring block I/O state, or return the one it has.  On the
 * "io_uring" engine its requests share the engine's io_uring; on any other
 * engine it creates one of its own (128 entries, one more descriptor
 * watched by ctx).  Returns NULL with *errp set when io_uring cannot be used here
 * ("io_uring: Operation not permitted" under a seccomp filter, say).  The
 * state lives as long as ctx.  Thread: ctx's home thread.
 */
AIOCTX_API LuringState *aio_setup_linux_io_uring(AioContext *ctx,
                                                 Error **errp);

/* ctx's io_uring block I/O state, or NULL when it has none.  Any thread. */
AIOCTX_API LuringState *aio_get_linux_io_uring(AioContext *ctx);

/*
 * QEMU's Linux AIO request on the current context's state (set it up
 * first with aio_setup_linux_aio(); -ENXIO otherwise).  type is
 * QEMU_AIO_READ, QEMU_AIO_WRITE or QEMU_AIO_FLUSH (an fdatasync; offset
 * and qiov are then ignored).  dev_max_batch, when not 0, further limits
 * how many requests go to the kernel in one io_submit() (see
 * aio_context_set_aio_params(); the default batch is 32).  Returns QEMU's
 * way: 0 when everything was transferred, -errno on error; a read that
 * reaches the end of the file fills the rest of qiov with zeroes and
 * returns 0; a write the kernel will not finish returns -ENOSPC.
 * Coroutine only.
 */
AIOCTX_API int coroutine_fn laio_co_submit(int fd, uint64_t offset,
                                           QEMUIOVector *qiov, int type,
                                           uint64_t dev_max_batch);

/*
 * QEMU's io_uring request on the current context's state (set it up first
 * with aio_setup_linux_io_uring(); -ENXIO otherwise).  bs is not used.
 * Types and results as laio_co_submit().  Coroutine only.
 */
AIOCTX_API int coroutine_fn luring_co_submit(BlockDriverState *bs, int fd,
                                             uint64_t offset,
                                             QEMUIOVector *qiov, int type);

#ifdef __cplusplus
}
#endif

#endif /* AIOCTX_FILE_IO_H */
