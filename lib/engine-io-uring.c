/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "io_uring" engine: fd readiness through IORING_OP_POLL_ADD requests,
 * changes submitted in batches, sleeps with a nanosecond timeout; file I/O
 * on a second ring (engine-io-uring-file.c).
 *
 * Ring: 256 submission entries (URING_SQ_ENTRIES); the kernel sizes the
 * completion queue at twice that (512).  More changes than fit in the SQ
 * are submitted as the SQ fills; more completions than fit in the CQ go to
 * the kernel's overflow backlog (IORING_FEAT_NODROP), which wait() flushes
 * and reaps.  If the kernel ever reports dropped completions (its overflow
 * counter moves) every watched fd is cancelled and armed again, so no
 * readiness is lost.  The ring is single-issuer with deferred task work
 * where the kernel has it (6.1): see uring_setup_flags and "ring
 * ownership" below for what that buys and how a change of polling thread
 * is handled.
 *
 * One-shot polls, armed again after every completion.  Multishot polls are
 * not used because they report edges: the kernel posts a completion when the
 * fd's wait queue is woken (new data), not while data stays unread.  The
 * core's callbacks expect levels: a handler that reads only part of what is
 * there must be called again.  A one-shot POLL_ADD submitted on an fd that
 * is still readable completes at once, which gives exactly that.
 *
 * Lifetimes.  The engine keeps its own table of slots indexed by fd: the
 * handler seen at the last refresh, the events armed and a generation.
 * Every request's user_data is (generation << 32 | fd); internal requests
 * (cancellations, no-ops, liburing's own timeouts) use an fd of all ones
 * and are ignored; the poll on the file ring's fd is URING_TAG_FILE.  A
 * completion whose generation is not the slot's current one is stale and
 * dropped.  update() runs in any thread and never touches the ring (its
 * submission side is single-threaded): it only puts the fd in a "dirty"
 * set guarded by the context's list lock.  wait(), in the home thread,
 * first refreshes every dirty slot from the live handler table under that
 * lock, cancelling the old request and queueing a new one.  Nodes named by
 * slots are only dereferenced after that refresh, while the caller's
 * visitor count keeps deleted nodes from being freed, so a handler freed
 * between two waits is never touched.
 *
 * A removed handler's fd stays referenced by its in-flight poll until the
 * home thread's next wait (or aio_prepare) submits the cancellation; the
 * aio_notify() that follows every handler change makes that prompt when the
 * home thread is sleeping.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine-io-uring.h"
#include "uring-tsan.h"

#define URING_SQ_ENTRIES 256
#define URING_PROBE_ENTRIES 2
/* CQ passes per wait when the overflow backlog keeps refilling it. */
#define URING_REAP_ROUNDS 16

typedef struct UringSlot {
    AioHandler *node; /* handler at the last refresh (may be stale later) */
    uint32_t gen;     /* generation of the request in flight */
    int events;       /* poll mask to arm, 0 for none */
    unsigned poll_ready_runs; /* the node's count when last looked at */
    bool armed;               /* a POLL_ADD with gen is in the kernel */
    bool queued;              /* on the arm list */
} UringSlot;

typedef struct UringEngine {
    struct io_uring ring;
    unsigned overflow_seen; /* the kernel's dropped-CQE counter */
    bool enabled;           /* an R_DISABLED ring was enabled */
    bool deferred;          /* DEFER_TASKRUN: see uring_pollfd() */
    bool want_plain;        /* atomic: pollfd() asked for a ring without */

    /* Home thread only. */
    UringSlot *slots;
    int nslots;
    int *arms; /* fds whose POLL_ADD is still to be prepared */
    int narm;
    uint64_t *cancels; /* user_data of requests still to be removed */
    int ncancel;

    /* Guarded by ctx->list_lock; ndirty and resync are also read bare. */
    bool *dirty_flag;
    int dirty_cap;
    int *dirty_list;
    int dirty_list_cap;
    int ndirty;
    bool resync; /* refresh every fd (out of memory, dropped completions) */

    UringFile file; /* home thread only */
} UringEngine;

static uint64_t uring_tag(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd;
}

/* Grow array (cap elements of size) to hold need; new room is zeroed. */
static void *array_grow(void *array, int *cap, int need, size_t size)
{
    int n = *cap ? *cap : 64;
    char *grown;

    if (need <= *cap) {
        return array;
    }
    while (n < need) {
        n *= 2;
    }
    grown = realloc(array, (size_t)n * size);
    if (!grown) {
        return NULL;
    }
    memset(grown + (size_t)*cap * size, 0, (size_t)(n - *cap) * size);
    *cap = n;
    return grown;
}

/* ---- probe, init, destroy ---- */

static int uring_probe(void)
{
    struct io_uring ring;
    int ret = io_uring_queue_init(URING_PROBE_ENTRIES, &ring, 0);

    if (ret < 0) {
        return ret;
    }
    aio_uring_mapped();
    aio_uring_unmapping();
    io_uring_queue_exit(&ring);
    return 0;
}

/*
 * Ring flags, best first; a kernel that does not know one says EINVAL.
 *
 * SINGLE_ISSUER + DEFER_TASKRUN (6.1): completions are not pushed at the
 * loop's thread while it runs callbacks (every read() and write() would
 * return through io_uring's task work); they are all done in one go when
 * the thread next enters the ring to wait.  The price: only one thread may
 * enter the ring.  The ring starts disabled (R_DISABLED) and the first
 * thread that enters it, the home thread, enables it and owns it; if
 * another thread later polls the context, uring_take_over() moves
 * everything to a new ring that thread owns.
 * COOP_TASKRUN (5.19), the fallback: no IPI to a thread running callbacks;
 * the work is done at its next system call, and a sleeping thread (in
 * io_uring_enter, or in a foreign loop's poll() on the ring fd) is woken.
 * TASKRUN_FLAG: the kernel says when such work waits, so that a
 * zero-timeout wait enters the kernel to run it.
 * SUBMIT_ALL (5.18): a bad entry does not stop the rest of the batch.
 */
static const unsigned uring_setup_flags[] = {
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
        IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
        IORING_SETUP_R_DISABLED,
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
        IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SUBMIT_ALL,
    0,
};

/*
 * A ring with the best flags the kernel takes (without DEFER_TASKRUN if
 * plain); a negative errno if none.
 */
static int uring_ring_new(struct io_uring *ring, bool plain)
{
    size_t n = sizeof(uring_setup_flags) / sizeof(uring_setup_flags[0]);
    struct io_uring_params params;
    int ret = -EINVAL;

    for (size_t i = 0; ret == -EINVAL && i < n; i++) {
        if (plain && (uring_setup_flags[i] & IORING_SETUP_DEFER_TASKRUN)) {
            continue;
        }
        memset(&params, 0, sizeof(params));
        params.flags = uring_setup_flags[i];
        ret = io_uring_queue_init_params(URING_SQ_ENTRIES, ring, &params);
    }
    if (ret == 0) {
        aio_uring_mapped();
    }
    return ret;
}

static int uring_init(AioContext *ctx, Error **errp)
{
    UringEngine *ue = aio_engine_priv(ctx);
    int ret = uring_ring_new(&ue->ring, false);

    if (ret < 0) {
        error_setg_errno(errp, -ret, "io_uring");
        return ret;
    }
    ue->overflow_seen = aio_load(ue->ring.cq.koverflow);
    ue->deferred = ue->ring.flags & IORING_SETUP_DEFER_TASKRUN;
    uring_file_init(&ue->file);
    return 0;
}

static void uring_destroy(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    aio_uring_unmapping();
    io_uring_queue_exit(&ue->ring);
    uring_file_destroy(&ue->file);
    free(ue->slots);
    free(ue->arms);
    free(ue->cancels);
    free(ue->dirty_flag);
    free(ue->dirty_list);
}

/* ---- update: record the change, any thread, list lock held ---- */

static void uring_mark_dirty(UringEngine *ue, int fd)
{
    bool *flags;
    int *list;

    if (fd < ue->dirty_cap && ue->dirty_flag[fd]) {
        return;
    }
    flags = array_grow(ue->dirty_flag, &ue->dirty_cap, fd + 1, sizeof(*flags));
    if (flags) {
        ue->dirty_flag = flags;
    }
    list = array_grow(ue->dirty_list, &ue->dirty_list_cap, ue->ndirty + 1,
                      sizeof(*list));
    if (list) {
        ue->dirty_list = list;
    }
    if (!flags || !list) {
        aio_store(&ue->resync, true);
        return;
    }
    ue->dirty_flag[fd] = true;
    ue->dirty_list[ue->ndirty] = fd;
    aio_store(&ue->ndirty, ue->ndirty + 1);
}

static void uring_update(AioContext *ctx, AioHandler *old_node,
                         AioHandler *new_node)
{
    UringEngine *ue = aio_engine_priv(ctx);

    uring_mark_dirty(ue, aio_handler_fd(new_node ? new_node : old_node));
}

/* ---- refresh: dirty fds become slot changes, home thread ---- */

/* Make room for slot fd; the arm and cancel lists never need more. */
static bool uring_slot_reserve(UringEngine *ue, int fd)
{
    int cap = ue->nslots, cap_arms = ue->nslots, cap_cancels = ue->nslots;
    UringSlot *slots;
    int *arms;
    uint64_t *cancels;

    if (fd < ue->nslots) {
        return true;
    }
    arms = array_grow(ue->arms, &cap_arms, fd + 1, sizeof(*arms));
    if (!arms) {
        return false;
    }
    ue->arms = arms;
    cancels = array_grow(ue->cancels, &cap_cancels, fd + 1, sizeof(*cancels));
    if (!cancels) {
        return false;
    }
    ue->cancels = cancels;
    slots = array_grow(ue->slots, &cap, fd + 1, sizeof(*slots));
    if (!slots) {
        return false;
    }
    ue->slots = slots;
    ue->nslots = cap; /* the three grew alike: same doubling from nslots */
    return true;
}

static void uring_queue_arm(UringEngine *ue, int fd)
{
    if (!ue->slots[fd].queued) {
        ue->slots[fd].queued = true;
        ue->arms[ue->narm++] = fd;
    }
}

/* Bring slot fd in line with the live handler; list lock held. */
static void uring_refresh(AioContext *ctx, UringEngine *ue, int fd)
{
    AioHandler *node = aio_handler_lookup(ctx, fd);
    UringSlot *slot;

    if (!uring_slot_reserve(ue, fd)) {
        if (node) {
            fprintf(stderr, "libaioctx: io_uring cannot watch fd %d: %s\n", fd,
                    strerror(ENOMEM));
        }
        return; /* no slot was ever made, so nothing is in flight */
    }
    slot = &ue->slots[fd];
    if (slot->armed) {
        /*
         * The old request goes even when the events are the same: the fd
         * number may now name another file, and a poll holds the file it
         * was armed on.
         */
        ue->cancels[ue->ncancel++] = uring_tag(fd, slot->gen);
        slot->armed = false;
    }
    slot->gen++;
    slot->node = node;
    slot->events = node ? aio_handler_events(node) : 0;
    slot->poll_ready_runs = node ? aio_handler_poll_ready_runs(node) : 0;
    if (slot->events) {
        uring_queue_arm(ue, fd);
    }
}

typedef struct RefreshWalk {
    AioContext *ctx;
    UringEngine *ue;
} RefreshWalk;

static void uring_refresh_node(AioHandler *node, void *opaque)
{
    RefreshWalk *walk = opaque;

    uring_refresh(walk->ctx, walk->ue, aio_handler_fd(node));
}

/* Every slot in use and every live handler. */
static void uring_refresh_all(AioContext *ctx, UringEngine *ue)
{
    RefreshWalk walk = { ctx, ue };

    for (int fd = 0; fd < ue->nslots; fd++) {
        if (ue->slots[fd].armed || ue->slots[fd].events) {
            uring_refresh(ctx, ue, fd);
        }
    }
    aio_handlers_foreach(ctx, uring_refresh_node, &walk);
}

static void uring_drain_dirty(AioContext *ctx, UringEngine *ue)
{
    /* A change racing with this check is followed by an aio_notify(). */
    if (!aio_load(&ue->ndirty) && !aio_load(&ue->resync)) {
        return;
    }
    lockcnt_lock(&ctx->list_lock);
    if (aio_load(&ue->resync)) {
        aio_store(&ue->resync, false);
        uring_refresh_all(ctx, ue);
    }
    for (int i = 0; i < ue->ndirty; i++) {
        int fd = ue->dirty_list[i];

        ue->dirty_flag[fd] = false;
        uring_refresh(ctx, ue, fd);
    }
    aio_store(&ue->ndirty, 0);
    lockcnt_unlock(&ctx->list_lock);
}

/* ---- submission ---- */

static int uring_enter(UringEngine *ue, int64_t timeout_ns);
static int uring_enable(struct io_uring *ring);
static int uring_take_over(UringEngine *ue, bool plain);

static struct io_uring_sqe *uring_get_sqe(UringEngine *ue)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ue->ring);

    if (!sqe) {
        uring_enter(ue, 0); /* SQ full: hand over what is there */
        sqe = io_uring_get_sqe(&ue->ring);
    }
    return sqe;
}

