#!/bin/bash
# make soak: the Coder workload against a server with coder_health for a
# long while, then a verdict per criterion and one line "N passed, N failed".
#
#   SOAK_SECONDS=600 bash test/soak.sh
#
# Load (all at once, for SOAK_SECONDS):
#   * workload/run.sh: SOAK_SERVERS simulated Coder Servers (default 9), each
#     with SOAK_POOL pool connections (10) and one LISTEN connection, so
#     9 x 11 = 99 connections, SOAK_RATE statements/s per server (100);
#   * a NOTIFY storm: pgbench -f workload/pgbench/notify.sql with
#     SOAK_STORM_CLIENTS clients (2) at SOAK_STORM_RATE notifications/s in all
#     (2000; Coder's own traffic is tens a second);
#   * one stalled listener: a session that LISTENs, then sits in an open
#     transaction, so it reads nothing and the NOTIFY queue backs up behind it.
#
# coder_health.window_step is SOAK_WINDOW_STEP (5 s; 2 s for runs up to 3
# minutes), so the 15-step latency windows fill and rotate within the warm-up.
# Criteria (after a warm-up of SOAK_WARMUP seconds, default a fifth of the run
# but at least 16 window steps + 10 s; samples every SOAK_SAMPLE seconds,
# default 10, 5 for short runs):
#   errors caused by coder_health: 0 workload errors, 0 failed pgbench
#       transactions, no WARNING/ERROR/FATAL/PANIC naming coder_health in the
#       server log, no crashed server process;
#   backend memory flat: private memory (RssAnon in /proc/<pid>/status; VmRSS
#       also counts shared buffers a backend happens to touch) of every
#       backend that lived through the measured part, and of the collector,
#       grows by at most SOAK_RSS_TOLERANCE_KB (default 1024) per process;
#       and (PostgreSQL 14+) the bytes in use in the collector's memory
#       contexts (pg_log_backend_memory_contexts(), "Grand total ... used")
#       grow by at most SOAK_CONTEXT_TOLERANCE_BYTES (default 65536) from
#       the end of the warm-up to the end;
#   shared memory flat: status.shmem_used_bytes stays <= reserved and grows
#       by at most SOAK_SHMEM_TOLERANCE_BYTES (default 1% of reserved): it
#       does grow a little, and saturates, as latency sketches first see
#       new buckets and take a chunk for them; a leak would not stop;
#   collector overruns: 0 (status.collector_overruns over the whole run).
# Unless SOAK_VALGRIND=0, test/valgrind.sh then runs the regression suite
# under valgrind memcheck (one more criterion).
#
# The cluster is its own (scripts/lib.sh), in SOAK_DIR, stopped at the end.
# SOAK_NO_BUILD=1 skips building and installing (the TAP test that runs the
# short version sets it; make test has installed already).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

SECONDS_TOTAL="${SOAK_SECONDS:-600}"
SERVERS="${SOAK_SERVERS:-9}"
POOL="${SOAK_POOL:-10}"
RATE="${SOAK_RATE:-100}"
STORM_CLIENTS="${SOAK_STORM_CLIENTS:-2}"
STORM_RATE="${SOAK_STORM_RATE:-2000}"
if [ "$SECONDS_TOTAL" -le 180 ]; then SAMPLE="${SOAK_SAMPLE:-5}"; else SAMPLE="${SOAK_SAMPLE:-10}"; fi
# The latency windows (up to 15 minutes = 15 steps) take new sketch chunks
# until they are full; short steps bring them to steady state within the
# warm-up (and rotate them often, which is what a leak would show in).
if [ "$SECONDS_TOTAL" -le 180 ]; then WINDOW_STEP="${SOAK_WINDOW_STEP:-2}"; else WINDOW_STEP="${SOAK_WINDOW_STEP:-5}"; fi
fill=$((16 * WINDOW_STEP + 10))
WARMUP="${SOAK_WARMUP:-$((SECONDS_TOTAL / 5 > fill ? SECONDS_TOTAL / 5 : fill))}"
RSS_TOL_KB="${SOAK_RSS_TOLERANCE_KB:-1024}"
CTX_TOL="${SOAK_CONTEXT_TOLERANCE_BYTES:-65536}"
SHMEM_TOL="${SOAK_SHMEM_TOLERANCE_BYTES:-}"
DIR="${SOAK_DIR:-/tmp/coder_health_soak.$(echo "$ROOT" | md5sum | cut -c1-8)}"

