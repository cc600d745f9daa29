/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The model-based random test's executor and reference model.
 *
 * Operations run against a real AioContext; every callback checks itself
 * against the model, and every aio_poll() ("frame", nested ones included)
 * is checked when it returns.  What is checked is what the headers
 * promise:
 *
 * Bottom halves (aio.h): a BH runs once per request (a schedule while a
 * request stands adds nothing), never after a cancel or a delete, and only
 * in an aio_bh_poll() that started after the request: an aio_poll() that
 * started after the request must have run it by the time it returns, and
 * one that started before must not (a nested aio_poll() does).  Requests
 * made by one thread run in the order they were made.  Not promised, and
 * so not checked (see qemu_bh_schedule() in aio.h): the order of a
 * request made while an earlier request of the same BH may still be
 * queued (cancelled, or also made by the other thread), and when such a
 * request runs; nor how often a BH runs while the helper thread schedules
 * it without waiting (at most once more after the hand-off is joined).
 *
 * Timers (timer.h): a timer fires once per arming, never before its
 * deadline, and always as the earliest armed timer (deadline, then arming
 * order); an aio_poll() returns with no timer left whose deadline had
 * passed when it started.
 *
 * fd handlers (aio.h): io_read runs only while registered (never after
 * removal or replacement) and when its pipe holds data, at most once per
 * aio_poll() level; a handler registered with data at the start of an
 * aio_poll() has run (or was removed or replaced) when it returns.
 *
 * aio_poll() returns true exactly when a callback ran inside it.  Before
 * each top-level aio_poll(), aio_compute_timeout() is 0 exactly when a BH
 * or an expired timer is due, and aio_pending() is true when anything is.
 *
 * The executor is deterministic for a given list of operations (the
 * helper's unwaited one-shots aside, whose callbacks run no queued
 * operations), so that a list can be shrunk and replayed.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <aioctx.h>

#include "model/model.h"

enum { ORIGIN_HOME = 0, ORIGIN_HELPER = 1 };

/* One outstanding request of a BH or a one-shot. */
typedef struct Req {
    bool live;
    bool ambiguous; /* order and timing not promised (see above) */
    bool inflight;  /* made by the helper asynchronously, not joined yet */
    bool joined;    /* was inflight: may already sit in a running slice */
    bool maybe;     /* may have run already: at most one run, not due */
    uint8_t origin;
    uint64_t seq;   /* request counter: runs of one origin are increasing */
    uint64_t frame; /* frames started when the request was made */
} Req;

typedef struct BhSlot {
    QEMUBH *bh;
    uint32_t gen;
    Req req;
    bool stale; /* an earlier request may still be queued */
    uint64_t stale_frame;
    bool async; /* the helper schedules it asynchronously now */
} BhSlot;

#define ONESHOT_RING 4096

typedef struct Oneshot {
    uint64_t id;
    Req req;
    bool async;
    uint32_t live_idx;
} Oneshot;

typedef struct Frame {
    uint64_t start;
    uint64_t callbacks_at_start;
    int64_t now_at_start;
    uint32_t fd_due;
    uint32_t fd_called;
    uint64_t fcalls_at_start[MODEL_FDS];
    uint64_t fchanges_at_start[MODEL_FDS];
} Frame;

#define HELPER_MAX 64

typedef struct HelperJob {
    uint8_t kind;
    QEMUBH *bh;
    uintptr_t id;
} HelperJob;

typedef struct Helper {
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int state; /* 0 idle, 1 posted, 2 done */
    bool quit;
    bool async_pending;
    int n;
    HelperJob job[HELPER_MAX];
} Helper;

#define QUEUE_CAP 1024
#define TIMER_IDLE INT64_MIN

typedef struct Model {
    AioContext *ctx;
    const ModelConfig *cfg;
    ModelResult *res;
    size_t top; /* index of the top-level op running */

    uint64_t frames_started;
    int depth;
    Frame frames[MODEL_MAX_DEPTH];

    uint64_t req_seq;
    uint64_t last_run_seq[2];
    BhSlot bh[MODEL_BHS];

    Oneshot oneshot[ONESHOT_RING];
    uint64_t live_ids[ONESHOT_RING];
    uint32_t nlive;
    uint64_t next_id;

    QEMUTimer timer[MODEL_TIMERS];
    int64_t deadline[MODEL_TIMERS]; /* relative to t0; TIMER_IDLE */
    uint64_t arm_seq[MODEL_TIMERS];
    uint64_t timer_seq;
    int64_t t0, now;

    int rfd[MODEL_FDS], wfd[MODEL_FDS];
    bool reg[MODEL_FDS];
    uint32_t fgen[MODEL_FDS];
    int bytes[MODEL_FDS];
    uint64_t fcalls[MODEL_FDS];
    uint64_t fchanges[MODEL_FDS];

    ModelOp queue[QUEUE_CAP];
    unsigned qhead, qlen;

    Helper helper;
} Model;

