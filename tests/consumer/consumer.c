/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A program built against an installed libaioctx, the way a user would:
 * it runs one bottom half and one fd callback and exits 0 when both ran.
 */
#include <stdio.h>
#include <unistd.h>

#include <aioctx.h>

static void bh_cb(void *opaque)
{
    (*(int *)opaque)++;
}

static void read_cb(void *opaque)
{
    int *fds = opaque;
    char c;

    if (read(fds[0], &c, 1) == 1 && c == 'x') {
        fds[2]++;
    }
}

int main(void)
{
    AioContext *ctx = aio_context_new(&error_fatal);
    int bh_runs = 0;
    int fds[3] = { -1, -1, 0 };

    if (pipe(fds) < 0) {
        return 1;
    }
    aio_set_fd_handler(ctx, fds[0], read_cb, NULL, NULL, NULL, fds);
    aio_bh_schedule_oneshot(ctx, bh_cb, &bh_runs);
    if (write(fds[1], "x", 1) != 1) {
        return 1;
    }
    while (bh_runs == 0 || fds[2] == 0) {
        aio_poll(ctx, true);
    }
    printf("consumer: engine %s, bh %d, fd %d\n",
           aio_context_get_engine_name(ctx), bh_runs, fds[2]);
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL, NULL);
    aio_context_unref(ctx);
    close(fds[0]);
    close(fds[1]);
    return bh_runs == 1 && fds[2] == 1 ? 0 : 1;
}
