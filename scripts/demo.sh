#!/bin/bash
# make demo: install what is missing, build, start a throwaway PostgreSQL with
# coder_health preloaded and a streaming standby, run a Coder-shaped workload
# (3 simulated Coder Servers, ~20 s) while one LISTEN connection sits in an
# open transaction, and show what coder_health saw.  The server stays up;
# `make demo-stop` (scripts/demo.sh --stop) ends it.
#
#   DEMO_DIR      where the cluster lives (default /tmp/coder_health_demo)
#   DEMO_SECONDS  workload duration (default 20)
#   DEMO_SERVERS  simulated Coder Servers (default 3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

DEMO_DIR="${DEMO_DIR:-/tmp/coder_health_demo}"
DATA="$DEMO_DIR/data"
STANDBY="$DEMO_DIR/standby"
SECONDS_TO_RUN="${DEMO_SECONDS:-20}"
SERVERS="${DEMO_SERVERS:-3}"

stop_demo() {
  if [ -d "$STANDBY" ]; then
    ch_stop "$STANDBY"
  fi
  if [ -d "$DATA" ]; then
    ch_stop "$DATA"
  fi
  rm -rf "$DEMO_DIR"
}

if [ "${1:-}" = "--stop" ]; then
  stop_demo
  echo "coder_health demo stopped and removed ($DEMO_DIR)"
  exit 0
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The first screen is the verdict (coder_health.summary): the setup's own
# output goes to a log, shown only if the setup fails.
SETUP_LOG="${DEMO_DIR%/}.setup.log"
printf 'coder_health demo: building, starting PostgreSQL and a standby, running %s simulated\nCoder Servers for %ss and a stalled LISTEN connection (setup log: %s)\n' \
  "$SERVERS" "$SECONDS_TO_RUN" "$SETUP_LOG"
exec 3>&1 4>&2 >"$SETUP_LOG" 2>&1
setup_failed() {
  exec 1>&3 2>&4
  echo "demo setup failed; the end of $SETUP_LOG:"
  tail -40 "$SETUP_LOG"
}
trap setup_failed ERR

step "installing what is missing"
bash "$ROOT/scripts/install-deps.sh" demo

step "building and installing coder_health"
make -C "$ROOT" -s >/dev/null
make -C "$ROOT" -s install >/dev/null
make -C "$ROOT/workload" -s >/dev/null
# the postgres user runs the workload tools from this checkout
chmod -R a+rX "$ROOT" 2>/dev/null || true

step "starting a throwaway PostgreSQL with coder_health preloaded"
stop_demo    # a previous demo's cluster, if any: start clean
install -d -o postgres -g postgres "$DEMO_DIR"
PORT="$(ch_free_port 55432)"
ch_init_cluster "$DATA" "$PORT" \
  "shared_preload_libraries = 'pg_stat_statements,coder_health'" \
  "pg_stat_statements.track_utility = off" \
  "coder_health.history_interval = 2s" \
  "coder_health.notify_stall_seconds = 5" \
  "coder_health.notify_stall_bytes = 64kB"
ch_start "$DATA"
ch_psql "$DATA" -q -c "CREATE DATABASE coder"
ch_psql "$DATA" -q -d coder \
  -c "CREATE EXTENSION pg_stat_statements" \
  -c "CREATE EXTENSION coder_health"
echo "PostgreSQL $("$(ch_bindir)/postgres" --version | awk '{print $3}') on port $PORT, data in $DATA"

step "adding a streaming standby (pg_basebackup -R with a replication slot)"
STANDBY_PORT="$(ch_free_port $((PORT + 1)))"
ch_as_pg "$(ch_bindir)/pg_basebackup" -h "$DATA" -p "$PORT" -U postgres \
  -D "$STANDBY" -R -C -S demo_standby -X stream --checkpoint=fast \
  >"$DEMO_DIR/basebackup.log" 2>&1 || { cat "$DEMO_DIR/basebackup.log"; exit 1; }
cat >> "$STANDBY/postgresql.conf" <<CONF
port = $STANDBY_PORT
unix_socket_directories = '$STANDBY'
hot_standby_feedback = on
CONF
ch_start "$STANDBY"
echo "standby on port $STANDBY_PORT, data in $STANDBY"

