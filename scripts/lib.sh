# Shell helpers shared by the demo, the test runner and the benchmarks.
# Source it; it defines functions only.
#
# PostgreSQL refuses to run as root, so every server is started as the
# `postgres` OS user (created by Debian's postgresql-common) in a directory
# that user owns.

ch_pg_config() { echo "${PG_CONFIG:-pg_config}"; }
ch_bindir() { "$(ch_pg_config)" --bindir; }
ch_pgxs_dir() { dirname "$(dirname "$(dirname "$("$(ch_pg_config)" --pgxs)")")"; }

# Run a command as the postgres OS user (or directly if we are that user).
ch_as_pg() {
  if [ "$(id -un)" = postgres ]; then
    "$@"
  else
    runuser -u postgres -- "$@"
  fi
}

# A TCP port on 127.0.0.1 nobody listens on, starting from $1.
ch_free_port() {
  local p="${1:-55432}"
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
    p=$((p + 1))
  done
  echo "$p"
}

# ch_init_cluster DATADIR PORT [extra postgresql.conf lines...]
# A fresh cluster owned by postgres, trusting local and loopback clients
# (all of 127.0.0.0/8, so simulated Coder Servers on 127.0.0.x can connect),
# with coder_health preloaded unless CH_NO_PRELOAD=1.
ch_init_cluster() {
  local dir="$1" port="$2"
  shift 2
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir"
  install -d -o postgres -g postgres "$dir"
  ch_as_pg "$(ch_bindir)/initdb" -D "$dir" -A trust -U postgres -E UTF8 \
    --locale=C >/dev/null
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "max_connections = 200"
    echo "logging_collector = off"
    echo "log_line_prefix = '%m [%p] '"
    if [ "${CH_NO_PRELOAD:-0}" != 1 ]; then
      echo "shared_preload_libraries = 'coder_health'"
    fi
    local l
    for l in "$@"; do echo "$l"; done
  } >> "$dir/postgresql.conf"
  cat > "$dir/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.0/8 trust
host replication all 127.0.0.0/8 trust
local replication all trust
HBA
  chown postgres:postgres "$dir/postgresql.conf" "$dir/pg_hba.conf"
}

ch_start() {
  local dir="$1"
  ch_as_pg "$(ch_bindir)/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
}

ch_stop() {
  local dir="$1"
  if [ -f "$dir/postmaster.pid" ]; then
    ch_as_pg "$(ch_bindir)/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
}

# ch_psql DATADIR [psql args...]: psql as postgres over the cluster's socket.
ch_psql() {
  local dir="$1"
  shift
  local port
  port=$(sed -n "s/^port = \([0-9]*\)/\1/p" "$dir/postgresql.conf" | tail -1)
  "$(ch_bindir)/psql" -X -h "$dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"
}