/* Drop the first n entries of a list of len. */
static void list_shift(void *list, int *len, int n, size_t size)
{
    memmove(list, (char *)list + (size_t)n * size, (size_t)(*len - n) * size);
    *len -= n;
}

/* Turn queued cancellations and arms into SQEs; leftovers stay queued. */
static void uring_prepare(UringEngine *ue)
{
    int i;

    for (i = 0; i < ue->ncancel; i++) {
        struct io_uring_sqe *sqe = uring_get_sqe(ue);

        if (!sqe) {
            break;
        }
        io_uring_prep_poll_remove(sqe, ue->cancels[i]);
        io_uring_sqe_set_data64(sqe, URING_DATA_INTERNAL);
    }
    list_shift(ue->cancels, &ue->ncancel, i, sizeof(*ue->cancels));

    for (i = 0; i < ue->narm; i++) {
        int fd = ue->arms[i];
        UringSlot *slot = &ue->slots[fd];
        struct io_uring_sqe *sqe;

        if (slot->armed || !slot->events) {
            slot->queued = false;
            continue;
        }
        sqe = uring_get_sqe(ue);
        if (!sqe) {
            break;
        }
        io_uring_prep_poll_add(sqe, fd, (unsigned)slot->events);
        io_uring_sqe_set_data64(sqe, uring_tag(fd, slot->gen));
        slot->armed = true;
        slot->queued = false;
    }
    list_shift(ue->arms, &ue->narm, i, sizeof(*ue->arms));
}

