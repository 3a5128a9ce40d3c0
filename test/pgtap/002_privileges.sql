-- Who may read and reset: superusers and pg_monitor read, nothing is
-- PUBLIC, reset is superuser-only but grantable; functions are
-- search_path-safe and none is SECURITY DEFINER.
BEGIN;
SELECT plan(22);

CREATE ROLE ch_nobody;
CREATE ROLE ch_monitor IN ROLE pg_monitor;
CREATE ROLE ch_reader IN ROLE pg_read_all_stats;

-- a statement run by the superuser, to check visibility rules on
SELECT pg_sleep(0.001);
SELECT coder_health.flush();

SET ROLE ch_nobody;
SELECT throws_ok('SELECT * FROM coder_health.status', '42501', NULL,
                 'unprivileged role cannot read status');
SELECT throws_ok('SELECT * FROM coder_health.statement_latency', '42501', NULL,
                 'unprivileged role cannot read statement_latency');
SELECT throws_ok('SELECT * FROM coder_health.latency', '42501', NULL,
                 'unprivileged role cannot read latency');
SELECT throws_ok('SELECT coder_health.reset()', '42501', NULL,
                 'unprivileged role cannot reset');
SELECT throws_ok('SELECT coder_health.query_id(''SELECT 1'')', '42501', NULL,
                 'unprivileged role cannot call query_id');
RESET ROLE;

SET ROLE ch_monitor;
SELECT lives_ok('SELECT * FROM coder_health.status', 'pg_monitor reads status');
SELECT lives_ok('SELECT * FROM coder_health.settings', 'pg_monitor reads settings');
SELECT lives_ok('SELECT * FROM coder_health.statement_latency', 'pg_monitor reads statement_latency');
SELECT lives_ok('SELECT * FROM coder_health.latency', 'pg_monitor reads latency');
SELECT lives_ok('SELECT * FROM coder_health.latency_buckets', 'pg_monitor reads latency_buckets');
SELECT lives_ok('SELECT coder_health.statement_quantile(1, 0.5)', 'pg_monitor calls statement_quantile');
SELECT lives_ok('SELECT coder_health.query_id(''SELECT 1'')', 'pg_monitor calls query_id');
SELECT throws_ok('SELECT coder_health.reset()', '42501', NULL, 'pg_monitor cannot reset');
SELECT throws_ok('SELECT coder_health.reset_statement(1)', '42501', NULL,
                 'pg_monitor cannot reset a statement');
-- pg_monitor alone (through pg_read_all_stats it has...) sees identities:
-- pg_monitor includes pg_read_all_stats, so nothing is hidden
SELECT is((SELECT count(*) FROM coder_health.statement_latency WHERE queryid IS NULL),
          0::bigint, 'pg_monitor (includes pg_read_all_stats) sees every statement identity');
RESET ROLE;

-- a role with read access but without pg_read_all_stats sees numbers only
CREATE ROLE ch_plain;
GRANT USAGE ON SCHEMA coder_health TO ch_plain;
GRANT SELECT ON coder_health.statement_latency TO ch_plain;
GRANT EXECUTE ON FUNCTION coder_health.statement_latency_internal(),
                          coder_health.statement_texts() TO ch_plain;
SET ROLE ch_plain;
SELECT cmp_ok((SELECT count(*) FROM coder_health.statement_latency WHERE queryid IS NULL
               AND rolname <> 'ch_plain'), '>', 0::bigint,
              'other roles'' statements show without their identity');
SELECT is((SELECT count(*) FROM coder_health.statement_latency WHERE calls IS NULL),
          0::bigint, 'but with their numbers');
RESET ROLE;

-- reset is grantable
GRANT EXECUTE ON FUNCTION coder_health.reset_statement(bigint) TO ch_monitor;
SET ROLE ch_monitor;
SELECT lives_ok('SELECT coder_health.reset_statement(1)', 'granted reset_statement works');
RESET ROLE;

-- nothing for PUBLIC, no SECURITY DEFINER, search_path pinned where it matters
SELECT is((SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a
           WHERE p.pronamespace = 'coder_health'::regnamespace AND a.grantee = 0),
          0::bigint, 'no function is executable by PUBLIC');
SELECT is((SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
           WHERE c.relnamespace = 'coder_health'::regnamespace AND a.grantee = 0),
          0::bigint, 'no view is readable by PUBLIC');
SELECT is((SELECT count(*) FROM pg_proc
           WHERE pronamespace = 'coder_health'::regnamespace AND prosecdef),
          0::bigint, 'no SECURITY DEFINER function');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
           WHERE p.pronamespace = 'coder_health'::regnamespace
             AND l.lanname NOT IN ('c', 'internal')
             AND NOT coalesce(p.proconfig::text[] @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
          0::bigint, 'every SQL/PL function pins search_path');

SELECT * FROM finish();
ROLLBACK;
