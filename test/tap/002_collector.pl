# The collector: visible in pg_stat_activity, live heartbeat, comes back after
# pg_terminate_backend and after SIGKILL (the server recovers), and picks up a
# changed interval on reload.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $node = ch_node('collector', conf => "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');

my $collector_pid_sql =
  "SELECT pid FROM pg_stat_activity WHERE backend_type = 'coder_health collector'";

ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'coder_health collector'"),
	'collector appears in pg_stat_activity');
my $pid = $node->safe_psql('postgres', $collector_pid_sql);
is($node->safe_psql('postgres', 'SELECT collector_pid FROM coder_health.status'),
	$pid, 'status shows the collector pid');
is($node->safe_psql('postgres',
		"SELECT datname IS NULL FROM pg_stat_activity WHERE pid = $pid"),
	't', 'collector is attached to no database');

# heartbeat is live
my $runs1 = $node->safe_psql('postgres', 'SELECT collector_runs FROM coder_health.status');
sleep 1;
my $runs2 = $node->safe_psql('postgres', 'SELECT collector_runs FROM coder_health.status');
cmp_ok($runs2, '>', $runs1, 'collector runs advance');
ok($node->safe_psql('postgres',
		'SELECT collector_last_run_age_s < 2 FROM coder_health.status') eq 't',
	'last run is recent');

# pg_terminate_backend: it exits and the postmaster starts it again
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'coder_health collector' AND pid <> $pid"),
	'collector restarts after pg_terminate_backend');
my $pid2 = $node->safe_psql('postgres', $collector_pid_sql);
ok($node->poll_query_until('postgres',
		'SELECT collector_restarts >= 1 FROM coder_health.status'),
	'restart is counted');

# SIGKILL: the postmaster treats it as a crash, reinitializes, and the
# collector comes back with the rest of the server
kill 'KILL', $pid2;
ok(poll_through_restart($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'coder_health collector' AND pid <> $pid2"),
	'collector is back after SIGKILL');
like(slurp_file($node->logfile), qr/coder_health collector.*was terminated by signal 9/,
	'the postmaster saw the SIGKILL');
is($node->safe_psql('postgres', 'SELECT extension_version = library_version FROM coder_health.status'),
	't', 'status answers after crash recovery');

# reload picks up a changed interval
$node->safe_psql('postgres',
	"ALTER SYSTEM SET coder_health.sample_interval = '500ms'; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres',
		'SELECT collector_interval_ms = 500 FROM coder_health.status'),
	'collector uses the reloaded interval');
$runs1 = $node->safe_psql('postgres', 'SELECT collector_runs FROM coder_health.status');
sleep 2;
$runs2 = $node->safe_psql('postgres', 'SELECT collector_runs FROM coder_health.status');
ok($runs2 - $runs1 >= 3 && $runs2 - $runs1 <= 6,
	"about 2 runs a second at 500 ms (saw " . ($runs2 - $runs1) . " in 2 s)");

# a clean shutdown stops it without a restart
$node->stop('fast');
unlike(slurp_file($node->logfile), qr/FATAL.*coder_health/, 'no FATAL from coder_health');
done_testing();