/* ---- file I/O: engine-io-uring-file.c, woken through the main ring ---- */

static int uring_file_submit(AioContext *ctx, AioFileReq *req)
{
    UringEngine *ue = aio_engine_priv(ctx);

    return uring_file_start_req(&ue->file, req, aio_load(&ctx->aio_max_batch));
}

static void uring_file_cancel(AioContext *ctx, AioFileReq *req)
{
    UringEngine *ue = aio_engine_priv(ctx);

    uring_file_cancel_req(&ue->file, req);
}

static bool uring_file_dispatch(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    return uring_file_report(&ue->file);
}

/* A no-op request: its completion makes the ring fd readable. */
static void uring_post_nop(UringEngine *ue)
{
    struct io_uring_sqe *sqe = uring_get_sqe(ue);

    if (sqe) {
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, URING_DATA_INTERNAL);
    }
}

/* While file requests are in flight, the main ring polls the file ring. */
static void uring_file_arm(UringEngine *ue)
{
    struct io_uring_sqe *sqe;

    if (ue->file.polled || !uring_file_busy(&ue->file)) {
        return;
    }
    sqe = uring_get_sqe(ue);
    if (sqe) {
        io_uring_prep_poll_add(sqe, ue->file.ring.ring_fd, POLLIN);
        io_uring_sqe_set_data64(sqe, URING_TAG_FILE);
        ue->file.polled = true;
    }
}

