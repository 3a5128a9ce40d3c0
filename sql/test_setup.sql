-- What several tests use, made once (pg_regress runs them in one database).
--
-- qid(q): the query id a statement is kept under (coder_health.query_id:
-- core's where PostgreSQL computes query ids, else from the normalized text).
CREATE FUNCTION qid(q text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN coder_health.query_id(q);
END $$;

-- marks: clock readings a test takes between its statements, the ground
-- truth a recorded duration is bounded by (a statement runs after the mark
-- taken before it is sent and before the mark taken after it returned, so
-- what coder_health records for it can be no longer, however loaded the
-- machine).  wall_ms(a, b): milliseconds from mark a to mark b.
CREATE TABLE marks (name text PRIMARY KEY, at timestamptz NOT NULL);
CREATE FUNCTION wall_ms(a text, b text) RETURNS numeric LANGUAGE sql AS $$
  SELECT (1000 * extract(epoch FROM (SELECT at FROM marks WHERE name = b)
                                  - (SELECT at FROM marks WHERE name = a)))::numeric
$$;
-- wait_until(condition, what): poll a boolean query every 20 ms until it is
-- true; an error after 60 s (no test waits for a state with a bare sleep)
CREATE FUNCTION wait_until(condition text, what text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '60 s';
  ok boolean;
BEGIN
  LOOP
    EXECUTE condition INTO ok;
    EXIT WHEN ok IS TRUE;
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION 'waited 60 s for %', what;
    END IF;
    PERFORM pg_sleep(0.02);
  END LOOP;
  RETURN what;
END $$;
