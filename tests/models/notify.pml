/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A Promela model of libaioctx's wake-up protocol (lib/context.c aio_notify,
 * lib/bh.c bh_enqueue_remote, lib/poll.c announce_sleep/poll_once).
 *
 * Processes:
 *  - loop:     the home thread running "while (!done) aio_poll(ctx, true)";
 *  - remote:   another thread scheduling one bottom half SCHEDS times
 *              (qemu_bh_schedule from a foreign thread);
 *  - notifier: another thread that sets a condition, then aio_notify().
 *
 * Every shared access in the C code that matters here is sequentially
 * consistent (fetch_or, CAS, seq_cst loads and the exchange of notified),
 * or a release store whose ordering the surrounding seq_cst operations
 * make irrelevant, so spin's interleaving semantics match the C code.
 *
 * Property: a notify that happens before the loop sleeps is never lost.
 * The loop only finishes once it has seen the condition and run the bottom
 * half after the remote thread's last schedule; if a wake-up were lost the
 * loop would sleep forever on the eventfd after the other threads ended,
 * which spin reports as an invalid end state (safety run).  The LTL
 * claim below says the same for the unbounded case: while work is waiting,
 * a sleeping loop always wakes up (checked for acceptance cycles under weak
 * fairness).
 *
 * Variants (cpp defines, see check.sh):
 *  - default: the protocol as implemented;
 *  - NO_RECHECK: the loop announces notify_me but does not look at
 *    notified and the remote list again before sleeping;
 *  - LATE_ANNOUNCE: the loop checks for work first and only then adds to
 *    notify_me (the Dekker order reversed).
 * Both broken variants must be rejected.
 */

#define SCHEDS 2
#define PENDING 1
#define SCHEDULED 2

byte notify_me = 0;   /* ctx->notify_me: +2 per sleeping aio_poll */
bool notified = false; /* ctx->notified */
bool efd = false;      /* the context's eventfd is readable */
byte bh_list = 0;      /* entries on the remote LIFO (0 or 1: one BH) */
byte bh_flags = 0;     /* the BH's flags */
byte sched_gen = 0;    /* how many schedules the remote thread has made */
byte covered = 0;      /* the latest schedule a run of the BH covered */
bool cond = false;     /* the notifier thread's condition */
bool sleeping = false; /* the loop is blocked in the engine's wait */

active proctype remote()
{
    byte old;
    byte i = 0;

    do
    :: i < SCHEDS ->
        i++;
        /* bh_enqueue_remote: fetch_or PENDING|SCHEDULED */
        atomic {
            old = bh_flags;
            bh_flags = bh_flags | PENDING | SCHEDULED;
            sched_gen = i
        }
        if
        :: (old & PENDING) ->
            /* linked already: aio_notify() */
            notified = true;
            if
            :: notify_me > 0 -> efd = true
            :: else -> skip
            fi
        :: else ->
            bh_list = 1;              /* CAS push (seq_cst) */
            notified = true;          /* release store */
            if
            :: notify_me > 0 -> efd = true  /* seq_cst load of notify_me */
            :: else -> skip
            fi
        fi
    :: else -> break
    od
}

active proctype notifier()
{
    cond = true;
    /* aio_notify: exchange notified (seq_cst), then load notify_me */
    notified = true;
    if
    :: notify_me > 0 -> efd = true
    :: else -> skip
    fi
}

active proctype loop()
{
    bool sleep;
    bool seen_cond = false;
    byte taken;
    byte old;

    do
    :: seen_cond && covered == SCHEDS -> break
    :: else ->
        /* poll_once(ctx, blocking = true): the timeout is "forever" */
#ifdef LATE_ANNOUNCE
        sleep = !(notified || bh_list > 0);
        notify_me = notify_me + 2;
#else
        notify_me = notify_me + 2;    /* announce_sleep: fetch_add */
#ifdef NO_RECHECK
        sleep = true;
#else
        sleep = !(notified || bh_list > 0);
#endif
#endif
        if
        :: sleep ->
            /* engine wait: blocks until the eventfd is readable */
            sleeping = true;
            efd;
            sleeping = false
        :: else ->
            /* timeout 0: the engine may or may not be asked */
            skip
        fi;
        notify_me = notify_me - 2;
        notified = false;             /* aio_notify_accept */
        /* aio_bh_poll: take the remote list, run what is scheduled */
        atomic { taken = bh_list; bh_list = 0 }
        if
        :: taken > 0 ->
            atomic {
                old = bh_flags;
                bh_flags = 0;
                if
                :: (old & SCHEDULED) -> covered = sched_gen
                :: else -> skip
                fi
            }
        :: else -> skip
        fi;
        /* dispatch: the context notifier's handler clears the eventfd */
        if
        :: efd -> efd = false
        :: true -> skip
        fi;
        seen_cond = cond
    od;
    /* nothing was left behind */
    assert(bh_list == 0 && covered == SCHEDS && seen_cond)
}

/* The loop is never asleep forever while a bottom half or a notify waits. */
ltl no_lost_wakeup { [] ((sleeping && (bh_list > 0 || (cond && notified))) -> <> !sleeping) }
