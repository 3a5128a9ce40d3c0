#!/usr/bin/env bash
# bench/lib.sh: what the benchmarks share (sourced by run.sh and notify.sh):
# CPU used by a cluster, from /proc, and waiting for a run's backends to go.

CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
# cluster_cpu DIR: CPU ticks used so far by a running cluster: the
# postmaster, its reaped children (cutime/cstime) and its live children
cluster_cpu() {
  local pid c line total=0
  local -a f
  pid="$(head -1 "$1/postmaster.pid")"
  for c in $(pgrep -P "$pid" || true); do
    line="$(cat "/proc/$c/stat" 2>/dev/null)" || continue
    read -ra f <<<"${line##*) }"
    total=$((total + f[11] + f[12]))
  done
  line="$(cat "/proc/$pid/stat")"
  read -ra f <<<"${line##*) }"
  echo $((total + f[11] + f[12] + f[13] + f[14]))
}
# children of the postmaster that are client backends
cluster_backends() {
  local pid
  pid="$(head -1 "$1/postmaster.pid")"
  pgrep -P "$pid" -f '^postgres: .*(\[local\]|[0-9]\([0-9]+\))' 2>/dev/null | wc -l
}
# wait (up to 3 s) until the backends of a finished pgbench are gone and reaped
wait_backends_gone() {
  local i
  for i in $(seq 1 60); do
    [ "$(cluster_backends "$1")" = 0 ] && return 0
    sleep 0.05
  done
  return 0
}
# median of the numbers on stdin
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# backend_instructions DIR SCRIPT N [PGOPTIONS]: instructions the server
# spent in the one backend that ran N transactions of a pgbench SCRIPT
# (extended protocol, one client), counted exactly by callgrind.  The whole
# cluster runs under valgrind (backends are forked, so they stay under it);
# the backend is the process with the most instructions, so the collector
# and PostgreSQL's own background processes do not count.  Prints the count
# (empty when something failed).  Needs BINDIR and scripts/lib.sh.
backend_instructions() {
  local dir="$1" script="$2" n="$3" opts="${4:-}" port pid i best=0 f total
  port=$(sed -n "s/^port = \([0-9]*\)/\1/p" "$dir/postgresql.conf" | tail -1)
  rm -f "$dir"/callgrind.out.*
  ch_as_pg valgrind --tool=callgrind --trace-children=yes \
    --callgrind-out-file="$dir/callgrind.out.%p" \
    "$BINDIR/postgres" -D "$dir" >"$dir/valgrind.log" 2>&1 &
  pid=$!
  for i in $(seq 1 240); do
    ch_as_pg "$BINDIR/pg_isready" -q -h "$dir" -p "$port" && break
    sleep 0.5
  done
  ch_as_pg env PGOPTIONS="$opts" "$BINDIR/pgbench" -n -h "$dir" -p "$port" -U postgres \
    -M extended -c 1 -t "$n" -f "$script" postgres >"$dir/pgbench.log" 2>&1 || true
  ch_as_pg "$BINDIR/pg_ctl" -D "$dir" -m fast -w -t 120 stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  local best_file=""
  for f in "$dir"/callgrind.out.*; do
    [ -f "$f" ] || continue
    total="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1)"
    if [ -n "$total" ] && [ "$total" -gt "$best" ]; then best="$total"; best_file="$f"; fi
  done
  # BENCH_CALLGRIND_KEEP=DIR keeps the backend's profile (callgrind_annotate)
  if [ -n "${BENCH_CALLGRIND_KEEP:-}" ] && [ -n "$best_file" ]; then
    mkdir -p "$BENCH_CALLGRIND_KEEP"
    cp "$best_file" "$BENCH_CALLGRIND_KEEP/$(basename "$dir").$n${opts:+.opts}.callgrind"
  fi
  rm -f "$dir"/callgrind.out.*
  [ "$best" -gt 0 ] && echo "$best"
}
