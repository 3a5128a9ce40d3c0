#!/usr/bin/env bash
# bench/run.sh: what coder_health costs and how exact it is (make bench).
#
#   bench/run.sh [instructions|backend|throughput|accuracy|memory|readers|all ...]
#
# Sections (default: all):
#   instructions  instructions added per statement, counted exactly with
#                 callgrind on postgres --single: none / pg_stat_statements /
#                 coder_health / both (and compute_query_id alone)
#   backend       the same in a real backend serving a TCP client: the whole
#                 cluster under callgrind, bench/pkclient.c (libpq) sends
#                 "-- name: GetAccountBalance :one" + pgbench's primary-key
#                 select over 127.0.0.1 with the extended protocol (prepared:
#                 PQprepare + PQexecPrepared; params: PQexecParams, the text
#                 parsed again each time), slope between the backends of a
#                 BENCH_BACKEND_LO and a BENCH_BACKEND_HI statement connection;
#                 includes client attribution, the name, round-trip sampling
#   throughput    pgbench -S (simple, prepared) and the Coder-shaped scripts
#                 in workload/pgbench/ (when present) at 2 and 32 clients,
#                 the four configurations in interleaved rounds; median tps
#   accuracy      exact quantiles from the server log's duration lines vs
#                 coder_health.statement_latency for the same query ids
#   memory        shared memory reserved and used per tracked statement
#   readers       time to read the views with >= 5000 statements tracked
#
# Figures are printed as ratios side by side; nothing here passes or fails.
# The exit status is non-zero only when something could not run at all.
# Output also goes to bench/results/latest.txt.
#
# Environment:
#   BENCH_BACKEND_LO/HI     statements of the two measured connections in
#                           backend (default 2000 / 6000)
#   BENCH_BACKEND_MODES     backend's client modes (default "prepared params")
#   BENCH_CALLGRIND_KEEP    keep backend's profiles there (callgrind_annotate)
#   BENCH_SECONDS           seconds per pgbench run in throughput (default 3)
#   BENCH_ROUNDS            interleaved rounds in throughput (default 7)
#   BENCH_WORKSPACES        workspaces seeded for the Coder scripts (1000)
#   BENCH_MIX_MODE          pgbench -M for the Coder scripts (prepared)
#   BENCH_ACCURACY_SECONDS  length of the accuracy workload (default 30)
#   BENCH_ACCURACY_RATE     its pgbench -R transactions per second (400)
#   BENCH_KEEP=1            keep the scratch directory (servers are stopped)
#   PG_CONFIG               which PostgreSQL (default: pg_config on PATH)
#
# Runs as root (servers run as the postgres OS user, in a scratch directory
# it owns) and installs the extension first with make install.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RESULTS="$HERE/results"

usage() { sed -n '2,45s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

ALL_SECTIONS=(instructions backend throughput accuracy memory readers)
SECTIONS=()
for arg in "$@"; do
  case "$arg" in
    all) SECTIONS+=("${ALL_SECTIONS[@]}") ;;
    instructions|backend|throughput|accuracy|memory|readers) SECTIONS+=("$arg") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown section '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=("${ALL_SECTIONS[@]}")

# Everything below also goes to results/latest.txt.
if [ -z "${CH_BENCH_INNER:-}" ]; then
  mkdir -p "$RESULTS"
  rc=0
  CH_BENCH_INNER=1 bash "${BASH_SOURCE[0]}" "${SECTIONS[@]}" 2>&1 |
    tee "$RESULTS/latest.txt.partial" || rc=$?
  mv -f "$RESULTS/latest.txt.partial" "$RESULTS/latest.txt"
  exit "$rc"
fi

# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

BINDIR="$(ch_bindir)"
PKGLIBDIR="$("$(ch_pg_config)" --pkglibdir)"
export PATH="$BINDIR:$PATH"
BENCH_SECONDS="${BENCH_SECONDS:-3}"
BENCH_ROUNDS="${BENCH_ROUNDS:-7}"
BENCH_WORKSPACES="${BENCH_WORKSPACES:-1000}"
BENCH_MIX_MODE="${BENCH_MIX_MODE:-prepared}"
BENCH_ACCURACY_SECONDS="${BENCH_ACCURACY_SECONDS:-30}"
BENCH_ACCURACY_RATE="${BENCH_ACCURACY_RATE:-400}"

PY=""
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3
elif command -v python3 >/dev/null 2>&1; then PY="$(command -v python3)"
fi
REPORT=("$PY" "$HERE/report.py")

# ---------------------------------------------------------------------------
# Scratch space, servers, cleanup
# ---------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/coder_health_bench.XXXXXX")"
chmod 755 "$WORK"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$WORK"; fi
STARTED=()
BG_PIDS=()

