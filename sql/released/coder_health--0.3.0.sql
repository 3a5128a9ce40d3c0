-- coder_health 0.3.0: health of the PostgreSQL behind Coder.
--
-- Everything lives in schema coder_health.  Read access is for superusers
-- and members of pg_monitor (grant it to others as you see fit); nothing is
-- granted to PUBLIC.  Every function pins its search_path or is written in C.

\echo Use "CREATE EXTENSION coder_health" to load this file. \quit

REVOKE ALL ON SCHEMA coder_health FROM PUBLIC;
GRANT USAGE ON SCHEMA coder_health TO pg_monitor;

-- ---------------------------------------------------------------------------
-- The extension itself
-- ---------------------------------------------------------------------------

CREATE FUNCTION coder_health.status_internal(
    OUT library_version text,
    OUT shmem_reserved_bytes bigint,
    OUT shmem_used_bytes bigint,
    OUT collector_pid integer,
    OUT collector_started timestamptz,
    OUT collector_last_run timestamptz,
    OUT collector_runs bigint,
    OUT collector_overruns bigint,
    OUT collector_starts bigint,
    OUT collector_interval_ms integer,
    OUT collector_last_cycle_ms float8,
    OUT in_recovery boolean,
    OUT statements_tracked bigint,
    OUT max_statements integer,
    OUT evictions bigint,
    OUT dropped_samples bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'coder_health_status'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION coder_health.status_internal() IS
  'Raw state of the coder_health library and its collector; use the view coder_health.status';

CREATE VIEW coder_health.status AS
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
       s.dropped_samples
FROM coder_health.status_internal() s
LEFT JOIN pg_catalog.pg_extension e ON e.extname = 'coder_health';

COMMENT ON VIEW coder_health.status IS
  'coder_health itself: versions, shared memory, collector heartbeat, recovery state';

CREATE VIEW coder_health.settings AS
SELECT s.name,
       s.setting AS value,
       s.unit,
       s.boot_val AS default_value,
       s.min_val,
       s.max_val,
       s.context,
       s.source,
       s.short_desc AS description
FROM pg_catalog.pg_settings s
WHERE s.name LIKE 'coder\_health.%'
ORDER BY s.name;

COMMENT ON VIEW coder_health.settings IS
  'Every coder_health.* setting with its value, unit, range and where it was set';

GRANT EXECUTE ON FUNCTION coder_health.status_internal() TO pg_monitor;
GRANT SELECT ON coder_health.status, coder_health.settings TO pg_monitor;
-- ---------------------------------------------------------------------------
-- Statement latency
-- ---------------------------------------------------------------------------

CREATE FUNCTION coder_health.statement_latency_internal(
    OUT dbid oid, OUT userid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query_name text,
    OUT calls bigint, OUT errors bigint, OUT total_ms float8, OUT mean_ms float8,
    OUT min_ms float8, OUT p50_ms float8, OUT p90_ms float8, OUT p95_ms float8,
    OUT p99_ms float8, OUT p999_ms float8, OUT max_ms float8,
    OUT recent_calls bigint, OUT recent_errors bigint,
    OUT recent_p50_ms float8, OUT recent_p95_ms float8,
    OUT recent_p99_ms float8, OUT recent_max_ms float8,
    OUT first_seen timestamptz, OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_statement_latency'
LANGUAGE C STRICT VOLATILE;

-- Query texts come from pg_stat_statements when it is installed in this
-- database (with its own privilege rules); otherwise there are none.
CREATE FUNCTION coder_health.statement_texts(
    OUT dbid oid, OUT userid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pgss_schema name;
BEGIN
    SELECT n.nspname INTO pgss_schema
    FROM pg_catalog.pg_extension e
    JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_stat_statements';
    IF pgss_schema IS NULL THEN
        RETURN;
    END IF;
    BEGIN
        RETURN QUERY EXECUTE format(
            'SELECT s.dbid, s.userid, s.queryid, s.toplevel, s.query FROM %I.pg_stat_statements(true) s',
            pgss_schema);
    EXCEPTION WHEN undefined_column THEN
        -- pg_stat_statements before 1.9 (PostgreSQL 13) has no toplevel:
        -- one entry covers top-level and nested executions (NULL matches both)
        RETURN QUERY EXECUTE format(
            'SELECT s.dbid, s.userid, s.queryid, NULL::boolean, s.query FROM %I.pg_stat_statements(true) s',
            pgss_schema);
    END;
EXCEPTION WHEN undefined_column OR undefined_function OR object_not_in_prerequisite_state THEN
    -- a pg_stat_statements of another shape, or one not preloaded
    RETURN;
END
$$;

-- Like pg_stat_activity and pg_stat_statements: without pg_read_all_stats a
-- role sees every statement's numbers but only its own statements' identity.
CREATE VIEW coder_health.statement_latency AS
WITH viewer AS MATERIALIZED (
    SELECT (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) AS role,
           pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all
)
SELECT l.dbid, d.datname, l.userid, r.rolname,
       CASE WHEN v.sees_all OR l.userid = v.role THEN l.queryid END AS queryid,
       l.toplevel,
       l.query_name,
       CASE WHEN v.sees_all OR l.userid = v.role THEN t.query END AS query,
       l.calls, l.errors, l.total_ms, l.mean_ms, l.min_ms,
       l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms,
       l.recent_calls, l.recent_errors, l.recent_p50_ms, l.recent_p95_ms,
       l.recent_p99_ms, l.recent_max_ms,
       l.first_seen, l.last_seen
FROM coder_health.statement_latency_internal() l
CROSS JOIN viewer v
LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
LEFT JOIN pg_catalog.pg_roles r ON r.oid = l.userid
LEFT JOIN coder_health.statement_texts() t
       ON t.dbid = l.dbid AND t.userid = l.userid AND t.queryid = l.queryid
      AND (t.toplevel = l.toplevel OR t.toplevel IS NULL);

COMMENT ON VIEW coder_health.statement_latency IS
  'Latency percentiles per statement (database, role, queryid, toplevel): since reset and recent (last 5 to 6 minutes)';

CREATE FUNCTION coder_health.latency_internal(
    OUT scope text, OUT dbid oid, OUT client_addr text, OUT "window" text,
    OUT calls bigint, OUT errors bigint, OUT calls_per_s float8,
    OUT p50_ms float8, OUT p90_ms float8, OUT p95_ms float8, OUT p99_ms float8,
    OUT p999_ms float8, OUT max_ms float8, OUT span_s float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_latency'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW coder_health.latency AS
SELECT l.scope, d.datname, l.client_addr, l."window",
       l.calls, l.errors, round(l.calls_per_s::numeric, 2) AS calls_per_s,
       l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms,
       round(l.span_s::numeric, 1) AS span_s
FROM coder_health.latency_internal() l
LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
ORDER BY l.scope DESC, d.datname, l.client_addr,
         array_position(ARRAY['1 min', '5 min', '15 min', 'total'], l."window");

COMMENT ON VIEW coder_health.latency IS
  'Latency percentiles per database and per client address (Coder Server), over 1, 5 and 15 minute windows and since reset';

CREATE FUNCTION coder_health.statement_quantile(queryid bigint, q float8,
                                               recent boolean DEFAULT false)
RETURNS float8
AS 'MODULE_PATHNAME', 'coder_health_statement_quantile'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.statement_quantile(bigint, float8, boolean) IS
  'Quantile q (0..1) in ms of a statement, all its entries merged; recent = last 5 to 6 minutes';

CREATE FUNCTION coder_health.query_id(statement text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'coder_health_query_id'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.query_id(text) IS
  'The queryid under which a statement (one, with its text as sent) is kept: core''s query id where PostgreSQL computes one, else a hash of its normalized text';

CREATE FUNCTION coder_health.latency_chart(queryid bigint,
    OUT range text, OUT lower_ms float8, OUT upper_ms float8,
    OUT count bigint, OUT bar text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_latency_chart'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.latency_chart(bigint) IS
  'Text bars of a statement''s latency distribution, one line per 1-2-5 range';

CREATE FUNCTION coder_health.latency_buckets_internal(
    OUT scope text, OUT dbid oid, OUT client_addr text, OUT queryid bigint,
    OUT le float8[], OUT bucket bigint[], OUT sum float8, OUT count bigint,
    OUT query_name text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_latency_buckets'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW coder_health.latency_buckets AS
SELECT b.scope, d.datname, b.client_addr, b.queryid::text AS queryid,
       b.query_name, b.le, b.bucket, b.sum, b.count
FROM coder_health.latency_buckets_internal() b
LEFT JOIN pg_catalog.pg_database d ON d.oid = b.dbid;

COMMENT ON VIEW coder_health.latency_buckets IS
  'Cumulative latency histograms (le in seconds, 100 us .. 60 s) per database, client, top statements and top sqlc query names, in postgres_exporter HISTOGRAM shape';

CREATE FUNCTION coder_health.query_latency_internal(
    OUT dbid oid, OUT query_name text,
    OUT calls bigint, OUT errors bigint, OUT total_ms float8, OUT mean_ms float8,
    OUT min_ms float8, OUT p50_ms float8, OUT p90_ms float8, OUT p95_ms float8,
    OUT p99_ms float8, OUT p999_ms float8, OUT max_ms float8,
    OUT recent_calls bigint, OUT recent_errors bigint,
    OUT recent_p50_ms float8, OUT recent_p99_ms float8, OUT queryids integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_query_latency'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW coder_health.query_latency AS
SELECT d.datname, q.query_name, q.calls, q.errors, q.total_ms, q.mean_ms,
       q.min_ms, q.p50_ms, q.p90_ms, q.p95_ms, q.p99_ms, q.p999_ms, q.max_ms,
       q.recent_calls, q.recent_errors, q.recent_p50_ms, q.recent_p99_ms,
       q.queryids
FROM coder_health.query_latency_internal() q
LEFT JOIN pg_catalog.pg_database d ON d.oid = q.dbid;

COMMENT ON VIEW coder_health.query_latency IS
  'Latency per sqlc query name ("-- name: X :one"), all statements with that name merged: compare with coderd_db_query_latencies_seconds{query=...}';

CREATE FUNCTION coder_health.flush()
RETURNS void
AS 'MODULE_PATHNAME', 'coder_health_flush'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.flush() IS
  'Fold this session''s finished statements into the shared statistics now (otherwise within about a second)';

CREATE FUNCTION coder_health.reset()
RETURNS void
AS 'MODULE_PATHNAME', 'coder_health_reset'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION coder_health.reset_statement(queryid bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'coder_health_reset_statement'
LANGUAGE C STRICT VOLATILE;

GRANT EXECUTE ON FUNCTION
    coder_health.statement_latency_internal(),
    coder_health.statement_texts(),
    coder_health.latency_internal(),
    coder_health.statement_quantile(bigint, float8, boolean),
    coder_health.query_id(text),
    coder_health.latency_chart(bigint),
    coder_health.latency_buckets_internal(),
    coder_health.query_latency_internal(),
    coder_health.flush()
  TO pg_monitor;
GRANT SELECT ON coder_health.statement_latency, coder_health.latency,
    coder_health.latency_buckets, coder_health.query_latency
  TO pg_monitor;
-- reset() and reset_statement() stay superuser-only (grantable).
-- ---------------------------------------------------------------------------
-- LISTEN/NOTIFY health
-- ---------------------------------------------------------------------------

-- pg_notify() as coder_health counts it.  The planner swaps calls of
-- pg_catalog.pg_notify(text, text) for this function, which calls
-- PostgreSQL's own pg_notify (same checks, same errors) and then records the
-- notification; it is only ever reached through that swap.  It lives in a
-- schema of its own because it must stay executable by every role that may
-- call pg_notify (it checks EXECUTE on pg_notify itself), while nothing in
-- schema coder_health is for PUBLIC.
CREATE SCHEMA coder_health_notify;
REVOKE ALL ON SCHEMA coder_health_notify FROM PUBLIC;

CREATE FUNCTION coder_health_notify.pg_notify(text, text)
RETURNS void
AS 'MODULE_PATHNAME', 'coder_health_pg_notify'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION coder_health_notify.pg_notify(text, text) IS
  'pg_notify as counted by coder_health: the planner calls this instead of pg_catalog.pg_notify';

GRANT EXECUTE ON FUNCTION coder_health_notify.pg_notify(text, text) TO PUBLIC;

CREATE FUNCTION coder_health.notify_queue_internal(
    OUT usage float8, OUT backlog_bytes bigint, OUT max_bytes bigint,
    OUT listeners integer, OUT slowest_listener_pid integer,
    OUT slowest_listener_backlog_bytes bigint,
    OUT notifications bigint, OUT notify_bytes bigint,
    OUT notifications_per_s float8,
    OUT commit_p50_ms float8, OUT commit_p99_ms float8,
    OUT supported boolean, OUT reset_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_notify_queue'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION coder_health.notify_listeners_internal(
    OUT pid integer, OUT dbid oid, OUT channels integer,
    OUT channel_families text[], OUT backlog_bytes bigint, OUT not_reading_s float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_notify_listeners'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION coder_health.notify_stall_reason(backlog_bytes bigint,
                                                xact_age_s float8,
                                                not_reading_s float8)
RETURNS text
AS 'MODULE_PATHNAME', 'coder_health_notify_stall_reason'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION coder_health.notify_stall_reason(bigint, float8, float8) IS
  'Why a listener counts as stalled under coder_health.notify_stall_bytes / notify_stall_seconds, or NULL';

-- Session details (client address, state, transaction age) come from
-- pg_stat_activity, so they follow its visibility rules.
CREATE VIEW coder_health.notify_listeners AS
SELECT l.pid, d.datname, a.client_addr, l.channels, l.channel_families,
       l.backlog_bytes, a.state,
       round(extract(epoch FROM clock_timestamp() - a.xact_start)::numeric, 3) AS xact_age_s,
       round(l.not_reading_s::numeric, 3) AS not_reading_s,
       s.reason IS NOT NULL AS stalled,
       s.reason AS stalled_reason
FROM coder_health.notify_listeners_internal() l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
CROSS JOIN LATERAL (
    SELECT coder_health.notify_stall_reason(
               l.backlog_bytes,
               extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
               l.not_reading_s) AS reason
) s;

COMMENT ON VIEW coder_health.notify_listeners IS
  'Every LISTENing backend: how far behind the queue head it is (backlog_bytes), and whether it is stalled';

CREATE VIEW coder_health.notify_queue AS
SELECT q.usage, q.backlog_bytes, q.max_bytes, q.listeners,
       (SELECT count(*) FROM coder_health.notify_listeners l WHERE l.stalled)::integer
           AS stalled_listeners,
       q.slowest_listener_pid, q.slowest_listener_backlog_bytes,
       q.notifications, q.notify_bytes, q.notifications_per_s,
       q.commit_p50_ms, q.commit_p99_ms, q.supported, q.reset_at
FROM coder_health.notify_queue_internal() q;

COMMENT ON VIEW coder_health.notify_queue IS
  'The NOTIFY queue: usage (as pg_notification_queue_usage), backlog, slowest listener, committed notifications and the commit time of notifying transactions (last minute)';

CREATE FUNCTION coder_health.notify_channels_internal(
    OUT channel_family text, OUT distinct_channels bigint, OUT listeners integer,
    OUT notifications bigint, OUT bytes bigint, OUT max_payload_bytes bigint,
    OUT per_s float8, OUT last_notify_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_notify_channels'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW coder_health.notify_channels AS
SELECT c.channel_family, c.distinct_channels, c.listeners, c.notifications,
       c.bytes, c.max_payload_bytes, c.per_s, c.last_notify_at
FROM coder_health.notify_channels_internal() c;

COMMENT ON VIEW coder_health.notify_channels IS
  'Committed notifications and listeners per channel family (UUIDs and digit runs shown as *), bounded by coder_health.max_channel_families';

CREATE FUNCTION coder_health.notify_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'coder_health_notify_reset'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.notify_reset() IS
  'Zero the LISTEN/NOTIFY counters and commit times (families and listeners stay)';

GRANT EXECUTE ON FUNCTION coder_health.notify_queue_internal(),
                          coder_health.notify_listeners_internal(),
                          coder_health.notify_channels_internal(),
                          coder_health.notify_stall_reason(bigint, float8, float8)
    TO pg_monitor;
GRANT SELECT ON coder_health.notify_queue, coder_health.notify_listeners,
                coder_health.notify_channels TO pg_monitor;
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

-- Coder's own record of its replicas (public.replicas), when there is one
-- of the expected shape that this role may read.  Never raises: anything
-- unexpected gives no rows.  The last row, with replica_id NULL and
-- source_ok true, says the table was read; without it nothing is known.
CREATE FUNCTION coder_health.coder_replicas(
    OUT replica_id text, OUT hostname text, OUT relay_host text,
    OUT region_id integer, OUT version text, OUT heartbeat_age_s float8,
    OUT replica_db_latency_ms float8, OUT stopped boolean,
    OUT source_ok boolean)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel oid := pg_catalog.to_regclass('public.replicas');
    has_stopped boolean;
BEGIN
    IF rel IS NULL OR NOT pg_catalog.has_table_privilege(rel, 'SELECT') THEN
        RETURN;
    END IF;
    IF (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname IN ('id', 'hostname', 'relay_address', 'region_id',
                            'version', 'database_latency', 'updated_at')) <> 7 THEN
        RETURN;
    END IF;
    has_stopped := EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = rel AND a.attname = 'stopped_at'
                             AND NOT a.attisdropped);
    -- relay_address is a URL such as http://10.1.2.3:8080 or http://[fd00::1]:8080
    RETURN QUERY EXECUTE pg_catalog.format($q$
        SELECT r.id::text, r.hostname::text,
               pg_catalog.lower(pg_catalog.btrim(pg_catalog.substring(r.relay_address::text,
                   '^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(\[[^]]*\]|[^/:]+)'), '[]')),
               r.region_id::integer, r.version::text,
               pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - r.updated_at::timestamptz)::float8,
               r.database_latency::float8 / 1000.0,
               %s,
               NULL::boolean
        FROM %s r$q$,
        CASE WHEN has_stopped THEN 'r.stopped_at IS NOT NULL' ELSE 'false' END,
        rel::regclass);
    RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::integer,
        NULL::text, NULL::float8, NULL::float8, NULL::boolean, true;
EXCEPTION WHEN OTHERS THEN
    -- another shape (column types), a privilege on some column missing,
    -- a policy error: the view works from addresses alone
    RETURN;
END
$$;

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
       END AS unknown
FROM matched m
CROSS JOIN source src
CROSS JOIN limits lim
LEFT JOIN latency lat ON lat.client_addr = m.client_addr
ORDER BY 1, 2;

COMMENT ON VIEW coder_health.coder_servers IS
  'One row per client host (Coder Server): connections by state, lock waits, LISTEN, kernel RTT, 15-minute peak, p99, matched to Coder''s replicas table; flags far, stale, missing, unknown';

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
-- ---------------------------------------------------------------------------
-- Replication lag (primary and standby) and replication slots
-- ---------------------------------------------------------------------------

CREATE FUNCTION coder_health.replication_internal(
    OUT role text, OUT pid integer, OUT slot_name text, OUT state text,
    OUT sent_lag_bytes bigint, OUT write_lag_bytes bigint,
    OUT flush_lag_bytes bigint, OUT replay_lag_bytes bigint,
    OUT write_lag_s float8, OUT flush_lag_s float8, OUT replay_lag_s float8,
    OUT reply_age_s float8,
    OUT receiver_status text, OUT sender_host text, OUT sender_port integer,
    OUT receive_lag_bytes bigint, OUT replay_delay_s float8,
    OUT last_msg_age_s float8, OUT replay_paused boolean,
    OUT peak_replay_lag_bytes_15min bigint, OUT peak_replay_lag_s_15min float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_replication'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.replication_internal() IS
  'Raw replication lag rows; use the view coder_health.replication';

-- Who the standby is (application_name, client address, sync state) comes
-- from pg_stat_replication, with its own visibility rules.
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
       r.write_lag_s,
       r.flush_lag_s,
       r.replay_lag_s,
       r.reply_age_s,
       r.receiver_status,
       r.sender_host,
       r.sender_port,
       r.receive_lag_bytes,
       r.replay_delay_s,
       r.last_msg_age_s,
       r.replay_paused,
       r.peak_replay_lag_bytes_15min,
       r.peak_replay_lag_s_15min
FROM coder_health.replication_internal() r
LEFT JOIN pg_catalog.pg_stat_replication a
       ON r.role = 'primary' AND a.pid = r.pid;

COMMENT ON VIEW coder_health.replication IS
  'Replication lag: one row per WAL sender (role primary) and, on a standby, one row for its own receiver and replay (role standby); lag 0 when caught up, peaks over 15 minutes';

CREATE FUNCTION coder_health.replication_slots_internal(
    OUT slot_name text, OUT slot_type text, OUT datoid oid,
    OUT active boolean, OUT active_pid integer,
    OUT retained_wal_bytes bigint, OUT wal_status text,
    OUT safe_wal_bytes bigint, OUT inactive_s float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_replication_slots'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.replication_slots_internal() IS
  'Raw replication slot rows; use the view coder_health.replication_slots';

CREATE VIEW coder_health.replication_slots AS
SELECT s.slot_name,
       s.slot_type,
       d.datname AS database,
       s.active,
       s.active_pid,
       s.retained_wal_bytes,
       s.wal_status,
       s.safe_wal_bytes,
       s.inactive_s
FROM coder_health.replication_slots_internal() s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.datoid;

COMMENT ON VIEW coder_health.replication_slots IS
  'Replication slots: WAL each one holds back, how much more may be written before it is lost, and how long it has been inactive';

GRANT EXECUTE ON FUNCTION coder_health.replication_internal(),
                          coder_health.replication_slots_internal() TO pg_monitor;
GRANT SELECT ON coder_health.replication, coder_health.replication_slots TO pg_monitor;
-- ---------------------------------------------------------------------------
-- One health verdict, and recent history kept in shared memory
-- ---------------------------------------------------------------------------

-- ok / warn / critical from a value and two thresholds; unknown without a
-- value.  lower_is_worse for figures such as free connections.
CREATE FUNCTION coder_health.health_status(value float8, warn float8,
                                          critical float8,
                                          lower_is_worse boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN $1 IS NULL THEN 'unknown'
        WHEN NOT $4 AND $1 >= $3 THEN 'critical'
        WHEN NOT $4 AND $1 >= $2 THEN 'warn'
        WHEN $4 AND $1 <= $3 THEN 'critical'
        WHEN $4 AND $1 <= $2 THEN 'warn'
        ELSE 'ok'
    END
$$;

COMMENT ON FUNCTION coder_health.health_status(float8, float8, float8, boolean) IS
  'ok, warn or critical for a value against its thresholds (>=, or <= when lower_is_worse); unknown when the value is NULL';

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
           (j->>'coder_pool_size')::float8 AS pool_size
    FROM th
), db AS MATERIALIZED (
    SELECT l.datname, l.calls, l.errors, l.p99_ms
    FROM coder_health.latency l
    WHERE l.scope = 'database' AND l."window" = '5 min' AND l.calls > 0
      -- Coder's database is the one the extension is used from; other
      -- databases only when it had no statements (a few slow maintenance
      -- statements elsewhere must not speak for Coder)
      AND (l.datname = pg_catalog.current_database()
           OR NOT EXISTS (SELECT 1 FROM coder_health.latency c
                          WHERE c.scope = 'database' AND c."window" = '5 min'
                            AND c.calls > 0 AND c.datname = pg_catalog.current_database()))
), stmt AS MATERIALIZED (
    SELECT d.datname,
           coalesce(s.query_name, 'queryid ' || s.queryid) AS statement,
           s.recent_calls, s.recent_errors, s.recent_p99_ms
    FROM coder_health.statement_latency_internal() s
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
    WHERE s.recent_calls > 0
), servers AS MATERIALIZED (
    SELECT * FROM coder_health.coder_servers
), listeners AS MATERIALIZED (
    SELECT * FROM coder_health.notify_listeners
), queue AS MATERIALIZED (
    SELECT q.usage, q.backlog_bytes, q.slowest_listener_pid,
           q.slowest_listener_backlog_bytes, q.supported
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
), checks (ord, "check", value, unit, warn, crit, lower_is_worse, forced, detail) AS (
    -- 1. statement p99, worst database, last 5 minutes
    SELECT 1, 'statement_p99', w.p99_ms, 'ms', t.p99_warn, t.p99_crit, false,
           CASE WHEN w.datname IS NULL AND NOT EXISTS (SELECT 1 FROM db) THEN 'unknown' END,
           CASE WHEN w.datname IS NULL THEN 'no statements in the last 5 minutes'
                ELSE pg_catalog.format('database %s: p99 %s ms over %s statements; slowest: %s (p99 %s ms)',
                        w.datname, w.p99_ms, w.calls,
                        coalesce((SELECT x.statement FROM stmt x WHERE x.datname = w.datname
                                  ORDER BY x.recent_p99_ms DESC NULLS LAST LIMIT 1), '?'),
                        (SELECT x.recent_p99_ms FROM stmt x WHERE x.datname = w.datname
                         ORDER BY x.recent_p99_ms DESC NULLS LAST LIMIT 1))
           END
    FROM t LEFT JOIN (SELECT * FROM db ORDER BY p99_ms DESC NULLS LAST LIMIT 1) w ON true
    UNION ALL
    -- 2. failed statements, worst database, last 5 minutes
    SELECT 2, 'error_rate', round((100.0 * w.errors / w.calls)::numeric, 3)::float8, '%',
           t.err_warn, t.err_crit, false, NULL,
           CASE WHEN w.datname IS NULL THEN 'no statements in the last 5 minutes'
                ELSE pg_catalog.format('database %s: %s of %s statements failed%s',
                        w.datname, w.errors, w.calls,
                        coalesce('; most errors: ' ||
                                 (SELECT x.statement || ' (' || x.recent_errors || ')'
                                  FROM stmt x WHERE x.datname = w.datname AND x.recent_errors > 0
                                  ORDER BY x.recent_errors DESC LIMIT 1), ''))
           END
    FROM t LEFT JOIN (SELECT * FROM db ORDER BY errors::float8 / calls DESC LIMIT 1) w ON true
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
    --    stale heartbeat is a warning
    SELECT 8, 'coder_replicas',
           CASE WHEN rk.known THEN (SELECT pg_catalog.count(*) FROM servers s WHERE s.stale OR s.missing)::float8 END,
           'replicas', 1, 1, false,
           CASE WHEN NOT rk.known THEN 'unknown'
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
                              pg_catalog.format('%s replicas, all connected with a fresh heartbeat',
                                  (SELECT pg_catalog.count(*) FROM servers s WHERE s.replica_id IS NOT NULL)))
           END
    FROM replicas_known rk
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
)
SELECT c."check",
       coalesce(c.forced, coder_health.health_status(c.value, c.warn, c.crit, c.lower_is_worse)) AS status,
       c.value, c.unit,
       c.warn AS warn_threshold,
       c.crit AS critical_threshold,
       c.detail
FROM checks c
ORDER BY c.ord;

COMMENT ON VIEW coder_health.health IS
  'One row per health check: status ok/warn/critical/unknown, value, thresholds (coder_health.health_* settings) and the culprit';

-- History: the collector's samples (see docs/health.md)
CREATE FUNCTION coder_health.history_internal(
    OUT ts timestamptz, OUT metric text, OUT key text, OUT value float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_history'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.history_internal() IS
  'Raw history rows (database keys are OIDs); use the view coder_health.history';

CREATE VIEW coder_health.history AS
SELECT h.ts, h.metric,
       CASE WHEN h.metric IN ('p99_ms', 'calls_per_s')
            THEN coalesce(d.datname::text, h.key) ELSE h.key END AS key,
       h.value
FROM coder_health.history_internal() h
LEFT JOIN pg_catalog.pg_database d
       ON h.metric IN ('p99_ms', 'calls_per_s') AND d.oid::text = h.key;

COMMENT ON VIEW coder_health.history IS
  'Samples taken every coder_health.history_interval over coder_health.history_length: connections per Coder Server, NOTIFY queue usage and backlog, replication lag, p99 and calls/s per database';

CREATE FUNCTION coder_health.sparkline(metric text, key text DEFAULT NULL,
                                      width integer DEFAULT 60)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    metrics constant text[] := ARRAY['connections', 'notify_queue_usage',
        'notify_backlog_bytes', 'replication_lag_bytes', 'replication_lag_s',
        'p99_ms', 'calls_per_s'];
    blocks constant text[] := ARRAY['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    keys text[];
    points float8[];
    lo float8;
    hi float8;
    nsamples integer;
    span interval;
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
                  HINT = 'One character per sample, averaged when there are more samples than the width.';
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

    -- one value per sample: the key's, or across keys the sum (connections,
    -- calls/s) or the worst (everything else); then averaged down to width
    WITH per_sample AS (
        SELECT r.ts,
               CASE WHEN sparkline.metric IN ('connections', 'calls_per_s')
                    THEN sum(r.value) ELSE max(r.value) END AS value
        FROM coder_health.history r
        WHERE r.metric = sparkline.metric
          AND (sparkline.key IS NULL OR r.key = sparkline.key)
        GROUP BY r.ts
    ), bucketed AS (
        SELECT ntile(sparkline.width) OVER (ORDER BY p.ts) AS b, p.ts, p.value
        FROM per_sample p
    )
    SELECT array_agg(v ORDER BY b), min(v), max(v),
           (SELECT count(*) FROM per_sample),
           (SELECT max(p.ts) - min(p.ts) FROM per_sample p)
    INTO points, lo, hi, nsamples, span
    FROM (SELECT b, avg(value) AS v FROM bucketed GROUP BY b) x;

    IF nsamples = 0 OR points IS NULL THEN
        RETURN NULL;
    END IF;
    FOR i IN 1 .. array_length(points, 1) LOOP
        chart := chart || blocks[CASE WHEN hi = lo THEN CASE WHEN hi = 0 THEN 1 ELSE 4 END
                                      ELSE 1 + least(7, floor((points[i] - lo) / (hi - lo) * 8))::integer END];
    END LOOP;
    RETURN format('%s  %s: last %s, min %s, max %s (%s samples over %s)',
                  chart, sparkline.metric || coalesce('[' || sparkline.key || ']', ''),
                  trim_scale(round(points[array_length(points, 1)]::numeric, 3)),
                  trim_scale(round(lo::numeric, 3)), trim_scale(round(hi::numeric, 3)), nsamples,
                  date_trunc('second', span));
END
$$;

COMMENT ON FUNCTION coder_health.sparkline(text, text, integer) IS
  'One-line chart (▁..█) of a history metric for one key, or summed (connections, calls_per_s) / worst (others) over all keys';

GRANT EXECUTE ON FUNCTION coder_health.health_status(float8, float8, float8, boolean),
                          coder_health.history_internal(),
                          coder_health.sparkline(text, text, integer)
    TO pg_monitor;
GRANT SELECT ON coder_health.health, coder_health.history TO pg_monitor;
-- ---------------------------------------------------------------------------
-- Last: nothing in coder_health is for PUBLIC.  Each fragment granted its own
-- read objects to pg_monitor; reset functions stay superuser-only.
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA coder_health FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA coder_health FROM PUBLIC;
