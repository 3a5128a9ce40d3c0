-- coder_health keeps every statement's text itself (#21 item 2): without
-- pg_stat_statements (not loaded on this server), constants out (as '?'),
-- comments and spacing out, bounded, and masked for a role without
-- pg_read_all_stats as pg_stat_statements masks it.
\set VERBOSITY terse
SELECT coder_health.reset();
SELECT setting NOT LIKE '%pg_stat_statements%' AS no_pg_stat_statements
FROM pg_settings WHERE name = 'shared_preload_libraries';

CREATE TABLE texts_t (id int, secret text);
INSERT INTO texts_t VALUES (1, 'hunter2'), (2, 'swordfish');
SELECT coder_health.reset();
-- psql drops a leading "--" comment: sent as is with \gexec
SELECT E'-- name: GetSecretByID :one\nSELECT id, secret\n  FROM texts_t\n WHERE secret = ''hunter2'' AND id = 1' \gexec
SELECT id FROM texts_t WHERE secret = 'swordfish' /* a comment */ ;
select ID from TEXTS_T where SECRET = E'\x73wordfish';
UPDATE texts_t SET secret = 'correct horse' WHERE id = 42;
SELECT coder_health.flush();

-- each statement by its text; the sqlc name beside it
SELECT query_name, query, calls
FROM coder_health.statement_latency
WHERE query ILIKE '%texts_t%'
ORDER BY query COLLATE "C";
-- every row has a text, none holds a constant
SELECT count(*) >= 5 AS five_or_more, count(*) FILTER (WHERE query IS NULL) AS without_text,
       count(*) FILTER (WHERE query ~ 'hunter2|swordfish|correct horse|x73') AS with_a_constant
FROM coder_health.statement_latency;

-- a session that runs many new statements at once (more than the 16 notes
-- a backend can post before a fold): every one still gets its text
SELECT 'SELECT ' || g || ' AS col_' || g FROM generate_series(1, 40) g \gexec
SELECT coder_health.flush();
SELECT count(*) AS texts_of_40 FROM coder_health.statement_latency
WHERE query ~ '^SELECT \? AS col_[0-9]+$';

-- bounded: a long statement is cut at 1 kB, at a character boundary, and says so
SELECT 'SELECT count(*) FROM (SELECT ' || string_agg('id AS "é' || g || '"', ', ') || ' FROM texts_t) s'
FROM generate_series(1, 300) g \gexec
SELECT coder_health.flush();
SELECT octet_length(query) AS bytes, right(query, 3) AS ends_with
FROM coder_health.statement_latency WHERE query LIKE 'SELECT count(*) FROM (SELECT id AS "é1", %';

-- masked for a role without pg_read_all_stats, as pg_stat_statements masks:
-- its own statements in full, another role's as <insufficient privilege>
CREATE ROLE texts_reader;
GRANT USAGE ON SCHEMA coder_health TO texts_reader;
GRANT SELECT ON coder_health.statement_latency TO texts_reader;
GRANT EXECUTE ON FUNCTION coder_health.statement_latency_internal(),
                          coder_health.flush() TO texts_reader;
GRANT SELECT ON texts_t TO texts_reader;
SET ROLE texts_reader;
SELECT count(*) FROM texts_t WHERE id = 7;
SELECT coder_health.flush();
SELECT (rolname = current_user) AS own, query_name, queryid IS NOT NULL AS has_queryid, query
FROM coder_health.statement_latency
WHERE query ILIKE '%texts_t%' OR query = '<insufficient privilege>'
GROUP BY 1, 2, 3, 4
ORDER BY own, query COLLATE "C";
RESET ROLE;

-- the health verdict names the slowest statement by its text, not its id
SELECT coder_health.reset();
SELECT pg_sleep(0.2);
SELECT coder_health.flush();
-- (a single call is no culprit under the default minimum of 100 calls)
SELECT h.detail LIKE '%slowest: none with 100 calls or more' AS one_off_not_named
FROM coder_health.health h WHERE h.check_name = 'statement_p99';
SET coder_health.health_min_statements = 1;
SELECT h.detail LIKE '%slowest: SELECT pg_sleep(?) (p99 %' AS named_by_text,
       h.detail LIKE '%queryid%' AS named_by_id
FROM coder_health.health h WHERE h.detail LIKE '%slowest:%';
RESET coder_health.health_min_statements;

DROP TABLE texts_t;
REVOKE ALL ON SCHEMA coder_health FROM texts_reader;
REVOKE ALL ON coder_health.statement_latency FROM texts_reader;
REVOKE ALL ON FUNCTION coder_health.statement_latency_internal(), coder_health.flush() FROM texts_reader;
DROP ROLE texts_reader;
