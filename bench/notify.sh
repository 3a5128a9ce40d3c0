#!/usr/bin/env bash
# bench/notify.sh: what coder_health's LISTEN/NOTIFY tracking costs.
#
#   bench/notify.sh [throughput|server|instructions|readers|all]
#
#   throughput  notifications per second through pg_notify (pgbench, extended
#               protocol, Coder-shaped channels workspace_owner:<id>), on a
#               server with coder_health, the same with track_notify off, and
#               one without it; the three take turns in rotated order every
#               few seconds.  Prints median rates, the median of the
#               per-round ratios, and server CPU per notifying transaction
#               (all of each cluster's processes, from /proc), which other
#               load on the machine disturbs much less than rates
#   server      instructions per notifying transaction in the backend of a
#               running server, over the extended protocol (callgrind on the
#               whole cluster, the busiest process counted): none /
#               coder_health / coder_health with track_notify off; exact,
#               and what the throughput section measures, minus the noise
#   instructions  instructions per notifying transaction (callgrind on
#               postgres --single; exact, unlike wall-clock rates on a shared
#               machine): none / none with compute_query_id (core query
#               ids, for comparison) / coder_health /
#               coder_health with track_notify off
#   readers     time to read notify_queue, notify_listeners and
#               notify_channels with 100 LISTEN connections and 1,000
#               channel families (pgbench -t, average latency)
#
# Environment: BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 9),
# BENCH_CLIENTS (default 4), PG_CONFIG.  Figures, not pass/fail.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

SECTIONS=("$@")
[ ${#SECTIONS[@]} -eq 0 ] && SECTIONS=(all)
SECONDS_PER_ROUND="${BENCH_SECONDS:-3}"
ROUNDS="${BENCH_ROUNDS:-9}"
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

# a configuration's cluster and session options: without / with / off
# (with coder_health, track_notify off)
cfg_dir() { if [ "$1" = without ]; then echo "$WORK/without"; else echo "$WORK/with"; fi; }
cfg_opts() { if [ "$1" = off ]; then echo "-c coder_health.track_notify=off"; fi; }

# one pgbench run: prints "tps transactions cpu_ticks"
notify_run() {
  local dir="$1" opts="${2:-}" port out cpu0 tps tx
  port=$(sed -n "s/^port = \([0-9]*\)/\1/p" "$dir/postgresql.conf" | tail -1)
  cpu0="$(cluster_cpu "$dir")"
  out="$(ch_as_pg env PGOPTIONS="$opts" "$BINDIR/pgbench" -n -h "$dir" -p "$port" -U postgres -M extended \
    -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_ROUND" -f "$WORK/notify.sql" postgres 2>/dev/null)"
  wait_backends_gone "$dir"
  tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)"
  tx="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out" | head -1)"
  echo "${tps:-nan} ${tx:-0} $(($(cluster_cpu "$dir") - cpu0))"
}

throughput() {
  echo "== pg_notify throughput: $ROUNDS rounds of ${SECONDS_PER_ROUND}s per configuration, $CLIENTS clients, order rotated"
  local configs=(without with off) raw="$WORK/tput.tsv" r k cfg res
  : >"$raw"
  # warm both clusters
  SECONDS_PER_ROUND=2 notify_run "$WORK/with" >/dev/null
  SECONDS_PER_ROUND=2 notify_run "$WORK/without" >/dev/null
  for r in $(seq 1 "$ROUNDS"); do
    printf 'round %d:' "$r"
    for k in 0 1 2; do
      # rotate the order so that drift over time hits every configuration
      cfg="${configs[$(((k + r) % 3))]}"
      read -r -a res <<<"$(notify_run "$(cfg_dir "$cfg")" "$(cfg_opts "$cfg")")"
      printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$cfg" "${res[0]}" "${res[1]}" "${res[2]}" >>"$raw"
      printf '  %s %.0f/s' "$cfg" "${res[0]}"
    done
    echo
  done
  # per configuration: median tps; server CPU per notification (all of the
  # cluster's processes) over every run; per round: paired ratios
  awk -F'\t' -v tck="$CLK_TCK" '
    { tps[$2, $1] = $3; tx[$2] += $4; cpu[$2] += $5; rounds[$1] = 1 }
    END {
      for (c in tx) us[c] = tx[c] > 0 ? cpu[c] / tck * 1e6 / tx[c] : 0
      printf "server CPU per notifying transaction: without %.1f us, with %.1f us, with track_notify off %.1f us\n",
        us["without"], us["with"], us["off"]
      printf "CPU ratio without/with %.3f (goal >= 0.97); track_notify off/with %.3f\n",
        (us["with"] > 0 ? us["without"] / us["with"] : 0), (us["with"] > 0 ? us["off"] / us["with"] : 0)
      for (r in rounds) {
        if (tps["without", r] > 0) print "ratio_with", (tps["with", r] / tps["without", r]) > "/dev/stderr"
        if (tps["off", r] > 0) print "ratio_off", (tps["with", r] / tps["off", r]) > "/dev/stderr"
      }
    }' "$raw" 2>"$WORK/ratios"
  local mw mo mf rw rf
  mw=$(awk -F'\t' '$2 == "with" {print $3}' "$raw" | median)
  mo=$(awk -F'\t' '$2 == "without" {print $3}' "$raw" | median)
  mf=$(awk -F'\t' '$2 == "off" {print $3}' "$raw" | median)
  rw=$(awk '$1 == "ratio_with" {print $2}' "$WORK/ratios" | median)
  rf=$(awk '$1 == "ratio_off" {print $2}' "$WORK/ratios" | median)
  printf 'median notifications/s: with coder_health %.0f, without %.0f, with track_notify off %.0f\n' "$mw" "$mo" "$mf"
  printf 'median of the per-round ratios: with/without %.3f (goal >= 0.97); with/track_notify off %.3f\n' "$rw" "$rf"
  printf 'load average during the run: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  ch_psql "$WORK/with" -c "SELECT notifications, notifications_per_s, commit_p50_ms, commit_p99_ms FROM coder_health.notify_queue"
}