cleanup() {
  local d p
  for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
    kill "$p" 2>/dev/null || true
  done
  for d in ${STARTED[@]+"${STARTED[@]}"}; do
    ch_stop "$d"
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "scratch directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

start_server() {
  ch_start "$1"
  STARTED+=("$1")
}
stop_server() {
  local d="$1" i
  ch_stop "$d"
  for i in "${!STARTED[@]}"; do
    [ "${STARTED[$i]}" = "$d" ] && unset 'STARTED[$i]'
  done
  return 0
}
port_of() { sed -n "s/^port = \([0-9]*\)/\1/p" "$1/postgresql.conf" | tail -1; }
# q DIR SQL...: one value / tab-separated rows, as postgres
q() {
  local d="$1"
  shift
  ch_psql "$d" -d "${DB:-postgres}" -AtqX -F $'\t' -c "$@"
}
pgb() {
  local d="$1"
  shift
  "$BINDIR/pgbench" -h "$d" -p "$(port_of "$d")" -U "${PGB_USER:-postgres}" "$@"
}
# free ports handed out in increasing order so that parallel clusters differ
NEXT_PORT=56100
new_port() {
  local p
  p="$(ch_free_port "$NEXT_PORT")"
  NEXT_PORT=$((p + 1))
  echo "$p"
}
# wait until the collector (1 s interval) has folded what exited backends left
settle() { sleep "${1:-2.5}"; }

hr() { printf '%s\n' "------------------------------------------------------------------------------"; }
section() {
  echo
  hr
  printf '== %s\n' "$*"
  hr
  # other work on the machine is noise for the timed sections
  printf 'load average now: %s (%s cores)\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
}
# Instructions a profile spent in coder_health's own code (self cost,
# callgrind_annotate): coder_health.so's functions, and the inline ones of
# its headers, which callgrind files under the header's path alone (no
# object).  The
# part of a figure that does not move with recv() waits or memory layout.
ch_own_ir() {
  command -v callgrind_annotate >/dev/null 2>&1 || return 0
  # from /: callgrind_annotate shortens paths under the current directory
  (cd / && callgrind_annotate --auto=no --inclusive=no --threshold=100 "$1" 2>/dev/null) |
    awk -v src="$ROOT/" '/coder_health\.so\]/ || (index($0, src) > 0 && $0 !~ /\[/) {
      gsub(",", "", $1); s += $1 } END { printf "%d", s }'
}

now_s() { date +%s; }

declare -A SUMMARY=()
declare -A ELAPSED=()
# sections run in subshells: their summary line travels through a file
set_summary() { printf '%s\n' "$2" >"$WORK/sum.line.$1"; }
# servers a section started and left running (it failed): stop them
stop_started() {
  local d
  for d in ${STARTED[@]+"${STARTED[@]}"}; do ch_stop "$d"; done
}

# shellcheck source=lib.sh
source "$HERE/lib.sh"

have_pgss() { [ -f "$PKGLIBDIR/pg_stat_statements.so" ]; }

# ch_calls DIR: statements coder_health has recorded so far (all of them)
ch_calls() {
  q "$1" "SELECT coalesce(sum(calls), 0) FROM coder_health.statement_latency"
}

# SQL for N distinct statements: t1..tN, one row each, created in batches
# from DO blocks (only the DO is a top-level statement).
create_tables() {
  local d="$1" n="$2" from=1 to
  while [ "$from" -le "$n" ]; do
    to=$((from + 499))
    [ "$to" -le "$n" ] || to="$n"
    q "$d" "DO \$\$ BEGIN FOR i IN $from..$to LOOP
              EXECUTE format('CREATE TABLE IF NOT EXISTS t%s (a int)', i);
              EXECUTE format('INSERT INTO t%s VALUES (%s)', i, i);
            END LOOP; END \$\$" >/dev/null
    from=$((to + 1))
  done
}
# run_batched DIR FILE: run a file of statements, 250 per connection: a
# backend folds its samples when it exits, so none can be lost to a full
# sample ring whatever the fold timing
run_batched() {
  local d="$1" file="$2" part
  rm -f "$WORK"/batch.*
  split -l 250 -a 4 "$file" "$WORK/batch."
  for part in "$WORK"/batch.*; do
    ch_psql "$d" -q -o /dev/null -f "$part"
  done
  rm -f "$WORK"/batch.*
}
# distinct_statements N K...: for each K (one pass each), N statements
#   SELECT a, (SELECT count(*) FROM generate_series(1, K)) FROM t<i>;
# one query id per table; K (normalized away) spreads the durations.
distinct_statements() {
  local n="$1" k
  shift
  for k in "$@"; do
    awk -v n="$n" -v k="$k" 'BEGIN {
      for (i = 1; i <= n; i++)
        printf "SELECT a, (SELECT count(*) FROM generate_series(1, %d)) FROM t%d;\n", k, i
    }'
  done
}

