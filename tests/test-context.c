/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Contexts: engine selection, AIOCTX_ENGINE, reference counting and
 * destruction, the acquire/release lock, the per-thread current context,
 * many contexts at once, and no fd leaks across create/destroy.
 */
#define _GNU_SOURCE /* pipe2, mkostemp */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-util.h"

static const char *const known_engines[] = { "poll", "epoll" };

static void close_pair(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
}

static void remove_fd(AioContext *ctx, int fd)
{
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
}

static void count_cb(void *opaque)
{
    int *n = opaque;

    (*n)++;
}

static void count_notifier_cb(EventNotifier *e)
{
    (void)e;
    ck_abort_msg("a notifier callback ran during destruction");
}

static bool never_ready_poll(void *opaque)
{
    (void)opaque;
    return false;
}

static AioContext *ctx_with_engine(const char *engine, Error **errp)
{
    AioContextOptions opts = { .engine = engine };

    return aio_context_new_with_options(&opts, errp);
}

/* A BH and a pipe byte both reach the context's callbacks. */
typedef struct {
    int p[2];
    int reads;
    int bhs;
} Smoke;

static void smoke_read_cb(void *opaque)
{
    Smoke *s = opaque;
    char ch;

    while (read(s->p[0], &ch, 1) == 1) {
        s->reads++;
    }
}

static void smoke_test(AioContext *ctx)
{
    Smoke s = { 0 };

    make_pipe(s.p);
    aio_set_fd_handler(ctx, s.p[0], smoke_read_cb, NULL, NULL, NULL, &s);
    ck_assert_int_eq(write(s.p[1], "x", 1), 1);
    aio_bh_schedule_oneshot(ctx, count_cb, &s.bhs);
    for (int i = 0; i < 5 && (s.reads == 0 || s.bhs == 0); i++) {
        ck_assert(aio_poll(ctx, true));
    }
    ck_assert_int_eq(s.reads, 1);
    ck_assert_int_eq(s.bhs, 1);
    remove_fd(ctx, s.p[0]);
    close_pair(s.p);
}

/* ---- engines ---- */

START_TEST(test_engine_available)
{
    ck_assert(aio_engine_available("poll"));
    ck_assert(aio_engine_available("epoll"));
    ck_assert(aio_engine_available("auto"));
    ck_assert(!aio_engine_available("bogus"));
    ck_assert(!aio_engine_available("Poll"));
    ck_assert(!aio_engine_available(""));
    ck_assert(!aio_engine_available(NULL));
}
END_TEST

START_TEST(test_engine_by_name)
{
    for (size_t i = 0; i < 2; i++) {
        Error *err = NULL;
        AioContext *ctx = ctx_with_engine(known_engines[i], &err);

        ck_assert_msg(ctx != NULL, "engine %s: %s", known_engines[i],
                      err ? error_get_pretty(err) : "(no error)");
        ck_assert_ptr_null(err);
        ck_assert_str_eq(aio_context_get_engine_name(ctx), known_engines[i]);
        smoke_test(ctx);
        aio_context_unref(ctx);
    }
}
END_TEST

START_TEST(test_engine_auto)
{
    Error *err = NULL;
    AioContext *ctx = ctx_with_engine("auto", &err);
    const char *name;

    ck_assert_ptr_nonnull(ctx);
    name = aio_context_get_engine_name(ctx);
    ck_assert_ptr_nonnull(name);
    ck_assert(aio_engine_available(name));
    ck_assert_str_ne(name, "auto");
    smoke_test(ctx);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_unknown_engine)
{
    Error *err = NULL;
    AioContext *ctx = ctx_with_engine("bogus", &err);
    const char *msg;

    ck_assert_ptr_null(ctx);
    ck_assert_ptr_nonnull(err);
    msg = error_get_pretty(err);
    ck_assert_msg(strstr(msg, "unknown engine") != NULL, "message: %s", msg);
    ck_assert_msg(strstr(msg, "bogus") != NULL, "message: %s", msg);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_msg(strstr(msg, known_engines[i]) != NULL,
                      "message '%s' does not list %s", msg, known_engines[i]);
    }
    error_free(err);

    /* No errp: still just NULL. */
    ck_assert_ptr_null(ctx_with_engine("bogus", NULL));

    /* Nothing was broken: contexts still come up. */
    ctx = test_ctx_new();
    smoke_test(ctx);
    aio_context_unref(ctx);
}
END_TEST

