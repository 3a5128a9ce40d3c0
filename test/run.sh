#!/bin/bash
# make test: install what is missing, build with -Werror, install, then run
# every suite against real servers and end with one line
#   N passed, N failed
#
# Suites: unit (plain C, plus ASan/UBSan), regress (pg_regress), isolation
# (pg_isolation_regress), pgtap (pg_prove), tap (Perl PostgreSQL::Test
# clusters), lint (cppcheck), differential (test/differential: the same psql
# script on a server without and one with coder_health, outputs must be
# identical), core (PostgreSQL 15's own regression suite with and without
# coder_health, test/core_regress.sh; CH_SKIP_CORE=1 leaves it out).
# Run a subset with: test/run.sh unit regress ...
#
# Servers run as the postgres OS user, in a scratch directory it owns.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

SUITES=("$@")
[ ${#SUITES[@]} -eq 0 ] && SUITES=(lint unit regress isolation pgtap tap differential core)

PASSED=0
FAILED=0
FAILURES=()

note() { printf '\n=== %s\n' "$*"; }

# Add a suite's counts.  $1 suite, $2 passed, $3 failed.
tally() {
  PASSED=$((PASSED + $2))
  FAILED=$((FAILED + $3))
  printf -- '--- %s: %d passed, %d failed\n' "$1" "$2" "$3"
  if [ "$3" -gt 0 ]; then FAILURES+=("$1"); fi
}

# Count TAP result lines (also indented subtest lines) in a log file.
count_tap() {
  local log="$1" suite="$2" rc="$3" ok notok
  ok=$(grep -cE '^[[:space:]]*ok [0-9]+' "$log" || true)
  notok=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$log" || true)
  # a script that died or exited non-zero without a "not ok" still failed
  if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then notok=1; fi
  tally "$suite" "$ok" "$notok"
}

# pg_regress and pg_isolation_regress: one line per test, "ok" or "FAILED"
# (15 and older), or TAP "ok N - name" / "not ok N - name" (16 and newer).
count_regress() {
  local log="$1" suite="$2" rc="$3" ok notok
  ok=$(grep -cE '^(test |     |ok [0-9]+ +[-+] ).* ok( |$)|^ok [0-9]+ ' "$log" || true)
  notok=$(grep -cE 'FAILED|failed \(ignored\)|^not ok [0-9]+' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then notok=1; fi
  tally "$suite" "$ok" "$notok"
}

# ---------------------------------------------------------------------------
note "dependencies"
bash "$ROOT/scripts/install-deps.sh" test || { echo "cannot install dependencies"; exit 1; }

BINDIR="$(ch_bindir)"
PGXS_DIR="$(ch_pgxs_dir)"
export PATH="$BINDIR:$PATH"

note "build (-Wall -Wextra -Werror) and install"
if ! make -C "$ROOT" -s clean >/dev/null ||
   ! make -C "$ROOT" -s WERROR=1 ||
   ! make -C "$ROOT" -s install >/dev/null ||
   ! make -C "$ROOT/test/modules/notify_mirror_break" -s clean install >/dev/null ||
   ! make -C "$ROOT/workload" -s; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# Scratch space owned by postgres: servers, pg_regress output, TAP clusters.
# one scratch directory per checkout, so several checkouts can test at once
WORK="${CH_TEST_WORK:-/tmp/coder_health_test.$(echo "$ROOT" | md5sum | cut -c1-8)}"
rm -rf "$WORK"
install -d -o postgres -g postgres "$WORK"
# the postgres user must be able to read the tests and run the workload tools
chmod -R a+rX "$ROOT" 2>/dev/null || true
parent="$ROOT"
while [ "$parent" != / ]; do chmod a+x "$parent" 2>/dev/null || true; parent="$(dirname "$parent")"; done

as_pg_env() {
  ch_as_pg env PATH="$PATH" PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
    CH_ROOT="$ROOT" "$@"
}

# ---------------------------------------------------------------------------
run_lint() {
  note "lint: cppcheck"
  local log="$WORK/lint.log" rc=0
  cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
    --inline-suppr --suppress=missingIncludeSystem --suppress=missingInclude \
    -I "$ROOT/src" "$ROOT/src/lib/sketch.c" "$ROOT/src/lib/sketch_quantile.c" "$ROOT/test/unit/test_sketch.c" \
    "$ROOT/src/lib/query_name.c" "$ROOT/test/unit/test_query_name.c" \
    "$ROOT/src/lib/channel_family.c" "$ROOT/test/unit/test_channel_family.c" \
    "$ROOT/src/lib/statement_text.c" "$ROOT/test/unit/test_statement_text.c" \
    "$ROOT/test/unit/test_history_ring.c" \
    "$ROOT/src/lib/stats_file.c" "$ROOT/test/unit/test_stats_file.c" \
    -D_POSIX_C_SOURCE=200809L "$ROOT"/workload/*.c "$ROOT"/workload/coderd/*.c >"$log" 2>&1 || rc=$?
  # PostgreSQL-dependent files: check them with the server headers
  cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
    --inline-suppr --suppress=missingIncludeSystem --suppress=missingInclude \
    --suppress=unknownMacro --suppress=syntaxError \
    -D__GNUC__ -DPG_VERSION_NUM=150000 \
    -I "$ROOT/src" "$ROOT"/src/*.c "$ROOT"/src/*/*.c >>"$log" 2>&1 || rc=$?
  # clang-tidy with the checked-in .clang-tidy (bug-finding checks)
  bash "$ROOT/test/lint.sh" >>"$log" 2>&1 || rc=$?
  cat "$log"
  if [ "$rc" -eq 0 ]; then tally lint 1 0; else tally lint 0 1; fi
}

run_unit() {
  note "unit: sketch, query names, channel families, statement text, history ring, stats file (plain, then ASan+UBSan)"
  local log="$WORK/unit.log" rc=0
  make -C "$ROOT/test/unit" -s check check-asan >"$log" 2>&1 || rc=$?
  grep -E '^(not )?ok|^#' "$log" | grep -vE '^ok' || true
  count_tap "$log" unit "$rc"
}

run_regress() {
  note "regress: pg_regress (sql/, expected/)"
  local log="$WORK/regress.log" rc=0 port
  port=$(ch_free_port 57100)
  as_pg_env "$PGXS_DIR/src/test/regress/pg_regress" \
    --bindir="$BINDIR" --inputdir="$ROOT" --outputdir="$WORK/regress" \
    --temp-instance="$WORK/regress/tmp_instance" \
    --temp-config="$ROOT/test/regress/regress.conf" \
    --port="$port" --dbname=contrib_regression \
    --schedule="$ROOT/test/regress/schedule" >"$log" 2>&1 || rc=$?
  cat "$log"
  if [ "$rc" -ne 0 ] && [ -f "$WORK/regress/regression.diffs" ]; then
    head -100 "$WORK/regress/regression.diffs"
  fi
  count_regress "$log" regress "$rc"
}

run_isolation() {
  note "isolation: pg_isolation_regress (test/isolation/specs)"
  local log="$WORK/isolation.log" rc=0 port specs
  port=$(ch_free_port 57200)
  specs=$(cd "$ROOT/test/isolation/specs" && ls *.spec | sed 's/\.spec$//' | sort)
  as_pg_env "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
    --bindir="$BINDIR" --inputdir="$ROOT/test/isolation" \
    --outputdir="$WORK/isolation" \
    --temp-instance="$WORK/isolation/tmp_instance" \
    --temp-config="$ROOT/test/regress/regress.conf" \
    --port="$port" --dbname=isolation_regression $specs >"$log" 2>&1 || rc=$?
  cat "$log"
  if [ "$rc" -ne 0 ] && [ -f "$WORK/isolation/regression.diffs" ]; then
    head -100 "$WORK/isolation/regression.diffs"
  fi
  count_regress "$log" isolation "$rc"
}

run_pgtap() {
  note "pgtap: pg_prove (test/pgtap)"
  local log="$WORK/pgtap.log" rc=0 port dir="$WORK/pgtap_cluster"
  port=$(ch_free_port 57300)
  ch_init_cluster "$dir" "$port" "coder_health.window_step = 1" >/dev/null
  ch_start "$dir"
  ch_psql "$dir" -q -c "CREATE DATABASE coder_health_tap" >/dev/null
  ch_psql "$dir" -q -d coder_health_tap \
    -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION coder_health" >/dev/null
  as_pg_env pg_prove -v -h "$dir" -p "$port" -U postgres -d coder_health_tap \
    "$ROOT"/test/pgtap/*.sql >"$log" 2>&1 || rc=$?
  cat "$log"
  ch_stop "$dir"
  count_tap "$log" pgtap "$rc"
}

run_tap() {
  note "tap: Perl clusters (test/tap)"
  local log="$WORK/tap.log" rc=0
  install -d -o postgres -g postgres "$WORK/tap"
  # CH_TAP_TESTS="600 602" runs only the files with those numbers
  local tap_files=() n
  if [ -n "${CH_TAP_TESTS:-}" ]; then
    for n in $CH_TAP_TESTS; do tap_files+=("$ROOT"/test/tap/"$n"_*.pl); done
  else
    tap_files=("$ROOT"/test/tap/*.pl)
  fi
  # Tests that make network namespaces (310) run apart: as root we
  # give them CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_NET_RAW as ambient
  # capabilities of the postgres user (in a chroot, as test/matrix.sh uses,
  # the user namespaces they would otherwise make are not allowed)
  local plain=() netns=() f
  for f in "${tap_files[@]}"; do
    case "$(basename "$f")" in
      310_*) netns+=("$f") ;;
      *) plain+=("$f") ;;
    esac
  done
  : >"$log"
  if [ ${#plain[@]} -gt 0 ]; then
    (cd "$WORK/tap" && as_pg_env TESTDIR="$WORK/tap" \
       PG_TEST_TIMEOUT_DEFAULT=60 prove -v --timer -I "$PGXS_DIR/src/test/perl" -I "$ROOT/test/tap" \
       "${plain[@]}") >>"$log" 2>&1 || rc=$?
  fi
  if [ ${#netns[@]} -gt 0 ]; then
    local as_netns=(as_pg_env)
    if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
      as_netns=(setpriv --reuid=postgres --regid=postgres --init-groups
                --inh-caps=+sys_admin,+net_admin,+net_raw
                --ambient-caps=+sys_admin,+net_admin,+net_raw
                env HOME="$(getent passwd postgres | cut -d: -f6)" USER=postgres LOGNAME=postgres
                PATH="$PATH" PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" CH_ROOT="$ROOT")
    fi
    (cd "$WORK/tap" && "${as_netns[@]}" TESTDIR="$WORK/tap" \
       PG_TEST_TIMEOUT_DEFAULT=60 prove -v --timer -I "$PGXS_DIR/src/test/perl" -I "$ROOT/test/tap" \
       "${netns[@]}") >>"$log" 2>&1 || rc=$?
  fi
  grep -vE '^# (Running|Checking)' "$log"
  count_tap "$log" tap "$rc"
}

run_differential() {
  note "differential: test/differential (without vs with coder_health, outputs identical)"
  local log="$WORK/differential.log" rc=0
  bash "$ROOT/test/differential/run.sh" "$WORK/differential" >"$log" 2>&1 || rc=$?
  cat "$log"
  count_tap "$log" differential "$rc"
}

run_core() {
  if [ "${CH_SKIP_CORE:-0}" = 1 ]; then
    note "core: skipped (CH_SKIP_CORE=1)"
    return
  fi
  note "core: PostgreSQL's regression suite, plain vs coder_health vs pg_stat_statements"
  local log="$WORK/core.log" rc=0
  bash "$ROOT/test/core_regress.sh" "$WORK/core" >"$log" 2>&1 || rc=$?
  cat "$log"
  count_tap "$log" core "$rc"
}

for s in "${SUITES[@]}"; do
  case "$s" in
    lint) run_lint ;;
    unit) run_unit ;;
    regress) run_regress ;;
    isolation) run_isolation ;;
    pgtap) run_pgtap ;;
    tap) run_tap ;;
    differential) run_differential ;;
    core) run_core ;;
    *) echo "unknown suite $s"; FAILED=$((FAILED + 1)) ;;
  esac
done

echo
if [ ${#FAILURES[@]} -gt 0 ]; then
  echo "failing suites: ${FAILURES[*]} (logs in $WORK)"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
