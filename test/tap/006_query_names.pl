# sqlc query names through the extended protocol, as Coder (pgx) sends them:
# the coderd simulator runs named prepared statements and unnamed extended
# ones; every named statement gets its name, and query_latency merges them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $root = ch_root();
my $node = ch_node('names', tcp => 1);
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE coder');
$node->safe_psql('coder', 'CREATE EXTENSION coder_health');

foreach my $mode ('prepared', 'extended')
{
	$node->safe_psql('coder', 'SELECT coder_health.reset()');
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[ "$root/workload/run.sh", '--servers', '1', '--duration', '3',
			'--host', '127.0.0.1', '--port', $node->port, '--dbname', 'coder',
			'--user', $ENV{USER} // 'postgres', '--mode', $mode,
			'--workspaces', '50', ($mode eq 'prepared' ? ('--init') : ()) ],
		'>', \$out, '2>', \$err);
	ok($ok, "workload ran with the $mode protocol") or diag("$out\n$err");
	ok($node->poll_query_until('coder',
			"SELECT count(*) >= 5 FROM coder_health.query_latency WHERE datname = 'coder'"),
		"$mode: at least five sqlc names seen");
	is($node->safe_psql('coder',
			"SELECT calls > 0 FROM coder_health.query_latency WHERE query_name = 'GetWorkspaceAgentByID'"),
		't', "$mode: GetWorkspaceAgentByID has calls");
	is($node->safe_psql('coder',
			"SELECT count(*) FROM coder_health.statement_latency
			 WHERE query_name IS NULL AND calls > 20 AND datname = 'coder'
			   AND queryid IN (SELECT queryid FROM coder_health.statement_latency
			                   WHERE query_name IS NOT NULL)"),
		'0', "$mode: no hot statement of the workload is left unnamed");
}

# the sum over names equals the sum over their statements
is($node->safe_psql('coder',
		"SELECT (SELECT sum(calls) FROM coder_health.query_latency)
		      = (SELECT sum(calls) FROM coder_health.statement_latency WHERE query_name IS NOT NULL)"),
	't', 'query_latency merges exactly the named statements');

ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
