#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build the libFuzzer harness of httpd's request parser with clang
# (-fsanitize=fuzzer,address,undefined) and fuzz it for a bounded time,
# starting from the corpus in the tree (new inputs go to a scratch copy,
# the tree is not changed).  Fails on a crash, a sanitizer report, a leak,
# a hang (-timeout) or an input using too much memory; prints libFuzzer's
# execution count.  Exits 77 (skipped) without clang's libFuzzer.
#
#   run-fuzz.sh <source dir> <work dir> [seconds (default 60)]
set -eu
src=$1
work=$2
secs=${3:-60}
cc=${CLANG:-clang}
mkdir -p "$work"
bin=$work/fuzz-httpd-parser
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "$cc not installed: skipped"
    exit 77
fi
if ! "$cc" -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=all -I"$src/examples/httpd" \
        "$src/tests/fuzz/fuzz-httpd-parser.c" "$src/examples/httpd/parser.c" \
        -o "$bin" 2>"$work/build.log"; then
    if grep -q "fuzzer" "$work/build.log" &&
       ! "$cc" -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null <<'EOC'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOC
    then
        echo "$cc has no libFuzzer: skipped"
        exit 77
    fi
    cat "$work/build.log"
    exit 1
fi
rm -rf "$work/corpus" "$work/crashes"
mkdir -p "$work/corpus" "$work/crashes"
# -timeout: one input taking over 5 s is a hang; leaks are reported at the
# end of each run (detect_leaks); -max_len: the server's head limit.
status=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 \
        -max_len=8192 -print_final_stats=1 -error_exitcode=70 \
        -timeout_exitcode=71 \
        -artifact_prefix="$work/crashes/" \
        "$work/corpus" "$src/tests/fuzz/corpus/httpd-parser" \
        >"$work/fuzz.log" 2>&1 || status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" |
       tail -n 1)
tail -n 25 "$work/fuzz.log"
if [ "$status" -ne 0 ] || ls "$work/crashes" | grep -q .; then
    echo "fuzz-httpd-parser: FAILED (status $status) after ${runs:-?} executions"
    ls -l "$work/crashes"
    exit 1
fi
echo "fuzz-httpd-parser: ${runs:-?} executions in $secs s, no crash, hang or leak"
