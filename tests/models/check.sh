#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Model-check tests/models/notify.pml with spin: the protocol as
# implemented must verify (no invalid end state, no assertion failure, no
# acceptance cycle of the LTL claim), and each deliberately broken variant
# must be rejected, so that the check itself can fail.
# Exit 77 (skipped) when spin or a C compiler is missing.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
command -v spin >/dev/null 2>&1 || { echo "spin not installed: skipped"; exit 77; }
command -v "$cc" >/dev/null 2>&1 || { echo "no C compiler: skipped"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# verify <variant name> <spin -D flags...>: prints the number of errors
# found by the safety run plus the LTL run.
verify() {
    name=$1
    shift
    d=$work/$name
    mkdir -p "$d"
    cp "$here/notify.pml" "$d/"
    (
        cd "$d"
        spin "$@" -a notify.pml >spin.log 2>&1 || { cat spin.log >&2; exit 1; }
        "$cc" -O0 -DSAFETY -DNOCLAIM -o pan-safety pan.c 2>cc.log ||
            { cat cc.log >&2; exit 1; }
        "$cc" -O0 -o pan-ltl pan.c 2>>cc.log || { cat cc.log >&2; exit 1; }
        ./pan-safety -m100000 >safety.log 2>&1 || true
        ./pan-ltl -m100000 -a -f >ltl.log 2>&1 || true
        s=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' safety.log)
        l=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' ltl.log)
        if [ -z "$s" ] || [ -z "$l" ]; then
            cat safety.log ltl.log >&2
            exit 1
        fi
        printf '%-14s safety errors %s, ltl errors %s (%s states)\n' \
            "$name" "$s" "$l" \
            "$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' safety.log)" >&2
        echo $((s + l))
    )
}

status=0
good=$(verify implemented) || exit 1
if [ "$good" -ne 0 ]; then
    echo "FAIL: the implemented protocol has errors" >&2
    status=1
fi
for variant in NO_RECHECK LATE_ANNOUNCE; do
    bad=$(verify "$variant" "-D$variant") || exit 1
    if [ "$bad" -eq 0 ]; then
        echo "FAIL: broken variant $variant was not rejected" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "notify model: implemented protocol verified, broken variants rejected"
exit $status