static Model *M;

static void __attribute__((noreturn, format(printf, 2, 3)))
model_fail(int kind, const char *fmt, ...)
{
    va_list ap;
    int n;

    M->res->fail = kind;
    M->res->fail_op = M->top;
    n = snprintf(M->res->msg, sizeof(M->res->msg),
                 "op %zu, frame %llu: ", M->top,
                 (unsigned long long)M->frames_started);
    va_start(ap, fmt);
    vsnprintf(M->res->msg + n, sizeof(M->res->msg) - n, fmt, ap);
    va_end(ap);
    _exit(1);
}

/* ---- generation ---- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned rnd(uint64_t *s, unsigned n)
{
    return (unsigned)(splitmix64(s) % n);
}

/* Weights of the kinds; the remote sync kinds come in bursts. */
static const uint8_t op_weight[OP_KINDS] = {
    [OP_BH_NEW] = 6,    [OP_BH_SCHED] = 16,        [OP_BH_CANCEL] = 5,
    [OP_BH_DELETE] = 3, [OP_ONESHOT] = 8,          [OP_TIMER_MOD] = 10,
    [OP_TIMER_DEL] = 3, [OP_TIMER_ANTICIPATE] = 4, [OP_CLOCK_STEP] = 6,
    [OP_FD_ADD] = 4,    [OP_FD_DEL] = 2,           [OP_FD_WRITE] = 8,
    [OP_POLL] = 16,     [OP_POLL_BLOCK] = 3,       [OP_R_SCHED] = 2,
    [OP_R_CANCEL] = 1,  [OP_R_DELETE] = 1,         [OP_R_ONESHOT] = 1,
    [OP_R_ASYNC] = 1,   [OP_R_JOIN] = 1,
};

static ModelOp gen_one(uint64_t *s, int kind, bool in_cb)
{
    ModelOp op = { .kind = kind, .in_cb = in_cb };

    switch (kind) {
    case OP_TIMER_MOD:
    case OP_TIMER_ANTICIPATE:
    case OP_TIMER_DEL:
        op.slot = rnd(s, MODEL_TIMERS);
        op.arg = (int8_t)((int)rnd(s, 46) - 5); /* -5 .. 40 ns from now */
        if (kind == OP_TIMER_DEL) {
            op.arg = 0;
        }
        break;
    case OP_CLOCK_STEP:
        op.arg = (int8_t)rnd(s, 31);
        break;
    case OP_FD_ADD:
    case OP_FD_DEL:
    case OP_FD_WRITE:
        op.slot = rnd(s, MODEL_FDS);
        break;
    case OP_R_ASYNC:
        op.slot = rnd(s, MODEL_BHS);
        op.arg = (int8_t)(1 + rnd(s, 16));
        break;
    case OP_ONESHOT:
    case OP_R_ONESHOT:
    case OP_POLL:
    case OP_POLL_BLOCK:
    case OP_R_JOIN:
        break;
    default:
        op.slot = rnd(s, MODEL_BHS);
        break;
    }
    return op;
}

/*
 * Swarm testing: every SEGMENT operations the weights change (each kind
 * scaled by 0..3, polls never off) and so does the share of operations
 * queued for callbacks, so that one run visits many different mixes.
 */
#define SEGMENT 32768

void model_generate(uint64_t seed, ModelOp *ops, size_t n)
{
    static const uint8_t remote_sync[] = { OP_R_SCHED, OP_R_SCHED, OP_R_CANCEL,
                                           OP_R_DELETE, OP_R_ONESHOT };
    unsigned weight[OP_KINDS], total = 0, cb_share = 5;
    uint64_t s = seed;
    size_t i = 0;

    while (i < n) {
        unsigned w;
        bool in_cb;
        int kind = 0;

        if (i % SEGMENT == 0 || !total) {
            total = 0;
            for (int k = 0; k < OP_KINDS; k++) {
                unsigned scale = rnd(&s, 4);

                if (k == OP_POLL && !scale) {
                    scale = 1;
                }
                weight[k] = i ? op_weight[k] * scale : op_weight[k];
                total += weight[k];
            }
            cb_share = i ? 2 + rnd(&s, 8) : 5;
        }
        w = rnd(&s, total);
        in_cb = rnd(&s, cb_share) == 0;
        while (w >= weight[kind]) {
            w -= weight[kind++];
        }
        ops[i++] = gen_one(&s, kind, in_cb);
        if (kind >= OP_R_SCHED && kind <= OP_R_ONESHOT) {
            /* A burst of remote operations, done in one hand-off. */
            for (unsigned b = rnd(&s, 5); b > 0 && i < n; b--) {
                ops[i++] = gen_one(&s, remote_sync[rnd(&s, 5)], in_cb);
            }
        }
    }
}

