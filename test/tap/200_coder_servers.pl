# Connections and network round-trip per Coder Server: clients from three
# loopback source addresses (workload/bindaddr.so), a replicas table naming
# two of them (one with a stale heartbeat) plus a replica that has no
# connection and one that stopped, an idle-in-transaction session, a LISTEN
# session and a lock wait; every count and flag of coder_health.coder_servers,
# which hosts are Coder Servers (replicas row or sqlc-named statements) and
# which are other clients, the RTT of TCP and unix-socket clients, the
# 15-minute peak, the connections totals, and the view without (or with an
# odd) replicas table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CoderHealthTest;

my $root = ch_root();
my $bindaddr = "$root/workload/bindaddr.so";
ok(-f $bindaddr, 'workload/bindaddr.so is built');

# 60 s window steps: the latency '5 min' window and the 15-step peak do not
# roll over during the test; RTT readings at most every second
my $node = ch_node('coder_servers', tcp => 1,
	conf => "coder_health.window_step = 60\ncoder_health.rtt_interval = 1\n");
$node->start;
my $t_start = time();
my $port = $node->port;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
$node->safe_psql('postgres', q{
	CREATE TABLE public.replicas (
		id uuid NOT NULL, created_at timestamptz NOT NULL,
		started_at timestamptz NOT NULL, stopped_at timestamptz,
		updated_at timestamptz NOT NULL, hostname text NOT NULL,
		region_id integer NOT NULL, relay_address text NOT NULL,
		database_latency integer NOT NULL, version text NOT NULL,
		error text NOT NULL DEFAULT '', "primary" boolean NOT NULL DEFAULT true);
	INSERT INTO public.replicas VALUES
	  ('00000000-0000-0000-0000-00000000000a', now(), now(), NULL, now(),
	   'coder-a', 1, 'http://127.0.0.2:8080', 2500, 'v2.1.0'),
	  ('00000000-0000-0000-0000-00000000000b', now(), now(), NULL, now() - interval '60 s',
	   'coder-b', 2, 'http://127.0.0.3:8080', 800, 'v2.1.0'),
	  ('00000000-0000-0000-0000-00000000000c', now(), now(), NULL, now(),
	   'coder-c', 1, 'http://127.0.0.5:8080', 900, 'v2.1.0'),
	  ('00000000-0000-0000-0000-00000000000d', now(), now(), now(), now(),
	   'coder-gone', 1, 'http://127.0.0.6:8080', 900, 'v2.0.0');
	CREATE TABLE public.t (x int);
});

# A psql session kept open, from a chosen source address (or the unix
# socket when $addr is undef); statements are fed to it as we go.
my @sessions;
sub session
{
	my ($addr) = @_;
	my %s = (in => '', out => '', err => '');
	local $ENV{LD_PRELOAD} = $addr ? $bindaddr : '';
	local $ENV{CODER_SIM_SOURCE_ADDR} = $addr // '';
	my @host = $addr ? ('-h', '127.0.0.1') : ('-h', $node->host);
	$s{h} = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-q', @host, '-p', $port, '-d', 'postgres' ],
		'<', \$s{in}, '>', \$s{out}, '2>', \$s{err});
	push @sessions, \%s;
	return \%s;
}

sub send_sql
{
	my ($s, $sql) = @_;
	$s->{in} .= "$sql\n";
	$s->{h}->pump_nb;
}

sub query
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

sub row
{
	my ($addr, $cols) = @_;
	return query("SELECT $cols FROM coder_health.coder_servers WHERE client_addr = '$addr'");
}

# 127.0.0.2 (coder-a): three idle pool connections, one LISTEN connection,
# one idle in transaction
my @a = map { session('127.0.0.2') } 1 .. 5;
send_sql($a[$_], 'SELECT 1;') for 0 .. 2;
send_sql($a[3], 'LISTEN workspace_owner;');
send_sql($a[4], 'BEGIN; SELECT 1;');

# the unix-socket session holds a lock that 127.0.0.3 (coder-b) waits for
my $holder = session(undef);
send_sql($holder, 'BEGIN; LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE;');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_locks WHERE relation = 'public.t'::regclass AND granted"),
	'unix-socket session holds the lock');
my @b = map { session('127.0.0.3') } 1 .. 2;
send_sql($b[0], 'SELECT 1;');
send_sql($b[1], 'SELECT count(*) FROM public.t;');

# 127.0.0.4: no replica of that address
my @c = map { session('127.0.0.4') } 1 .. 2;
send_sql($_, 'SELECT 1;') for @c;