START_TEST(test_env_engine)
{
    const char *env = getenv("AIOCTX_ENGINE");
    char *saved = env ? strdup(env) : NULL;
    AioContext *ctx = test_ctx_new();
    Error *err = NULL;

    /* ctest runs each suite once per engine with AIOCTX_ENGINE set. */
    if (saved && *saved) {
        ck_assert_str_eq(aio_context_get_engine_name(ctx), saved);
    } else {
        ck_assert(aio_engine_available(aio_context_get_engine_name(ctx)));
    }
    aio_context_unref(ctx);

    for (size_t i = 0; i < 2; i++) {
        setenv("AIOCTX_ENGINE", known_engines[i], 1);
        ctx = test_ctx_new();
        ck_assert_str_eq(aio_context_get_engine_name(ctx), known_engines[i]);
        aio_context_unref(ctx);
        /* An empty options engine means "the default" too. */
        ctx = ctx_with_engine("", &err);
        ck_assert_ptr_nonnull(ctx);
        ck_assert_str_eq(aio_context_get_engine_name(ctx), known_engines[i]);
        aio_context_unref(ctx);
    }

    /* An unknown name in the environment is an error, not a fallback. */
    setenv("AIOCTX_ENGINE", "bogus", 1);
    ck_assert_ptr_null(aio_context_new(&err));
    ck_assert_ptr_nonnull(err);
    ck_assert(strstr(error_get_pretty(err), "unknown engine") != NULL);
    error_free(err);
    err = NULL;
    /* An explicit engine wins over the environment. */
    ctx = ctx_with_engine("poll", &err);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_str_eq(aio_context_get_engine_name(ctx), "poll");
    aio_context_unref(ctx);

    if (saved) {
        setenv("AIOCTX_ENGINE", saved, 1);
    } else {
        unsetenv("AIOCTX_ENGINE");
    }
    free(saved);
}
END_TEST

/* ---- references and destruction ---- */

START_TEST(test_ref_unref)
{
    AioContext *ctx = test_ctx_new();

    aio_context_ref(ctx);
    aio_context_ref(ctx);
    aio_context_unref(ctx);
    aio_context_unref(ctx);
    smoke_test(ctx); /* one reference left: still alive */
    aio_context_unref(ctx);
    aio_context_unref(NULL); /* harmless */
}
END_TEST

static void *unref_thread(void *opaque)
{
    aio_context_unref(opaque);
    return NULL;
}

START_TEST(test_last_unref_in_other_thread)
{
    AioContext *ctx = test_ctx_new();
    int runs = 0;
    pthread_t th;

    aio_context_ref(ctx);
    smoke_test(ctx);
    aio_context_unref(ctx);
    /* A scheduled BH must not run when the other thread destroys it. */
    aio_bh_schedule_oneshot(ctx, count_cb, &runs);
    pthread_create(&th, NULL, unref_thread, ctx);
    pthread_join(th, NULL);
    ck_assert_int_eq(runs, 0);
}
END_TEST

typedef struct {
    int bh_runs;
    int reads;
    int writes;
    int poll_readys;
} Witness;

static void witness_bh(void *opaque)
{
    ((Witness *)opaque)->bh_runs++;
}

static void witness_read(void *opaque)
{
    ((Witness *)opaque)->reads++;
}

static void witness_write(void *opaque)
{
    ((Witness *)opaque)->writes++;
}