# ---------------------------------------------------------------------------
# 1. instructions
# ---------------------------------------------------------------------------
sec_instructions() {
  section "instructions per statement (callgrind, postgres --single, pgbench -S statement)"
  if ! command -v valgrind >/dev/null 2>&1; then
    echo "skipped: valgrind is not installed"
    set_summary instructions "instructions/stmt added: not measured (no valgrind)"
    return 0
  fi
  local dir="$WORK/instr" port lo=5000 hi=15000
  port="$(new_port)"
  CH_NO_PRELOAD=1 ch_init_cluster "$dir" "$port"
  start_server "$dir"
  pgb "$dir" -i -q -s 1 postgres >/dev/null 2>&1
  q "$dir" "CREATE EXTENSION coder_health" >/dev/null
  have_pgss && q "$dir" "CREATE EXTENSION pg_stat_statements" >/dev/null
  q "$dir" "CHECKPOINT" >/dev/null
  stop_server "$dir"

  local n
  for n in "$lo" "$hi"; do
    awk -v n="$n" 'BEGIN {
      for (i = 1; i <= n; i++)
        printf "SELECT abalance FROM pgbench_accounts WHERE aid = %d;\n", (i * 7919) % 100000 + 1
    }' >"$WORK/instr.$n.sql"
  done

  local configs=(none queryid ch)
  have_pgss && configs=(none queryid pgss ch both)
  have_pgss || echo "pg_stat_statements is not installed: measuring without it"
  local raw="$WORK/instr.tsv" cfg spl opts t0 total chc pgc chd own
  : >"$raw"
  for cfg in "${configs[@]}"; do
    opts=()
    case "$cfg" in
      none) spl="" ;;
      queryid) spl=""; opts=(-c compute_query_id=on) ;;
      pgss) spl="pg_stat_statements" ;;
      ch) spl="coder_health" ;;
      both) spl="pg_stat_statements,coder_health" ;;
    esac
    case "$spl" in *pg_stat_statements*) opts+=(-c pg_stat_statements.save=off) ;; esac
    for n in "$lo" "$hi"; do
      {
        cat "$WORK/instr.$n.sql"
        # sanity checks, the same in both runs (so the slope ignores them)
        case "$spl" in *coder_health*)
          echo "SELECT coalesce(max(calls), 0) AS ch_calls FROM coder_health.statement_latency;"
          echo "SELECT dropped_samples AS ch_dropped FROM coder_health.status;" ;;
        esac
        case "$spl" in *pg_stat_statements*)
          echo "SELECT sum(calls) AS pgss_calls FROM pg_stat_statements WHERE query LIKE 'SELECT abalance%';" ;;
        esac
      } >"$WORK/instr.in"
      # each run starts from empty statistics: coder_health saves its own at
      # shutdown (pg_stat/coder_health.stat) and would load the previous run's
      rm -f "$dir/pg_stat/coder_health.stat" "$dir/pg_stat/pg_stat_statements.stat"
      t0=$(now_s)
      if ! ch_as_pg valgrind --tool=callgrind --collect-atstart=yes \
          --callgrind-out-file="$WORK/callgrind.$cfg.$n.out" \
          "$BINDIR/postgres" --single -D "$dir" \
          -c shared_preload_libraries="$spl" ${opts[@]+"${opts[@]}"} postgres \
          <"$WORK/instr.in" >"$WORK/instr.$cfg.$n.stdout" 2>"$WORK/instr.$cfg.$n.stderr"; then
        echo "  $cfg/$n: postgres --single failed:"
        tail -5 "$WORK/instr.$cfg.$n.stderr" | sed 's/^/    /'
        printf '%s\t%s\t\t\t\n' "$cfg" "$n" >>"$raw"
        continue
      fi
      total="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$WORK/callgrind.$cfg.$n.out" | head -1)"
      [ -n "$total" ] || total="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$WORK/callgrind.$cfg.$n.out" | head -1)"
      chc="$(sed -n 's/.*ch_calls = "\([0-9]*\)".*/\1/p' "$WORK/instr.$cfg.$n.stdout" | tail -1)"
      pgc="$(sed -n 's/.*pgss_calls = "\([0-9]*\)".*/\1/p' "$WORK/instr.$cfg.$n.stdout" | tail -1)"
      chd="$(sed -n 's/.*ch_dropped = "\([0-9]*\)".*/\1/p' "$WORK/instr.$cfg.$n.stdout" | tail -1)"
      case "$spl" in *coder_health*)
        [ -n "$chc" ] || { echo "  $cfg/$n: coder_health's sanity query failed:";
                           grep -m3 ERROR "$WORK/instr.$cfg.$n.stdout" | sed 's/^/    /'; } ;;
      esac
      printf '  %-8s %6d statements: Ir %s (%ds)\n' "$cfg" "$n" "${total:-?}" $(($(now_s) - t0))
      own=""
      case "$spl" in *coder_health*) own="$(ch_own_ir "$WORK/callgrind.$cfg.$n.out")" ;; esac
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cfg" "$n" "$total" "$chc" "$pgc" "$chd" "$own" >>"$raw"
    done
  done
  echo
  "${REPORT[@]}" instructions "$raw" --summary "$WORK/sum.instructions"
  cat <<'EOF'

  notes: single-user mode (no client protocol, no collector); the backend
  folds its ring when half full (256 samples), as at native speed, or every
  second, which under valgrind's slowdown can come first now and then.  coder_health's calls may lag by up to 255:
  samples still in the backend's ring are not folded by the reading query; any
  dropped sample means coder_health skipped work, and its figure is too low.
EOF
  set_summary instructions "$(cat "$WORK/sum.instructions")"
  rm -rf "$dir"
}

