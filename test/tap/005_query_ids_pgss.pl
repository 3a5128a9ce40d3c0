# Next to pg_stat_statements, in either order in shared_preload_libraries,
# coder_health uses the same query ids: its rows join pg_stat_statements'
# rows (and get their query text).  On PostgreSQL 13 this proves the
# text-hash fallback never replaces an id pg_stat_statements set: the
# statements that differ only in a constant are one statement there too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $workload = q{
	SELECT pg_sleep(0.001);
	SELECT pg_sleep(0.002);
	SELECT pg_sleep(0.003);
	PREPARE by_param(int) AS SELECT count(*) FROM generate_series(1, $1);
	EXECUTE by_param(10);
	EXECUTE by_param(20);
	CHECKPOINT;
	CHECKPOINT;
	SELECT coder_health.flush();
};

my $i = 0;
foreach my $order ('pg_stat_statements, coder_health',
	'coder_health, pg_stat_statements')
{
	$i++;
	my $node = ch_node("pgss_$i",
		conf => "shared_preload_libraries = '$order'\n");
	$node->start;
	$node->safe_psql('postgres',
		'CREATE EXTENSION pg_stat_statements; CREATE EXTENSION coder_health');
	$node->safe_psql('postgres',
		'SELECT pg_stat_statements_reset(); SELECT coder_health.reset();');
	$node->safe_psql('postgres', $workload);

	is($node->safe_psql('postgres',
			'SELECT count(*) FROM coder_health.statement_latency c
			 WHERE NOT EXISTS (SELECT FROM pg_stat_statements p
			                   WHERE p.queryid = c.queryid AND p.dbid = c.dbid
			                     AND p.userid = c.userid)'),
		'0', "$order: every statement has pg_stat_statements' query id");
	is($node->safe_psql('postgres',
			"SELECT calls || ' ' || query FROM coder_health.statement_latency
			 WHERE queryid = (SELECT queryid FROM pg_stat_statements
			                  WHERE query LIKE 'SELECT pg_sleep(\$1)%')"),
		'3 SELECT pg_sleep(?)', "$order: constants normalized as pg_stat_statements does (one statement, 3 calls), and coder_health's own text");
	is($node->safe_psql('postgres',
			"SELECT calls FROM coder_health.statement_latency
			 WHERE query LIKE 'PREPARE by_param%'"),
		'2', "$order: the prepared statement, 2 calls");
	is($node->safe_psql('postgres',
			"SELECT calls FROM coder_health.statement_latency
			 WHERE query = 'CHECKPOINT'"),
		'2', "$order: the utility statement, 2 calls");
	ok(!ch_server_crashed($node), "$order: no backend crashed");
	$node->stop;
}

done_testing();
