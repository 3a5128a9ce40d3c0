-- ---------------------------------------------------------------------------
-- LISTEN/NOTIFY health
-- ---------------------------------------------------------------------------

-- Notifications are counted from PostgreSQL's NOTIFY queue itself (each
-- committing backend reads its own entries back, docs/notify.md): pg_notify
-- is PostgreSQL's own, untouched.

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
