-- Which executions are one statement: the query id, by PostgreSQL version
-- (docs/versions.md).  On 14+ the id is core's, with constants normalized
-- away; on 13, where core computes none, it is coder_health's fallback, a
-- hash of the statement's own text.  The expected output differs for 13:
-- query_ids_1.out.
\set VERBOSITY terse
SELECT current_setting('server_version_num')::int >= 140000 AS core_query_ids;

SELECT coder_health.reset();
-- the same statement with different constants
SELECT pg_sleep(0.001);
SELECT pg_sleep(0.002);
SELECT pg_sleep(0.001);
-- a parameterized statement (what Coder sends over the extended protocol)
PREPARE by_param(float8) AS SELECT pg_sleep($1);
EXECUTE by_param(0.001);
EXECUTE by_param(0.002);
EXECUTE by_param(0.003);
EXECUTE by_param(0.004);
DEALLOCATE by_param;
-- utility statements have ids too
CHECKPOINT;
CHECKPOINT;
CHECKPOINT;
CHECKPOINT;
CHECKPOINT;
SELECT coder_health.flush();

-- constants: one statement of 3 calls on 14+, two (2 + 1) on 13
SELECT calls FROM coder_health.statement_latency
WHERE queryid IN (qid('SELECT pg_sleep(0.001)'), qid('SELECT pg_sleep(0.002)'))
ORDER BY calls DESC;
-- the parameterized statement is one statement of 4 calls on every version
SELECT count(*) AS statements, sum(calls) AS calls
FROM coder_health.statement_latency WHERE calls = 4;
-- and so is the repeated utility statement (5 calls)
SELECT count(*) AS statements FROM coder_health.statement_latency
WHERE calls = 5;
-- a statement in a multi-statement string is its own text: surrounding
-- whitespace does not count
CREATE TEMP TABLE t (x int);
SELECT coder_health.reset();
INSERT INTO t VALUES (1) \;   UPDATE t SET x = 2  ;
SELECT coder_health.flush();
SELECT count(*) AS found FROM coder_health.statement_latency
WHERE queryid IN (qid('INSERT INTO t VALUES (1)'), qid('UPDATE t SET x = 2'));
DROP FUNCTION qid(text);
