-- The differential test (issue #18): run by psql -X -a after setup.sql on a
-- server without coder_health and on one with it preloaded and created.
-- The two outputs must be byte-identical (test/differential/run.sh; only
-- the PIDs of psql's "Asynchronous notification" lines are masked).
SELECT current_setting('server_version_num')::int >= 140000 AS pg14,
       current_setting('server_version_num')::int >= 150000 AS pg15 \gset
\pset pager off

-- ===== 1. Which functions named pg_notify exist
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) AS args
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname = 'pg_notify' ORDER BY 1, 3;

-- ===== 2. EXPLAIN VERBOSE of statement shapes that call pg_notify
\if :pg14
SET compute_query_id = off;
\endif
EXPLAIN (VERBOSE, COSTS OFF) SELECT pg_notify('c', 'x');
EXPLAIN (VERBOSE, COSTS OFF) SELECT x, pg_notify('c', s) FROM t;
EXPLAIN (VERBOSE, COSTS OFF) SELECT x FROM t WHERE pg_notify('c', s) IS NULL;
EXPLAIN (VERBOSE, COSTS OFF) SELECT x FROM (SELECT pg_notify('c', '1') AS x) s;
EXPLAIN (VERBOSE, COSTS OFF) SELECT notify_sql('a');
EXPLAIN (VERBOSE, COSTS OFF) SELECT notify_plpgsql('a');
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM notify_view;
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO ruled VALUES (1);
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO triggered VALUES (1);
EXPLAIN (VERBOSE, COSTS OFF) UPDATE t SET s = s WHERE pg_notify('c', s) IS NULL AND x = 1;
EXPLAIN (VERBOSE, COSTS OFF)
  WITH n AS (SELECT pg_notify('c', s) FROM t) SELECT count(*) FROM n;
EXPLAIN (VERBOSE, COSTS OFF) SELECT pg_catalog.pg_notify('c', 'x');
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM t;

-- ===== 3. SQL-function inlining
EXPLAIN (VERBOSE, COSTS OFF) SELECT add_one(g) FROM generate_series(1, 3) g;
EXPLAIN (VERBOSE, COSTS OFF) SELECT add_two(g) FROM generate_series(1, 3) g;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM rows_upto(2);
SELECT add_one(1), add_two(1), (SELECT count(*) FROM rows_upto(2));

-- ===== 4. query_id with compute_query_id off, auto and on
\if :pg14
SET compute_query_id = off;
SELECT coalesce(query_id, 0) <> 0 AS query_id_set
  FROM pg_stat_activity WHERE pid = pg_backend_pid();
EXPLAIN (VERBOSE, COSTS OFF) SELECT x FROM t WHERE x = 1;
SELECT explain_masked('SELECT pg_notify(''c'', ''x'')');
SET compute_query_id = auto;
SELECT coalesce(query_id, 0) <> 0 AS query_id_set
  FROM pg_stat_activity WHERE pid = pg_backend_pid();
EXPLAIN (VERBOSE, COSTS OFF) SELECT x FROM t WHERE x = 1;
SELECT explain_masked('SELECT pg_notify(''c'', ''x'')');
SET compute_query_id = on;
SELECT coalesce(query_id, 0) <> 0 AS query_id_set
  FROM pg_stat_activity WHERE pid = pg_backend_pid();
SELECT explain_masked('SELECT x FROM t WHERE x = 1');
SELECT explain_masked('SELECT pg_notify(''c'', ''x'')');
RESET compute_query_id;
SHOW compute_query_id;
\endif

-- ===== 5. Prepared statements: generic or custom plans
PREPARE by_key(int) AS SELECT s FROM t WHERE x = $1;
PREPARE notify_key(int) AS SELECT pg_notify('pchan', s) FROM t WHERE x = $1;
PREPARE notify_text(text) AS SELECT pg_notify('pchan', $1);
EXECUTE by_key(1); EXECUTE by_key(2); EXECUTE by_key(3); EXECUTE by_key(4);
EXECUTE by_key(5); EXECUTE by_key(1); EXECUTE by_key(2); EXECUTE by_key(3);
EXECUTE notify_key(1); EXECUTE notify_key(2); EXECUTE notify_key(3);
EXECUTE notify_key(4); EXECUTE notify_key(5); EXECUTE notify_key(1);
EXECUTE notify_key(2); EXECUTE notify_key(3);
EXECUTE notify_text('a'); EXECUTE notify_text('b'); EXECUTE notify_text('c');
EXECUTE notify_text('d'); EXECUTE notify_text('e'); EXECUTE notify_text('f');
EXECUTE notify_text('g'); EXECUTE notify_text('h');
\if :pg14
SELECT name, generic_plans, custom_plans FROM pg_prepared_statements ORDER BY name;
\else
SELECT name FROM pg_prepared_statements ORDER BY name;
\endif
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE notify_key(1);
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE notify_text('z');
-- a plan that survives a change of the table it reads is replanned
ALTER TABLE t ADD COLUMN extra int;
EXECUTE notify_key(1);
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE notify_key(1);
ALTER TABLE t DROP COLUMN extra;
DEALLOCATE ALL;

-- ===== 6. Function statistics with track_functions = all
SET track_functions = 'all';
BEGIN;
SELECT notify_sql('s1');
SELECT notify_plpgsql('s2');
SELECT pg_notify('schan', 's3');
SELECT * FROM notify_view;
INSERT INTO ruled VALUES (2);
SELECT funcname, calls FROM pg_stat_xact_user_functions ORDER BY funcname;
COMMIT;
\if :pg15
SELECT pg_stat_force_next_flush();
SELECT 1 AS flushed;
SELECT funcname, calls FROM pg_stat_user_functions ORDER BY funcname;
\endif
RESET track_functions;

-- ===== 7. NOTIFY semantics (psql prints what is delivered)
LISTEN a; LISTEN b; LISTEN vchan; LISTEN rchan; LISTEN tchan; LISTEN fchan;
-- delivery order, and duplicates folded within one transaction
BEGIN;
NOTIFY a, '1'; NOTIFY b, '1'; NOTIFY a, '2'; NOTIFY a, '1';
SELECT pg_notify('b', '1'), pg_notify('a', '3'), pg_notify('b', '2');
NOTIFY a; NOTIFY a;
COMMIT;
SELECT 1 AS delivered;
-- each statement its own transaction: no folding
SELECT pg_notify('a', '1');
SELECT pg_notify('a', '1');
-- from a view, a rule, a trigger and functions
SELECT x, n FROM notify_view ORDER BY x;
INSERT INTO ruled VALUES (3);
INSERT INTO triggered VALUES (3);
SELECT notify_sql('f1'), notify_plpgsql('f2');
DO $$ BEGIN PERFORM pg_notify('a', 'do'); END $$;
-- a rolled-back transaction delivers nothing
BEGIN; NOTIFY a, 'rolled back'; SELECT pg_notify('a', 'rolled back too'); ROLLBACK;
-- a savepoint rolled back drops its notifications only
BEGIN;
NOTIFY a, 'kept';
SAVEPOINT s1; NOTIFY a, 'dropped'; ROLLBACK TO s1;
NOTIFY a, 'kept 2';
COMMIT;
-- payload too long, and other errors (on a channel nobody listens to)
SELECT pg_notify('big', repeat('x', 8000));
SELECT pg_notify('big', repeat('x', 7999));
SELECT pg_notify('big', repeat('é', 4000));
SELECT pg_notify('big', repeat('é', 3999));
SELECT pg_notify('', 'x');
SELECT pg_notify(repeat('c', 64), 'x');
SELECT pg_notify(NULL, 'x');
SELECT pg_notify('a', NULL);
-- LISTEN and UNLISTEN in savepoints that roll back
UNLISTEN *;
BEGIN;
LISTEN l1;
SAVEPOINT s1; LISTEN l2; UNLISTEN l1; ROLLBACK TO s1;
SAVEPOINT s2; LISTEN l3; RELEASE s2;
COMMIT;
SELECT pg_listening_channels() ORDER BY 1;
NOTIFY l1, 'to l1'; NOTIFY l2, 'to l2'; NOTIFY l3, 'to l3';
BEGIN; UNLISTEN l1; SAVEPOINT s; LISTEN l4; ROLLBACK TO s; ROLLBACK;
SELECT pg_listening_channels() ORDER BY 1;
BEGIN; UNLISTEN *; ROLLBACK;
SELECT pg_listening_channels() ORDER BY 1;
NOTIFY l1, 'still'; NOTIFY l4, 'never';
UNLISTEN *;
SELECT pg_listening_channels() ORDER BY 1;
-- NOTIFY in a prepared transaction is refused
BEGIN; NOTIFY a, 'x'; PREPARE TRANSACTION 'p'; ROLLBACK;

-- ===== 8. search_path with look-alike functions
LISTEN c;
SET search_path = lookalike, pg_catalog, public;
SELECT pg_notify('c', 'which');
SELECT pg_notify('c'::varchar);
EXPLAIN (VERBOSE, COSTS OFF) SELECT pg_notify('c', 'which');
SET search_path = public, lookalike;
SELECT pg_notify('c', 'pg_catalog first');
EXPLAIN (VERBOSE, COSTS OFF) SELECT pg_notify('c', 'pg_catalog first');
SELECT lookalike.pg_notify('c', 'qualified');
RESET search_path;
UNLISTEN c;

-- ===== 9. Privileges: a hardening script, an unprivileged role, and
-- rights that change in the middle of a session
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname NOT IN ('pg_catalog') AND p.prokind IN ('f', 'w')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END $$;
SET ROLE regress_alice;
LISTEN c;
SELECT pg_notify('c', 'alice');
SELECT x FROM (SELECT pg_notify('c', 'alice sub') AS x) s;
DO $$ BEGIN PERFORM pg_notify('c', 'alice do'); END $$;
SELECT x, n FROM notify_view ORDER BY x;
SELECT notify_sql('alice');
SELECT lookalike.pg_notify('c', 'alice');
UNLISTEN c;
RESET ROLE;
-- pg_notify itself revoked from PUBLIC, granted through a role
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) TO regress_notifiers;
SET ROLE regress_alice;
SELECT pg_notify('c', 'alice denied');
DO $$ BEGIN PERFORM pg_notify('c', 'alice denied'); END $$;
NOTIFY c, 'alice may NOTIFY';
RESET ROLE;
SET ROLE regress_bob;
SELECT pg_notify('c', 'bob inherits');
SELECT x FROM (SELECT pg_notify('c', 'bob') AS x) s;
DO $$ BEGIN PERFORM pg_notify('c', 'bob'); END $$;
RESET ROLE;
ALTER ROLE regress_bob NOINHERIT;
SET ROLE regress_bob;
SELECT pg_notify('c', 'bob noinherit');
SELECT x FROM (SELECT pg_notify('c', 'bob') AS x) s;
DO $$ BEGIN PERFORM pg_notify('c', 'bob'); END $$;
RESET ROLE;
ALTER ROLE regress_bob INHERIT;
REVOKE regress_notifiers FROM regress_bob;
SET ROLE regress_bob;
SELECT pg_notify('c', 'bob revoked');
DO $$ BEGIN PERFORM pg_notify('c', 'bob revoked'); END $$;
RESET ROLE;
-- a superuser demoted
SET ROLE regress_carol;
SELECT pg_notify('c', 'carol superuser');
DO $$ BEGIN PERFORM pg_notify('c', 'carol'); END $$;
RESET ROLE;
ALTER ROLE regress_carol NOSUPERUSER;
SET ROLE regress_carol;
SELECT pg_notify('c', 'carol demoted');
SELECT x FROM (SELECT pg_notify('c', 'carol') AS x) s;
DO $$ BEGIN PERFORM pg_notify('c', 'carol'); END $$;
RESET ROLE;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) TO PUBLIC;
SET ROLE regress_carol;
SELECT pg_notify('c', 'carol again');
RESET ROLE;

-- ===== 10. The same statements once more after all of the above
\if :pg14
SET compute_query_id = off;
\endif
EXPLAIN (VERBOSE, COSTS OFF) SELECT add_two(g) FROM generate_series(1, 3) g;
EXPLAIN (VERBOSE, COSTS OFF) SELECT x, pg_notify('c', s) FROM t;
