/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tables of compiled-in engines.  "auto" takes the first engine of
 * aio_engines whose probe and init succeed; every engine can be asked for
 * by name.  The io_uring and linux-aio engines are optional (CMake's
 * AIOCTX_WITH_IO_URING and AIOCTX_WITH_LINUX_AIO): a build without one
 * neither lists nor finds it.
 */
#include <pthread.h>
#include <string.h>

#include "engine.h"

const AioEngineOps *const aio_engines[] = {
#ifdef AIOCTX_HAVE_IO_URING
    &aio_engine_io_uring,
#endif
    &aio_engine_epoll,
    &aio_engine_poll,
    NULL,
};

/* Every engine, in the order messages list them. */
static const AioEngineOps *const all_engines[] = {
#ifdef AIOCTX_HAVE_IO_URING
    &aio_engine_io_uring,
#endif
#ifdef AIOCTX_HAVE_LINUX_AIO
    &aio_engine_linux_aio,
#endif
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

bool aio_engine_left_out(const char *name)
{
    static const char *const left_out[] = {
#ifndef AIOCTX_HAVE_IO_URING
        "io_uring",
#endif
#ifndef AIOCTX_HAVE_LINUX_AIO
        "linux-aio",
#endif
        NULL,
    };

    for (int i = 0; name && left_out[i]; i++) {
        if (strcmp(left_out[i], name) == 0) {
            return true;
        }
    }
    return false;
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
