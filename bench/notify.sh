#!/usr/bin/env bash
# bench/notify.sh: what coder_health's LISTEN/NOTIFY tracking costs.
#
#   bench/notify.sh [throughput|readers|all]
#
#   throughput  notifications per second through pg_notify (pgbench, extended
#               protocol, Coder-shaped channels workspace_owner:<id>), on a
#               server with coder_health and one without, in interleaved
#               rounds; prints the median of each and their ratio
#   instructions  instructions per notifying transaction (callgrind on
#               postgres --single; exact, unlike wall-clock rates on a shared
#               machine): none / coder_health / coder_health, track_notify off
#   readers     time to read notify_queue, notify_listeners and
#               notify_channels with 100 LISTEN connections and 1,000
#               channel families (pgbench -t, average latency)
#
# Environment: BENCH_SECONDS (per round, default 5), BENCH_ROUNDS (default 5),
# BENCH_CLIENTS (default 4), PG_CONFIG.  Figures, not pass/fail.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

SECTIONS=("$@")
[ ${#SECTIONS[@]} -eq 0 ] && SECTIONS=(all)
SECONDS_PER_ROUND="${BENCH_SECONDS:-5}"
ROUNDS="${BENCH_ROUNDS:-5}"
CLIENTS="${BENCH_CLIENTS:-4}"
BINDIR="$(ch_bindir)"
WORK="$(mktemp -d /tmp/coder_health_bench_notify.XXXXXX)"
chown postgres:postgres "$WORK"
LISTENER_PIDS=()

cleanup() {
  for p in "${LISTENER_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  ch_stop "$WORK/with"
  ch_stop "$WORK/without"
  rm -rf "$WORK"
}
trap cleanup EXIT

make -C "$ROOT" -s >/dev/null && make -C "$ROOT" -s install >/dev/null

PORT_WITH=$(ch_free_port 58100)
ch_init_cluster "$WORK/with" "$PORT_WITH" "shared_buffers = 128MB" "max_connections = 250"
ch_start "$WORK/with"
PORT_WITHOUT=$(ch_free_port $((PORT_WITH + 1)))
CH_NO_PRELOAD=1 ch_init_cluster "$WORK/without" "$PORT_WITHOUT" "shared_buffers = 128MB" "max_connections = 250"
ch_start "$WORK/without"
ch_psql "$WORK/with" -q -c "CREATE EXTENSION coder_health"

cat > "$WORK/notify.sql" <<'SQL'
\set id random(1, 100000)
SELECT pg_notify('workspace_owner:' || :id, '{"kind":"workspace_update"}');
SQL
chmod a+r "$WORK/notify.sql"

pgbench_tps() {
  local dir="$1" port opts="${2:-}"
  port=$(sed -n "s/^port = \([0-9]*\)/\1/p" "$dir/postgresql.conf" | tail -1)
  ch_as_pg env PGOPTIONS="$opts" "$BINDIR/pgbench" -n -h "$dir" -p "$port" -U postgres -M extended \
    -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_ROUND" -f "$WORK/notify.sql" postgres 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

throughput() {
  echo "== pg_notify throughput: $ROUNDS interleaved rounds of ${SECONDS_PER_ROUND}s, $CLIENTS clients"
  local with=() without=() off=() r t
  # warm both
  SECONDS_PER_ROUND=2 pgbench_tps "$WORK/with" >/dev/null
  SECONDS_PER_ROUND=2 pgbench_tps "$WORK/without" >/dev/null
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
      t=$(pgbench_tps "$WORK/with"); with+=("$t")
      t=$(pgbench_tps "$WORK/without"); without+=("$t")
      t=$(pgbench_tps "$WORK/with" "-c coder_health.track_notify=off"); off+=("$t")
    else
      t=$(pgbench_tps "$WORK/with" "-c coder_health.track_notify=off"); off+=("$t")
      t=$(pgbench_tps "$WORK/without"); without+=("$t")
      t=$(pgbench_tps "$WORK/with"); with+=("$t")
    fi
    printf 'round %d: with %s/s  without %s/s  with, track_notify off %s/s\n' \
      "$r" "${with[-1]}" "${without[-1]}" "${off[-1]}"
  done
  local mw mo mf
  mw=$(printf '%s\n' "${with[@]}" | median)
  mo=$(printf '%s\n' "${without[@]}" | median)
  mf=$(printf '%s\n' "${off[@]}" | median)
  printf 'median notifications/s: with coder_health %.0f, without %.0f, ratio %.3f (goal >= 0.97)\n' \
    "$mw" "$mo" "$(echo "$mw / $mo" | bc -l)"
  printf 'LISTEN/NOTIFY tracking alone: with %.0f vs track_notify off %.0f, ratio %.3f\n' \
    "$mw" "$mf" "$(echo "$mw / $mf" | bc -l)"
  printf 'load average during the run: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  ch_psql "$WORK/with" -c "SELECT notifications, notifications_per_s, commit_p50_ms, commit_p99_ms FROM coder_health.notify_queue"
}

readers() {
  echo "== reading the views with 100 listeners and 1,000 channel families"
  local i
  for i in $(seq 1 100); do
    # an idle listener that keeps reading the queue (psql reads stdin only)
    ( printf 'LISTEN "workspace_owner:%08d-1234-4abc-9def-0123456789ab";\nLISTEN tailnet_peer_update;\nLISTEN "fam_%s";\nSELECT pg_sleep(600);\n' \
        "$i" "$(echo "$i" | tr '0-9' 'a-j')" |
        ch_psql "$WORK/with" -q >/dev/null 2>&1 ) &
    LISTENER_PIDS+=($!)
  done
  ch_psql "$WORK/with" -q -c "SELECT count(pg_notify('fam_' || translate(g::text, '0123456789', 'abcdefghij'), 'x')) FROM generate_series(1, 1000) g" >/dev/null
  sleep 2
  ch_psql "$WORK/with" -c "SELECT listeners FROM coder_health.notify_queue" \
    -c "SELECT count(*) AS families FROM coder_health.notify_channels"
  local port view
  port=$(sed -n "s/^port = \([0-9]*\)/\1/p" "$WORK/with/postgresql.conf" | tail -1)
  for view in notify_queue notify_listeners notify_channels; do
    echo "SELECT * FROM coder_health.$view;" > "$WORK/read_$view.sql"
    chmod a+r "$WORK/read_$view.sql"
    printf '%-18s ' "$view"
    ch_as_pg "$BINDIR/pgbench" -n -h "$WORK/with" -p "$port" -U postgres -c 1 -t 50 \
      -f "$WORK/read_$view.sql" postgres 2>/dev/null |
      sed -n 's/^latency average = \(.*\)/average \1 per read (goal < 20 ms)/p'
  done
}

instructions() {
  echo "== instructions per notifying transaction (callgrind, postgres --single)"
  if ! command -v valgrind >/dev/null 2>&1; then echo "skipped: no valgrind"; return 0; fi
  local dir="$WORK/with" n cfg spl opts total
  ch_stop "$dir"
  for n in 2000 6000; do
    awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++)
      printf "SELECT pg_notify(\x27workspace_owner:%d\x27, \x27{\"kind\":\"workspace_update\"}\x27);\n", i }' \
      >"$WORK/instr.$n.sql"
  done
  declare -A ir
  for cfg in none ch ch_off; do
    opts=()
    case "$cfg" in
      none) spl="" ;;
      ch) spl="coder_health" ;;
      ch_off) spl="coder_health"; opts=(-c coder_health.track_notify=off) ;;
    esac
    for n in 2000 6000; do
      ch_as_pg valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$cfg.$n" \
        "$BINDIR/postgres" --single -D "$dir" -c shared_preload_libraries="$spl" \
        ${opts[@]+"${opts[@]}"} postgres <"$WORK/instr.$n.sql" >/dev/null 2>&1 || true
      total="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$WORK/cg.$cfg.$n" | head -1)"
      ir[$cfg.$n]="${total:-0}"
    done
    printf '  %-7s %s instructions per notifying transaction\n' "$cfg" \
      "$(( (ir[$cfg.6000] - ir[$cfg.2000]) / 4000 ))"
  done
  local none=$(( (ir[none.6000] - ir[none.2000]) / 4000 ))
  local ch=$(( (ir[ch.6000] - ir[ch.2000]) / 4000 ))
  local off=$(( (ir[ch_off.6000] - ir[ch_off.2000]) / 4000 ))
  printf '  instruction ratio none/coder_health %.3f; none/track_notify off %.3f\n' \
    "$(echo "$none / $ch" | bc -l)" "$(echo "$none / $off" | bc -l)"
  ch_start "$dir"
}

for s in "${SECTIONS[@]}"; do
  case "$s" in
    throughput) throughput ;;
    readers) readers ;;
    instructions) instructions ;;
    all) throughput; instructions; readers ;;
    *) echo "unknown section $s"; exit 2 ;;
  esac
done