step "a LISTEN connection that stops reading: it listens, then sits in an open transaction"
# what a stuck coderd pubsub connection looks like: the queue cannot be
# truncated past it, so its backlog grows with every notification
ch_as_pg env PGAPPNAME=stuck_listener "$(ch_bindir)/psql" -X -q -h "$DATA" -p "$PORT" -U postgres -d coder \
  -c 'LISTEN "workspace_owner:00000000-0000-4000-8000-000000000001"' \
  -c 'BEGIN' -c "SELECT pg_sleep($((SECONDS_TO_RUN + 60)))" >/dev/null 2>&1 &
STUCK_PID=$!
echo "application_name stuck_listener (its session is ended after the live panels)"

step "running the Coder-shaped workload: $SERVERS Coder Servers for ${SECONDS_TO_RUN}s"
WORKLOAD_LOG="$DEMO_DIR/workload.log"
"$ROOT/workload/run.sh" --servers "$SERVERS" --duration "$SECONDS_TO_RUN" \
  --host 127.0.0.1 --port "$PORT" --dbname coder --user postgres --init \
  >"$WORKLOAD_LOG" 2>&1 &
WORKLOAD_PID=$!
# look at the live state a few seconds before the simulated servers stop
sleep $(( SECONDS_TO_RUN > 8 ? SECONDS_TO_RUN - 4 : 4 ))

show() {
  local title="$1" sql="$2"
  step "$title"
  ch_psql "$DATA" -d coder -P pager=off -P footer=off -c "$sql"
}

# the first screen: the verdict, each failing check with its culprit, the
# slowest Coder queries, the Coder Servers, the NOTIFY queue, the standby
trap - ERR
exec 1>&3 2>&4 3>&- 4>&-
ch_psql "$DATA" -d coder -P pager=off -P footer=off -c "SELECT * FROM coder_health.summary"

show "LIVE: Coder Servers (replicas row or sqlc-named statements), then other clients: connections, state, network round trip (flags, Coder Servers only: far > 10 ms, stopped, stale heartbeat, missing, unknown, listen_lost: no LISTEN connection while the others hold one)" "
SELECT coder_server, kind, client_addr, connections AS conns, active, idle,
       idle_in_transaction AS idle_in_xact, waiting_on_lock AS lock_wait, listening,
       rtt_ms, peak_connections_15min AS peak_15min,
       p99_ms, far, stopped, stale, missing, unknown, listen_lost
FROM coder_health.coder_servers"

show "LIVE: connection headroom" "
SELECT max_connections, client_backends, headroom, coder_servers,
       headroom_at_full_pools
FROM coder_health.connections"

show "LIVE: replication, seen from the primary" "
SELECT role, application_name, state, sync_state, replay_lag_bytes,
       replay_lag_s, reply_age_s,
       peak_replay_lag_bytes_15min AS peak_lag_bytes_15min,
       peak_replay_lag_s_15min AS peak_lag_s_15min,
       rtt_ms, rtt_recent_ms, rtt_max_ms, far
FROM coder_health.replication"

show "LIVE: the NOTIFY queue (PostgreSQL's own state), the notifying commits, and which pubsub Coder uses (postgres: LISTEN per Coder Server; nats: none, and none needed)" "
SELECT usage_pct, backlog_bytes,
       listeners, stalled_listeners AS stalled, slowest_listener_pid AS slowest_pid,
       slowest_listener_backlog_bytes AS slowest_backlog_bytes,
       notifications, round(notifications_per_s::numeric, 1) AS per_s,
       commit_p50_ms, commit_p99_ms, supported, pubsub
FROM coder_health.notify_queue"

show "LIVE: LISTEN connections: which one is stalling the queue" "
SELECT l.pid, coalesce(host(l.client_addr), 'local') AS client, a.application_name AS app,
       l.channels, l.backlog_bytes, l.state,
       l.xact_age_s, l.stalled, l.stalled_reason
FROM coder_health.notify_listeners l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
ORDER BY l.backlog_bytes DESC"

show "LIVE: notifications per channel family (UUIDs and numbers folded into *)" "
SELECT channel_family, distinct_channels AS channels, listeners, notifications,
       bytes, max_payload_bytes AS max_payload,
       round(per_s::numeric, 1) AS per_s
