/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * W7 of bench-workloads.md: coroutine switches.
 *
 *  pingpong:  one coroutine loops { counter++; yield }; the caller enters
 *             it 10,000,000 times.  ns per switch = elapsed / (2 * 10M).
 *  create-run-destroy(pool): 1,000,000 times create a coroutine whose body
 *             increments a counter and returns, enter it once, recycle it.
 *             libaioctx: qemu_coroutine_create + qemu_coroutine_enter (its
 *             pool); the peers take a 64 KiB stack from a free list.
 *  create-run-destroy(mmap1M): 100,000 times with a fresh 1 MiB mmap stack
 *             + PROT_NONE guard page, unmapped afterwards (QEMU's stack
 *             allocation without a pool).  Peers only: libaioctx always
 *             pools.
 *
 * Peers: asm-switch(floor) (w7_switch.S: callee-saved GPRs + sp),
 * makecontext+sigsetjmp (QEMU's coroutine-ucontext way: makecontext and
 * one swapcontext per creation, sigsetjmp/siglongjmp per switch),
 * ucontext-swapcontext (glibc; a sigprocmask system call per switch).
 *
 * Built twice: bench-coroutine against libaioctx (its default switch), and
 * bench-coroutine-ucontext against a static copy of the library built with
 * the portable ucontext + sigsetjmp backend (it runs libaioctx and the
 * floor only, so its ratio is also from one run).
 *
 * Usage: bench-coroutine [substring of variant/peer...]   (RUNS=n, default 3)
 * BENCH_SCALE=f multiplies the counts (smoke runs).
 */
#undef _FORTIFY_SOURCE /* its longjmp check rejects jumps between stacks */

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <aioctx.h>

#include "bench-util.h"

#define PINGPONG_N 10000000L
#define CREATE_N 1000000L
#define MMAP_N 100000L

/* The counts of this process: the above, times BENCH_SCALE. */
static long pingpong_n = PINGPONG_N;
static long create_n = CREATE_N;
static long mmap_n = MMAP_N;

#define POOL_STACK (64 * 1024)
#define MMAP_STACK (1024 * 1024)

#ifdef BENCH_CO_UCONTEXT_LIB
#define LIB_PEER "libaioctx(ucontext)"
#define RUN_OTHER_PEERS false
#else
#define LIB_PEER "libaioctx(asm)"
#define RUN_OTHER_PEERS true
#endif

#if defined(__x86_64__) || defined(__aarch64__)
#define HAVE_FLOOR 1
#else
#define HAVE_FLOOR 0
#endif

typedef struct W7Run {
    int64_t elapsed_ns;
    long count;
    long expected;
} W7Run;

typedef void W7Fn(W7Run *r);

static double per_op(const W7Run *r, long ops)
{
    return (double)r->elapsed_ns / (double)ops;
}

/* ------------------------------------------------------------------ */
/* stacks                                                              */
/* ------------------------------------------------------------------ */

typedef struct FreeStack {
    struct FreeStack *next;
} FreeStack;

static FreeStack *free_stacks;

static void *pool_stack_get(void)
{
    FreeStack *s = free_stacks;

    if (s) {
        free_stacks = s->next;
        return s;
    }
    s = malloc(POOL_STACK);
    if (!s) {
        abort();
    }
    return s;
}

static void pool_stack_put(void *stack)
{
    FreeStack *s = stack;

    s->next = free_stacks;
    free_stacks = s;
}

static void pool_stacks_free(void)
{
    while (free_stacks) {
        FreeStack *s = free_stacks;

        free_stacks = s->next;
        free(s);
    }
}

/* 1 MiB usable + a guard page below; returns the usable base. */
static void *mmap_stack_get(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, MMAP_STACK + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

    if (map == MAP_FAILED || mprotect(map, page, PROT_NONE) < 0) {
        abort();
    }
    return map + page;
}

static void mmap_stack_put(void *stack)
{
    long page = sysconf(_SC_PAGESIZE);

    munmap((char *)stack - page, MMAP_STACK + page);
}

/* ------------------------------------------------------------------ */
/* libaioctx                                                           */
/* ------------------------------------------------------------------ */

typedef struct LibPing {
    long count;
    long limit;
} LibPing;

static void coroutine_fn lib_ping_body(void *opaque)
{
    LibPing *p = opaque;

    while (p->count < p->limit) {
        p->count++;
        qemu_coroutine_yield();
    }
}

