# Privacy as pg_stat_statements has it (#19 item 2), tested as three roles:
# app, the owner of the statements and of a LISTEN session; mon, a member
# of pg_monitor (and so of pg_read_all_stats); and granted, a role given
# only the objects (USAGE on the schema, SELECT on every view, EXECUTE on
# every function) but not pg_read_all_stats.  granted sees every number but
# not app's query ids, sqlc names, texts, listener channels or client
# hosts, in the views and in the functions they are built on; its own
# statements it sees in full.  app and mon see app's.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CoderHealthTest;

my $node = ch_node('privacy',
	conf => "shared_preload_libraries = 'pg_stat_statements, coder_health'\n"
	  . "coder_health.history_interval = 1\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_stat_statements;
	CREATE EXTENSION coder_health;
	CREATE ROLE app LOGIN;
	CREATE ROLE mon LOGIN IN ROLE pg_monitor;
	CREATE ROLE granted LOGIN;
	GRANT USAGE ON SCHEMA coder_health TO granted;
	GRANT SELECT ON ALL TABLES IN SCHEMA coder_health TO granted;
	GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA coder_health TO granted;
	GRANT USAGE ON SCHEMA coder_health TO app;
	GRANT EXECUTE ON FUNCTION coder_health.flush() TO app;
});

# A statement with an sqlc name, sent as one string (psql -c sends it as is)
sub run_as
{
	my ($role, @sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-U', $role,
			'-d', 'postgres', map { ('-c', $_) } @sql ],
		'<', \undef, '>', \$out, '2>', \$err);
	ok($ok && $err eq '', "ran as $role") or diag($err);
	chomp $out;
	return $out;
}

sub query_as
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', $role ]);
}

run_as('app', "-- name: AppSecretQuery :one\nSELECT count(*) FROM pg_catalog.pg_am",
	'SELECT coder_health.flush()');
run_as('granted', "-- name: GrantedOwnQuery :one\nSELECT count(*) FROM pg_catalog.pg_namespace",
	'SELECT coder_health.flush()');

# app's LISTEN session, kept open
my $listener = $node->background_psql('postgres', extra_params => [ '-U', 'app' ]);
$listener->query_safe('LISTEN "workspace_owner:0b7d9a2e-8f3c-4d1e-9a6b-5c4d3e2f1a0b"');
my $lpid = $listener->query_safe('SELECT pg_backend_pid()');

my $app = query_as('postgres', q{SELECT oid FROM pg_roles WHERE rolname = 'app'});
my $granted = query_as('postgres', q{SELECT oid FROM pg_roles WHERE rolname = 'granted'});
is(query_as('postgres', qq{SELECT count(*) FROM coder_health.statement_latency_internal()
	WHERE userid = $app AND query_name = 'AppSecretQuery'}), '1',
	'the superuser sees app\'s named statement');
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM coder_health.history
	WHERE metric = 'connections' AND key IS NOT NULL}), 'history has connections per host');

# --- granted: numbers, not identities ------------------------------------
is(query_as('granted', qq{SELECT count(*) FROM coder_health.statement_latency_internal()
	WHERE userid = $app AND calls > 0}) > 0 ? 'yes' : 'no', 'yes',
	'granted: app\'s statements are counted');
is(query_as('granted', qq{SELECT count(*) FROM coder_health.statement_latency_internal()
	WHERE userid = $app AND (queryid IS NOT NULL OR query_name IS NOT NULL)}), '0',
	'granted: statement_latency_internal() hides app\'s query ids and sqlc names');
is(query_as('granted', qq{SELECT count(*) FROM coder_health.statement_latency
	WHERE userid = $app AND (queryid IS NOT NULL OR query_name IS NOT NULL
	  OR query IS DISTINCT FROM '<insufficient privilege>')}), '0',
	'granted: statement_latency hides app\'s query ids, sqlc names and texts');
is(query_as('granted', qq{SELECT count(*) FROM coder_health.statement_latency_internal()
	WHERE userid = $app AND query IS DISTINCT FROM '<insufficient privilege>'}), '0',
	'granted: statement_latency_internal() hides app\'s texts');
