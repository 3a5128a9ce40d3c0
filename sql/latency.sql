-- Statements with known durations land in the right percentiles.
\set VERBOSITY terse
-- qid(text): the query id of a statement (test_setup.sql)

-- 20 executions of 10 ms and 2 of 100 ms of one statement, each a top-level
-- statement.  One text for both durations, so it is one statement on every
-- version (PostgreSQL 13 does not merge statements that differ in a
-- constant: query_ids.sql).  A mark before and after each (test_setup.sql):
-- a recorded duration is at least what pg_sleep slept and at most the time
-- between its marks, whatever the load.
CREATE SEQUENCE sleeps;
\set sleeper 'SELECT pg_sleep(CASE WHEN nextval(''sleeps'') <= 20 THEN 0.01 ELSE 0.1 END)'
SELECT coder_health.reset();
SELECT format('INSERT INTO marks VALUES (%L, clock_timestamp())', 'sleep' || g), :'sleeper'
FROM generate_series(1, 22) g \gexec
INSERT INTO marks VALUES ('sleep23', clock_timestamp());
SELECT coder_health.flush();
-- each call's time between its marks: the k-th shortest recorded duration is
-- at most the k-th shortest of these, so a quantile of rank 20 or below (of
-- 22) is at most the slowest fast call's, the others at most the slowest's
-- (quantiles within 1%, min, max and total exact)
CREATE TEMP TABLE sleep_walls AS
SELECT min(w) AS min_wall, max(w) FILTER (WHERE g <= 20) AS fast_wall,
       max(w) AS max_wall, sum(w) AS sum_wall
FROM (SELECT g, wall_ms('sleep' || g, 'sleep' || (g + 1)) AS w
      FROM generate_series(1, 22) g) c;

-- (p90 is the slowest of the 20 fast executions, where scheduling noise on a
-- loaded machine shows first: at most the slowest fast call's time proves
-- its rank)
SELECT calls, errors, toplevel,
       min_ms >= 10 AND min_ms <= min_wall AS min_ok,
       p50_ms >= 9.9 AND p50_ms <= 1.01 * fast_wall AS p50_ok,
       p90_ms >= 9.9 AND p90_ms <= 1.01 * fast_wall AS p90_ok,
       p95_ms >= 99 AND p95_ms <= 1.01 * max_wall AS p95_ok,
       p99_ms >= 99 AND p99_ms <= 1.01 * max_wall AS p99_ok,
       max_ms >= 100 AND max_ms <= max_wall AS max_ok,
       total_ms >= 400 AND total_ms <= sum_wall AS total_ok,
       abs(mean_ms - total_ms / calls) < 0.01 AS mean_ok,
       recent_calls, recent_p99_ms >= 99 AS recent_p99_ok,
       first_seen <= last_seen AS seen_ok,
       datname = current_database() AS db_ok,
       rolname = current_user AS role_ok
FROM coder_health.statement_latency, sleep_walls
WHERE queryid = qid(:'sleeper');

-- the same quantiles through statement_quantile()
SELECT round(coder_health.statement_quantile(qid(:'sleeper'), 0.5)::numeric, 3)
         = (SELECT p50_ms FROM coder_health.statement_latency
            WHERE queryid = qid(:'sleeper')) AS p50_same,
       coder_health.statement_quantile(qid(:'sleeper'), 0.99, true) >= 99 AS recent_p99,
       coder_health.statement_quantile(qid(:'sleeper'), 0) >= 10 AS q0_is_min,
       coder_health.statement_quantile(qid(:'sleeper'), 1) >= 100 AS q1_is_max;

