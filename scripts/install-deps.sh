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
# The PostgreSQL major version is PGMAJOR if set, else that of $PG_CONFIG
# (or pg_config on the PATH), else 15.
set -euo pipefail

list_only=0
if [ "${1:-}" = "--list" ]; then
  list_only=1
  shift
fi
PGMAJOR="${PGMAJOR:-$("${PG_CONFIG:-pg_config}" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p' || true)}"
PGMAJOR="${PGMAJOR:-15}"
what="${1:-test}"

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