# exactly as pg_stat_statements masks them: the same text in place of app's
is(query_as('granted', qq{SELECT string_agg(DISTINCT query, ',') FROM pg_stat_statements
	WHERE userid = $app}),
	query_as('granted', qq{SELECT string_agg(DISTINCT query, ',') FROM coder_health.statement_latency
	WHERE userid = $app}),
	'granted: app\'s texts read as pg_stat_statements shows them');
is(query_as('granted', q{SELECT count(*) FROM coder_health.query_latency_internal()
	WHERE query_name = 'AppSecretQuery'}), '0',
	'granted: query_latency_internal() does not name app\'s statements');
is(query_as('granted', q{SELECT count(*) FROM coder_health.query_latency
	WHERE query_name IS NULL AND calls > 0}), '1',
	'granted: app\'s named statements are counted in one unnamed row');
is(query_as('granted', qq{SELECT count(*) FROM coder_health.latency_buckets_internal()
	WHERE query_name = 'AppSecretQuery' OR queryid IN
	  (SELECT queryid FROM coder_health.statement_latency_internal() WHERE userid = $app)
	  OR queryid IN (SELECT s.queryid FROM coder_health.statement_texts() s WHERE s.userid = $app)}), '0',
	'granted: latency_buckets_internal() hides app\'s query ids and names');
is(query_as('granted', qq{SELECT count(*) FROM coder_health.notify_listeners_internal()
	WHERE pid = $lpid AND channels IS NULL AND channel_families IS NULL}), '1',
	'granted: notify_listeners_internal() hides app\'s channels');
is(query_as('granted', qq{SELECT count(*) FROM coder_health.notify_listeners
	WHERE pid = $lpid AND channels IS NULL AND channel_families IS NULL AND client_addr IS NULL}), '1',
	'granted: notify_listeners hides app\'s channels and address');
is(query_as('granted', q{SELECT count(*) FROM coder_health.history
	WHERE metric = 'connections' AND key IS NOT NULL}), '0',
	'granted: history hides client hosts');
is(query_as('granted', q{SELECT count(*) FROM coder_health.statement_latency
	WHERE query_name = 'GrantedOwnQuery' AND queryid IS NOT NULL
	  AND query LIKE '%SELECT count(*) FROM pg_catalog.pg_namespace'}), '1',
	'granted: its own statement in full');
is(query_as('granted', q{SELECT count(*) FROM coder_health.health}) > 0 ? 'yes' : 'no', 'yes',
	'granted: the health view answers');

# --- app: its own ---------------------------------------------------------
$node->safe_psql('postgres', q{GRANT SELECT ON ALL TABLES IN SCHEMA coder_health TO app;
	GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA coder_health TO app});
is(query_as('app', qq{SELECT count(*) FROM coder_health.statement_latency
	WHERE userid = $app AND query_name = 'AppSecretQuery' AND queryid IS NOT NULL
	  AND query LIKE '%SELECT count(*) FROM pg_catalog.pg_am'}), '1',
	'app: its own statement in full');
is(query_as('app', qq{SELECT count(*) FROM coder_health.statement_latency
	WHERE userid = $granted AND (queryid IS NOT NULL OR query_name IS NOT NULL)}), '0',
	'app: not granted\'s');
is(query_as('app', qq{SELECT channel_families::text FROM coder_health.notify_listeners_internal()
	WHERE pid = $lpid}), '{workspace_owner:*}', 'app: its own listener\'s channels');

# --- mon (pg_monitor, so pg_read_all_stats): everything -------------------
is(query_as('mon', qq{SELECT count(*) FROM coder_health.statement_latency
	WHERE userid IN ($app, $granted) AND queryid IS NOT NULL
	  AND query_name IN ('AppSecretQuery', 'GrantedOwnQuery') AND query IS NOT NULL}), '2',
	'mon: every role\'s query ids, names and texts');
is(query_as('mon', q{SELECT count(*) FROM coder_health.query_latency
	WHERE query_name IN ('AppSecretQuery', 'GrantedOwnQuery')}), '2',
	'mon: every sqlc name in query_latency');
is(query_as('mon', qq{SELECT channels FROM coder_health.notify_listeners_internal()
	WHERE pid = $lpid}), '1', 'mon: the listener\'s channels');
is(query_as('mon', q{SELECT count(*) > 0 FROM coder_health.history
	WHERE metric = 'connections' AND key IS NOT NULL}), 't', 'mon: history keys');

$listener->quit;
ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
