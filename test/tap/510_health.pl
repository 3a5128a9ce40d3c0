# coder_health.health with the conditions made real, and back: a Coder
# Server far away (max_rtt_ms 0), missing and stale replicas rows, a LISTEN
# session held in an open transaction while another session notifies, a
# streaming standby whose replay is paused, then stopped (slot inactive), a
# stuck collector (SIGSTOP).  History rows and sparklines from the same run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

$ENV{PG_TEST_TIMEOUT_DEFAULT} = 120 if ($ENV{PG_TEST_TIMEOUT_DEFAULT} // 0) < 120;
my $root = ch_root();
my $bindaddr = "$root/workload/bindaddr.so";

my $node = ch_node('health', tcp => 1,
	init => { allows_streaming => 1 },
	conf => "coder_health.history_interval = 1\n"
	  . "coder_health.rtt_interval = 1\n"
	  . "coder_health.window_step = 60\n"
	  . "autovacuum = off\n"
	  . "max_slot_wal_keep_size = 1GB\n"
	  . "wal_receiver_status_interval = 1s\n");
$node->start;
my $port = $node->port;
$node->safe_psql('postgres', q{
	CREATE EXTENSION coder_health;
	CREATE TABLE public.replicas (
		id uuid NOT NULL, created_at timestamptz NOT NULL,
		started_at timestamptz NOT NULL, stopped_at timestamptz,
		updated_at timestamptz NOT NULL, hostname text NOT NULL,
		region_id integer NOT NULL, relay_address text NOT NULL,
		database_latency integer NOT NULL, version text NOT NULL);
	INSERT INTO public.replicas VALUES
	  ('00000000-0000-0000-0000-00000000000a', now(), now(), NULL, now(),
	   'coder-a', 1, 'http://127.0.0.2:8080', 900, 'v2.1.0');
	CREATE ROLE mon LOGIN IN ROLE pg_monitor;
});

# the Coder Server coder-a: a psql session kept open from 127.0.0.2
my %cs = (in => '', out => '', err => '');
{
	local $ENV{LD_PRELOAD} = $bindaddr;
	local $ENV{CODER_SIM_SOURCE_ADDR} = '127.0.0.2';
	$cs{h} = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-q', '-h', '127.0.0.1', '-p', $port, '-d', 'postgres' ],
		'<', \$cs{in}, '>', \$cs{out}, '2>', \$cs{err});
}
$cs{in} .= "SELECT 1;\n";
$cs{h}->pump_nb;

# Thresholds for one query go in through PGOPTIONS ("SET a = b; SET c = d; ").
sub pgoptions
{
	my ($set) = @_;
	my @kv = (($set // '') =~ /SET (\S+) = '?([^';]*)'?;/g);
	my @opts;
	push @opts, '-c ' . shift(@kv) . '=' . shift(@kv) while @kv;
	return join(' ', @opts);
}

sub check_row
{
	my ($n, $check, $set) = @_;
	local $ENV{PGOPTIONS} = pgoptions($set);
	return $n->safe_psql('postgres',
		"SELECT status || '|' || coalesce(detail, '') FROM coder_health.health WHERE check_name = '$check'");
}

sub check_row_db
{
	my ($n, $db, $check, $set) = @_;
	local $ENV{PGOPTIONS} = pgoptions($set);
	return $n->safe_psql($db,
		"SELECT status || '|' || coalesce(detail, '') FROM coder_health.health WHERE check_name = '$check'");
}

sub wait_status
{
	my ($n, $check, $status, $set, $name) = @_;
	local $ENV{PGOPTIONS} = pgoptions($set);
	my $q = "SELECT status = '$status' FROM coder_health.health WHERE check_name = '$check'";
	ok($n->poll_query_until('postgres', $q), $name)
	  or diag(check_row($n, $check, $set));
	return check_row($n, $check, $set);
}

# --- shape -------------------------------------------------------------------
is($node->safe_psql('postgres', q{SELECT string_agg(check_name, ',') FROM coder_health.health}),
	'statement_p99,error_rate,notify_queue,stalled_listeners,connection_headroom,'
	  . 'coder_server_rtt,coder_server_pool,coder_replicas,replication_lag_bytes,'
	  . 'replication_lag_time,slot_wal_retention,collector,coder_server_listen,'
	  . 'replication_rtt',
	'fourteen checks, in order');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM coder_health.health WHERE status NOT IN ('ok', 'warn', 'critical', 'unknown')}),
	'0', 'every status is ok, warn, critical or unknown');
