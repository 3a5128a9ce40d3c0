-- Replication views: their shape and who may read them.
BEGIN;
SELECT plan(10);

SELECT has_view('coder_health', 'replication', 'view replication');
SELECT has_view('coder_health', 'replication_slots', 'view replication_slots');
SELECT columns_are('coder_health', 'replication', ARRAY[
  'role', 'pid', 'application_name', 'client_addr', 'slot_name', 'state',
  'sync_state', 'sent_lag_bytes', 'write_lag_bytes', 'flush_lag_bytes',
  'replay_lag_bytes', 'write_lag_s', 'flush_lag_s', 'replay_lag_s',
  'reply_age_s', 'receiver_status', 'sender_host', 'sender_port',
  'receive_lag_bytes', 'replay_delay_s', 'last_msg_age_s', 'replay_paused',
  'peak_replay_lag_bytes_15min', 'peak_replay_lag_s_15min',
  'rtt_ms', 'rtt_recent_ms', 'rtt_max_ms', 'far']);
SELECT columns_are('coder_health', 'replication_slots', ARRAY[
  'slot_name', 'slot_type', 'database', 'active', 'active_pid',
  'retained_wal_bytes', 'wal_status', 'safe_wal_bytes', 'inactive_s']);

-- pg_monitor reads, PUBLIC does not
SELECT table_privs_are('coder_health', 'replication', 'pg_monitor', ARRAY['SELECT']);
SELECT table_privs_are('coder_health', 'replication_slots', 'pg_monitor', ARRAY['SELECT']);
SELECT table_privs_are('coder_health', 'replication', 'public', ARRAY[]::text[]);
SELECT function_privs_are('coder_health', 'replication_internal', ARRAY[]::text[],
  'public', ARRAY[]::text[]);

-- a primary with no standby: no rows, and a fresh slot shows up inactive
SELECT is((SELECT count(*) FROM coder_health.replication WHERE role = 'standby'),
  0::bigint, 'a primary has no standby row');
SELECT pg_create_physical_replication_slot('ch_pgtap_slot', true);
-- (it retains at most the WAL from its restart_lsn to now)
SELECT is((SELECT s.slot_type || ':' || s.active || ':'
                  || (s.retained_wal_bytes BETWEEN 0 AND pg_current_wal_lsn() - r.restart_lsn)
           FROM coder_health.replication_slots s
           JOIN pg_replication_slots r USING (slot_name)
           WHERE s.slot_name = 'ch_pgtap_slot'),
  'physical:false:true', 'a new physical slot: inactive, retaining WAL');

SELECT pg_drop_replication_slot('ch_pgtap_slot');

SELECT * FROM finish();
ROLLBACK;
