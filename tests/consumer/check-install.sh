#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install the build tree into a temporary prefix, then build the consumer
# against it with pkg-config (Makefile) and with find_package (CMake), and
# run both.  Usage: check-install.sh <build-dir> <source-dir>
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n1)
libdir=${libdir%/pkgconfig}

PKG_CONFIG_PATH=$libdir/pkgconfig make -s -C "$src" -f "$src/Makefile" \
    OUT="$tmp/consumer-pc" CC="${CC:-cc}" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/consumer-pc"

cmake -S "$src" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/cmake-build/consumer"
echo "check-install: pkg-config and find_package consumers both ran"