is($node->safe_psql('postgres', q{SELECT count(*) FROM coder_health.health}, extra_params => [ '-U', 'mon' ]),
	'14', 'pg_monitor member reads the health view');
like(check_row($node, 'replication_lag_bytes'), qr/^unknown\|no standby connected and no physical slot/,
	'no standby, no slot: replication lag is unknown, not ok');
like(check_row($node, 'collector'), qr/^ok\|collector pid \d+/, 'collector ok');

# --- Coder Server RTT: near, then "far" with max_rtt_ms = 0 ------------------
my $r = wait_status($node, 'coder_server_rtt', 'ok', undef, 'coder-a over loopback: RTT ok');
like($r, qr/coder-a \(127\.0\.0\.2\)/, 'RTT detail names the Coder Server');
$r = wait_status($node, 'coder_server_rtt', 'warn', 'SET coder_health.max_rtt_ms = 0; ',
	'max_rtt_ms = 0: coder-a is far, warn');
like($r, qr/coder-a/, 'far: detail names coder-a');
wait_status($node, 'coder_server_rtt', 'critical',
	'SET coder_health.max_rtt_ms = 0; SET coder_health.health_rtt_critical_ms = 0; ',
	'critical threshold 0: critical');
like(check_row($node, 'coder_server_pool'), qr/^ok\|busiest Coder Server coder-a/, 'pool check names coder-a');

# --- replicas: missing, stale, back ----------------------------------------
like(check_row($node, 'coder_replicas'), qr/^ok\|1 live replicas, all connected/, 'replicas ok');
$node->safe_psql('postgres', q{INSERT INTO public.replicas VALUES
	  ('00000000-0000-0000-0000-00000000000b', now(), now(), NULL, now(),
	   'coder-m', 1, 'http://127.0.0.9:8080', 900, 'v2.1.0')});
