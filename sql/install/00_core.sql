-- coder_health 0.4.0: health of the PostgreSQL behind Coder.
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

CREATE FUNCTION coder_health.statement_slot_bytes()
RETURNS bigint
AS 'MODULE_PATHNAME', 'coder_health_statement_slot_bytes'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION coder_health.statement_slot_bytes() IS
  'Shared memory reserved per coder_health.max_statements slot: the entry with its hash overhead and its share of the sketch and text pools';

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
       s.dropped_samples,
       coder_health.statement_slot_bytes() AS bytes_per_statement_slot
FROM coder_health.status_internal() s
LEFT JOIN pg_catalog.pg_extension e ON e.extname = 'coder_health';

COMMENT ON VIEW coder_health.status IS
  'coder_health itself: versions, shared memory, collector heartbeat, recovery state';

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

GRANT EXECUTE ON FUNCTION coder_health.status_internal(),
                          coder_health.statement_slot_bytes() TO pg_monitor;
GRANT SELECT ON coder_health.status, coder_health.settings TO pg_monitor;
