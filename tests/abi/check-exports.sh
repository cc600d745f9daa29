#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The exported symbols of libaioctx.so, the AIOCTX_API declarations of the
# public headers and the names in lib/libaioctx.map must be the same set.
# A function declared but not exported, exported without a declaration,
# or exported by a wildcard nobody reviewed fails here.
#
#   check-exports.sh <source dir> <path to libaioctx.so> [cc]
set -eu
src=$1
lib=$2
cc=${3:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Functions: every non-static prototype the public headers declare.
echo '#include <aioctx.h>' >"$tmp/all.c"
"$cc" -fsyntax-only -aux-info "$tmp/aux" -I"$src/include" "$tmp/all.c"
grep "/include/aioctx" "$tmp/aux" | grep -v ' static ' |
    sed -e 's/^.*\*\/ extern //' -e 's/ (.*$//' -e 's/^.*[ *]//' >"$tmp/declared"
# Variables: "AIOCTX_API extern <type> <name>;".
grep -h 'AIOCTX_API extern' "$src/include/aioctx.h" "$src"/include/aioctx/*.h |
    sed -e 's/;.*$//' -e 's/^.*[ *]//' >>"$tmp/declared"
sort -u "$tmp/declared" -o "$tmp/declared"

nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' |
    sed 's/@.*$//' | grep -v '^AIOCTX_' | sort -u >"$tmp/exported"

# The version script: one name per line inside each node's "global:" (a
# node ends with "local:" or with its closing brace).
sed -n '/global:/,/^[[:space:]]*\(local:\|}\)/p' "$src/lib/libaioctx.map" |
    sed -e 's/#.*$//' -e 's/[[:space:]]//g' -e 's/;$//' |
    grep -v -e '^global:' -e '^local:' -e '^}' -e '^$' | sort -u \
    >"$tmp/mapped"

status=0
if grep -q '[*?]' "$tmp/mapped"; then
    echo "lib/libaioctx.map uses wildcards; name every symbol:"
    grep '[*?]' "$tmp/mapped"
    status=1
fi
report() { # report <what> <file a> <file b>
    if [ -n "$(comm -23 "$2" "$3")" ]; then
        echo "$1:"
        comm -23 "$2" "$3" | sed 's/^/  /'
        status=1
    fi
}
report "declared AIOCTX_API but not exported" "$tmp/declared" "$tmp/exported"
report "exported but not declared in a public header" "$tmp/exported" \
    "$tmp/declared"
report "exported but not named in lib/libaioctx.map" "$tmp/exported" \
    "$tmp/mapped"
report "named in lib/libaioctx.map but not exported" "$tmp/mapped" \
    "$tmp/exported"
[ $status -eq 0 ] && echo "$(wc -l <"$tmp/exported") symbols: headers, map and library agree"
exit $status
