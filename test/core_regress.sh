#!/bin/bash
# PostgreSQL's own regression suite as the oracle (issue #18 item 4).
#
# src/test/regress of the Debian source package of PostgreSQL 15
# (`scripts/install-deps.sh --pg-source` fetches it), installcheck with
# parallel_schedule, three times on fresh clusters with the same settings:
#   plain  nothing preloaded
#   ch     coder_health preloaded, CREATE EXTENSION coder_health done in the
#          test database
#   pgss   pg_stat_statements preloaded and created (the reference for what
#          a monitoring extension may legitimately change)
# Each test's output of "ch" is compared with that of "plain" (not with the
# expected files: the oracle is the same server without us).  A difference
# passes only if the test is listed in test/core_allowed.txt (with the
# reason) and pg_stat_statements changes the same lines too ("Query
# Identifier: N" values masked).  Everything else fails.
#
#   test/core_regress.sh WORKDIR        (PG_CONFIG picks the server; 15 only)
#   CH_CORE_CACHE=/path                 source and built test libraries
#                                       (default /var/cache/coder_health/regress-15)
#   CH_CORE_REUSE=1                     compare the last runs' outputs again
# Prints TAP; exits non-zero on a failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
WORK="${1:?usage: core_regress.sh WORKDIR}"
CACHE="${CH_CORE_CACHE:-/var/cache/coder_health/regress-15}"
ALLOWED="$ROOT/test/core_allowed.txt"
PGC="$(ch_pg_config)"
BINDIR="$(ch_bindir)"
PGXS_DIR="$(ch_pgxs_dir)"
t0=$(date +%s)