like(check_row($node, 'coder_replicas'), qr/^critical\|missing coder-m \(127\.0\.0\.9/,
	'a live replica with no connection: critical, named');
$node->safe_psql('postgres', q{UPDATE public.replicas SET updated_at = now() - interval '60 s' WHERE hostname = 'coder-m'});
like(check_row($node, 'coder_replicas'),
	qr/^ok\|1 live replicas, all connected with a fresh heartbeat; 1 stopped: coder-m \(last heartbeat [0-9.]+ s ago\)$/,
	'heartbeat 60 s old and nothing connected: gone (stopped), no warning (#21: was warn)');
$node->safe_psql('postgres', q{UPDATE public.replicas SET updated_at = now() - interval '60 s' WHERE hostname = 'coder-a'});
like(check_row($node, 'coder_replicas'), qr/^warn\|stale coder-a \(127\.0\.0\.2, heartbeat [0-9.]+ s ago, 1 connections\)/,
	'heartbeat 60 s old while connected: stale, warn');
$node->safe_psql('postgres', q{UPDATE public.replicas SET updated_at = now() WHERE hostname = 'coder-a'});
$node->safe_psql('postgres', q{DELETE FROM public.replicas WHERE hostname = 'coder-m'});
like(check_row($node, 'coder_replicas'), qr/^ok\|/, 'row gone: ok again');

# #21: Coder stopped (its replicas rows have stopped_at): reported as
# stopped, not "0 replicas, all connected with a fresh heartbeat"
$node->safe_psql('postgres', q{UPDATE public.replicas SET stopped_at = now()});
like(check_row($node, 'coder_replicas'),
	qr/^unknown\|no live Coder replica in public\.replicas; 1 stopped: coder-a \(last heartbeat [0-9.]+ s ago\)$/,
	'every replica stopped: unknown, the stopped replica named (#21: was ok, "0 replicas, all connected")');
is($node->safe_psql('postgres', q{SELECT stopped FROM coder_health.coder_servers WHERE coder_server = 'coder-a'}),
	't', 'coder_servers marks it stopped');
$node->safe_psql('postgres', q{UPDATE public.replicas SET stopped_at = NULL});
like(check_row($node, 'coder_replicas'), qr/^ok\|1 live replicas/, 'running again: ok');

# --- #21: a DBA's own statements are too few to judge -------------------------
# 40 statements typed in psql, 2 of them typos, one slow: before #21 this
# made error_rate critical (5 %) and statement_p99 critical (p99 >= 500 ms)
$node->safe_psql('postgres', 'CREATE DATABASE dba');
$node->safe_psql('dba', 'CREATE EXTENSION coder_health');
my $typed = join('', map { "SELECT $_;\n" } 1 .. 37)
  . "SELEC 1;\nSELECT * FROM no_such_table;\nSELECT pg_sleep(0.6);\n";
$node->psql('dba', $typed, on_error_stop => 0);
ok($node->poll_query_until('postgres', q{SELECT calls >= 40 FROM coder_health.latency
	WHERE scope = 'database' AND datname = 'dba' AND period = '5-6 min'}), 'the 40 statements are counted');
like(check_row_db($node, 'dba', 'error_rate'),
	qr/^unknown\|database dba: too few statements to judge \(fewer than coder_health\.health_min_statements, 100\): 2 of \d+ statements failed/,
	'2 typos of about 40 statements: unknown (too few), not critical');
like(check_row_db($node, 'dba', 'statement_p99'),
	qr/^unknown\|database dba: too few statements to judge \(fewer than coder_health\.health_min_statements, 100\): p99 [0-9.]+ ms over \d+ statements; slowest: none with 100 calls or more$/,
	'one slow statement of about 40: unknown (too few), not critical; the one-off pg_sleep is no culprit (was named slowest)');
like(check_row_db($node, 'dba', 'error_rate', 'SET coder_health.health_min_statements = 10; '),
	qr/^(warn|critical)\|database dba: 2 of \d+ statements failed/, 'with health_min_statements 10 the same errors are judged (about 5 %)');
like(check_row_db($node, 'dba', 'statement_p99', 'SET coder_health.health_min_statements = 10; '),
	qr/^critical\|database dba: p99 [0-9.]+ ms over \d+ statements; slowest: SELECT \? \(p99 [0-9.]+ ms\)$/,
	'and the same p99 is critical; the culprit is the statement with 10 calls or more (37 SELECT n), not the one-off pg_sleep');

# --- #21: coder_health's own reads and the monitoring role do not count ------
# Before #21 the DBA's own slow read of coder_health made statement_p99
# critical, and the exporter's role's failing statements raised error_rate.
$node->safe_psql('postgres', 'CREATE DATABASE dba2');
$node->safe_psql('dba2', 'CREATE EXTENSION coder_health');
$node->safe_psql('dba2', join('', map { "SELECT $_;\n" } 1 .. 150));
ok($node->poll_query_until('postgres', q{SELECT calls >= 150 FROM coder_health.latency
	WHERE scope = 'database' AND datname = 'dba2' AND period = '5-6 min'}), 'Coder-like load: 150 statements');
my $calls_dba2 = $node->safe_psql('postgres', q{SELECT calls FROM coder_health.latency
	WHERE scope = 'database' AND datname = 'dba2' AND period = '5-6 min'});
$node->safe_psql('dba2', join('', map { "SELECT count(*) FROM coder_health.health, pg_sleep(0.6);\n" } 1 .. 3)
	  . "SELECT coder_health.flush();\n");
$node->psql('dba2', join('', map { "SELECT 1 / g FROM generate_series(0, 0) g;\n" } 1 .. 6) . "SELECT coder_health.flush();\n",
	on_error_stop => 0, extra_params => [ '-U', 'mon' ]);
# the monitoring role's failures and coder_health's reads are never timed
# (they would be by now: each session flushed its samples)
is($node->safe_psql('postgres', q{SELECT calls FROM coder_health.latency
	WHERE scope = 'database' AND datname = 'dba2' AND period = '5-6 min'}),
	$calls_dba2, 'slow reads of coder_health and the monitoring role\'s errors are not counted');
like(check_row_db($node, 'dba2', 'statement_p99'), qr/^ok\|database dba2: p99 [0-9.]+ ms over \d+ statements/,
	'three 600 ms reads of coder_health.health: statement_p99 stays ok (was critical)');
like(check_row_db($node, 'dba2', 'error_rate'), qr/^ok\|database dba2: 0 of \d+ statements failed/,
	'six failures of the monitoring role: error_rate stays ok (was critical)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM coder_health.statement_latency
	WHERE datname = 'dba2' AND (query LIKE '%coder\_health.%' OR rolname = 'mon')}),
	'0', 'no statement of coder_health\'s reads or of the monitoring role is kept');
