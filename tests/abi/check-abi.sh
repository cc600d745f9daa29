#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Compare the built library's ABI (functions, variables and the types they
# use, as the public headers declare them) with tests/abi/libaioctx.abi.
# Any difference fails, additions included: a change to the ABI is made on
# purpose, by regenerating the baseline with --update and committing it.
# Exits 77 (skipped) without abigail-tools.
#
#   check-abi.sh <source dir> <path to libaioctx.so> [--update]
set -eu
src=$1
lib=$2
baseline=$src/tests/abi/libaioctx.abi

if ! command -v abidiff >/dev/null 2>&1 || ! command -v abidw >/dev/null 2>&1
then
    echo "abigail-tools (abidw, abidiff) not installed: skipped"
    exit 77
fi
if [ "${3:-}" = "--update" ]; then
    abidw --no-corpus-path --no-comp-dir-path --drop-private-types \
        --headers-dir "$src/include" --out-file "$baseline" "$lib"
    echo "wrote $baseline"
    exit 0
fi
if abidiff --headers-dir2 "$src/include" "$baseline" "$lib"; then
    echo "ABI unchanged"
    exit 0
fi
echo "The ABI differs from tests/abi/libaioctx.abi (above).  If the change"
echo "is intended, run: tests/abi/check-abi.sh . <libaioctx.so> --update"
exit 1