/* ---- the helper thread ---- */

static void oneshot_cb(void *opaque);

static void *helper_main(void *opaque)
{
    Helper *h = opaque;

    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->state != 1 && !h->quit) {
            pthread_cond_wait(&h->cond, &h->lock);
        }
        if (h->quit) {
            break;
        }
        pthread_mutex_unlock(&h->lock);
        for (int i = 0; i < h->n; i++) {
            HelperJob *j = &h->job[i];

            switch (j->kind) {
            case OP_R_SCHED:
                qemu_bh_schedule(j->bh);
                break;
            case OP_R_CANCEL:
                qemu_bh_cancel(j->bh);
                break;
            case OP_R_DELETE:
                qemu_bh_delete(j->bh);
                break;
            default: /* OP_R_ONESHOT, OP_R_ASYNC */
                aio_bh_schedule_oneshot(M->ctx, oneshot_cb, (void *)j->id);
                break;
            }
        }
        pthread_mutex_lock(&h->lock);
        h->state = 2;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static void helper_wait_done(Helper *h)
{
    pthread_mutex_lock(&h->lock);
    while (h->state != 2) {
        pthread_cond_wait(&h->cond, &h->lock);
    }
    h->state = 0;
    pthread_mutex_unlock(&h->lock);
}

/* Wait for the asynchronous batch; its one-shots become ordinary requests. */
static void helper_join(void)
{
    Helper *h = &M->helper;

    if (!h->async_pending) {
        return;
    }
    helper_wait_done(h);
    h->async_pending = false;
    for (unsigned s = 0; s < MODEL_BHS; s++) {
        BhSlot *b = &M->bh[s];

        if (!b->async) {
            continue;
        }
        /* Its last request may or may not have run: at most once more. */
        b->async = false;
        b->req = (Req){ .live = true,
                        .ambiguous = true,
                        .maybe = true,
                        .frame = M->frames_started };
        b->stale = true;
        b->stale_frame = M->frames_started;
    }
    for (int i = 0; i < h->n; i++) {
        if (h->job[i].kind != OP_R_ASYNC) {
            continue;
        }
        Oneshot *o = &M->oneshot[h->job[i].id % ONESHOT_RING];

        if (o->id == h->job[i].id && o->req.live) {
            o->req.inflight = false;
            o->req.joined = true;
            o->req.frame = M->frames_started;
        }
    }
    h->n = 0;
}

static void helper_post(bool wait)
{
    Helper *h = &M->helper;

    M->res->remote_ops += h->n;
    pthread_mutex_lock(&h->lock);
    h->state = 1;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    if (wait) {
        helper_wait_done(h);
        h->n = 0;
    } else {
        h->async_pending = true;
    }
}

/* ---- requests ---- */

static void req_make(Req *r, int origin, bool ambiguous)
{
    *r = (Req){ .live = true,
                .ambiguous = ambiguous,
                .origin = origin,
                .seq = ++M->req_seq,
                .frame = M->frames_started };
}

/* Checks for a BH or one-shot callback that is running now. */
static void req_run(Req *r, const char *what, unsigned id)
{
    if (!r->live) {
        model_fail(MODEL_FAIL_BH_UNEXPECTED,
                   "%s %u ran without a standing request (never scheduled, "
                   "cancelled, or run already)",
                   what, id);
    }
    if (!r->ambiguous && !r->inflight && !r->joined &&
        r->frame >= M->frames_started) {
        model_fail(MODEL_FAIL_BH_EARLY,
                   "%s %u ran in the aio_bh_poll() during which it was "
                   "scheduled (no aio_poll() started since)",
                   what, id);
    }
    M->res->bh_runs++;
    M->res->bh_unordered += r->ambiguous;
    if (!r->ambiguous) {
        if (r->seq <= M->last_run_seq[r->origin]) {
            model_fail(MODEL_FAIL_BH_ORDER,
                       "%s %u (request #%llu from the %s thread) ran after "
                       "request #%llu of the same thread",
                       what, id, (unsigned long long)r->seq,
                       r->origin ? "helper" : "home",
                       (unsigned long long)M->last_run_seq[r->origin]);
        }
        M->last_run_seq[r->origin] = r->seq;
    }
    r->live = false;
}

