# DROP EXTENSION then CREATE EXTENSION again (ALTER EXTENSION UPDATE is
# 603_upgrade.pl).  The library stays
# loaded, so its shared memory keeps the data: after CREATE the views answer
# with the statements and notifications counted before, and meanwhile, while
# the extension was dropped, statements run and are still counted without
# errors.  A user view on ours blocks a plain DROP and goes with CASCADE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;
use ReliabilityTest;

my $node = ch_node('dropcreate');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
my $collector =
  $node->safe_psql('postgres', 'SELECT collector_pid FROM coder_health.status');

# the probe carries an sqlc name, so it is found the same way on every
# version (on PostgreSQL 13 query ids are hashes of the text, not core ids);
# psql drops a leading "--" comment, so the text goes out through \gexec
sub probe
{
	my ($times) = @_;
	return q{SELECT E'-- name: DropCreateProbe :one\n}
	  . q{SELECT count(*) FROM pg_class WHERE relname = ''drop_create_probe'''}
	  . " FROM generate_series(1, $times) \\gexec\n";
}
my $probe_calls = "SELECT sum(calls) FROM coder_health.statement_latency
	WHERE query_name = 'DropCreateProbe'";
$node->safe_psql('postgres', probe(3) . "SELECT pg_notify('dc_family', 'x')");
ok($node->poll_query_until('postgres',
		"SELECT ($probe_calls) = 3"),
	'probe statement counted before DROP');

# a user's view on ours depends on the extension
$node->safe_psql('postgres',
	'CREATE VIEW my_health AS SELECT statements_tracked FROM coder_health.status');
my ($rc, $out, $err) = $node->psql('postgres', 'DROP EXTENSION coder_health');
isnt($rc, 0, 'plain DROP refused while a user view depends on it');
like($err, qr/cannot drop extension coder_health because other objects depend on it/,
	'with PostgreSQL\'s dependency error');
$node->safe_psql('postgres', 'DROP EXTENSION coder_health CASCADE');
# CREATE EXTENSION made schema coder_health itself (the control file names
# it), so, as for every extension with a fixed schema, PostgreSQL leaves it
# behind, empty; everything in it and the wrapper schema go
is($node->safe_psql('postgres',
		"SELECT string_agg(nspname, ',') FROM pg_namespace WHERE nspname LIKE 'coder\\_health%'"),
	'coder_health', 'only the empty schema coder_health is left');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_class WHERE relnamespace = 'coder_health'::regnamespace")
	  + $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_proc WHERE pronamespace = 'coder_health'::regnamespace"),
	0, 'no views or functions left in it');

# while dropped: statements and pg_notify run without errors (the hooks stay
# in the loaded library and must not depend on the catalog objects)
($rc, $out, $err) = $node->psql('postgres',
	probe(2) . "SELECT pg_notify('dc_family', 'y'); NOTIFY dc_family, 'z'");
is($rc, 0, 'statements and notifications run while the extension is dropped');
is($err, '', 'with zero errors');
($rc, $out, $err) = $node->psql('postgres', 'SELECT * FROM coder_health.status');
like($err, qr/relation "coder_health.status" does not exist/,
	'the views are gone, with PostgreSQL\'s own error');

# CREATE again: data kept in shared memory, views answer
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
ok($node->poll_query_until('postgres',
		"SELECT ($probe_calls) = 5"),
	'the statement keeps its count across DROP/CREATE (3 before, 2 while dropped)');
# a client's SELECT pg_notify(..) is counted at ExecutorStart, which needs
# no catalog object: the NOTIFY statement and the pg_notify() call sent while
# the extension was dropped are both counted
is($node->safe_psql('postgres',
		"SELECT notifications FROM coder_health.notify_channels
		 WHERE channel_family = 'dc_family'"),
	'3', 'notifications before and while dropped are counted');
is($node->safe_psql('postgres', 'SELECT collector_pid FROM coder_health.status'),
	$collector, 'the collector kept running');
is(views_inconsistencies($node, 'postgres'), '', 'every view answers consistently');

# one session with cached plans across DROP and CREATE: a prepared statement
# and a PL/pgSQL function calling pg_notify keep working (the plans that
# point at the dropped wrapper are invalidated) and count throughout: while
# the wrapper is gone, both plans keep pg_notify, and PERFORM runs its SELECT
# through ExecutorStart, where the call is counted
$node->safe_psql('postgres', 'SELECT coder_health.notify_reset()');
($rc, $out, $err) = $node->psql('postgres', q{
	CREATE FUNCTION nf(i int) RETURNS void LANGUAGE plpgsql AS
	  $$ BEGIN PERFORM pg_notify('dc_plpgsql', i::text); END $$;
	PREPARE p(text) AS SELECT pg_notify('dc_prep', $1);
	EXECUTE p('1'); SELECT nf(1);
	DROP EXTENSION coder_health;
	EXECUTE p('2'); SELECT nf(2);
	CREATE EXTENSION coder_health;
	EXECUTE p('3'); SELECT nf(3);
	SELECT string_agg(channel_family || '=' || notifications, ' ' ORDER BY channel_family)
	FROM coder_health.notify_channels WHERE channel_family LIKE 'dc\_p%'});
is($rc, 0, 'cached plans calling pg_notify survive DROP and CREATE');
is($err, '', 'with zero errors');
like($out, qr/dc_plpgsql=3 dc_prep=3$/, 'counted before DROP, while dropped and after CREATE');

# and again, a few times in one session, and in a transaction rolled back
($rc, $out, $err) = $node->psql('postgres',
	'DROP EXTENSION coder_health; CREATE EXTENSION coder_health;
	 DROP EXTENSION coder_health; CREATE EXTENSION coder_health;
	 BEGIN; DROP EXTENSION coder_health; ROLLBACK;
	 SELECT count(*) > 0 FROM coder_health.statement_latency');
is($rc, 0, 'repeated DROP/CREATE and a rolled-back DROP work');
is($out, 't', 'and the data is still there');
ok(!ch_server_crashed($node), 'no backend crashed');

$node->stop;
done_testing();
