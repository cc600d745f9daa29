#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# valgrind memcheck over the suites it can follow, on the poll and epoll
# engines: every error, and every definite, indirect or possible leak, fails
# the run.  Check forks a child per test; valgrind follows fork() by itself
# and checks each child's leaks at its exit.
#
#   memcheck.sh <build dir> [jobs]
#
# Suites left out, and why:
#   test-engine, test-file-io-seccomp  install seccomp filters, which
#                                      valgrind does not implement (ENOSYS);
#   test-coroutine                     its 25,000 live coroutines (an mmap
#                                      and a guard page each) overflow
#                                      valgrind's segment table (FATAL:
#                                      VG_N_SEGMENTS is too low); coroutines
#                                      run under memcheck in test-co-sync,
#                                      test-co-io and test-file-io-co;
#   test-examples, test-httpd,         run other programs (exec): their own
#   test-aio-copy                      suites, not ours;
#   test-thread-pool, test-iothread,   thread-heavy and timing-bound: 25 to 90 s
#   test-multithread, test-timer,      each under valgrind (timeouts), and
#   test-file-io-threads               covered by ASan and TSan;
#   io_uring, linux-aio engines        valgrind does not see the kernel fill
#                                      buffers through io_uring or aio.
# valgrind 3.19 does not know epoll_pwait2 (syscall 441): it warns (not an
# error; -q hides it) and the epoll engine falls back to epoll_wait.
set -eu

build=$1
jobs=${2:-2}
out=$build/valgrind
suites="test-error test-bh test-fd test-poll test-context test-loop
        test-co-sync test-co-io test-file-io test-file-io-cancel
        test-file-io-co test-file-transfer"
engines="poll epoll"

rm -rf "$out"
mkdir -p "$out"
for s in $suites; do
    if [ "$s" = test-error ]; then # engine-neutral
        echo "$s none"
        continue
    fi
    for e in $engines; do
        echo "$s $e"
    done
done > "$out/list"

# One run: suite, engine; writes <suite>-<engine>.log and .status.
run_one() {
    s=$1 e=$2 log=$out/$1-$2.log
    t0=$(date +%s)
    set +e
    if [ "$e" = none ]; then
        env -u AIOCTX_ENGINE CK_TIMEOUT_MULTIPLIER=10 \
            timeout 900 valgrind -q --error-exitcode=99 --leak-check=full \
            --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible \
            "$build/tests/$s" > "$log" 2>&1
    else
        AIOCTX_ENGINE=$e CK_TIMEOUT_MULTIPLIER=10 \
            timeout 900 valgrind -q --error-exitcode=99 --leak-check=full \
            --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible \
            "$build/tests/$s" > "$log" 2>&1
    fi
    rc=$?
    set -e
    echo "$rc" > "$out/$s-$e.status"
    printf '%-28s %s (%d s)\n' "$s/$e" \
        "$([ "$rc" = 0 ] && echo passed || echo "FAILED ($rc)")" \
        $(($(date +%s) - t0))
}

export out build
# xargs runs a fresh sh per line; hand it this script's function.
fn=$(sed -n '/^run_one() {/,/^}/p' "$0")
xargs -P "$jobs" -L 1 sh -c "$fn"'
run_one "$@"' run_one < "$out/list"

failed=0
while read -r s e; do
    if [ "$(cat "$out/$s-$e.status")" != 0 ]; then
        failed=$((failed + 1))
        printf '\n---- %s/%s ----\n' "$s" "$e"
        cat "$out/$s-$e.log"
    fi
done < "$out/list"
total=$(wc -l < "$out/list")
echo "valgrind memcheck: $((total - failed)) of $total runs clean"
[ "$failed" = 0 ]