# ---------------------------------------------------------------------------
# 1b. instructions in a real backend serving a TCP client
# ---------------------------------------------------------------------------
# The whole cluster runs under callgrind (backends are forked, so they stay
# under it and each writes its own profile, named by its process id).
# bench/pkclient.c (libpq) connects over TCP to 127.0.0.1 three times: a
# warm-up, then BENCH_BACKEND_LO and BENCH_BACKEND_HI statements; it prints
# its backend's pid, so the two profiles are known.  The slope between them
# is what one statement costs in a backend: the protocol, client
# attribution, the sqlc name, round-trip sampling, everything but
# connecting and exiting, which cancel out.
sec_backend() {
  section "instructions per statement in a backend serving a TCP client (callgrind, libpq extended protocol, sqlc-named primary-key select)"
  if ! command -v valgrind >/dev/null 2>&1; then
    echo "skipped: valgrind is not installed"
    set_summary backend "backend instructions/stmt added: not measured (no valgrind)"
    return 0
  fi
  local lo="${BENCH_BACKEND_LO:-2000}" hi="${BENCH_BACKEND_HI:-6000}"
  local -a modes
  read -ra modes <<<"${BENCH_BACKEND_MODES:-prepared params}"
  local client="$WORK/pkclient" pgc
  pgc="$(ch_pg_config)"
  if ! cc -std=gnu99 -O2 -I"$("$pgc" --includedir)" -o "$client" "$HERE/pkclient.c" \
      -L"$("$pgc" --libdir)" -Wl,-rpath,"$("$pgc" --libdir)" -lpq 2>"$WORK/pkclient.log"; then
    echo "skipped: bench/pkclient.c does not build (libpq headers?):"
    sed 's/^/    /' "$WORK/pkclient.log"
    set_summary backend "backend instructions/stmt added: not measured (no libpq)"
    return 0
  fi
  chmod 755 "$client"
  local dir="$WORK/backend" port
  port="$(new_port)"
  CH_NO_PRELOAD=1 ch_init_cluster "$dir" "$port"
  start_server "$dir"
  pgb "$dir" -i -q -s 1 postgres >/dev/null 2>&1
  q "$dir" "CREATE EXTENSION coder_health" >/dev/null
  have_pgss && q "$dir" "CREATE EXTENSION pg_stat_statements" >/dev/null
  q "$dir" "CHECKPOINT" >/dev/null
  stop_server "$dir"

  local configs=(none queryid ch chqid)
  have_pgss && configs=(none queryid pgss ch chqid both)
  local raw="$WORK/backend.tsv" cfg spl mode pid n total vpid i t0 conn calls out own
  local -a opts pids
  conn="host=127.0.0.1 port=$port user=postgres dbname=postgres"
  : >"$raw"
  for mode in "${modes[@]}"; do
    for cfg in "${configs[@]}"; do
      opts=()
      case "$cfg" in
        none) spl="" ;;
        queryid) spl=""; opts=(-c compute_query_id=on) ;;
        pgss) spl="pg_stat_statements" ;;
        ch) spl="coder_health" ;;
        chqid) spl="coder_health"; opts=(-c compute_query_id=on) ;;
        both) spl="pg_stat_statements,coder_health" ;;
      esac
      case "$spl" in *pg_stat_statements*) opts+=(-c pg_stat_statements.save=off) ;; esac
      rm -f "$dir"/cg.* "$dir/pg_stat/coder_health.stat" "$dir/pg_stat/pg_stat_statements.stat"
      t0=$(now_s)
      ch_as_pg valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$dir/cg.%p" \
        "$BINDIR/postgres" -D "$dir" -c shared_preload_libraries="$spl" \
        ${opts[@]+"${opts[@]}"} >"$dir/valgrind.log" 2>&1 &
      vpid=$!
      for i in $(seq 1 600); do
        "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" && break
        sleep 0.2
      done
      pids=()
      for n in 100 "$lo" "$hi"; do
        out="$("$client" "$conn" "$mode" "$n" 2>>"$WORK/pkclient.log")" || true
        pid="${out%%$'\n'*}"
        if [ "${out##*$'\n'}" != "ok $n" ]; then
          echo "  $mode/$cfg: the client failed after $n statements:"
          tail -3 "$WORK/pkclient.log" | sed 's/^/    /'
          pid=""
        fi
        pids+=("$pid")
      done
      calls=""
      case "$spl" in *coder_health*)
        # each backend folds its samples as it exits: wait for the last one
        for i in $(seq 1 300); do
          calls="$(ch_psql "$dir" -AtqX -c "SELECT coalesce(sum(calls), 0) FROM coder_health.query_latency WHERE query_name = 'GetAccountBalance'" 2>/dev/null || true)"
          [ "$calls" = $((100 + lo + hi)) ] && break
          sleep 0.2
        done ;;
      esac
      ch_as_pg "$BINDIR/pg_ctl" -D "$dir" -m fast -w -t 300 stop >/dev/null 2>&1 || kill "$vpid" 2>/dev/null
      wait "$vpid" 2>/dev/null || true
      for i in 1 2; do
        if [ "$i" = 1 ]; then n="$lo"; else n="$hi"; fi
        total=""
        if [ -n "${pids[$i]}" ] && [ -f "$dir/cg.${pids[$i]}" ]; then
          total="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' \
            "$dir/cg.${pids[$i]}" | head -1)"
          # BENCH_CALLGRIND_KEEP=DIR keeps the backends' profiles (callgrind_annotate)
          if [ -n "${BENCH_CALLGRIND_KEEP:-}" ]; then
            mkdir -p "$BENCH_CALLGRIND_KEEP"
            cp "$dir/cg.${pids[$i]}" "$BENCH_CALLGRIND_KEEP/backend.$mode.$cfg.$n.callgrind"
          fi
        fi
        own=""
        [ -n "$total" ] && own="$(ch_own_ir "$dir/cg.${pids[$i]}")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$cfg" "$n" "$total" "$calls" "$own" >>"$raw"
      done
      printf '  %-8s %-7s backends %s and %s profiled (%ds)\n' "$mode" "$cfg" \
        "${pids[1]:-?}" "${pids[2]:-?}" $(($(now_s) - t0))
    done
  done
  echo
  "${REPORT[@]}" backend "$raw" --lo "$lo" --hi "$hi" --summary "$WORK/sum.backend"
  cat <<'EOF'

  notes: one cluster start under valgrind per configuration; only the two
  measured backends count.  coder_health's round-trip reading (every
  coder_health.rtt_interval) comes more often per statement under valgrind's
  slowdown than at native speed, so its figure is slightly pessimistic.  "calls" is what coder_health recorded for GetAccountBalance
  over the three connections (should be 100 + lo + hi).
