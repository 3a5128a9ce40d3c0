-- Bad input: every SQL-callable coder_health function given NULL, negative,
-- huge, out-of-range or wrong arguments answers with a clear ERROR (with a
-- HINT where the mistake is ours to explain), or NULL / no rows where the
-- function is STRICT or the thing asked about does not exist.  None crashes.
-- Settings at and beyond their limits: the limit is taken, one past it gets
-- PostgreSQL's own range error.  Odd channel names and big payloads work and
-- are counted.
\set VERBOSITY default

-- statement_quantile(queryid, q, recent): q must be a fraction
SELECT coder_health.statement_quantile(NULL, 0.5) IS NULL AS null_queryid;
SELECT coder_health.statement_quantile(1, NULL) IS NULL AS null_q;
SELECT coder_health.statement_quantile(1, 0.5, NULL) IS NULL AS null_recent;
SELECT coder_health.statement_quantile(1, -0.1);
SELECT coder_health.statement_quantile(1, 1.0000001);
SELECT coder_health.statement_quantile(1, 'NaN');
SELECT coder_health.statement_quantile(1, 'Infinity');
SELECT coder_health.statement_quantile(1, '-Infinity');
SELECT coder_health.statement_quantile(1, 1e308);
-- limits of the range are fine; unknown statements have no quantile
SELECT coder_health.statement_quantile(-1, 0) IS NULL AS unknown_min,
       coder_health.statement_quantile(0, 1, true) IS NULL AS unknown_max,
       coder_health.statement_quantile(9223372036854775807, 0.5) IS NULL AS huge_id,
       coder_health.statement_quantile(-9223372036854775808, 0.99, true) IS NULL AS tiny_id;
-- wrong types and arity: PostgreSQL's own errors
SELECT coder_health.statement_quantile('abc', 0.5);
SELECT coder_health.statement_quantile(9223372036854775808, 0.5);
SELECT coder_health.statement_quantile(1, 'half');
SELECT coder_health.statement_quantile(1);

-- a real statement: its quantiles are ordered and within its range
SELECT coder_health.reset();
-- (named the sqlc way and found by that name: on PostgreSQL 13 query ids are
-- hashes of the text; psql drops a leading comment, so \gexec sends it)
INSERT INTO marks VALUES ('probe_sent', clock_timestamp());
SELECT E'-- name: BadInputProbe :one\nSELECT count(*) FROM pg_class WHERE relname = ''bad_input_probe''' \gexec
INSERT INTO marks VALUES ('probe_done', clock_timestamp());
SELECT coder_health.flush();
SELECT queryid AS probe_id FROM coder_health.statement_latency
WHERE query_name = 'BadInputProbe' \gset
SELECT coder_health.statement_quantile(:probe_id, 0) <=
           coder_health.statement_quantile(:probe_id, 1) AS ordered,
       coder_health.statement_quantile(:probe_id, 1) BETWEEN 0 AND wall_ms('probe_sent', 'probe_done')
         AS within_its_marks;

-- latency_chart(queryid): NULL or unknown gives no rows
SELECT count(*) FROM coder_health.latency_chart(NULL);
SELECT count(*) FROM coder_health.latency_chart(-9223372036854775808);
SELECT count(*) FROM coder_health.latency_chart(9223372036854775807);
SELECT count(*) FROM coder_health.latency_chart(0);
SELECT sum(count) = 1 AS one_call_charted, count(*) > 0 AS has_rows
FROM coder_health.latency_chart(:probe_id);
SELECT * FROM coder_health.latency_chart('x');

-- reset_statement(queryid): NULL and unknown ids do nothing, harmlessly
SELECT coder_health.reset_statement(NULL);
SELECT coder_health.reset_statement(-1);
SELECT coder_health.reset_statement(9223372036854775807);
SELECT count(*) AS probe_kept
FROM coder_health.statement_latency WHERE queryid = :'probe_id';
SELECT coder_health.reset_statement(:probe_id);
SELECT count(*) AS probe_reset
FROM coder_health.statement_latency WHERE queryid = :'probe_id';

