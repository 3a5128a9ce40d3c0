-- LISTEN/NOTIFY: committed notifications per channel family, exactly what
-- PostgreSQL delivers, through every way of sending one; pg_notify keeps
-- PostgreSQL's own behaviour and errors.
SELECT coder_health.notify_reset();

-- NOTIFY statements: committed, rolled back, in a rolled-back savepoint,
-- duplicates (same channel and payload: PostgreSQL delivers one)
NOTIFY "t_stmt:1", 'a';
BEGIN;
NOTIFY "t_stmt:2", 'a';
NOTIFY "t_stmt:2", 'a';
NOTIFY "t_stmt:2", 'b';
SAVEPOINT s1;
NOTIFY "t_stmt:3", 'a';
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
NOTIFY "t_stmt:4";
NOTIFY "t_stmt:2", 'b';
RELEASE SAVEPOINT s2;
COMMIT;
BEGIN;
NOTIFY "t_stmt:5", 'lost';
ROLLBACK;
-- expect 4: t_stmt:1/a, t_stmt:2/a, t_stmt:2/b, t_stmt:4/''

-- pg_notify from SQL, NULL payload = empty payload
SELECT pg_notify('t_func:6f1c2a9e-1234-4abc-9def-0123456789ab', 'x');
SELECT pg_notify('t_func:6f1c2a9e-1234-4abc-9def-0123456789ab', NULL);
SELECT count(pg_notify('t_func:' || g, 'p')) FROM generate_series(1, 10) g;
BEGIN;
SELECT pg_notify('t_func:99', 'rolled back');
ROLLBACK;
BEGIN;
SELECT pg_notify('t_func:98', 'kept');
SAVEPOINT s;
SELECT pg_notify('t_func:97', 'dropped with the savepoint');
ROLLBACK TO SAVEPOINT s;
COMMIT;
-- expect 2 + 10 + 1 = 13

-- prepared statements (custom plans, then the generic plan after five)
PREPARE t_prep(text) AS SELECT pg_notify('t_prep_' || $1, 'x');
EXECUTE t_prep('1'); EXECUTE t_prep('2'); EXECUTE t_prep('3');
EXECUTE t_prep('4'); EXECUTE t_prep('5'); EXECUTE t_prep('6');
EXECUTE t_prep('7');
DEALLOCATE t_prep;
-- expect 7

-- PL/pgSQL: PERFORM, NOTIFY, and an exception block that rolls back
DO $$
BEGIN
    FOR i IN 1..5 LOOP
        PERFORM pg_notify('t_plpgsql', 'n' || i);
    END LOOP;
    NOTIFY t_plpgsql, 'statement';
    BEGIN
        PERFORM pg_notify('t_plpgsql', 'undone');
        RAISE EXCEPTION 'roll back the block';
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
END
$$;
-- expect 6

-- a trigger
CREATE TABLE t_notify_rows (id int);
CREATE FUNCTION t_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('t_trig:' || NEW.id, 'row');
    RETURN NEW;
END
$$;
CREATE TRIGGER t_notify_row AFTER INSERT ON t_notify_rows
    FOR EACH ROW EXECUTE FUNCTION t_notify_row();
INSERT INTO t_notify_rows SELECT generate_series(1, 4);
BEGIN;
INSERT INTO t_notify_rows VALUES (5), (6);
ROLLBACK;
-- expect 4

-- a SQL function that is not inlined (SETOF: run by the SQL executor)
CREATE FUNCTION t_notify_sql(n int) RETURNS SETOF void LANGUAGE sql AS
  $$ SELECT pg_notify('t_sqlfn', n::text) $$;
SELECT t_notify_sql(1);
SELECT t_notify_sql(2);
-- and one the planner inlines into the caller
CREATE FUNCTION t_notify_inl(n int) RETURNS void LANGUAGE sql AS
  $$ SELECT PG_NOTIFY('t_sqlfn', 'inl' || n) $$;
SELECT t_notify_inl(1);
SELECT t_notify_inl(g % 2) FROM generate_series(1, 4) g;
-- expect 2 + 1 + 2 (inl1 is a duplicate within its transaction only) = 5

SELECT channel_family, notifications, bytes, max_payload_bytes,
       distinct_channels, last_notify_at IS NOT NULL AS seen
FROM coder_health.notify_channels
WHERE channel_family LIKE 't\_%'
ORDER BY channel_family;

-- read-only transactions may notify in PostgreSQL; still so, and counted
BEGIN READ ONLY;
SELECT pg_notify('t_ro', 'x');
COMMIT;
SELECT notifications FROM coder_health.notify_channels WHERE channel_family = 't_ro';

-- 7,999-byte payloads work, 8,000 bytes fail with PostgreSQL's own error;
-- the same with counting off (track_notify = off)
SELECT pg_notify('t_big', repeat('x', 7999));
SELECT pg_notify('t_big', repeat('x', 8000));
SELECT pg_notify(NULL, 'x');
SELECT pg_notify('', 'x');
SELECT pg_notify(repeat('c', 64), 'x');
SET coder_health.track_notify = off;
SELECT pg_notify('t_big', repeat('x', 7999));
SELECT pg_notify('t_big', repeat('x', 8000));
SELECT pg_notify(NULL, 'x');
SELECT pg_notify(repeat('c', 64), 'x');
RESET coder_health.track_notify;
SELECT notifications, max_payload_bytes FROM coder_health.notify_channels
WHERE channel_family = 't_big';

-- plans call pg_catalog.pg_notify itself (the query id line EXPLAIN shows
-- with compute_query_id differs by version, so it is left out)
CREATE FUNCTION plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
  FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    IF l NOT LIKE 'Query Identifier:%' THEN
      RETURN NEXT l;
    END IF;
  END LOOP;
