-- Replication views on a server without standbys (the TAP test 300 covers
-- a real primary and standby).
SELECT count(*) AS senders FROM coder_health.replication;
SELECT pg_is_in_recovery();

-- a slot: physical, inactive, retaining WAL, reserved; it retains at most
-- the WAL from its restart_lsn to now, and inactive_s is known once the
-- collector has looked (or NULL before), at most the time since the mark
-- taken before the slot was made (test_setup.sql)
INSERT INTO marks VALUES ('slot_made', clock_timestamp());
SELECT 'ok' FROM pg_create_physical_replication_slot('ch_regress_slot', true);
SELECT s.slot_name, s.slot_type, s.database, s.active, s.active_pid,
       s.retained_wal_bytes BETWEEN 0 AND pg_current_wal_lsn() - r.restart_lsn AS retains,
       s.wal_status,
       s.safe_wal_bytes IS NULL AS no_limit,
       coalesce(s.inactive_s, 0) BETWEEN 0 AND extract(epoch FROM clock_timestamp() - m.at)
         AS inactive_ok
FROM coder_health.replication_slots s
JOIN pg_replication_slots r USING (slot_name), marks m
WHERE m.name = 'slot_made';
SELECT 'ok' FROM pg_drop_replication_slot('ch_regress_slot');
SELECT count(*) FROM coder_health.replication_slots;

-- the views match the library (column counts are checked in C)
SELECT count(*) FROM coder_health.replication_internal();
SELECT count(*) FROM coder_health.replication_slots_internal();
