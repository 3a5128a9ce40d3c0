-- The extension loads, the collector runs, status is live.
CREATE EXTENSION coder_health;

SELECT extension_version = library_version AS versions_match,
       shmem_reserved_bytes > 0 AS has_reservation,
       shmem_used_bytes > 0 AND shmem_used_bytes <= shmem_reserved_bytes AS used_within_reserved,
       in_recovery,
       max_statements,
       bytes_per_statement_slot <= 4096 AS slot_within_4_kib
FROM coder_health.status;

-- the collector is running and shows in pg_stat_activity under its own type
SELECT count(*) AS collectors
FROM pg_stat_activity
WHERE backend_type = 'coder_health collector'
  AND pid = (SELECT collector_pid FROM coder_health.status);

-- its heartbeat moves (sample_interval is 200 ms here)
CREATE TEMP TABLE beat AS SELECT collector_runs, collector_last_run FROM coder_health.status;
SELECT pg_sleep(0.6);
SELECT s.collector_runs > b.collector_runs AS runs_advance,
       s.collector_last_run > b.collector_last_run AS last_run_advances,
       s.collector_last_run_age_s < 5 AS recent
FROM coder_health.status s, beat b;

-- the core and latency views live in schema coder_health (each feature's
-- own tests check its views)
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'coder_health' AND c.relkind = 'v'
  AND c.relname IN ('status', 'settings', 'statement_latency', 'latency',
                    'latency_buckets', 'query_latency')
ORDER BY 1;
