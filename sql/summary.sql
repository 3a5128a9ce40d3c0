-- coder_health.summary: the verdict first, on one 80 x 24 screen (#21 item 1).
-- Rendered here from known rows (summary_render takes the rows of the views
-- it reads, as JSON), so the psql output below is the screen a DBA gets in
-- that state; then the live view, which must fit the same bounds.
\set VERBOSITY terse

-- a sick deployment: a stalled listener, slow queries, one Coder Server far
SELECT line AS summary FROM coder_health.summary_render(
  '[{"check_name": "statement_p99", "status": "warn", "value": 263.9, "detail": "database coder: p99 263.915 ms over 1234 statements; slowest: GetWorkspaceAgentByID (p99 263.915 ms)"},
    {"check_name": "error_rate", "status": "ok", "detail": "database coder: 0 of 1234 statements failed"},
    {"check_name": "notify_queue", "status": "ok", "detail": "0.057 % used"},
    {"check_name": "stalled_listeners", "status": "critical", "detail": "pid 4321 (stuck_listener, local, 4724736 bytes behind): transaction open for 25 s"},
    {"check_name": "connection_headroom", "status": "ok", "detail": "80 of 100 free"},
    {"check_name": "coder_server_rtt", "status": "warn", "detail": "coderd-3 (10.0.0.3): 12.500 ms, over coder_health.max_rtt_ms (10 ms)"},
    {"check_name": "replication_rtt", "status": "unknown", "detail": "no standby connected over TCP"},
    {"check_name": "collector", "status": "ok", "detail": "collector pid 99, last cycle 0.2 s ago"}]',
  '[{"query_name": "GetWorkspaceAgentByID", "recent_calls": 1234, "recent_errors": 0, "recent_p99_ms": 263.915},
    {"query_name": "InsertWorkspaceAgentStats", "recent_calls": 310, "recent_errors": 2, "recent_p99_ms": 41.5},
    {"query_name": "GetRareThing", "recent_calls": 2, "recent_errors": 0, "recent_p99_ms": 900.0},
    {"query_name": "UpdateWorkspaceLastUsedAt", "recent_calls": 800, "recent_errors": 0, "recent_p99_ms": 3.25}]',
  '[{"coder_server": "coderd-1", "kind": "coder_server", "client_addr": "10.0.0.1", "connections": 11, "active": 3, "listening": 1, "rtt_ms": 0.214, "p99_ms": 4.1, "far": false, "stale": false, "missing": false, "unknown": false, "listen_lost": false},
    {"coder_server": "coderd-3", "kind": "coder_server", "client_addr": "10.0.0.3", "connections": 9, "active": 1, "listening": 0, "rtt_ms": 12.5, "p99_ms": 30.75, "far": true, "stale": false, "missing": false, "unknown": false, "listen_lost": true},
    {"coder_server": "coderd-4", "kind": "coder_server", "client_addr": "10.0.0.4", "connections": 0, "active": 0, "listening": 0, "missing": true},
    {"coder_server": "coderd-0", "kind": "coder_server", "client_addr": "10.0.0.9", "connections": 0, "stopped": true},
    {"coder_server": "127.0.0.1", "kind": "other", "client_addr": "127.0.0.1", "connections": 1, "active": 0},
    {"coder_server": "local", "kind": "other", "client_addr": "local", "connections": 2, "active": 1, "listening": 1, "unknown": false}]',
  '{"usage_pct": 0.057, "backlog_bytes": 4724736, "listeners": 4, "stalled_listeners": 1, "slowest_listener_pid": 4321, "slowest_listener_backlog_bytes": 4724736, "notifications_per_s": 152.25}',
  '[{"role": "primary", "application_name": "standby1", "client_addr": "10.0.1.5", "state": "streaming", "replay_lag_bytes": 0, "replay_lag_s": 0, "rtt_ms": 0.5}]',
  'coder') AS line;

-- all well; no Coder Server over TCP, no standby, no named statements
SELECT line AS summary FROM coder_health.summary_render(
  '[{"check_name": "statement_p99", "status": "ok"}, {"check_name": "collector", "status": "ok"}]',
  NULL, '[]', '{"usage_pct": 0, "backlog_bytes": 0, "listeners": 0, "stalled_listeners": 0, "notifications_per_s": 0}',
  NULL, 'coder') AS line;

-- a standby's own view of itself
SELECT line AS summary FROM coder_health.summary_render(
  '[]', NULL, NULL, NULL,
  '[{"role": "standby", "receiver_status": "streaming", "sender_host": "10.0.0.9", "replay_delay_s": 0.25}]',
  'coder') AS line;

-- a p99 over 12 calls is just the slowest call: only queries with
-- coder_health.health_min_statements calls or more are listed (was: 10)
SELECT line AS summary FROM coder_health.summary_render(
  '[]',
  '[{"query_name": "GetFewCalls", "recent_calls": 12, "recent_errors": 0, "recent_p99_ms": 900.0},
    {"query_name": "GetSomeCalls", "recent_calls": 99, "recent_errors": 0, "recent_p99_ms": 40.0},
    {"query_name": "GetManyCalls", "recent_calls": 150, "recent_errors": 1, "recent_p99_ms": 5.5}]',
  NULL, NULL, NULL, 'coder') AS line
