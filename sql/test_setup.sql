-- What several tests use, made once (pg_regress runs them in one database).
--
-- qid(q): the query id a statement gets: on 14+ core's (EXPLAIN VERBOSE shows
-- it), on 13 coder_health's fallback, a hash of the statement's own text
-- (docs/versions.md).
CREATE FUNCTION qid(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  IF current_setting('server_version_num')::int < 140000 THEN
    RETURN hashtextextended(q, 0);
  END IF;
  EXECUTE 'EXPLAIN (VERBOSE, FORMAT JSON) ' || q INTO j;
  RETURN (j->0->>'Query Identifier')::bigint;
END $$;
