-- ---------------------------------------------------------------------------
-- Connections and network round-trip per Coder Server
-- ---------------------------------------------------------------------------

CREATE FUNCTION coder_health.client_hosts_internal(
    OUT client_addr text, OUT client_hostname text,
    OUT connections integer, OUT active integer, OUT idle integer,
    OUT idle_in_transaction integer, OUT idle_in_transaction_aborted integer,
    OUT waiting_on_lock integer, OUT listening integer,
    OUT oldest_xact_s float8, OUT longest_statement_s float8,
    OUT rtt_ms float8, OUT rtt_max_ms float8, OUT rtt_connections integer,
    OUT peak_connections_15min integer, OUT sqlc_named_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_client_hosts'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.client_hosts_internal() IS
  'Client backends grouped by client host (raw; sqlc_named_at: when a backend of the host last ran a statement with a sqlc name); use the view coder_health.coder_servers';

CREATE FUNCTION coder_health.client_backends_internal(
    OUT pid integer, OUT client_addr text, OUT rtt_ms float8,
    OUT rttvar_ms float8, OUT rtt_measured_at timestamptz,
    OUT listening boolean, OUT waiting_on_lock boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_client_backends'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW coder_health.client_backends AS
SELECT b.pid, b.client_addr, round(b.rtt_ms::numeric, 3) AS rtt_ms,
       round(b.rttvar_ms::numeric, 3) AS rttvar_ms, b.rtt_measured_at,
       b.listening, b.waiting_on_lock
FROM coder_health.client_backends_internal() b;

COMMENT ON VIEW coder_health.client_backends IS
  'Each client backend''s kernel-measured round-trip time (TCP_INFO smoothed RTT and variance; NULL for unix sockets), LISTEN state and lock wait';

CREATE FUNCTION coder_health.backend_counts_internal(
    OUT backend_type text, OUT count integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_backend_counts'
LANGUAGE C STRICT VOLATILE;

-- Coder's own record of its replicas (public.replicas), when it is a plain
-- table of the expected shape that this role may read.  Written in C
-- (src/clients/coder_replicas.c): the table is read with a heap scan, so no view,
-- function, operator or row-level security policy planted there ever runs
-- with the reader's rights.  Never raises: anything unexpected gives no
-- rows.  The last row, with replica_id NULL and source_ok true, says the
-- table was read; without it nothing is known.
CREATE FUNCTION coder_health.coder_replicas(
    OUT replica_id text, OUT hostname text, OUT relay_host text,
    OUT region_id integer, OUT version text, OUT heartbeat_age_s float8,
    OUT replica_db_latency_ms float8, OUT stopped boolean,
    OUT source_ok boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_coder_replicas'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.coder_replicas() IS
  'Coder''s replicas table (public.replicas) as coder_health reads it; no rows when it is absent, of another shape or unreadable';

-- A client host is a Coder Server when Coder's replicas table names it
-- (relay address) or its statements carry sqlc names ("-- name: X :one",
-- as every statement Coder sends); other clients (psql, an exporter, a
-- seeding script) are kind 'other', unix-socket clients 'local': they are
-- listed apart and never flagged.  Replicas that stopped (stopped_at set)
-- are listed as stopped when no live replica of that hostname exists, and
-- so are replicas whose heartbeat is stale with nothing connected.
CREATE VIEW coder_health.coder_servers AS
WITH hosts AS MATERIALIZED (
    SELECT * FROM coder_health.client_hosts_internal()
), replica_rows AS MATERIALIZED (
    SELECT * FROM coder_health.coder_replicas()
), replicas AS (
    SELECT * FROM replica_rows WHERE replica_id IS NOT NULL AND NOT stopped
), stopped AS (
    SELECT * FROM replica_rows r
    WHERE r.replica_id IS NOT NULL AND r.stopped
      AND NOT EXISTS (SELECT 1 FROM replicas l WHERE l.hostname = r.hostname)
), source AS (
    SELECT coalesce(pg_catalog.bool_or(source_ok), false) AS replicas_known
    FROM replica_rows
), latency AS (
    -- a host's worst database: percentiles of two databases do not merge
    SELECT l.client_addr, pg_catalog.max(l.p99_ms) AS p99_ms
    FROM coder_health.latency l
    WHERE l.scope = 'client' AND l.period = '5-6 min'
    GROUP BY l.client_addr
), matched AS (
    SELECT h.client_addr, h.client_hostname, h.connections, h.active, h.idle,
           h.idle_in_transaction, h.idle_in_transaction_aborted,
           h.waiting_on_lock, h.listening, h.oldest_xact_s,
           h.longest_statement_s, h.rtt_ms, h.rtt_max_ms, h.rtt_connections,
           h.peak_connections_15min, h.sqlc_named_at,
           r.replica_id, r.hostname, r.region_id, r.version,
           r.heartbeat_age_s, r.replica_db_latency_ms, coalesce(r.stopped, false) AS stopped
    FROM hosts h
    LEFT JOIN LATERAL (
        -- the freshest replica whose relay address is this host (a live
        -- one before a stopped one)
        SELECT * FROM (SELECT * FROM replicas UNION ALL SELECT * FROM stopped) r
        WHERE r.relay_host = h.client_addr
           OR r.relay_host = pg_catalog.lower(h.client_hostname)
        ORDER BY r.stopped, r.heartbeat_age_s
        LIMIT 1
    ) r ON true
    UNION ALL
    -- replicas with no client host at all: a Coder Server not connected
    -- (missing when its heartbeat is fresh), or one that stopped
    SELECT r.relay_host, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL,
           0, 0, NULL,
           r.replica_id, r.hostname, r.region_id, r.version,
           r.heartbeat_age_s, r.replica_db_latency_ms, r.stopped
    FROM (SELECT * FROM replicas UNION ALL SELECT * FROM stopped) r
    WHERE NOT EXISTS (SELECT 1 FROM hosts h
                      WHERE r.relay_host = h.client_addr
                         OR r.relay_host = pg_catalog.lower(h.client_hostname))
), kinds AS (
    SELECT m.*,
           CASE WHEN m.replica_id IS NOT NULL OR m.sqlc_named_at IS NOT NULL THEN 'coder_server'
                WHEN m.client_addr = 'local' THEN 'local'
                ELSE 'other' END AS kind
    FROM matched m
), limits AS (
    SELECT s.setting::float8 AS max_rtt_ms
    FROM pg_catalog.pg_settings s WHERE s.name = 'coder_health.max_rtt_ms'
), pubsub AS (
    -- Coder on PostgreSQL pubsub keeps one LISTEN connection per Coder
    -- Server; on NATS (its default since September 2026) none at all.
    SELECT coalesce((SELECT pg_catalog.bool_or(k.listening > 0)
                     FROM kinds k WHERE k.kind = 'coder_server'),
                    false) AS any_listening
)
SELECT coalesce(k.hostname, k.client_hostname, k.client_addr) AS coder_server,
       k.kind,
       k.client_addr,
       k.replica_id,
       k.region_id,
       k.version,
       round(k.heartbeat_age_s::numeric, 1) AS heartbeat_age_s,
       k.replica_db_latency_ms,
       k.connections,
       k.active,
       k.idle,
       k.idle_in_transaction,
       k.idle_in_transaction_aborted,
       k.waiting_on_lock,
       k.listening,
       round(k.oldest_xact_s::numeric, 3) AS oldest_xact_s,
       round(k.longest_statement_s::numeric, 3) AS longest_statement_s,
       round(k.rtt_ms::numeric, 3) AS rtt_ms,
       round(k.rtt_max_ms::numeric, 3) AS rtt_max_ms,
       k.peak_connections_15min,
       round(lat.p99_ms::numeric, 3) AS p99_ms,
       -- flags: Coder Servers only
       k.kind = 'coder_server' AND coalesce(k.rtt_ms > lim.max_rtt_ms, false) AS far,
       -- stopped: Coder set stopped_at, or the heartbeat is stale and
       -- nothing is connected (a Coder Server that went away: Coder itself
       -- ignores replicas with a stale heartbeat); stale: a stale heartbeat
       -- from a Coder Server still connected
       k.stopped OR (k.replica_id IS NOT NULL AND k.connections = 0
                     AND coalesce(k.heartbeat_age_s > 15, false)) AS stopped,
       NOT k.stopped AND k.connections > 0 AND coalesce(k.heartbeat_age_s > 15, false) AS stale,
       (k.replica_id IS NOT NULL AND NOT k.stopped AND k.connections = 0
        AND coalesce(k.heartbeat_age_s <= 15, false)) AS missing,
       -- sends Coder's statements but is in no replicas row
       CASE WHEN NOT src.replicas_known THEN NULL
            ELSE k.kind = 'coder_server' AND k.replica_id IS NULL AND k.connections > 0
       END AS unknown,
       -- lost its LISTEN connection while other Coder Servers hold theirs
       (ps.any_listening AND k.kind = 'coder_server' AND NOT k.stopped
        AND k.connections > 0 AND coalesce(k.listening, 0) = 0) AS listen_lost
FROM kinds k
CROSS JOIN source src
CROSS JOIN limits lim
CROSS JOIN pubsub ps
LEFT JOIN latency lat ON lat.client_addr = k.client_addr
ORDER BY k.kind = 'coder_server' DESC, k.kind, 1, 3;

COMMENT ON VIEW coder_health.coder_servers IS
  'One row per client host: kind coder_server (named in Coder''s replicas table, or sending sqlc-named statements), other or local (never flagged); connections by state, lock waits, LISTEN, kernel RTT, 15-minute peak, p99, Coder''s replica row; flags far, stopped, stale, missing, unknown, listen_lost (no LISTEN connection while other Coder Servers hold one)';

CREATE VIEW coder_health.connections AS
WITH types AS (
    SELECT * FROM coder_health.backend_counts_internal()
), servers AS (
    -- known Coder Servers: live replicas and connected Coder Servers
    SELECT s.connections FROM coder_health.coder_servers s
    WHERE s.kind = 'coder_server' AND NOT s.stopped
      AND ((s.replica_id IS NOT NULL AND NOT s.stale) OR s.connections > 0)
), settings AS (
    SELECT pg_catalog.current_setting('max_connections')::integer AS max_connections,
           pg_catalog.current_setting('superuser_reserved_connections')::integer AS superuser_reserved,
           coalesce(pg_catalog.current_setting('reserved_connections', true)::integer, 0) AS role_reserved,
           pg_catalog.current_setting('max_wal_senders')::integer AS max_wal_senders,
           (SELECT s.setting::integer FROM pg_catalog.pg_settings s
            WHERE s.name = 'coder_health.coder_pool_size') AS pool_size
), used AS (
    SELECT coalesce(pg_catalog.sum(t.count) FILTER (WHERE t.backend_type = 'client backend'), 0)::integer AS client_backends,
           coalesce(pg_catalog.sum(t.count) FILTER (WHERE t.backend_type = 'walsender'), 0)::integer AS walsenders,
           coalesce(pg_catalog.jsonb_object_agg(t.backend_type, t.count), '{}'::jsonb) AS by_type
    FROM types t
)
SELECT st.max_connections,
       st.superuser_reserved AS superuser_reserved_connections,
       st.role_reserved AS reserved_connections,
       st.max_wal_senders,
       u.client_backends,
       u.walsenders,
       u.by_type AS in_use_by_type,
       st.max_connections - st.superuser_reserved - st.role_reserved
           - u.client_backends AS headroom,
       (SELECT pg_catalog.count(*) FROM servers)::integer AS coder_servers,
       st.pool_size AS coder_pool_size,
       st.max_connections - st.superuser_reserved - st.role_reserved
           - u.client_backends
           - (SELECT coalesce(pg_catalog.sum(greatest(st.pool_size - s.connections, 0)), 0)
              FROM servers s)::integer AS headroom_at_full_pools
FROM settings st CROSS JOIN used u;

COMMENT ON VIEW coder_health.connections IS
  'max_connections, reserved slots, connections in use by backend type, headroom now and if every known Coder Server filled its pool (coder_health.coder_pool_size)';

GRANT EXECUTE ON FUNCTION
    coder_health.client_hosts_internal(),
    coder_health.client_backends_internal(),
    coder_health.backend_counts_internal(),
    coder_health.coder_replicas()
  TO pg_monitor;
GRANT SELECT ON coder_health.coder_servers, coder_health.client_backends,
    coder_health.connections
  TO pg_monitor;
