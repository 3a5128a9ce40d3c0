-- Failed statements are counted in errors, with their time to failure in
-- the distribution (a statement_timeout is a tail event the caller waited for).
\set VERBOSITY terse
-- qid(text): the query id of a statement (test_setup.sql)
SELECT coder_health.reset();

CREATE TABLE zeros AS SELECT 0 AS z;
SET statement_timeout = '100ms';
SELECT pg_sleep(2);
RESET statement_timeout;
SELECT 1 / z AS boom FROM zeros;
-- fails while planning (constant folding): no statement to attribute it to,
-- but the database and client totals count it
SELECT 1 / 0 AS planning_failure;

-- inside a transaction block, rolled back to a savepoint
BEGIN;
SAVEPOINT s;
SELECT 1 / z AS boom FROM zeros;
ROLLBACK TO SAVEPOINT s;
SELECT 1 AS fine;
COMMIT;

-- a deferred constraint that fails at COMMIT: the COMMIT itself failed
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
BEGIN;
INSERT INTO child VALUES (42);
COMMIT;

SELECT coder_health.flush();

SELECT calls, errors, max_ms >= 100 AND max_ms < 400 AS time_to_timeout
FROM coder_health.statement_latency WHERE queryid = qid('SELECT pg_sleep(2)');
SELECT calls, errors, max_ms < 45 AS fast_failure
FROM coder_health.statement_latency WHERE queryid = qid('SELECT 1 / z AS boom FROM zeros');
SELECT calls, errors
FROM coder_health.statement_latency WHERE queryid = qid('SELECT 1 AS fine');
-- every failure above is in the database total
SELECT errors AS database_errors
FROM coder_health.latency
WHERE scope = 'database' AND datname = current_database() AND period = 'total';
DROP TABLE child, parent, zeros;
