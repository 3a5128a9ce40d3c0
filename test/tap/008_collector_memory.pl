# The collector's memory stays flat: run it for many cycles at the shortest
# interval, with every module busy (statements evicted from a small table,
# LISTEN/NOTIFY traffic, a streaming standby whose round trip is read, history
# sampled and statistics saved every second), and check that after warm-up
# neither its private memory (RssAnon in /proc/<pid>/status) nor the bytes
# used in its memory contexts (pg_log_backend_memory_contexts(), PostgreSQL
# 14 and newer; 13 has only RssAnon) grow by more than a bound while the
# cycles go on.  Then reload the server many times with a different
# notify_stall_bytes each time: each reload is read at the top of a cycle,
# and the cycles after it read the notification queue and judge its
# listeners again.  (That phase once changed a test-only setting that made
# the collector re-check its mirror of the queue, and each failed check
# left its reason string behind for good: +49,000 bytes used over 120
# reloads on PostgreSQL 15 before the collector had a per-cycle memory
# context; +0 with it.  The mirror is now verified once, at startup.)
#
# Each cycle's allocations live in a context the collector resets after the
# cycle (collector.c); before that they went to TopMemoryContext and what a
# module did not free was kept for good.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CoderHealthTest;

# cycles to warm up, then cycles to watch
my $warm_cycles = 100;
my $watch_cycles = 600;
# reloads, each changing a setting the collector's notify cycle reads
my $reloads = 120;
# the most the process's private memory may grow: pages, as malloc and the
# stack settle (120 reloads add about 40 kB of them; the leak of the old code
# added 92 kB there, too little to tell apart: the exact check is the next)
my $rss_bound_kb = 128;
# the most the bytes in use in its memory contexts may grow: an exact figure
# (a leak of 15 bytes a cycle over 600 cycles exceeds it)
my $used_bound = 8192;

my $node = ch_node('memory', tcp => 1, conf => <<'EOF');
coder_health.sample_interval = 100
coder_health.history_interval = 1
coder_health.save_interval = 1
coder_health.max_statements = 100
max_wal_senders = 4
wal_level = replica
EOF
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
my $standby = ch_streaming_standby($node, 'memory_standby', 'memory_slot');

my $pid_sql =
  "SELECT pid FROM pg_stat_activity WHERE backend_type = 'coder_health collector'";
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($pid_sql) p"),
	'the collector runs');
my $pid = $node->safe_psql('postgres', $pid_sql);

# Load in the background for the whole test: new statement texts (the table
# of 100 statements evicts every cycle), listeners and notifications, and a
# few connections from the client address.
my $script = $node->basedir . '/load.sql';
open my $fh, '>', $script or die "$script: $!";
print $fh <<'EOF';
\set n random(1, 100000)
LISTEN memory_test;
SELECT :n + 1;
SELECT pg_notify('memory_test', repeat('x', 200));
UNLISTEN memory_test;
EOF
close $fh;
my ($load_out, $load_err) = ('', '');
my $duration = int(($warm_cycles + $watch_cycles) / 10) + 60;
my $load = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-j', '1', '-R', '200', '-T', $duration,
		'-f', $script, '-h', '127.0.0.1', '-p', $node->port, 'postgres' ],
	'>', \$load_out, '2>', \$load_err);

sub runs
{
	return $node->safe_psql('postgres', 'SELECT collector_runs FROM coder_health.status');
}

# Wait until the collector has run $n cycles more than at $from.
sub wait_cycles
{
	my ($from, $n) = @_;
	return $node->poll_query_until('postgres',
		"SELECT collector_runs >= $from + $n FROM coder_health.status");
}

sub rss_anon_kb
{
	open my $st, '<', "/proc/$pid/status" or die "/proc/$pid/status: $!";
	while (<$st>)
	{
		return $1 if /^RssAnon:\s+(\d+) kB/;
	}
	die "no RssAnon in /proc/$pid/status";
}

my $has_log_contexts = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_proc WHERE proname = 'pg_log_backend_memory_contexts'") eq '1';

# Bytes in use in the collector's memory contexts (the "used" of the "Grand
# total" line that pg_log_backend_memory_contexts() makes it log).
sub contexts_used
{
	return undef unless $has_log_contexts;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
	my $deadline = time + 60;
	while (time < $deadline)
	{
		my $log = slurp_file($node->logfile, $offset);
		return $1 if $log =~ /Grand total: \d+ bytes in \d+ blocks; \d+ free \(\d+ chunks\); (\d+) used/;
		select(undef, undef, undef, 0.1);
	}
	die "the collector did not log its memory contexts";
}

sub check_flat
{
	my ($what, $rss0, $rss1, $used0, $used1) = @_;
	diag(sprintf("%s: RssAnon %d kB -> %d kB (%+d kB)", $what, $rss0, $rss1,
			$rss1 - $rss0));
	cmp_ok($rss1 - $rss0, '<=', $rss_bound_kb,
		"$what: private memory (RssAnon) grows by at most $rss_bound_kb kB");
  SKIP:
	{
		skip 'pg_log_backend_memory_contexts() is PostgreSQL 14 and newer', 1
		  unless defined $used0;
		diag(sprintf("%s: memory contexts %d bytes used -> %d (%+d)",
				$what, $used0, $used1, $used1 - $used0));
		cmp_ok($used1 - $used0, '<=', $used_bound,
			"$what: bytes used in memory contexts grow by at most $used_bound");
	}
}

my $start = runs();
ok(wait_cycles($start, $warm_cycles), "$warm_cycles cycles of warm-up");
ok($node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM pg_stat_replication WHERE state = 'streaming'") eq 't',
	'the standby streams (the collector reads its round trip)');
ok($node->safe_psql('postgres',
		"SELECT count(*) >= 4 FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()") eq 't',
	'the load runs') or do { $load->pump_nb; diag("pgbench: $load_err"); };

my $rss0 = rss_anon_kb();
my $used0 = contexts_used();
my $from = runs();
ok(wait_cycles($from, $watch_cycles), "$watch_cycles cycles watched");
my $rss1 = rss_anon_kb();
my $used1 = contexts_used();
check_flat(sprintf('%d cycles under load', runs() - $from),
	$rss0, $rss1, $used0, $used1);

# reloads: each a different stall threshold
$rss0 = rss_anon_kb();
$used0 = contexts_used();
my $rechecks = 0;
for my $k (1 .. $reloads)
{
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET coder_health.notify_stall_bytes = " . (1000 + $k)
		  . "; SELECT pg_reload_conf()");
	my $at = runs();
	# the reload is read at the top of a cycle: two cycles later it was used
	$rechecks++ if wait_cycles($at, 2);
}
is($rechecks, $reloads, "$reloads reloads, each followed by collector cycles");
unlike(slurp_file($node->logfile), qr/coder_health does not read the NOTIFY queue/,
	'the notification queue was read all along');
$rss1 = rss_anon_kb();
$used1 = contexts_used();
check_flat("$reloads reloads", $rss0, $rss1, $used0, $used1);
is($node->safe_psql('postgres', $pid_sql), $pid, 'the same collector ran all along');

$load->kill_kill;
$standby->stop('fast');
$node->stop('fast');
ok(!ch_server_crashed($node), 'no crash');
done_testing();
