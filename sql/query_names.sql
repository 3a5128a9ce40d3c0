-- Statements named the way sqlc names them ("-- name: X :kind" at the start).
-- psql drops a leading "--" comment before sending a query, so these send
-- their exact text with \gexec.
\set VERBOSITY terse
SELECT coder_health.reset();

-- named, simple protocol; three executions of one and one of another shape
-- (a mark before and after each 10 ms call, test_setup.sql: each took at
-- most the time between its marks, however loaded the machine)
SELECT format('INSERT INTO marks VALUES (%L, clock_timestamp())', 'named' || g),
       E'-- name: GetWorkspaceAgentByID :one\nSELECT pg_sleep(0.01)'
FROM generate_series(1, 3) g \gexec
INSERT INTO marks VALUES ('named4', clock_timestamp());
SELECT E'-- name: GetWorkspaceAgentByID :one\nSELECT 1 AS shape_two, pg_sleep(0.05)' \gexec
-- (statement shapes differ in their number of columns: column aliases and
-- constants do not change a query id)
-- two statements of one query string, each named by its own part
SELECT E'-- name: FirstOfTwo :exec\nSELECT 1; -- name: SecondOfTwo :one\nSELECT 1, 2' \gexec
-- a name longer than the limit is cut, never overflows
SELECT E'-- name: ' || repeat('N', 100) || E' :one\nSELECT 1, 2, 3' \gexec
-- look-alikes name nothing
SELECT E'SELECT 1, 2, 3, 4 -- name: Hidden :one' \gexec
SELECT E'/* -- name: Boxed :one */ SELECT 1, 2, 3, 4, 5' \gexec
SELECT E'--name: Tight :one\nSELECT 1, 2, 3, 4, 5, 6' \gexec
SELECT 1, 2, 3, 4, 5, 6, 7;
SELECT coder_health.flush();

SELECT query_name, count(*) AS entries, sum(calls) AS calls
FROM coder_health.statement_latency
WHERE query_name IS NOT NULL
GROUP BY query_name
ORDER BY query_name;

-- unnamed statements have no name
SELECT count(*) >= 4 AS lookalikes_unnamed FROM coder_health.statement_latency
WHERE query_name IS NULL AND calls = 1;

SELECT length(query_name) AS cut_to FROM coder_health.statement_latency
WHERE query_name LIKE 'NNN%';

-- the merged view: both shapes of GetWorkspaceAgentByID, 4 calls, 2 queryids,
-- percentiles of the union (3 x 10 ms, 1 x 50 ms): p50 is one of the 10 ms
-- calls, at most the slowest of them took (within 1%)
SELECT query_name, calls, errors, queryids,
       p50_ms >= 9.9 AND p50_ms <= 1.01 * (SELECT max(wall_ms('named' || g, 'named' || (g + 1)))
                                           FROM generate_series(1, 3) g) AS p50_ok,
       p99_ms >= 49.5 AND max_ms >= 50 AS p99_ok,
       min_ms >= 10 AS min_ok,
       abs(total_ms - (SELECT sum(total_ms) FROM coder_health.statement_latency
                       WHERE query_name = 'GetWorkspaceAgentByID')) < 0.01 AS total_is_sum,
       recent_calls
FROM coder_health.query_latency
WHERE query_name = 'GetWorkspaceAgentByID';

-- and a Prometheus histogram row per name
SELECT scope, query_name, count
FROM coder_health.latency_buckets
WHERE scope = 'query' AND query_name IN ('GetWorkspaceAgentByID', 'SecondOfTwo')
ORDER BY query_name;