n=0
failed=0
tap() {
  n=$((n + 1))
  if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
finish() { echo "# core suite took $(($(date +%s) - t0))s"; echo "1..$n"; [ "$failed" -eq 0 ]; exit $?; }

major=$("$PGC" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
if [ "$major" != 15 ]; then
  echo "# skip: the core suite runs on PostgreSQL 15 only (this is $major)"
  tap OK "core suite skipped on PostgreSQL $major"
  finish
fi

# --- the source, once
src=$(ls -d "$CACHE"/postgresql-15.*/src/test/regress 2>/dev/null | sort -V | tail -1)
if [ -z "$src" ] || [ ! -f "$src/parallel_schedule" ]; then
  echo "# fetching PostgreSQL 15's source into $CACHE"
  bash "$ROOT/scripts/install-deps.sh" --pg-source "$CACHE" >&2 || true
  src=$(ls -d "$CACHE"/postgresql-15.*/src/test/regress 2>/dev/null | sort -V | tail -1)
fi
if [ -z "$src" ] || [ ! -f "$src/parallel_schedule" ]; then
  tap FAIL "PostgreSQL 15's regression tests available in $CACHE"
  finish
fi
top="$(cd "$src/../../.." && pwd)"
echo "# tests from $top on $("$PGC" --version)"

# --- the C libraries the tests load (regress, autoinc, refint), built once
# per server version against its headers
ver=$("$PGC" --version | tr -c 'A-Za-z0-9.\n' '_')
lib="$CACHE/lib-$ver"
if [ ! -f "$lib/regress.so" ] || [ ! -f "$lib/autoinc.so" ] || [ ! -f "$lib/refint.so" ]; then
  rm -rf "$lib.new"
  mkdir -p "$lib.new"
  inc="-I$("$PGC" --includedir-server) -I$("$PGC" --includedir)/internal -I$src"
  cflags="-O2 -fPIC -shared -Wno-deprecated-declarations"
  # shellcheck disable=SC2086
  if gcc $cflags $inc -o "$lib.new/regress.so" "$src/regress.c" &&
     gcc $cflags $inc -o "$lib.new/autoinc.so" "$top/contrib/spi/autoinc.c" &&
     gcc $cflags $inc -DREFINT_VERBOSE -o "$lib.new/refint.so" "$top/contrib/spi/refint.c"; then
    rm -rf "$lib"
    mv "$lib.new" "$lib"
  fi
fi
if [ ! -f "$lib/regress.so" ]; then
  tap FAIL "test libraries built in $lib"
  finish
fi
chmod -R a+rX "$CACHE"

# --- three runs
install -d -o postgres -g postgres "$WORK"
run_one() { # name preload extension
  local name="$1" preload="$2" ext="$3" dir="$WORK/$1" port rc=0
  port=$(ch_free_port 57500)
  CH_NO_PRELOAD=1 ch_init_cluster "$dir/data" "$port" \
    ${preload:+"shared_preload_libraries = '$preload'"} "max_prepared_transactions = 2"
  ch_start "$dir/data" || return 1
  install -d -o postgres -g postgres "$dir/out"
  # as pg_regress creates it, then the extension in it
  ch_psql "$dir/data" -q -c "CREATE DATABASE regression TEMPLATE=template0" \
    -c "ALTER DATABASE regression SET lc_messages TO 'C'" \
    -c "ALTER DATABASE regression SET lc_monetary TO 'C'" \
    -c "ALTER DATABASE regression SET lc_numeric TO 'C'" \
    -c "ALTER DATABASE regression SET lc_time TO 'C'" \
    -c "ALTER DATABASE regression SET bytea_output TO 'hex'" \
    -c "ALTER DATABASE regression SET timezone_abbreviations TO 'Default'" >/dev/null || rc=1
  if [ -n "$ext" ]; then
    ch_psql "$dir/data" -q -d regression -c "CREATE EXTENSION $ext" >/dev/null || rc=1
  fi
  local s=$(date +%s)
  (cd "$dir/out" && ch_as_pg "$PGXS_DIR/src/test/regress/pg_regress" \
     --bindir="$BINDIR" --inputdir="$src" --outputdir="$dir/out" \
     --dlpath="$lib" --host="$dir/data" --port="$port" --use-existing \
     --dbname=regression --schedule="$src/parallel_schedule") >"$dir/pg_regress.log" 2>&1
  echo "# $name: $(grep -cE ' \.\.\. ok ' "$dir/pg_regress.log") tests as expected," \
       "$(grep -cE 'FAILED' "$dir/pg_regress.log") differ from PostgreSQL's expected files ($(($(date +%s) - s))s)"
  ch_stop "$dir/data"
  [ -n "$(ls "$dir/out/results" 2>/dev/null)" ] || rc=1
  return $rc
}
ok_runs=1
# CH_CORE_REUSE=1: compare the outputs of the last runs again (no new runs)
if [ "${CH_CORE_REUSE:-0}" != 1 ]; then
  run_one plain "" "" || ok_runs=0
  run_one ch coder_health coder_health || ok_runs=0
  run_one pgss pg_stat_statements pg_stat_statements || ok_runs=0
fi
if [ "$ok_runs" = 1 ]; then
  tap OK "three installcheck runs (plain, coder_health, pg_stat_statements)"
else
  tap FAIL "three installcheck runs (logs in $WORK/*/pg_regress.log)"
  finish
fi

# --- compare
# changed lines of one test between plain and $1, query ids masked
changed() {
  diff "$WORK/plain/out/results/$2.out" "$WORK/$1/out/results/$2.out" |
    grep -E '^[<>]' | sed -E 's/(Query Identifier: )-?[0-9]+/\1N/' | sort
}
bad=0
explained=0
tests=$(cd "$WORK/plain/out/results" && ls ./*.out | sed 's|^\./||; s/\.out$//')
total=$(echo "$tests" | wc -l)
for t in $tests; do
  if [ ! -f "$WORK/ch/out/results/$t.out" ]; then
    echo "# $t: no output with coder_health"
    bad=$((bad + 1))
    continue
  fi
  cmp -s "$WORK/plain/out/results/$t.out" "$WORK/ch/out/results/$t.out" && continue
  # a test whose output with coder_health is one of PostgreSQL's expected
  # outputs: the plain run was the one that deviated (a timing-dependent
  # test), not a difference caused by coder_health
  same_as_expected=""
  for e in "$src/expected/$t.out" "$src"/expected/"$t"_[0-9].out; do
    [ -f "$e" ] && cmp -s "$e" "$WORK/ch/out/results/$t.out" && same_as_expected="$e"
  done
  if [ -n "$same_as_expected" ]; then
    echo "# $t: differs from the plain run, but is PostgreSQL's expected output ($(basename "$same_as_expected")) with coder_health"
    continue
  fi
  ch_lines=$(changed ch "$t")
  pgss_lines=""
  [ -f "$WORK/pgss/out/results/$t.out" ] && pgss_lines=$(changed pgss "$t")
  reason=$(awk -F'\t' -v t="$t" '$1 == t { print $2 }' "$ALLOWED")
  extra=$(comm -23 <(echo "$ch_lines") <(echo "$pgss_lines"))
  if [ -n "$reason" ] && [ -z "$extra" ]; then
    echo "# $t: differs as with pg_stat_statements too (allowed: $reason)"
    explained=$((explained + 1))
  else
    echo "# $t: DIFFERS with coder_health only${reason:+ (listed: $reason, but with lines pg_stat_statements does not change)}:"
    diff -U1 "$WORK/plain/out/results/$t.out" "$WORK/ch/out/results/$t.out" | head -40 | sed 's/^/#   /'
    bad=$((bad + 1))
  fi
done
pgss_only=0
for t in $tests; do
  [ -f "$WORK/pgss/out/results/$t.out" ] && ! cmp -s "$WORK/plain/out/results/$t.out" "$WORK/pgss/out/results/$t.out" &&
    pgss_only=$((pgss_only + 1))
done
echo "# $total tests; differ from plain: $((bad + explained)) with coder_health ($explained allowed), $pgss_only with pg_stat_statements"
if [ "$bad" -eq 0 ]; then
  tap OK "coder_health changes no test's output beyond what pg_stat_statements changes ($explained allowed, $total tests)"
else
  tap FAIL "coder_health changes $bad of $total tests' output (outputs in $WORK/{plain,ch,pgss}/out/results)"
fi
finish