BINDIR="$(ch_bindir)"
export PATH="$BINDIR:$PATH"
PASSED=0
FAILED=0

verdict() {
  # verdict PASS|FAIL name detail
  printf '%s: %s (%s)\n' "$1" "$2" "$3"
  if [ "$1" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

if [ "${SOAK_NO_BUILD:-0}" != 1 ]; then
  echo "== build and install into $(ch_pg_config)"
  make -C "$ROOT" -s WERROR=1 >/dev/null && make -C "$ROOT" -s install >/dev/null &&
    make -C "$ROOT/workload" -s >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
  chmod -R a+rX "$ROOT" 2>/dev/null || true
fi

PORT=$(ch_free_port "${SOAK_PORT:-57500}")
rm -rf "$DIR"
mkdir -p "$(dirname "$DIR")"
ch_init_cluster "$DIR/data" "$PORT" \
  "max_connections = 150" \
  "coder_health.save_interval = 30" \
  "coder_health.window_step = $WINDOW_STEP" \
  "log_line_prefix = '%m [%p] %b '" || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
LOG="$DIR/data/server.log"
ch_start "$DIR/data" || { echo "server did not start"; tail -20 "$LOG"; echo "0 passed, 1 failed"; exit 1; }

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ch_stop "$DIR/data"
}
trap cleanup EXIT

PSQL=(psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres)
sql() { "${PSQL[@]}" -d "${2:-coder}" -c "$1"; }

sql "CREATE DATABASE coder" postgres >/dev/null
sql "CREATE EXTENSION coder_health" >/dev/null
bash "$ROOT/workload/run.sh" --servers 1 --duration 1 --init --workspaces 500 \
  --host 127.0.0.1 --port "$PORT" --dbname coder --user postgres >/dev/null 2>"$DIR/init.err" ||
  { echo "workload init failed"; cat "$DIR/init.err"; echo "0 passed, 1 failed"; exit 1; }

overruns0=$(sql "SELECT collector_overruns FROM coder_health.status")
echo "== soak: ${SECONDS_TOTAL}s, $SERVERS Coder Servers x $((POOL + 1)) connections at $RATE statements/s each," \
  "NOTIFY storm of $STORM_CLIENTS pgbench clients, 1 stalled listener; window_step ${WINDOW_STEP}s, warm-up ${WARMUP}s, samples every ${SAMPLE}s"

# the stalled listener: LISTEN, then an open transaction that reads nothing
( printf 'LISTEN soak_stalled;\nBEGIN;\nSELECT txid_current();\nSELECT pg_sleep(%d);\nCOMMIT;\n' \
    "$((SECONDS_TOTAL + 60))" | "${PSQL[@]}" -d coder >/dev/null 2>"$DIR/stalled.err" ) &
PIDS+=($!)

bash "$ROOT/workload/run.sh" --servers "$SERVERS" --pool "$POOL" --rate "$RATE" \
  --duration "$SECONDS_TOTAL" --host 127.0.0.1 --port "$PORT" --dbname coder \
  --user postgres >"$DIR/workload.out" 2>"$DIR/workload.err" &
WORKLOAD_PID=$!
PIDS+=($WORKLOAD_PID)

pgbench -n -M prepared -f "$ROOT/workload/pgbench/notify.sql" -c "$STORM_CLIENTS" -j 1 -R "$STORM_RATE" \
  -T "$SECONDS_TOTAL" -h 127.0.0.1 -p "$PORT" -U postgres coder \
  >"$DIR/storm.out" 2>"$DIR/storm.err" &
STORM_PID=$!
PIDS+=($STORM_PID)

# The collector's pid and the bytes used in its memory contexts, as it logs
# them when asked (PostgreSQL 14+; nothing on 13).
collector_contexts() {
  local pid off used="" i
  pid=$(sql "SELECT pid FROM pg_stat_activity WHERE backend_type = 'coder_health collector'" 2>/dev/null)
  [ -n "$pid" ] || return 0
  [ "$(sql "SELECT count(*) FROM pg_proc WHERE proname = 'pg_log_backend_memory_contexts'")" = 1 ] || return 0
  off=$(stat -c %s "$LOG")
  sql "SELECT pg_log_backend_memory_contexts($pid)" >/dev/null 2>&1 || return 0
  for i in $(seq 1 100); do
    used=$(tail -c +"$((off + 1))" "$LOG" |
      sed -n 's/.*Grand total: [0-9]* bytes in [0-9]* blocks; [0-9]* free ([0-9]* chunks); \([0-9]*\) used.*/\1/p' | head -1)
    [ -n "$used" ] && break
    sleep 0.1
  done
  [ -n "$used" ] && echo "$pid $used"
}
ctx_first=""

# --- sampling --------------------------------------------------------------
# samples.txt: elapsed pid backend_type rss_anon_kb vm_rss_kb
# shmem.txt:   elapsed shmem_used_bytes shmem_reserved_bytes queue_backlog_bytes connections
start=$(date +%s)
: >"$DIR/samples.txt"
: >"$DIR/shmem.txt"
while :; do
  now=$(date +%s)
  elapsed=$((now - start))
  # the last sample must see the workload's backends: stop a few seconds
  # before it ends (a sample taken as it exits follows almost no process)
  [ "$elapsed" -gt $((SECONDS_TOTAL - 3)) ] && break
  kill -0 "$WORKLOAD_PID" 2>/dev/null || break
  sql "SELECT pid, replace(backend_type, ' ', '_') FROM pg_stat_activity
       WHERE backend_type IN ('client backend', 'coder_health collector')
         AND pid <> pg_backend_pid()" 2>/dev/null |
    while IFS='|' read -r pid btype; do
      st="/proc/$pid/status"
      [ -r "$st" ] || continue
      anon=$(awk '/^RssAnon:/ {print $2}' "$st" 2>/dev/null)
      rss=$(awk '/^VmRSS:/ {print $2}' "$st" 2>/dev/null)
      [ -n "$anon" ] && echo "$elapsed $pid $btype $anon $rss"
    done >>"$DIR/samples.txt"
  sql "SELECT s.shmem_used_bytes, s.shmem_reserved_bytes, q.backlog_bytes,
              (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
       FROM coder_health.status s, coder_health.notify_queue q" 2>/dev/null |
    tr '|' ' ' | sed "s/^/$elapsed /" >>"$DIR/shmem.txt"
  if [ -z "$ctx_first" ] && [ "$elapsed" -ge "$WARMUP" ]; then
    ctx_first=$(collector_contexts)
    ctx_first=${ctx_first:-none}
  fi
  if ! kill -0 "$WORKLOAD_PID" 2>/dev/null; then break; fi
  sleep "$SAMPLE"
done
ctx_last=$(collector_contexts)
wait "$WORKLOAD_PID"; workload_rc=$?
wait "$STORM_PID"; storm_rc=$?

# --- verdicts --------------------------------------------------------------
echo "== results (files in $DIR)"
total_line=$(grep '^total ' "$DIR/workload.out" || true)
echo "workload: ${total_line:-no total line}"
kv() { echo "$total_line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
wl_statements=$(kv statements); wl_errors=$(kv errors)
storm_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/storm.out")
storm_failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$DIR/storm.out")
storm_failed=${storm_failed:-0}
echo "notify storm: ${storm_tx:-?} notifications by pgbench at up to ${STORM_RATE}/s, $storm_failed failed (rc $storm_rc)"
ch_lines=$(grep -E '(WARNING|ERROR|FATAL|PANIC)' "$LOG" | grep -c 'coder_health' || true)
crash_lines=$(grep -cE 'was terminated by signal|exited with exit code [^01]|terminating any other active server processes' "$LOG" || true)
other_errors=$(grep -E '(ERROR|FATAL|PANIC)' "$LOG" | grep -vc 'coder_health' || true)
echo "server log: $ch_lines lines naming coder_health at WARNING or above, $crash_lines crash lines, $other_errors other ERROR/FATAL lines"
if [ "$other_errors" -gt 0 ]; then grep -E '(ERROR|FATAL|PANIC)' "$LOG" | grep -v coder_health | head -5; fi
if [ "$ch_lines" -gt 0 ]; then grep -E '(WARNING|ERROR|FATAL|PANIC)' "$LOG" | grep coder_health | head -5; fi
errs=$(( ${wl_errors:-1} + storm_failed + ch_lines + crash_lines ))
if [ -n "$wl_statements" ] && [ "$wl_statements" -gt 0 ] && [ "$workload_rc" = 0 ] &&
   [ "$storm_rc" = 0 ] && [ "$errs" -eq 0 ]; then
  verdict PASS "errors caused by coder_health" "0; workload ${wl_statements} statements ${wl_errors} errors, storm ${storm_tx:-0} notifications ${storm_failed} failed, log ${ch_lines}, crashes ${crash_lines}"
else
  verdict FAIL "errors caused by coder_health" "workload ${wl_statements:-?} statements ${wl_errors:-?} errors rc ${workload_rc}, storm failed ${storm_failed} rc ${storm_rc}, log ${ch_lines}, crashes ${crash_lines}"
fi

# per-process private memory growth over the measured part (after warm-up),
# for processes present in the first and the last measured sample
read -r rss_n rss_max_kb rss_max_pid rss_mean_kb rss_first_total rss_last_total < <(
  awk -v w="$WARMUP" '
    $1 >= w { if (!(($2) in first)) { first[$2] = $4; ft[$2] = $1 } last[$2] = $4; lt[$2] = $1
              if ($1 > maxt) maxt = $1; if (mint == "" || $1 < mint) mint = $1 }
    END {
      n = 0; max = -1e18; sum = 0
      for (p in first) if (ft[p] == mint && lt[p] == maxt) {
        g = last[p] - first[p]; n++; sum += g; f += first[p]; l += last[p]
        if (g > max) { max = g; maxp = p } }
      if (n == 0) print 0, 0, 0, 0, 0, 0
      else printf "%d %d %d %.1f %d %d\n", n, max, maxp, sum / n, f, l
    }' "$DIR/samples.txt")
coll_growth=$(awk -v w="$WARMUP" '$1 >= w && $3 == "coder_health_collector" { if (f == "") f = $4; l = $4 }
  END { if (f == "") print "none"; else print l - f }' "$DIR/samples.txt")
vmrss=$(awk -v w="$WARMUP" '$1 >= w { if (!($2 in f)) f[$2] = $5; l[$2] = $5 }
  END { for (p in f) { g = l[p] - f[p]; if (g > m) m = g } printf "%d", m }' "$DIR/samples.txt")
echo "backend memory after warm-up: $rss_n processes followed from first to last sample;" \
  "private memory (RssAnon) total ${rss_first_total} -> ${rss_last_total} kB, mean growth ${rss_mean_kb} kB," \
  "max ${rss_max_kb} kB (pid ${rss_max_pid}); collector ${coll_growth} kB; max VmRSS growth ${vmrss} kB (includes shared buffers touched)"
# the collector's memory contexts, exact, where PostgreSQL can log them
ctx_ok=1
ctx_detail="collector contexts not measured (PostgreSQL 13 has no pg_log_backend_memory_contexts)"
if [ "$(sql "SELECT count(*) FROM pg_proc WHERE proname = 'pg_log_backend_memory_contexts'")" = 1 ]; then
  read -r ctx_pid0 ctx_used0 <<<"${ctx_first:-}"
  read -r ctx_pid1 ctx_used1 <<<"${ctx_last:-}"
  if [ -n "${ctx_used0:-}" ] && [ -n "${ctx_used1:-}" ] && [ "$ctx_pid0" = "$ctx_pid1" ] &&
     [ $((ctx_used1 - ctx_used0)) -le "$CTX_TOL" ]; then
    ctx_detail="collector contexts ${ctx_used0} -> ${ctx_used1} bytes used, tolerance ${CTX_TOL}"
  else
    ctx_ok=0
    ctx_detail="collector contexts '${ctx_first:-}' -> '${ctx_last:-}' (pid bytes used), tolerance ${CTX_TOL}"
  fi
fi
echo "collector memory: ${ctx_detail}"
if [ "$rss_n" -ge 10 ] && [ "$rss_max_kb" -le "$RSS_TOL_KB" ] && [ "$coll_growth" != none ] &&
   [ "$coll_growth" -le "$RSS_TOL_KB" ] && [ "$ctx_ok" = 1 ]; then
  verdict PASS "backend memory flat" "max growth ${rss_max_kb} kB over ${rss_n} backends, collector ${coll_growth} kB, tolerance ${RSS_TOL_KB} kB; ${ctx_detail}"
else
  verdict FAIL "backend memory flat" "max growth ${rss_max_kb} kB over ${rss_n} backends, collector ${coll_growth} kB, tolerance ${RSS_TOL_KB} kB; ${ctx_detail}"
fi

read -r sh_n sh_first sh_last sh_min sh_max sh_reserved backlog_max < <(
  awk -v w="$WARMUP" '$1 >= w { n++; if (n == 1) { f = $2; mn = $2; mx = $2 } l = $2
      if ($2 < mn) mn = $2; if ($2 > mx) mx = $2; r = $3; if ($4 > b) b = $4 }
    END { printf "%d %d %d %d %d %d %d\n", n, f, l, mn, mx, r, b }' "$DIR/shmem.txt")
echo "shared memory after warm-up: $sh_n samples, shmem_used_bytes ${sh_first} -> ${sh_last} (min ${sh_min}, max ${sh_max}) of ${sh_reserved} reserved;" \
  "NOTIFY queue backlog behind the stalled listener up to ${backlog_max} bytes"
[ -n "$SHMEM_TOL" ] || SHMEM_TOL=$((sh_reserved / 100))
if [ "$sh_n" -ge 2 ] && [ $((sh_max - sh_first)) -le "$SHMEM_TOL" ] && [ "$sh_max" -le "$sh_reserved" ]; then
  verdict PASS "shared memory flat" "growth $((sh_max - sh_first)) bytes, tolerance ${SHMEM_TOL}"
else
  verdict FAIL "shared memory flat" "growth $((sh_max - sh_first)) bytes over ${sh_n} samples, tolerance ${SHMEM_TOL}"
fi
if [ "${backlog_max:-0}" -gt 0 ]; then
  verdict PASS "stalled listener held the queue" "backlog up to ${backlog_max} bytes"
else
  verdict FAIL "stalled listener held the queue" "no backlog seen"
fi

overruns1=$(sql "SELECT collector_overruns FROM coder_health.status")
runs=$(sql "SELECT collector_runs FROM coder_health.status")
cycle=$(sql "SELECT round(collector_last_cycle_ms::numeric, 2) FROM coder_health.status")
if [ -n "$overruns1" ] && [ $((overruns1 - overruns0)) -eq 0 ]; then
  verdict PASS "collector overruns" "0 in ${runs} runs, last cycle ${cycle} ms"
else
  verdict FAIL "collector overruns" "$((${overruns1:-0} - overruns0)) in ${runs:-?} runs"
fi

trap - EXIT
cleanup

if [ "${SOAK_VALGRIND:-1}" = 1 ]; then
  echo "== valgrind: the regression suite against a server under memcheck"
  if bash "$ROOT/test/valgrind.sh"; then
    verdict PASS "valgrind memcheck" "0 errors in coder_health code"
  else
    verdict FAIL "valgrind memcheck" "see output above"
  fi
fi

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