-- In a multi-statement query string each statement gets its own time, not
-- the time since the string arrived: the second is timed from after the
-- first's mark at most (the first sleeps 50 ms before it).  (The first
-- statement returns no rows: psql before 15 shows only the last result of
-- such a string.)
SELECT coder_health.reset();
DO $$BEGIN PERFORM pg_sleep(0.05); INSERT INTO marks VALUES ('first_done', clock_timestamp()); END$$ \; SELECT 1 AS x, pg_sleep(0.02);
INSERT INTO marks VALUES ('second_done', clock_timestamp());
SELECT coder_health.flush();
SELECT max_ms >= 20 AND max_ms <= wall_ms('first_done', 'second_done') AS second_statement_timed_alone
FROM coder_health.statement_latency
WHERE queryid = qid('SELECT 1 AS x, pg_sleep(0.02)');

-- per database and per client (pg_regress connects over a unix socket);
-- quantiles are within 1% of the true value, min and max are exact
SELECT scope, datname = current_database() AS db_ok, client_addr, period,
       calls >= 2 AS has_calls, p99_ms >= 49.5 AS p99_ok, max_ms >= 50 AS max_ok, span_s > 0 AS span_ok
FROM coder_health.latency
WHERE datname = current_database()
ORDER BY scope DESC, client_addr, period;

-- Prometheus histogram rows are well formed: cumulative, bounded by count
SELECT scope, array_length(le, 1) AS nle, array_length(bucket, 1) AS nbucket,
       le[1] AS first_le, le[array_length(le, 1)] AS last_le,
       (SELECT bool_and(bucket[i] <= bucket[i + 1])
        FROM generate_series(1, array_length(bucket, 1) - 1) i) AS cumulative,
       bucket[array_length(bucket, 1)] <= count AS within_count,
       sum > 0 AS has_sum
FROM coder_health.latency_buckets
WHERE datname = current_database()
  AND (queryid IS NULL OR queryid = qid('SELECT 1 AS x, pg_sleep(0.02)')::text)
ORDER BY scope;

-- the text chart: its counts add up to the executions
SELECT sum(count) AS charted, bool_and(bar <> '' OR count = 0) AS bars_ok,
       min(lower_ms) <= 20 AND max(upper_ms) >= 20 AS covers
FROM coder_health.latency_chart(qid('SELECT 1 AS x, pg_sleep(0.02)'));

-- utility statements are timed while track_utility is on
SELECT coder_health.reset();
CHECKPOINT;
CHECKPOINT;
CHECKPOINT;
SET coder_health.track_utility = off;
CHECKPOINT;
RESET coder_health.track_utility;
SELECT coder_health.flush();
SELECT count(*) AS entries_with_three_calls
FROM coder_health.statement_latency WHERE calls = 3;

-- reset_statement forgets one statement, reset() everything
SELECT 'SELECT pg_sleep(0.001)' FROM generate_series(1, 3) \gexec
SELECT coder_health.flush();
SELECT count(*) AS before FROM coder_health.statement_latency
WHERE queryid = qid('SELECT pg_sleep(0.001)');
SELECT coder_health.reset_statement(qid('SELECT pg_sleep(0.001)'));
SELECT count(*) AS after FROM coder_health.statement_latency
WHERE queryid = qid('SELECT pg_sleep(0.001)');
SELECT coder_health.reset();
SELECT statements_tracked AS tracked_after_reset FROM coder_health.status;
DROP SEQUENCE sleeps;
DROP TABLE sleep_walls;

-- milliseconds at one fixed precision in every view: numeric to the
-- microsecond (no float8 digits or exponent notation)
SELECT pg_sleep(0.0123) AS timed;
SELECT coder_health.flush();
SELECT (SELECT bool_and(scale(p50_ms) = 3 AND scale(max_ms) = 3 AND scale(total_ms) = 3)
        FROM coder_health.statement_latency) AS statement_latency_us,
       (SELECT bool_and(scale(p99_ms) = 3) FROM coder_health.latency
        WHERE p99_ms IS NOT NULL) AS latency_us,
       pg_typeof((SELECT p99_ms FROM coder_health.latency LIMIT 1)) AS latency_type;