server_instructions() {
  echo "== instructions per notifying transaction in the backend of a running server"
  echo "   (callgrind on the whole cluster; pgbench -M extended, 1 client, the throughput script)"
  if ! command -v valgrind >/dev/null 2>&1; then echo "skipped: no valgrind"; return 0; fi
  local cfg dir n
  declare -A ir
  ch_stop "$WORK/with"
  ch_stop "$WORK/without"
  for cfg in without with off; do
    dir="$(cfg_dir "$cfg")"
    for n in 2000 6000; do
      ir[$cfg.$n]="$(backend_instructions "$dir" "$WORK/notify.sql" "$n" "$(cfg_opts "$cfg")")"
    done
    if [ -z "${ir[$cfg.2000]}" ] || [ -z "${ir[$cfg.6000]}" ]; then
      echo "  $cfg: the run under valgrind failed ($dir/valgrind.log)"
      ch_start "$WORK/with"
      ch_start "$WORK/without"
      return 0
    fi
    printf '  %-7s %s instructions per notifying transaction\n' "$cfg" \
      "$(( (ir[$cfg.6000] - ir[$cfg.2000]) / 4000 ))"
  done
  local none=$(( (ir[without.6000] - ir[without.2000]) / 4000 ))
  local ch=$(( (ir[with.6000] - ir[with.2000]) / 4000 ))
  local off=$(( (ir[off.6000] - ir[off.2000]) / 4000 ))
  printf '  ratio without/with coder_health %.3f (goal >= 0.97); LISTEN/NOTIFY tracking alone (off/with) %.3f (+%d)\n' \
    "$(echo "$none / $ch" | bc -l)" "$(echo "$off / $ch" | bc -l)" "$((ch - off))"
  ch_start "$WORK/with"
  ch_start "$WORK/without"
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
  for cfg in none none_qid ch ch_off; do
    opts=()
    case "$cfg" in
      none) spl="" ;;
      none_qid) spl=""; opts=(-c compute_query_id=on) ;;
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
    printf '  %-9s %s instructions per notifying transaction\n' "$cfg" \
      "$(( (ir[$cfg.6000] - ir[$cfg.2000]) / 4000 ))"
  done
  local none=$(( (ir[none.6000] - ir[none.2000]) / 4000 ))
  local ch=$(( (ir[ch.6000] - ir[ch.2000]) / 4000 ))
  local off=$(( (ir[ch_off.6000] - ir[ch_off.2000]) / 4000 ))
  local qid=$(( (ir[none_qid.6000] - ir[none_qid.2000]) / 4000 ))
  printf '  instruction ratio none/coder_health %.3f; none/track_notify off %.3f\n' \
    "$(echo "$none / $ch" | bc -l)" "$(echo "$none / $off" | bc -l)"
  printf '  LISTEN/NOTIFY tracking alone (track_notify off/on) %.3f: +%d instructions\n' \
    "$(echo "$off / $ch" | bc -l)" "$((ch - off))"
  printf '  core query ids alone (compute_query_id = on, what pg_stat_statements turns on; coder_health uses text ids instead) +%d\n' "$((qid - none))"
  ch_start "$dir"
}

for s in "${SECTIONS[@]}"; do
  case "$s" in
    throughput) throughput ;;
    readers) readers ;;
    instructions) instructions ;;
    server) server_instructions ;;
    all) throughput; server_instructions; instructions; readers ;;
    *) echo "unknown section $s"; exit 2 ;;
  esac
done
