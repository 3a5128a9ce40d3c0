# status.collector_restarts counts restarts since the server started
# (#19 item 7): a collector stopped with pg_terminate_backend is restarted
# by the postmaster (+1), and a collector killed with SIGKILL makes the
# postmaster reinitialise shared memory (a crash restart): the count went
# back to 0 there before; it must go on from where it was (+1 again).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $node = ch_node('restarts', conf => "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');

sub collector_pid
{
	return $node->safe_psql('postgres', 'SELECT collector_pid FROM coder_health.status');
}

ok($node->poll_query_until('postgres',
		'SELECT collector_pid IS NOT NULL FROM coder_health.status'),
	'the collector runs');
my $pid1 = collector_pid();
is($node->safe_psql('postgres', 'SELECT collector_restarts FROM coder_health.status'),
	'0', 'no restart yet');

# 1. pg_terminate_backend: the postmaster starts it again
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)");
ok($node->poll_query_until('postgres',
		"SELECT collector_pid IS NOT NULL AND collector_pid <> $pid1 FROM coder_health.status"),
	'the collector is back after pg_terminate_backend');
is($node->safe_psql('postgres', 'SELECT collector_restarts FROM coder_health.status'),
	'1', 'one restart counted');
my $pid2 = collector_pid();

# 2. SIGKILL: a crash restart, shared memory initialised again
kill 'KILL', $pid2;
ok(poll_through_restart($node, 'postgres',
		"SELECT collector_pid IS NOT NULL AND collector_pid <> $pid2 FROM coder_health.status"),
	'the collector is back after SIGKILL (crash restart)');
ok($node->log_contains('terminated by signal 9'), 'the postmaster saw the SIGKILL');
is($node->safe_psql('postgres', 'SELECT collector_restarts FROM coder_health.status'),
	'2', 'the count survives the crash restart: two restarts');

# 3. and once more, to show it keeps adding
my $pid3 = collector_pid();
kill 'KILL', $pid3;
ok(poll_through_restart($node, 'postgres',
		"SELECT collector_pid IS NOT NULL AND collector_pid <> $pid3 FROM coder_health.status"),
	'back after a second SIGKILL');
is($node->safe_psql('postgres', 'SELECT collector_restarts FROM coder_health.status'),
	'3', 'three restarts');

$node->stop;
done_testing();