# ... but a statement with a sqlc name is Coder's whatever role sends it: a
# Coder database role that was granted pg_monitor must not vanish (failed
# before: the monitoring role's statements were dropped by role alone)
$node->psql('dba2', join('', map { "SELECT E'-- name: GetMonitoredCoderThing :one\\nSELECT $_' \\gexec\n" } 1 .. 4)
	  . "SELECT coder_health.flush();\n", extra_params => [ '-U', 'mon' ]);
ok($node->poll_query_until('postgres', q{SELECT coalesce(sum(calls), 0) = 4 FROM coder_health.query_latency
	WHERE query_name = 'GetMonitoredCoderThing'}),
	'sqlc-named statements of a pg_monitor member are counted (4 of 4)');
$calls_dba2 = $node->safe_psql('postgres', q{SELECT calls FROM coder_health.latency
	WHERE scope = 'database' AND datname = 'dba2' AND period = '5-6 min'});
# coder_health.track_monitoring = on times them like any other
$node->psql('dba2', "SET coder_health.track_monitoring = on;\n"
	  . "SELECT count(*) FROM coder_health.health, pg_sleep(0.6);\nSELECT coder_health.flush();\n");
ok($node->poll_query_until('postgres', qq{SELECT calls > $calls_dba2 FROM coder_health.latency
	WHERE scope = 'database' AND datname = 'dba2' AND period = '5-6 min'}),
	'with track_monitoring on, a read of coder_health is timed');

# --- a stalled listener --------------------------------------------------------
$node->safe_psql('postgres', 'ALTER SYSTEM SET coder_health.notify_stall_seconds = 1');
$node->safe_psql('postgres', 'ALTER SYSTEM SET coder_health.notify_stall_bytes = 10000');
$node->reload;
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN tailnet_peer_update');
my $lpid = $listener->query_safe('SELECT pg_backend_pid()');
$listener->query_safe('BEGIN');
$listener->query_safe('SELECT 1');
like(check_row($node, 'stalled_listeners'), qr/^ok\|1 listeners, none stalled/, 'listener, not stalled yet');
$node->safe_psql('postgres',
	"SELECT count(pg_notify('tailnet_peer_update', 'peer ' || g)) FROM generate_series(1, 2000) g");
$r = wait_status($node, 'stalled_listeners', 'warn', undef, 'listener in an open transaction: warn');
like($r, qr/pid $lpid \(local, \d+ bytes behind\): transaction open/, 'detail names its pid and reason');
wait_status($node, 'stalled_listeners', 'critical', 'SET coder_health.health_stalled_listeners_critical = 1; ',
	'critical at 1 stalled listener');
like(check_row($node, 'notify_queue', 'SET coder_health.health_notify_queue_warn_pct = 0.0001; '),
	qr/^warn\|\d+ bytes queued; slowest listener pid $lpid/, 'queue usage above a tiny threshold: warn, slowest listener named');
