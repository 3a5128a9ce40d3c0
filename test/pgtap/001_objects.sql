-- The SQL interface exists with the documented shape.
BEGIN;
SELECT plan(20);

SELECT has_schema('coder_health');
SELECT has_view('coder_health', 'status', 'view status');
SELECT has_view('coder_health', 'sync_commit', 'view sync_commit');
SELECT has_view('coder_health', 'settings', 'view settings');
SELECT has_view('coder_health', 'statement_latency', 'view statement_latency');
SELECT has_view('coder_health', 'latency', 'view latency');
SELECT has_view('coder_health', 'latency_buckets', 'view latency_buckets');
SELECT has_function('coder_health', 'statement_quantile', ARRAY['bigint', 'double precision', 'boolean']);
SELECT has_function('coder_health', 'query_id', ARRAY['text']);
SELECT has_function('coder_health', 'latency_chart', ARRAY['bigint']);
SELECT has_function('coder_health', 'reset', ARRAY[]::text[]);
SELECT has_function('coder_health', 'reset_statement', ARRAY['bigint']);
SELECT has_function('coder_health', 'flush', ARRAY[]::text[]);

SELECT columns_are('coder_health', 'statement_latency', ARRAY[
  'dbid', 'datname', 'userid', 'rolname', 'queryid', 'toplevel', 'query_name', 'query',
  'calls', 'errors', 'total_ms', 'mean_ms', 'min_ms', 'p50_ms', 'p90_ms',
  'p95_ms', 'p99_ms', 'p999_ms', 'max_ms', 'recent_calls', 'recent_errors',
  'recent_p50_ms', 'recent_p95_ms', 'recent_p99_ms', 'recent_max_ms',
  'first_seen', 'last_seen']);
SELECT columns_are('coder_health', 'latency', ARRAY[
  'scope', 'datname', 'client_addr', 'period', 'calls', 'errors',
  'calls_per_s', 'p50_ms', 'p90_ms', 'p95_ms', 'p99_ms', 'p999_ms', 'max_ms',
  'span_s']);
SELECT columns_are('coder_health', 'latency_buckets', ARRAY[
  'scope', 'datname', 'client_addr', 'queryid', 'query_name', 'le', 'bucket', 'sum', 'count']);
SELECT has_view('coder_health', 'query_latency', 'view query_latency');
SELECT columns_are('coder_health', 'query_latency', ARRAY[
  'datname', 'query_name', 'calls', 'errors', 'total_ms', 'mean_ms', 'min_ms',
  'p50_ms', 'p90_ms', 'p95_ms', 'p99_ms', 'p999_ms', 'max_ms', 'recent_calls',
  'recent_errors', 'recent_p50_ms', 'recent_p99_ms', 'queryids']);

-- every setting is documented in the settings view with a description
SELECT is((SELECT count(*) FROM coder_health.settings WHERE short_desc IS NULL OR short_desc = ''),
          0::bigint, 'every setting has a description');
SELECT cmp_ok((SELECT count(*) FROM coder_health.settings), '>=', 8::bigint,
              'settings view lists the coder_health settings');

SELECT * FROM finish();
ROLLBACK;
