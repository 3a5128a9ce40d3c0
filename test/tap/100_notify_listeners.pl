# LISTEN/NOTIFY with real LISTEN connections: a listener held in an open
# transaction while another session sends 2,000 notifications falls behind,
# is flagged stalled with its pid and queue usage rises; once it commits it
# catches up.  What the listener receives is what coder_health counted.
# Listeners per family follow LISTEN / UNLISTEN / DISCARD ALL / exit at
# commit.  The queue mirror verifies (TAP 105 shows the feature turning
# off when it does not); a hot standby still refuses pg_notify with
# PostgreSQL's own error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use CoderHealthTest;

my $node = ch_node('notify', conf => "wal_level = replica\nmax_wal_senders = 4\n");
$ENV{PG_TEST_TIMEOUT_DEFAULT} = 120 if ($ENV{PG_TEST_TIMEOUT_DEFAULT} // 0) < 120;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');

my $owner = 'workspace_owner:6f1c2a9e-1234-4abc-9def-0123456789ab';

# --- a listener held in a transaction -----------------------------------
my $listener = $node->background_psql('postgres');
$listener->query_safe(qq{LISTEN "$owner"});
$listener->query_safe('LISTEN tailnet_peer_update');
my $lpid = $listener->query_safe('SELECT pg_backend_pid()');
$listener->query_safe('BEGIN');
$listener->query_safe('SELECT 1');

my $usage_before = $node->safe_psql('postgres',
	'SELECT usage_pct FROM coder_health.notify_queue');
$node->safe_psql('postgres',
	"SELECT count(pg_notify('tailnet_peer_update', 'peer ' || g)) FROM generate_series(1, 2000) g"
);

$node->safe_psql('postgres', 'ALTER SYSTEM SET coder_health.notify_stall_seconds = 1');
$node->safe_psql('postgres', 'ALTER SYSTEM SET coder_health.notify_stall_bytes = 10000');
$node->reload;
my $stall = '';
ok( $node->poll_query_until(
		'postgres', $stall
		  . "SELECT stalled FROM coder_health.notify_listeners WHERE pid = $lpid"),
	'listener in an open transaction is flagged stalled');
my ($backlog, $reason) = split /\|/, $node->safe_psql('postgres',
	$stall
	  . "SELECT backlog_bytes, stalled_reason FROM coder_health.notify_listeners WHERE pid = $lpid"
);
cmp_ok($backlog, '>=', 2000 * 32, 'its backlog covers the 2,000 notifications');
like($reason, qr/^transaction open for \d+ s$/, 'stalled because of its open transaction');
my ($slowest, $stalled_n, $usage_after, $supported) = split /\|/,
  $node->safe_psql('postgres',
	$stall
	  . 'SELECT slowest_listener_pid, stalled_listeners, usage_pct, supported FROM coder_health.notify_queue'
  );
is($slowest, $lpid, 'notify_queue names it as the slowest listener');
is($stalled_n, 1, 'one stalled listener');
cmp_ok($usage_after, '>', $usage_before, 'queue usage rose');
is($supported, 't', 'queue state read from PostgreSQL (supported)');

# commit: it reads everything, its backlog returns to 0
$listener->query_safe('COMMIT');
ok( $node->poll_query_until(
		'postgres',
		"SELECT backlog_bytes = 0 FROM coder_health.notify_listeners WHERE pid = $lpid"),
	'after COMMIT the listener caught up (backlog 0)');

# what the listener received equals what coder_health counted
$node->safe_psql('postgres', 'SELECT coder_health.notify_reset()');
$node->safe_psql('postgres', qq{
	NOTIFY "$owner", 'a';
	BEGIN; NOTIFY "$owner", 'b'; NOTIFY "$owner", 'b'; SAVEPOINT s; NOTIFY "$owner", 'c';
	ROLLBACK TO SAVEPOINT s; COMMIT;
	BEGIN; SELECT pg_notify('tailnet_peer_update', 'lost'); ROLLBACK;
	SELECT pg_notify('tailnet_peer_update', 'one');
	PREPARE p(text) AS SELECT pg_notify('tailnet_peer_update', \$1);
	EXECUTE p('two'); EXECUTE p('three');
	DO \$\$ BEGIN PERFORM pg_notify('tailnet_peer_update', 'four'); END \$\$;
});
# a last notification, committed after all of them: notifications arrive
# in commit order, so once it is in, anything else sent would be too
$node->safe_psql('postgres', qq{NOTIFY "$owner", 'end'});
my $received = '';
my $deadline = time() + 60;
while ($received !~ /with payload "end"/ && time() < $deadline)
{
	$received .= $listener->query('SELECT 1');
	usleep(50_000) unless $received =~ /with payload "end"/;
}
like($received, qr/with payload "end"/, 'the last notification arrived');
my ($got_owner, $got_peer);
$got_owner = () = $received =~ /notification "workspace_owner:[^"]*" with payload "[abc]"/g;
$got_peer = () = $received =~ /notification "tailnet_peer_update" with payload "(?:lost|one|two|three|four)"/g;
is($got_owner, 2, 'listener received 2 on workspace_owner:<uuid>');
is($got_peer, 4, 'listener received 4 on tailnet_peer_update');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(channel_family || '=' || notifications || '/' || listeners, ',' ORDER BY channel_family COLLATE \"C\") "
		  . "FROM coder_health.notify_channels WHERE channel_family IN ('workspace_owner:*', 'tailnet_peer_update')"
	),
	'tailnet_peer_update=4/1,workspace_owner:*=3/1',
	'coder_health counted exactly what was delivered (the 2 and the last one), and one listener per family');