EOF
  set_summary backend "$(cat "$WORK/sum.backend")"
  rm -rf "$dir"
}

# ---------------------------------------------------------------------------
# 2. throughput
# ---------------------------------------------------------------------------
sec_throughput() {
  local configs=(none ch)
  have_pgss && configs=(none pgss ch both)
  local ncfg=${#configs[@]} load0
  load0="$(cut -d' ' -f1 /proc/loadavg)"
  section "throughput (pgbench; ${BENCH_ROUNDS} rounds x ${BENCH_SECONDS}s per run; $ncfg clusters up, runs interleaved)"
  # One cluster is set up, then copied once per configuration; all copies
  # stay up (idle but for the one measured), so that the configurations can
  # take turns every few seconds and bursts of machine noise hit them alike.
  local base="$WORK/tput_base" port
  port="$(new_port)"
  CH_NO_PRELOAD=1 ch_init_cluster "$base" "$port" \
    "include_if_exists = 'bench_preload.conf'" \
    "synchronous_commit = off" \
    "max_connections = 100"
  start_server "$base"
  pgb "$base" -i -q -s 1 postgres >/dev/null 2>&1
  q "$base" "CREATE EXTENSION coder_health" >/dev/null

  local mix=() f
  for f in "$ROOT"/workload/pgbench/*.sql; do
    [ -f "$f" ] && mix+=(-f "$f")
  done
  local workloads=(select-simple select-prepared)
  if [ ${#mix[@]} -gt 0 ]; then
    echo "Coder-shaped scripts (equal weights, -M $BENCH_MIX_MODE -s $BENCH_WORKSPACES):"
    for f in "$ROOT"/workload/pgbench/*.sql; do echo "    ${f#"$ROOT"/}"; done
    q "$base" "CREATE DATABASE coder" >/dev/null
    if ch_psql "$base" -d coder -q -f "$ROOT/workload/schema.sql" >"$WORK/schema.log" 2>&1 &&
       DB=coder q "$base" "SELECT seed($BENCH_WORKSPACES)" >/dev/null 2>>"$WORK/schema.log" &&
       DB=coder q "$base" "ANALYZE" >/dev/null; then
      workloads+=(coder-mix)
    else
      echo "  could not load workload/schema.sql; Coder mix skipped:"
      tail -5 "$WORK/schema.log" | sed 's/^/    /'
    fi
  else
    echo "no workload/pgbench/*.sql: Coder-shaped mix skipped"
  fi
  q "$base" "CHECKPOINT" >/dev/null
  stop_server "$base"

  local cfg spl dir
  for cfg in "${configs[@]}"; do
    case "$cfg" in
      none) spl="" ;;
      pgss) spl="pg_stat_statements" ;;
      ch) spl="coder_health" ;;
      both) spl="pg_stat_statements,coder_health" ;;
    esac
    dir="$WORK/tput_$cfg"
    cp -a "$base" "$dir"
    rm -f "$dir/server.log" "$dir/postmaster.pid"
    port="$(new_port)"
    {
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
    } >>"$dir/postgresql.conf"
    echo "shared_preload_libraries = '$spl'" >"$dir/bench_preload.conf"
    chown postgres:postgres "$dir/bench_preload.conf"
    start_server "$dir"
    if [ "$(q "$dir" "SHOW shared_preload_libraries")" != "$spl" ]; then
      echo "configuration $cfg did not take effect" >&2
      return 1
    fi
  done
  rm -rf "$base"

  # pgbench arguments of a workload
  wl_args() {
    case "$1" in
      select-simple) echo "-S -M simple postgres" ;;
      select-prepared) echo "-S -M prepared postgres" ;;
      coder-mix) echo "-M $BENCH_MIX_MODE -s $BENCH_WORKSPACES ${mix[*]} coder" ;;
    esac
  }
  local wl c out tps tx cpu cpu0 calls0 rec r k block t0 mix_failed=0
  local -a args
  printf '  warm-up:'
  for cfg in "${configs[@]}"; do
    for wl in "${workloads[@]}"; do
      read -ra args <<<"$(wl_args "$wl")"
      pgb "$WORK/tput_$cfg" -n -c 2 -j 2 -T 1 "${args[@]}" >/dev/null 2>&1 || true
    done
    printf ' %s' "$cfg"
  done
  echo

  local raw="$WORK/tput.tsv"
  : >"$raw"
  t0=$(now_s)
  for r in $(seq 1 "$BENCH_ROUNDS"); do
    block=0
    for wl in "${workloads[@]}"; do
      read -ra args <<<"$(wl_args "$wl")"
      for c in 2 32; do
        for k in $(seq 0 $((ncfg - 1))); do
          # rotate the order: over the rounds each configuration runs in
          # each position
          cfg="${configs[$(((k + r + block) % ncfg))]}"
          tps=nan
          tx=nan
          cpu=""
          rec=""
          # coverage check: statements coder_health recorded during the run
          calls0=""
          case "$cfg/$wl" in (ch/select-*|both/select-*) calls0="$(ch_calls "$WORK/tput_$cfg")" ;; esac
          cpu0="$(cluster_cpu "$WORK/tput_$cfg")"
          if out="$(pgb "$WORK/tput_$cfg" -n -c "$c" -j 2 -T "$BENCH_SECONDS" "${args[@]}" 2>&1)"; then
            wait_backends_gone "$WORK/tput_$cfg"
            cpu=$(($(cluster_cpu "$WORK/tput_$cfg") - cpu0))
            tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' <<<"$out" | head -1)"
            tx="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out" | head -1)"
            [ -n "$tps" ] || tps=nan
            [ -n "$tx" ] || tx=nan
            if [ -n "$calls0" ]; then
              # minus 1: the query that read calls0 is counted too
              rec=$(($(ch_calls "$WORK/tput_$cfg") - calls0 - 1))
            fi
          elif [ "$wl" = coder-mix ] && [ "$mix_failed" = 0 ]; then
            mix_failed=1
            echo "  pgbench failed on the Coder scripts (reported as failed):"
            grep -iE 'error|abort' <<<"$out" | head -5 | sed 's/^/    /'
          fi
          printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$cfg" "$wl" "$c" "$tps" "${cpu:-}" "$tx" "$rec" >>"$raw"
        done
        block=$((block + 1))
      done
    done
    printf '  round %d/%d done (%ds)\n' "$r" "$BENCH_ROUNDS" $(($(now_s) - t0))
  done
  for cfg in "${configs[@]}"; do stop_server "$WORK/tput_$cfg"; done
  printf 'load average at the end: %s\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  "${REPORT[@]}" throughput "$raw" --clk-tck "$CLK_TCK" --summary "$WORK/sum.throughput"
  cat <<'EOF'

  notes: scale 1 (all in shared_buffers), synchronous_commit = off, pgbench -j 2
  on the same 2-core machine as the servers.  Each configuration is its own copy
  of one cluster, differing only in shared_preload_libraries (none = nothing,
  compute_query_id = auto); the idle clusters' background processes (and
  coder_health's collector, once a second) run during every measurement.
  Spread is the machine's noise: ratios within it are not significant.  Server
  CPU per transaction (all of the cluster's processes, from /proc, collector
  included) is much less sensitive to other load than tps is.
EOF
  set_summary throughput "$(cat "$WORK/sum.throughput")
    (1-min load average at start / end: $load0 / $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores)"
  for cfg in "${configs[@]}"; do rm -rf "$WORK/tput_$cfg"; done
}

# ---------------------------------------------------------------------------
# 3. accuracy
# ---------------------------------------------------------------------------
sec_accuracy() {
  section "accuracy (server log durations vs coder_health.statement_latency, ${BENCH_ACCURACY_SECONDS}s)"
  local dir="$WORK/acc" port
  port="$(new_port)"
  ch_init_cluster "$dir" "$port" \
    "log_line_prefix = '%m [%p] %u %Q '" \
    "compute_query_id = on"
  start_server "$dir"
  pgb "$dir" -i -q -s 1 postgres >/dev/null 2>&1
  q "$dir" "CREATE EXTENSION coder_health" >/dev/null
  q "$dir" "CREATE ROLE bench LOGIN" >/dev/null
  q "$dir" "GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA public TO bench" >/dev/null
  # only the benchmark role's statements are logged
  q "$dir" "ALTER ROLE bench SET log_min_duration_statement = 0" >/dev/null

  cat >"$WORK/acc_mix.sql" <<'EOF'
\set aid random(1, 100000)
\set delta random(-5000, 5000)
SELECT pg_sleep(random() * 0.01);
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT pg_sleep(power(random(), 4) * 0.05);
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = 1;
SELECT count(*) FROM pgbench_accounts WHERE aid BETWEEN :aid AND :aid + 2000;
EOF
  settle
  q "$dir" "SELECT coder_health.reset()" >/dev/null
  local off
  off=$(stat -c %s "$dir/server.log")
  # rate-limited: on a saturated 2-core machine the backend is often
  # preempted between coder_health's end of a statement and the log's, which
  # would show up as error that is not the sketch's
  echo "workload: pgbench -M simple -c 4 -j 2 -R $BENCH_ACCURACY_RATE, builtin select-only@2 + this script@1:"
  sed 's/^/    /' "$WORK/acc_mix.sql"
  PGB_USER=bench pgb "$dir" -n -M simple -c 4 -j 2 -T "$BENCH_ACCURACY_SECONDS" \
    -R "$BENCH_ACCURACY_RATE" \
    -b select-only@2 -f "$WORK/acc_mix.sql@1" postgres >"$WORK/acc_pgbench.out" 2>&1 || {
    echo "pgbench failed:"
    tail -5 "$WORK/acc_pgbench.out"
    return 1
  }
  sed -n 's/^\(number of transactions actually processed\|tps\)/  \1/p' "$WORK/acc_pgbench.out"
  settle 3
  tail -c +"$((off + 1))" "$dir/server.log" >"$WORK/acc_run.log"
  q "$dir" "SELECT queryid, calls, errors, total_ms, min_ms, p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, max_ms
            FROM coder_health.statement_latency WHERE rolname = 'bench' AND toplevel" \
    >"$WORK/acc_ch.tsv"
  stop_server "$dir"
  echo
  "${REPORT[@]}" accuracy "$WORK/acc_run.log" "$WORK/acc_ch.tsv" --user bench \
    --summary "$WORK/sum.accuracy"
  cat <<'EOF'

  notes: quantiles are lower nearest-rank (rank ceil(q*n)), the sketch's own
  definition.  Both clocks start at the statement's start timestamp, but the
  log's stops later (after the rest of the commit and the CommandComplete
  message), so coder_health reads every statement some microseconds lower
  (tens when the backend is preempted in between): that offset, not the
  sketch, dominates the sub-millisecond errors.  Query ids whose mean offset
  is < 0.5% (the pg_sleep ones) show the sketch's own error: within 1%.
EOF
  set_summary accuracy "$(cat "$WORK/sum.accuracy")"
  rm -rf "$dir"
}

# status_row DIR: reserved, used, tracked, max_statements (tab-separated)
status_row() {
  q "$1" "SELECT shmem_reserved_bytes, shmem_used_bytes, statements_tracked, max_statements, evictions,
                 dropped_samples
          FROM coder_health.status"
}

# ---------------------------------------------------------------------------
# 4. memory
# ---------------------------------------------------------------------------
sec_memory() {
  section "shared memory per tracked statement"
  local dir="$WORK/mem" port n=4000
  port="$(new_port)"
  # default window_step (60 s): the four passes below land in the current
  # window (or two), so a statement has its total and one or two windows
  ch_init_cluster "$dir" "$port"
  start_server "$dir"
  q "$dir" "CREATE EXTENSION coder_health" >/dev/null
  local reserved used0 tracked0 maxst ev dr used1 tracked1 ev1 dr1 r2 rest
  IFS=$'\t' read -r reserved used0 tracked0 maxst ev dr < <(status_row "$dir")
  printf '  at defaults (max_statements %d): reserved %d bytes (%.1f MiB), used %d bytes with %d statements\n' \
    "$maxst" "$reserved" "$(awk -v b="$reserved" 'BEGIN{print b/1048576}')" "$used0" "$tracked0"

  echo "  creating $n one-row tables ..."
  create_tables "$dir" "$n"
  settle
  q "$dir" "SELECT coder_health.reset()" >/dev/null
  settle
  IFS=$'\t' read -r reserved used0 tracked0 maxst ev dr < <(status_row "$dir")
  # four passes, durations from ~30 us to a few ms
  local t0 k
  t0=$(now_s)
  for k in 1 100 3000 30000; do
    distinct_statements "$n" "$k" >"$WORK/mem.sql"
    run_batched "$dir" "$WORK/mem.sql"
  done
  settle
  IFS=$'\t' read -r reserved used1 tracked1 maxst ev1 dr1 < <(status_row "$dir")
  printf '  %d distinct statements x 4 executions (%ds): statements_tracked %d -> %d, used %d -> %d bytes, evictions %d, dropped samples %d\n' \
    "$n" $(($(now_s) - t0)) "$tracked0" "$tracked1" "$used0" "$used1" $((ev1 - ev)) $((dr1 - dr))
  local per_used per_res marginal
  per_used=$(( (used1 - used0) / (tracked1 - tracked0 > 0 ? tracked1 - tracked0 : 1) ))
  per_res=$(( reserved / maxst ))

  # the marginal reservation: same cluster with twice the statements
  stop_server "$dir"
  echo "coder_health.max_statements = $((maxst * 2))" >>"$dir/postgresql.conf"
  start_server "$dir"
  IFS=$'\t' read -r r2 rest < <(status_row "$dir")
  marginal=$(( (r2 - reserved) / maxst ))
  stop_server "$dir"

  echo
  printf '  %-58s %8s\n' "" "bytes"
  printf '  %-58s %8d\n' "used per tracked statement ((used after - before) / new)" "$per_used"
  printf '  %-58s %8d\n' "reserved / max_statements at defaults (all of it)" "$per_res"
  printf '  %-58s %8d\n' "reserved per extra max_statements slot (5000 -> 10000)" "$marginal"
  printf '  %-58s %8d\n' "target for the marginal reservation (issue #22)" 4096
  set_summary memory "$(printf 'memory: %d bytes used per statement; reserved %.1f MB at defaults = %d bytes per max_statements slot, %d marginal (target <= 4096)' \
    "$per_used" "$(awk -v b="$reserved" 'BEGIN{print b/1048576}')" "$per_res" "$marginal")"
  rm -rf "$dir"
}

# ---------------------------------------------------------------------------
# 5. readers
# ---------------------------------------------------------------------------
sec_readers() {
  section "readers: time to read the views with >= 5000 statements tracked"
  local dir="$WORK/read" port n=5000
  port="$(new_port)"
  ch_init_cluster "$dir" "$port" "coder_health.max_statements = 6000"
  start_server "$dir"
  q "$dir" "CREATE EXTENSION coder_health" >/dev/null
  echo "  creating $n one-row tables and running each statement twice ..."
  create_tables "$dir" "$n"
  distinct_statements "$n" 1 1000 >"$WORK/read.sql"
  run_batched "$dir" "$WORK/read.sql"
  settle
  local reserved used tracked maxst ev dr
  IFS=$'\t' read -r reserved used tracked maxst ev dr < <(status_row "$dir")
  printf '  statements_tracked %d (max_statements %d, evictions %d, dropped samples %d)\n' \
    "$tracked" "$maxst" "$ev" "$dr"
  if [ "$tracked" -lt "$n" ]; then
    echo "  WARNING: fewer than $n statements tracked"
  fi

  printf '\n  %-42s %6s %9s %14s\n' "view (median of 5)" "rows" "server" "psql, all rows"
  local view rows server client line=""
  for view in coder_health.statement_latency "coder_health.statement_latency_internal()" \
              coder_health.latency coder_health.latency_buckets; do
    rows="$(q "$dir" "SELECT count(*) FROM $view")"
    server="$(for _ in 1 2 3 4 5; do
        q "$dir" "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) SELECT * FROM $view" |
          sed -n 's/^Execution Time: \([0-9.]*\) ms/\1/p'
      done | "${REPORT[@]}" median)"
    client="$(printf '\\timing on\n\\o /dev/null\n%s\n' \
        "$(for _ in 1 2 3 4 5; do echo "SELECT * FROM $view;"; done)" |
        ch_psql "$dir" -q | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | "${REPORT[@]}" median)"
    printf '  %-42s %6d %6.1f ms %11.1f ms\n' "$view" "$rows" "$server" "$client"
    case "$view" in
      coder_health.statement_latency)
        line="$(printf 'readers: statement_latency %.1f ms (psql round trip %.1f ms) with %d statements' \
          "$server" "$client" "$tracked")" ;;
      coder_health.latency)
        line="$(printf '%s, latency %.1f ms (target < 50 ms)' "$line" "$server")" ;;
    esac
  done
  echo
  echo "  server = EXPLAIN ANALYZE execution time; psql = round trip with all rows"
  stop_server "$dir"
  set_summary readers "$line"
  rm -rf "$dir"
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
echo "coder_health bench: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $("$(ch_pg_config)" --version), $(nproc) cores"
echo "sections: ${SECTIONS[*]}"
if [ -z "$PY" ]; then
  echo "python3 is needed for the reports" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  make -s -C "$ROOT" install >/dev/null || { echo "make install failed" >&2; exit 1; }
elif [ ! -f "$PKGLIBDIR/coder_health.so" ]; then
  echo "coder_health is not installed (run make install as root)" >&2
  exit 1
fi
if ! id postgres >/dev/null 2>&1; then
  echo "there is no postgres OS user to run the servers" >&2
  exit 1
fi

FAILED=()
for s in "${SECTIONS[@]}"; do
  t0=$(now_s)
  # set -e must stay on inside the section, so no "if" around it
  set +e
  (
    set -e
    trap stop_started EXIT
    trap 'exit 130' INT TERM
    "sec_$s"
  )
  rc=$?
  set -e
  [ "$rc" = 130 ] && exit 130
  if [ "$rc" != 0 ]; then
    FAILED+=("$s")
    echo "section $s could not run (exit status $rc)"
  fi
  ELAPSED[$s]=$(($(now_s) - t0))
  # the section ran in a subshell: pick up its summary line from the file
  if [ -f "$WORK/sum.line.$s" ]; then SUMMARY[$s]="$(cat "$WORK/sum.line.$s")"; fi
done

echo
hr
echo "coder_health bench summary"
for s in "${SECTIONS[@]}"; do
  if [ -n "${SUMMARY[$s]:-}" ]; then
    printf '  %s\n' "${SUMMARY[$s]}"
  else
    printf '  %s: not measured\n' "$s"
  fi
done
printf '  time per section:'
for s in "${SECTIONS[@]}"; do printf ' %s %ds' "$s" "${ELAPSED[$s]}"; done
echo
hr
[ ${#FAILED[@]} -eq 0 ]
