/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The loop driver: aio_context_run()/aio_context_stop(), the embedding
 * descriptor, and signals read from a per-context signalfd.
 *
 * Signals.  The table and the signalfd belong to the home thread: add,
 * remove and the read callback all run there, so they need no lock.  The
 * signalfd is registered as an ordinary fd handler while at least one
 * signal is handled, and closed when the last one goes (so a context that
 * stopped handling signals does not keep busy-polling disabled).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "aio-internal.h"
#include "aioctx/loop.h"

/* Delivered signals read per dispatch; the rest wait for the next pass. */
#define SIGNALS_PER_READ 16

typedef struct AioSignalSlot {
    AioSignalFunc *cb;
    void *opaque;
} AioSignalSlot;

typedef struct AioSignals {
    int fd;         /* the signalfd, -1 while no signal is handled */
    sigset_t mask;  /* the signals handled */
    AioSignalSlot slot[NSIG];
} AioSignals;

/* ---- run / stop ---- */

AIOCTX_API void aio_context_run(AioContext *ctx)
{
    AioContext *prev = qemu_get_current_aio_context();

    qemu_set_current_aio_context(ctx);
    for (;;) {
        /* Cheap load first; the exchange consumes exactly one request. */
        if (__atomic_load_n(&ctx->run_stop, __ATOMIC_ACQUIRE) &&
            __atomic_exchange_n(&ctx->run_stop, false, __ATOMIC_ACQUIRE)) {
            break;
        }
        aio_poll(ctx, true);
    }
    qemu_set_current_aio_context(prev);
}

AIOCTX_API void aio_context_stop(AioContext *ctx)
{
    /* Both steps are plain atomics and at most one write(2). */
    __atomic_store_n(&ctx->run_stop, true, __ATOMIC_RELEASE);
    aio_notify(ctx);
}

/* ---- embedding ---- */

AIOCTX_API int aio_context_get_pollfd(AioContext *ctx)
{
    if (!ctx) {
        return -EINVAL;
    }
    if (!ctx->engine->pollfd) {
        return -ENOTSUP;
    }
    return ctx->engine->pollfd(ctx);
}

/* ---- signals ---- */

static void signals_read(void *opaque)
{
    AioContext *ctx = opaque;
    AioSignals *sigs = ctx->signals;
    struct signalfd_siginfo si[SIGNALS_PER_READ];
    ssize_t n = read(sigs->fd, si, sizeof(si));

    for (ssize_t i = 0; i < n / (ssize_t)sizeof(si[0]); i++) {
        int signo = (int)si[i].ssi_signo;
        AioSignalSlot *slot;

        if (signo <= 0 || signo >= NSIG) {
            continue;
        }
        /* Looked up per signal: an earlier callback may remove this one. */
        slot = &sigs->slot[signo];
        if (slot->cb) {
            slot->cb(signo, slot->opaque);
        }
    }
}

static bool signo_valid(int signo)
{
    return signo > 0 && signo < NSIG && signo != SIGKILL && signo != SIGSTOP;
}

static AioSignals *signals_get(AioContext *ctx)
{
    AioSignals *sigs = ctx->signals;

    if (sigs) {
        return sigs;
    }
    sigs = calloc(1, sizeof(*sigs));
    if (!sigs) {
        return NULL;
    }
    sigs->fd = -1;
    sigemptyset(&sigs->mask);
    ctx->signals = sigs;
    return sigs;
}

/* Make the signalfd watch mask, creating it if needed; 0 or -errno. */
static int signals_set_mask(AioContext *ctx, AioSignals *sigs,
                            const sigset_t *mask)
{
    int fd;

    if (sigs->fd >= 0) {
        return signalfd(sigs->fd, mask, 0) < 0 ? -errno : 0;
    }
    fd = signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (!aio_set_fd_handler_full(ctx, fd, signals_read, NULL, NULL, NULL, ctx,
                                 false)) {
        close(fd);
        return -ENOMEM;
    }
    sigs->fd = fd;
    return 0;
}

static void signals_close(AioContext *ctx, AioSignals *sigs)
{
    if (sigs->fd < 0) {
        return;
    }
    aio_set_fd_handler(ctx, sigs->fd, NULL, NULL, NULL, NULL, NULL);
    close(sigs->fd);
    sigs->fd = -1;
}

AIOCTX_API int aio_context_add_signal(AioContext *ctx, int signo,
                                      AioSignalFunc *cb, void *opaque,
                                      Error **errp)
{
    sigset_t one, old, mask;
    AioSignals *sigs;
    int ret;

    if (!ctx || !cb || !signo_valid(signo)) {
        error_setg(errp, "cannot handle signal %d through a context%s", signo,
                   !ctx || !cb ? ": no context or callback given"
                               : ": invalid or uncatchable signal");
        return -EINVAL;
    }
    sigs = signals_get(ctx);
    if (!sigs) {
        error_setg_errno(errp, ENOMEM, "cannot handle signal %d", signo);
        return -ENOMEM;
    }
    /* Block first, so no instance can reach a default action meanwhile. */
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_BLOCK, &one, &old);
    mask = sigs->mask;
    sigaddset(&mask, signo);
    ret = signals_set_mask(ctx, sigs, &mask);
    if (ret < 0) {
        if (!sigismember(&old, signo)) {
            pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        }
        error_setg_errno(errp, -ret, "cannot watch signal %d (%s)", signo,
                         strsignal(signo));
        return ret;
    }
    sigs->mask = mask;
    sigs->slot[signo] = (AioSignalSlot){ .cb = cb, .opaque = opaque };
    return 0;
}

AIOCTX_API void aio_context_remove_signal(AioContext *ctx, int signo)
{
    AioSignals *sigs = ctx ? ctx->signals : NULL;

    if (!sigs || !signo_valid(signo) || !sigismember(&sigs->mask, signo)) {
        return;
    }
    sigs->slot[signo] = (AioSignalSlot){ NULL, NULL };
    sigdelset(&sigs->mask, signo);
    if (sigisemptyset(&sigs->mask)) {
        signals_close(ctx, sigs);
        return;
    }
    /* Narrowing a signalfd's mask cannot fail on a valid descriptor. */
    signals_set_mask(ctx, sigs, &sigs->mask);
}

void aio_loop_destroy_ctx(AioContext *ctx)
{
    if (!ctx->signals) {
        return;
    }
    signals_close(ctx, ctx->signals);
    free(ctx->signals);
    ctx->signals = NULL;
}