static void oneshot_unlive(Oneshot *o)
{
    uint32_t i = o->live_idx;
    uint64_t last = M->live_ids[--M->nlive];

    M->live_ids[i] = last;
    M->oneshot[last % ONESHOT_RING].live_idx = i;
}

/* A fresh one-shot id whose ring entry is free, or 0 if there is none. */
static uint64_t oneshot_new(int origin, bool async)
{
    uint64_t id = ++M->next_id;
    Oneshot *o = &M->oneshot[id % ONESHOT_RING];

    if (o->req.live) {
        return 0;
    }
    o->id = id;
    o->async = async;
    req_make(&o->req, origin, false);
    o->req.inflight = async;
    o->live_idx = M->nlive;
    M->live_ids[M->nlive++] = id;
    return id;
}

/* ---- callbacks ---- */

static void exec_op(ModelOp op);

static void cb_enter(void)
{
    if (M->depth == 0) {
        model_fail(MODEL_FAIL_OUTSIDE, "a callback ran outside aio_poll()");
    }
    M->res->callbacks++;
}

/* Run up to two queued operations from inside this callback. */
static void cb_ops(void)
{
    for (int i = 0; i < 2 && M->qlen; i++) {
        ModelOp op = M->queue[M->qhead];

        M->qhead = (M->qhead + 1) % QUEUE_CAP;
        M->qlen--;
        exec_op(op);
    }
}

static void bh_cb(void *opaque)
{
    uintptr_t v = (uintptr_t)opaque;
    unsigned s = v & 0xff;
    uint32_t gen = (uint32_t)(v >> 8);
    BhSlot *b = &M->bh[s];

    cb_enter();
    if (!b->bh || b->gen != gen) {
        model_fail(MODEL_FAIL_BH_UNEXPECTED, "BH %u ran after qemu_bh_delete()",
                   s);
    }
    if (b->async) {
        /* Scheduled by the helper right now: any number of runs so far. */
        b->req.live = false;
        M->res->bh_runs++;
        M->res->bh_unordered++;
        return;
    }
    if (b->req.ambiguous) {
        /* It ran from one of its queue entries; the other may remain. */
        b->stale = true;
        b->stale_frame = M->frames_started;
    }
    req_run(&b->req, "BH", s);
    cb_ops();
}

static void oneshot_cb(void *opaque)
{
    uint64_t id = (uintptr_t)opaque;
    Oneshot *o = &M->oneshot[id % ONESHOT_RING];
    bool async;

    cb_enter();
    if (o->id != id) {
        model_fail(MODEL_FAIL_BH_UNEXPECTED, "one-shot %llu ran twice",
                   (unsigned long long)id);
    }
    req_run(&o->req, "one-shot", (unsigned)id);
    async = o->async;
    oneshot_unlive(o);
    /* The helper's asynchronous one-shots run at no fixed time. */
    if (!async) {
        cb_ops();
    }
}

static void timer_cb(void *opaque)
{
    unsigned i = (uintptr_t)opaque;
    int64_t clock = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - M->t0;

    cb_enter();
    if (clock != M->now) {
        model_fail(MODEL_FAIL_TIMER_EARLY,
                   "virtual clock at %lld in a timer callback, model says %lld",
                   (long long)clock, (long long)M->now);
    }
    if (M->deadline[i] == TIMER_IDLE) {
        model_fail(MODEL_FAIL_TIMER_EARLY, "timer %u fired while not armed", i);
    }
    if (M->deadline[i] > M->now) {
        model_fail(MODEL_FAIL_TIMER_EARLY,
                   "timer %u fired at %lld before its deadline %lld", i,
                   (long long)M->now, (long long)M->deadline[i]);
    }
    for (unsigned j = 0; j < MODEL_TIMERS; j++) {
        if (j == i || M->deadline[j] == TIMER_IDLE) {
            continue;
        }
        if (M->deadline[j] < M->deadline[i] ||
            (M->deadline[j] == M->deadline[i] &&
             M->arm_seq[j] < M->arm_seq[i])) {
            model_fail(MODEL_FAIL_TIMER_ORDER,
                       "timer %u (deadline %lld) fired before timer %u "
                       "(deadline %lld, armed %s)",
                       i, (long long)M->deadline[i], j,
                       (long long)M->deadline[j],
                       M->deadline[j] == M->deadline[i] ? "earlier" : "too");
        }
    }
    M->deadline[i] = TIMER_IDLE;
    M->res->timer_fires++;
    cb_ops();
}

