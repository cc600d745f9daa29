/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Linux native AIO as a file I/O executor: LinuxAioState, one per context
 * (aio_setup_linux_aio(), or the "linux-aio" engine's own).
 *
 * Depth.  io_setup(LAIO_MAX_EVENTS): the kernel sizes the context (and its
 * completion ring) for that many requests, and the state never has more
 * in flight; further requests wait in its FIFO queue.  Each state takes
 * LAIO_MAX_EVENTS from the system-wide fs.aio-max-nr.
 *
 * Reuse.  io_destroy() waits for an RCU grace period (some 30 ms here), so
 * a freed state's kernel context, drained, is kept for the next state, up
 * to LAIO_SPARE_MAX per process (they count against fs.aio-max-nr until
 * the process exits).  A forked child forgets them: kernel AIO contexts
 * are not inherited.
 *
 * Submission.  Requests are queued and go to io_submit() in batches of at
 * most max_batch (the context's aio_max_batch, LAIO_DEFAULT_MAX_BATCH when
 * that is 0, and laio_co_submit()'s dev_max_batch when lower): at once
 * when a full batch is queued, otherwise from the state's bottom half,
 * which runs before the loop sleeps again.  When io_submit() says EAGAIN
 * (the kernel is out of request slots) nothing fails: the queue waits for
 * completions to free slots, or, with nothing in flight, is tried one
 * request at a time and then again after LAIO_RETRY_NS.  Any other error
 * fails the first queued request (the one the kernel refused) and the
 * rest go on; a flush the kernel cannot do (-EINVAL, kernels before 4.18)
 * runs on the thread pool instead.
 *
 * Completion.  Every iocb signals the state's eventfd, which is registered
 * on the context as an event notifier; its io_poll looks at the completion
 * ring, so busy polling sees completions without a system call.  Events are
 * taken from the ring the kernel maps at the io_context_t address (a
 * header with head, tail and a magic number, then the io_event array):
 * read the tail, take the event at the head, move the head on, one event at
 * a time, so a callback that nests aio_poll() continues with the next one.
 * If the header is not the one we know, io_getevents() fetches them.  While
 * completions are processed the bottom half is scheduled, so a nested
 * blocking aio_poll() still gets the others (the eventfd was read already).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libaio.h>

#include "aio-internal.h"
#include "aioctx/coroutine.h"
#include "engine.h"
#include "file-io-internal.h"
#include "log-internal.h"

#define LAIO_MAX_EVENTS 256
#define LAIO_DEFAULT_MAX_BATCH 32
#define LAIO_RETRY_NS (1000 * 1000)
#define LAIO_SPARE_MAX 8

/* The header of the kernel's completion ring (fs/aio.c), then the events. */
#define LAIO_RING_MAGIC 0xa10a10a1u
typedef struct LaioRing {
    unsigned id;
    unsigned nr;
    unsigned head;
    unsigned tail;
    unsigned magic;
    unsigned compat_features;
    unsigned incompat_features;
    unsigned header_length;
    struct io_event io_events[];
} LaioRing;

struct LinuxAioState {
    AioFileExec exec; /* first: what the front end holds */
    AioContext *ctx;
    io_context_t io_ctx;
    LaioRing *ring; /* NULL: fetch events with io_getevents() */
    EventNotifier e;
    QEMUBH *bh;
    QEMUTimer retry_timer;
    unsigned in_flight; /* submitted, event not taken yet */
    unsigned in_queue;
    AioFileReqFifo queue;   /* not submitted yet */
    bool blocked;   /* io_submit() said EAGAIN */
    int processing; /* nesting of completion processing */
    int ev_idx;     /* io_getevents() results not handled yet */
    int ev_max;
    struct io_event events[LAIO_MAX_EVENTS];
};

/* A request's private area. */
typedef struct LaioReq {
    struct iocb iocb;
    bool queued; /* in the state's queue, not submitted */
} LaioReq;

static inline LaioReq *laio_req(AioFileReq *req)
{
    return aio_file_req_priv(req);
}

/* ---- kernel contexts, kept for reuse ---- */

static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static io_context_t spare[LAIO_SPARE_MAX];
static int nspare;

static void spare_forget(void)
{
    nspare = 0; /* in a fork child: they were the parent's */
}

static void spare_init(void)
{
    pthread_atfork(NULL, NULL, spare_forget);
}

/* A kernel context for LAIO_MAX_EVENTS: a spare one, or io_setup(). */
static int laio_io_setup(io_context_t *io_ctx)
{
    pthread_once(&spare_once, spare_init);
    pthread_mutex_lock(&spare_lock);
    if (nspare) {
        *io_ctx = spare[--nspare];
        pthread_mutex_unlock(&spare_lock);
        return 0;
    }
    pthread_mutex_unlock(&spare_lock);
    *io_ctx = 0;
    return io_setup(LAIO_MAX_EVENTS, io_ctx);
}

/* Keep a drained kernel context for reuse, or destroy it. */
static void laio_io_release(io_context_t io_ctx, bool drained)
{
    pthread_mutex_lock(&spare_lock);
    if (drained && nspare < LAIO_SPARE_MAX) {
        spare[nspare++] = io_ctx;
        pthread_mutex_unlock(&spare_lock);
        return;
    }
    pthread_mutex_unlock(&spare_lock);
    io_destroy(io_ctx);
}

/* The state whose eventfd notifier is e (a handler's opaque). */
static LinuxAioState *container_of_notifier(void *e)
{
    return (LinuxAioState *)((char *)e - offsetof(LinuxAioState, e));
}

/* ---- completions ---- */

/* Take the next completion event, if there is one. */
static bool laio_next_event(LinuxAioState *s, struct io_event *ev)
{
    LaioRing *ring = s->ring;

    if (ring) {
        unsigned head = aio_load(&ring->head);
        unsigned tail = aio_load_acquire(&ring->tail);

        if (head == tail) {
            return false;
        }
        *ev = ring->io_events[head];
        aio_store_release(&ring->head, (head + 1) % ring->nr);
        return true;
    }
    if (s->ev_idx == s->ev_max) {
        struct timespec zero = { 0, 0 };
        int n = io_getevents(s->io_ctx, 0, LAIO_MAX_EVENTS, s->events, &zero);

        s->ev_idx = s->ev_max = 0;
        if (n <= 0) {
            return false;
        }
        s->ev_max = n;
    }
    *ev = s->events[s->ev_idx++];
    return true;
}

/* Whether completions are known to wait (no system call). */
static bool laio_has_events(LinuxAioState *s)
{
    if (s->ring) {
        return aio_load(&s->ring->head) != aio_load_acquire(&s->ring->tail);
    }
    return s->ev_idx < s->ev_max;
}

static void laio_complete(LinuxAioState *s, const struct io_event *ev)
{
    AioFileReq *req = ev->data;

    s->in_flight--;
    /* res is the kernel's 64-bit result; long holds every value it takes. */
    aio_file_req_done(req, (int64_t)(long)ev->res);
}

/*
 * Handle the completions that are there now.  Not those that arrive
 * meanwhile: a buffered request completes inside the io_submit() a
 * callback makes, and following those would never give the loop back.
 * Their eventfd signal brings us back.
 */
static void laio_process_completions(LinuxAioState *s)
{
    struct io_event ev;
    unsigned budget = LAIO_MAX_EVENTS;

    if (s->ring) {
        unsigned head = aio_load(&s->ring->head);
        unsigned tail = aio_load_acquire(&s->ring->tail);

        if (head == tail) {
            return;
        }
        budget = (tail + s->ring->nr - head) % s->ring->nr;
    }
    s->processing++;
    qemu_bh_schedule(s->bh); /* for callbacks that nest aio_poll() */
    while (budget-- && laio_next_event(s, &ev)) {
        laio_complete(s, &ev);
    }
    qemu_bh_cancel(s->bh);
    s->processing--;
}

/* ---- submission ---- */

static unsigned laio_max_batch(LinuxAioState *s, uint64_t dev_max_batch)
{
    int64_t batch = aio_engine_max_batch(s->ctx);

    if (batch <= 0) {
        batch = LAIO_DEFAULT_MAX_BATCH;
    }
    if (dev_max_batch && dev_max_batch < (uint64_t)batch) {
        batch = (int64_t)dev_max_batch;
    }
    return batch < LAIO_MAX_EVENTS ? (unsigned)batch : LAIO_MAX_EVENTS;
}

static AioFileReq *laio_queue_pop(LinuxAioState *s)
{
    AioFileReq *req = AIO_FIFO_POP(&s->queue, next);

    laio_req(req)->queued = false;
    s->in_queue--;
    return req;
}

/* io_submit() refused the queue's first request with err. */
static void laio_fail_head(LinuxAioState *s, int err)
{
    AioFileReq *req = laio_queue_pop(s);

    if (err == -EINVAL && req->type == QEMU_AIO_FLUSH) {
        /* No IOCB_CMD_FSYNC/FDSYNC in this kernel: a worker does it. */
        aio_file_req_redirect(req, &req->fs->pool_exec);
        return;
    }
    aio_file_req_done(req, err);
}

static void laio_submit_queue(LinuxAioState *s)
{
    struct iocb *batch[LAIO_MAX_EVENTS];
    bool one_at_a_time = false;

    s->blocked = false;
    while (s->queue.head && s->in_flight < LAIO_MAX_EVENTS) {
        unsigned limit = LAIO_MAX_EVENTS - s->in_flight, n = 0;
        AioFileReq *req;
        int ret;

        if (one_at_a_time) {
            limit = 1;
        } else if (limit > laio_max_batch(s, 0)) {
            limit = laio_max_batch(s, 0);
        }
        for (req = s->queue.head; req && n < limit; req = req->next) {
            batch[n++] = &laio_req(req)->iocb;
        }
        ret = io_submit(s->io_ctx, (long)n, batch);
        if (ret == -EINTR) {
            continue;
        }
        if (ret == -EAGAIN) {
            if (s->in_flight) {
                s->blocked = true; /* completions will free slots */
                break;
            }
            if (n > 1) {
                one_at_a_time = true;
                continue;
            }
            s->blocked = true;
            timer_mod_ns(&s->retry_timer,
                         qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                             LAIO_RETRY_NS);
            break;
        }
        if (ret < 0) {
            laio_fail_head(s, ret);
            continue;
        }
        if (ret == 0) {
            /* Not expected for n > 0: try again from the bottom half. */
            qemu_bh_schedule(s->bh);
            return;
        }
        for (int i = 0; i < ret; i++) {
            laio_queue_pop(s);
        }
        s->in_flight += (unsigned)ret;
        one_at_a_time = false;
    }
    if (!s->queue.head && !s->processing) {
        qemu_bh_cancel(s->bh); /* nothing left for it to submit */
    }
}

static void laio_process_and_submit(LinuxAioState *s)
{
    laio_process_completions(s);
    if (s->queue.head) {
        laio_submit_queue(s);
    }
}

static void laio_bh(void *opaque)
{
    laio_process_and_submit(opaque);
}

static void laio_retry(void *opaque)
{
    LinuxAioState *s = opaque;

    if (s->queue.head) {
        laio_submit_queue(s);
    }
}

static void laio_notifier_read(EventNotifier *e)
{
    LinuxAioState *s = container_of_notifier(e);

    event_notifier_test_and_clear(e);
    laio_process_and_submit(s);
}

static bool laio_notifier_poll(void *opaque)
{
    return laio_has_events(container_of_notifier(opaque));
}

static void laio_notifier_poll_ready(EventNotifier *e)
{
    laio_process_and_submit(container_of_notifier(e));
}

/* ---- the executor ---- */

static void laio_prep(LinuxAioState *s, AioFileReq *req)
{
    struct iocb *iocb = &laio_req(req)->iocb;
    long long offset = (long long)req->offset;

    switch (req->type) {
    case QEMU_AIO_READ:
        if (req->iovcnt == 1) {
            io_prep_pread(iocb, req->fd, req->iov[0].iov_base,
                          req->iov[0].iov_len, offset);
        } else {
            io_prep_preadv(iocb, req->fd, req->iov, req->iovcnt, offset);
        }
        break;
    case QEMU_AIO_WRITE:
        if (req->iovcnt == 1) {
            io_prep_pwrite(iocb, req->fd, req->iov[0].iov_base,
                           req->iov[0].iov_len, offset);
        } else {
            io_prep_pwritev(iocb, req->fd, req->iov, req->iovcnt, offset);
        }
        break;
    default:
        if (req->datasync) {
            io_prep_fdsync(iocb, req->fd);
        } else {
            io_prep_fsync(iocb, req->fd);
        }
        break;
    }
    io_set_eventfd(iocb, event_notifier_get_fd(&s->e));
    iocb->data = req;
}

static int laio_submit(AioFileExec *exec, AioFileReq *req)
{
    LinuxAioState *s = (LinuxAioState *)exec;

    laio_prep(s, req);
    laio_req(req)->queued = true;
    AIO_FIFO_PUSH(&s->queue, req, next);
    s->in_queue++;
    if (s->blocked) {
        return 0; /* after completions or the retry timer */
    }
    if (s->in_queue >= laio_max_batch(s, req->max_batch)) {
        laio_submit_queue(s);
    } else {
        qemu_bh_schedule(s->bh);
    }
    return 0;
}

static void laio_cancel(AioFileExec *exec, AioFileReq *req)
{
    LinuxAioState *s = (LinuxAioState *)exec;
    LaioReq *lr = laio_req(req);
    struct io_event ev;

    if (lr->queued) {
        AIO_FIFO_REMOVE(&s->queue, req, next);
        lr->queued = false;
        s->in_queue--;
        aio_file_req_done(req, -ECANCELED);
        return;
    }
    /*
     * Regular files refuse (-EINVAL) and complete normally.  Since Linux
     * 4.19 a successful cancellation posts its event to the ring like any
     * other (-EINPROGRESS); before, it came back here (0).
     */
    if (io_cancel(s->io_ctx, &laio_req(req)->iocb, &ev) == 0) {
        laio_complete(s, &ev);
    }
}

static const AioFileExecOps laio_ops = {
    .name = "linux-aio",
    .req_priv_size = sizeof(LaioReq),
    .submit = laio_submit,
    .cancel = laio_cancel,
};

AioFileExec *laio_state_exec(LinuxAioState *s)
{
    return &s->exec;
}

/* ---- life cycle ---- */

int laio_probe(void)
{
    io_context_t probe = 0;
    /*
     * Zero events is invalid: a kernel with Linux AIO says EINVAL without
     * making anything; one without says ENOSYS, a seccomp filter its own
     * errno.  (An exhausted fs.aio-max-nr only shows in init.)
     */
    int ret = io_setup(0, &probe);

    if (ret == 0) {
        io_destroy(probe);
        return 0;
    }
    return ret == -EINVAL ? 0 : ret;
}

int laio_state_new(AioContext *ctx, const char *who, LinuxAioState **ps,
                   Error **errp)
{
    LinuxAioState *s = calloc(1, sizeof(*s));
    LaioRing *ring;
    int ret;

    if (!s) {
        error_setg_errno(errp, ENOMEM, "%s", who);
        return -ENOMEM;
    }
    s->exec.ops = &laio_ops;
    s->ctx = ctx;
    aio_fifo_init(&s->queue);
    ret = event_notifier_init(&s->e, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "%s: cannot create an eventfd", who);
        free(s);
        return ret;
    }
    ret = laio_io_setup(&s->io_ctx);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "%s", who);
        event_notifier_cleanup(&s->e);
        free(s);
        return ret;
    }
    ring = (LaioRing *)s->io_ctx;
    if (ring->magic == LAIO_RING_MAGIC && ring->incompat_features == 0 &&
        ring->nr > 0) {
        s->ring = ring;
    }
    s->bh = aio_bh_try_new(ctx, laio_bh, s, "laio_bh");
    if (!s->bh) {
        error_setg_errno(errp, ENOMEM, "%s", who);
        laio_io_release(s->io_ctx, true);
        event_notifier_cleanup(&s->e);
        free(s);
        return -ENOMEM;
    }
    aio_timer_init(ctx, &s->retry_timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                   laio_retry, s);
    if (!aio_set_fd_handler_full(ctx, event_notifier_get_fd(&s->e),
                                 (IOHandler *)laio_notifier_read, NULL,
                                 laio_notifier_poll,
                                 (IOHandler *)laio_notifier_poll_ready, &s->e,
                                 false)) {
        error_setg_errno(errp, ENOMEM, "%s: cannot watch the eventfd", who);
        timer_deinit(&s->retry_timer);
        qemu_bh_delete(s->bh);
        laio_io_release(s->io_ctx, true);
        event_notifier_cleanup(&s->e);
        free(s);
        return -ENOMEM;
    }
    *ps = s;
    return 0;
}

