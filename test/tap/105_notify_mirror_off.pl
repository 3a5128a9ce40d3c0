# When coder_health's mirror of PostgreSQL's private NOTIFY queue struct does
# not verify at startup, the NOTIFY features that read the queue turn off
# with one LOG line, and everything else runs: PostgreSQL's LISTEN/NOTIFY
# delivers as always, the queue views fall back to
# pg_notification_queue_usage() (supported = false), statements are timed,
# the collector cycles.
#
# The mismatch is made by test/modules/notify_mirror_break, a library that
# test/run.sh installs for the tests only: preloaded after coder_health, it
# puts an offset into the queue's head that PostgreSQL never has at startup
# while coder_health verifies, and the right value back right after.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use CoderHealthTest;

my $node = ch_node('notify_off',
	conf => "shared_preload_libraries = 'coder_health,notify_mirror_break'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');

my $log = slurp_file($node->logfile);
like($log, qr/notify_mirror_break: the NOTIFY queue's head was off while coder_health started/,
	'the queue was off while coder_health verified it');
my $off = () = $log =~ /LOG:  coder_health does not read the NOTIFY queue of PostgreSQL/g;
is($off, 1, 'one LOG line says the NOTIFY queue is not read');
like($log, qr/DETAIL:  The head, tail or listener entries of "Async Queue Control" do not hold their initial values\./,
	'and why');

# PostgreSQL's own LISTEN/NOTIFY is untouched
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN mirror_off');
$node->safe_psql('postgres', "NOTIFY mirror_off, 'one'");
$node->safe_psql('postgres', "SELECT pg_notify('mirror_off', 'two')");
my $received = '';
my $deadline = time() + 60;
while ($received !~ /with payload "two"/ && time() < $deadline)
{
	$received .= $listener->query('SELECT 1');
	usleep(50_000) unless $received =~ /with payload "two"/;
}
like($received, qr/notification "mirror_off" with payload "one".*notification "mirror_off" with payload "two"/s,
	'the listener received both notifications');

# the queue views: PostgreSQL's own figure, no listener detail
is( $node->safe_psql('postgres',
		'SELECT supported, usage_pct = round((pg_notification_queue_usage() * 100)::numeric, 4) FROM coder_health.notify_queue'),
	"f|t", 'notify_queue: supported = false, usage from pg_notification_queue_usage()');
is($node->safe_psql('postgres', 'SELECT count(*) FROM coder_health.notify_listeners WHERE backlog_bytes > 0'),
	'0', 'notify_listeners shows no backlog it cannot read');
is( $node->safe_psql('postgres',
		"SELECT coalesce(sum(notifications), 0) FROM coder_health.notify_channels WHERE channel_family = 'mirror_off'"),
	'0', 'notifications are not counted');

# the rest runs: statements are timed, the collector cycles
$node->safe_psql('postgres', 'SELECT 4242 AS mirror_off_marker') for 1 .. 3;
ok( $node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM coder_health.statement_latency WHERE query LIKE '%mirror_off_marker%'"),
	'statements are timed');
my $runs = $node->safe_psql('postgres', 'SELECT collector_runs FROM coder_health.status');
ok($node->poll_query_until('postgres',
		"SELECT collector_runs >= $runs + 3 FROM coder_health.status"),
	'the collector cycles');

$listener->quit;
$log = slurp_file($node->logfile);
$off = () = $log =~ /coder_health does not read the NOTIFY queue/g;
is($off, 1, 'still one LOG line after the collector and the views read the queue');
ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
