# Notifications are counted exactly under concurrency and at any size: many
# pgbench clients notify at once (three notifications and a duplicate per
# transaction, every fourth transaction rolled back), with and without a
# listener holding the queue's tail back; one transaction writes more queue
# pages than the SLRU has buffers (read back from the segment files) and
# crosses segments; notifications from a view, a rule, a trigger and PL/pgSQL
# count like a client's.  Every figure is known in advance; nothing is
# logged as unread.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $node = ch_node('notify_exact', conf => "max_connections = 40\n");
$ENV{PG_TEST_TIMEOUT_DEFAULT} = 180 if ($ENV{PG_TEST_TIMEOUT_DEFAULT} // 0) < 180;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
my $port = $node->port;

sub family
{
	my ($f) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(sum(notifications), 0) || '|' || coalesce(sum(bytes), 0)
		FROM coder_health.notify_channels WHERE channel_family = '$f'});
}

# Each committed transaction: three distinct notifications (payloads of 2
# bytes) plus a duplicate that PostgreSQL folds; each rolled-back one:
# nothing.  -t counts transactions of both scripts, so the split is fixed by
# running them separately.
my $dir = PostgreSQL::Test::Utils::tempdir();
open(my $fh, '>', "$dir/commit.sql") or die;
print $fh <<'EOS';
BEGIN;
SELECT pg_notify('stress:' || :client_id, 'p1');
SELECT pg_notify('stress:' || :client_id, 'p2');
NOTIFY stress_x, 'p3';
SELECT pg_notify('stress:' || :client_id, 'p1');
COMMIT;
EOS
close $fh;
open($fh, '>', "$dir/rollback.sql") or die;
print $fh <<'EOS';
BEGIN;
SELECT pg_notify('stress:' || :client_id, 'lost');
ROLLBACK;
EOS
close $fh;

sub stress
{
	my ($name, $clients, $tx) = @_;
	my @procs;
	for my $script ('commit', 'rollback')
	{
		my $n = $script eq 'commit' ? $tx : $tx / 4;
		$node->command_ok(
			[ 'pgbench', '-n', '-M', 'extended', '-c', $clients, '-j', 2, '-t', $n,
				'-f', "$dir/$script.sql", '-h', $node->host, '-p', $port, 'postgres' ],
			"$name: pgbench $script, $clients clients x $n transactions");
	}
}

# no listener: the tail follows the head as soon as commits are done
$node->safe_psql('postgres', 'SELECT coder_health.notify_reset()');
stress('no listener', 16, 160);
is(family('stress:*') . ',' . family('stress_x'),
	(16 * 160 * 2) . '|' . (16 * 160 * 2 * 2) . ',' . (16 * 160) . '|' . (16 * 160 * 2),
	'no listener: 16 x 160 transactions, 3 notifications each, exact');

# a listener that keeps the tail back while it sits in a transaction
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN stress_x');
$listener->query_safe('BEGIN');
$listener->query_safe('SELECT 1');
$node->safe_psql('postgres', 'SELECT coder_health.notify_reset()');
stress('listener behind', 16, 160);
is(family('stress:*') . ',' . family('stress_x'),
	(16 * 160 * 2) . '|' . (16 * 160 * 2 * 2) . ',' . (16 * 160) . '|' . (16 * 160 * 2),
	'a listener holding the tail: exact');
$listener->query_safe('COMMIT');

# one transaction of ~3 MB: hundreds of queue pages (the SLRU keeps 8 to 16),
# several 32-page segments; then one more small one after it
$node->safe_psql('postgres', 'SELECT coder_health.notify_reset()');
$node->safe_psql('postgres', q{
	SELECT count(pg_notify('big:' || g, repeat('b', 100))) FROM generate_series(1, 25000) g});
$node->safe_psql('postgres', q{SELECT pg_notify('big:0', 'after')});
is(family('big:*'), (25000 + 1) . '|' . (25000 * 100 + 5),
	'25,000 notifications in one transaction (pages read back from the files), then one more');
$listener->query_safe('SELECT 1');	# the listener reads its share

# every way of sending, in one transaction
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int);
	CREATE FUNCTION t_trig() RETURNS trigger LANGUAGE plpgsql AS
	  $$ BEGIN PERFORM pg_notify('ways:trigger', NEW.id::text); RETURN NEW; END $$;
	CREATE TRIGGER t_trig AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION t_trig();
	CREATE TABLE r (id int);
	CREATE RULE r_notify AS ON INSERT TO r DO ALSO SELECT pg_notify('ways:rule', NEW.id::text);
	CREATE VIEW v AS SELECT pg_notify('ways:view', g::text)::text AS n FROM generate_series(1, 3) g;
	CREATE FUNCTION f(i int) RETURNS void LANGUAGE sql AS $$ SELECT pg_notify('ways:sqlfn', i::text) $$;
});
$node->safe_psql('postgres', 'SELECT coder_health.notify_reset()');
$node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO t VALUES (1), (2);
	INSERT INTO r VALUES (1);
	SELECT count(n) FROM v;
	SELECT f(1);
	DO $$ BEGIN PERFORM pg_notify('ways:plpgsql', 'x'); END $$;
	NOTIFY "ways:notify";
	COMMIT;
});
is($node->safe_psql('postgres', q{SELECT string_agg(channel_family || '=' || notifications, ',' ORDER BY channel_family)
	FROM coder_health.notify_channels WHERE channel_family LIKE 'ways:%' AND notifications > 0}),
	'ways:notify=1,ways:plpgsql=1,ways:rule=1,ways:sqlfn=1,ways:trigger=2,ways:view=3',
	'trigger, rule, view, SQL function, PL/pgSQL and NOTIFY: each counted');
is($node->safe_psql('postgres', q{SELECT notifications = (SELECT sum(notifications) FROM coder_health.notify_channels)
	FROM coder_health.notify_queue}), 't', 'queue totals add the families up');

$listener->quit;
my $log = slurp_file($node->logfile);
unlike($log, qr/coder_health (could not read back|stopped reading back|does not count)/,
	'no NOTIFY queue page went unread, the mirror was verified');
ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
