#!/bin/bash
# make test-matrix: build coder_health with -Werror and run the same suites as
# `make test` (regress, isolation, pgtap, tap, unit) against other PostgreSQL
# major versions, each inside its own Debian root:
#
#   PostgreSQL 13   Debian bullseye
#   PostgreSQL 17   Debian trixie
#   PostgreSQL 18   Debian sid
#
# (the native run of `make test` covers 15 on bookworm).  Each root is made
# once with `debootstrap --variant=minbase` from the Debian archive apt uses
# on this machine, gets that version's server, headers, compiler and pgTAP,
# and is cached under /var/cache/coder_health/<suite>-pg<NN>; it is reused
# while healthy and rebuilt when it is not.  /proc, /dev, /dev/pts and
# /dev/shm are mounted into the root only while it is in use, in a private
# mount namespace, and unmounted on every exit path.
#
#   test/matrix.sh              every version (13 17 18)
#   test/matrix.sh 13 18        some of them (15: a bookworm root, for a run
#                               that leaves the host's PostgreSQL alone)
#   CH_MATRIX_SUITES="regress tap" test/matrix.sh 17
#                               some suites only (default: all but lint
#                               and core, which is PostgreSQL 15's suite)
#   CH_TAP_TESTS="600 602" test/matrix.sh 13
#                               some TAP files only (also for test/run.sh)
#   CH_MATRIX_CACHE=/path       where the roots live
#   CH_MATRIX_MIRROR=URL        Debian mirror (default: the one apt uses here)
#
# Ends with one line per version and a total "N passed, N failed"; exits
# non-zero if anything failed.  Must run as root (debootstrap, chroot, mount).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CH_MATRIX_CACHE:-/var/cache/coder_health}"
SUITES="${CH_MATRIX_SUITES:-unit regress isolation pgtap tap differential}"
# where the tree is copied to, and scratch space, inside each root
BUILD_DIR=/build/coder_health
# logs of the last run of each version, outside the roots
LOGDIR="$CACHE/logs"

# PostgreSQL major version -> Debian suite that ships it.  15 (bookworm)
# is `make test`'s native version; its root is not part of the default
# matrix, but `test/matrix.sh 15` tests it without touching the host's
# PostgreSQL.
declare -A SUITE_OF=([13]=bullseye [15]=bookworm [17]=trixie [18]=sid)
ALL_VERSIONS=(13 17 18)

# Packages every root needs: the ones scripts/install-deps.sh installs for
# `make test` (one list for both), so that install-deps.sh, run again by
# test/run.sh inside, finds nothing missing and the run needs no network.
root_packages() {
  PGMAJOR="$1" bash "$ROOT/scripts/install-deps.sh" --list test
}