static void fd_cb(void *opaque)
{
    uintptr_t v = (uintptr_t)opaque;
    unsigned i = v & 0xff;
    uint32_t gen = (uint32_t)(v >> 8);
    Frame *f = &M->frames[M->depth - 1];
    char buf[64];
    ssize_t n;

    cb_enter();
    if (!M->reg[i] || M->fgen[i] != gen) {
        model_fail(MODEL_FAIL_FD_UNEXPECTED,
                   "handler of pipe %u ran after it was %s", i,
                   M->reg[i] ? "replaced" : "removed");
    }
    if (f->fd_called & (1u << i)) {
        model_fail(MODEL_FAIL_FD_TWICE,
                   "handler of pipe %u ran twice in one aio_poll()", i);
    }
    if (M->bytes[i] == 0) {
        model_fail(MODEL_FAIL_FD_UNEXPECTED,
                   "handler of pipe %u ran with nothing to read", i);
    }
    do {
        n = read(M->rfd[i], buf, sizeof(buf));
    } while (n < 0 && errno == EINTR);
    if (n != M->bytes[i]) {
        model_fail(MODEL_FAIL_FD_UNEXPECTED,
                   "pipe %u: read %zd bytes, the model wrote %d", i, n,
                   M->bytes[i]);
    }
    M->bytes[i] = 0;
    M->fcalls[i]++;
    M->res->fd_calls++;
    f->fd_called |= 1u << i;
    cb_ops();
}

/* ---- frames (aio_poll calls) ---- */

/* Does the model know of work that makes a blocking aio_poll return? */
static bool work_due(void)
{
    for (unsigned s = 0; s < MODEL_BHS; s++) {
        if (M->bh[s].req.live && !M->bh[s].req.maybe && !M->bh[s].async) {
            return true;
        }
    }
    for (uint32_t k = 0; k < M->nlive; k++) {
        if (!M->oneshot[M->live_ids[k] % ONESHOT_RING].req.inflight) {
            return true;
        }
    }
    for (unsigned i = 0; i < MODEL_TIMERS; i++) {
        if (M->deadline[i] != TIMER_IDLE && M->deadline[i] <= M->now) {
            return true;
        }
    }
    for (unsigned i = 0; i < MODEL_FDS; i++) {
        if (M->reg[i] && M->bytes[i]) {
            return true;
        }
    }
    return false;
}

/*
 * Outside aio_poll(): aio_compute_timeout() is 0 exactly when a BH is due
 * or a timer expired, and aio_pending() is true when a BH, a timer or a
 * registered readable fd is due (it may also see the context's own
 * wake-up, so its false answer is not checked).  Skipped while the
 * helper's asynchronous requests make the answer uncertain.
 */
static void check_pending(void)
{
    bool bh = false, timer = false, fd = false;
    int64_t timeout;

    if (M->helper.async_pending) {
        return;
    }
    for (unsigned s = 0; s < MODEL_BHS; s++) {
        if (M->bh[s].req.live && M->bh[s].req.maybe) {
            return;
        }
        bh |= M->bh[s].req.live;
    }
    bh |= M->nlive != 0;
    for (unsigned i = 0; i < MODEL_TIMERS; i++) {
        timer |= M->deadline[i] != TIMER_IDLE && M->deadline[i] <= M->now;
    }
    for (unsigned i = 0; i < MODEL_FDS; i++) {
        fd |= M->reg[i] && M->bytes[i];
    }
    timeout = aio_compute_timeout(M->ctx);
    if ((timeout == 0) != (bh || timer)) {
        model_fail(MODEL_FAIL_PENDING,
                   "aio_compute_timeout() is %lld with %s BH due and %s "
                   "expired timer",
                   (long long)timeout, bh ? "a" : "no", timer ? "an" : "no");
    }
    if ((bh || timer || fd) && !aio_pending(M->ctx)) {
        model_fail(MODEL_FAIL_PENDING,
                   "aio_pending() is false with %s BH, %s timer and %s fd due",
                   bh ? "a" : "no", timer ? "a" : "no", fd ? "an" : "no");
    }
}