/* ---- completion ---- */

/* Handle one CQE; returns 1 if a handler became ready. */
static int uring_complete(UringEngine *ue, AioReadyList *ready,
                          const struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    uint32_t fd = (uint32_t)data;
    UringSlot *slot;
    unsigned runs;

    if (data == URING_TAG_FILE) {
        ue->file.polled = false; /* the file ring has completions */
        return 0;
    }
    if (fd == URING_TAG_INTERNAL || fd >= (uint32_t)ue->nslots) {
        return 0;
    }
    slot = &ue->slots[fd];
    if (!slot->armed || slot->gen != (uint32_t)(data >> 32)) {
        return 0; /* a cancelled or replaced request */
    }
    slot->armed = false;
    uring_queue_arm(ue, (int)fd);
    if (cqe->res == 0 || cqe->res == -ECANCELED) {
        return 0;
    }
    runs = aio_handler_poll_ready_runs(slot->node);
    if (runs != slot->poll_ready_runs) {
        /*
         * Busy-polling ran io_poll_ready since this poll was armed and may
         * have done the work the CQE announces: ask the kernel again (the
         * new poll completes at once if the fd is still ready).
         */
        slot->poll_ready_runs = runs;
        return 0;
    }
    /* An error (the fd was closed, say) lets io_read find out. */
    aio_ready_list_add(ready, slot->node, cqe->res < 0 ? POLLERR : cqe->res);
    return 1;
}

