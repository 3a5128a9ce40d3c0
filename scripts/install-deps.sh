#!/bin/bash
# Install the Debian packages coder_health needs to build, test and demo,
# only those that are missing.  Runs as root on Debian (bookworm: PostgreSQL
# 15); does nothing when everything is present.
#
#   scripts/install-deps.sh [build|test|demo|bench]
#   scripts/install-deps.sh --list [build|test|demo|bench]
#                       print the package names only (test/matrix.sh puts
#                       them into its Debian roots; PGMAJOR=NN picks the
#                       version)
#
#   scripts/install-deps.sh --pg-source DIR
#                       PostgreSQL's source for the core suite
#                       (test/core_regress.sh): enables deb-src for the
#                       archives apt uses, then downloads the newest
#                       postgresql-NN source package the mirror serves and
#                       extracts src/test/regress and contrib/spi into DIR
#
# The PostgreSQL major version is PGMAJOR if set, else that of $PG_CONFIG
# (or pg_config on the PATH), else 15.
set -euo pipefail

pg_source=""
if [ "${1:-}" = "--pg-source" ]; then
  pg_source="${2:?--pg-source needs a directory}"
  shift 2
fi
list_only=0
if [ "${1:-}" = "--list" ]; then
  list_only=1
  shift
fi
PGMAJOR="${PGMAJOR:-$("${PG_CONFIG:-pg_config}" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p' || true)}"
PGMAJOR="${PGMAJOR:-15}"
what="${1:-test}"

if [ -n "$pg_source" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "coder_health: --pg-source must run as root" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  # deb-src lines for the archives of the deb lines (deb822 or one-line)
  src_list=/etc/apt/sources.list.d/coder_health-src.sources
  if ! apt-cache showsrc "postgresql-$PGMAJOR" 2>/dev/null | grep -q '^Version:'; then
    if [ ! -e "$src_list" ] && compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
      for f in /etc/apt/sources.list.d/*.sources; do
        [ "$f" = "$src_list" ] && continue
        grep -q 'deb.debian.org\|debian' "$f" || continue
        awk 'BEGIN { RS = ""; ORS = "\n\n" } /Types:[^\n]*deb/ { sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f"
      done > "$src_list"
    fi
    if [ -f /etc/apt/sources.list ] && ! grep -q '^deb-src' /etc/apt/sources.list; then
      sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/coder_health-src.list
    fi
    apt-get update -qq
  fi
  command -v dpkg-source >/dev/null || apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
  mkdir -p "$pg_source"
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  got=""
  # newest first: a snapshot mirror may list a version whose files it lacks
  for v in $(apt-cache showsrc "postgresql-$PGMAJOR" | sed -n 's/^Version: //p' | sort -rV); do
    if (cd "$tmp" && apt-get source --download-only -qq "postgresql-$PGMAJOR=$v" >/dev/null 2>&1); then
      got="$v"
      break
    fi
    rm -f "$tmp"/*
  done
  if [ -z "$got" ]; then
    echo "coder_health: no postgresql-$PGMAJOR source package could be downloaded" >&2
    rm -rf "$tmp"
    exit 1
  fi
  tar -C "$pg_source" -xf "$tmp"/postgresql-"$PGMAJOR"_*.orig.tar.* --wildcards \
    '*/src/test/regress/*' '*/contrib/spi/*'
  rm -rf "$tmp"
  echo "coder_health: PostgreSQL source $got (src/test/regress, contrib/spi) in $pg_source"
  exit 0
fi

pkgs=(make gcc libc6-dev "postgresql-$PGMAJOR" "postgresql-server-dev-$PGMAJOR"
      "postgresql-client-$PGMAJOR" libpq-dev
      # libpq-be.h (the client socket of a backend) includes gssapi.h
      libkrb5-dev)
# ... and before 14 also openssl/ssl.h
if [ "$PGMAJOR" -lt 14 ]; then pkgs+=(libssl-dev); fi
case "$what" in
  test|bench)
    pkgs+=("postgresql-$PGMAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl
           libipc-run-perl perl valgrind iproute2 iputils-ping util-linux cppcheck curl
           prometheus-postgres-exporter prometheus
           # scripts/sql_exporter_collector.py (test/tap/520_sql_exporter.pl)
           python3 python3-yaml)
    ;;
esac
case "$what" in
  bench) pkgs+=("postgresql-contrib") ;;
esac

if [ "$list_only" -eq 1 ]; then
  echo "${pkgs[*]}"
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "coder_health: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi

echo "coder_health: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The postgresql-common package would create and start a "main" cluster on
# port 5432; we never use it, so tell it not to.
mkdir -p /etc/postgresql-common
if [ ! -e /etc/postgresql-common/createcluster.conf ] || \
   ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
  echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
fi
# Packages such as prometheus would start their daemons where an init system
# runs; the tests start their own, on loopback, so keep Debian's from starting.
policy_rc=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy_rc" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy_rc"
  chmod +x "$policy_rc"
  own_policy=1
fi
rc=0
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
if [ "$own_policy" = 1 ]; then rm -f "$policy_rc"; fi
exit "$rc"
