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
                          coder_health.replication_rtt_internal(),
                          coder_health.replication_slots_internal() TO pg_monitor;
GRANT SELECT ON coder_health.replication, coder_health.replication_slots TO pg_monitor;

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

GRANT SELECT ON coder_health.sync_commit TO pg_monitor;
