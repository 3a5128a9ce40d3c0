-- What several tests use, made once (pg_regress runs them in one database).
--
-- qid(q): the query id a statement is kept under (coder_health.query_id:
-- core's where PostgreSQL computes query ids, else from the normalized text).
CREATE FUNCTION qid(q text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN coder_health.query_id(q);
END $$;
