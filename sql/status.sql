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

-- its heartbeat moves (sample_interval is 200 ms here): waited for, two runs
-- after the mark; the second began after the first was counted, so it ended
-- after the mark: the last run shown is no older than the mark
INSERT INTO marks VALUES ('beat', clock_timestamp());
CREATE TEMP TABLE beat AS SELECT collector_runs, collector_last_run FROM coder_health.status;
SELECT wait_until('SELECT s.collector_runs >= b.collector_runs + 2 FROM coder_health.status s, beat b',
                  'two collector runs');
SELECT s.collector_runs >= b.collector_runs + 2 AS runs_advance,
       s.collector_last_run > b.collector_last_run AS last_run_advances,
       s.collector_last_run BETWEEN m.at AND clock_timestamp() AS last_run_since_mark,
       s.collector_last_run_age_s BETWEEN 0
         AND extract(epoch FROM clock_timestamp() - m.at)::numeric + 0.001 AS age_within_mark
FROM coder_health.status s, beat b, marks m
WHERE m.name = 'beat';

-- the core and latency views live in schema coder_health (each feature's
-- own tests check its views)
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'coder_health' AND c.relkind = 'v'
  AND c.relname IN ('status', 'settings', 'statement_latency', 'latency',
                    'latency_buckets', 'query_latency')
ORDER BY 1;
