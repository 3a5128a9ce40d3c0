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