static void lib_pingpong(W7Run *r)
{
    LibPing p = { 0, pingpong_n };
    Coroutine *co = qemu_coroutine_create(lib_ping_body, &p);
    int64_t t0 = bench_now_ns();

    for (long i = 0; i < pingpong_n; i++) {
        qemu_coroutine_enter(co);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = p.count;
    r->expected = pingpong_n;
    qemu_coroutine_enter(co); /* let it return */
}

static void coroutine_fn lib_count_body(void *opaque)
{
    (*(long *)opaque)++;
}

static void lib_create(W7Run *r)
{
    long count = 0;
    int64_t t0;

    /* Warm the pool the way a running program has it warm. */
    qemu_coroutine_enter(qemu_coroutine_create(lib_count_body, &count));
    count = 0;
    t0 = bench_now_ns();
    for (long i = 0; i < create_n; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(lib_count_body, &count));
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    r->expected = create_n;
}

/* ------------------------------------------------------------------ */
/* asm-switch(floor)                                                   */
/* ------------------------------------------------------------------ */

#if HAVE_FLOOR
void w7_switch(void **save_sp, void *new_sp);
void w7_start(void);

/* A first frame that w7_switch "returns" into w7_start -> fn(arg). */
static void *floor_frame(void *stack, size_t size, void (*fn)(void *),
                         void *arg)
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* r15 r14 r13 r12 rbx rbp ret; rsp 16-aligned after the ret */
    void **f = (void **)(top - 16 - 7 * sizeof(void *));

    for (int i = 0; i < 7; i++) {
        f[i] = NULL;
    }
    f[2] = (void *)fn;  /* r13 */
    f[3] = arg;         /* r12 */
    f[6] = (void *)w7_start;
#else
    /* x19..x28 x29 x30 d8..d15 */
    void **f = (void **)(top - 20 * sizeof(void *));

    for (int i = 0; i < 20; i++) {
        f[i] = NULL;
    }
    f[0] = arg;         /* x19 */
    f[1] = (void *)fn;  /* x20 */
    f[11] = (void *)w7_start;
#endif
    return f;
}

static void *floor_main_sp, *floor_co_sp;

typedef struct FloorPing {
    long count;
} FloorPing;

static void floor_ping_body(void *arg)
{
    FloorPing *p = arg;

    for (;;) {
        p->count++;
        w7_switch(&floor_co_sp, floor_main_sp);
    }
}