like($node->safe_psql('postgres', q{SELECT value::text FROM coder_health.health WHERE check_name = 'notify_queue'}),
	qr/^\d+\.\d{3}$/, 'notify_queue value: % to 3 decimals like every other percentage (#21: was 4)');
$listener->query_safe('COMMIT');
wait_status($node, 'stalled_listeners', 'ok', undef, 'after COMMIT: ok again');
$listener->quit;

# --- a streaming standby, paused, stopped ------------------------------------
my $standby = ch_streaming_standby($node, 'standby', 'standby1', "listen_addresses = ''\n");

$r = wait_status($node, 'replication_lag_bytes', 'ok', undef, 'streaming standby caught up: ok');
like($r, qr/^ok\|standby standby \(.*slot standby1\): replay 0 bytes/, 'detail names the standby and slot');
wait_status($node, 'replication_lag_time', 'ok', undef, 'lag time ok');
wait_status($standby, 'replication_lag_bytes', 'ok', undef, 'on the standby: ok while streaming');
like(check_row($standby, 'collector'), qr/^ok\|/, 'collector alive on the standby');

$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$node->safe_psql('postgres', 'CREATE TABLE filler AS SELECT g, repeat(\'x\', 200) AS pad FROM generate_series(1, 20000) g');
my $lowlag = 'SET coder_health.health_replication_lag_warn_bytes = \'1kB\'; SET coder_health.health_replication_lag_warn_s = 1; ';
$r = wait_status($node, 'replication_lag_bytes', 'warn', $lowlag, 'replay paused, WAL written: lag bytes warn');
like($r, qr/replay \d{4,} bytes/, 'detail shows the replay lag');
wait_status($node, 'replication_lag_time', 'warn', $lowlag, 'replay paused: lag time grows to warn');
$r = wait_status($standby, 'replication_lag_bytes', 'warn', $lowlag, 'standby side: lag bytes warn');
like($r, qr/replay paused/, 'standby detail says replay is paused');
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
wait_status($node, 'replication_lag_bytes', 'ok', $lowlag, 'resumed: lag bytes ok again');
wait_status($node, 'replication_lag_time', 'ok', $lowlag, 'resumed: lag time ok again');

# history has the standby's lag and the Coder Server's connections
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM coder_health.history WHERE metric = 'replication_lag_bytes' AND key = 'standby1'"),
	'history: replication_lag_bytes for slot standby1');
ok($node->poll_query_until('postgres',
		"SELECT max(value) >= 1000 FROM coder_health.history WHERE metric = 'replication_lag_bytes' AND key = 'standby1'"),
	'history kept the lag reached while replay was paused');
ok($standby->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM coder_health.history WHERE metric = 'replication_lag_s' AND key = 'standby'"),
	'history on the standby: its own replay delay');

$standby->stop;
$r = wait_status($node, 'replication_lag_bytes', 'critical', undef, 'standby gone, slot inactive: critical');
like($r, qr/physical slot standby1 inactive/, 'detail names the inactive slot');
like(check_row($node, 'slot_wal_retention', "SET coder_health.health_slot_retained_warn_bytes = '1kB'; "),
	qr/^(warn|ok)\|slot standby1 \(physical, inactive\)/, 'slot check names the inactive slot');
$node->safe_psql('postgres', 'INSERT INTO filler SELECT g, repeat(\'y\', 200) FROM generate_series(1, 5000) g');
wait_status($node, 'slot_wal_retention', 'warn', "SET coder_health.health_slot_retained_warn_bytes = '1kB'; ",
	'WAL retained by the inactive slot: warn');
$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('standby1')");
like(check_row($node, 'replication_lag_bytes'), qr/^unknown\|/, 'slot dropped: unknown again');
like(check_row($node, 'slot_wal_retention'), qr/^ok\|no replication slots/, 'no slots: ok');

