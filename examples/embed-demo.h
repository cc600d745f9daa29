/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The work embed-glib and embed-uv run through their foreign loops: a
 * bottom half, a timer that writes into a watched pipe, the fd handler
 * that reads it, a coroutine that sleeps and does file I/O, and last a
 * bottom half scheduled by another thread while nothing else is due (only
 * the context's descriptor can wake the foreign loop for it).
 */
#ifndef EXAMPLES_EMBED_DEMO_H
#define EXAMPLES_EMBED_DEMO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <aioctx.h>

enum {
    DEMO_STEP_BH,
    DEMO_STEP_REMOTE_BH,
    DEMO_STEP_TIMER,
    DEMO_STEP_FD,
    DEMO_STEP_COROUTINE,
    DEMO_STEP_COUNT
};

typedef struct EmbedDemo {
    AioContext *ctx;
    const char *prog;                /* for messages */
    void (*all_done)(void *opaque);  /* called by the last step */
    void *opaque;
    QEMUTimer timer;
    int pipe[2];
    char path[64]; /* the coroutine's temporary file */
    int64_t start_ns;
    pthread_t thread;
    bool thread_started;
    bool done[DEMO_STEP_COUNT];
    int steps;
} EmbedDemo;

/*
 * Start the steps on ctx, which the caller made its thread's current
 * context; all_done(opaque) runs once every step ran.  Returns 0, or -1
 * with a message printed.
 */
int embed_demo_start(EmbedDemo *d, AioContext *ctx, const char *prog,
                     void (*all_done)(void *opaque), void *opaque);

/* After the foreign loop stopped: undo what embed_demo_start() set up. */
void embed_demo_finish(EmbedDemo *d);

#endif /* EXAMPLES_EMBED_DEMO_H */