static void witness_poll_ready(void *opaque)
{
    ((Witness *)opaque)->poll_readys++;
}

START_TEST(test_destroy_frees_and_runs_nothing)
{
    AioContext *ctx = test_ctx_new();
    Witness w = { 0 };
    EventNotifier e;
    QEMUBH *scheduled, *idle;
    int p[2], sv[2], q[2];
    Error *err = NULL;

    /* BHs in every state. */
    scheduled = aio_bh_new(ctx, witness_bh, &w);
    qemu_bh_schedule(scheduled);
    (void)aio_bh_new(ctx, witness_bh, &w); /* never scheduled */
    idle = aio_bh_new(ctx, witness_bh, &w);
    qemu_bh_schedule_idle(idle);
    for (int i = 0; i < 50; i++) {
        aio_bh_schedule_oneshot(ctx, witness_bh, &w);
    }
    qemu_bh_delete(aio_bh_new(ctx, witness_bh, &w)); /* deleted, unreaped */

    /* Handlers that are ready right now. */
    make_pipe(p);
    ck_assert_int_eq(write(p[1], "r", 1), 1);
    aio_set_fd_handler(ctx, p[0], witness_read, NULL, NULL, NULL, &w);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    aio_set_fd_handler(ctx, sv[0], witness_read, witness_write, NULL, NULL,
                       &w);
    make_pipe(q);
    aio_set_fd_handler(ctx, q[0], witness_read, NULL, never_ready_poll,
                       witness_poll_ready, &w);
    ck_assert_int_eq(event_notifier_init(&e, 1), 0);
    aio_set_event_notifier(ctx, &e, count_notifier_cb, NULL, NULL);
    aio_context_set_poll_params(ctx, 1000000, 0, 0, &err);
    ck_assert_ptr_null(err);

    aio_context_unref(ctx); /* ASan reports anything not freed */
    ck_assert_int_eq(w.bh_runs, 0);
    ck_assert_int_eq(w.reads, 0);
    ck_assert_int_eq(w.writes, 0);
    ck_assert_int_eq(w.poll_readys, 0);

    /* The caller's fds were left open and untouched. */
    ck_assert_int_ge(fcntl(p[0], F_GETFD), 0);
    ck_assert_int_ge(fcntl(sv[0], F_GETFD), 0);
    ck_assert_int_ge(fcntl(q[0], F_GETFD), 0);
    ck_assert_int_eq(event_notifier_test_and_clear(&e), 1);
    event_notifier_cleanup(&e);
    close_pair(p);
    close_pair(sv);
    close_pair(q);
}
END_TEST

/* ---- aio_context_acquire / release ---- */

typedef struct {
    AioContext *ctx;
    bool owned; /* atomic: the other thread holds the lock */
} Owner;

static void *acquire_thread(void *opaque)
{
    Owner *o = opaque;

    aio_context_acquire(o->ctx);
    __atomic_store_n(&o->owned, true, __ATOMIC_SEQ_CST);
    aio_context_acquire(o->ctx); /* recursive here too */
    aio_context_release(o->ctx);
    aio_context_release(o->ctx);
    return NULL;
}

START_TEST(test_acquire_release)
{
    AioContext *ctx = test_ctx_new();
    Owner o = { .ctx = ctx };
    pthread_t th;

    aio_context_acquire(ctx);
    aio_context_acquire(ctx); /* recursive: no deadlock */
    aio_context_acquire(ctx);
    pthread_create(&th, NULL, acquire_thread, &o);
    test_sleep_us(50000);
    ck_assert(!__atomic_load_n(&o.owned, __ATOMIC_SEQ_CST));
    aio_context_release(ctx);
    aio_context_release(ctx);
    test_sleep_us(30000);
    ck_assert(!__atomic_load_n(&o.owned, __ATOMIC_SEQ_CST)); /* one left */
    smoke_test(ctx); /* aio_poll does not need or take the lock */
    aio_context_release(ctx);
    pthread_join(th, NULL);
    ck_assert(o.owned);

    /* Free again for this thread. */
    aio_context_acquire(ctx);
    aio_context_release(ctx);
    aio_context_unref(ctx);
}
END_TEST

