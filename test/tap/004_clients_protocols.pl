# Latency per client address (Coder Server), the extended protocol, and a
# table overflow that evicts without a single user-visible error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;
use Time::HiRes qw(time);

my $root = ch_root();
my $bindaddr = "$root/workload/bindaddr.so";
ok(-f $bindaddr, 'workload/bindaddr.so is built');

my $node = ch_node('clients', tcp => 1,
	conf => "coder_health.max_statements = 100\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
my $port = $node->port;

# psql over TCP from a chosen source address on the loopback network
sub psql_from
{
	my ($addr, $sql) = @_;
	local $ENV{LD_PRELOAD} = $bindaddr;
	local $ENV{CODER_SIM_SOURCE_ADDR} = $addr;
	my ($out, $err);
	my $ok = IPC::Run::run(
		[ 'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1',
			'-p', $port, '-d', 'postgres', '-c', $sql ],
		'>', \$out, '2>', \$err);
	chomp $out if defined $out;
	return ($ok, $out, $err);
}

my ($ok, $out) = psql_from('127.0.0.2', 'SELECT inet_client_addr()');
is($out, '127.0.0.2', 'bindaddr shim gives the source address 127.0.0.2');

# the client's own time for each call bounds what may be recorded for it
my $slowest_s = 0;
foreach (1 .. 3)
{
	my $t0 = time();
	psql_from('127.0.0.2', 'SELECT pg_sleep(0.02)');
	my $took = time() - $t0;
	$slowest_s = $took if $took > $slowest_s;
}
psql_from('127.0.0.3', 'SELECT pg_sleep(0.05)') for 1 .. 2;
$node->safe_psql('postgres', 'SELECT pg_sleep(0.01)');

ok($node->poll_query_until('postgres',
		"SELECT count(DISTINCT client_addr) = 3 FROM coder_health.latency WHERE scope = 'client'"),
	'one client row per address (127.0.0.2, 127.0.0.3, local)');
is($node->safe_psql('postgres',
		"SELECT calls = 4 AND max_ms >= 20 AND max_ms <= " . ($slowest_s * 1000)
		  . " FROM coder_health.latency
		 WHERE scope = 'client' AND client_addr = '127.0.0.2' AND period = 'total'"),
	't', '127.0.0.2 has its own calls (4) and a max within what psql waited');
is($node->safe_psql('postgres',
		"SELECT calls >= 2 AND max_ms >= 50 FROM coder_health.latency
		 WHERE scope = 'client' AND client_addr = '127.0.0.3' AND period = 'total'"),
	't', '127.0.0.3 has its own calls and latency');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM coder_health.latency WHERE scope = 'client' AND client_addr = 'local'"),
	'4', 'unix-socket clients are grouped as local, in four windows');

# extended protocol: every execution of a prepared statement is counted
$node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', '-h', $node->host, '-p', $port, 'postgres' ],
	'pgbench -i');
$node->safe_psql('postgres', 'SELECT coder_health.reset()');
# (the collector must have made room after each run, so that a full table
# never drops the next run's first samples)
foreach my $mode ('simple', 'prepared', 'extended')
{
	$node->command_ok(
		[ 'pgbench', '-n', '-S', '-M', $mode, '-c', '2', '-j', '2', '-t', '250',
			'-h', $node->host, '-p', $port, 'postgres' ],
		"pgbench -S -M $mode");
	$node->poll_query_until('postgres',
		'SELECT statements_tracked < 90 FROM coder_health.status')
	  or die 'the collector did not evict';
}
# the parameterized form ($1) and the simple-protocol form (a constant) are
# two statements, as in pg_stat_statements; the 500 simple-protocol selects,
# each with its own constant, are one (on every version: the ids come from
# the normalized text where PostgreSQL computes none, text_query_id.c)
ok($node->poll_query_until('postgres',
		"SELECT array_agg(calls ORDER BY calls DESC) = '{1000,500}'
		 FROM (SELECT calls FROM coder_health.statement_latency
		       ORDER BY calls DESC LIMIT 2) top"),
	'every pgbench select counted: 1,000 prepared + extended, 500 simple');

# at full speed, with the collector slowed to a minute, backends must fold
# their own rings: every transaction pgbench ran is counted, none dropped
$node->safe_psql('postgres',
	"ALTER SYSTEM SET coder_health.sample_interval = '60s'; SELECT pg_reload_conf()");
$node->safe_psql('postgres', 'SELECT coder_health.reset()');
my ($bench_out, $bench_err) = ('', '');
IPC::Run::run(
	[ 'pgbench', '-n', '-S', '-M', 'prepared', '-c', '2', '-j', '2', '-T', '3',
		'-h', $node->host, '-p', $port, 'postgres' ],
	'>', \$bench_out, '2>', \$bench_err);
my ($ran) = $bench_out =~ /number of transactions actually processed: (\d+)/;
ok(defined $ran && $ran > 1000, "pgbench ran at full speed (" . ($ran // 0) . " transactions)");
is($node->safe_psql('postgres',
		"SELECT max(calls) FROM coder_health.statement_latency"),
	$ran, 'every one of them counted by the backends themselves');
is($node->safe_psql('postgres', 'SELECT dropped_samples FROM coder_health.status'),
	'0', 'no sample dropped');
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET coder_health.sample_interval; SELECT pg_reload_conf()");

# overflow: 10,000 distinct statements into a 100-entry table
my ($rc, $stdout, $stderr) = ch_run_distinct_statements($node, 100);
ok($rc, '10,000 distinct statements ran');
is($stderr, '', 'with zero errors');
ok($node->poll_query_until('postgres',
		'SELECT evictions > 0 FROM coder_health.status'),
	'evictions counted');
is($node->safe_psql('postgres',
		'SELECT statements_tracked <= max_statements FROM coder_health.status'),
	't', 'table stays within max_statements');
ok(!ch_server_crashed($node), 'no backend crashed');

$node->stop;
done_testing();