void laio_state_free(LinuxAioState *s)
{
    struct io_event events[LAIO_MAX_EVENTS];
    struct io_event ev;

    /* Not given to the kernel yet: cancelled. */
    while (s->queue.head) {
        aio_file_req_done(laio_queue_pop(s), -ECANCELED);
    }
    /* Given: wait for them (callbacks cannot start new ones any more). */
    while (laio_next_event(s, &ev)) {
        laio_complete(s, &ev);
    }
    while (s->in_flight) {
        int n = io_getevents(s->io_ctx, 1, LAIO_MAX_EVENTS, events, NULL);

        if (n < 0 && n != -EINTR) {
            aio_log(AIO_LOG_ERROR, "io_getevents: %s", strerror(-n));
            break;
        }
        for (int i = 0; i < n; i++) {
            laio_complete(s, &events[i]);
        }
    }
    aio_set_event_notifier(s->ctx, &s->e, NULL, NULL, NULL);
    timer_deinit(&s->retry_timer);
    qemu_bh_delete(s->bh);
    laio_io_release(s->io_ctx, !s->in_flight && !laio_has_events(s));
    event_notifier_cleanup(&s->e);
    free(s);
}

/* ---- QEMU's entry points ---- */

AIOCTX_API LinuxAioState *aio_setup_linux_aio(AioContext *ctx, Error **errp)
{
    LinuxAioState *s, *expected = NULL;
    AioFileState *fs;

    if (!ctx) {
        error_setg(errp, "Linux AIO: no context given");
        return NULL;
    }
    fs = aio_file_state_try(ctx);
    if (!fs) {
        error_setg_errno(errp, ENOMEM, "Linux AIO");
        return NULL;
    }
    s = aio_load_acquire(&fs->laio);
    if (s) {
        return s;
    }
    if (laio_state_new(ctx, "Linux AIO", &s, errp) < 0) {
        return NULL;
    }
    if (!__atomic_compare_exchange_n(&fs->laio, &expected, s, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        laio_state_free(s);
        return expected;
    }
    return s;
}

AIOCTX_API LinuxAioState *aio_get_linux_aio(AioContext *ctx)
{
    AioFileState *fs = ctx ? aio_file_state_peek(ctx) : NULL;

    return fs ? aio_load_acquire(&fs->laio) : NULL;
}

AIOCTX_API int coroutine_fn laio_co_submit(int fd, uint64_t offset,
                                           QEMUIOVector *qiov, int type,
                                           uint64_t dev_max_batch)
{
    AioContext *ctx = qemu_get_current_aio_context();
    LinuxAioState *s = aio_get_linux_aio(ctx);

    if (!s && qemu_in_coroutine()) {
        return -ENXIO;
    }
    return aio_file_co_qemu("laio_co_submit", s ? &s->exec : NULL, fd, offset,
                            qiov, type, dev_max_batch);
}
