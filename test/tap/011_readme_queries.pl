# The README's first queries (the SQL block of "Install into an existing
# PostgreSQL", read from README.md itself) run as a superuser and as a
# pg_monitor role after a Coder-shaped workload and a few one-off slow
# statements (what a demo's or a deployment's setup leaves behind): both
# roles get the same rows, Coder's queries come by sqlc name with enough
# calls for a p99, and no one-off statement is among the rows (#21: the
# README's query used to return pg_sleep, seed and DDL first).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $root = ch_root();

# the README's block: from "Then, in Coder's database:" to its closing fence
my $readme = slurp_file("$root/README.md");
my ($block) = $readme =~ /Then, in Coder's database:\s*```sql\n(.*?)```/s;
ok(defined $block, 'README.md has the SQL block of the install section');
my @stmts = grep { /\S/ } map { s/^\s*--.*$//mgr } split /;[^\n]*\n/, $block;
my @queries = grep { /^\s*SELECT/i } @stmts;
my @setup = grep { !/^\s*SELECT/i } @stmts;
cmp_ok(scalar @queries, '>=', 3, 'the block has the summary and at least two more queries');

# the recent window as in production (5 steps of 60 s), not the tests' 1 s
my $node = ch_node('readme', tcp => 1, conf => "coder_health.window_step = 60s\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE coder');

# one-off slow statements in Coder's database before the workload: a sleep,
# DDL, a bulk insert
$node->safe_psql('coder', 'SELECT pg_sleep(0.3)');
$node->safe_psql('coder', 'CREATE TABLE oneoff AS SELECT g FROM generate_series(1, 200000) g');
$node->safe_psql('coder', 'CREATE INDEX ON oneoff (g)');

my ($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[ "$root/workload/run.sh", '--servers', '1', '--duration', '6',
		'--rate', '400', '--notify-rate', '40', '--host', '127.0.0.1', '--port', $node->port,
		'--dbname', 'coder', '--user', $ENV{USER} // 'postgres',
		'--workspaces', '50', '--init' ],
	'>', \$out, '2>', \$err);
ok($ok, 'workload ran') or diag("$out\n$err");

# the README's own setup statements, for a monitoring role of this test
$node->safe_psql('coder', 'CREATE ROLE readme_monitor LOGIN');
foreach my $s (@setup)
{
	$s =~ s/your_monitoring_role/readme_monitor/g;
	$node->safe_psql('coder', $s);
}
ok($node->poll_query_until('coder',
		"SELECT count(*) >= 3 FROM coder_health.query_latency
		 WHERE datname = 'coder' AND recent_calls >= 100"),
	'at least three sqlc names have 100 recent calls');

foreach my $i (0 .. $#queries)
{
	my $q = $queries[$i];
	my $as_super = $node->safe_psql('coder', $q);
	my $as_monitor = $node->safe_psql('coder', $q,
		extra_params => [ '-U', 'readme_monitor' ]);
	isnt($as_super, '', "query $i returns rows");
	# the summary shows ages that move between two reads
	is($as_monitor, $as_super, "query $i: the pg_monitor role gets the superuser's rows")
	  unless $q =~ /coder_health\.summary/;
	next if $q =~ /coder_health\.summary/;
	unlike($as_super, qr/pg_sleep|CREATE|generate_series|seed|coder_health/i,
		"query $i: no one-off statement and none of coder_health's reads")
	  or diag($as_super);
	unlike($as_super, qr/^\|/m, "query $i: every row has a name or a text")
	  or diag($as_super);
	foreach my $line (split /\n/, $as_super)
	{
		# a row fits a terminal: no kilobyte of statement text
		cmp_ok(length($line), '<=', 160, "query $i: a readable row")
		  or diag($line);
	}
}

# the sqlc-named query lists Coder's names with 100 recent calls or more
my ($named) = grep { /query_latency/ } @queries;
ok(defined $named, 'the README queries Coder\'s statements by sqlc name');
is($node->safe_psql('coder',
		"SELECT count(*) FROM ($named) r WHERE r.query_name IS NULL OR r.recent_calls < 100"
		  =~ s/;\s*$//r),
	'0', 'every row of the sqlc-named query has a name and 100 calls');

ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