END $$;
SELECT plan_lines($$SELECT pg_notify('t_explain', 'x')$$);
-- a SQL function whose body merely mentions pg_notify is inlined, as
-- without coder_health (0.3.0 stopped inlining it)
CREATE FUNCTION t_inline_me(n int) RETURNS int LANGUAGE sql IMMUTABLE AS
  $$ SELECT n + 1 /* not pg_notify */ $$;
SELECT plan_lines($$SELECT t_inline_me(g) FROM generate_series(1, 2) g$$);
DROP FUNCTION t_inline_me(int);
DROP FUNCTION plan_lines(text);

-- pg_notify inside a view and inside a rule: counted like any other
-- (0.3.0 missed both: the view's and the rule's calls were never planned
-- through its swap)
CREATE VIEW t_notify_view AS
  SELECT pg_notify('t_view:' || g, 'v')::text AS n FROM generate_series(1, 3) g;
SELECT count(n) FROM t_notify_view;
SELECT count(n) FROM t_notify_view;
CREATE TABLE t_rule_target (id int);
CREATE RULE t_notify_rule AS ON INSERT TO t_rule_target
  DO ALSO SELECT pg_notify('t_rule:' || NEW.id, 'r');
INSERT INTO t_rule_target VALUES (1), (2);
BEGIN;
INSERT INTO t_rule_target VALUES (3);
ROLLBACK;
-- expect 6 (3 + 3) and 2
SELECT channel_family, notifications, bytes FROM coder_health.notify_channels
WHERE channel_family IN ('t_view:*', 't_rule:*') ORDER BY 1;
DROP VIEW t_notify_view;
DROP TABLE t_rule_target;

-- EXECUTE on pg_notify is still PostgreSQL's to grant
BEGIN;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) FROM PUBLIC;
CREATE ROLE t_notify_nobody;
SET ROLE t_notify_nobody;
SELECT pg_notify('t_denied', 'x');
ROLLBACK;

-- 10,000 distinct workspace_owner:<uuid> channels are one family
SELECT count(pg_notify('workspace_owner:' || gen_random_uuid(), ''))
FROM generate_series(1, 10000);
SELECT count(*) AS families, sum(notifications) AS notifications,
       bool_and(distinct_channels BETWEEN 8000 AND 12000) AS distinct_about_10000
FROM coder_health.notify_channels WHERE channel_family LIKE 'workspace_owner%';

-- how names become families
SELECT pg_notify(c, '') FROM (VALUES
    ('prebuild_claimed_6f1c2a9e-1234-4abc-9def-0123456789ab'),
    ('latency-measure:6F1C2A9E-1234-4ABC-9DEF-0123456789AB'),
    ('tailnet_peer_update'),
    ('t_v2_node42:port5432'),
    ('t_hash_0123456789abcdef0123')) v(c);
SELECT channel_family FROM coder_health.notify_channels
WHERE channel_family ~ '^(prebuild|latency|tailnet|t_v|t_hash)'
ORDER BY 1;

-- duplicates (same channel and payload in one transaction) count once, as
-- PostgreSQL delivers them, also when the first notification of the
-- transaction is the duplicate or was rolled back with its savepoint
BEGIN;
NOTIFY u_dedup, 'a'; NOTIFY u_dedup, 'b'; NOTIFY u_dedup, 'a';
COMMIT;
-- 2 so far
BEGIN;
SAVEPOINT s; NOTIFY u_dedup, 'p'; ROLLBACK TO s;
NOTIFY u_dedup, 'q'; NOTIFY u_dedup, 'q'; NOTIFY u_dedup, 'p';
COMMIT;
-- 4 so far
BEGIN;
NOTIFY u_dedup, 'a'; SAVEPOINT s; NOTIFY u_dedup, 'b'; ROLLBACK TO s;
NOTIFY u_dedup, 'a'; NOTIFY u_dedup_other, 'a';
COMMIT;
-- 5: same payload on another channel is no duplicate
SELECT channel_family, notifications, bytes FROM coder_health.notify_channels
WHERE channel_family LIKE 'u\_dedup%' ORDER BY 1;

-- totals in the queue view add the families up
SELECT q.notifications = (SELECT sum(notifications) FROM coder_health.notify_channels)
           AS totals_match,
       q.supported, q.commit_p50_ms > 0 AS commit_timed,
       q.commit_p99_ms >= q.commit_p50_ms AS p99_ge_p50,
       q.unread_pages
FROM coder_health.notify_queue q;

-- JIT-compiled expressions call pg_notify like interpreted ones: counted
-- either way
SET jit = on;
SET jit_above_cost = 0;
SELECT pg_notify('t_jit', 'a');
PREPARE t_jit_prep(text) AS SELECT pg_notify('t_jit', $1);
EXECUTE t_jit_prep('b');
DEALLOCATE t_jit_prep;
RESET jit_above_cost;
RESET jit;
SELECT pg_notify('t_jit', 'c');
SELECT notifications FROM coder_health.notify_channels WHERE channel_family = 't_jit';
-- a target list that is grouped, made distinct, sorted or expanded, where
-- the call runs below the top plan node: counted as well
SELECT DISTINCT pg_notify('t_shape', 'distinct')::text;
SELECT pg_notify('t_shape', 'group')::text GROUP BY 1;
SELECT pg_notify('t_shape', 'sort'), 2 AS k ORDER BY k;
SELECT pg_notify('t_shape', 'srf'), generate_series(1, 2);
SELECT notifications FROM coder_health.notify_channels WHERE channel_family = 't_shape';

DROP TABLE t_notify_rows;
DROP FUNCTION t_notify_row();
DROP FUNCTION t_notify_sql(int);
DROP FUNCTION t_notify_inl(int);
