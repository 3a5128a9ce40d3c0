# The largest allowed history settings (#19 item 4): history_length 7 days
# with history_interval 1 s asked for a 29-million-row ring (2 GB of shared
# memory) and made coder_health.history and sparkline() fail with "invalid
# memory alloc request size 2090192256".  The ring is now capped at
# 1,000,000 rows and read in chunks: both answer, and the history part of
# the reservation stays under 100 MB.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $node = ch_node('max_history',
	conf => "coder_health.history_length = 604800\ncoder_health.history_interval = 1\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');

is($node->safe_psql('postgres', q{SELECT setting FROM pg_settings
	WHERE name = 'coder_health.history_length'}), '604800', 'history_length is at its maximum');
is($node->safe_psql('postgres', q{SELECT max_val FROM pg_settings
	WHERE name = 'coder_health.history_length'}), '604800', 'which is the largest allowed');

ok($node->poll_query_until('postgres',
		q{SELECT count(DISTINCT ts) >= 3 FROM coder_health.history
		  WHERE metric = 'notify_queue_usage_pct'}),
	'history fills at one sample a second');
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT coder_health.sparkline('notify_queue_usage_pct') IS NOT NULL});
is($out, 't', 'sparkline() answers');
is($err, '', 'without an error');
($rc, $out, $err) = $node->psql('postgres',
	q{SELECT count(*) > 0 FROM coder_health.history});
is($out, 't', 'history answers');
is($err, '', 'without an error');
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM coder_health.health'), 't',
	'health answers');

# the reservation: the ring is 1,000,000 rows of 72 bytes at most
my $with_max = $node->safe_psql('postgres',
	'SELECT shmem_reserved_bytes FROM coder_health.status');
$node->append_conf('postgresql.conf',
	"coder_health.history_length = 60\ncoder_health.history_interval = 60\n");
$node->restart;
my $with_min = $node->safe_psql('postgres',
	'SELECT shmem_reserved_bytes FROM coder_health.status');
note("shmem_reserved_bytes: $with_max at the largest history settings, $with_min at the smallest");
cmp_ok($with_max - $with_min, '<=', 100 * 1000 * 1000,
	'the largest history settings reserve at most 100 MB more');

ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