static int uring_reap(UringEngine *ue, AioReadyList *ready)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen, dropped;
    int found = 0;

    for (int round = 0; round < URING_REAP_ROUNDS; round++) {
        seen = 0;
        io_uring_for_each_cqe(&ue->ring, head, cqe)
        {
            found += uring_complete(ue, ready, cqe);
            seen++;
        }
        io_uring_cq_advance(&ue->ring, seen);
        if (!io_uring_cq_has_overflow(&ue->ring) ||
            io_uring_get_events(&ue->ring) < 0) {
            break; /* else the backlog moved into the CQ: go again */
        }
    }
    dropped = aio_load(ue->ring.cq.koverflow);
    if (dropped != ue->overflow_seen) {
        ue->overflow_seen = dropped;
        aio_store(&ue->resync, true); /* completions were lost */
        ue->file.polled = false;
    }
    return found;
}

/* ---- ring ownership ---- */

/*
 * The kernel lets one thread only submit to and wait on the main ring (see
 * uring_setup_flags).  When another thread polls the context (the owner
 * exited, or handed the context on), uring_take_over() gives the context a
 * new main ring owned by the caller.  Nothing there needs to move: the
 * main ring holds only polls (and their cancellations), and every watched
 * fd is armed again on the new ring with a new generation; file requests
 * live in the file ring, which any thread may use.  The ring fd number
 * stays the same (aio_context_get_pollfd() promises it): the new ring is
 * moved onto it with dup3().
 */
