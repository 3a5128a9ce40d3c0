-- Replication views on a server without standbys (the TAP test 300 covers
-- a real primary and standby).
SELECT count(*) AS senders FROM coder_health.replication;
SELECT pg_is_in_recovery();

-- a slot: physical, inactive, retaining WAL, reserved; inactive_s is known
-- once the collector has looked (or NULL before), never negative
SELECT 'ok' FROM pg_create_physical_replication_slot('ch_regress_slot', true);
SELECT slot_name, slot_type, database, active, active_pid,
       retained_wal_bytes >= 0 AS retains, wal_status,
       safe_wal_bytes IS NULL AS no_limit,
       coalesce(inactive_s, 0) >= 0 AS inactive_ok
FROM coder_health.replication_slots;
SELECT 'ok' FROM pg_drop_replication_slot('ch_regress_slot');
SELECT count(*) FROM coder_health.replication_slots;

-- the views match the library (column counts are checked in C)
SELECT count(*) FROM coder_health.replication_internal();
SELECT count(*) FROM coder_health.replication_slots_internal();
