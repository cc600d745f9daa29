/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The table of compiled-in engines, best first.  "auto" takes the first
 * one whose probe and init succeed.
 */
#include <pthread.h>
#include <string.h>

#include "engine.h"

const AioEngineOps *const aio_engines[] = {
    &aio_engine_io_uring,
    &aio_engine_epoll,
    &aio_engine_poll,
    NULL,
};

const AioEngineOps *aio_engine_find(const char *name)
{
    for (int i = 0; name && aio_engines[i]; i++) {
        if (strcmp(aio_engines[i]->name, name) == 0) {
            return aio_engines[i];
        }
    }
    return NULL;
}

static char engine_names[128];

static void engine_names_build(void)
{
    for (int i = 0; aio_engines[i]; i++) {
        if (i) {
            strcat(engine_names, ", ");
        }
        strcat(engine_names, aio_engines[i]->name);
    }
}

const char *aio_engine_names(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, engine_names_build);
    return engine_names;
}