-- notify_stall_reason(backlog, xact_age, not_reading): not STRICT; NULLs,
-- negatives, NaN and infinities give NULL or a reason, never an error
SELECT coder_health.notify_stall_reason(NULL, NULL, NULL) IS NULL AS all_null,
       coder_health.notify_stall_reason(-5, 1e308, 1e308) IS NULL AS negative_backlog,
       coder_health.notify_stall_reason(0, 1e6, 1e6) IS NULL AS zero_backlog,
       coder_health.notify_stall_reason(9223372036854775807, 'NaN', 'NaN') IS NULL AS nan_ages,
       coder_health.notify_stall_reason(9223372036854775807, -1, '-Infinity') IS NULL AS negative_ages;
SELECT coder_health.notify_stall_reason(9223372036854775807, 'Infinity', NULL) AS infinite_xact,
       coder_health.notify_stall_reason(9223372036854775807, NULL, 3600) AS not_reading;

-- functions without arguments refuse arguments
SELECT coder_health.reset(1);
SELECT coder_health.notify_reset('all');
SELECT * FROM coder_health.status_internal(NULL);
-- and answer (the reset functions are superuser-only; we are superuser)
SELECT coder_health.notify_reset();
-- (no public.replicas table here, and no pg_stat_statements to take texts
-- from: no rows)
SELECT count(*) AS replicas FROM coder_health.coder_replicas();
SELECT count(*) AS pgss_texts FROM coder_health.statement_texts();

