/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tables of compiled-in engines.  "auto" takes the first engine of
 * aio_engines whose probe and init succeed; every engine can be asked for
 * by name.
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

/* Every engine, in the order messages list them. */
static const AioEngineOps *const all_engines[] = {
    &aio_engine_io_uring,
    &aio_engine_linux_aio,
    &aio_engine_epoll,
    &aio_engine_poll,
    NULL,
};

const AioEngineOps *aio_engine_find(const char *name)
{
    for (int i = 0; name && all_engines[i]; i++) {
        if (strcmp(all_engines[i]->name, name) == 0) {
            return all_engines[i];
        }
    }
    return NULL;
}

static char engine_names[128];

static void engine_names_build(void)
{
    for (int i = 0; all_engines[i]; i++) {
        if (i) {
            strcat(engine_names, ", ");
        }
        strcat(engine_names, all_engines[i]->name);
    }
}

const char *aio_engine_names(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, engine_names_build);
    return engine_names;
}
