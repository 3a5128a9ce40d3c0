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
    OUT peak_connections_15min integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_client_hosts'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.client_hosts_internal() IS
  'Client backends grouped by client host (raw); use the view coder_health.coder_servers';

CREATE FUNCTION coder_health.client_backends_internal(
    OUT pid integer, OUT client_addr text, OUT rtt_ms float8,
    OUT rttvar_ms float8, OUT rtt_measured_at timestamptz,
    OUT listening boolean, OUT waiting_on_lock boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_client_backends'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW coder_health.client_backends AS
SELECT b.pid, b.client_addr, b.rtt_ms, b.rttvar_ms, b.rtt_measured_at,
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
-- (src/coder_replicas.c): the table is read with a heap scan, so no view,
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

CREATE VIEW coder_health.coder_servers AS
WITH hosts AS MATERIALIZED (
    SELECT * FROM coder_health.client_hosts_internal()
), replica_rows AS MATERIALIZED (
    SELECT * FROM coder_health.coder_replicas()
), replicas AS (
    SELECT * FROM replica_rows WHERE replica_id IS NOT NULL AND NOT stopped
), source AS (
    SELECT coalesce(pg_catalog.bool_or(source_ok), false) AS replicas_known
    FROM replica_rows
), latency AS (
    -- a host's worst database: percentiles of two databases do not merge
    SELECT l.client_addr, pg_catalog.max(l.p99_ms) AS p99_ms
    FROM coder_health.latency l
    WHERE l.scope = 'client' AND l."window" = '5 min'
    GROUP BY l.client_addr
), matched AS (
    SELECT h.*, r.replica_id, r.hostname, r.region_id, r.version,
           r.heartbeat_age_s, r.replica_db_latency_ms
    FROM hosts h
    LEFT JOIN LATERAL (
        -- the freshest replica whose relay address is this host
        SELECT * FROM replicas r
        WHERE r.relay_host = h.client_addr
           OR r.relay_host = pg_catalog.lower(h.client_hostname)
        ORDER BY r.heartbeat_age_s
        LIMIT 1
    ) r ON true
    UNION ALL
    -- replicas with no client host at all: a Coder Server not connected
    SELECT r.relay_host, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL,
           0, 0,
           r.replica_id, r.hostname, r.region_id, r.version,
           r.heartbeat_age_s, r.replica_db_latency_ms
    FROM replicas r
    WHERE NOT EXISTS (SELECT 1 FROM hosts h
                      WHERE r.relay_host = h.client_addr
                         OR r.relay_host = pg_catalog.lower(h.client_hostname))
), limits AS (
    SELECT s.setting::float8 AS max_rtt_ms
    FROM pg_catalog.pg_settings s WHERE s.name = 'coder_health.max_rtt_ms'
), pubsub AS (
    -- Coder on PostgreSQL pubsub keeps one LISTEN connection per Coder
    -- Server; on NATS (its default since September 2026) none at all.
    -- Coder Servers: hosts matched to a replica (all TCP hosts when the
    -- replicas table is unknown), not the host of this very session.
    SELECT coalesce((SELECT pg_catalog.bool_or(m.listening > 0)
                     FROM matched m CROSS JOIN source src
                     WHERE m.client_addr <> 'local'
                       AND (NOT src.replicas_known OR m.replica_id IS NOT NULL)),
                    false) AS any_listening,
           coalesce(pg_catalog.host(pg_catalog.inet_client_addr()), 'local') AS own_host
)
SELECT coalesce(m.hostname, m.client_hostname, m.client_addr) AS coder_server,
       m.client_addr,
       m.replica_id,
       m.region_id,
       m.version,
       round(m.heartbeat_age_s::numeric, 1) AS heartbeat_age_s,
       m.replica_db_latency_ms,
       m.connections,
       m.active,
       m.idle,
       m.idle_in_transaction,
       m.idle_in_transaction_aborted,
       m.waiting_on_lock,
       m.listening,
       round(m.oldest_xact_s::numeric, 3) AS oldest_xact_s,
       round(m.longest_statement_s::numeric, 3) AS longest_statement_s,
       round(m.rtt_ms::numeric, 3) AS rtt_ms,
       round(m.rtt_max_ms::numeric, 3) AS rtt_max_ms,
       m.peak_connections_15min,
       lat.p99_ms,
       coalesce(m.rtt_ms > lim.max_rtt_ms, false) AS far,
       coalesce(m.heartbeat_age_s > 15, false) AS stale,
       (m.replica_id IS NOT NULL AND m.connections = 0
        AND coalesce(m.heartbeat_age_s <= 15, false)) AS missing,
       CASE WHEN NOT src.replicas_known THEN NULL
            ELSE m.replica_id IS NULL AND m.connections > 0
                 AND m.client_addr <> 'local'
       END AS unknown,
       -- lost its LISTEN connection while other Coder Servers hold theirs
       (ps.any_listening AND m.connections > 0 AND m.client_addr <> 'local'
        AND m.client_addr <> ps.own_host AND coalesce(m.listening, 0) = 0
        AND (NOT src.replicas_known OR m.replica_id IS NOT NULL)) AS listen_lost
FROM matched m
CROSS JOIN source src
CROSS JOIN limits lim
CROSS JOIN pubsub ps
LEFT JOIN latency lat ON lat.client_addr = m.client_addr
ORDER BY 1, 2;

COMMENT ON VIEW coder_health.coder_servers IS
  'One row per client host (Coder Server): connections by state, lock waits, LISTEN, kernel RTT, 15-minute peak, p99, matched to Coder''s replicas table; flags far, stale, missing, unknown, listen_lost (no LISTEN connection while other Coder Servers hold one)';

CREATE VIEW coder_health.connections AS
WITH types AS (
    SELECT * FROM coder_health.backend_counts_internal()
), servers AS (
    -- known Coder Servers: live replicas and hosts with connections
    SELECT s.connections FROM coder_health.coder_servers s
    WHERE s.client_addr IS DISTINCT FROM 'local'
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