WHERE line LIKE 'Slowest%' OR line LIKE '  Get%';
SET coder_health.health_min_statements = 10;
SELECT line AS summary FROM coder_health.summary_render(
  '[]',
  '[{"query_name": "GetFewCalls", "recent_calls": 12, "recent_errors": 0, "recent_p99_ms": 900.0},
    {"query_name": "GetFewerCalls", "recent_calls": 9, "recent_errors": 0, "recent_p99_ms": 2000.0}]',
  NULL, NULL, NULL, 'coder') AS line
WHERE line LIKE 'Slowest%' OR line LIKE '  Get%' OR line LIKE '  none%';
RESET coder_health.health_min_statements;

-- the checks without data: whole names, then "+N more" (was cut mid-name:
-- "coder_server_rtt, coder_server_pool, coder_replicas, coder")
SELECT line AS summary FROM coder_health.summary_render(
  (SELECT jsonb_agg(jsonb_build_object('check_name', n, 'status', 'unknown') ORDER BY i)
   FROM unnest(ARRAY['coder_server_rtt', 'coder_server_pool', 'coder_replicas', 'collector',
                     'replication_lag_bytes', 'replication_lag_time']) WITH ORDINALITY AS u(n, i)),
  NULL, NULL, NULL, NULL, 'coder') AS line
WHERE line LIKE 'unknown%';
SELECT line AS summary FROM coder_health.summary_render(
  '[{"check_name": "coder_server_rtt", "status": "unknown"}, {"check_name": "collector", "status": "unknown"}]',
  NULL, NULL, NULL, NULL, 'coder') AS line
WHERE line LIKE 'unknown%';

-- every Coder Server stopped: the line says so and names them (was:
-- "none connected (2 other clients)" while health named 3 stopped)
SELECT line AS summary FROM coder_health.summary_render(
  '[{"check_name": "coder_replicas", "status": "unknown", "detail": "no live Coder replica in public.replicas; 3 stopped: coderd-1, coderd-2, coderd-3"}]',
  NULL,
  '[{"coder_server": "coderd-2", "kind": "coder_server", "client_addr": "10.0.0.2", "connections": 0, "stopped": true},
    {"coder_server": "coderd-1", "kind": "coder_server", "client_addr": "10.0.0.1", "connections": 0, "stopped": true},
    {"coder_server": "coderd-3", "kind": "coder_server", "client_addr": "10.0.0.3", "connections": 0, "stopped": true},
    {"coder_server": "127.0.0.1", "kind": "other", "client_addr": "127.0.0.1", "connections": 1, "active": 0},
    {"coder_server": "local", "kind": "other", "client_addr": "local", "connections": 2, "active": 1}]',
  NULL, NULL, 'coder') AS line;

-- one unit per quantity: a detail's "N bytes" shown as the NOTIFY line
-- shows its backlog (was "4724736 bytes behind" beside "4614 kB behind")
SELECT line AS summary FROM coder_health.summary_render(
  '[{"check_name": "notify_queue", "status": "warn", "detail": "4724736 bytes queued; slowest listener pid 7 is 512 bytes behind"}]',
  NULL, NULL,
  '{"usage_pct": 0.057, "backlog_bytes": 4724736, "listeners": 1, "stalled_listeners": 1, "slowest_listener_pid": 7, "slowest_listener_backlog_bytes": 512, "notifications_per_s": 1}',
  NULL, 'coder') AS line
WHERE line LIKE 'warn%' OR line LIKE 'NOTIFY%' OR line LIKE '  stalled%';

-- everything failing at once still fits: 22 lines at most, 78 characters each
SELECT count(*) AS lines, max(length(line)) AS widest,
       count(*) FILTER (WHERE line LIKE '... and % more failing checks%') AS more_line
FROM coder_health.summary_render(
  (SELECT jsonb_agg(jsonb_build_object('check_name', 'check_' || g, 'status', 'critical',
                                       'detail', repeat('culprit named here ', 10)))
   FROM generate_series(1, 14) g),
  (SELECT jsonb_agg(jsonb_build_object('query_name', 'Query' || g, 'recent_calls', 100,
                                       'recent_errors', 0, 'recent_p99_ms', g))
   FROM generate_series(1, 10) g),
  (SELECT jsonb_agg(jsonb_build_object('coder_server', 'coderd-' || g, 'kind', 'coder_server', 'client_addr', '10.0.0.' || g,
                                       'connections', 10, 'active', 1, 'listening', 1, 'rtt_ms', 1, 'p99_ms', 1))
   FROM generate_series(1, 9) g),
  '{"usage_pct": 50, "backlog_bytes": 4294967296, "listeners": 100, "stalled_listeners": 50, "slowest_listener_pid": 1, "slowest_listener_backlog_bytes": 4294967296, "notifications_per_s": 1}',
  (SELECT jsonb_agg(jsonb_build_object('role', 'primary', 'application_name', 'standby' || g, 'state', 'streaming',
                                       'replay_lag_bytes', 1, 'replay_lag_s', 1))
   FROM generate_series(1, 5) g),
  'coder') AS line;

-- wrapping: at spaces, within width, cut with "..." past max_lines
SELECT unnest(coder_health.summary_wrap('warn     x: ', 'one two three four five six seven eight nine ten', '         ', 30, 2)) AS wrapped;
SELECT unnest(coder_health.summary_wrap('', repeat('y', 50), '  ', 20, 5)) AS long_word;

-- the live view: the verdict first, within one screen
SELECT count(*) <= 22 AS fits_rows, max(length(summary)) <= 78 AS fits_columns,
       (array_agg(summary))[1] ~ ('^(HEALTHY|WARNING|CRITICAL|UNKNOWN)  database ' || current_database() || ': ')
         AS verdict_first
FROM coder_health.summary;