/* ---- the current context ---- */

typedef struct {
    AioContext *mine;
    AioContext *seen_before;
    AioContext *seen_after;
} CurrentProbe;

static void *current_thread(void *opaque)
{
    CurrentProbe *c = opaque;

    c->seen_before = qemu_get_current_aio_context();
    qemu_set_current_aio_context(c->mine);
    c->seen_after = qemu_get_current_aio_context();
    qemu_set_current_aio_context(NULL);
    return NULL;
}

START_TEST(test_current_context_per_thread)
{
    AioContext *a = test_ctx_new(), *b = test_ctx_new();
    CurrentProbe c = { .mine = b };
    pthread_t th;

    ck_assert_ptr_null(qemu_get_current_aio_context());
    qemu_set_current_aio_context(a);
    ck_assert_ptr_eq(qemu_get_current_aio_context(), a);

    pthread_create(&th, NULL, current_thread, &c);
    pthread_join(th, NULL);
    ck_assert_ptr_null(c.seen_before); /* not inherited */
    ck_assert_ptr_eq(c.seen_after, b);
    ck_assert_ptr_eq(qemu_get_current_aio_context(), a); /* unchanged */

    qemu_set_current_aio_context(NULL);
    ck_assert_ptr_null(qemu_get_current_aio_context());
    aio_context_unref(a);
    aio_context_unref(b);
}
END_TEST

/* ---- many contexts ---- */

enum { NCTX = 50 };

typedef struct {
    AioContext *ctx;
    int p[2];
    int reads;
    int bhs;
    char got;
} Slot;

static void slot_read_cb(void *opaque)
{
    Slot *s = opaque;

    ck_assert_int_eq(read(s->p[0], &s->got, 1), 1);
    s->reads++;
}

static void slot_bh_cb(void *opaque)
{
    Slot *s = opaque;

    s->bhs++;
}

START_TEST(test_many_contexts)
{
    Slot *slots = calloc(NCTX, sizeof(*slots));

    for (int i = 0; i < NCTX; i++) {
        slots[i].ctx = test_ctx_new();
        make_pipe(slots[i].p);
        aio_set_fd_handler(slots[i].ctx, slots[i].p[0], slot_read_cb, NULL,
                           NULL, NULL, &slots[i]);
        test_consume_notify(slots[i].ctx);
    }
    /* Work for the even contexts only; polling one runs only its own. */
    for (int i = 0; i < NCTX; i += 2) {
        char ch = (char)('a' + i % 26);

        ck_assert_int_eq(write(slots[i].p[1], &ch, 1), 1);
        aio_bh_schedule_oneshot(slots[i].ctx, slot_bh_cb, &slots[i]);
    }
    for (int i = 0; i < NCTX; i++) {
        bool busy = i % 2 == 0;

        ck_assert_int_eq(aio_poll(slots[i].ctx, false), busy);
        for (int j = 0; j < 3 && busy && slots[i].reads == 0; j++) {
            aio_poll(slots[i].ctx, false);
        }
        for (int j = 0; j < NCTX; j++) {
            int want = j % 2 == 0 && j <= i;

            ck_assert_int_eq(slots[j].reads, want);
            ck_assert_int_eq(slots[j].bhs, want);
        }
        if (busy) {
            ck_assert_int_eq(slots[i].got, 'a' + i % 26);
        }
    }
    for (int i = 0; i < NCTX; i++) {
        ck_assert(!aio_poll(slots[i].ctx, false));
        remove_fd(slots[i].ctx, slots[i].p[0]);
        close_pair(slots[i].p);
        aio_context_unref(slots[i].ctx);
    }
    free(slots);
}
END_TEST

