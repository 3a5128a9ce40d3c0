-- ---------------------------------------------------------------------------
-- Statement latency
-- ---------------------------------------------------------------------------

CREATE FUNCTION coder_health.statement_latency_internal(
    OUT dbid oid, OUT userid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query_name text, OUT query text,
    OUT calls bigint, OUT errors bigint, OUT total_ms float8, OUT mean_ms float8,
    OUT min_ms float8, OUT p50_ms float8, OUT p90_ms float8, OUT p95_ms float8,
    OUT p99_ms float8, OUT p999_ms float8, OUT max_ms float8,
    OUT recent_calls bigint, OUT recent_errors bigint,
    OUT recent_p50_ms float8, OUT recent_p95_ms float8,
    OUT recent_p99_ms float8, OUT recent_max_ms float8,
    OUT first_seen timestamptz, OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_statement_latency_with_text'
LANGUAGE C STRICT VOLATILE;

-- pg_stat_statements' texts (as the client wrote them, with its own
-- privilege rules), for a DBA who wants them beside coder_health's own
-- (statement_latency.query, kept by coder_health with or without
-- pg_stat_statements): join on (dbid, userid, queryid, toplevel).
-- Written in C (src/latency/pgss_texts.c): the function is found as a member of the
-- extension and called by OID, so no look-alike or overload in any schema
-- can be called instead or make the call ambiguous.
CREATE FUNCTION coder_health.statement_texts(
    OUT dbid oid, OUT userid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_statement_texts'
LANGUAGE C STRICT VOLATILE;

-- Like pg_stat_activity and pg_stat_statements: without pg_read_all_stats a
-- role sees every statement's numbers but only its own statements' identity
-- (the C function masks queryid, query_name and query itself; query is
-- '<insufficient privilege>' then, as in pg_stat_statements).  query is the
-- text coder_health keeps (constants as '?', comments and spacing out; see
-- docs/latency.md): there with or without pg_stat_statements.
CREATE VIEW coder_health.statement_latency AS
SELECT l.dbid, d.datname, l.userid, r.rolname,
       l.queryid,
       l.toplevel,
       l.query_name,
       l.query,
       l.calls, l.errors,
       -- milliseconds to the microsecond, as numeric (a fixed precision, no
       -- exponent notation), as in every view
       round(l.total_ms::numeric, 3) AS total_ms, round(l.mean_ms::numeric, 3) AS mean_ms, round(l.min_ms::numeric, 3) AS min_ms,
       round(l.p50_ms::numeric, 3) AS p50_ms, round(l.p90_ms::numeric, 3) AS p90_ms, round(l.p95_ms::numeric, 3) AS p95_ms,
       round(l.p99_ms::numeric, 3) AS p99_ms, round(l.p999_ms::numeric, 3) AS p999_ms, round(l.max_ms::numeric, 3) AS max_ms,
       l.recent_calls, l.recent_errors,
       round(l.recent_p50_ms::numeric, 3) AS recent_p50_ms, round(l.recent_p95_ms::numeric, 3) AS recent_p95_ms,
       round(l.recent_p99_ms::numeric, 3) AS recent_p99_ms, round(l.recent_max_ms::numeric, 3) AS recent_max_ms,
       l.first_seen, l.last_seen
FROM coder_health.statement_latency_internal() l
LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
LEFT JOIN pg_catalog.pg_roles r ON r.oid = l.userid;

COMMENT ON VIEW coder_health.statement_latency IS
  'Latency percentiles per statement (database, role, queryid, toplevel): since reset and recent (last 5 to 6 minutes)';

CREATE FUNCTION coder_health.latency_internal(
    OUT scope text, OUT dbid oid, OUT client_addr text, OUT period text,
    OUT calls bigint, OUT errors bigint, OUT calls_per_s float8,
    OUT p50_ms float8, OUT p90_ms float8, OUT p95_ms float8, OUT p99_ms float8,
    OUT p999_ms float8, OUT max_ms float8, OUT span_s float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_latency'
LANGUAGE C STRICT VOLATILE;

-- period: 1-2 min, 5-6 min, 15-16 min (N complete window steps of 60 s plus
-- the current one: named for what they cover; span_s says exactly) and
-- total (since reset)
CREATE VIEW coder_health.latency AS
SELECT l.scope, d.datname, l.client_addr, l.period,
       l.calls, l.errors, round(l.calls_per_s::numeric, 2) AS calls_per_s,
       round(l.p50_ms::numeric, 3) AS p50_ms, round(l.p90_ms::numeric, 3) AS p90_ms, round(l.p95_ms::numeric, 3) AS p95_ms,
       round(l.p99_ms::numeric, 3) AS p99_ms, round(l.p999_ms::numeric, 3) AS p999_ms, round(l.max_ms::numeric, 3) AS max_ms,
       round(l.span_s::numeric, 1) AS span_s
FROM coder_health.latency_internal() l
LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
ORDER BY l.scope DESC, d.datname, l.client_addr,
         array_position(ARRAY['1-2 min', '5-6 min', '15-16 min', 'total'], l.period);

COMMENT ON VIEW coder_health.latency IS
  'Latency percentiles per database and per client address (Coder Server), over the last 1-2, 5-6 and 15-16 minutes (period; span_s: the seconds covered) and since reset';

CREATE FUNCTION coder_health.statement_quantile(queryid bigint, q float8,
                                               recent boolean DEFAULT false)
RETURNS float8
AS 'MODULE_PATHNAME', 'coder_health_statement_quantile'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.statement_quantile(bigint, float8, boolean) IS
  'Quantile q (0..1) in ms of a statement, all its entries merged; recent = last 5 to 6 minutes';

CREATE FUNCTION coder_health.query_id(statement text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'coder_health_query_id'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.query_id(text) IS
  'The queryid under which a statement (one, with its text as sent) is kept: core''s query id where PostgreSQL computes one, else a hash of its normalized text';

CREATE FUNCTION coder_health.latency_chart(queryid bigint,
    OUT range text, OUT lower_ms float8, OUT upper_ms float8,
    OUT count bigint, OUT bar text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_latency_chart'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.latency_chart(bigint) IS
  'Text bars of a statement''s latency distribution, one line per 1-2-5 range';

CREATE FUNCTION coder_health.latency_buckets_internal(
    OUT scope text, OUT dbid oid, OUT client_addr text, OUT queryid bigint,
    OUT le float8[], OUT bucket bigint[], OUT sum float8, OUT count bigint,
    OUT query_name text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_latency_buckets'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW coder_health.latency_buckets AS
SELECT b.scope, d.datname, b.client_addr, b.queryid::text AS queryid,
       b.query_name, b.le, b.bucket, b.sum, b.count
FROM coder_health.latency_buckets_internal() b
LEFT JOIN pg_catalog.pg_database d ON d.oid = b.dbid;

COMMENT ON VIEW coder_health.latency_buckets IS
  'Cumulative latency histograms (le in seconds, 100 us .. 60 s) per database, client, top statements and top sqlc query names, in postgres_exporter HISTOGRAM shape';

CREATE FUNCTION coder_health.query_latency_internal(
    OUT dbid oid, OUT query_name text,
    OUT calls bigint, OUT errors bigint, OUT total_ms float8, OUT mean_ms float8,
    OUT min_ms float8, OUT p50_ms float8, OUT p90_ms float8, OUT p95_ms float8,
    OUT p99_ms float8, OUT p999_ms float8, OUT max_ms float8,
    OUT recent_calls bigint, OUT recent_errors bigint,
    OUT recent_p50_ms float8, OUT recent_p99_ms float8, OUT queryids integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coder_health_query_latency'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW coder_health.query_latency AS
SELECT d.datname, q.query_name, q.calls, q.errors,
       round(q.total_ms::numeric, 3) AS total_ms, round(q.mean_ms::numeric, 3) AS mean_ms, round(q.min_ms::numeric, 3) AS min_ms,
       round(q.p50_ms::numeric, 3) AS p50_ms, round(q.p90_ms::numeric, 3) AS p90_ms, round(q.p95_ms::numeric, 3) AS p95_ms,
       round(q.p99_ms::numeric, 3) AS p99_ms, round(q.p999_ms::numeric, 3) AS p999_ms, round(q.max_ms::numeric, 3) AS max_ms,
       q.recent_calls, q.recent_errors,
       round(q.recent_p50_ms::numeric, 3) AS recent_p50_ms, round(q.recent_p99_ms::numeric, 3) AS recent_p99_ms,
       q.queryids
FROM coder_health.query_latency_internal() q
LEFT JOIN pg_catalog.pg_database d ON d.oid = q.dbid;

COMMENT ON VIEW coder_health.query_latency IS
  'Latency per sqlc query name ("-- name: X :one"), all statements with that name merged: compare with coderd_db_query_latencies_seconds{query=...}';

CREATE FUNCTION coder_health.flush()
RETURNS void
AS 'MODULE_PATHNAME', 'coder_health_flush'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION coder_health.flush() IS
  'Fold this session''s finished statements into the shared statistics now (otherwise within about a second)';

CREATE FUNCTION coder_health.reset()
RETURNS void
AS 'MODULE_PATHNAME', 'coder_health_reset'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION coder_health.reset_statement(queryid bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'coder_health_reset_statement'
LANGUAGE C STRICT VOLATILE;

GRANT EXECUTE ON FUNCTION
    coder_health.statement_latency_internal(),
    coder_health.statement_texts(),
    coder_health.latency_internal(),
    coder_health.statement_quantile(bigint, float8, boolean),
    coder_health.query_id(text),
    coder_health.latency_chart(bigint),
    coder_health.latency_buckets_internal(),
    coder_health.query_latency_internal(),
    coder_health.flush()
  TO pg_monitor;
GRANT SELECT ON coder_health.statement_latency, coder_health.latency,
    coder_health.latency_buckets, coder_health.query_latency
  TO pg_monitor;
-- reset() and reset_statement() stay superuser-only (grantable).
