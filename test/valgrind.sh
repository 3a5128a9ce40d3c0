#!/bin/bash
# The regression suite against a server running under valgrind memcheck,
# with coder_health preloaded (make soak runs it; alone:
# PG_CONFIG=... bash test/valgrind.sh).
#
# initdb runs normally; then the postmaster (and with it every backend and the
# collector, which it forks) runs under valgrind with PostgreSQL's own
# suppressions (src/tools/valgrind.supp from the PostgreSQL source, looked
# for in VALGRIND_SUPP, /tmp/pgsrc/pg<major>/src/tools and the PGXS tree).
# Every valgrind report is kept in one log per process; the script prints
# how many reports there are and how many have coder_health in their stack,
# and fails if any does.  Regression diffs under valgrind are reported but
# not counted (timing-sensitive waits may run out at valgrind's speed).
#
# Limits: shared memory is not tracked by memcheck, and a PostgreSQL built
# without USE_VALGRIND does not tell valgrind about palloc chunks, so
# overruns inside one memory-context block are not seen; invalid reads and
# writes outside allocations, uses of uninitialized values and bad frees are.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

BINDIR="$(ch_bindir)"
PGXS_DIR="$(ch_pgxs_dir)"
export PATH="$BINDIR:$PATH"
DIR="${VALGRIND_DIR:-/tmp/coder_health_valgrind.$(echo "$ROOT" | md5sum | cut -c1-8)}"
major="$("$(ch_pg_config)" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')"

if ! command -v valgrind >/dev/null; then
  echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)"
  exit 1
fi
SUPP="${VALGRIND_SUPP:-}"
for f in "/tmp/pgsrc/pg$major/src/tools/valgrind.supp" "$PGXS_DIR/src/tools/valgrind.supp"; do
  [ -z "$SUPP" ] && [ -f "$f" ] && SUPP="$f"
done

rm -rf "$DIR"
install -d -o postgres -g postgres "$DIR"
PORT=$(ch_free_port "${VALGRIND_PORT:-57700}")
ch_init_cluster "$DIR/data" "$PORT" \
  "coder_health.window_step = 1" \
  "coder_health.sample_interval = 200" \
  "max_prepared_transactions = 2" \
  "max_connections = 20" \
  "shared_buffers = 16MB" >/dev/null || { echo "initdb failed"; exit 1; }
if [ -n "$SUPP" ]; then
  cp "$SUPP" "$DIR/valgrind.supp"
  chown postgres "$DIR/valgrind.supp"
  supp_arg=(--suppressions="$DIR/valgrind.supp")
  echo "suppressions: $SUPP"
else
  supp_arg=()
  echo "suppressions: none found (PostgreSQL's src/tools/valgrind.supp)"
fi

# the postmaster under memcheck, in the background as postgres
ch_as_pg valgrind --quiet --trace-children=yes --track-origins=yes \
  --read-var-info=no --num-callers=30 --error-limit=no \
  --log-file="$DIR/vg.%p.log" "${supp_arg[@]}" \
  "$BINDIR/postgres" -D "$DIR/data" >"$DIR/server.log" 2>&1 &
VG_PID=$!
stop_server() {
  if [ -f "$DIR/data/postmaster.pid" ]; then
    ch_as_pg "$BINDIR/pg_ctl" -D "$DIR/data" -m fast -w -t 300 stop >/dev/null 2>&1 ||
      kill "$VG_PID" 2>/dev/null
  fi
  wait "$VG_PID" 2>/dev/null
}
trap stop_server EXIT

for _ in $(seq 1 300); do
  pg_isready -q -h "$DIR/data" -p "$PORT" && break
  sleep 1
done
if ! pg_isready -q -h "$DIR/data" -p "$PORT"; then
  echo "server under valgrind did not start"; tail -20 "$DIR/server.log"; exit 1
fi
echo "server under valgrind on port $PORT; running the regression suite (slow)"

rc=0
ch_as_pg env PATH="$PATH" "$PGXS_DIR/src/test/regress/pg_regress" \
  --bindir="$BINDIR" --inputdir="$ROOT" --outputdir="$DIR/regress" \
  --host="$DIR/data" --port="$PORT" --user=postgres \
  --dbname=contrib_regression --schedule="$ROOT/test/regress/schedule" \
  >"$DIR/regress.log" 2>&1 || rc=$?
grep -E '^(test |     )' "$DIR/regress.log"
if [ "$rc" -ne 0 ]; then
  echo "(regression differences under valgrind are not counted; see $DIR/regress/regression.diffs)"
fi

trap - EXIT
stop_server

# A report is a block starting "==PID== <what>" after a blank "==PID== " line;
# count blocks, and blocks with coder_health in the stack.
summary=$(awk '
  /^==[0-9]+== [A-Z]/ && !inblock { inblock = 1; n++; ours = 0; hdr = $0; next }
  inblock && /coder_health/ { ours = 1 }
  inblock && /^==[0-9]+== *$/ { if (ours) { o++; print hdr > "/dev/stderr" } inblock = 0 }
  END { if (inblock && ours) o++; printf "%d %d\n", n, o }' "$DIR"/vg.*.log 2>"$DIR/ours.txt")
read -r reports ours <<<"$summary"
procs=$(ls "$DIR"/vg.*.log | wc -l)
echo "valgrind: $procs processes checked, $reports reports in all, $ours in coder_health code (logs in $DIR)"
if [ "$ours" -gt 0 ]; then
  cat "$DIR/ours.txt" | sort | uniq -c | head -20
  exit 1
fi
exit 0
