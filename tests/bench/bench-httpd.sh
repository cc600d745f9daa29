#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# httpd (examples/httpd/) against Debian's nginx, with wrk: the same
# 1 KiB, 1 MiB and 64 MiB files, served from a temporary directory on the
# same machine, one server process (nginx: one worker, sendfile on, access
# log off; httpd: --quiet, no access log either).
#
#   tests/bench/bench-httpd.sh [PATH/TO/httpd]
#
# Default httpd: build/examples/httpd of the source tree.  Environment:
#   RUNS      runs per server and file (default 3)
#   DURATION  seconds per run (default 5)
#   CONNS     wrk connections (default 50; wrk uses one thread); the
#             64 MiB file gets BIG_CONNS (default 8) so that a response
#             takes well under wrk's timeout (30 s here)
#   ENGINES   httpd engines to measure (default "io_uring epoll")
#   FILES     files to fetch (default "1k 1m 64m")
# The server is pinned to CPU0 and wrk to CPU1 when there are two CPUs.
# A peer that is not installed (nginx) is skipped; without wrk nothing runs.
#
# Prints "RESULT|httpd|<file>|<server>|req/s|median|min|max|runs|check"
# per server and file, then "# ratio" lines: each httpd engine / nginx.
set -u

here=$(cd "$(dirname "$0")" && pwd)
httpd=${1:-$here/../../build/examples/httpd}
runs=${RUNS:-3}
duration=${DURATION:-5}
conns=${CONNS:-50}
big_conns=${BIG_CONNS:-8}
engines=${ENGINES:-io_uring epoll}
files=${FILES:-1k 1m 64m}

if ! command -v wrk >/dev/null 2>&1; then
    echo "# wrk is not installed (apt-get install -y wrk): nothing to measure"
    exit 0
fi
if [ ! -x "$httpd" ]; then
    echo "# no httpd at $httpd (build the examples first)" >&2
    exit 1
fi
nginx=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; })

server_cpu=""
load_cpu=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    server_cpu="taskset -c 0"
    load_cpu="taskset -c 1"
fi

tmp=$(mktemp -d /tmp/bench-httpd.XXXXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# World-readable: nginx's worker runs as nobody when started as root.
chmod 755 "$tmp"
mkdir -m 755 "$tmp/www"
head -c 1024 /dev/urandom >"$tmp/www/1k.bin"
head -c 1048576 /dev/urandom >"$tmp/www/1m.bin"
head -c 67108864 /dev/urandom >"$tmp/www/64m.bin"
chmod 644 "$tmp/www/1k.bin" "$tmp/www/1m.bin" "$tmp/www/64m.bin"

# A TCP port no socket uses (in any state: connections of the previous
# run may still be closing), from a fixed range.
free_port() {
    port=$1
    while ss -Htan "sport = :$port" 2>/dev/null | grep -q .; do
        port=$((port + 1))
    done
    echo "$port"
}

# Wait until the server answers; fetch each file and compare it.
check_server() {
    port=$1
    i=0
    while ! curl -s -o /dev/null "http://127.0.0.1:$port/1k.bin"; do
        i=$((i + 1))
        if [ $i -ge 100 ]; then
            echo "server on port $port did not answer"
            return 1
        fi
        sleep 0.05
    done
    for f in $files; do
        f=$f.bin
        if ! curl -s -o "$tmp/got" "http://127.0.0.1:$port/$f" ||
            ! cmp -s "$tmp/got" "$tmp/www/$f"; then
            echo "wrong body for $f"
            return 1
        fi
    done
    echo ok
}

# start_httpd ENGINE / start_nginx: set port and server_pid.
start_httpd() {
    port=$(free_port 18080)
    $server_cpu "$httpd" --port "$port" --root "$tmp/www" --engine "$1" --quiet \
        >"$tmp/server.out" 2>&1 &
    server_pid=$!
}

start_nginx() {
    port=$(free_port 18180)
    mkdir -p "$tmp/nginx"
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        root $tmp/www;
    }
}
EOF
    $server_cpu "$nginx" -p "$tmp/nginx" -e "$tmp/nginx/error.log" \
        -c "$tmp/nginx/nginx.conf" >"$tmp/server.out" 2>&1 &
    server_pid=$!
}