static void frame_check_end(Frame *f, bool ret)
{
    bool ran = M->res->callbacks != f->callbacks_at_start;

    if (ret != ran) {
        model_fail(MODEL_FAIL_PROGRESS,
                   "aio_poll() returned %s but %s callback ran",
                   ret ? "true" : "false", ran ? "a" : "no");
    }
    for (unsigned s = 0; s < MODEL_BHS; s++) {
        BhSlot *b = &M->bh[s];

        if (b->req.live && b->req.maybe && b->req.frame < f->start) {
            b->req.live = false; /* settled: it had run before the join */
        }
        if (b->req.live && !b->async && b->req.frame < f->start) {
            model_fail(MODEL_FAIL_BH_MISSED,
                       "BH %u was scheduled before this aio_poll() but did "
                       "not run in it",
                       s);
        }
        if (b->stale && b->stale_frame < f->start) {
            b->stale = false; /* this aio_bh_poll drained older entries */
        }
    }
    for (uint32_t k = 0; k < M->nlive; k++) {
        Oneshot *o = &M->oneshot[M->live_ids[k] % ONESHOT_RING];

        if (!o->req.inflight && o->req.frame < f->start) {
            model_fail(MODEL_FAIL_BH_MISSED,
                       "one-shot %llu was scheduled before this aio_poll() "
                       "but did not run in it",
                       (unsigned long long)o->id);
        }
    }
    for (unsigned i = 0; i < MODEL_TIMERS; i++) {
        if (M->deadline[i] != TIMER_IDLE && M->deadline[i] <= f->now_at_start) {
            model_fail(MODEL_FAIL_TIMER_MISSED,
                       "timer %u (deadline %lld) had expired when aio_poll() "
                       "started (clock %lld) and did not fire",
                       i, (long long)M->deadline[i],
                       (long long)f->now_at_start);
        }
    }
    for (unsigned i = 0; i < MODEL_FDS; i++) {
        if ((f->fd_due & (1u << i)) && M->fcalls[i] == f->fcalls_at_start[i] &&
            M->fchanges[i] == f->fchanges_at_start[i]) {
            model_fail(MODEL_FAIL_FD_MISSED,
                       "pipe %u was registered and readable when aio_poll() "
                       "started, but its handler did not run",
                       i);
        }
    }
}

static void do_poll(bool blocking)
{
    Frame *f;
    bool ret;

    if (M->depth >= MODEL_MAX_DEPTH) {
        return;
    }
    if (blocking && !work_due()) {
        blocking = false;
    }
    M->res->nested_polls += M->depth > 0;
    f = &M->frames[M->depth++];
    f->start = ++M->frames_started;
    f->callbacks_at_start = M->res->callbacks;
    f->now_at_start = M->now;
    f->fd_due = 0;
    f->fd_called = 0;
    for (unsigned i = 0; i < MODEL_FDS; i++) {
        if (M->reg[i] && M->bytes[i]) {
            f->fd_due |= 1u << i;
        }
        f->fcalls_at_start[i] = M->fcalls[i];
        f->fchanges_at_start[i] = M->fchanges[i];
    }
    ret = aio_poll(M->ctx, blocking);
    frame_check_end(f, ret);
    M->depth--;
}

/* ---- operations ---- */

static void bh_schedule_model(BhSlot *b, int origin)
{
    if (b->req.live && b->req.maybe) {
        /* One run now, whether or not the undecided one is still queued. */
        req_make(&b->req, origin, true);
        return;
    }
    if (b->req.live) {
        /* Coalesced; from the other thread it may be queued twice. */
        if (b->req.origin != origin) {
            b->stale = true;
            b->stale_frame = M->frames_started;
        }
        return;
    }
    req_make(&b->req, origin, b->stale);
}

static void bh_cancel_model(BhSlot *b, bool home)
{
    if (!b->req.live) {
        return;
    }
    if (home && M->cfg->plant_bug) {
        return; /* the planted bug: the model forgets this cancel */
    }
    b->req.live = false;
    b->stale = true;
    b->stale_frame = M->frames_started;
}

static void bh_delete_model(BhSlot *b)
{
    b->bh = NULL;
    b->gen++;
    b->req.live = false;
    b->stale = false;
}

/* Add one synchronous helper operation to the batch; false if a no-op. */
static bool remote_add(ModelOp op)
{
    Helper *h = &M->helper;
    BhSlot *b = &M->bh[op.slot % MODEL_BHS];
    HelperJob *j = &h->job[h->n];

    j->kind = op.kind;
    if (op.kind == OP_R_ONESHOT) {
        j->id = oneshot_new(ORIGIN_HELPER, false);
        if (!j->id) {
            return false;
        }
        j->bh = NULL;
        h->n++;
        return true;
    }
    if (!b->bh) {
        return false;
    }
    j->bh = b->bh;
    switch (op.kind) {
    case OP_R_SCHED:
        bh_schedule_model(b, ORIGIN_HELPER);
        break;
    case OP_R_CANCEL:
        bh_cancel_model(b, false);
        break;
    default:
        bh_delete_model(b);
        break;
    }
    h->n++;
    return true;
}

