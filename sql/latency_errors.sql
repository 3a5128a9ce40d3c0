-- Failed statements are counted in errors, with their time to failure in
-- the distribution (a statement_timeout is a tail event the caller waited for).
\set VERBOSITY terse
-- qid(text): the query id of a statement (test_setup.sql)
SELECT coder_health.reset();

-- marks around the failures (test_setup.sql): a recorded time to failure is
-- at most the time between the marks around it, however loaded the machine
CREATE TABLE zeros AS SELECT 0 AS z;
SET statement_timeout = '100ms';
INSERT INTO marks VALUES ('timeout_sent', clock_timestamp());
SELECT pg_sleep(2);
INSERT INTO marks VALUES ('timeout_failed', clock_timestamp());
RESET statement_timeout;
INSERT INTO marks VALUES ('boom_sent', clock_timestamp());
SELECT 1 / z AS boom FROM zeros;
INSERT INTO marks VALUES ('boom_failed', clock_timestamp());
-- fails while planning (constant folding): no statement to attribute it to,
-- but the database and client totals count it
SELECT 1 / 0 AS planning_failure;

-- inside a transaction block, rolled back to a savepoint
INSERT INTO marks VALUES ('block_begins', clock_timestamp());
BEGIN;
SAVEPOINT s;
SELECT 1 / z AS boom FROM zeros;
ROLLBACK TO SAVEPOINT s;
SELECT 1 AS fine;
COMMIT;
INSERT INTO marks VALUES ('block_ended', clock_timestamp());

-- a deferred constraint that fails at COMMIT: the COMMIT itself failed
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
BEGIN;
INSERT INTO child VALUES (42);
COMMIT;

SELECT coder_health.flush();

SELECT calls, errors,
       max_ms >= 100 AND max_ms <= wall_ms('timeout_sent', 'timeout_failed') AS time_to_timeout
FROM coder_health.statement_latency WHERE queryid = qid('SELECT pg_sleep(2)');
-- (both divisions are the same statement: the slower within its marks)
SELECT calls, errors,
       max_ms <= greatest(wall_ms('boom_sent', 'boom_failed'),
                          wall_ms('block_begins', 'block_ended')) AS fast_failure
FROM coder_health.statement_latency WHERE queryid = qid('SELECT 1 / z AS boom FROM zeros');
SELECT calls, errors
FROM coder_health.statement_latency WHERE queryid = qid('SELECT 1 AS fine');
-- every failure above is in the database total
SELECT errors AS database_errors
FROM coder_health.latency
WHERE scope = 'database' AND datname = current_database() AND period = 'total';
DROP TABLE child, parent, zeros;

-- An error before the executor (parse, analysis) of a statement with a sqlc
-- name is an error of that name and of its text's statement (#17), whatever
-- the log and the client are sent: the name is read from the text
-- pg_stat_activity shows.  Not a later statement of a multi-statement
-- string (its text is the first's), and not with track_activities off
-- (no text): then the database and client totals only.  psql drops a
-- leading "--" comment, so these send their exact text with \gexec.
SELECT coder_health.reset();
SET log_min_messages = panic;
SET client_min_messages = error;
SELECT E'-- name: RegressParseError :one\nSELEKT 1' FROM generate_series(1, 2) \gexec
SELECT E'-- name: RegressMissingTable :one\nSELECT * FROM no_such_table' \gexec
-- (a first statement that prints nothing: psql 13 shows only the last result)
SELECT E'-- name: RegressFirstOfTwo :exec\nSET application_name = ''first_of_two''; SELECT * FROM no_such_table' \gexec
SET track_activities = off;
SELECT E'-- name: RegressNoActivity :one\nSELEKT 1' \gexec
RESET track_activities;
RESET client_min_messages;
RESET log_min_messages;
SELECT coder_health.flush();
SELECT query_name, calls, errors FROM coder_health.query_latency
WHERE query_name LIKE 'Regress%' ORDER BY query_name;
SELECT query_name, calls, errors, query FROM coder_health.statement_latency
WHERE query_name LIKE 'Regress%' ORDER BY query_name;
-- the database counts every one of them
SELECT errors AS database_errors
FROM coder_health.latency
WHERE scope = 'database' AND datname = current_database() AND period = 'total';
