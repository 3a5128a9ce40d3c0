-- The health view: thirteen checks in a fixed order, a status from the
-- thresholds, unknown (never ok) without data; history and sparkline errors.
SELECT check_name, status IN ('ok', 'warn', 'critical', 'unknown') AS valid_status,
       unit, warn_threshold, critical_threshold, detail IS NOT NULL AS has_detail
FROM coder_health.health;

-- no standby and no slot: nothing to measure
SELECT check_name, status, value FROM coder_health.health
WHERE check_name IN ('replication_lag_bytes', 'replication_lag_time');
-- and no round trip (unknown, never 0)
SELECT check_name, status, value, detail FROM coder_health.health
WHERE check_name = 'replication_rtt';
SELECT count(*) FROM coder_health.replication_rtt_internal();

-- a fixed precision per unit: every time and percentage to 3 decimals
-- (the NOTIFY queue's percentage had 4)
SELECT check_name, unit, scale(value) FROM coder_health.health
WHERE unit IN ('ms', 's', '%') AND scale(value) <> 3;

-- thresholds follow the settings (kB settings in bytes)
SET coder_health.health_replication_lag_warn_bytes = '2MB';
SET coder_health.health_p99_critical_ms = '2s';
SELECT check_name, warn_threshold, critical_threshold FROM coder_health.health
WHERE check_name IN ('replication_lag_bytes', 'statement_p99');
RESET coder_health.health_replication_lag_warn_bytes;
RESET coder_health.health_p99_critical_ms;

-- bad threshold values are rejected by PostgreSQL
SET coder_health.health_error_rate_warn_pct = 150;
SET coder_health.health_collector_warn_s = 0;
ALTER SYSTEM SET coder_health.history_length = 10;

-- the status rule
SELECT coder_health.health_status(NULL, 1, 2) AS no_value,
       coder_health.health_status(0.5, 1, 2) AS below,
       coder_health.health_status(1, 1, 2) AS at_warn,
       coder_health.health_status(3, 1, 2) AS above,
       coder_health.health_status(5, 20, 10, true) AS low_headroom;

-- history and sparkline
-- (how many samples there are depends on when the collector ran; every one
-- is a known metric, taken since the server started, not in the future)
SELECT count(*) FILTER (WHERE metric NOT IN ('connections', 'notify_queue_usage_pct',
                          'notify_backlog_bytes', 'replication_lag_bytes', 'replication_lag_s',
                          'p99_ms', 'calls_per_s', 'replication_rtt_ms')
                        OR ts < pg_postmaster_start_time() OR ts > clock_timestamp()
                        OR value IS NULL OR value < 0) AS malformed_history_rows
FROM coder_health.history;
SELECT coder_health.sparkline('latency');
SELECT coder_health.sparkline(NULL);
SELECT coder_health.sparkline('replication_lag_bytes', 'no-such-standby');
SELECT coder_health.sparkline('connections', width => 0);

-- no column of a coder_health view needs quoting in psql (health.check and
-- latency.window did: check and window are reserved words)
SELECT c.relname, a.attname
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'coder_health'::regnamespace AND c.relkind = 'v'
  AND a.attnum > 0 AND NOT a.attisdropped
  AND quote_ident(a.attname) <> a.attname
ORDER BY 1, 2;