static int uring_enable(struct io_uring *ring)
{
    if (syscall(__NR_io_uring_register, ring->ring_fd,
                IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) {
        return -errno;
    }
    return 0;
}

/* Put ring on the fd number of old's ring. */
static int uring_swap_fd(struct io_uring *ring, const struct io_uring *old)
{
    if (dup3(ring->ring_fd, old->ring_fd, O_CLOEXEC) < 0) {
        return -errno;
    }
    close(ring->ring_fd);
    ring->ring_fd = ring->enter_ring_fd = old->ring_fd;
    return 0;
}

/* A new main ring for the calling thread; plain: without DEFER_TASKRUN. */
static int uring_take_over(UringEngine *ue, bool plain)
{
    struct io_uring old = ue->ring;
    int ret = uring_ring_new(&ue->ring, plain);

    if (ret < 0) {
        ue->ring = old;
        return ret;
    }
    if (ue->ring.flags & IORING_SETUP_R_DISABLED) {
        ret = uring_enable(&ue->ring);
    }
    if (ret == 0) {
        ret = uring_swap_fd(&ue->ring, &old);
    }
    if (ret < 0) {
        aio_uring_unmapping();
        io_uring_queue_exit(&ue->ring);
        ue->ring = old;
        return ret;
    }
    old.ring_fd = old.enter_ring_fd = -1;
    aio_uring_unmapping();
    io_uring_queue_exit(&old); /* unmaps; its fd number is the new ring's */
    ue->enabled = true;
    ue->deferred = ue->ring.flags & IORING_SETUP_DEFER_TASKRUN;
    ue->overflow_seen = aio_load(ue->ring.cq.koverflow);
    for (int fd = 0; fd < ue->nslots; fd++) {
        UringSlot *slot = &ue->slots[fd];

        if (slot->armed) {
            slot->armed = false;
            slot->gen++;
            uring_queue_arm(ue, fd); /* the next wait() prepares it */
        }
    }
    ue->file.polled = false;
    return 0;
}

/* ---- embedding ---- */

/*
 * The descriptor a foreign loop sleeps on: the ring's, readable while
 * completions wait in its CQ.  With DEFER_TASKRUN a poll that fires only
 * queues work for the owner to do when it next waits, and nothing wakes a
 * poll() on the ring fd (nor reliably a registered eventfd).  So asking
 * for the descriptor makes the home thread's next flush or wait move to a
 * ring without DEFER_TASKRUN (uring_take_over(), which keeps the number).
 * Any thread; the same descriptor for the context's life.
 */
static int uring_pollfd(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    if (ue->deferred) {
        aio_store(&ue->want_plain, true);
    }
    return ue->ring.ring_fd;
}

/* Home thread, before the ring is used: honour uring_pollfd(). */
static void uring_check_plain(UringEngine *ue)
{
    int ret;

    if (!ue->deferred || !aio_load(&ue->want_plain)) {
        return;
    }
    ret = uring_take_over(ue, true);
    if (ret < 0) {
        fprintf(stderr,
                "libaioctx: io_uring: cannot make a ring a foreign "
                "loop can poll: %s\n",
                strerror(-ret));
        aio_store(&ue->want_plain, false);
    }
}

/* ---- wait ---- */

/* Submit what is prepared and wait up to timeout_ns for one completion. */
static int uring_enter_once(UringEngine *ue, int64_t timeout_ns)
{
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe;

    if (timeout_ns == 0) {
        return io_uring_submit(&ue->ring);
    }
    if (timeout_ns < 0) {
        return io_uring_submit_and_wait(&ue->ring, 1);
    }
    ts.tv_sec = timeout_ns / 1000000000LL;
    ts.tv_nsec = timeout_ns % 1000000000LL;
    return io_uring_submit_and_wait_timeout(&ue->ring, &cqe, 1, &ts, NULL);
}

/*
 * Every entry into the kernel: the first one enables a ring made disabled
 * (so the thread that first polls owns it), and one refused because another
 * thread owns the ring moves to a ring of the caller's own.
 */
static int uring_enter(UringEngine *ue, int64_t timeout_ns)
{
    int ret = uring_enter_once(ue, timeout_ns);

    if (ret == -EBADFD && !ue->enabled) {
        ret = uring_enable(&ue->ring);
        if (ret < 0) {
            /* io_uring_register refused (seccomp): a ring with no enabling */
            ret = uring_take_over(ue, true);
            return ret < 0 ? ret : -EAGAIN;
        }
        ue->enabled = true;
        return uring_enter_once(ue, timeout_ns);
    }
    if (ret == -EEXIST) {
        /*
         * Nothing is armed on the new ring yet: return without sleeping,
         * and wait() goes round again to arm everything first.
         */
        ret = uring_take_over(ue, false);
        return ret < 0 ? ret : -EAGAIN;
    }
    return ret;
}

static bool uring_transient(int ret)
{
    return ret >= 0 || ret == -EINTR || ret == -ETIME || ret == -EBUSY ||
           ret == -EAGAIN;
}

static int uring_wait(AioContext *ctx, AioReadyList *ready, int64_t timeout_ns)
{
    UringEngine *ue = aio_engine_priv(ctx);
    /* File completions not reported yet: do not sleep, count them. */
    int pending = ue->file.ndone;
    int64_t deadline, left;
    int found = 0, ret;

    if (pending) {
        timeout_ns = 0;
    }
    uring_check_plain(ue);
    deadline = timeout_ns > 0 ? aio_now_ns() + timeout_ns : 0;
    left = timeout_ns;
    for (;;) {
        uring_drain_dirty(ctx, ue); /* also a resync the last reap asked */
        found += uring_file_kick(&ue->file);
        uring_file_arm(ue);
        uring_prepare(ue);
        ret = uring_enter(ue, found ? 0 : left);
        found += uring_reap(ue, ready);
        found += uring_file_kick(&ue->file);
        if (found || timeout_ns == 0 || !uring_transient(ret)) {
            break;
        }
        /*
         * Only stale or internal completions, a signal, or a full CQ:
         * keep sleeping for what is left of the timeout.
         */
        if (timeout_ns > 0) {
            left = deadline - aio_now_ns();
            if (left <= 0) {
                break;
            }
        }
    }
    if (!found && !pending && !uring_transient(ret)) {
        return ret;
    }
    return found + pending;
}

/* Context destruction: see file_drain in engine.h. */
static void uring_file_drain(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);
    UringFile *uf = &ue->file;
    AioReadyList ready = { NULL };
    AioFileReq *req;

    while ((req = uf->wait_head)) {
        uf->wait_head = req->next;
        req->u.uring.where = 0;
        aio_file_req_done(req, -ECANCELED);
    }
    uf->wait_tail = &uf->wait_head;
    lockcnt_inc(&ctx->list_lock);
    uring_file_dispatch(ctx);
    while (uring_file_busy(uf)) {
        if (uring_wait(ctx, &ready, -1) < 0) {
            break;
        }
        aio_ready_list_clear(&ready); /* fds no longer matter */
        uring_file_dispatch(ctx);
    }
    lockcnt_dec(&ctx->list_lock);
}

