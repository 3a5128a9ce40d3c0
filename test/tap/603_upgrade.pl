# ALTER EXTENSION coder_health UPDATE from the previous release: install
# 0.1.0 from its script as released (sql/released/), fill data, update, and
# check that the data is still there and that the objects are exactly those
# of a fresh install of the current version (functions, views, schemas,
# their privileges and comments), so that an update script that forgets a
# change fails here.  Before that, without a server: each update script
# creates each object only once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

# Each update script creates each object once, in its final form (#22):
# a script grown by appending fragments that create the same view or
# function again and again is hard to review and easy to get wrong.
# Objects are told apart by kind and name (an overloaded function would
# need its argument types here).
foreach my $script (sort glob(ch_root() . '/sql/update/*.sql'))
{
	open(my $fh, '<', $script) or die "$script: $!";
	my $sql = do { local $/; <$fh> };
	close $fh;
	$sql =~ s/--[^\n]*//g;    # comments may name objects
	my %created;
	while ($sql =~ /^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?
			(VIEW|FUNCTION|PROCEDURE|TABLE|SCHEMA|TYPE|SEQUENCE)\s+([\w."]+)/gmix)
	{
		my $object = lc("$1 $2");
		$object =~ s/"//g;
		$created{$object}++;
	}
	my @twice = map { "$_ ($created{$_} times)" }
	  grep { $created{$_} > 1 } sort keys %created;
	my $name = $script =~ s{.*/}{}r;
	is(join(', ', @twice), '', "$name creates each object once");
}

my $node = ch_node('upgrade');
$node->start;
my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'coder_health'");
isnt($current, '0.1.0', "the current version ($current) is newer than 0.1.0");
like($node->safe_psql('postgres',
		"SELECT string_agg(source || '>' || target, ' ') FROM pg_extension_update_paths('coder_health')
		 WHERE path IS NOT NULL"),
	qr/0\.1\.0>\Q$current\E/, 'an update path from 0.1.0 exists');

$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('upgraded', "CREATE EXTENSION coder_health VERSION '0.1.0'");
is($node->safe_psql('upgraded', "SELECT extversion FROM pg_extension WHERE extname = 'coder_health'"),
	'0.1.0', 'the previous release installs');

# data, counted while the old objects are installed
$node->safe_psql('upgraded',
	"SELECT E'-- name: UpgradeProbe :one\\nSELECT 42' FROM generate_series(1, 5) \\gexec");
$node->safe_psql('upgraded',
	q{SELECT pg_notify('upgrade_fam:1', 'x'); NOTIFY "upgrade_fam:2", 'yy'});
my $calls_sql = "SELECT sum(calls) FROM coder_health.statement_latency WHERE query_name = 'UpgradeProbe'";
my $family_sql = "SELECT notifications || ' ' || bytes FROM coder_health.notify_channels
	WHERE channel_family = 'upgrade_fam:*'";
ok($node->poll_query_until('upgraded', "SELECT ($calls_sql) = 5"), 'statements counted under 0.1.0');
is($node->safe_psql('upgraded', $family_sql), '2 3', 'notifications counted under 0.1.0');

my ($rc, $out, $err) = $node->psql('upgraded', 'ALTER EXTENSION coder_health UPDATE');
is($rc, 0, 'ALTER EXTENSION coder_health UPDATE succeeds');
is($err, '', 'without errors or warnings');
is($node->safe_psql('upgraded', "SELECT extversion FROM pg_extension WHERE extname = 'coder_health'"),
	$current, "now at $current");
is($node->safe_psql('upgraded', $calls_sql), '5', 'the statements are still there');
is($node->safe_psql('upgraded', $family_sql), '2 3', 'and the channel families');

# the objects: one line per object of the extension, and its schemas
my $fingerprint = q{
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'function ' || p.oid::regprocedure::text || ' ' ||
         md5(CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE p.prosrc END)
         || ' ' || coalesce(p.proacl::text, '-') || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
         || ' ' || coalesce(array_to_string(p.proconfig, ','), '-') AS line
  FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'coder_health')
  UNION ALL
  SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text || ' ' ||
         md5(coalesce(pg_get_viewdef(c.oid), '')) || ' ' || coalesce(c.relacl::text, '-')
         || ' ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
  FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
  WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'coder_health')
  UNION ALL
  SELECT 'schema ' || n.nspname || ' ' || coalesce(n.nspacl::text, '-')
  FROM pg_namespace n WHERE n.nspname LIKE 'coder\_health%'
) objects};
$node->safe_psql('fresh', 'CREATE EXTENSION coder_health');
my $upgraded = $node->safe_psql('upgraded', $fingerprint);
my $fresh = $node->safe_psql('fresh', $fingerprint);
cmp_ok(scalar(() = $fresh =~ /\n/g), '>', 40, 'the fingerprint covers the objects (' .
	(scalar(() = $fresh =~ /\n/g) + 1) . ' lines)');
is($upgraded, $fresh, 'the upgraded objects are exactly those of a fresh install');

# and the updated installation works: every view answers
foreach my $view (split /\n/, $node->safe_psql('upgraded',
		"SELECT c.oid::regclass FROM pg_class c WHERE c.relkind = 'v'
		 AND c.relnamespace = 'coder_health'::regnamespace ORDER BY 1"))
{
	my ($vrc, $vout, $verr) = $node->psql('upgraded', "SELECT count(*) FROM $view");
	is("$vrc|$verr", '0|', "$view answers after the update");
	like($vout, qr/^\d+$/, "$view gives a row count");
}
ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