# --- listeners per family follow LISTEN/UNLISTEN at commit ---------------
sub listeners_of
{
	my ($family) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(listeners), 0) FROM coder_health.notify_channels WHERE channel_family = '$family'"
	);
}
my $second = $node->background_psql('postgres');
$second->query_safe('BEGIN');
$second->query_safe('LISTEN "agent-logs:6f1c2a9e-1234-4abc-9def-0123456789ab"');
is(listeners_of('agent-logs:*'), 0, 'LISTEN not yet committed: not counted');
$second->query_safe('COMMIT');
is(listeners_of('agent-logs:*'), 1, 'LISTEN committed: counted');
$second->query_safe('BEGIN');
$second->query_safe('LISTEN "agent-logs:11111111-1234-4abc-9def-0123456789ab"');
$second->query_safe('ROLLBACK');
is( $node->safe_psql('postgres',
		"SELECT channels FROM coder_health.notify_listeners WHERE pid = "
		  . $second->query_safe('SELECT pg_backend_pid()')),
	1,
	'a rolled-back LISTEN adds no channel');
$second->query_safe('BEGIN');
$second->query_safe('UNLISTEN *');
is(listeners_of('agent-logs:*'), 1, 'UNLISTEN * not yet committed: still counted');
$second->query_safe('COMMIT');
is(listeners_of('agent-logs:*'), 0, 'UNLISTEN * committed: gone');
$second->query_safe('LISTEN "agent-logs:22222222-1234-4abc-9def-0123456789ab"');
is(listeners_of('agent-logs:*'), 1, 'listening again');
$second->query_safe('DISCARD ALL');
is(listeners_of('agent-logs:*'), 0, 'DISCARD ALL unlistens');
$second->query_safe('LISTEN "agent-logs:33333333-1234-4abc-9def-0123456789ab"');
$second->quit;
ok($node->poll_query_until('postgres', "SELECT " . "(" . 'SELECT coalesce(max(listeners), 0) FROM coder_health.notify_channels WHERE channel_family = \'agent-logs:*\'' . ") = 0"),
	'backend exit unlistens');
$listener->quit;
ok( $node->poll_query_until('postgres',
		'SELECT listeners = 0 FROM coder_health.notify_queue'),
	'no listeners left');

# --- the mirror of PostgreSQL's queue verified: no line says otherwise -----
unlike(slurp_file($node->logfile), qr/coder_health does not read the NOTIFY queue/,
	'the NOTIFY queue mirror verified at startup (TAP 105: when it does not)');

# --- a hot standby refuses pg_notify exactly as before --------------------
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('notify_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
my ($rc, $out, $err) = $standby->psql('postgres', "SELECT pg_notify('x', 'y')");
like($err, qr/ERROR:  cannot execute NOTIFY during recovery/,
	'pg_notify on a standby: PostgreSQL\'s own error');
($rc, $out, $err) = $standby->psql('postgres',
	"SET coder_health.track_notify = off; SELECT pg_notify('x', 'y')");
like($err, qr/ERROR:  cannot execute NOTIFY during recovery/,
	'the same error without the swap');
is($standby->safe_psql('postgres', 'SELECT supported FROM coder_health.notify_queue'),
	't', 'the queue is readable on the standby');
$standby->stop;

ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