/*
 * Busy-polling follows the same rule as with poll and epoll: it runs only
 * while every handler has io_poll, and then io_poll sees all the work, so
 * CQEs may wait in the CQ until the next wait() (which re-checks any that
 * io_poll_ready may have made stale, see uring_complete).  Stopping at the
 * first CQE instead, as QEMU's fdmon-io_uring does, would let the fd win
 * over io_poll for work both can see, and keep busy-polling going while a
 * handler without io_poll is registered, which is documented to disable it.
 * File I/O is different: no io_poll sees it, so a file completion in the
 * CQ (or an entry still to hand over) does stop busy-polling.
 */
static bool uring_need_wait(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    return aio_poll_disabled(ctx) || uring_file_need_wait(&ue->file);
}

static void uring_flush(AioContext *ctx)
{
    UringEngine *ue = aio_engine_priv(ctx);

    uring_check_plain(ue);
    uring_drain_dirty(ctx, ue);
    if (uring_file_kick(&ue->file)) {
        uring_post_nop(ue); /* they wait for file_dispatch: stay readable */
    }
    for (int i = 0; i < 2; i++) {
        uring_file_arm(ue);
        uring_prepare(ue);
        if (uring_enter(ue, 0) != -EAGAIN) {
            break; /* else a new ring (uring_enter): arm it too */
        }
    }
}

const AioEngineOps aio_engine_io_uring = {
    .version = AIO_ENGINE_OPS_VERSION,
    .name = "io_uring",
    .ctx_priv_size = sizeof(UringEngine),
    .handler_priv_size = 0,
    .probe = uring_probe,
    .init = uring_init,
    .destroy = uring_destroy,
    .update = uring_update,
    .wait = uring_wait,
    .need_wait = uring_need_wait,
    .pollfd = uring_pollfd,
    .flush = uring_flush,
    .file_submit = uring_file_submit,
    .file_cancel = uring_file_cancel,
    .file_dispatch = uring_file_dispatch,
    .file_drain = uring_file_drain,
};
