#!/usr/bin/env bash
# workload/run.sh: run N simulated Coder Servers against one PostgreSQL.
#
#   workload/run.sh [--servers N] [--duration S] [--host H] [--port P]
#                   [--dbname D] [--user U] [--rate R] [--notify-rate R]
#                   [--pool N] [--mode prepared|extended] [--no-listen]
#                   [--init] [--workspaces N] [--verbose]
#
# Server i (1..N) is named coderd-i, connects from 127.0.0.(10+i) through
# bindaddr.so and records relay_address http://127.0.0.(10+i):8080, so
# PostgreSQL sees N distinct client addresses.  The server's pg_hba.conf must
# therefore accept all of 127.0.0.0/8, not just 127.0.0.1/32.
#
# --rate and --notify-rate are per server.  --init (re)loads schema.sql and
# seeds --workspaces workspaces (default 1000); without it that only happens
# when the tables are missing.  --duration 0 runs until interrupted.
#
# Prints one summary line per server, then a total line.  Runs as root (then
# connecting as user postgres unless --user/PGUSER say otherwise) or as any
# other user; from any directory.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

servers=3
duration=20
host=127.0.0.1
port="${PGPORT:-5432}"
dbname=coder
user="${PGUSER:-}"
rate=200
notify_rate=20
pool=10
mode=prepared
listen=1
init=0
workspaces=1000
verbose=0

usage() {
  sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

need() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then
    echo "run.sh: $1 needs a value" >&2
    exit 2
  fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --servers) need "$@"; servers="$2"; shift 2 ;;
    --duration) need "$@"; duration="$2"; shift 2 ;;
    --host) need "$@"; host="$2"; shift 2 ;;
    --port) need "$@"; port="$2"; shift 2 ;;
    --dbname) need "$@"; dbname="$2"; shift 2 ;;
    --user) need "$@"; user="$2"; shift 2 ;;
    --rate) need "$@"; rate="$2"; shift 2 ;;
    --notify-rate) need "$@"; notify_rate="$2"; shift 2 ;;
    --pool) need "$@"; pool="$2"; shift 2 ;;
    --mode) need "$@"; mode="$2"; shift 2 ;;
    --workspaces) need "$@"; workspaces="$2"; shift 2 ;;
    --no-listen) listen=0; shift ;;
    --init) init=1; shift ;;
    --verbose|-v) verbose=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

case "$servers" in
  ''|*[!0-9]*) echo "run.sh: --servers must be a number" >&2; exit 2 ;;
esac
if [ "$servers" -lt 1 ] || [ "$servers" -gt 240 ]; then
  echo "run.sh: --servers must be between 1 and 240 (127.0.0.11 .. 127.0.0.250)" >&2
  exit 2
fi
case "$workspaces" in
  ''|*[!0-9]*) echo "run.sh: --workspaces must be a number" >&2; exit 2 ;;
esac

# root has no role of its own in a fresh cluster.
if [ -z "$user" ] && [ "$(id -u)" = 0 ]; then
  user=postgres
fi

# --- binaries -----------------------------------------------------------
# Build in place when we can write there (make is a no-op when up to date);
# otherwise (say, as postgres in a root-owned checkout) use what is built, or
# build a private copy under /tmp.
bindir="$here"
if [ -w "$here" ]; then
  make -s -C "$here" PG_CONFIG="${PG_CONFIG:-pg_config}" >&2
elif [ ! -x "$here/coderd_sim" ] || [ ! -f "$here/bindaddr.so" ]; then
  bindir="${TMPDIR:-/tmp}/coder_sim_build.$(id -u)"
  mkdir -p "$bindir"
  cp -r "$here/Makefile" "$here/coderd" "$here"/*.c "$bindir/"
  make -s -C "$bindir" PG_CONFIG="${PG_CONFIG:-pg_config}" >&2
fi

# --- database -----------------------------------------------------------
conninfo="host=$host port=$port dbname=$dbname"
[ -n "$user" ] && conninfo="$conninfo user=$user"

psql_cmd() {
  local db="$1"
  shift
  local args=(-X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -d "$db")
  [ -n "$user" ] && args+=(-U "$user")
  "${PSQL:-psql}" "${args[@]}" "$@"
}

if [ "$init" = 1 ]; then
  exists="$(psql_cmd postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$dbname'")"
  if [ "$exists" != 1 ]; then
    echo "run.sh: creating database $dbname" >&2
    psql_cmd postgres -c "CREATE DATABASE \"$dbname\""
  fi
fi
if [ "$init" = 0 ]; then
  present="$(psql_cmd "$dbname" -At -c "SELECT to_regclass('public.replicas') IS NOT NULL AND to_regclass('public.workspace_agents') IS NOT NULL AND EXISTS (SELECT 1 FROM public.workspace_agents)")" || {
    echo "run.sh: cannot query database $dbname on $host:$port" >&2
    exit 1
  }
  [ "$present" = t ] || init=1
fi
if [ "$init" = 1 ]; then
  echo "run.sh: loading schema.sql and seeding $workspaces workspaces" >&2
  psql_cmd "$dbname" -f "$here/schema.sql"
  psql_cmd "$dbname" -c "SELECT seed($workspaces)" -c "ANALYZE" >/dev/null
fi

# --- the servers --------------------------------------------------------
outdir="$(mktemp -d "${TMPDIR:-/tmp}/coder_sim.XXXXXX")"
pids=()

signals=0
stop_all() {
  local p
  signals=$((signals + 1))
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
}
cleanup() {
  rm -rf "$outdir"
}
trap cleanup EXIT
trap 'stop_all' INT TERM

sim_args=(-t "$duration" -r "$rate" -N "$notify_rate" -c "$pool" -M "$mode")
[ "$listen" = 1 ] || sim_args+=(-l)
[ "$verbose" = 1 ] || sim_args+=(-q)
[ "$verbose" = 1 ] && sim_args+=(-v)

for i in $(seq 1 "$servers"); do
  addr="127.0.0.$((10 + i))"
  LD_PRELOAD="$bindir/bindaddr.so" CODER_SIM_SOURCE_ADDR="$addr" \
    "$bindir/coderd_sim" -d "$conninfo" -n "coderd-$i" \
    -a "http://$addr:8080" "${sim_args[@]}" \
    >"$outdir/coderd-$i.out" 2> >(sed "s/^/[coderd-$i] /" >&2) &
  pids+=("$!")
done

# A trapped signal makes wait return early (status > 128) while the child is
# still stopping; wait for it again once per signal handled.
status=0
for pid in "${pids[@]}"; do
  seen=$signals
  while true; do
    rc=0
    wait "$pid" || rc=$?
    if [ "$rc" -gt 128 ] && [ "$signals" -gt "$seen" ]; then
      seen=$signals
      continue
    fi
    break
  done
  [ "$rc" = 0 ] || status=1
done

cat "$outdir"/coderd-*.out
awk '
  {
    for (i = 2; i <= NF; i++) {
      split($i, kv, "=")
      v[kv[1]] += kv[2] + 0
      if (kv[1] == "elapsed" && kv[2] + 0 > el) el = kv[2] + 0
    }
  }
  END {
    if (el > 0)
      printf "total servers=%d statements=%d errors=%d notifications_sent=%d notifications_received=%d elapsed=%.2fs stmt_per_s=%.1f notify_per_s=%.1f\n",
        NR, v["statements"], v["errors"], v["notifications_sent"],
        v["notifications_received"], el, v["statements"] / el,
        v["notifications_sent"] / el
  }' "$outdir"/coderd-*.out
exit "$status"
