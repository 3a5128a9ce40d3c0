-- The accounting model (docs/latency.md) on the paths where it used to go
-- wrong.  Each check here failed before its fix.
\set VERBOSITY terse
SELECT coder_health.reset();
CREATE TABLE acc_zeros AS SELECT 0 AS z;
CREATE TABLE acc_rows (x int);

-- 1. A failed statement in a block, then ROLLBACK / COMMIT, then the client
-- idles (the \! sleep is the client's idle time, not a wait for a state).
-- The ROLLBACK and the COMMIT end with themselves: the idle time after them
-- is nobody's (it used to be recorded as theirs, ~300 ms).  Marks before
-- BEGIN and after the idle (test_setup.sql): the ROLLBACK ran between them,
-- apart from the 300 ms or more the client slept, so it took at most their
-- distance less 300 ms, however loaded the machine.
INSERT INTO marks VALUES ('rollback_begins', clock_timestamp());
BEGIN;
SELECT 1 / z FROM acc_zeros;
ROLLBACK;
\! sleep 0.3
INSERT INTO marks VALUES ('rollback_idled', clock_timestamp());
SELECT 'after rollback' AS step;
INSERT INTO marks VALUES ('commit_begins', clock_timestamp());
BEGIN;
SELECT 1 / z FROM acc_zeros;
COMMIT;
\! sleep 0.3
INSERT INTO marks VALUES ('commit_idled', clock_timestamp());
SELECT 'after commit' AS step;

-- 2. A procedure that commits and rolls back inside has not failed.
CREATE PROCEDURE acc_proc() LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO acc_rows VALUES (1);
  COMMIT;
  PERFORM pg_sleep(0.01);
  DELETE FROM acc_rows;
  ROLLBACK;
END $$;
CALL acc_proc();
CALL acc_proc();
CALL acc_proc();

-- 3. Errors before the executor are counted whatever the log keeps.
SET log_min_messages = panic;
SET client_min_messages = error;
SELEKT 1;
SELECT * FROM acc_no_such_table;
BEGIN;
SAVEPOINT s;
SELECT * FROM acc_no_such_table;
ROLLBACK TO SAVEPOINT s;
COMMIT;
RESET client_min_messages;
RESET log_min_messages;

-- 4. What the user asked for is no error: ROLLBACK TO a savepoint, ROLLBACK,
-- an error caught by a PL/pgSQL exception block.
BEGIN;
SAVEPOINT s;
INSERT INTO acc_rows VALUES (2);
ROLLBACK TO SAVEPOINT s;
ROLLBACK;
DO $$
BEGIN
  PERFORM 1 / z FROM acc_zeros;
EXCEPTION WHEN division_by_zero THEN
  NULL;
END $$;

-- 5. Different sqlc names over one query id are different rows; identical
-- texts too.
CREATE TABLE site_configs (key text PRIMARY KEY, value text);
SELECT E'-- name: GetLogoURL :one\nSELECT value FROM site_configs WHERE key = ''logo_url''' FROM generate_series(1, 2) \gexec
SELECT E'-- name: GetDeploymentID :one\nSELECT value FROM site_configs WHERE key = ''deployment_id''' FROM generate_series(1, 3) \gexec
SELECT E'-- name: GetApplicationName :one\nSELECT value FROM site_configs WHERE key = ''logo_url''' \gexec
SELECT value FROM site_configs WHERE key = 'logo_url';
SELECT coder_health.flush();

SELECT v.query, calls, errors,
       max_ms <= wall_ms(lower(v.query) || '_begins', lower(v.query) || '_idled') - 300 AS no_idle_time
FROM (VALUES ('ROLLBACK'), ('COMMIT')) v(query)
JOIN coder_health.statement_latency l ON l.queryid = qid(v.query)
ORDER BY v.query;
SELECT calls, errors FROM coder_health.statement_latency
WHERE queryid = qid('CALL acc_proc()');
-- statement errors: the two divisions by zero; the 3 errors before the
-- executor are in the database total only (5 errors)
SELECT calls, errors, queryid = qid($$SELECT 1 / z FROM acc_zeros$$) AS is_division FROM coder_health.statement_latency WHERE errors > 0;
SELECT errors AS database_errors
FROM coder_health.latency
WHERE scope = 'database' AND datname = current_database() AND period = 'total';
SELECT count(*) AS first_seen_after_last_seen
FROM coder_health.statement_latency WHERE first_seen > last_seen;
SELECT coalesce(query_name, '(none)') AS query_name, calls,
       count(*) OVER (PARTITION BY queryid) AS rows_for_the_query_id
FROM coder_health.statement_latency
WHERE queryid = qid('SELECT value FROM site_configs WHERE key = ''x''')
ORDER BY query_name;
SELECT query_name, calls FROM coder_health.query_latency
WHERE query_name IN ('GetLogoURL', 'GetDeploymentID', 'GetApplicationName')
ORDER BY query_name;

-- 6. Core's query id is not ours to write (compute_query_id is off here):
-- no "Query Identifier" line.
EXPLAIN (VERBOSE, COSTS OFF) SELECT 1;

DROP PROCEDURE acc_proc();
DROP TABLE acc_zeros, acc_rows, site_configs;
