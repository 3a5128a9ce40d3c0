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
  'Samples taken every coder_health.history_interval over coder_health.history_length: connections per client host, NOTIFY queue usage (percent) and backlog, replication lag and round trip (replication_rtt_ms), p99 and calls/s per database';

CREATE FUNCTION coder_health.sparkline(metric text, key text DEFAULT NULL,
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

GRANT EXECUTE ON FUNCTION coder_health.health_status(float8, float8, float8, boolean),
                          coder_health.history_internal(),
                          coder_health.sparkline(text, text, integer)
    TO pg_monitor;
GRANT SELECT ON coder_health.health, coder_health.history TO pg_monitor;