ok($node->poll_query_until('postgres', q{
	SELECT count(*) FILTER (WHERE client_addr = '127.0.0.2') = 5
	   AND count(*) FILTER (WHERE client_addr = '127.0.0.3') = 2
	   AND count(*) FILTER (WHERE client_addr = '127.0.0.4') = 2
	FROM coder_health.client_backends}),
	'nine TCP client backends from three source addresses');
ok($node->poll_query_until('postgres', q{
	SELECT waiting_on_lock = 1 AND idle_in_transaction = 0
	FROM coder_health.coder_servers WHERE client_addr = '127.0.0.3'}),
	'lock wait shows in coder-b\'s row');
ok($node->poll_query_until('postgres', q{
	SELECT idle = 4 AND idle_in_transaction = 1 AND listening = 1
	FROM coder_health.coder_servers WHERE client_addr = '127.0.0.2'}),
	'coder-a: 4 idle, 1 idle in transaction, 1 listening');

is(row('127.0.0.2', q{coder_server, replica_id, region_id, version,
		heartbeat_age_s BETWEEN 0 AND } . (time() - $t_start + 1) . q{, replica_db_latency_ms, connections, active,
		idle_in_transaction_aborted, waiting_on_lock,
		oldest_xact_s BETWEEN 0 AND } . (time() - $t_start + 1) . q{,
		stale, missing, unknown, far}),
	'coder-a|00000000-0000-0000-0000-00000000000a|1|v2.1.0|t|2.5|5|0|0|0|t|f|f|f|f',
	'coder-a matched by relay address: identity, counts and flags');
is(row('127.0.0.3', q{coder_server, region_id, connections, active, idle,
		waiting_on_lock,
		longest_statement_s BETWEEN 0 AND } . (time() - $t_start + 1) . q{,
		heartbeat_age_s >= 60,
		stale, missing, unknown}),
	'coder-b|2|2|1|1|1|t|t|t|f|f',
	'coder-b: stale heartbeat, one active statement waiting on a lock');
is(row('127.0.0.4', q{coder_server, kind, replica_id IS NULL, connections, idle,
		stale, missing, unknown, listen_lost}),
	'127.0.0.4|other|t|2|2|f|f|f|f',
	'127.0.0.4: plain psql from no known replica is another client, never flagged (#21: was unknown)');
is(row('127.0.0.2', 'kind'), 'coder_server', 'coder-a (replicas row) is a Coder Server');
is(row('127.0.0.5', q{coder_server, connections, rtt_ms IS NULL,
		peak_connections_15min, stale, missing, unknown}),
	'coder-c|0|t|0|f|t|f',
	'coder-c: a live replica with no connections is missing');
is(query(q{SELECT kind || '|' || stopped || '|' || connections || '|' || missing || '|' || stale
	FROM coder_health.coder_servers WHERE coder_server = 'coder-gone'}),
	'coder_server|true|0|false|false', 'a stopped replica is listed as stopped, neither missing nor stale');
is(row('local', q{kind, connections >= 2, idle_in_transaction >= 1, rtt_ms IS NULL,
		rtt_max_ms IS NULL, unknown, far}),
	'local|t|t|t|t|f|f',
	'unix-socket clients grouped as local, no RTT, never unknown or far');

# RTT from the kernel: non-NULL and under 10 ms over loopback TCP
is(query(q{SELECT bool_and(rtt_ms IS NOT NULL AND rtt_ms > 0 AND rtt_ms < 10
		AND rtt_max_ms >= rtt_ms AND rtt_max_ms < 10)
	FROM coder_health.coder_servers WHERE client_addr LIKE '127.0.0._' AND connections > 0}),
	't', 'RTT of every TCP Coder Server is measured and under 10 ms');
is(query(q{SELECT bool_and(rtt_ms IS NOT NULL AND rttvar_ms IS NOT NULL AND rtt_ms < 10)
	FROM coder_health.client_backends WHERE client_addr <> 'local'}),
	't', 'every TCP backend has an RTT and its variance');
is(query(q{SELECT bool_and(rtt_ms IS NULL AND rttvar_ms IS NULL)
	FROM coder_health.client_backends WHERE client_addr = 'local'}),
	't', 'unix-socket backends have no RTT');

# a reading is refreshed at a statement start once rtt_interval has passed
my $pid = $node->safe_psql('postgres',
	q{SELECT pid FROM coder_health.client_backends WHERE client_addr = '127.0.0.4' ORDER BY pid LIMIT 1});
my $before = query("SELECT rtt_measured_at FROM coder_health.client_backends WHERE pid = $pid");
# statements until one starts after rtt_interval (1 s) has passed: polled
my $remeasured = 0;
my $deadline = time() + 60;
while (!$remeasured && time() < $deadline)
{
	send_sql($_, 'SELECT 2;') for @c;
	$remeasured = query(
		"SELECT rtt_measured_at > '$before' FROM coder_health.client_backends WHERE pid = $pid")
	  eq 't';
	select(undef, undef, undef, 0.2) unless $remeasured;
}
ok($remeasured, 'RTT read again at a statement after rtt_interval');