static void floor_pingpong(W7Run *r)
{
    FloorPing p = { 0 };
    void *stack = pool_stack_get();
    int64_t t0;

    floor_co_sp = floor_frame(stack, POOL_STACK, floor_ping_body, &p);
    t0 = bench_now_ns();
    for (long i = 0; i < pingpong_n; i++) {
        w7_switch(&floor_main_sp, floor_co_sp);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = p.count;
    r->expected = pingpong_n;
    pool_stack_put(stack); /* suspended for good: just drop it */
}

static void floor_count_body(void *arg)
{
    (*(long *)arg)++;
    w7_switch(&floor_co_sp, floor_main_sp); /* never resumed */
}

static void floor_create_with(W7Run *r, long n, void *(*get)(void),
                              void (*put)(void *), size_t size)
{
    long count = 0;
    int64_t t0 = bench_now_ns();

    for (long i = 0; i < n; i++) {
        void *stack = get();

        floor_co_sp = floor_frame(stack, size, floor_count_body, &count);
        w7_switch(&floor_main_sp, floor_co_sp);
        put(stack);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    r->expected = n;
}

static void floor_create_pool(W7Run *r)
{
    floor_create_with(r, create_n, pool_stack_get, pool_stack_put, POOL_STACK);
}

static void floor_create_mmap(W7Run *r)
{
    floor_create_with(r, mmap_n, mmap_stack_get, mmap_stack_put, MMAP_STACK);
}
#endif /* HAVE_FLOOR */

/* ------------------------------------------------------------------ */
/* makecontext+sigsetjmp (QEMU's coroutine-ucontext approach)          */
/* ------------------------------------------------------------------ */

typedef struct SjCo {
    sigjmp_buf env;
    void (*body)(struct SjCo *co);
    long *counter;
} SjCo;

static sigjmp_buf sj_main_env;
static sigjmp_buf sj_boot_env;

static void sj_trampoline(unsigned int lo, unsigned int hi)
{
    SjCo *co = (SjCo *)(uintptr_t)(((uint64_t)hi << 32) | lo);

    if (!sigsetjmp(co->env, 0)) {
        siglongjmp(sj_boot_env, 1); /* creation ends here */
    }
    co->body(co); /* never returns */
    abort();
}

static void sj_init(SjCo *co, void *stack, size_t size)
{
    ucontext_t uc, old;
    uintptr_t p = (uintptr_t)co;

    getcontext(&uc);
    uc.uc_link = NULL;
    uc.uc_stack.ss_sp = stack;
    uc.uc_stack.ss_size = size;
    makecontext(&uc, (void (*)(void))sj_trampoline, 2, (unsigned int)p,
                (unsigned int)((uint64_t)p >> 32));
    if (!sigsetjmp(sj_boot_env, 0)) {
        swapcontext(&old, &uc);
    }
}

static inline void sj_enter(SjCo *co)
{
    if (!sigsetjmp(sj_main_env, 0)) {
        siglongjmp(co->env, 1);
    }
}

static void sj_ping_body(SjCo *co)
{
    for (;;) {
        (*co->counter)++;
        if (!sigsetjmp(co->env, 0)) {
            siglongjmp(sj_main_env, 1);
        }
    }
}

static void sj_pingpong(W7Run *r)
{
    static SjCo co;
    long count = 0;
    void *stack = pool_stack_get();
    int64_t t0;

    co.body = sj_ping_body;
    co.counter = &count;
    sj_init(&co, stack, POOL_STACK);
    t0 = bench_now_ns();
    for (long i = 0; i < pingpong_n; i++) {
        sj_enter(&co);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    r->expected = pingpong_n;
    pool_stack_put(stack);
}

static void sj_count_body(SjCo *co)
{
    (*co->counter)++;
    siglongjmp(sj_main_env, 1); /* done: back for good */
}

static void sj_create_with(W7Run *r, long n, void *(*get)(void),
                           void (*put)(void *), size_t size)
{
    static SjCo co;
    static long count; /* survives the longjmps */
    int64_t t0 = bench_now_ns();

    count = 0;
    for (long i = 0; i < n; i++) {
        void *stack = get();

        co.body = sj_count_body;
        co.counter = &count;
        sj_init(&co, stack, size);
        sj_enter(&co);
        put(stack);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    r->expected = n;
}

static void sj_create_pool(W7Run *r)
{
    sj_create_with(r, create_n, pool_stack_get, pool_stack_put, POOL_STACK);
}

static void sj_create_mmap(W7Run *r)
{
    sj_create_with(r, mmap_n, mmap_stack_get, mmap_stack_put, MMAP_STACK);
}

/* ------------------------------------------------------------------ */
/* ucontext-swapcontext (glibc)                                        */
/* ------------------------------------------------------------------ */

static ucontext_t uc_main, uc_co;

static void uc_ping_body(unsigned int lo, unsigned int hi)
{
    long *count = (long *)(uintptr_t)(((uint64_t)hi << 32) | lo);

    for (;;) {
        (*count)++;
        swapcontext(&uc_co, &uc_main);
    }
}

static void uc_make(void *stack, size_t size, void (*fn)(unsigned, unsigned),
                    long *count)
{
    uintptr_t p = (uintptr_t)count;

    getcontext(&uc_co);
    uc_co.uc_link = &uc_main;
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = size;
    makecontext(&uc_co, (void (*)(void))fn, 2, (unsigned int)p,
                (unsigned int)((uint64_t)p >> 32));
}

static void uc_pingpong(W7Run *r)
{
    long count = 0;
    void *stack = pool_stack_get();
    int64_t t0;

    uc_make(stack, POOL_STACK, uc_ping_body, &count);
    t0 = bench_now_ns();
    for (long i = 0; i < pingpong_n; i++) {
        swapcontext(&uc_main, &uc_co);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    r->expected = pingpong_n;
    pool_stack_put(stack);
}

static void uc_count_body(unsigned int lo, unsigned int hi)
{
    long *count = (long *)(uintptr_t)(((uint64_t)hi << 32) | lo);

    (*count)++; /* returning resumes uc_link = uc_main */
}

static void uc_create_with(W7Run *r, long n, void *(*get)(void),
                           void (*put)(void *), size_t size)
{
    long count = 0;
    int64_t t0 = bench_now_ns();

    for (long i = 0; i < n; i++) {
        void *stack = get();

        uc_make(stack, size, uc_count_body, &count);
        swapcontext(&uc_main, &uc_co);
        put(stack);
    }
    r->elapsed_ns = bench_now_ns() - t0;
    r->count = count;
    r->expected = n;
}

static void uc_create_pool(W7Run *r)
{
    uc_create_with(r, create_n, pool_stack_get, pool_stack_put, POOL_STACK);
}

static void uc_create_mmap(W7Run *r)
{
    uc_create_with(r, mmap_n, mmap_stack_get, mmap_stack_put, MMAP_STACK);
}

/* ------------------------------------------------------------------ */
/* driver                                                              */
/* ------------------------------------------------------------------ */

typedef struct W7Case {
    const char *variant;
    const char *peer;
    const char *unit;
    W7Fn *fn;
    long per_count; /* operations per counted step: the figure is
                     * elapsed / (count * per_count) */
    bool lib;      /* runs in both binaries */
} W7Case;

static W7Case cases[] = {
    { "pingpong", LIB_PEER, "ns/switch", lib_pingpong, 2, true },
#if HAVE_FLOOR
    { "pingpong", "asm-switch(floor)", "ns/switch", floor_pingpong, 2, true },
#endif
    { "pingpong", "makecontext+sigsetjmp", "ns/switch", sj_pingpong, 2, false },
    { "pingpong", "ucontext-swapcontext", "ns/switch", uc_pingpong, 2, false },
    { "create-run-destroy(pool)", LIB_PEER, "ns/coroutine", lib_create, 1,
      true },
#if HAVE_FLOOR
    { "create-run-destroy(pool)", "asm-switch(floor)", "ns/coroutine",
      floor_create_pool, 1, true },
#endif
    { "create-run-destroy(pool)", "makecontext+sigsetjmp", "ns/coroutine",
      sj_create_pool, 1, false },
    { "create-run-destroy(pool)", "ucontext-swapcontext", "ns/coroutine",
      uc_create_pool, 1, false },
#if HAVE_FLOOR
    { "create-run-destroy(mmap1M)", "asm-switch(floor)", "ns/coroutine",
      floor_create_mmap, 1, false },
#endif
    { "create-run-destroy(mmap1M)", "makecontext+sigsetjmp", "ns/coroutine",
      sj_create_mmap, 1, false },
    { "create-run-destroy(mmap1M)", "ucontext-swapcontext", "ns/coroutine",
      uc_create_mmap, 1, false },
};

#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static BenchSeries series[NCASES];

static BenchSeries *find_series(const char *variant, const char *peer)
{
    for (int i = 0; i < NCASES; i++) {
        if (!strcmp(cases[i].variant, variant) &&
            !strcmp(cases[i].peer, peer) && series[i].nsamples) {
            return &series[i];
        }
    }
    return NULL;
}

static void ratio(const char *variant, const char *a, const char *b)
{
    BenchSeries *sa = find_series(variant, a), *sb = find_series(variant, b);

    if (sa && sb) {
        bench_print_ratio(sa, sb);
    }
}

int main(int argc, char **argv)
{
    int runs = bench_runs(3);
    bool selected[NCASES];
    char name[160];

    bench_pin_self(0);
    pingpong_n = bench_scaled(PINGPONG_N, 1);
    create_n = bench_scaled(CREATE_N, 1);
    mmap_n = bench_scaled(MMAP_N, 1);
    for (int i = 0; i < NCASES; i++) {
        W7Case *c = &cases[i];

        bench_series_init(&series[i], "W7", c->variant, c->peer, c->unit);
        snprintf(name, sizeof(name), "%s/%s", c->variant, c->peer);
        selected[i] = (c->lib || RUN_OTHER_PEERS) &&
                      bench_selected(argc, argv, name);
        if (selected[i] && c->fn == lib_create) {
            bench_series_note(&series[i], "pooled %zu KiB stacks",
                              qemu_coroutine_get_stack_size() / 1024);
        }
    }
    /*
     * Run 1 of every case, then run 2 of every case, ...: on a busy
     * machine all cases then see the same stretches of noise.
     */
    for (int run = 0; run < runs; run++) {
        for (int i = 0; i < NCASES; i++) {
            W7Run r = { 0 };

            if (!selected[i]) {
                continue;
            }
            cases[i].fn(&r);
            bench_series_add(
                &series[i], per_op(&r, r.expected * cases[i].per_count),
                r.count == r.expected, "count %ld != %ld", r.count, r.expected);
        }
    }
    for (int i = 0; i < NCASES; i++) {
        if (selected[i]) {
            bench_series_report(&series[i]);
        }
    }
    ratio("pingpong", LIB_PEER, "asm-switch(floor)");
    ratio("pingpong", "makecontext+sigsetjmp", "asm-switch(floor)");
    ratio("pingpong", "ucontext-swapcontext", "asm-switch(floor)");
    ratio("create-run-destroy(pool)", LIB_PEER, "asm-switch(floor)");
    ratio("create-run-destroy(pool)", "makecontext+sigsetjmp",
          "asm-switch(floor)");
    ratio("create-run-destroy(pool)", "ucontext-swapcontext",
          "asm-switch(floor)");
    pool_stacks_free();
    return 0;
}
