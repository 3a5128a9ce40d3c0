-- coder_health 0.3.0 -> 0.4.0 (ALTER EXTENSION coder_health UPDATE)
--
-- What changed in the SQL objects, each with its reason (docs/versions.md).
\echo Use "ALTER EXTENSION coder_health UPDATE TO '0.4.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- #19 security: reading coder_health never runs another role's code.
-- coder_replicas() reads Coder's replicas table with a heap scan (no view,
-- function, operator or policy of another role runs as the reader), and
-- statement_texts() calls pg_stat_statements by the OID of the extension's
-- own function (no look-alike or overload can be called or make it
-- ambiguous).  Both are now C functions.
CREATE OR REPLACE FUNCTION coder_health.coder_replicas(
    OUT replica_id text, OUT hostname text, OUT relay_host text,
    OUT region_id integer, OUT version text, OUT heartbeat_age_s float8,
    OUT replica_db_latency_ms float8, OUT stopped boolean,
    OUT source_ok boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_coder_replicas'
LANGUAGE C STRICT VOLATILE;

CREATE OR REPLACE FUNCTION coder_health.statement_texts(
    OUT dbid oid, OUT userid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_statement_texts'
LANGUAGE C STRICT VOLATILE;

-- ---------------------------------------------------------------------------
-- #18: notifications are counted from PostgreSQL's NOTIFY queue (each
-- committing backend reads its own entries back), so the planner no longer
-- swaps pg_notify for a wrapper: the wrapper and its schema go.  The C
-- symbol stays in the library, raising an error with a hint, so a 0.3.0
-- installation that has not been updated still loads.
DROP FUNCTION coder_health_notify.pg_notify(text, text);
DROP SCHEMA coder_health_notify;
