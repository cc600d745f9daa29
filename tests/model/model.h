/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The model-based random test: operations on a real AioContext, checked
 * callback by callback against a small reference model (model-run.c), and
 * a shrinker that reduces a failing sequence by delta debugging, one
 * forked child per attempt (model-shrink.c).
 */
#ifndef AIOCTX_TEST_MODEL_H
#define AIOCTX_TEST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Slots the operations name; an operation on an empty slot does nothing. */
#define MODEL_BHS 12
#define MODEL_TIMERS 8
#define MODEL_FDS 6
/* aio_poll() nests at most this deep (deeper requests do nothing). */
#define MODEL_MAX_DEPTH 4

typedef enum {
    OP_BH_NEW,           /* aio_bh_new() into an empty slot */
    OP_BH_SCHED,         /* qemu_bh_schedule() */
    OP_BH_CANCEL,        /* qemu_bh_cancel() */
    OP_BH_DELETE,        /* qemu_bh_delete(), the slot becomes empty */
    OP_ONESHOT,          /* aio_bh_schedule_oneshot() with a fresh id */
    OP_TIMER_MOD,        /* timer_mod_ns(now + arg) on the virtual clock */
    OP_TIMER_DEL,        /* timer_del() */
    OP_TIMER_ANTICIPATE, /* timer_mod_anticipate_ns(now + arg) */
    OP_CLOCK_STEP,       /* qemu_clock_advance_virtual_time(now + arg) */
    OP_FD_ADD,           /* aio_set_fd_handler() (replaces one that is there) */
    OP_FD_DEL,           /* aio_set_fd_handler(NULL...) */
    OP_FD_WRITE,         /* write one byte into the pipe */
    OP_POLL,             /* aio_poll(ctx, false); nested inside a callback */
    OP_POLL_BLOCK, /* aio_poll(ctx, true) when the model knows work is due */
    OP_R_SCHED,    /* the helper thread: qemu_bh_schedule(), waited for */
    OP_R_CANCEL,   /* the helper thread: qemu_bh_cancel(), waited for */
    OP_R_DELETE,   /* the helper thread: qemu_bh_delete(), waited for */
    OP_R_ONESHOT,  /* the helper thread: a one-shot BH, waited for */
    OP_R_ASYNC,    /* the helper thread: arg one-shots and a schedule of
                    * BH slot, not waited for */
    OP_R_JOIN,     /* wait for the helper's asynchronous batch */
    OP_KINDS
} ModelOpKind;

/*
 * One operation.  in_cb: instead of running at top level, it is queued
 * and run from inside the next callback of the home thread (so a POLL
 * there nests).
 */
typedef struct ModelOp {
    uint8_t kind;
    uint8_t in_cb;
    uint8_t slot;
    int8_t arg;
} ModelOp;

/* Which check failed (a shrink keeps the same kind of failure). */
typedef enum {
    MODEL_OK = 0,
    MODEL_FAIL_BH_UNEXPECTED, /* a BH or one-shot ran without a request */
    MODEL_FAIL_BH_EARLY,      /* ran in the aio_bh_poll it was scheduled in */
    MODEL_FAIL_BH_ORDER,      /* ran out of scheduling order */
    MODEL_FAIL_BH_MISSED,     /* a due BH did not run in aio_poll */
    MODEL_FAIL_TIMER_EARLY,   /* fired before its deadline or while idle */
    MODEL_FAIL_TIMER_ORDER,   /* fired out of deadline order */
    MODEL_FAIL_TIMER_MISSED,  /* an expired timer did not fire */
    MODEL_FAIL_FD_UNEXPECTED, /* a handler ran unregistered or not ready */
    MODEL_FAIL_FD_TWICE,      /* a handler ran twice in one iteration */
    MODEL_FAIL_FD_MISSED,     /* a readable registered fd was not handled */
    MODEL_FAIL_PROGRESS,      /* aio_poll's return value was wrong */
    MODEL_FAIL_OUTSIDE,       /* a callback ran outside aio_poll */
    MODEL_FAIL_SETUP,         /* pipe/context creation failed */
    MODEL_FAIL_PENDING,       /* aio_pending/aio_compute_timeout were wrong */
    MODEL_FAIL_KINDS
} ModelFailKind;

typedef struct ModelConfig {
    /* Plant a bug in the model: a cancel by the home thread is forgotten. */
    bool plant_bug;
} ModelConfig;

/* What a run reports (also through shared memory from a forked child). */
typedef struct ModelResult {
    int fail;       /* ModelFailKind, or 100 + signal, or 200 + exit code */
    size_t fail_op; /* index of the top-level op that was running */
    size_t ops_run; /* operations executed (queued ones included) */
    uint64_t callbacks;
    /* What ran: BH and one-shot runs (unordered ones apart), timer fires,
     * fd handler calls, aio_poll calls nested in callbacks, helper ops. */
    uint64_t bh_runs, bh_unordered, timer_fires, fd_calls, nested_polls;
    uint64_t remote_ops;
    char msg[512];
} ModelResult;

/* Fill ops[0..n) from seed. */
void model_generate(uint64_t seed, ModelOp *ops, size_t n);

/*
 * Run ops on a fresh context (engine from $AIOCTX_ENGINE) in this process
 * and check them.  Stops at the first failed check.  Returns res->fail.
 */
int model_run(const ModelOp *ops, size_t n, const ModelConfig *cfg,
              ModelResult *res);

/* model_run() in a forked child; crashes, aborts and hangs become failures. */
int model_run_forked(const ModelOp *ops, size_t n, const ModelConfig *cfg,
                     unsigned timeout_s, ModelResult *res);

/*
 * Reduce the failing ops[0..*n) (failing with kind want) by delta
 * debugging, for at most budget_s seconds: ops and *n are updated in
 * place.  Returns the number of attempts.
 */
unsigned model_shrink(ModelOp *ops, size_t *n, const ModelConfig *cfg, int want,
                      unsigned budget_s);

/* Readable form: one line per op, "top|cb name slot arg". */
const char *model_op_name(int kind);
const char *model_fail_name(int fail);
int model_write_ops(const char *path, const ModelOp *ops, size_t n);
void model_print_ops(FILE *f, const ModelOp *ops, size_t n);
/* Parse a file written by model_write_ops(); NULL on error (errno set). */
ModelOp *model_read_ops(const char *path, size_t *n);

#endif /* AIOCTX_TEST_MODEL_H */
