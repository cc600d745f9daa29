# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/bench/run's report: reads the collected lines
#   program|engine|RESULT|workload|variant|peer|unit|median|min|max|runs|check
#   program|engine|IR|workload|variant|peer|Ir/op|v|v|v|1|ok
# (engine: the AIOCTX_ENGINE of that run, or "-"), prints the Markdown
# table, and writes the CSV file (csv=) and the chart's data (chart=).
#
# Roles: a peer whose name contains "libaioctx" is ours; "raw-*",
# "*floor*" and W5's srv-epoll (raw epoll) are floors; every other peer is
# a peer.  ratio = libaioctx cost / best peer cost of the same workload,
# variant and unit, among peers whose check is ok; for rates (IOPS, .../s)
# cost is the inverse of the figure, so < 1 always means libaioctx does
# better.  ratio_floor: the same against the fastest floor (W1: always
# raw-atomic, the thread-safe floor of aio_bh_schedule).
#
# Exit status 1 if a check is not ok: any row with quick=1, else any
# libaioctx row or a program's exit status (tests/bench/run adds a row
# with variant "exit-status" when a program exits non-zero).

function engine_of(peer, env) {
    if (peer !~ /libaioctx/)
        return "-"
    if (peer ~ /io_uring/)
        return "io_uring"
    if (peer ~ /linux-aio/)
        return "linux-aio"
    if (peer ~ /epoll/)
        return "epoll"
    if (peer ~ /[-(]poll/)
        return "poll"
    return env
}

function role_of(peer) {
    if (peer ~ /libaioctx/)
        return "lib"
    if (peer ~ /^raw-/ || peer ~ /floor/ || peer == "srv-epoll")
        return "floor"
    return "peer"
}

function higher_is_better(unit) {
    return unit == "IOPS" || unit ~ /\/s$/
}

# cost of a figure: lower is better
function cost(v, unit) {
    if (higher_is_better(unit))
        return v > 0 ? 1 / v : 1e300
    return v
}

function fmt(x, ax) {
    ax = x < 0 ? -x : x
    if (x == "")
        return ""
    if (ax >= 10000)
        return sprintf("%.0f", x)
    if (ax >= 100)
        return sprintf("%.1f", x)
    if (ax >= 1)
        return sprintf("%.2f", x)
    return sprintf("%.3f", x)
}

function csvq(s) {
    gsub(/"/, "\"\"", s)
    return "\"" s "\""
}

function ok(check) {
    return check ~ /^ok/
}

BEGIN {
    n = 0
    bad = 0
}

{
    prog = $1; env = $2; kind = $3; w = $4; variant = $5; peer = $6
    unit = $7; med = $8; lo = $9; hi = $10; runs = $11; check = $12
    eng = kind == "IR" ? env : engine_of(peer, env)
    key = w SUBSEP variant SUBSEP peer SUBSEP eng SUBSEP unit
    if (key in seen)
        next
    seen[key] = 1
    # every line goes to the CSV
    nc++
    c_w[nc] = w; c_variant[nc] = variant; c_peer[nc] = peer
    c_eng[nc] = eng; c_unit[nc] = unit; c_med[nc] = med; c_lo[nc] = lo
    c_hi[nc] = hi; c_runs[nc] = runs; c_check[nc] = check; c_prog[nc] = prog
    c_row[nc] = 0
    if (!ok(check) && (quick || role_of(peer) == "lib" || variant == "exit-status"))
        bad = 1
    if (kind == "IR") {
        ir[w SUBSEP variant SUBSEP peer SUBSEP eng] = med
        next
    }
    # CPU figures go to the cpu/op column of their main row
    if (unit ~ /^cpu-/) {
        cpu[w SUBSEP variant SUBSEP peer SUBSEP eng] = fmt(med) " " unit
        next
    }
    if (variant ~ /-server-cpu$/) {
        base = variant
        sub(/-server-cpu$/, "", base)
        cpu[w SUBSEP base SUBSEP peer SUBSEP eng] = fmt(med) " " unit
        next
    }
    n++
    if (!((w SUBSEP variant) in group)) {
        ngroups++
        group[w SUBSEP variant] = ngroups
    }
    r_w[n] = w; r_variant[n] = variant; r_peer[n] = peer; r_eng[n] = eng
    r_unit[n] = unit; r_med[n] = med; r_lo[n] = lo; r_hi[n] = hi
    r_check[n] = check; r_role[n] = role_of(peer)
    c_row[nc] = n
    g = w SUBSEP variant SUBSEP unit
    if (r_role[n] != "lib" && ok(check) && med > 0) {
        c = cost(med, unit)
        if (r_role[n] == "peer" && (!(g in best_peer) || c < best_peer_cost[g])) {
            best_peer[g] = n
            best_peer_cost[g] = c
        }
        # the fastest floor, but W1's is raw-atomic (thread-safe like
        # aio_bh_schedule; raw-plain is not)
        if (r_role[n] == "floor" && (w != "W1" || peer == "raw-atomic") &&
            (!(g in best_floor) || c < best_floor_cost[g])) {
            best_floor[g] = n
            best_floor_cost[g] = c
        }
    }
}

END {
    # ratios of the libaioctx rows
    for (i = 1; i <= n; i++) {
        g = r_w[i] SUBSEP r_variant[i] SUBSEP r_unit[i]
        ratio[i] = ""
        ratio_floor[i] = ""
        if (r_role[i] != "lib" || r_med[i] <= 0)
            continue
        c = cost(r_med[i], r_unit[i])
        if (g in best_peer)
            ratio[i] = c / best_peer_cost[g]
        if (g in best_floor)
            ratio_floor[i] = c / best_floor_cost[g]
    }

    # table order: workload and variant as first seen; in each, the
    # libaioctx rows first, then the peers and floors, each as they came
    for (i = 1; i <= n; i++) {
        sortkey[i] = group[r_w[i] SUBSEP r_variant[i]] * 100000 + \
            (r_role[i] == "lib" ? 0 : 50000) + i
        order[i] = i
        for (j = i; j > 1 && sortkey[order[j - 1]] > sortkey[order[j]]; j--) {
            t = order[j]; order[j] = order[j - 1]; order[j - 1] = t
        }
    }

    hdr[1] = "workload"; hdr[2] = "variant"; hdr[3] = "program/peer"
    hdr[4] = "engine"; hdr[5] = "median"; hdr[6] = "min"; hdr[7] = "max"
    hdr[8] = "unit"; hdr[9] = "x best peer"; hdr[10] = "x floor"
    hdr[11] = "CPU/op"; hdr[12] = "Ir/op"; hdr[13] = "check"
    nf = 13
    for (i = 1; i <= n; i++) {
        g = r_w[i] SUBSEP r_variant[i] SUBSEP r_unit[i]
        k = r_w[i] SUBSEP r_variant[i] SUBSEP r_peer[i] SUBSEP r_eng[i]
        name = r_peer[i]
        if ((g in best_peer) && best_peer[g] == i)
            name = name " (best peer)"
        else if ((g in best_floor) && best_floor[g] == i)
            name = name " (floor)"
        cell[i, 1] = r_w[i]; cell[i, 2] = r_variant[i]; cell[i, 3] = name
        cell[i, 4] = r_eng[i]; cell[i, 5] = fmt(r_med[i])
        cell[i, 6] = fmt(r_lo[i]); cell[i, 7] = fmt(r_hi[i])
        cell[i, 8] = r_unit[i]
        cell[i, 9] = ratio[i] == "" ? "" : sprintf("%.2f", ratio[i])
        cell[i, 10] = ratio_floor[i] == "" ? "" : sprintf("%.2f", ratio_floor[i])
        cell[i, 11] = (k in cpu) ? cpu[k] : ""
        cell[i, 12] = (k in ir) ? ir[k] : ""
        cell[i, 13] = r_check[i]
    }
    for (f = 1; f <= nf; f++) {
        width[f] = length(hdr[f])
        for (i = 1; i <= n; i++)
            if (length(cell[i, f]) > width[f])
                width[f] = length(cell[i, f])
    }
    line = "|"
    sep = "|"
    for (f = 1; f <= nf; f++) {
        line = line sprintf(" %-" width[f] "s |", hdr[f])
        bar = sprintf("%" width[f] "s", "")
        gsub(/ /, "-", bar)
        sep = sep (f >= 5 && f <= 7 || f == 9 || f == 10 ? "-" bar ":|" : "-" bar "-|")
    }
    print ""
    print line
    print sep
    for (o = 1; o <= n; o++) {
        i = order[o]
        line = "|"
        for (f = 1; f <= nf; f++) {
            if (f >= 5 && f <= 7 || f == 9 || f == 10)
                line = line sprintf(" %" width[f] "s |", cell[i, f])
            else
                line = line sprintf(" %-" width[f] "s |", cell[i, f])
        }
        print line
    }

    # CSV: every collected line
    if (csv != "") {
        print "date,machine,workload,variant,program,engine,unit,median,min,max,runs,check,ratio,ratio_floor,best_peer,floor,binary" > csv
        for (j = 1; j <= nc; j++) {
            i = c_row[j]
            rt = i ? ratio[i] : ""
            rf = i ? ratio_floor[i] : ""
            g = c_w[j] SUBSEP c_variant[j] SUBSEP c_unit[j]
            bp = (i && rt != "") ? r_peer[best_peer[g]] : ""
            bf = (i && rf != "") ? r_peer[best_floor[g]] : ""
            printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", \
                date, csvq(machine), csvq(c_w[j]), csvq(c_variant[j]), \
                csvq(c_peer[j]), c_eng[j], csvq(c_unit[j]), c_med[j], \
                c_lo[j], c_hi[j], c_runs[j], csvq(c_check[j]), \
                rt == "" ? "" : sprintf("%.4f", rt), \
                rf == "" ? "" : sprintf("%.4f", rf), csvq(bp), csvq(bf), \
                c_prog[j] > csv
        }
        close(csv)
    }

    # chart: one bar per libaioctx row with a ratio (wall time, lateness
    # and RSS of W3 left out: not costs per operation)
    if (chart != "") {
        printf "" > chart
        for (o = 1; o <= n; o++) {
            i = order[o]
            if (r_role[i] != "lib" || r_unit[i] == "ms" || r_unit[i] == "MiB")
                continue
            if (ratio[i] != "")
                kind = 1
            else if (ratio_floor[i] != "")
                kind = 2
            else
                continue
            label = r_w[i] " " r_variant[i] " " r_peer[i]
            if (r_eng[i] != "-" && index(r_peer[i], r_eng[i]) == 0)
                label = label " [" r_eng[i] "]"
            printf "%s|%.4f|%d\n", label, kind == 1 ? ratio[i] : ratio_floor[i], \
                kind > chart
        }
        close(chart)
    }
    exit bad
}
