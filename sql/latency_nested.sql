-- Statements inside functions are timed only with track = all.
\set VERBOSITY terse
CREATE TABLE nested_log (at timestamptz);
CREATE TABLE zeros AS SELECT 0 AS z;
CREATE FUNCTION nested_work() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.01);
  INSERT INTO nested_log VALUES (now());
END $$;
CREATE FUNCTION nested_failure() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    PERFORM 1 / z FROM zeros;
  EXCEPTION WHEN division_by_zero THEN
    RETURN 'caught';
  END;
  RETURN 'not reached';
END $$;

SELECT coder_health.reset();
SELECT nested_work();
SELECT coder_health.flush();
SELECT count(*) FILTER (WHERE toplevel) > 0 AS top_seen,
       count(*) FILTER (WHERE NOT toplevel) AS nested_entries
FROM coder_health.statement_latency;

SET coder_health.track = 'all';
SELECT coder_health.reset();
SELECT nested_work();
SELECT nested_failure();
SELECT coder_health.flush();
RESET coder_health.track;
-- the two statements of nested_work and the failing one of nested_failure
SELECT count(*) AS nested_entries, sum(calls) AS nested_calls,
       sum(errors) AS nested_errors
FROM coder_health.statement_latency WHERE NOT toplevel;
-- the nested sleep took its 10 ms; the top-level call at least as long
SELECT max(max_ms) FILTER (WHERE NOT toplevel) >= 10 AS nested_sleep_timed,
       max(max_ms) FILTER (WHERE toplevel) >= 10 AS outer_covers_it,
       sum(errors) FILTER (WHERE toplevel) AS top_level_errors
FROM coder_health.statement_latency;
-- An error caught by an exception block (it leaves ExecutorRun early) must
-- not leave later client statements looking nested: they are still timed.
SELECT coder_health.reset();
SELECT nested_failure();
SELECT nested_failure();
SELECT pg_sleep(0.02) AS after_caught_errors;
SELECT coder_health.flush();
SELECT count(*) AS top_level_sleep_seen
FROM coder_health.statement_latency WHERE toplevel AND max_ms >= 20;

-- With track_utility off, statements inside DO are nested all the same
SET coder_health.track_utility = off;
SELECT coder_health.reset();
DO $$ BEGIN PERFORM pg_sleep(0.05); END $$;
SELECT coder_health.flush();
RESET coder_health.track_utility;
SELECT count(*) AS top_level_entries_from_do
FROM coder_health.statement_latency WHERE toplevel AND max_ms >= 50;

DROP FUNCTION nested_work(), nested_failure();
DROP TABLE nested_log, zeros;