# far: over coder_health.max_rtt_ms
is(query(q{SET coder_health.max_rtt_ms = 0;
	SELECT string_agg(client_addr || '=' || far, ',' ORDER BY client_addr) FROM coder_health.coder_servers
	WHERE client_addr LIKE '127.0.0._' AND connections > 0}),
	'127.0.0.2=true,127.0.0.3=true,127.0.0.4=false',
	'with max_rtt_ms = 0 every TCP Coder Server is far, another client (127.0.0.4) never');
is(query(q{SELECT count(*) FROM coder_health.coder_servers WHERE far}),
	'0', 'at the default 10 ms no loopback server is far');

# p99 of the last 5 minutes from the latency data
send_sql($a[0], 'SELECT pg_sleep(0.01); SELECT coder_health.flush();');
ok($node->poll_query_until('postgres',
		q{SELECT p99_ms > 0 FROM coder_health.coder_servers WHERE client_addr = '127.0.0.2'}),
	'p99_ms comes from the per-client latency data');

# totals
is(query(q{SELECT max_connections = current_setting('max_connections')::int
		AND superuser_reserved_connections = 3
		AND client_backends = (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
		AND headroom = max_connections - superuser_reserved_connections - reserved_connections - client_backends
		AND coder_servers = 3 AND coder_pool_size = 11
		AND headroom_at_full_pools = headroom - ((11 - 5) + (11 - 2) + (11 - 0))
		AND (in_use_by_type->>'client backend')::int = client_backends
	FROM coder_health.connections}),
	't', 'connections: limits, in use, headroom now and at full pools (Coder Servers only, not 127.0.0.4)');

# statements with a sqlc name make a host a Coder Server: 127.0.0.4 is one
# now, and unknown (no replicas row names it)
send_sql($c[0], q{SELECT E'-- name: GetWorkspaceByID :one\nSELECT 1' \gexec});
ok($node->poll_query_until('postgres',
		q{SELECT kind = 'coder_server' AND unknown FROM coder_health.coder_servers WHERE client_addr = '127.0.0.4'}),
	'127.0.0.4 sends sqlc-named statements: a Coder Server, unknown to the replicas table');
is(query(q{SELECT coder_servers FROM coder_health.connections}), '4', 'connections counts it');
my $named_seen = query('SELECT now()');
ok($node->poll_query_until('postgres', "SELECT collector_last_run > '$named_seen' FROM coder_health.status"),
	'the collector ran since');

# the collector's peak outlives the connections
ok($node->poll_query_until('postgres',
		q{SELECT peak_connections_15min = 2 FROM coder_health.coder_servers WHERE client_addr = '127.0.0.4'}),
	'collector saw 127.0.0.4 at 2 connections');
send_sql($_, '\q') for @c;
$_->{h}->finish for @c;
ok($node->poll_query_until('postgres', q{
	SELECT connections = 0 AND peak_connections_15min = 2
	FROM coder_health.coder_servers WHERE client_addr = '127.0.0.4'}),
	'after disconnecting, 127.0.0.4 shows 0 connections and its 15-minute peak of 2');
is(row('127.0.0.4', 'kind'), 'coder_server', 'and the collector remembers it sent sqlc-named statements');

# --- which pubsub Coder uses ------------------------------------------------
# PostgreSQL pubsub: coder-a holds a LISTEN connection, coder-b (connected,
# matched to a replica) holds none: it lost it.  A host with no connections
# (127.0.0.4 after it left, coder-c) is not flagged.
sub listen_check
{
	return query(q{SELECT status || '|' || coalesce(value::text, '') || '|' || detail
		FROM coder_health.health WHERE check_name = 'coder_server_listen'});
}
is(query(q{SELECT string_agg(client_addr || '=' || listen_lost, ',' ORDER BY client_addr)
	FROM coder_health.coder_servers WHERE client_addr <> 'local'}),
	'127.0.0.2=false,127.0.0.3=true,127.0.0.4=false,127.0.0.5=false,127.0.0.6=false',
	'PostgreSQL pubsub: coder-b lost its LISTEN connection while coder-a holds one');
is(query(q{SELECT pubsub FROM coder_health.notify_queue}), 'postgres',
	'notify_queue: pubsub on PostgreSQL (a LISTEN connection)');
is(listen_check(),
	'critical|1|PostgreSQL pubsub: 1 of 2 Coder Servers hold no LISTEN connection: coder-b (127.0.0.3, 2 connections)',
	'health: a Coder Server without its LISTEN connection is critical');

# NATS: nobody LISTENs, nothing is published: no fault
send_sql($a[3], 'UNLISTEN *;');
ok($node->poll_query_until('postgres',
		q{SELECT listening = 0 FROM coder_health.coder_servers WHERE client_addr = '127.0.0.2'}),
	'coder-a stopped listening');
is(query(q{SELECT count(*) FROM coder_health.coder_servers WHERE listen_lost}), '0',
	'NATS: no Coder Server is flagged for holding no LISTEN connection');
is(query(q{SELECT pubsub FROM coder_health.notify_queue}), 'nats',
	'notify_queue: pubsub on NATS (TCP clients, no LISTEN, no pg_notify)');
is(listen_check(),
	'ok|0|pubsub on NATS: none of 2 Coder Servers LISTENs and nothing is published with pg_notify; nothing to check',
	'health: no LISTEN under NATS is ok');

# pg_notify traffic with nobody listening: PostgreSQL pubsub without listeners
send_sql($a[0], q{SELECT pg_notify('workspace_owner:1', 'x');});
ok($node->poll_query_until('postgres',
		q{SELECT status = 'critical' FROM coder_health.health WHERE check_name = 'coder_server_listen'}),
	'health: publishes with no LISTEN connection anywhere is critical')
  or diag(listen_check());
like(listen_check(), qr/^critical\|2\|pg_notify publishes [0-9.]+ notifications\/s but none of 2 Coder Servers holds a LISTEN connection$/,
	'health detail names the publishing without listeners');
is(query(q{SELECT pubsub FROM coder_health.notify_queue}), 'postgres',
	'notify_queue: pg_notify traffic means PostgreSQL pubsub');
send_sql($a[3], 'LISTEN workspace_owner;');

# without the replicas table, with another shape, and unreadable: no error
$node->safe_psql('postgres', 'ALTER TABLE public.replicas RENAME TO replicas_saved');
is(query(q{SELECT count(*) > 0 AND bool_and(replica_id IS NULL AND unknown IS NULL
		AND NOT missing AND NOT stale AND coder_server = client_addr)
	FROM coder_health.coder_servers}),
	't', 'without a replicas table the view answers from addresses alone');
$node->safe_psql('postgres', 'CREATE TABLE public.replicas (hostname int, relay_address int)');
is(query(q{SELECT count(*) > 0 AND bool_and(replica_id IS NULL AND unknown IS NULL)
	FROM coder_health.coder_servers}),
	't', 'a replicas table of another shape is ignored');
$node->safe_psql('postgres', q{DROP TABLE public.replicas;
	CREATE TABLE public.replicas (id text, hostname text, relay_address text,
		region_id text, version text, database_latency text, updated_at text);
	INSERT INTO public.replicas VALUES ('x', 'odd', 'http://127.0.0.2:1', 'not a number', 'v', 'x', 'y')});
is(query(q{SELECT count(*) > 0 AND bool_and(replica_id IS NULL)
	FROM coder_health.coder_servers}),
	't', 'a replicas table with unconvertible values is ignored, no error');
$node->safe_psql('postgres', q{DROP TABLE public.replicas;
	ALTER TABLE public.replicas_saved RENAME TO replicas;
	CREATE ROLE watcher LOGIN IN ROLE pg_monitor});
is($node->safe_psql('postgres', q{SELECT count(*) > 0 AND bool_and(replica_id IS NULL AND unknown IS NULL)
	FROM coder_health.coder_servers}, extra_params => [ '-U', 'watcher' ]),
	't', 'pg_monitor without SELECT on replicas: the view answers from addresses');
is($node->safe_psql('postgres', q{SELECT waiting_on_lock FROM coder_health.coder_servers
	WHERE client_addr = '127.0.0.3'}, extra_params => [ '-U', 'watcher' ]),
	'1', 'pg_monitor sees other roles\' sessions');

# a role without pg_read_all_stats sees only its own sessions
$node->safe_psql('postgres', q{CREATE ROLE plain LOGIN;
	GRANT USAGE ON SCHEMA coder_health TO plain;
	GRANT SELECT ON coder_health.client_backends TO plain;
	GRANT EXECUTE ON FUNCTION coder_health.client_backends_internal() TO plain});
is($node->safe_psql('postgres', q{SELECT count(*) FROM coder_health.client_backends},
		extra_params => [ '-U', 'plain' ]),
	'1', 'without pg_read_all_stats a role sees only its own backend');

send_sql($holder, 'ROLLBACK;');
for my $s (@sessions)
{
	next unless $s->{h}->pumpable;
	send_sql($s, '\q');
	$s->{h}->finish;
}
ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