say() { printf '=== matrix: %s\n' "$*"; }
die() { printf 'matrix: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot and mount need it)"

# The Debian archive apt uses here: the first non-security URI of
# /etc/apt/sources.list.d/*.sources (deb822) or /etc/apt/sources.list.
debian_mirror() {
  if [ -n "${CH_MATRIX_MIRROR:-}" ]; then echo "$CH_MATRIX_MIRROR"; return; fi
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk '
      /^[[:space:]]*$/ { if (types ~ /(^| )deb( |$)/ && uri != "" && suites !~ /-security/) { print uri; exit } types = uri = suites = ""; next }
      /^Types:/ { types = $0; sub(/^Types:[[:space:]]*/, "", types) }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { suites = $0 }
      END { if (types ~ /(^| )deb( |$)/ && uri != "" && suites !~ /-security/) print uri }
    ' /etc/apt/sources.list.d/*.sources | head -1)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# ---------------------------------------------------------------------------
# Mounts.  Everything that touches a root's mounts runs in a private mount
# namespace (unshare --mount), so even a killed run leaves nothing mounted on
# the host; the trap unmounts explicitly as well, in reverse order.

MOUNTED=()
MOUNT_DIR=""

mount_root() {
  local dir="$1"
  MOUNT_DIR="$dir"
  mount -t proc proc "$dir/proc" && MOUNTED+=("$dir/proc") || return 1
  mount --bind /dev "$dir/dev" && MOUNTED+=("$dir/dev") || return 1
  mount --bind /dev/pts "$dir/dev/pts" && MOUNTED+=("$dir/dev/pts") || return 1
  # PostgreSQL's dynamic shared memory (posix) lives in /dev/shm: a private
  # tmpfs, so nothing of the root's servers ends up in the host's /dev/shm
  mount -t tmpfs -o mode=1777,size=512m shm "$dir/dev/shm" && MOUNTED+=("$dir/dev/shm") || return 1
}

# Processes whose root directory is $1: servers a test left behind.
processes_in_root() {
  local dir="$1" p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$r" = "$dir" ] && echo "${p#/proc/}"
  done
}

unmount_root() {
  local dir="${1:-$MOUNT_DIR}" pids i
  [ -n "$dir" ] || return 0
  # a test that failed midway may leave a server running; stop what runs in
  # this root (only processes we started live there)
  pids=$(processes_in_root "$dir")
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    # give them up to 10 s to go, polled
    for i in $(seq 1 100); do
      pids=$(processes_in_root "$dir")
      [ -z "$pids" ] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  fi
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}"
  done
  MOUNTED=()
  MOUNT_DIR=""
}

in_root() {
  local dir="$1"
  shift
  chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# ---------------------------------------------------------------------------
# Roots

# A root is usable when it was finished (marker), dpkg is consistent and
# the server answers.
root_usable() {
  local dir="$1" v="$2"
  [ -f "$dir/.coder_health_root" ] || return 1
  [ -x "$dir/usr/lib/postgresql/$v/bin/pg_config" ] || return 1
  in_root "$dir" dpkg --audit >/dev/null 2>&1 || return 1
  in_root "$dir" "/usr/lib/postgresql/$v/bin/postgres" --version >/dev/null 2>&1
}

# Packages of the list not installed in the root.
root_missing_packages() {
  local dir="$1" v="$2" p
  for p in $(root_packages "$v"); do
    in_root "$dir" dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
      grep -q "install ok installed" || echo "$p"
  done
}

isolation_tester_path() {
  echo "/usr/lib/postgresql/$1/lib/pgxs/src/test/isolation/pg_isolation_regress"
}

# Debian ships pg_isolation_regress and isolationtester only from
# PostgreSQL 14 on.  For older versions build the two from the Debian source
# package of the same version, against the installed headers and libraries
# (a few files; no configure), and put them where PGXS has them on 14+.
# Runs inside the root as: bash -c "$BUILD_ISOLATION" sh <major>
# shellcheck disable=SC2016
BUILD_ISOLATION='
set -eu
v="$1"
pgc="/usr/lib/postgresql/$v/bin/pg_config"
dest="$($pgc --pkglibdir)/pgxs/src/test/isolation"
work=$(mktemp -d)
cd "$work"
apt-get source --download-only -qq "postgresql-$v" 2>/dev/null
tar -xf postgresql-"$v"_*.orig.tar.* --wildcards "*/src/test/isolation/*" \
  "*/src/test/regress/pg_regress*"
src=$(echo postgresql-*/src)
# the paths pg_regress.c compiles in (src/port/Makefile generates this)
mkdir gen
for d in bindir sharedir sysconfdir includedir pkgincludedir \
         includedir-server libdir pkglibdir localedir docdir htmldir mandir; do
  name=$(echo "$d" | tr a-z- A-Z_ | sed "s/^BINDIR/PGBINDIR/; s/^SHAREDIR/PGSHAREDIR/; s/^INCLUDEDIR_SERVER/INCLUDEDIRSERVER/")
  echo "#define $name \"$($pgc --$d)\"" >> gen/pg_config_paths.h
done
inc="-Igen -I$($pgc --includedir-server) -I$($pgc --includedir)/internal -I$($pgc --includedir)"
inc="$inc -I$src/test/regress -I$src/test/isolation"
libs="-L$($pgc --pkglibdir) -L$($pgc --libdir) -lpgcommon -lpgport -lpq -lm"
gcc -O2 $inc -o isolationtester "$src/test/isolation/isolationtester.c" \
  "$src/test/isolation/specparse.c" $libs
gcc -O2 $inc -DHOST_TUPLE="\"$(gcc -dumpmachine)\"" -DSHELLPROG="\"/bin/sh\"" \
  -DDLSUFFIX="\".so\"" -o pg_isolation_regress \
  "$src/test/isolation/isolation_main.c" "$src/test/regress/pg_regress.c" $libs
mkdir -p "$dest"
install -m 755 isolationtester pg_isolation_regress "$dest/"
cd /
rm -rf "$work"
"$dest/pg_isolation_regress" --version
'

# Whether nothing is missing from a usable root.
root_complete() {
  local dir="$1" v="$2"
  [ -z "$(root_missing_packages "$dir" "$v")" ] &&
    [ -x "$dir$(isolation_tester_path "$v")" ]
}

# Install what is missing: packages, then the isolation tester (mounts in
# place, apt sources set).
complete_root() {
  local dir="$1" v="$2" suite="$3" mirror="$4" missing src_list
  missing=$(root_missing_packages "$dir" "$v" | tr '\n' ' ')
  if [ -n "$missing" ]; then
    say "PostgreSQL $v: installing $missing"
    in_root "$dir" apt-get -qq update || return 1
    # shellcheck disable=SC2086
    in_root "$dir" apt-get install -y -qq $missing >/dev/null || return 1
  fi
  if [ ! -x "$dir$(isolation_tester_path "$v")" ]; then
    say "PostgreSQL $v: building the isolation tester from Debian's source package"
    src_list="$dir/etc/apt/sources.list.d/coder_health-src.list"
    echo "deb-src $mirror $suite main" > "$src_list"
    if ! in_root "$dir" apt-get -qq update ||
       ! in_root "$dir" apt-get install -y -qq bzip2 xz-utils >/dev/null ||
       ! in_root "$dir" bash -c "$BUILD_ISOLATION" sh "$v"; then
      rm -f "$src_list"
      return 1
    fi
    rm -f "$src_list"
    in_root "$dir" apt-get -qq update
  fi
  in_root "$dir" apt-get clean
}

# Set up a bootstrapped root and install everything (mounts in place).
provision_root() {
  local dir="$1" v="$2" suite="$3" mirror="$4" avail
  # no daemons started by package scripts, no "main" cluster on 5432
  printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
  chmod 755 "$dir/usr/sbin/policy-rc.d"
  mkdir -p "$dir/etc/postgresql-common"
  echo "create_main_cluster = false" > "$dir/etc/postgresql-common/createcluster.conf"
  echo "deb $mirror $suite main" > "$dir/etc/apt/sources.list"
  # small roots: no documentation, no recommends
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
    > "$dir/etc/dpkg/dpkg.cfg.d/01_nodoc"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > "$dir/etc/apt/apt.conf.d/01norecommends"
  # sid's Release file is valid for a week only; an archive mirror that is
  # a snapshot (as here) serves it past that date.  Signatures are still
  # checked, only the expiry is not.
  echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/01snapshot"
  cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true

  in_root "$dir" apt-get -qq update || return 1
  # which PostgreSQL servers this suite ships (the version mapping above
  # must hold)
  avail=$(in_root "$dir" apt-cache pkgnames postgresql- 2>/dev/null |
    grep -E '^postgresql-[0-9]+$' | sort -V | tr '\n' ' ')
  say "Debian $suite ships: ${avail:-none}"
  case " $avail " in
    *" postgresql-$v "*) ;;
    *) echo "matrix: Debian $suite has no postgresql-$v" >&2; return 1 ;;
  esac
  complete_root "$dir" "$v" "$suite" "$mirror"
}

# Make sure $CACHE/<suite>-pg<v> is a healthy root; set ROOT_DIR to it.
ROOT_DIR=""
ensure_root() {
  local v="$1" suite="${SUITE_OF[$1]}" dir="$CACHE/${SUITE_OF[$1]}-pg$1"
  local mirror tmp
  ROOT_DIR="$dir"
  mirror=$(debian_mirror)
  if root_usable "$dir" "$v"; then
    if root_complete "$dir" "$v"; then
      say "PostgreSQL $v: reusing $dir" >&2
      return 0
    fi
    # the package list grew since the root was made: add what is missing
    mount_root "$dir" || { unmount_root "$dir"; return 1; }
    if complete_root "$dir" "$v" "$suite" "$mirror" >&2; then
      unmount_root "$dir"
      return 0
    fi
    unmount_root "$dir"
    say "PostgreSQL $v: cannot repair $dir, making it again" >&2
  fi
  tmp="$dir.new"
  say "PostgreSQL $v: creating $dir (debootstrap $suite from $mirror)" >&2
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$LOGDIR/debootstrap-$suite.log" 2>&1; then
    tail -20 "$LOGDIR/debootstrap-$suite.log" >&2
    echo "matrix: debootstrap of $suite failed (log: $LOGDIR/debootstrap-$suite.log)" >&2
    return 1
  fi
  mount_root "$tmp" || { unmount_root "$tmp"; return 1; }
  if ! provision_root "$tmp" "$v" "$suite" "$mirror" >&2; then
    unmount_root "$tmp"
    echo "matrix: installing PostgreSQL $v into $tmp failed" >&2
    return 1
  fi
  unmount_root "$tmp"
  touch "$tmp/.coder_health_root"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

# ---------------------------------------------------------------------------
# One version: copy the tree in, build with -Werror and run the suites as
# test/run.sh does natively (it detects the version through PG_CONFIG).

run_version() {
  local v="$1" dir log
  log="$LOGDIR/pg$v.log"
  ensure_root "$v" || return 1
  dir="$ROOT_DIR"
  # the tree as it is now: tracked and untracked files, not build products
  # (without git: everything but .git; test/run.sh starts with make clean)
  rm -rf "${dir:?}$BUILD_DIR"
  mkdir -p "$dir$BUILD_DIR"
  if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
       xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
       tar --null -T - -cf -) | tar -C "$dir$BUILD_DIR" -xf - || return 1
  else
    tar -C "$ROOT" --exclude=.git -cf - . | tar -C "$dir$BUILD_DIR" -xf - || return 1
  fi

  mount_root "$dir" || { unmount_root "$dir"; return 1; }
  # shellcheck disable=SC2086
  # the 2-minute soak runs in the native make test (and 10 minutes in make
  # soak); three more would double the matrix's time
  in_root "$dir" env PG_CONFIG="/usr/lib/postgresql/$v/bin/pg_config" \
    CH_TEST_WORK=/tmp/coder_health_test CH_SKIP_SOAK=1 CH_TAP_TESTS="${CH_TAP_TESTS:-}" \
    bash "$BUILD_DIR/test/run.sh" $SUITES 2>&1 | tee "$log"
  unmount_root "$dir"
  return 0
}

# ---------------------------------------------------------------------------

if [ "${1:-}" = "--in-namespace" ]; then
  shift
  trap 'unmount_root' EXIT
  trap 'exit 130' INT TERM
  v="$1"
  run_version "$v"
  exit $?
fi

VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=("${ALL_VERSIONS[@]}")
for v in "${VERSIONS[@]}"; do
  [ -n "${SUITE_OF[$v]:-}" ] || die "no Debian root defined for PostgreSQL $v (have: ${!SUITE_OF[*]})"
done
command -v debootstrap >/dev/null ||
  { say "installing debootstrap"; apt-get install -y -qq debootstrap >/dev/null; } ||
  die "cannot install debootstrap"
command -v unshare >/dev/null || die "unshare (util-linux) is missing"
mkdir -p "$CACHE" "$LOGDIR"
CACHE="$(realpath "$CACHE")"
LOGDIR="$CACHE/logs"
export CH_MATRIX_CACHE="$CACHE"

PASSED=0
FAILED=0
SUMMARY=()
start_all=$(date +%s)
for v in "${VERSIONS[@]}"; do
  suite="${SUITE_OF[$v]}"
  log="$LOGDIR/pg$v.log"
  rm -f "$log"
  say "PostgreSQL $v (Debian $suite)"
  t0=$(date +%s)
  # one root at a time may be built or used: a lock per root
  flock "$CACHE/.lock-$suite-pg$v" \
    unshare --mount --propagation private bash "${BASH_SOURCE[0]}" --in-namespace "$v"
  rc=$?
  secs=$(($(date +%s) - t0))
  line=$( [ -f "$log" ] && grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  if [ -z "$line" ]; then
    # the root could not be made or the run broke off: one failure
    line="0 passed, 1 failed"
    [ "$rc" -ne 0 ] && line="$line (root or run broke off, rc $rc)"
  fi
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  f=$(echo "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  SUMMARY+=("$(printf 'PostgreSQL %-3s (%-8s): %s  [%ds]' "$v" "$suite" "$line" "$secs")")
done

echo
say "summary ($(( $(date +%s) - start_all ))s, logs in $LOGDIR)"
for l in "${SUMMARY[@]}"; do echo "$l"; done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
