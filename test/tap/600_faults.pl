# Faults under a busy Coder workload: SIGKILL of a client backend (the
# postmaster restarts every process and reinitializes shared memory) and
# `pg_ctl stop -m immediate` then start.  After each: the collector is back,
# every view answers with consistent numbers, the workload's statements are
# counted again, and nothing but the fault itself shows up in the log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;
use ReliabilityTest;

my $node = ch_node('faults', tcp => 1,
	conf => "restart_after_crash = on\nmax_connections = 100\n"
	  . "coder_health.save_interval = 2\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE coder');
$node->safe_psql('coder', 'CREATE EXTENSION coder_health');

my $collector_sql =
  "SELECT pid FROM pg_stat_activity WHERE backend_type = 'coder_health collector'";
my $calls_sql =
  "SELECT coalesce(sum(calls), 0) FROM coder_health.statement_latency WHERE datname = 'coder'";

# schema and seed first, so the timed part is only load
my ($h, $out, $err) = start_workload($node, 'coder', '--servers', '3',
	'--duration', '1', '--init', '--workspaces', '200');
ok($h->finish, 'workload schema loaded') or diag(slurp_file($err));

# 3 Coder Servers (30 pool connections + 3 listeners) for up to 60 s; we stop
# it once both faults are done
($h, $out, $err) = start_workload($node, 'coder', '--servers', '3',
	'--duration', '60', '--rate', '150');
ok($node->poll_query_until('coder', "SELECT ($calls_sql) > 1500"),
	'workload statements are counted');

# --- SIGKILL of a client backend in the middle of the workload -------------
my $collector_before = $node->safe_psql('postgres', $collector_sql);
my $victim = $node->safe_psql('coder',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'
	   AND datname = 'coder' AND pid <> pg_backend_pid()
	 ORDER BY state = 'active' DESC, pid LIMIT 1");
ok($victim =~ /^\d+$/, "picked a workload backend ($victim)");
kill 'KILL', $victim;

ok(poll_through_restart($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'coder_health collector' AND pid <> $collector_before"),
	'collector is back after the crash restart');
# (PostgreSQL 18 names the process by its type: "client backend (PID n)")
like(slurp_file($node->logfile),
	qr/(?:server process|client backend) \(PID $victim\) was terminated by signal 9/,
	'the postmaster saw the SIGKILL and restarted everything');
# heartbeat: runs since the restart, the last one after a mark taken once
# the collector was back (was: age under 2 s, a threshold that load decides)
my $back_at = $node->safe_psql('coder', 'SELECT clock_timestamp()');
ok($node->poll_query_until('coder',
		"SELECT collector_last_run > '$back_at' AND collector_last_run <= clock_timestamp()
		   AND collector_runs > 2 FROM coder_health.status"),
	'collector heartbeat is live again');
my $calls_after_crash = $node->safe_psql('coder', $calls_sql);
ok($node->poll_query_until('coder', "SELECT ($calls_sql) > $calls_after_crash + 300"),
	'the reconnected workload is counted again');
is(views_inconsistencies($node, 'coder'), '',
	'every view consistent after the crash restart');
is($node->safe_psql('coder',
		"SELECT count(*) FROM coder_health.statement_latency
		 WHERE calls < 0 OR errors < 0 OR errors > calls OR calls = 0"),
	'0', 'every row: 0 <= errors <= calls, calls > 0');

# --- pg_ctl stop -m immediate during the load, then start -------------------
my $log_offset = -s $node->logfile;
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'coder_health collector'"),
	'collector runs after immediate stop and start');
my $calls_after_restart = $node->safe_psql('coder', $calls_sql);
ok($node->poll_query_until('coder', "SELECT ($calls_sql) > $calls_after_restart + 300"),
	'the reconnected workload is counted after the restart');
is(views_inconsistencies($node, 'coder'), '',
	'every view consistent after the immediate stop');
ok($node->poll_query_until('coder',
		"SELECT sum(connections) >= 20 FROM coder_health.coder_servers WHERE NOT unknown"),
	'the Coder Servers are seen again');

$h->signal('TERM');
$h->finish;
my $total = workload_total($out);
diag("workload: " . join(' ', map { "$_=$total->{$_}" } sort keys %$total));
cmp_ok($total->{statements} // 0, '>', 1000,
	'the workload ran through both faults');

# nothing from coder_health in the log but the usual, and no other crash
my $log = substr(slurp_file($node->logfile), 0);
my @ours = grep { /coder_health/ && /(ERROR|FATAL|PANIC|WARNING)/ } split /\n/, $log;
is(scalar(@ours), 0, 'no ERROR/FATAL/PANIC/WARNING from coder_health')
  or diag(join("\n", @ours[0 .. ($#ours < 9 ? $#ours : 9)]));
my $after = substr(slurp_file($node->logfile), $log_offset);
unlike($after, qr/was terminated by signal/, 'no crash after the immediate restart');

$node->stop;
done_testing();
