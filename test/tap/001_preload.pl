# Without shared_preload_libraries every coder_health function fails with a
# clear ERROR and a HINT, and nothing crashes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $node = ch_node('no_preload', no_preload => 1);
$node->start;

is($node->psql('postgres', 'CREATE EXTENSION coder_health'),
	0, 'CREATE EXTENSION works without the preload');

my @calls = (
	'SELECT * FROM coder_health.status',
	'SELECT * FROM coder_health.statement_latency',
	'SELECT * FROM coder_health.latency',
	'SELECT * FROM coder_health.latency_buckets',
	'SELECT coder_health.statement_quantile(1, 0.5)',
	'SELECT * FROM coder_health.latency_chart(1)',
	'SELECT coder_health.flush()',
	'SELECT coder_health.reset()',
	'SELECT coder_health.reset_statement(1)');
foreach my $sql (@calls)
{
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	isnt($ret, 0, "fails without preload: $sql");
	like($err, qr/ERROR:  coder_health is not loaded/, "clear error: $sql");
	like($err, qr/HINT:  Add coder_health to shared_preload_libraries/,
		"hint names shared_preload_libraries: $sql");
}

# a LOAD outside the preload does nothing harmful either
is($node->psql('postgres', "LOAD 'coder_health'; SELECT 1"), 0, 'LOAD is harmless');
is($node->safe_psql('postgres', 'SELECT 42'), '42', 'server still answers');
ok(!ch_server_crashed($node), 'no backend crashed');

$node->stop;
done_testing();
