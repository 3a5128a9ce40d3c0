#!/bin/bash
# clang-tidy on src/*.c and src/*/*.c with the server's include path and the
# checked-in .clang-tidy (bug-finding checks; warnings are errors).  Prints the
# diagnostics and exits non-zero if there are any.  test/run.sh's lint suite
# calls it; run it alone with: PG_CONFIG=... bash test/lint.sh
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_CONFIG="${PG_CONFIG:-pg_config}"
TIDY="$(command -v clang-tidy-14 || command -v clang-tidy || true)"
if [ -z "$TIDY" ]; then
  echo "lint.sh: clang-tidy not found (apt-get install clang-tidy)"
  exit 1
fi
INC="$("$PG_CONFIG" --includedir-server)"
version="$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/coder_health.control")"
cd "$ROOT" || exit 1
rc=0
out="$("$TIDY" --quiet src/*.c src/*/*.c -- -I src -I "$INC" \
  -DCODER_HEALTH_VERSION="\"$version\"" 2>&1)" || rc=$?
# clang-tidy prints "N warnings generated" for suppressed system-header noise
echo "$out" | grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing' || true
# Declarations newer compilers insist on (gcc 14 on PostgreSQL 18's root
# turns -Wmissing-variable-declarations into an error under -Werror; this
# host's gcc 12 does not know it): clang checks every file for them here.
CLANG="$(command -v clang || true)"
if [ -n "$CLANG" ]; then
  for f in src/*.c src/*/*.c; do
    decl="$("$CLANG" -fsyntax-only -Wno-ignored-attributes -Wno-unknown-warning-option \
      -Wmissing-variable-declarations -Wmissing-prototypes -Werror -I src -I "$INC" \
      -DCODER_HEALTH_VERSION="\"$version\"" "$f" 2>&1)" || { echo "$decl"; rc=1; }
  done
fi
if [ "$rc" -eq 0 ] && ! echo "$out" | grep -qE '(warning|error):'; then
  echo "clang-tidy: $(ls src/*.c src/*/*.c | wc -l) files clean"
  exit 0
fi
echo "clang-tidy: diagnostics above"
exit 1