-- there is no stand-in for pg_notify (0.3.0's wrapper is gone)
SELECT count(*) AS wrapper_schemas FROM pg_namespace WHERE nspname = 'coder_health_notify';
SELECT count(*) AS pg_notify_functions FROM pg_proc WHERE proname = 'pg_notify';

-- ---------------------------------------------------------------------------
-- Channel names at the limit: 63 bytes (NAMEDATALEN - 1), non-ASCII, and
-- 7,999-byte payloads, through pg_notify and NOTIFY
-- ---------------------------------------------------------------------------
SELECT coder_health.notify_reset();
SELECT octet_length('t_max_' || repeat('z', 57)) AS channel_bytes;
SELECT pg_notify('t_max_' || repeat('z', 57), repeat('p', 7999));
NOTIFY t_max_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz, 'n';
-- 64 bytes: PostgreSQL's own error, nothing counted
SELECT pg_notify('t_max_' || repeat('z', 58), 'too long');
-- non-ASCII: multi-byte UTF-8, 63 bytes exactly (21 three-byte characters)
SELECT octet_length(repeat('ワ', 21)) AS nonascii_bytes;
SELECT pg_notify(repeat('ワ', 21), repeat('ü', 3999) || 'x');
NOTIFY "ワワワワワワワワワワワワワワワワワワワワワ", 'ü';
SELECT pg_notify('t_ümlaut:42', 'x');
BEGIN;
SELECT pg_notify('t_ümlaut:43', repeat('€', 2666) || 'x');
NOTIFY "t_ümlaut:44";
COMMIT;
SELECT channel_family, notifications, bytes, max_payload_bytes
FROM coder_health.notify_channels
WHERE channel_family IN ('t_max_' || repeat('z', 57), repeat('ワ', 21), 't_ümlaut:*')
ORDER BY channel_family COLLATE "C";

-- ---------------------------------------------------------------------------
-- Settings: every coder_health.* integer (and real) setting at its limits
-- is accepted, one past them is refused by PostgreSQL's range check
-- ---------------------------------------------------------------------------
SELECT name, min_val, max_val FROM coder_health.settings
WHERE min_val IS NOT NULL ORDER BY name;

ALTER SYSTEM SET coder_health.coder_pool_size = 0;
ALTER SYSTEM SET coder_health.coder_pool_size = 10001;
ALTER SYSTEM SET coder_health.coder_pool_size = 1;
ALTER SYSTEM SET coder_health.coder_pool_size = 10000;
ALTER SYSTEM SET coder_health.export_top_queries = -1;
ALTER SYSTEM SET coder_health.export_top_queries = 1001;
ALTER SYSTEM SET coder_health.export_top_queries = 0;
ALTER SYSTEM SET coder_health.export_top_queries = 1000;
ALTER SYSTEM SET coder_health.export_top_statements = -1;
ALTER SYSTEM SET coder_health.export_top_statements = 1001;
ALTER SYSTEM SET coder_health.export_top_statements = 0;
ALTER SYSTEM SET coder_health.export_top_statements = 1000;
ALTER SYSTEM SET coder_health.max_channel_families = 9;
ALTER SYSTEM SET coder_health.max_channel_families = 100001;
ALTER SYSTEM SET coder_health.max_channel_families = 10;
ALTER SYSTEM SET coder_health.max_channel_families = 100000;
ALTER SYSTEM SET coder_health.max_clients = 15;
ALTER SYSTEM SET coder_health.max_clients = 10001;
ALTER SYSTEM SET coder_health.max_clients = 16;
ALTER SYSTEM SET coder_health.max_clients = 10000;
ALTER SYSTEM SET coder_health.max_rtt_ms = -0.001;
ALTER SYSTEM SET coder_health.max_rtt_ms = 60000.001;
ALTER SYSTEM SET coder_health.max_rtt_ms = 'NaN';
ALTER SYSTEM SET coder_health.max_rtt_ms = 0;
ALTER SYSTEM SET coder_health.max_rtt_ms = 60000;
ALTER SYSTEM SET coder_health.health_min_statements = -1;
ALTER SYSTEM SET coder_health.health_min_statements = 0;
ALTER SYSTEM SET coder_health.max_statements = 99;
ALTER SYSTEM SET coder_health.max_statements = 100001;
ALTER SYSTEM SET coder_health.max_statements = 100;
ALTER SYSTEM SET coder_health.max_statements = 100000;
ALTER SYSTEM SET coder_health.notify_stall_bytes = 0;
ALTER SYSTEM SET coder_health.notify_stall_bytes = 2147483648;
ALTER SYSTEM SET coder_health.notify_stall_bytes = '2GB';
ALTER SYSTEM SET coder_health.notify_stall_bytes = 1;
ALTER SYSTEM SET coder_health.notify_stall_bytes = 2147483647;
ALTER SYSTEM SET coder_health.notify_stall_seconds = 0;
ALTER SYSTEM SET coder_health.notify_stall_seconds = 86401;
ALTER SYSTEM SET coder_health.notify_stall_seconds = '1d 1s';
ALTER SYSTEM SET coder_health.notify_stall_seconds = 1;
ALTER SYSTEM SET coder_health.notify_stall_seconds = 86400;
ALTER SYSTEM SET coder_health.rtt_interval = -1;
ALTER SYSTEM SET coder_health.rtt_interval = 3601;
ALTER SYSTEM SET coder_health.rtt_interval = 0;
ALTER SYSTEM SET coder_health.rtt_interval = 3600;
ALTER SYSTEM SET coder_health.sample_interval = 99;
ALTER SYSTEM SET coder_health.sample_interval = 60001;
ALTER SYSTEM SET coder_health.sample_interval = '1min 1ms';
ALTER SYSTEM SET coder_health.sample_interval = 100;
ALTER SYSTEM SET coder_health.sample_interval = 60000;
ALTER SYSTEM SET coder_health.save_interval = -1;
ALTER SYSTEM SET coder_health.save_interval = 86401;
ALTER SYSTEM SET coder_health.save_interval = 0;
ALTER SYSTEM SET coder_health.save_interval = 86400;
ALTER SYSTEM SET coder_health.window_step = 0;
ALTER SYSTEM SET coder_health.window_step = 3601;
ALTER SYSTEM SET coder_health.window_step = 1;
ALTER SYSTEM SET coder_health.window_step = 3600;
-- not a number, far beyond int range
ALTER SYSTEM SET coder_health.max_statements = 'many';
ALTER SYSTEM SET coder_health.max_statements = 99999999999999999999;
ALTER SYSTEM SET coder_health.window_step = '-1h';
-- the accepted values are only in postgresql.auto.conf; take them out again
-- without a reload, so the rest of the suite runs with its own settings
ALTER SYSTEM RESET ALL;
SELECT name FROM coder_health.settings
WHERE source NOT IN ('default', 'configuration file') ORDER BY name;
