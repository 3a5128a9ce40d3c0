-- Coder Servers and connections: objects, privileges, settings ranges, and
-- answers with no replicas table at all (the pgTAP database has none).
BEGIN;
SELECT plan(16);

SELECT has_view('coder_health', 'coder_servers', 'view coder_servers');
SELECT has_view('coder_health', 'connections', 'view connections');
SELECT has_view('coder_health', 'client_backends', 'view client_backends');
SELECT columns_are('coder_health', 'coder_servers', ARRAY[
    'coder_server', 'kind', 'client_addr', 'replica_id', 'region_id', 'version',
    'heartbeat_age_s', 'replica_db_latency_ms', 'connections', 'active', 'idle',
    'idle_in_transaction', 'idle_in_transaction_aborted', 'waiting_on_lock',
    'listening', 'oldest_xact_s', 'longest_statement_s', 'rtt_ms', 'rtt_max_ms',
    'peak_connections_15min', 'p99_ms', 'far', 'stopped', 'stale', 'missing', 'unknown', 'listen_lost'],
    'coder_servers has the columns of the issue, in order');

SELECT is((SELECT unknown FROM coder_health.coder_servers WHERE client_addr = 'local'),
          NULL, 'no replicas table: unknown is NULL (nothing is known)');
SELECT is((SELECT connections >= 1 AND rtt_ms IS NULL FROM coder_health.coder_servers
           WHERE client_addr = 'local'),
          true, 'this unix-socket session is counted, without RTT');
SELECT is((SELECT headroom = max_connections - superuser_reserved_connections
                  - reserved_connections - client_backends
           FROM coder_health.connections),
          true, 'headroom is what non-superusers can still open');

SELECT throws_ok($$SET coder_health.max_rtt_ms = -1$$, '22023', NULL,
                 'max_rtt_ms below range rejected');
SELECT throws_ok($$SET coder_health.coder_pool_size = 0$$, '22023', NULL,
                 'coder_pool_size below range rejected');
SELECT throws_ok($$SET coder_health.rtt_interval = '5s'$$, '55P02', NULL,
                 'rtt_interval is a server-wide setting (reload)');
SELECT is((SELECT unit FROM coder_health.settings WHERE name = 'coder_health.rtt_interval'),
          's', 'rtt_interval is in seconds');

-- coder_replicas() reads Coder's table with a heap scan in C: no SQL, so no
-- name is resolved through a search_path and no user code can run in it
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
           WHERE p.oid = 'coder_health.coder_replicas()'::regprocedure),
          'c', 'coder_replicas is C code: it runs no SQL');

CREATE ROLE ch_clients_nobody;
CREATE ROLE ch_clients_monitor IN ROLE pg_monitor;
SET ROLE ch_clients_nobody;
SELECT throws_ok('SELECT * FROM coder_health.coder_servers', '42501', NULL,
                 'unprivileged role cannot read coder_servers');
SELECT throws_ok('SELECT * FROM coder_health.connections', '42501', NULL,
                 'unprivileged role cannot read connections');
RESET ROLE;
SET ROLE ch_clients_monitor;
SELECT lives_ok('SELECT * FROM coder_health.coder_servers', 'pg_monitor reads coder_servers');
SELECT lives_ok('SELECT * FROM coder_health.connections', 'pg_monitor reads connections');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