/* Several threads, each running its own context's loop. */
enum { NTHREADS = 8, PER_THREAD = 500 };

typedef struct {
    AioContext *ctx;
    int runs;        /* home thread only */
    int wrong;       /* BHs that ran with another current context */
    bool stop;
    bool ready;      /* atomic */
} Loop;

static void loop_bh_cb(void *opaque)
{
    Loop *l = opaque;

    if (qemu_get_current_aio_context() != l->ctx) {
        l->wrong++;
    }
    l->runs++;
}

static void loop_stop_cb(void *opaque)
{
    ((Loop *)opaque)->stop = true;
}

static void *loop_thread(void *opaque)
{
    Loop *l = opaque;

    qemu_set_current_aio_context(l->ctx);
    __atomic_store_n(&l->ready, true, __ATOMIC_SEQ_CST);
    while (!l->stop) {
        aio_poll(l->ctx, true);
    }
    qemu_set_current_aio_context(NULL);
    return NULL;
}

START_TEST(test_contexts_in_threads)
{
    Loop loops[NTHREADS];
    pthread_t th[NTHREADS];

    for (int i = 0; i < NTHREADS; i++) {
        loops[i] = (Loop){ .ctx = test_ctx_new() };
        pthread_create(&th[i], NULL, loop_thread, &loops[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        while (!__atomic_load_n(&loops[i].ready, __ATOMIC_SEQ_CST)) {
            test_sleep_us(100);
        }
    }
    for (int n = 0; n < PER_THREAD; n++) {
        for (int i = 0; i < NTHREADS; i++) {
            aio_bh_schedule_oneshot(loops[i].ctx, loop_bh_cb, &loops[i]);
        }
    }
    for (int i = 0; i < NTHREADS; i++) {
        aio_bh_schedule_oneshot(loops[i].ctx, loop_stop_cb, &loops[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(loops[i].runs, PER_THREAD);
        ck_assert_int_eq(loops[i].wrong, 0);
        aio_context_unref(loops[i].ctx);
    }
    ck_assert_ptr_null(qemu_get_current_aio_context());
}
END_TEST

/* ---- fd leaks ---- */

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d))) {
        if (de->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

START_TEST(test_no_fd_leak)
{
    int before = count_open_fds();
    int p[2];

    make_pipe(p);
    for (int i = 0; i < 200; i++) {
        const char *engine = i % 3 == 0 ? NULL : known_engines[i % 2];
        AioContext *ctx = ctx_with_engine(engine, NULL);
        int runs = 0;

        ck_assert_ptr_nonnull(ctx);
        aio_set_fd_handler(ctx, p[0], count_cb, NULL, NULL, NULL, &runs);
        aio_bh_schedule_oneshot(ctx, count_cb, &runs);
        ck_assert(aio_poll(ctx, false));
        if (i % 2) {
            remove_fd(ctx, p[0]); /* the others stay registered */
        }
        aio_context_unref(ctx);
        ck_assert_ptr_null(ctx_with_engine("bogus", NULL));
    }
    close_pair(p);
    ck_assert_int_eq(count_open_fds(), before);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("engines");

    tcase_add_test(tc, test_engine_available);
    tcase_add_test(tc, test_engine_by_name);
    tcase_add_test(tc, test_engine_auto);
    tcase_add_test(tc, test_unknown_engine);
    tcase_add_test(tc, test_env_engine);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_test(tc, test_ref_unref);
    tcase_add_test(tc, test_last_unref_in_other_thread);
    tcase_add_test(tc, test_destroy_frees_and_runs_nothing);
    tcase_add_test(tc, test_no_fd_leak);
    tcase_add_test(tc, test_many_contexts);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_test(tc, test_acquire_release);
    tcase_add_test(tc, test_current_context_per_thread);
    tcase_add_test(tc, test_contexts_in_threads);
    suite_add_tcase(s, tc);
    return test_main(s);
}