static bool is_remote_sync(const ModelOp *op)
{
    return op->kind >= OP_R_SCHED && op->kind <= OP_R_ONESHOT;
}

static void remote_async(int count, unsigned slot)
{
    Helper *h = &M->helper;
    BhSlot *b = &M->bh[slot % MODEL_BHS];

    helper_join();
    for (int i = 0; i < count && h->n < HELPER_MAX; i++) {
        uint64_t id;

        if (i == count / 2 && b->bh) {
            /* One BH among the one-shots, racing with the home thread. */
            b->async = true;
            h->job[h->n++] = (HelperJob){ .kind = OP_R_SCHED, .bh = b->bh };
            continue;
        }
        id = oneshot_new(ORIGIN_HELPER, true);

        if (!id) {
            break;
        }
        h->job[h->n++] = (HelperJob){ .kind = OP_R_ASYNC, .id = id };
    }
    if (h->n) {
        helper_post(false);
    }
}

static void exec_op(ModelOp op)
{
    BhSlot *b = &M->bh[op.slot % MODEL_BHS];
    unsigned t = op.slot % MODEL_TIMERS;
    unsigned fd = op.slot % MODEL_FDS;

    M->res->ops_run++;
    switch (op.kind) {
    case OP_BH_NEW:
        if (!b->bh) {
            uintptr_t v = ((uintptr_t)b->gen << 8) | (op.slot % MODEL_BHS);

            b->bh = aio_bh_new(M->ctx, bh_cb, (void *)v);
            b->req.live = false;
            b->stale = false;
        }
        break;
    case OP_BH_SCHED:
        if (b->bh) {
            bh_schedule_model(b, ORIGIN_HOME);
            qemu_bh_schedule(b->bh);
        }
        break;
    case OP_BH_CANCEL:
        if (b->bh) {
            bh_cancel_model(b, true);
            qemu_bh_cancel(b->bh);
        }
        break;
    case OP_BH_DELETE:
        if (b->async) {
            helper_join(); /* never delete what another thread schedules */
        }
        if (b->bh) {
            QEMUBH *bh = b->bh;

            bh_delete_model(b);
            qemu_bh_delete(bh);
        }
        break;
    case OP_ONESHOT: {
        uint64_t id = oneshot_new(ORIGIN_HOME, false);

        if (id) {
            aio_bh_schedule_oneshot(M->ctx, oneshot_cb, (void *)(uintptr_t)id);
        }
        break;
    }
    case OP_TIMER_MOD:
        M->deadline[t] = M->now + op.arg;
        M->arm_seq[t] = ++M->timer_seq;
        timer_mod_ns(&M->timer[t], M->t0 + M->deadline[t]);
        break;
    case OP_TIMER_ANTICIPATE:
        /* Only ever earlier; moving it counts as arming. */
        if (M->deadline[t] == TIMER_IDLE || M->now + op.arg < M->deadline[t]) {
            M->deadline[t] = M->now + op.arg;
            M->arm_seq[t] = ++M->timer_seq;
        }
        timer_mod_anticipate_ns(&M->timer[t], M->t0 + M->now + op.arg);
        break;
    case OP_TIMER_DEL:
        M->deadline[t] = TIMER_IDLE;
        timer_del(&M->timer[t]);
        break;
    case OP_CLOCK_STEP: {
        int64_t got;

        M->now += op.arg;
        got = qemu_clock_advance_virtual_time(M->t0 + M->now);
        if (got != M->t0 + M->now) {
            model_fail(MODEL_FAIL_TIMER_EARLY,
                       "qemu_clock_advance_virtual_time() returned %lld, "
                       "expected %lld",
                       (long long)(got - M->t0), (long long)M->now);
        }
        break;
    }
    case OP_FD_ADD: {
        uintptr_t v;

        M->fgen[fd]++;
        M->fchanges[fd]++;
        M->reg[fd] = true;
        v = ((uintptr_t)M->fgen[fd] << 8) | fd;
        aio_set_fd_handler(M->ctx, M->rfd[fd], fd_cb, NULL, NULL, NULL,
                           (void *)v);
        break;
    }
    case OP_FD_DEL:
        if (M->reg[fd]) {
            M->fgen[fd]++;
            M->fchanges[fd]++;
            M->reg[fd] = false;
            aio_set_fd_handler(M->ctx, M->rfd[fd], NULL, NULL, NULL, NULL,
                               NULL);
        }
        break;
    case OP_FD_WRITE:
        if (M->bytes[fd] < 32) {
            ssize_t n;

            do {
                n = write(M->wfd[fd], "x", 1);
            } while (n < 0 && errno == EINTR);
            if (n != 1) {
                model_fail(MODEL_FAIL_SETUP, "write to pipe %u: %s", fd,
                           strerror(errno));
            }
            M->bytes[fd]++;
        }
        break;
    case OP_POLL:
    case OP_POLL_BLOCK:
        if (M->depth == 0) {
            check_pending();
        }
        do_poll(op.kind == OP_POLL_BLOCK);
        break;
    case OP_R_SCHED:
    case OP_R_CANCEL:
    case OP_R_DELETE:
    case OP_R_ONESHOT:
        helper_join();
        if (remote_add(op)) {
            helper_post(true);
        }
        break;
    case OP_R_ASYNC:
        remote_async(op.arg, op.slot);
        break;
    case OP_R_JOIN:
        helper_join();
        break;
    default:
        break;
    }
}

