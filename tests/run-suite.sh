#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build libaioctx and run the whole ctest suite five ways:
#   1. a normal build (with benchmarks and examples built too);
#   2. AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. ThreadSanitizer, for the suites labelled "multithread";
#   4. and 5. builds without the io_uring engine and without the linux-aio
#      engine (the optional engines), every suite on the engines left.
#   then the normal build's suite under a signal storm, valgrind memcheck,
#   and chosen suites under syscall fault injection
#   (tests/faults/run-faults.sh).
# Every suite runs once per engine this machine supports.
# CI=true turns warnings into errors.  BUILD_ROOT picks where builds go.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
root=${BUILD_ROOT:-$top/_build}
jobs=${JOBS:-$(nproc)}
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON

step() {
    printf '\n==== %s (%s)\n' "$1" "$(date +%T)"
}

build() { # build <dir> <cmake args...>
    dir=$1
    shift
    cmake -S "$top" -B "$dir" -DAIOCTX_WERROR=$werror "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

start=$(date +%s)

step "normal build"
build "$root/normal"
step "tests, normal build"
# -LE bench: the benchmark smoke run (ctest -L bench) is not a test suite;
# fuzz: the fuzzer's bounded run comes next, on its own.
ctest --test-dir "$root/normal" -j "$jobs" -LE 'bench|fuzz' --output-on-failure
step "fuzzing the httpd request parser (60 s)"
if ! ctest --test-dir "$root/normal" -L fuzz -V >"$root/fuzz.log" 2>&1; then
    tail -n 60 "$root/fuzz.log"
    echo "fuzzing the httpd request parser failed"
    exit 1
fi
grep -E 'fuzz-httpd-parser:|skipped' "$root/fuzz.log" || true

step "ASan+UBSan build"
build "$root/asan" -DAIOCTX_SANITIZE=address,undefined \
    -DAIOCTX_BUILD_BENCH=OFF -DAIOCTX_BUILD_EXAMPLES=OFF
step "tests, ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$root/asan" -j "$jobs" -LE bench --output-on-failure

step "TSan build"
build "$root/tsan" -DAIOCTX_SANITIZE=thread \
    -DAIOCTX_BUILD_BENCH=OFF -DAIOCTX_BUILD_EXAMPLES=OFF
step "tests labelled multithread, TSan"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:atexit_sleep_ms=0 \
    ctest --test-dir "$root/tsan" -j "$jobs" -L multithread -LE bench \
        --output-on-failure

for engine in IO_URING LINUX_AIO; do
    step "build without $engine"
    build "$root/no-$engine" -DAIOCTX_WITH_$engine=OFF \
        -DAIOCTX_BUILD_BENCH=OFF -DAIOCTX_BUILD_EXAMPLES=OFF
    step "tests, build without $engine"
    ctest --test-dir "$root/no-$engine" -j "$jobs" -LE bench \
        --output-on-failure
done

# The normal build's suite again under a signal storm: tests/storm's
# preload sends every test process (and the programs the tests start) a
# real-time signal every 300 us, without SA_RESTART, so that every blocking
# call sees EINTR (storm-selftest checks that it does).  Left out: label
# packaging (install-consumer builds with cmake and the compiler, and the
# abi and man-page checks read files: none runs our code), label fuzz (the
# parser's fuzzer, run in its own step; it does not use the library) and
# model-notify (spin and gcc check a Promela model; gcc's driver itself
# fails with "failed to get exit status: Interrupted system call").
step "tests, normal build, under a signal storm"
LD_PRELOAD="$root/normal/tests/signal-storm.so" AIOCTX_STORM_US=300 \
    ctest --test-dir "$root/normal" -j "$jobs" -LE 'bench|packaging|fuzz' \
        -E '^model-notify$' --output-on-failure

# valgrind memcheck on the poll and epoll engines, over the suites it can
# follow (tests/valgrind/memcheck.sh says which, and why): zero errors,
# zero leaks.
step "valgrind memcheck, normal build"
sh "$top/tests/valgrind/memcheck.sh" "$root/normal" "$jobs"

step "syscall fault injection (strace), normal build"
# Chosen suites with the engines' system calls failing every few calls.
rc=0
"$top/tests/faults/run-faults.sh" "$root/normal" || rc=$?
if [ $rc -eq 77 ]; then
    echo "fault injection skipped (no strace, or ptrace refused)"
elif [ $rc -ne 0 ]; then
    exit $rc
fi

step "all suites passed in $(($(date +%s) - start)) s"
