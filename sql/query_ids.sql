-- Which executions are one statement: the query id (docs/versions.md).
-- Where PostgreSQL computes query ids (pg_stat_statements loaded, or
-- compute_query_id = on) coder_health uses them; otherwise, here and on 13,
-- statements get an id from their normalized text: constants, comments,
-- spacing and keyword case do not count.  coder_health.query_id(text) says
-- which id a statement is kept under.
\set VERBOSITY terse
SELECT current_setting('compute_query_id', true) IS DISTINCT FROM 'on' AS text_ids;

SELECT coder_health.reset();
-- the same statement with different constants, spacing and comments
SELECT pg_sleep(0.001);
SELECT pg_sleep(0.002);
select  PG_SLEEP( 0.001 ) -- a comment
;
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

-- constants: one statement of 3 calls
SELECT calls FROM coder_health.statement_latency
WHERE queryid IN (qid('SELECT pg_sleep(0.001)'), qid('SELECT pg_sleep(0.002)'))
ORDER BY calls DESC;
-- the parameterized statement is one statement of 4 calls
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

-- the text ids: what normalizes away and what does not
SELECT coder_health.query_id('SELECT pg_notify(''workspace_owner:1'', $1)')
     = coder_health.query_id('select pg_notify( ''agent-logs:2'' , $1 );') AS constants_spacing_case,
       coder_health.query_id('SELECT x FROM t WHERE x = 1')
     = coder_health.query_id('SELECT x FROM t WHERE x = $1') AS constant_is_parameter,
       coder_health.query_id('SELECT x FROM t WHERE x = 1')
     = coder_health.query_id('SELECT x FROM t WHERE x = 10000000000') AS int4_is_int8,
       coder_health.query_id('SELECT x FROM t WHERE x = 1')
     = coder_health.query_id('SELECT x AS y FROM t WHERE x = 1') AS alias_is_same;
-- (an alias is part of the text: core ids, which hash the parse tree, would
-- not tell these two apart)
-- comments and a semicolon do not count; a utility statement's id is
-- hashtextextended of its exact text, as core 14/15 and pg_stat_statements 13
SELECT coder_health.query_id('SELECT pg_sleep(0.5) /* note */;')
     = coder_health.query_id('select pg_sleep(1.5)') AS comment_semicolon,
       coder_health.query_id('CHECKPOINT ') = hashtextextended('CHECKPOINT', 0)
         AS utility_exact_text_hash;
-- pg_stat_activity shows the same id (14+, where it has the column)
CREATE FUNCTION activity_query_id() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
  IF current_setting('server_version_num')::int < 140000 THEN
    RETURN NULL;
  END IF;
  EXECUTE 'SELECT query_id FROM pg_stat_activity WHERE pid = pg_backend_pid()' INTO id;
  RETURN id;
END $$;
SELECT coalesce(activity_query_id() = coder_health.query_id(
  'SELECT coalesce(activity_query_id() = coder_health.query_id(''x''), true) AS activity_shows_it'),
  true) AS activity_shows_it;
DROP FUNCTION activity_query_id();
-- where core computes ids (14+, compute_query_id = on) they are used, and
-- EXPLAIN VERBOSE shows the same
DO $$
DECLARE j json; core bigint; ours bigint;
BEGIN
  IF current_setting('server_version_num')::int >= 140000 THEN
    SET LOCAL compute_query_id = on;
    EXECUTE 'EXPLAIN (VERBOSE, FORMAT JSON) SELECT x FROM t WHERE x = 7' INTO j;
    core := (j->0->>'Query Identifier')::bigint;
    ours := coder_health.query_id('SELECT x FROM t WHERE x = 7');
    IF core IS DISTINCT FROM ours THEN
      RAISE EXCEPTION 'core id % but query_id() says %', core, ours;
    END IF;
    SET LOCAL compute_query_id = off;
    IF coder_health.query_id('SELECT x FROM t WHERE x = 7') = core THEN
      RAISE EXCEPTION 'text id equals core id %', core;
    END IF;
  END IF;
END $$;
-- bad input: PostgreSQL's own errors for bad SQL, ours for not one statement
SELECT coder_health.query_id('SELECT * FROM no_such_table');
SELECT coder_health.query_id('SELECT 1; SELECT 2');
\set VERBOSITY default
SELECT coder_health.query_id('');
DROP FUNCTION qid(text);