/* ---- a run ---- */

static void model_setup(void)
{
    Error *err = NULL;

    M->ctx = aio_context_new(&err);
    if (!M->ctx) {
        model_fail(MODEL_FAIL_SETUP, "aio_context_new: %s",
                   err ? error_get_pretty(err) : "?");
    }
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    M->t0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    for (unsigned i = 0; i < MODEL_TIMERS; i++) {
        aio_timer_init(M->ctx, &M->timer[i], QEMU_CLOCK_VIRTUAL, SCALE_NS,
                       timer_cb, (void *)(uintptr_t)i);
        M->deadline[i] = TIMER_IDLE;
    }
    for (unsigned i = 0; i < MODEL_FDS; i++) {
        int p[2];

        if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
            model_fail(MODEL_FAIL_SETUP, "pipe2: %s", strerror(errno));
        }
        M->rfd[i] = p[0];
        M->wfd[i] = p[1];
    }
    pthread_mutex_init(&M->helper.lock, NULL);
    pthread_cond_init(&M->helper.cond, NULL);
    if (pthread_create(&M->helper.th, NULL, helper_main, &M->helper)) {
        model_fail(MODEL_FAIL_SETUP, "pthread_create failed");
    }
    /* Take the home thread and eat the creation's wake-up: no callbacks. */
    aio_poll(M->ctx, false);
}

static void model_teardown(void)
{
    Helper *h = &M->helper;

    pthread_mutex_lock(&h->lock);
    h->quit = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->th, NULL);
    for (unsigned i = 0; i < MODEL_FDS; i++) {
        if (M->reg[i]) {
            aio_set_fd_handler(M->ctx, M->rfd[i], NULL, NULL, NULL, NULL, NULL);
        }
        close(M->rfd[i]);
        close(M->wfd[i]);
    }
    for (unsigned s = 0; s < MODEL_BHS; s++) {
        if (M->bh[s].bh) {
            qemu_bh_delete(M->bh[s].bh);
        }
    }
    for (unsigned i = 0; i < MODEL_TIMERS; i++) {
        timer_deinit(&M->timer[i]);
    }
    aio_context_unref(M->ctx);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
}

int model_run(const ModelOp *ops, size_t n, const ModelConfig *cfg,
              ModelResult *res)
{
    Model *m = calloc(1, sizeof(*m));

    if (!m) {
        abort();
    }
    memset(res, 0, sizeof(*res));
    M = m;
    M->cfg = cfg;
    M->res = res;
    model_setup();
    for (size_t i = 0; i < n; i++) {
        M->top = i;
        res->fail_op = i;
        if (ops[i].in_cb) {
            if (M->qlen < QUEUE_CAP) {
                M->queue[(M->qhead + M->qlen) % QUEUE_CAP] = ops[i];
                M->qlen++;
            }
            continue;
        }
        if (is_remote_sync(&ops[i])) {
            /* Consecutive top-level remote operations: one hand-off. */
            helper_join();
            for (; i < n && !ops[i].in_cb && is_remote_sync(&ops[i]) &&
                   M->helper.n < HELPER_MAX;
                 i++) {
                M->top = i;
                res->ops_run++;
                remote_add(ops[i]);
            }
            i--;
            if (M->helper.n) {
                helper_post(true);
            }
            continue;
        }
        exec_op(ops[i]);
    }
    /* The end: what is due runs in the next aio_poll (checked there). */
    M->top = n;
    helper_join();
    M->qlen = 0;
    do_poll(false);
    do_poll(false);
    model_teardown();
    M = NULL;
    free(m);
    return res->fail;
}