# Stop the server; false (status set) unless it exited with status 0.
stop_server() {
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    status=$?
    server_pid=""
    return $status
}

# One wrk run of url with c connections; prints requests/s, or
# "fail: why".
wrk_run() {
    out=$($load_cpu wrk -t1 -c"$2" -d"${duration}s" --timeout 30s "$1" 2>&1)
    rps=$(echo "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
    if [ -z "$rps" ]; then
        echo "fail: no result from wrk"
    elif echo "$out" | grep -q "Non-2xx\|Socket errors"; then
        echo "fail: $(echo "$out" | grep "Non-2xx\|Socket errors" | head -1)"
    else
        echo "$rps"
    fi
}

# median/min/max of the numbers on stdin
stats() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) m = v[(NR + 1) / 2];
              else m = (v[NR / 2] + v[NR / 2 + 1]) / 2;
              printf "%.1f|%.1f|%.1f", m, v[1], v[NR] }'
}

# one_run <label> <start function> [engine]: a fresh server, every file
# once; samples and failures go to files under $tmp/s.
one_run() {
    label=$1
    shift
    "$@"
    c=$(check_server "$port")
    for f in $files; do
        if [ "$c" != ok ]; then
            echo "$c" >"$tmp/s/$f.$label.check"
            continue
        fi
        c_f=$conns
        [ "$f" = 64m ] && c_f=$big_conns
        v=$(wrk_run "http://127.0.0.1:$port/$f.bin" "$c_f")
        case $v in
        fail*) echo "$v" >"$tmp/s/$f.$label.check" ;;
        *) echo "$v" >>"$tmp/s/$f.$label" ;;
        esac
    done
    if ! stop_server; then
        echo "server exit status $status" >"$tmp/s/1k.$label.check"
    fi
}

# RESULT line of one server and file; records the median for the ratios.
report() {
    f=$1
    label=$2
    check=ok
    [ -f "$tmp/s/$f.$label.check" ] && check=$(cat "$tmp/s/$f.$label.check")
    if [ ! -s "$tmp/s/$f.$label" ]; then
        echo "RESULT|httpd|$f|$label|req/s|0|0|0|0|$check"
        return
    fi
    s=$(stats <"$tmp/s/$f.$label")
    n=$(wc -l <"$tmp/s/$f.$label")
    echo "RESULT|httpd|$f|$label|req/s|$s|$n|$check"
    echo "$f $label ${s%%|*}" >>"$tmp/medians"
}

echo "# httpd vs nginx: wrk -t1 -c$conns (64m: -c$big_conns)" \
     "-d${duration}s, $runs runs" \
     "(servers interleaved), server ${server_cpu:-unpinned}," \
     "wrk ${load_cpu:-unpinned}"
[ -n "$nginx" ] ||
    echo "# nginx is not installed (apt-get install -y nginx): skipped"
mkdir "$tmp/s"
: >"$tmp/medians"
labels=""
for e in $engines; do
    labels="$labels libaioctx($e)"
done
[ -n "$nginx" ] && labels="$labels nginx"
r=0
while [ $r -lt "$runs" ]; do
    for e in $engines; do
        one_run "libaioctx($e)" start_httpd "$e"
    done
    [ -n "$nginx" ] && one_run nginx start_nginx
    r=$((r + 1))
done
for f in $files; do
    for l in $labels; do
        report "$f" "$l"
    done
done

for f in $files; do
    base=$(awk -v f=$f '$1 == f && $2 == "nginx" { print $3 }' \
        "$tmp/medians")
    [ -n "$base" ] || continue
    awk -v f=$f -v b="$base" '$1 == f && $2 != "nginx" {
        printf "# ratio %s|%s / %s|nginx = %.2f\n", f, $2, f, $3 / b }' \
        "$tmp/medians"
done
