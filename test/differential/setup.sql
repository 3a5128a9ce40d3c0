-- Objects for invisible.sql.  Run first, by psql -X -a, on both servers
-- (the one with coder_health created has done CREATE EXTENSION before).
SELECT current_setting('server_version_num')::int >= 140000 AS pg14,
       current_setting('server_version_num')::int >= 150000 AS pg15 \gset

-- EXPLAIN output with the values that may differ between two clusters
-- for reasons of their own masked: the query id hashes OIDs, which depend
-- on what else was created.  Presence of a line is kept.
CREATE FUNCTION explain_masked(q text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
  FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    RETURN NEXT regexp_replace(l, 'Query Identifier: -?[0-9]+', 'Query Identifier: N');
  END LOOP;
END $$;

CREATE TABLE t (x int PRIMARY KEY, s text);
INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 5) g;
CREATE TABLE t_log (x int);
ANALYZE t;

-- SQL functions: inlinable ones, one whose body mentions pg_notify only
-- in a comment, one that calls it
CREATE FUNCTION add_one(int) RETURNS int IMMUTABLE LANGUAGE sql
  AS $$ SELECT $1 + 1 $$;
CREATE FUNCTION add_two(int) RETURNS int IMMUTABLE LANGUAGE sql
  AS $$ SELECT $1 + 2 -- unlike pg_notify('c', 'x'), this has no side effect
  $$;
CREATE FUNCTION rows_upto(int) RETURNS SETOF t STABLE LANGUAGE sql
  AS $$ SELECT * FROM t WHERE x <= $1 /* pg_notify */ $$;
CREATE FUNCTION notify_sql(text) RETURNS void VOLATILE LANGUAGE sql
  AS $$ SELECT pg_notify('fchan', $1) $$;
CREATE FUNCTION notify_plpgsql(text) RETURNS void LANGUAGE plpgsql
  AS $$ BEGIN PERFORM pg_notify('fchan', $1); END $$;

-- pg_notify in a view and in a rule, and in a trigger
CREATE VIEW notify_view AS SELECT x, pg_notify('vchan', s)::text AS n FROM t;
CREATE TABLE ruled (x int);
CREATE RULE ruled_notify AS ON INSERT TO ruled
  DO ALSO SELECT pg_notify('rchan', NEW.x::text);
CREATE TABLE triggered (x int);
CREATE FUNCTION triggered_notify() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN PERFORM pg_notify('tchan', NEW.x::text); RETURN NEW; END $$;
CREATE TRIGGER triggered_notify AFTER INSERT ON triggered
  FOR EACH ROW EXECUTE FUNCTION triggered_notify();

-- look-alike functions in a schema of their own
CREATE SCHEMA lookalike;
CREATE FUNCTION lookalike.pg_notify(text, text) RETURNS text LANGUAGE sql
  AS $$ SELECT 'lookalike pg_notify(' || $1 || ', ' || $2 || ')' $$;
CREATE FUNCTION lookalike.pg_notify(varchar) RETURNS text LANGUAGE sql
  AS $$ SELECT 'lookalike pg_notify(' || $1 || ')' $$;

-- roles for the privilege section
CREATE ROLE regress_alice LOGIN;
CREATE ROLE regress_bob LOGIN INHERIT;
CREATE ROLE regress_carol LOGIN SUPERUSER;
CREATE ROLE regress_notifiers NOLOGIN;
GRANT regress_notifiers TO regress_bob;
GRANT SELECT ON t, notify_view TO PUBLIC;
GRANT USAGE ON SCHEMA lookalike TO PUBLIC;
