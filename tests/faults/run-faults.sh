#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Syscall fault injection: run chosen test suites under
# "strace -f -e inject=..." so that the engines' system calls fail now and
# then (every few calls, so progress stays possible), on every engine the
# machine has.  Each suite must still pass: its assertions check that
# nothing was lost and nothing ran twice.  Prints how many faults were
# injected in all.
#
# Usage: run-faults.sh <build dir>      (the build's tests/ holds the suites)
# Faults that cannot be survived by retrying (EMFILE when a context,
# notifier or IOThread is made) are tested by test-fd-limit instead.
set -eu

build=${1:?usage: run-faults.sh <build dir>}
tests=$build/tests
command -v strace >/dev/null 2>&1 || { echo "strace not installed: skipped"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# strace may be refused (ptrace forbidden in some containers).
if ! strace -f -qq -o /dev/null true 2>/dev/null; then
    echo "strace cannot trace here: skipped"
    exit 77
fi

total=0
runs=0
failed=0

# scenario <name> <engines> <suites> <syscalls> <inject spec>
# A suite may be given as suite:case to run one Check test case only.
scenario() {
    name=$1 s_engines=$2 suites=$3 calls=$4 spec=$5
    for engine in $s_engines; do
        for entry in $suites; do
            suite=${entry%%:*}
            case=
            [ "$entry" != "$suite" ] && case=${entry#*:}
            tag=$name-$engine-$suite${case:+-$case}
            log=$work/$tag.strace
            out=$work/$tag.out
            start=$(date +%s)
            rc=0
            # An empty CK_RUN_CASE would select no case at all.
            env ${case:+CK_RUN_CASE=$case} AIOCTX_ENGINE=$engine \
                CK_DEFAULT_TIMEOUT=60 strace -f -qq -o "$log" -e trace="$calls" \
                    -e inject="$calls:$spec" "$tests/$suite" >"$out" 2>&1 ||
                rc=$?
            if [ $rc -eq 77 ]; then
                status=skipped
            elif [ $rc -ne 0 ]; then
                status=FAILED
            elif ! grep -q 'Checks: [1-9]' "$out"; then
                status="FAILED (no test ran)"
            else
                status=ok
            fi
            n=$(grep -c 'INJECTED' "$log" || true)
            if [ "$status" = ok ]; then
                total=$((total + n))
            elif [ "$status" != skipped ]; then
                failed=$((failed + 1))
            fi
            runs=$((runs + 1))
            printf '%-17s %-10s %-22s %5d faults %3ds  %s\n' "$name" \
                "$engine" "$entry" "$n" "$(($(date +%s) - start))" "$status"
            case $status in
            FAILED*) grep -E ':[EF]:|Checks' "$out" | head -20 ;;
            esac
        done
    done
}

all="poll epoll io_uring linux-aio"
epoll_based="epoll io_uring linux-aio"
# The engines' own waits (not poll(), which the tests use themselves).
waits=epoll_wait,epoll_pwait,epoll_pwait2,ppoll,io_getevents

# Waits interrupted, or refused, every third call.
scenario wait-EINTR "$all" "test-bh test-fd" "$waits" error=EINTR:when=2+3
scenario wait-EINTR "io_uring linux-aio" test-file-io:rw "$waits" \
    error=EINTR:when=2+3
scenario wait-EAGAIN "$all" "test-bh test-fd" "$waits" error=EAGAIN:when=2+3
scenario wait-EAGAIN "io_uring linux-aio" test-file-io:rw "$waits" \
    error=EAGAIN:when=2+3
# Registering fds with epoll.
scenario epoll_ctl-ENOMEM "$epoll_based" "test-fd test-loop" epoll_ctl \
    error=ENOMEM:when=2+3
# The poll engine's epoll mirror (made for aio_context_get_pollfd()).
scenario epoll_ctl-ENOMEM poll test-loop epoll_ctl error=ENOMEM:when=2+3
# Handing file I/O to io_uring (the engine's ring, and a context's extra
# ring on another engine) and to kernel AIO.
scenario io_uring-EAGAIN io_uring test-file-io:rw io_uring_enter \
    error=EAGAIN:when=2+3
scenario io_uring-ENOMEM io_uring test-file-io:rw io_uring_enter \
    error=ENOMEM:when=2+3
scenario io_uring-EAGAIN epoll test-file-io-co io_uring_enter \
    error=EAGAIN:when=2+3
scenario io_submit-EAGAIN linux-aio test-file-io:rw io_submit \
    error=EAGAIN:when=2+3

echo "fault injection: $runs runs, $total faults injected and survived, $failed failed"
[ "$failed" -eq 0 ]
