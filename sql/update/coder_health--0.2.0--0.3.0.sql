-- coder_health 0.2.0 -> 0.3.0 (ALTER EXTENSION coder_health UPDATE)
--
-- 0.3.0 stops asking PostgreSQL for query ids: where no one else does
-- (pg_stat_statements, compute_query_id = on), statements get ids from
-- their normalized text, which costs a fraction of core's (docs/versions.md).
-- coder_health.query_id(text) gives the id a statement is kept under.
\echo Use "ALTER EXTENSION coder_health UPDATE TO '0.3.0'" to load this file. \quit

CREATE FUNCTION coder_health.query_id(statement text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'coder_health_query_id'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.query_id(text) IS
  'The queryid under which a statement (one, with its text as sent) is kept: core''s query id where PostgreSQL computes one, else a hash of its normalized text';

REVOKE ALL ON FUNCTION coder_health.query_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coder_health.query_id(text) TO pg_monitor;
