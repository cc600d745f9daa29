#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every exported symbol has a section-3 man page, in the build tree and once
# installed:
#  - the names come from lib/libaioctx.map (every version node) and from the
#    library's dynamic symbol table, so a symbol added to either is checked;
#  - each has man3/NAME.3, either a page whose NAME line has a description
#    (an undocumented declaration has none) or a ".so" link to such a page;
#  - `cmake --install --component man` puts them under share/man, where
#    man(1), when installed, resolves `man 3 NAME` for every name and
#    `man 7 libaioctx`;
#  - groff, when installed, renders every page without a warning.
#
#   check-man.sh <source dir> <build dir> <generated man dir> <libaioctx.so>
set -eu
src=$1
build=$2
mandir=$3
lib=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sed -n '/global:/,/local:/p' "$src/lib/libaioctx.map" |
    sed -e 's/#.*$//' -e 's/[[:space:]]//g' -e 's/;$//' |
    grep -v -e '^global:' -e '^local:' -e '^$' -e '[{}]' >"$tmp/names"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' |
    sed 's/@.*$//' | grep -v '^AIOCTX_' >>"$tmp/names"
sort -u "$tmp/names" -o "$tmp/names"
count=$(wc -l <"$tmp/names")
[ "$count" -gt 100 ] || { echo "only $count names found: bad parse"; exit 1; }

status=0
# check_pages <man root>: every name has man3/NAME.3, a page whose NAME line
# names it with a description, or a ".so" link to such a page (one awk run:
# a shell loop over ~150 names costs seconds on a loaded machine).
check_pages() {
    awk -v root="$1" '
        NR == FNR { names[$0] = 1; next }
        FNR == 1 { page = FILENAME; sub(/.*\//, "", page); sub(/\.3$/, "", page)
                   exists[page] = 1; in_name = 0 }
        /^\.so / { target = $2; sub(/.*\//, "", target); sub(/\.3$/, "", target)
                   link[page] = target }
        in_name { desc[page] = $0; in_name = 0 }
        /^\.SH NAME/ { in_name = 1 }
        END {
            bad = 0
            for (n in names) {
                p = n
                if (!(p in exists)) { print n ": no man page in " root "/man3"; bad = 1; continue }
                if (p in link) {
                    p = link[p]
                    if (!(p in exists)) { print n ": .so link to a missing page " p; bad = 1; continue }
                }
                d = desc[p]
                if (index(d, n) == 0 || d !~ / \\- [^ ]/) {
                    print n ": the NAME line of " p ".3 lacks it or a description"
                    print "  (a declaration in include/aioctx/ without a comment?)"
                    bad = 1
                }
            }
            exit bad
        }' "$tmp/names" "$1"/man3/*.3
}
check_pages "$mandir" || status=1
[ -f "$mandir/man7/libaioctx.7" ] || { echo "no libaioctx(7)"; status=1; }
[ $status -eq 0 ] || exit 1

# Installed.
cmake --install "$build" --component man --prefix "$tmp/prefix" >/dev/null
inst=$(find "$tmp/prefix" -type d -name man -path '*share/man' | head -n1)
if [ -z "$inst" ]; then
    echo "cmake --install put no man pages under share/man"
    exit 1
fi
check_pages "$inst" || status=1
[ $status -eq 0 ] || exit 1

if command -v man >/dev/null 2>&1; then
    # One man(1) call for every name: it prints one path per name found.
    # shellcheck disable=SC2046
    found=$(MANPATH=$inst man -w 3 $(cat "$tmp/names") 2>"$tmp/man.err" |
            wc -l) || true
    if [ "$found" -ne "$count" ]; then
        echo "man 3 NAME resolves for $found of $count names (MANPATH=$inst):"
        cat "$tmp/man.err"
        status=1
    fi
    MANPATH=$inst man -w 7 libaioctx >/dev/null 2>&1 ||
        { echo "man 7 libaioctx does not resolve"; status=1; }
    # A .so page renders its target's text.
    MANPATH=$inst MANWIDTH=80 man 3 aio_file_co_pwritev 2>/dev/null |
        grep -q 'aio_file_co_pwritev' ||
        { echo "man 3 aio_file_co_pwritev renders nothing"; status=1; }
fi
if command -v groff >/dev/null 2>&1; then
    # One run over every page (not the .so links): warnings name the file.
    out=$(groff -man -ww -z -Tutf8 $(grep -L '^\.so ' "$mandir"/man3/*.3) \
          "$mandir"/man7/libaioctx.7 2>&1) || status=1
    if [ -n "$out" ]; then
        echo "groff warnings:"
        echo "$out" | sed 's/^/  /'
        status=1
    fi
fi
[ $status -eq 0 ] && echo "$count exported symbols: every one has a man page, installed too"
exit $status