FROM coder_health.notify_channels
ORDER BY notifications DESC
LIMIT 8"

show "LIVE: health, one row per check (thresholds: coder_health.health_* settings)" "
SELECT check_name, status, value, unit, detail
FROM coder_health.health"

step "LIVE: replication, seen from the standby"
"$(ch_bindir)/psql" -X -h "$STANDBY" -p "$STANDBY_PORT" -U postgres -d coder -P pager=off -P footer=off -c "
SELECT role, receiver_status, receive_lag_bytes, replay_lag_bytes,
       replay_delay_s,
       last_msg_age_s, replay_paused
FROM coder_health.replication"

# end the stuck listener's session (its backend would otherwise sleep on)
ch_psql "$DATA" -d coder -qAt -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
  WHERE application_name = 'stuck_listener'" >/dev/null || true
wait "$STUCK_PID" 2>/dev/null || true
wait "$WORKLOAD_PID" || true
step "workload finished"
cat "$WORKLOAD_LOG"
# the collector folds idle sessions' samples within a second
sleep 1.5

show "coder_health itself" "
SELECT extension_version AS version, collector_pid,
       collector_runs, collector_overruns,
       statements_tracked || ' / ' || max_statements AS statements,
       shmem_used_bytes, shmem_reserved_bytes,
       dropped_samples
FROM coder_health.status"

show "slowest Coder queries at p99 (by sqlc name, since reset, at least 100 calls: a p99 of fewer is one slow call)" "
SELECT query_name, calls, errors,
       p50_ms, p95_ms,
       p99_ms, p999_ms,
       max_ms, queryids
FROM coder_health.query_latency
WHERE datname = 'coder' AND calls >= 100
ORDER BY p99_ms DESC
LIMIT 8"

show "latency per Coder Server (by replicas hostname; other clients after them) and per database: each window only when it holds more statements than the one before (span_s: the seconds it covers)" "
SELECT scope, who, kind, period, span_s, calls, calls_per_s,
       p50_ms, p99_ms,
       p999_ms, max_ms
FROM (SELECT l.*, coalesce(s.coder_server, l.client_addr, l.datname) AS who,
             CASE WHEN l.scope = 'database' THEN '' ELSE coalesce(s.kind, 'other') END AS kind,
             array_position(ARRAY['1-2 min', '5-6 min', '15-16 min', 'total'], l.period) AS w,
             lag(l.calls) OVER (PARTITION BY l.scope, coalesce(l.client_addr, l.datname)
                                ORDER BY array_position(ARRAY['1-2 min', '5-6 min', '15-16 min', 'total'], l.period)) AS calls_before
      FROM coder_health.latency l
      LEFT JOIN coder_health.coder_servers s ON s.client_addr = l.client_addr
      WHERE l.datname = 'coder') x
WHERE calls_before IS DISTINCT FROM calls
ORDER BY scope DESC, kind <> 'coder_server', who, w"

show "distribution of the named statement with the worst p99" "
SELECT range, count, bar
FROM coder_health.latency_chart((SELECT queryid FROM coder_health.statement_latency
                                 WHERE datname = 'coder' AND calls >= 100
                                   AND query_name IS NOT NULL
                                 ORDER BY p99_ms DESC LIMIT 1))"

show "history (sampled every history_interval by the collector)" "
SELECT coder_health.sparkline('connections') AS sparkline
UNION ALL
SELECT coder_health.sparkline('calls_per_s')
UNION ALL
SELECT coder_health.sparkline('p99_ms')"

cat <<EOF

The demo server is still running.
  connect:  psql -h $DATA -p $PORT -U postgres coder
  standby:  psql -h $STANDBY -p $STANDBY_PORT -U postgres coder
  try:      SELECT * FROM coder_health.summary;
            SELECT query_name, recent_calls, recent_p99_ms FROM coder_health.query_latency
              WHERE datname = 'coder' AND recent_calls >= 100 ORDER BY recent_p99_ms DESC LIMIT 10;
            SELECT * FROM coder_health.latency;
            SELECT * FROM coder_health.health;
            SELECT * FROM coder_health.notify_listeners;
  more load: $ROOT/workload/run.sh --servers 3 --duration 60 --host 127.0.0.1 --port $PORT --dbname coder
  stop it:  make demo-stop
EOF
