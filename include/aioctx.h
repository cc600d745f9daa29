/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libaioctx: QEMU's AioContext event loop as a standalone library.
 * Include this header to get the whole public API.
 */
#ifndef AIOCTX_H
#define AIOCTX_H

#include <aioctx/export.h>
#include <aioctx/error.h>
#include <aioctx/log.h>
#include <aioctx/event-notifier.h>
#include <aioctx/timer.h>
#include <aioctx/aio.h>
#include <aioctx/loop.h>
#include <aioctx/coroutine.h>
#include <aioctx/thread-pool.h>
#include <aioctx/iothread.h>
#include <aioctx/file-io.h>
#include <aioctx/stats.h>

#endif /* AIOCTX_H */
