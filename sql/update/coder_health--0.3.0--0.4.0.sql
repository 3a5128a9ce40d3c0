-- coder_health 0.3.0 -> 0.4.0 (ALTER EXTENSION coder_health UPDATE)
--
-- Brings a 0.3.0 installation to the objects of a fresh 0.4.0 one
-- (sql/install/*.sql; test/tap/603_upgrade.pl compares the two, and checks
-- that this script creates each object once).  First what 0.3.0 had that
-- cannot be replaced in place is dropped; then each new or changed object is
-- created once, in its final form, as in sql/install and in its order, with
-- its comment and privileges (pg_monitor's; PUBLIC's EXECUTE on each
-- function created here is revoked, as by sql/install/99_public.sql).  When
-- an object changes again, change its one definition here; do not append a
-- second one.
--
-- What changed, and why:
--  #18  Notifications are counted from PostgreSQL's NOTIFY queue (each
--       committing backend reads its own entries back), so the planner no
--       longer swaps pg_notify for a wrapper: the wrapper and its schema
--       coder_health_notify go.  The C symbol stays in the library, raising
--       an error with a hint, so a 0.3.0 installation that has not been
--       updated still loads.  Which pubsub Coder uses: notify_queue.pubsub
--       (postgres or nats), coder_servers.listen_lost (a Coder Server with
--       no LISTEN connection while the others hold one), and the health
--       check coder_server_listen (no LISTEN under NATS is no fault).
--  #19  Reading coder_health never runs another role's code: coder_replicas()
--       reads Coder's replicas table with a heap scan (no view, function,
--       operator or policy of another role runs as the reader), and
--       statement_texts() calls pg_stat_statements by the OID of the
--       extension's own function.  Both are now C functions.
--  #20  The kernel's TCP round trip between the primary and each standby:
--       replication.rtt_ms, rtt_recent_ms, rtt_max_ms, far; the view
--       sync_commit; the health check replication_rtt; the history metric
--       replication_rtt_ms.
--  #21  What a DBA sees:
--        * every statement has a text a person can read, kept by
--          coder_health itself (constants as '?'), with or without
--          pg_stat_statements (statement_latency.query);
--        * column names that need no quoting: health.check (a reserved
--          word) is check_name, latency's window is period, named for what
--          it covers (1-2 min, 5-6 min, 15-16 min); settings has
--          pg_settings' column names, *_bytes settings in bytes (unit B);
--        * coder_servers.kind: a client host is a Coder Server when Coder's
--          replicas table names it or its statements carry sqlc names
--          (client_hosts_internal.sqlc_named_at); others are listed apart
--          and never flagged; stopped replicas are listed as stopped;
--        * health: statement_p99 and error_rate judge only with at least
--          coder_health.health_min_statements statements;
--        * one unit per quantity: NOTIFY queue usage in percent everywhere
--          (notify_queue.usage_pct, the health check, the history metric
--          notify_queue_usage_pct); notify_queue.unread_pages;
--        * milliseconds as numeric to the microsecond in every view, seconds
--          to the millisecond, health.value at a fixed precision per unit;
--        * sparkline(): Coder's database / Coder Servers by default, gaps
--          shown, counts as whole numbers;
--        * the verdict first: the view summary (summary_wrap(),
--          summary_render()), one 80 x 24 screen.
\echo Use "ALTER EXTENSION coder_health UPDATE TO '0.4.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- What cannot be replaced in place: views whose columns changed (CREATE OR
-- REPLACE VIEW can only add columns at the end), functions whose OUT columns
-- changed, and the views over those; each after the views that depend on
-- it.  Then the pg_notify wrapper (#18).
DROP VIEW coder_health.health;
DROP VIEW coder_health.connections;
DROP VIEW coder_health.coder_servers;
DROP VIEW coder_health.notify_queue;
DROP VIEW coder_health.statement_latency;
DROP VIEW coder_health.latency;
DROP VIEW coder_health.query_latency;
DROP VIEW coder_health.client_backends;
DROP VIEW coder_health.replication;
DROP VIEW coder_health.settings;
DROP FUNCTION coder_health.statement_latency_internal();
DROP FUNCTION coder_health.latency_internal();
DROP FUNCTION coder_health.notify_queue_internal();
DROP FUNCTION coder_health.client_hosts_internal();

DROP FUNCTION coder_health_notify.pg_notify(text, text);
DROP SCHEMA coder_health_notify;

-- ---------------------------------------------------------------------------
-- sql/install/00_core.sql: settings (#21)

-- pg_settings' own columns, but in the unit a setting's name says: the
-- *_bytes settings are kept by PostgreSQL in kB and shown here in bytes
-- (unit B), so health_replication_lag_critical_bytes reads 1073741824 B.
CREATE VIEW coder_health.settings AS
SELECT s.name,
       CASE WHEN s.unit = 'kB' THEN (s.setting::numeric * 1024)::text ELSE s.setting END AS setting,
       CASE WHEN s.unit = 'kB' THEN 'B' ELSE s.unit END AS unit,
       CASE WHEN s.unit = 'kB' THEN (s.boot_val::numeric * 1024)::text ELSE s.boot_val END AS boot_val,
       CASE WHEN s.unit = 'kB' THEN (s.reset_val::numeric * 1024)::text ELSE s.reset_val END AS reset_val,
       CASE WHEN s.unit = 'kB' THEN (s.min_val::numeric * 1024)::text ELSE s.min_val END AS min_val,
       CASE WHEN s.unit = 'kB' THEN (s.max_val::numeric * 1024)::text ELSE s.max_val END AS max_val,
       s.vartype,
       s.context,
       s.source,
       s.short_desc
FROM pg_catalog.pg_settings s
WHERE s.name LIKE 'coder\_health.%'
ORDER BY s.name;

COMMENT ON VIEW coder_health.settings IS
  'Every coder_health.* setting with pg_settings'' column names (setting, unit, boot_val, reset_val, min_val, max_val, short_desc); kB settings (the *_bytes ones) in bytes, unit B';

GRANT SELECT ON coder_health.settings TO pg_monitor;

-- ---------------------------------------------------------------------------
-- sql/install/10_latency.sql: statement_latency_internal() gains the column
-- query (#21), statement_texts() is written in C (#19, same signature:
-- replaced in place), latency's window is period, milliseconds as numeric
-- (#21)

CREATE FUNCTION coder_health.statement_latency_internal(
    OUT dbid oid, OUT userid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query_name text, OUT query text,
    OUT calls bigint, OUT errors bigint, OUT total_ms float8, OUT mean_ms float8,
    OUT min_ms float8, OUT p50_ms float8, OUT p90_ms float8, OUT p95_ms float8,
    OUT p99_ms float8, OUT p999_ms float8, OUT max_ms float8,
    OUT recent_calls bigint, OUT recent_errors bigint,
    OUT recent_p50_ms float8, OUT recent_p95_ms float8,
    OUT recent_p99_ms float8, OUT recent_max_ms float8,
    OUT first_seen timestamptz, OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_statement_latency_with_text'
LANGUAGE C STRICT VOLATILE;

-- pg_stat_statements' texts (as the client wrote them, with its own
-- privilege rules), for a DBA who wants them beside coder_health's own
-- (statement_latency.query, kept by coder_health with or without
-- pg_stat_statements): join on (dbid, userid, queryid, toplevel).
-- Written in C (src/latency/pgss_texts.c): the function is found as a member of the
-- extension and called by OID, so no look-alike or overload in any schema
-- can be called instead or make the call ambiguous.
CREATE OR REPLACE FUNCTION coder_health.statement_texts(
    OUT dbid oid, OUT userid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_statement_texts'
LANGUAGE C STRICT VOLATILE;

-- Like pg_stat_activity and pg_stat_statements: without pg_read_all_stats a
-- role sees every statement's numbers but only its own statements' identity
-- (the C function masks queryid, query_name and query itself; query is
-- '<insufficient privilege>' then, as in pg_stat_statements).  query is the
-- text coder_health keeps (constants as '?', comments and spacing out; see
-- docs/latency.md): there with or without pg_stat_statements.
CREATE VIEW coder_health.statement_latency AS
SELECT l.dbid, d.datname, l.userid, r.rolname,
       l.queryid,
       l.toplevel,
       l.query_name,
       l.query,
       l.calls, l.errors,
       -- milliseconds to the microsecond, as numeric (a fixed precision, no
       -- exponent notation), as in every view
       round(l.total_ms::numeric, 3) AS total_ms, round(l.mean_ms::numeric, 3) AS mean_ms, round(l.min_ms::numeric, 3) AS min_ms,
       round(l.p50_ms::numeric, 3) AS p50_ms, round(l.p90_ms::numeric, 3) AS p90_ms, round(l.p95_ms::numeric, 3) AS p95_ms,
       round(l.p99_ms::numeric, 3) AS p99_ms, round(l.p999_ms::numeric, 3) AS p999_ms, round(l.max_ms::numeric, 3) AS max_ms,
       l.recent_calls, l.recent_errors,
       round(l.recent_p50_ms::numeric, 3) AS recent_p50_ms, round(l.recent_p95_ms::numeric, 3) AS recent_p95_ms,
       round(l.recent_p99_ms::numeric, 3) AS recent_p99_ms, round(l.recent_max_ms::numeric, 3) AS recent_max_ms,
       l.first_seen, l.last_seen
FROM coder_health.statement_latency_internal() l
LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
LEFT JOIN pg_catalog.pg_roles r ON r.oid = l.userid;

COMMENT ON VIEW coder_health.statement_latency IS
  'Latency percentiles per statement (database, role, queryid, toplevel): since reset and recent (last 5 to 6 minutes)';

CREATE FUNCTION coder_health.latency_internal(
    OUT scope text, OUT dbid oid, OUT client_addr text, OUT period text,
    OUT calls bigint, OUT errors bigint, OUT calls_per_s float8,
    OUT p50_ms float8, OUT p90_ms float8, OUT p95_ms float8, OUT p99_ms float8,
    OUT p999_ms float8, OUT max_ms float8, OUT span_s float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_latency'
LANGUAGE C STRICT VOLATILE;

-- period: 1-2 min, 5-6 min, 15-16 min (N complete window steps of 60 s plus
-- the current one: named for what they cover; span_s says exactly) and
-- total (since reset)
CREATE VIEW coder_health.latency AS
SELECT l.scope, d.datname, l.client_addr, l.period,
       l.calls, l.errors, round(l.calls_per_s::numeric, 2) AS calls_per_s,
       round(l.p50_ms::numeric, 3) AS p50_ms, round(l.p90_ms::numeric, 3) AS p90_ms, round(l.p95_ms::numeric, 3) AS p95_ms,
       round(l.p99_ms::numeric, 3) AS p99_ms, round(l.p999_ms::numeric, 3) AS p999_ms, round(l.max_ms::numeric, 3) AS max_ms,
       round(l.span_s::numeric, 1) AS span_s
FROM coder_health.latency_internal() l
LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
ORDER BY l.scope DESC, d.datname, l.client_addr,
         array_position(ARRAY['1-2 min', '5-6 min', '15-16 min', 'total'], l.period);

COMMENT ON VIEW coder_health.latency IS
  'Latency percentiles per database and per client address (Coder Server), over the last 1-2, 5-6 and 15-16 minutes (period; span_s: the seconds covered) and since reset';

CREATE VIEW coder_health.query_latency AS
SELECT d.datname, q.query_name, q.calls, q.errors,
       round(q.total_ms::numeric, 3) AS total_ms, round(q.mean_ms::numeric, 3) AS mean_ms, round(q.min_ms::numeric, 3) AS min_ms,
       round(q.p50_ms::numeric, 3) AS p50_ms, round(q.p90_ms::numeric, 3) AS p90_ms, round(q.p95_ms::numeric, 3) AS p95_ms,
       round(q.p99_ms::numeric, 3) AS p99_ms, round(q.p999_ms::numeric, 3) AS p999_ms, round(q.max_ms::numeric, 3) AS max_ms,
       q.recent_calls, q.recent_errors,
       round(q.recent_p50_ms::numeric, 3) AS recent_p50_ms, round(q.recent_p99_ms::numeric, 3) AS recent_p99_ms,
       q.queryids
FROM coder_health.query_latency_internal() q
LEFT JOIN pg_catalog.pg_database d ON d.oid = q.dbid;

COMMENT ON VIEW coder_health.query_latency IS
  'Latency per sqlc query name ("-- name: X :one"), all statements with that name merged: compare with coderd_db_query_latencies_seconds{query=...}';

REVOKE ALL ON FUNCTION coder_health.statement_latency_internal(),
                       coder_health.latency_internal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coder_health.statement_latency_internal(),
                          coder_health.latency_internal() TO pg_monitor;
GRANT SELECT ON coder_health.statement_latency, coder_health.latency,
                coder_health.query_latency TO pg_monitor;

-- ---------------------------------------------------------------------------
-- sql/install/30_notify.sql: notify_queue.pubsub (#18), usage_pct and
-- unread_pages (#21)

CREATE FUNCTION coder_health.notify_queue_internal(
    OUT usage float8, OUT backlog_bytes bigint, OUT max_bytes bigint,
    OUT listeners integer, OUT slowest_listener_pid integer,
    OUT slowest_listener_backlog_bytes bigint,
    OUT notifications bigint, OUT notify_bytes bigint,
    OUT notifications_per_s float8,
    OUT commit_p50_ms float8, OUT commit_p99_ms float8,
    OUT supported boolean, OUT reset_at timestamptz, OUT unread_pages bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_notify_queue'
LANGUAGE C STRICT VOLATILE;

-- Usage in percent of the queue's maximum, as the health check and its
-- thresholds (health_notify_queue_*_pct) and the history have it.
CREATE VIEW coder_health.notify_queue AS
SELECT round((q.usage * 100)::numeric, 4) AS usage_pct, q.backlog_bytes, q.max_bytes, q.listeners,
       (SELECT count(*) FROM coder_health.notify_listeners l WHERE l.stalled)::integer
           AS stalled_listeners,
       q.slowest_listener_pid, q.slowest_listener_backlog_bytes,
       q.notifications, q.notify_bytes, q.notifications_per_s,
       round(q.commit_p50_ms::numeric, 3) AS commit_p50_ms,
       round(q.commit_p99_ms::numeric, 3) AS commit_p99_ms, q.supported, q.reset_at,
       -- which pubsub Coder uses: PostgreSQL's (a LISTEN connection per
       -- Coder Server, pg_notify publishes) or NATS (neither, while clients
       -- are connected over TCP); NULL when nothing tells
       CASE WHEN q.listeners > 0 OR q.notifications_per_s > 0 THEN 'postgres'
            WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                         WHERE a.backend_type = 'client backend'
                           AND a.client_addr IS NOT NULL
                           AND a.pid <> pg_catalog.pg_backend_pid()) THEN 'nats'
       END AS pubsub,
       -- queue pages whose notifications could not be read back (so are
       -- missing from notifications and notify_channels), since reset
       q.unread_pages
FROM coder_health.notify_queue_internal() q;

COMMENT ON VIEW coder_health.notify_queue IS
  'The NOTIFY queue: usage_pct (percent, pg_notification_queue_usage() * 100), backlog, slowest listener, committed notifications, the commit time of notifying transactions (last minute), which pubsub Coder uses (postgres or nats), and the queue pages that could not be read back (unread_pages: their notifications are not counted)';

REVOKE ALL ON FUNCTION coder_health.notify_queue_internal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coder_health.notify_queue_internal() TO pg_monitor;
GRANT SELECT ON coder_health.notify_queue TO pg_monitor;

-- ---------------------------------------------------------------------------
-- sql/install/40_clients.sql: coder_replicas() is written in C (#19, same
-- signature: replaced in place); coder_servers.listen_lost (#18), kind and
-- stopped (#21, client_hosts_internal.sqlc_named_at)

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

CREATE VIEW coder_health.client_backends AS
SELECT b.pid, b.client_addr, round(b.rtt_ms::numeric, 3) AS rtt_ms,
       round(b.rttvar_ms::numeric, 3) AS rttvar_ms, b.rtt_measured_at,
       b.listening, b.waiting_on_lock
FROM coder_health.client_backends_internal() b;

COMMENT ON VIEW coder_health.client_backends IS
  'Each client backend''s kernel-measured round-trip time (TCP_INFO smoothed RTT and variance; NULL for unix sockets), LISTEN state and lock wait';

-- Coder's own record of its replicas (public.replicas), when it is a plain
-- table of the expected shape that this role may read.  Written in C
-- (src/clients/coder_replicas.c): the table is read with a heap scan, so no view,
-- function, operator or row-level security policy planted there ever runs
-- with the reader's rights.  Never raises: anything unexpected gives no
-- rows.  The last row, with replica_id NULL and source_ok true, says the
-- table was read; without it nothing is known.
CREATE OR REPLACE FUNCTION coder_health.coder_replicas(
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

REVOKE ALL ON FUNCTION coder_health.client_hosts_internal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coder_health.client_hosts_internal() TO pg_monitor;
GRANT SELECT ON coder_health.coder_servers, coder_health.client_backends,
                coder_health.connections TO pg_monitor;

-- ---------------------------------------------------------------------------
-- sql/install/50_replication.sql: the round trip to each standby and
-- sync_commit (#20)

CREATE FUNCTION coder_health.replication_rtt_internal(
    OUT role text, OUT pid integer, OUT rtt_ms float8, OUT rtt_recent_ms float8,
    OUT rtt_max_ms float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_replication_rtt'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.replication_rtt_internal() IS
  'Kernel TCP round trip of each replication connection as the collector last read it; use the view coder_health.replication';

-- Who the standby is (application_name, client address, sync state) comes
-- from pg_stat_replication, with its own visibility rules.  The round trip
-- (rtt_ms: the kernel's minimum, rtt_recent_ms: its smoothed value) is that
-- of the WAL sender's connection, or on a standby of its WAL receiver's;
-- far compares rtt_ms with coder_health.health_replication_rtt_warn_ms.
CREATE VIEW coder_health.replication AS
SELECT r.role,
       r.pid,
       a.application_name,
       a.client_addr,
       r.slot_name,
       r.state,
       a.sync_state,
       r.sent_lag_bytes,
       r.write_lag_bytes,
       r.flush_lag_bytes,
       r.replay_lag_bytes,
       round(r.write_lag_s::numeric, 3) AS write_lag_s,
       round(r.flush_lag_s::numeric, 3) AS flush_lag_s,
       round(r.replay_lag_s::numeric, 3) AS replay_lag_s,
       round(r.reply_age_s::numeric, 3) AS reply_age_s,
       r.receiver_status,
       r.sender_host,
       r.sender_port,
       r.receive_lag_bytes,
       round(r.replay_delay_s::numeric, 3) AS replay_delay_s,
       round(r.last_msg_age_s::numeric, 3) AS last_msg_age_s,
       r.replay_paused,
       r.peak_replay_lag_bytes_15min,
       round(r.peak_replay_lag_s_15min::numeric, 3) AS peak_replay_lag_s_15min,
       round(k.rtt_ms::numeric, 3) AS rtt_ms,
       round(k.rtt_recent_ms::numeric, 3) AS rtt_recent_ms,
       round(k.rtt_max_ms::numeric, 3) AS rtt_max_ms,
       coalesce(k.rtt_ms >= (SELECT s.setting::float8 FROM pg_catalog.pg_settings s
                             WHERE s.name = 'coder_health.health_replication_rtt_warn_ms'),
                false) AS far
FROM coder_health.replication_internal() r
LEFT JOIN pg_catalog.pg_stat_replication a
       ON r.role = 'primary' AND a.pid = r.pid
LEFT JOIN coder_health.replication_rtt_internal() k
       ON k.role = r.role AND k.pid IS NOT DISTINCT FROM r.pid;

COMMENT ON VIEW coder_health.replication IS
  'Replication lag: one row per WAL sender (role primary) and, on a standby, one row for its own receiver and replay (role standby); lag 0 when caught up, peaks over 15 minutes; the kernel''s TCP round trip of the connection (NULL over a unix socket)';

-- What synchronous replication costs commits: whether commits wait for a
-- standby, backends waiting for one right now (wait event SyncRep), and
-- the least a commit waits, the kernel round trip to the standby it waits
-- for (FIRST: the farthest synchronous standby; ANY: the nearest, a lower
-- bound).  See docs/replication.md.
CREATE VIEW coder_health.sync_commit AS
WITH s AS (
    SELECT pg_catalog.current_setting('synchronous_commit') AS synchronous_commit,
           pg_catalog.current_setting('synchronous_standby_names') AS synchronous_standby_names
), r AS (
    SELECT r.application_name, r.sync_state, r.rtt_ms
    FROM coder_health.replication r
    WHERE r.role = 'primary' AND r.sync_state IN ('sync', 'quorum')
)
SELECT s.synchronous_commit,
       s.synchronous_standby_names,
       s.synchronous_commit IN ('on', 'remote_write', 'remote_apply')
         AND s.synchronous_standby_names <> '' AS commits_wait,
       (SELECT pg_catalog.count(*) FROM r)::integer AS sync_standbys,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a
        WHERE a.wait_event_type = 'IPC' AND a.wait_event = 'SyncRep')::integer AS waiting_now,
       CASE WHEN s.synchronous_commit IN ('on', 'remote_write', 'remote_apply')
                 AND s.synchronous_standby_names <> '' THEN
            CASE WHEN EXISTS (SELECT 1 FROM r WHERE r.sync_state = 'quorum')
                 THEN (SELECT pg_catalog.min(r.rtt_ms) FROM r)
                 ELSE (SELECT pg_catalog.max(r.rtt_ms) FROM r) END
       END AS commit_wait_floor_ms,
       (SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s, %s ms)', r.application_name, r.sync_state,
                                                       coalesce(r.rtt_ms::text, 'no TCP round trip')),
                                     ', ' ORDER BY r.application_name) FROM r) AS sync_standbys_detail
FROM s;

COMMENT ON VIEW coder_health.sync_commit IS
  'Synchronous replication''s cost to commits: whether commits wait for a standby, backends waiting on SyncRep now, and the least a commit waits (the kernel round trip to the synchronous standby)';

REVOKE ALL ON FUNCTION coder_health.replication_rtt_internal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coder_health.replication_rtt_internal() TO pg_monitor;
GRANT SELECT ON coder_health.replication, coder_health.sync_commit TO pg_monitor;

-- ---------------------------------------------------------------------------
-- sql/install/60_health.sql: health (#18 coder_server_listen, #20
-- replication_rtt, #21); history: only its comment changed (#20, #21);
-- sparkline() (#20 replication_rtt_ms, #21; replaced in place)

-- Every check reads the other views once; thresholds come from the
-- coder_health.health_* settings (in base units: kB settings become bytes).
CREATE VIEW coder_health.health AS
WITH th AS MATERIALIZED (
    SELECT pg_catalog.jsonb_object_agg(pg_catalog.substr(s.name, 14),
               CASE WHEN s.unit = 'kB' THEN s.setting::float8 * 1024
                    ELSE s.setting::float8 END) AS j
    FROM pg_catalog.pg_settings s
    WHERE s.name LIKE 'coder\_health.%' AND s.vartype IN ('integer', 'real')
), t AS (
    SELECT (j->>'health_p99_warn_ms')::float8 AS p99_warn,
           (j->>'health_p99_critical_ms')::float8 AS p99_crit,
           (j->>'health_error_rate_warn_pct')::float8 AS err_warn,
           (j->>'health_error_rate_critical_pct')::float8 AS err_crit,
           (j->>'health_notify_queue_warn_pct')::float8 AS queue_warn,
           (j->>'health_notify_queue_critical_pct')::float8 AS queue_crit,
           (j->>'health_stalled_listeners_warn')::float8 AS stalled_warn,
           (j->>'health_stalled_listeners_critical')::float8 AS stalled_crit,
           (j->>'health_headroom_warn_pct')::float8 AS headroom_warn,
           (j->>'health_headroom_critical_pct')::float8 AS headroom_crit,
           (j->>'max_rtt_ms')::float8 AS rtt_warn,
           (j->>'health_rtt_critical_ms')::float8 AS rtt_crit,
           (j->>'health_pool_busy_warn_pct')::float8 AS pool_warn,
           (j->>'health_pool_busy_critical_pct')::float8 AS pool_crit,
           (j->>'health_replication_lag_warn_bytes')::float8 AS lag_b_warn,
           (j->>'health_replication_lag_critical_bytes')::float8 AS lag_b_crit,
           (j->>'health_replication_lag_warn_s')::float8 AS lag_s_warn,
           (j->>'health_replication_lag_critical_s')::float8 AS lag_s_crit,
           (j->>'health_slot_retained_warn_bytes')::float8 AS slot_warn,
           (j->>'health_slot_retained_critical_bytes')::float8 AS slot_crit,
           (j->>'health_collector_warn_s')::float8 AS coll_warn,
           (j->>'health_collector_critical_s')::float8 AS coll_crit,
           (j->>'coder_pool_size')::float8 AS pool_size,
           (j->>'health_replication_rtt_warn_ms')::float8 AS repl_rtt_warn,
           (j->>'health_replication_rtt_critical_ms')::float8 AS repl_rtt_crit,
           (j->>'health_min_statements')::float8 AS min_calls
    FROM th
), db AS MATERIALIZED (
    SELECT l.datname, l.calls, l.errors, l.p99_ms
    FROM coder_health.latency l
    WHERE l.scope = 'database' AND l.period = '5-6 min' AND l.calls > 0
      -- Coder's database is the one the extension is used from; other
      -- databases only when it had no statements (a few slow maintenance
      -- statements elsewhere must not speak for Coder)
      AND (l.datname = pg_catalog.current_database()
           OR NOT EXISTS (SELECT 1 FROM coder_health.latency c
                          WHERE c.scope = 'database' AND c.period = '5-6 min'
                            AND c.calls > 0 AND c.datname = pg_catalog.current_database()))
), stmt AS MATERIALIZED (
    SELECT d.datname,
           -- a name a DBA knows: the sqlc name, else coder_health's text
           coalesce(s.query_name,
                    CASE WHEN pg_catalog.length(s.query) > 60
                         THEN pg_catalog.left(s.query, 57) || '...' ELSE s.query END,
                    'queryid ' || s.queryid) AS statement,
           s.query_name IS NOT NULL AS named,
           s.recent_calls, s.recent_errors, round(s.recent_p99_ms::numeric, 3) AS recent_p99_ms
    FROM coder_health.statement_latency_internal() s
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
    WHERE s.recent_calls > 0
), servers AS MATERIALIZED (
    -- Coder Servers only: psql, exporters and other clients are no Coder
    -- Server (coder_servers.kind)
    SELECT * FROM coder_health.coder_servers s WHERE s.kind = 'coder_server'
), listeners AS MATERIALIZED (
    SELECT * FROM coder_health.notify_listeners
), queue AS MATERIALIZED (
    SELECT q.usage, q.backlog_bytes, q.slowest_listener_pid,
           q.slowest_listener_backlog_bytes, q.supported, q.notifications_per_s
    FROM coder_health.notify_queue_internal() q
), repl AS MATERIALIZED (
    SELECT * FROM coder_health.replication
), slots AS MATERIALIZED (
    SELECT * FROM coder_health.replication_slots
), replicas_known AS (
    SELECT coalesce(pg_catalog.bool_or(r.source_ok), false) AS known
    FROM coder_health.coder_replicas() r
), st AS (
    SELECT s.collector_pid, s.collector_last_run_age_s, s.in_recovery
    FROM coder_health.status s
), checks (ord, check_name, value, unit, warn, crit, lower_is_worse, forced, detail) AS (
    -- 1. statement p99, worst database, last 5-6 minutes
    SELECT 1, 'statement_p99', w.p99_ms, 'ms', t.p99_warn, t.p99_crit, false,
           CASE WHEN w.datname IS NULL AND NOT EXISTS (SELECT 1 FROM db) THEN 'unknown'
                WHEN w.calls < t.min_calls THEN 'unknown' END,
           CASE WHEN w.datname IS NULL THEN 'no statements in the last 5-6 minutes'
                ELSE pg_catalog.format('database %s: %sp99 %s ms over %s statements; slowest: %s',
                        w.datname,
                        CASE WHEN w.calls < t.min_calls
                             THEN pg_catalog.format('too few statements to judge (fewer than coder_health.health_min_statements, %s): ',
                                                    t.min_calls) ELSE '' END,
                        w.p99_ms, w.calls,
                        -- the culprit: a statement with enough calls for its
                        -- p99 to mean something (a one-off is not a culprit),
                        -- Coder's (sqlc-named) first
                        coalesce((SELECT pg_catalog.format('%s (p99 %s ms)', x.statement, x.recent_p99_ms)
                                  FROM stmt x WHERE x.datname = w.datname AND x.recent_calls >= t.min_calls
                                  ORDER BY x.named DESC, x.recent_p99_ms DESC NULLS LAST LIMIT 1),
                                 pg_catalog.format('none with %s calls or more', t.min_calls)))
           END
    FROM t LEFT JOIN (SELECT * FROM db
                      ORDER BY db.calls >= (SELECT tt.min_calls FROM t tt) DESC,
                               p99_ms DESC NULLS LAST LIMIT 1) w ON true
    UNION ALL
    -- 2. failed statements, worst database, last 5-6 minutes
    SELECT 2, 'error_rate', round((100.0 * w.errors / w.calls)::numeric, 3)::float8, '%',
           t.err_warn, t.err_crit, false,
           CASE WHEN w.calls < t.min_calls THEN 'unknown' END,
           CASE WHEN w.datname IS NULL THEN 'no statements in the last 5-6 minutes'
                ELSE pg_catalog.format('database %s: %s%s of %s statements failed%s',
                        w.datname,
                        CASE WHEN w.calls < t.min_calls
                             THEN pg_catalog.format('too few statements to judge (fewer than coder_health.health_min_statements, %s): ',
                                                    t.min_calls) ELSE '' END,
                        w.errors, w.calls,
                        coalesce('; most errors: ' ||
                                 (SELECT x.statement || ' (' || x.recent_errors || ')'
                                  FROM stmt x WHERE x.datname = w.datname AND x.recent_errors > 0
                                  ORDER BY x.recent_errors DESC LIMIT 1), ''))
           END
    FROM t LEFT JOIN (SELECT * FROM db
                      ORDER BY db.calls >= (SELECT tt.min_calls FROM t tt) DESC,
                               errors::float8 / calls DESC LIMIT 1) w ON true
    UNION ALL
    -- 3. NOTIFY queue usage
    SELECT 3, 'notify_queue',
           CASE WHEN q.supported THEN round((q.usage * 100)::numeric, 4)::float8 END, '%',
           t.queue_warn, t.queue_crit, false, NULL,
           CASE WHEN q.supported IS NOT TRUE THEN 'the NOTIFY queue of this PostgreSQL version cannot be read'
                WHEN q.slowest_listener_pid IS NULL
                    THEN pg_catalog.format('%s bytes queued, no listener behind', q.backlog_bytes)
                ELSE pg_catalog.format('%s bytes queued; slowest listener pid %s is %s bytes behind',
                        q.backlog_bytes, q.slowest_listener_pid, q.slowest_listener_backlog_bytes)
           END
    FROM t LEFT JOIN queue q ON true
    UNION ALL
    -- 4. stalled listeners
    SELECT 4, 'stalled_listeners',
           CASE WHEN q.supported THEN (SELECT pg_catalog.count(*) FROM listeners l WHERE l.stalled)::float8 END,
           'listeners', t.stalled_warn, t.stalled_crit, false, NULL,
           CASE WHEN q.supported IS NOT TRUE THEN 'the NOTIFY queue of this PostgreSQL version cannot be read'
                ELSE coalesce((SELECT pg_catalog.string_agg(pg_catalog.format('pid %s (%s, %s bytes behind): %s',
                                   l.pid, coalesce(l.client_addr::text, 'local'), l.backlog_bytes, l.stalled_reason),
                                   '; ' ORDER BY l.backlog_bytes DESC)
                               FROM listeners l WHERE l.stalled),
                              pg_catalog.format('%s listeners, none stalled', (SELECT pg_catalog.count(*) FROM listeners)))
           END
    FROM t LEFT JOIN queue q ON true
    UNION ALL
    -- 5. free connection slots if every Coder Server filled its pool
    SELECT 5, 'connection_headroom',
           round((100.0 * c.headroom_at_full_pools
                  / greatest(c.max_connections - c.superuser_reserved_connections
                             - c.reserved_connections, 1))::numeric, 1)::float8,
           '%', t.headroom_warn, t.headroom_crit, true, NULL,
           pg_catalog.format('%s of %s client slots free now, %s if all %s Coder Servers open %s connections',
                  c.headroom,
                  c.max_connections - c.superuser_reserved_connections - c.reserved_connections,
                  c.headroom_at_full_pools, c.coder_servers, c.coder_pool_size)
    FROM t CROSS JOIN coder_health.connections c
    UNION ALL
    -- 6. network round trip to the farthest Coder Server
    SELECT 6, 'coder_server_rtt', w.rtt_ms::float8, 'ms', t.rtt_warn, t.rtt_crit, false, NULL,
           CASE WHEN w.coder_server IS NULL THEN 'no Coder Server connected over TCP'
                ELSE pg_catalog.format('farthest Coder Server %s (%s): %s ms; %s of %s over %s ms',
                        w.coder_server, w.client_addr, w.rtt_ms,
                        (SELECT pg_catalog.count(*) FROM servers s WHERE s.rtt_ms > t.rtt_warn),
                        (SELECT pg_catalog.count(*) FROM servers s WHERE s.rtt_ms IS NOT NULL),
                        t.rtt_warn)
           END
    FROM t LEFT JOIN (SELECT * FROM servers s WHERE s.rtt_ms IS NOT NULL
                      ORDER BY s.rtt_ms DESC LIMIT 1) w ON true
    UNION ALL
    -- 7. busiest Coder Server's pool
    SELECT 7, 'coder_server_pool', w.busy_pct, '%', t.pool_warn, t.pool_crit, false, NULL,
           CASE WHEN w.coder_server IS NULL THEN 'no Coder Server connected'
                ELSE pg_catalog.format('busiest Coder Server %s (%s): %s of %s pool connections busy (%s open, %s waiting on a lock)%s',
                        w.coder_server, w.client_addr, w.busy, t.pool_size, w.connections,
                        w.waiting_on_lock,
                        CASE WHEN w.connections > t.pool_size
                             THEN '; more connections than coder_health.coder_pool_size' ELSE '' END)
           END
    FROM t LEFT JOIN (
        SELECT s.*, s.active + s.idle_in_transaction + s.idle_in_transaction_aborted AS busy,
               round((100.0 * (s.active + s.idle_in_transaction + s.idle_in_transaction_aborted)
                      / (SELECT tt.pool_size FROM t tt))::numeric, 1)::float8 AS busy_pct
        FROM servers s WHERE s.client_addr <> 'local' AND s.connections > 0
        ORDER BY busy_pct DESC LIMIT 1) w ON true
    UNION ALL
    -- 8. Coder's replicas: missing (live heartbeat, no connection) is critical,
    --    stale heartbeat is a warning; stopped replicas (stopped_at set) are
    --    named as stopped, and with no live replica there is nothing to judge
    SELECT 8, 'coder_replicas',
           CASE WHEN rk.known AND rk.live > 0
                THEN (SELECT pg_catalog.count(*) FROM servers s WHERE s.stale OR s.missing)::float8 END,
           'replicas', 1, 1, false,
           CASE WHEN NOT rk.known OR rk.live = 0 THEN 'unknown'
                WHEN EXISTS (SELECT 1 FROM servers s WHERE s.missing) THEN 'critical'
                WHEN EXISTS (SELECT 1 FROM servers s WHERE s.stale) THEN 'warn'
                ELSE 'ok' END,
           CASE WHEN NOT rk.known THEN 'no readable public.replicas table (Coder''s) in this database'
                ELSE coalesce((SELECT pg_catalog.string_agg(
                                   pg_catalog.format('%s %s (%s, heartbeat %s s ago, %s connections)',
                                       CASE WHEN s.missing THEN 'missing' ELSE 'stale' END,
                                       s.coder_server, s.client_addr, s.heartbeat_age_s, s.connections),
                                   '; ' ORDER BY s.missing DESC, s.coder_server)
                               FROM servers s WHERE s.stale OR s.missing),
                              CASE WHEN rk.live = 0 THEN 'no live Coder replica in public.replicas'
                                   ELSE pg_catalog.format('%s live replicas, all connected with a fresh heartbeat', rk.live)
                              END)
                     || coalesce((SELECT pg_catalog.format('; %s stopped: %s', pg_catalog.count(*),
                                             pg_catalog.string_agg(pg_catalog.format('%s (last heartbeat %s s ago)',
                                                 s.coder_server, s.heartbeat_age_s), ', ' ORDER BY s.coder_server))
                                  FROM servers s WHERE s.stopped HAVING pg_catalog.count(*) > 0), '')
           END
    FROM (SELECT rk0.known,
                 (SELECT pg_catalog.count(*) FROM servers s
                  WHERE s.replica_id IS NOT NULL AND NOT s.stopped) AS live
          FROM replicas_known rk0) rk
    UNION ALL
    -- 9, 10. replication lag: the worst standby (primary) or this standby
    SELECT 9, 'replication_lag_bytes',
           CASE WHEN st.in_recovery THEN (SELECT r.replay_lag_bytes FROM repl r WHERE r.role = 'standby')
                ELSE (SELECT pg_catalog.max(r.replay_lag_bytes) FROM repl r WHERE r.role = 'primary') END::float8,
           'bytes', t.lag_b_warn, t.lag_b_crit, false, lag.forced, lag.detail
    FROM t CROSS JOIN st CROSS JOIN LATERAL (
        SELECT CASE WHEN st.in_recovery AND sb.receiver_status IS DISTINCT FROM 'streaming' THEN 'critical'
                    WHEN NOT st.in_recovery AND NOT EXISTS (SELECT 1 FROM repl r WHERE r.role = 'primary') THEN
                        CASE WHEN EXISTS (SELECT 1 FROM slots s WHERE NOT s.active AND s.slot_type = 'physical')
                             THEN 'critical' ELSE 'unknown' END
               END AS forced,
               CASE WHEN st.in_recovery THEN
                        pg_catalog.format('this standby: receiver %s from %s, replay lag %s bytes, %s s behind%s',
                            coalesce(sb.receiver_status, 'not running'), coalesce(sb.sender_host, '?'),
                            sb.replay_lag_bytes, sb.replay_delay_s,
                            CASE WHEN sb.replay_paused THEN ', replay paused' ELSE '' END)
                    WHEN w.pid IS NOT NULL THEN
                        pg_catalog.format('standby %s (%s, %s%s): replay %s bytes, %s s behind',
                            coalesce(w.application_name, w.slot_name, 'pid ' || w.pid),
                            coalesce(w.client_addr::text, 'local'), w.state,
                            coalesce(', slot ' || w.slot_name, ''), w.replay_lag_bytes, w.replay_lag_s)
                    WHEN EXISTS (SELECT 1 FROM slots s WHERE NOT s.active AND s.slot_type = 'physical') THEN
                        (SELECT pg_catalog.format('no standby connected; physical slot %s inactive for %s s',
                                    s.slot_name, round(s.inactive_s::numeric, 1))
                         FROM slots s WHERE NOT s.active AND s.slot_type = 'physical'
                         ORDER BY s.inactive_s DESC NULLS LAST LIMIT 1)
                    ELSE 'no standby connected and no physical slot: nothing to measure'
               END AS detail
        FROM (SELECT 1) one
        LEFT JOIN (SELECT * FROM repl r WHERE r.role = 'standby') sb ON true
        LEFT JOIN (SELECT * FROM repl r WHERE r.role = 'primary'
                   ORDER BY r.replay_lag_bytes DESC NULLS LAST LIMIT 1) w ON true
    ) lag
    UNION ALL
    SELECT 10, 'replication_lag_time',
           CASE WHEN st.in_recovery THEN (SELECT r.replay_delay_s FROM repl r WHERE r.role = 'standby')
                ELSE (SELECT pg_catalog.max(r.replay_lag_s) FROM repl r WHERE r.role = 'primary') END::float8,
           's', t.lag_s_warn, t.lag_s_crit, false,
           CASE WHEN st.in_recovery AND NOT EXISTS (SELECT 1 FROM repl r WHERE r.role = 'standby' AND r.receiver_status = 'streaming') THEN 'critical'
                WHEN NOT st.in_recovery AND NOT EXISTS (SELECT 1 FROM repl r WHERE r.role = 'primary') THEN
                    CASE WHEN EXISTS (SELECT 1 FROM slots s WHERE NOT s.active AND s.slot_type = 'physical')
                         THEN 'critical' ELSE 'unknown' END
           END,
           CASE WHEN st.in_recovery THEN 'this standby: time since the primary''s last commit it has not replayed'
                WHEN NOT EXISTS (SELECT 1 FROM repl r WHERE r.role = 'primary') THEN 'no standby connected'
                ELSE (SELECT pg_catalog.format('standby %s: replay %s s behind (write %s s, flush %s s)',
                             coalesce(r.application_name, r.slot_name, 'pid ' || r.pid),
                             r.replay_lag_s, r.write_lag_s, r.flush_lag_s)
                      FROM repl r WHERE r.role = 'primary'
                      ORDER BY r.replay_lag_s DESC NULLS LAST LIMIT 1)
           END
    FROM t CROSS JOIN st
    UNION ALL
    -- 11. WAL held back by replication slots
    SELECT 11, 'slot_wal_retention',
           coalesce((SELECT pg_catalog.max(s.retained_wal_bytes) FROM slots s), 0)::float8,
           'bytes', t.slot_warn, t.slot_crit, false,
           CASE WHEN EXISTS (SELECT 1 FROM slots s WHERE s.wal_status IN ('lost', 'unreserved'))
                THEN 'critical' END,
           coalesce((SELECT pg_catalog.format('slot %s (%s, %s): %s bytes retained, wal_status %s%s',
                            s.slot_name, s.slot_type, CASE WHEN s.active THEN 'active' ELSE 'inactive' END,
                            s.retained_wal_bytes, coalesce(s.wal_status, '?'),
                            coalesce(', ' || s.safe_wal_bytes || ' bytes until it is lost', ''))
                     FROM slots s
                     ORDER BY s.wal_status IN ('lost', 'unreserved') DESC,
                              s.retained_wal_bytes DESC NULLS LAST LIMIT 1),
                    'no replication slots')
    FROM t
    UNION ALL
    -- 12. the collector itself
    SELECT 12, 'collector', st.collector_last_run_age_s::float8, 's',
           t.coll_warn, t.coll_crit, false,
           CASE WHEN st.collector_pid IS NULL THEN 'critical' END,
           CASE WHEN st.collector_pid IS NULL THEN 'the coder_health collector is not running'
                ELSE pg_catalog.format('collector pid %s, last cycle %s s ago',
                        st.collector_pid, st.collector_last_run_age_s)
           END
    FROM t CROSS JOIN st
    UNION ALL
    -- 13. Coder on PostgreSQL pubsub: every Coder Server holds a LISTEN
    --     connection.  On NATS (no LISTEN anywhere, no pg_notify) there is
    --     nothing to hold, and that is no fault.
    SELECT 13, 'coder_server_listen',
           CASE WHEN ls.connected > 0 THEN
                CASE WHEN ls.listening = 0 AND q.notifications_per_s > 0 THEN ls.connected
                     ELSE ls.lost END::float8
           END,
           'servers', 1, 1, false,
           CASE WHEN ls.connected = 0 THEN 'unknown'
                WHEN ls.listening = 0 AND q.notifications_per_s > 0 THEN 'critical' END,
           CASE WHEN ls.connected = 0 THEN 'no Coder Server connected'
                WHEN ls.listening = 0 AND q.notifications_per_s > 0 THEN
                    pg_catalog.format('pg_notify publishes %s notifications/s but none of %s Coder Servers holds a LISTEN connection',
                        round(q.notifications_per_s::numeric, 1), ls.connected)
                WHEN ls.listening = 0 THEN
                    pg_catalog.format('pubsub on NATS: none of %s Coder Servers LISTENs and nothing is published with pg_notify; nothing to check',
                        ls.connected)
                WHEN ls.lost = 0 THEN
                    pg_catalog.format('PostgreSQL pubsub: all %s Coder Servers hold a LISTEN connection', ls.connected)
                ELSE pg_catalog.format('PostgreSQL pubsub: %s of %s Coder Servers hold no LISTEN connection: %s',
                        ls.lost, ls.connected,
                        (SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s, %s connections)',
                                    s.coder_server, s.client_addr, s.connections), '; ' ORDER BY s.coder_server)
                         FROM servers s WHERE s.listen_lost))
           END
    FROM (SELECT pg_catalog.count(*) FILTER (WHERE s.connections > 0) AS connected,
                 pg_catalog.count(*) FILTER (WHERE s.listening > 0) AS listening,
                 pg_catalog.count(*) FILTER (WHERE s.listen_lost) AS lost
          FROM servers s
          -- Coder Servers as coder_servers.listen_lost counts them
          WHERE NOT s.stopped) ls
    LEFT JOIN queue q ON true
    UNION ALL
    -- 14. kernel TCP round trip to the farthest standby (primary) or to the
    --     primary (standby); unix-socket connections have none
    SELECT 14, 'replication_rtt', w.rtt_ms, 'ms', t.repl_rtt_warn, t.repl_rtt_crit, false, NULL,
           CASE WHEN w.role = 'standby' THEN
                    pg_catalog.format('this standby''s WAL receiver to %s:%s: %s ms (recent %s ms, 15-minute max %s ms)',
                        w.sender_host, w.sender_port, w.rtt_ms, w.rtt_recent_ms, w.rtt_max_ms)
                WHEN w.role = 'primary' THEN
                    pg_catalog.format('farthest standby %s (%s): %s ms (recent %s ms, 15-minute max %s ms); %s of %s over %s ms',
                        coalesce(w.application_name, w.slot_name, 'pid ' || w.pid), w.client_addr,
                        w.rtt_ms, w.rtt_recent_ms, w.rtt_max_ms,
                        (SELECT pg_catalog.count(*) FROM repl r WHERE r.role = 'primary' AND r.rtt_ms >= t.repl_rtt_warn),
                        (SELECT pg_catalog.count(*) FROM repl r WHERE r.role = 'primary' AND r.rtt_ms IS NOT NULL),
                        t.repl_rtt_warn)
                WHEN st.in_recovery THEN 'this standby''s WAL receiver is not connected over TCP'
                ELSE 'no standby connected over TCP'
           END
    FROM t CROSS JOIN st
    LEFT JOIN (SELECT * FROM repl r WHERE r.rtt_ms IS NOT NULL
                 AND r.role = CASE WHEN (SELECT s.in_recovery FROM st s) THEN 'standby' ELSE 'primary' END
               ORDER BY r.rtt_ms DESC LIMIT 1) w ON true
)
SELECT c.check_name,
       coalesce(c.forced, coder_health.health_status(c.value, c.warn, c.crit, c.lower_is_worse)) AS status,
       -- a fixed precision per unit: ms, s and % to 3 decimals (the NOTIFY
       -- queue's % too: it had 4), counts and bytes whole
       round(c.value::numeric, CASE WHEN c.unit IN ('ms', 's', '%') THEN 3
                                    ELSE 0 END) AS value,
       c.unit,
       c.warn AS warn_threshold,
       c.crit AS critical_threshold,
       c.detail
FROM checks c
ORDER BY c.ord;

COMMENT ON VIEW coder_health.health IS
  'One row per health check: status ok/warn/critical/unknown, value, thresholds (coder_health.health_* settings) and the culprit';

COMMENT ON VIEW coder_health.history IS
  'Samples taken every coder_health.history_interval over coder_health.history_length: connections per client host, NOTIFY queue usage (percent) and backlog, replication lag and round trip (replication_rtt_ms), p99 and calls/s per database';

CREATE OR REPLACE FUNCTION coder_health.sparkline(metric text, key text DEFAULT NULL,
                                      width integer DEFAULT 60)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    metrics constant text[] := ARRAY['connections', 'notify_queue_usage_pct',
        'notify_backlog_bytes', 'replication_lag_bytes', 'replication_lag_s',
        'p99_ms', 'calls_per_s', 'replication_rtt_ms'];
    counts constant text[] := ARRAY['connections', 'notify_backlog_bytes',
        'replication_lag_bytes'];
    blocks constant text[] := ARRAY['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    keys text[];
    use_keys text[];
    label text;
    interval_s float8;
    points float8[];
    nbuckets integer;
    lo float8;
    hi float8;
    last_value float8;
    nsamples integer;
    span interval;
    digits integer;
    chart text := '';
BEGIN
    IF sparkline.metric IS NULL OR NOT sparkline.metric = ANY (metrics) THEN
        RAISE EXCEPTION 'unknown history metric "%"', sparkline.metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid metrics: ' || array_to_string(metrics, ', ') || '.';
    END IF;
    IF sparkline.width IS NULL OR sparkline.width < 1 OR sparkline.width > 1000 THEN
        RAISE EXCEPTION 'sparkline width must be between 1 and 1000, not %', sparkline.width
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'One character per sample interval, averaged when the history holds more than the width.';
    END IF;

    -- no temporary table: this must work on a hot standby too
    SELECT array_agg(DISTINCT h.key ORDER BY h.key) INTO keys
    FROM coder_health.history h
    WHERE h.metric = sparkline.metric AND h.key IS NOT NULL;
    IF sparkline.key IS NOT NULL AND NOT sparkline.key = ANY (coalesce(keys, '{}')) THEN
        RAISE EXCEPTION 'no history of "%" for key "%"', sparkline.metric, sparkline.key
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN keys IS NULL THEN 'There is no history of this metric with a key yet.'
                              ELSE 'Keys with history: ' || array_to_string(keys, ', ') || '.' END;
    END IF;

    -- Without a key: per database metrics are Coder's database (this one),
    -- connections are summed over the Coder Servers (coder_servers.kind),
    -- the other metrics are the worst key.  Falls back to every key when
    -- the default has no history.
    IF sparkline.key IS NOT NULL THEN
        use_keys := ARRAY[sparkline.key];
        label := sparkline.metric || '[' || sparkline.key || ']';
    ELSIF sparkline.metric IN ('p99_ms', 'calls_per_s')
          AND current_database()::text = ANY (coalesce(keys, '{}')) THEN
        use_keys := ARRAY[current_database()::text];
        label := sparkline.metric || '[' || current_database() || ']';
    ELSIF sparkline.metric = 'connections' THEN
        SELECT array_agg(s.client_addr) INTO use_keys
        FROM coder_health.coder_servers s
        WHERE s.kind = 'coder_server' AND s.client_addr = ANY (coalesce(keys, '{}'));
        label := CASE WHEN use_keys IS NULL THEN 'connections[all clients]'
                      ELSE 'connections[Coder Servers]' END;
        use_keys := coalesce(use_keys, keys);
    ELSE
        use_keys := keys;
        label := sparkline.metric;
    END IF;

    SELECT greatest(s.setting::float8, 1) INTO interval_s
    FROM pg_settings s WHERE s.name = 'coder_health.history_interval';

    -- one value per sample: the key's, or across keys the sum (connections,
    -- calls/s) or the worst (everything else).  Each sample takes as many
    -- positions as sample intervals passed since the one before, so that an
    -- idle period or a stopped collector shows as a gap; positions are then
    -- averaged down to width characters (counts: their maximum).
    WITH per_sample AS (
        SELECT r.ts,
               CASE WHEN sparkline.metric IN ('connections', 'calls_per_s')
                    THEN sum(r.value) ELSE max(r.value) END AS value
        FROM coder_health.history r
        WHERE r.metric = sparkline.metric
          AND (use_keys IS NULL OR r.key = ANY (use_keys))
        GROUP BY r.ts
    ), steps AS (
        SELECT p.ts, p.value,
               CASE WHEN lag(p.ts) OVER (ORDER BY p.ts) IS NULL THEN 0
                    ELSE greatest(1, round(extract(epoch FROM p.ts - lag(p.ts) OVER (ORDER BY p.ts))
                                           / interval_s)::integer) END AS d
        FROM per_sample p
    ), pos AS (
        SELECT st.ts, st.value, sum(st.d) OVER (ORDER BY st.ts) AS p FROM steps st
    ), total AS (
        SELECT max(pos.p) + 1 AS n FROM pos
    )
    SELECT (SELECT least(sparkline.width, t.n) FROM total t),
           (SELECT array_agg(b.v ORDER BY b.b) FROM (
                SELECT floor(pos.p * least(sparkline.width, t.n) / t.n)::integer AS b,
                       CASE WHEN sparkline.metric = ANY (counts) THEN max(pos.value)
                            ELSE avg(pos.value) END AS v
                FROM pos CROSS JOIN total t GROUP BY 1) b),
           (SELECT array_agg(b.b ORDER BY b.b) FROM (
                SELECT DISTINCT floor(pos.p * least(sparkline.width, t.n) / t.n)::integer AS b
                FROM pos CROSS JOIN total t) b),
           (SELECT min(p.value) FROM per_sample p), (SELECT max(p.value) FROM per_sample p),
           (SELECT p.value FROM per_sample p ORDER BY p.ts DESC LIMIT 1),
           (SELECT count(*) FROM per_sample),
           (SELECT max(p.ts) - min(p.ts) FROM per_sample p)
    INTO nbuckets, points, keys, lo, hi, last_value, nsamples, span;

    IF nsamples = 0 OR points IS NULL THEN
        RETURN NULL;
    END IF;
    -- keys now holds the non-empty bucket numbers, points their values
    FOR i IN 0 .. nbuckets - 1 LOOP
        IF NOT i::text = ANY (keys) THEN
            chart := chart || ' ';
        ELSE
            chart := chart || blocks[CASE WHEN hi = lo THEN CASE WHEN hi = 0 THEN 1 ELSE 4 END
                                          ELSE 1 + least(7, floor((points[array_position(keys, i::text)] - lo)
                                                                  / (hi - lo) * 8))::integer END];
        END IF;
    END LOOP;
    -- counts are whole numbers; everything else 3 decimals
    digits := CASE WHEN sparkline.metric = ANY (counts) THEN 0 ELSE 3 END;
    RETURN format('%s  %s: last %s, min %s, max %s (%s samples over %s)',
                  chart, label,
                  trim_scale(round(last_value::numeric, digits)),
                  trim_scale(round(lo::numeric, digits)), trim_scale(round(hi::numeric, digits)),
                  nsamples, date_trunc('second', span));
END
$$;

COMMENT ON FUNCTION coder_health.sparkline(text, text, integer) IS
  'One-line chart (▁..█, blank where no sample was taken) of a history metric for one key; without a key Coder''s database (p99_ms, calls_per_s), the Coder Servers summed (connections) or the worst key; min, max and last of the samples';

GRANT SELECT ON coder_health.health TO pg_monitor;

-- ---------------------------------------------------------------------------
-- sql/install/70_summary.sql: the verdict first (#21)

-- prefix || body cut at spaces into lines of at most width characters,
-- the lines after the first indented by indent; at most max_lines lines
-- (the last one ends with "..." when the text goes on).
CREATE FUNCTION coder_health.summary_wrap(prefix text, body text, indent text,
                                         width integer, max_lines integer)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lines text[] := '{}';
    rest text := regexp_replace(coalesce(body, ''), '\s+', ' ', 'g');
    lead text := coalesce(prefix, '');
    room integer;
    cut integer;
BEGIN
    LOOP
        room := width - length(lead);
        IF length(rest) <= room THEN
            lines := lines || (lead || rest);
            EXIT;
        END IF;
        IF coalesce(array_length(lines, 1), 0) + 1 >= max_lines THEN
            lines := lines || (lead || left(rest, room - 3) || '...');
            EXIT;
        END IF;
        -- the last space that leaves the line within width
        cut := room + 1 - coalesce(nullif(strpos(reverse(left(rest, room + 1)), ' '), 0), room + 2);
        IF cut <= 0 THEN
            cut := room;        -- one word longer than a line: cut it
        END IF;
        lines := lines || (lead || rtrim(left(rest, cut)));
        rest := ltrim(substr(rest, cut + 1));
        lead := indent;
    END LOOP;
    RETURN lines;
END
$$;

COMMENT ON FUNCTION coder_health.summary_wrap(text, text, text, integer, integer) IS
  'prefix || body cut at spaces into at most max_lines lines of at most width characters (coder_health.summary)';

-- The lines of the summary, rendered from the rows of the views it reads,
-- given as JSON (one object per row, keys are the views' column names), so
-- that a test can render a known state: checks (health), queries
-- (query_latency, Coder's database, last 5 minutes), servers
-- (coder_servers), queue (notify_queue, one object), replication.  At most
-- 22 lines of at most 78 characters: with psql's header, one 80 x 24 screen.
CREATE FUNCTION coder_health.summary_render(checks jsonb, queries jsonb,
                                           servers jsonb, queue jsonb,
                                           replication jsonb, datname text)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    width constant integer := 78;
    max_lines constant integer := 22;
    failing text[] := '{}';
    tail text[] := '{}';
    lines text[];
    c jsonb;
    n_crit integer := 0;
    n_warn integer := 0;
    n_ok integer := 0;
    n_unknown integer := 0;
    unknowns text[] := '{}';
    verdict text;
    verdict_lines integer;
    room integer;
    nfail integer;
    nshown integer := 0;
    others integer := 0;
    stopped integer := 0;
    servers_at integer;
    n integer;
    usage_pct float8;
    flags text;
    ms constant text := 'FM999999990.000';
    -- a p99 over a few calls is just the slowest call: the same minimum
    -- volume as the health checks (coder_health.health_min_statements)
    ulist text;
    more text;
    stopped_names text[] := '{}';
    detail text;
    rest text;
    m text;
    p integer;
    min_calls constant bigint := coalesce(
        nullif(current_setting('coder_health.health_min_statements', true), '')::bigint, 100);
BEGIN
    -- the verdict: the worst status, and how many checks have each
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(checks, '[]')) e LOOP
        CASE c->>'status'
            WHEN 'critical' THEN n_crit := n_crit + 1;
            WHEN 'warn' THEN n_warn := n_warn + 1;
            WHEN 'ok' THEN n_ok := n_ok + 1;
            ELSE n_unknown := n_unknown + 1;
                 unknowns := unknowns || coalesce(c->>'check_name', c->>'check');
        END CASE;
    END LOOP;
    verdict := CASE WHEN n_crit > 0 THEN 'CRITICAL' WHEN n_warn > 0 THEN 'WARNING'
                    WHEN n_ok > 0 THEN 'HEALTHY' ELSE 'UNKNOWN' END;
    -- the verdict line(s) are returned first, before anything else is built
    lines := coder_health.summary_wrap(
        verdict || '  database ' || datname || ': ',
        array_to_string(ARRAY[
            CASE WHEN n_crit > 0 THEN n_crit || ' critical' END,
            CASE WHEN n_warn > 0 THEN n_warn || ' warn' END,
            CASE WHEN n_unknown > 0 THEN n_unknown || ' unknown' END,
            n_ok || ' ok'], ', ') || ' (' || (n_crit + n_warn + n_ok + n_unknown) || ' checks)',
        '  ', width, 2);
    verdict_lines := array_length(lines, 1);
    RETURN QUERY SELECT unnest(lines);

    -- what follows the failing checks, built first so that they get the room
    -- that is left: the slowest Coder queries
    tail := tail || format('Slowest Coder queries with %s calls or more, p99 over the last 5 min:',
                           min_calls);
    n := 0;
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(queries, '[]')) e
             WHERE e->>'query_name' IS NOT NULL
               -- a few calls of a rare query do not make it the slowest
               AND (e->>'recent_calls')::bigint >= greatest(min_calls, 1)
             ORDER BY (e->>'recent_p99_ms')::float8 DESC NULLS LAST, e->>'query_name'
             LIMIT 3 LOOP
        tail := tail || format('  %-36s %11s ms %8s calls %5s err',
                               left(c->>'query_name', 36),
                               to_char((c->>'recent_p99_ms')::numeric, ms),
                               c->>'recent_calls', c->>'recent_errors');
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        tail := tail || '  none: no statement with an sqlc name and that many calls'::text;
    END IF;

    -- the Coder Servers (clients over TCP that are not unknown hosts)
    n := 0;
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(servers, '[]')) e
             ORDER BY e->>'coder_server' LOOP
        -- kind (coder_servers): a replicas row or sqlc-named statements make
        -- a Coder Server; without it, any TCP client not flagged unknown
        IF (CASE WHEN c ? 'kind' THEN c->>'kind' IS DISTINCT FROM 'coder_server'
                 ELSE c->>'client_addr' = 'local' OR (c->>'unknown')::boolean IS TRUE END) THEN
            others := others + 1;
            CONTINUE;
        END IF;
        IF (c->>'stopped')::boolean IS TRUE
           OR (coalesce((c->>'connections')::integer, 0) = 0
               AND (c->>'missing')::boolean IS NOT TRUE AND (c->>'stale')::boolean IS NOT TRUE) THEN
            stopped := stopped + 1;
            stopped_names := stopped_names || (c->>'coder_server');
            CONTINUE;
        END IF;
        n := n + 1;
        IF n > 4 THEN
            CONTINUE;
        END IF;
        flags := concat_ws(' ',
                     CASE WHEN (c->>'far')::boolean THEN 'FAR' END,
                     CASE WHEN (c->>'stale')::boolean THEN 'STALE' END,
                     CASE WHEN (c->>'missing')::boolean THEN 'MISSING' END,
                     CASE WHEN (c->>'listen_lost')::boolean THEN 'NO-LISTEN' END);
        IF n = 1 THEN
            tail := tail || 'Coder Servers:'::text;
            servers_at := coalesce(array_length(tail, 1), 0);
        END IF;
        tail := tail || coder_health.summary_wrap(
            format('  %-10s ', c->>'coder_server') || coalesce(nullif(flags, '') || ': ', ''),
            CASE WHEN coalesce((c->>'connections')::integer, 0) = 0 THEN 'not connected'
                 ELSE format('%s conns (%s active), rtt %s ms, p99 %s ms',
                             c->>'connections', c->>'active',
                             coalesce(to_char((c->>'rtt_ms')::numeric, ms), '?'),
                             coalesce(to_char((c->>'p99_ms')::numeric, ms), '?')) END,
            '    ', width, 2);
    END LOOP;
    IF n > 0 AND (others > 0 OR stopped > 0) THEN
        tail[servers_at] := 'Coder Servers (' || concat_ws(', ',
            CASE WHEN stopped > 0 THEN stopped || ' stopped or gone' END,
            CASE WHEN others > 0 THEN others || ' other clients' END) || ' not shown):';
    END IF;
    IF n = 0 THEN
        -- every Coder Server stopped: say so, by name (at most 4)
        tail := tail || coder_health.summary_wrap('Coder Servers: ', 'none connected'
            || CASE WHEN stopped > 0
                    THEN '; ' || stopped || ' stopped or gone: '
                         || array_to_string(stopped_names[1:4], ', ')
                         || CASE WHEN stopped > 4 THEN ', +' || (stopped - 4) || ' more' ELSE '' END
                    ELSE '' END
            || CASE WHEN others > 0 THEN ' (' || others || ' other clients)' ELSE '' END,
            '  ', width, 2);
    ELSIF n > 4 THEN
        tail := tail || format('  ... and %s more Coder Servers: SELECT * FROM coder_health.coder_servers', n - 4);
    END IF;

    -- the NOTIFY queue
    IF queue IS NULL THEN
        tail := tail || 'NOTIFY queue: not read'::text;
    ELSE
        usage_pct := coalesce((queue->>'usage_pct')::float8, (queue->>'usage')::float8 * 100);
        tail := tail || coder_health.summary_wrap('NOTIFY queue: ',
            format('%s %% used (%s), %s notifications/s, %s listeners%s',
                   to_char(usage_pct, 'FM990.000'),
                   pg_size_pretty((queue->>'backlog_bytes')::bigint),
                   to_char(coalesce((queue->>'notifications_per_s')::numeric, 0), 'FM999999990.0'),
                   coalesce(queue->>'listeners', '0'),
                   CASE WHEN coalesce((queue->>'stalled_listeners')::integer, 0) > 0
                        THEN format(', %s stalled (slowest: pid %s, %s behind)',
                                    queue->>'stalled_listeners', coalesce(queue->>'slowest_listener_pid', '?'),
                                    coalesce(pg_size_pretty((queue->>'slowest_listener_backlog_bytes')::bigint), '?'))
                        ELSE ', none stalled' END),
            '  ', width, 2);
    END IF;

    -- the standby: each WAL sender (primary), or this server's receiver
    n := 0;
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(replication, '[]')) e
             ORDER BY e->>'role', e->>'application_name' LOOP
        n := n + 1;
        IF n > 2 THEN
            CONTINUE;
        END IF;
        IF c->>'role' = 'standby' THEN
            tail := tail || coder_health.summary_wrap('This server is a standby: ',
                format('receiver %s from %s, replay %s s behind',
                       coalesce(c->>'receiver_status', 'not running'),
                       coalesce(c->>'sender_host', '?'),
                       coalesce(to_char((c->>'replay_delay_s')::numeric, ms), '?')),
                '  ', width, 2);
        ELSE
            tail := tail || coder_health.summary_wrap(
                format('Standby %s (%s): ',
                       coalesce(c->>'application_name', c->>'slot_name', 'pid ' || (c->>'pid')),
                       coalesce(c->>'client_addr', 'local')),
                format('%s, lag %s / %s s%s',
                       coalesce(c->>'state', '?'),
                       pg_size_pretty((c->>'replay_lag_bytes')::bigint),
                       coalesce(to_char((c->>'replay_lag_s')::numeric, ms), '?'),
                       coalesce(', rtt ' || to_char((c->>'rtt_ms')::numeric, ms) || ' ms', '')),
                '  ', width, 2);
        END IF;
    END LOOP;
    IF n = 0 THEN
        tail := tail || 'Standby: none connected'::text;
    ELSIF n > 2 THEN
        tail := tail || format('  ... and %s more: SELECT * FROM coder_health.replication', n - 2);
    END IF;

    -- each failing check with its culprit (the check's detail), worst
    -- first, in the room the rest leaves; then the checks without data
    room := max_lines - verdict_lines - coalesce(array_length(tail, 1), 0)
            - CASE WHEN n_unknown > 0 THEN 1 ELSE 0 END;
    nfail := n_crit + n_warn;
    FOR c IN SELECT e FROM jsonb_array_elements(coalesce(checks, '[]')) WITH ORDINALITY AS x(e, i)
             WHERE e->>'status' IN ('critical', 'warn')
             ORDER BY e->>'status' = 'critical' DESC, i LOOP
        -- one unit per quantity on this screen: the details' "N bytes"
        -- as pg_size_pretty, like the NOTIFY and standby lines
        detail := '';
        rest := c->>'detail';
        LOOP
            m := substring(rest from '[0-9]+ bytes');
            EXIT WHEN m IS NULL;
            p := strpos(rest, m);
            detail := detail || left(rest, p - 1) || pg_size_pretty(split_part(m, ' ', 1)::numeric);
            rest := substr(rest, p + length(m));
        END LOOP;
        detail := detail || rest;
        lines := coder_health.summary_wrap(
                     rpad(c->>'status', 9) || coalesce(c->>'check_name', c->>'check') || ': ',
                     detail, '         ', width,
                     -- keep one line for "... and N more" when some will not fit
                     least(3, room - coalesce(array_length(failing, 1), 0)
                              - CASE WHEN nshown + 1 < nfail THEN 1 ELSE 0 END));
        EXIT WHEN coalesce(array_length(lines, 1), 0) = 0
             OR coalesce(array_length(failing, 1), 0) + array_length(lines, 1)
                + CASE WHEN nshown + 1 < nfail THEN 1 ELSE 0 END > room;
        failing := failing || lines;
        nshown := nshown + 1;
    END LOOP;
    IF nshown < nfail THEN
        failing := failing || format('... and %s more failing checks: SELECT * FROM coder_health.health',
                                     nfail - nshown);
    END IF;
    IF n_unknown > 0 THEN
        -- whole names only: those that fit, then "+N more" for the rest
        ulist := 'unknown  (no data): ';
        FOR i IN 1 .. n_unknown LOOP
            more := CASE WHEN i < n_unknown THEN format(', +%s more', n_unknown - i) ELSE '' END;
            IF length(ulist || CASE WHEN i > 1 THEN ', ' ELSE '' END || unknowns[i] || more) > width THEN
                ulist := ulist || CASE WHEN i > 1 THEN ', ' ELSE '' END
                         || format('+%s more', n_unknown - i + 1);
                EXIT;
            END IF;
            ulist := ulist || CASE WHEN i > 1 THEN ', ' ELSE '' END || unknowns[i];
        END LOOP;
        failing := failing || ulist;
    END IF;

    RETURN QUERY SELECT unnest(failing || tail);
END
$$;

COMMENT ON FUNCTION coder_health.summary_render(jsonb, jsonb, jsonb, jsonb, jsonb, text) IS
  'The lines of coder_health.summary from given rows of health, query_latency, coder_servers, notify_queue and replication (as JSON)';

CREATE VIEW coder_health.summary AS
SELECT s.line AS summary
FROM coder_health.summary_render(
         (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(h)) FROM coder_health.health h),
         (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(q)) FROM coder_health.query_latency q
          WHERE q.datname = pg_catalog.current_database() AND q.recent_calls > 0),
         (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c)) FROM coder_health.coder_servers c),
         (SELECT pg_catalog.to_jsonb(n) FROM coder_health.notify_queue n),
         (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)) FROM coder_health.replication r),
         pg_catalog.current_database()) WITH ORDINALITY AS s(line, n)
ORDER BY s.n;

COMMENT ON VIEW coder_health.summary IS
  'One screen (at most 22 lines of 78 characters): the verdict, each failing check with its culprit, the slowest Coder queries by sqlc name, the Coder Servers, the NOTIFY queue and the standby';

REVOKE ALL ON FUNCTION coder_health.summary_wrap(text, text, text, integer, integer),
                       coder_health.summary_render(jsonb, jsonb, jsonb, jsonb, jsonb, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coder_health.summary_wrap(text, text, text, integer, integer),
                          coder_health.summary_render(jsonb, jsonb, jsonb, jsonb, jsonb, text)
    TO pg_monitor;
GRANT SELECT ON coder_health.summary TO pg_monitor;

-- coder_health.status: what a max_statements slot reserves (sketch chunks
-- and texts from shared pools since 0.4.0), as its last column
CREATE FUNCTION coder_health.statement_slot_bytes()
RETURNS bigint
AS 'MODULE_PATHNAME', 'coder_health_statement_slot_bytes'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION coder_health.statement_slot_bytes() IS
  'Shared memory reserved per coder_health.max_statements slot: the entry with its hash overhead and its share of the sketch and text pools';

CREATE OR REPLACE VIEW coder_health.status AS
SELECT e.extversion AS extension_version,
       s.library_version,
       s.shmem_reserved_bytes,
       s.shmem_used_bytes,
       s.collector_pid,
       s.collector_started,
       s.collector_last_run,
       round(extract(epoch FROM clock_timestamp() - s.collector_last_run)::numeric, 3)
           AS collector_last_run_age_s,
       s.collector_runs,
       s.collector_overruns,
       greatest(s.collector_starts - 1, 0) AS collector_restarts,
       s.collector_interval_ms,
       s.collector_last_cycle_ms,
       s.in_recovery,
       s.statements_tracked,
       s.max_statements,
       s.evictions,
       s.dropped_samples,
       coder_health.statement_slot_bytes() AS bytes_per_statement_slot
FROM coder_health.status_internal() s
LEFT JOIN pg_catalog.pg_extension e ON e.extname = 'coder_health';

COMMENT ON VIEW coder_health.status IS
  'coder_health itself: versions, shared memory, collector heartbeat, recovery state';
REVOKE ALL ON FUNCTION coder_health.statement_slot_bytes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coder_health.statement_slot_bytes() TO pg_monitor;