# --- a stuck collector ---------------------------------------------------------
my $cpid = $node->safe_psql('postgres', 'SELECT collector_pid FROM coder_health.status');
kill 'STOP', $cpid;
wait_status($node, 'collector', 'warn', 'SET coder_health.health_collector_warn_s = 1; ',
	'collector stopped (SIGSTOP): warn');
# stopped for at least 3 history intervals: a gap in the history
ok($node->poll_query_until('postgres', 'SELECT collector_last_run_age_s >= 3 FROM coder_health.status'),
	'collector stopped for 3 s');
kill 'CONT', $cpid;
wait_status($node, 'collector', 'ok', 'SET coder_health.health_collector_warn_s = 1; ',
	'collector continues: ok');

# --- history and sparklines --------------------------------------------------
ok($node->poll_query_until('postgres',
		"SELECT count(DISTINCT ts) >= 3 FROM coder_health.history WHERE metric = 'connections' AND key = '127.0.0.2'"),
	'history: connections of coder-a sampled');
is($node->safe_psql('postgres',
		"SELECT max(value) FROM coder_health.history WHERE metric = 'connections' AND key = '127.0.0.2'"),
	'1', 'history: coder-a had one connection');
like($node->safe_psql('postgres', "SELECT coder_health.sparkline('connections', '127.0.0.2')"),
	qr/^(\xe2\x96[\x81-\x88]| )+  connections\[127\.0\.0\.2\]: last 1, min \d+, max 1 \(\d+ samples over/,
	'sparkline of connections');
like($node->safe_psql('postgres', "SELECT coder_health.sparkline('calls_per_s', width => 5)"),
	qr/^(\xe2\x96[\x81-\x88]| ){1,5}  calls_per_s\[postgres\]: last/,
	'sparkline at most width characters; Coder\'s database (this one) by default');
# #21: the 3 s the collector was stopped are a gap (before: the samples on
# either side were drawn next to each other)
like($node->safe_psql('postgres', "SELECT coder_health.sparkline('connections', '127.0.0.2', width => 1000)"),
	qr/^(\xe2\x96[\x81-\x88])+ +(\xe2\x96[\x81-\x88])+  /, 'a stopped collector shows as a gap');
# #21: p99 of Coder's database, not the worst of all (dba had a 600 ms
# statement); counts as whole numbers, also averaged down to one character
like($node->safe_psql('postgres', "SELECT coder_health.sparkline('p99_ms')"),
	qr/  p99_ms\[postgres\]: /, 'p99_ms defaults to this database (was the worst key of all)');
like($node->safe_psql('postgres', "SELECT coder_health.sparkline('connections', 'local', width => 1)"),
	qr/^(\xe2\x96[\x81-\x88])  connections\[local\]: last \d+, min \d+, max \d+ \(/,
	'connections in whole numbers');
like($node->safe_psql('postgres', "SELECT coder_health.sparkline('connections')"),
	qr/  connections\[Coder Servers\]: /, 'connections default to the Coder Servers\' (not psql\'s)');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT coder_health.sparkline('latency')");
like($err, qr/ERROR:  unknown history metric "latency"\nHINT:  Valid metrics: connections, notify_queue_usage_pct, notify_backlog_bytes, replication_lag_bytes, replication_lag_s, p99_ms, calls_per_s, replication_rtt_ms\./,
	'unknown metric: ERROR with HINT listing the metrics');
($ret, $out, $err) = $node->psql('postgres', "SELECT coder_health.sparkline('connections', '10.9.9.9')");
like($err, qr/ERROR:  no history of "connections" for key "10\.9\.9\.9"\nHINT:  Keys with history: .*127\.0\.0\.2/,
	'unknown key: ERROR with HINT listing the keys');
is($node->safe_psql('postgres', "SELECT count(*) FROM coder_health.history", extra_params => [ '-U', 'mon' ]) > 0 ? 1 : 0,
	1, 'pg_monitor member reads the history');

ok(!ch_server_crashed($node), 'no crash');
$cs{in} .= "\\q\n";
$cs{h}->finish;
$node->stop;
done_testing();
