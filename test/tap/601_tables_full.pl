# Shared memory tables full: 20,000 distinct statements into a 100-entry
# statement table, 100,000 distinct channel families into the smallest
# family table (10) and 100,000 distinct channels of one family.  Shared
# memory stays what was reserved, the overflow is counted (evictions and
# dropped samples in status, the "(other)" family row), every notification is
# still counted once, and user statements see zero errors.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CoderHealthTest;
use ReliabilityTest;

my $node = ch_node('full',
	conf => "coder_health.max_statements = 100\n"
	  . "coder_health.max_channel_families = 10\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');

my $status_sql = 'SELECT shmem_reserved_bytes, shmem_used_bytes FROM coder_health.status';
my ($reserved0, $used0) = split /\|/, $node->safe_psql('postgres', $status_sql);
cmp_ok($used0, '<=', $reserved0, "shared memory used ($used0) within reserved ($reserved0)");

# --- 20,000 distinct statements, max_statements = 100 ----------------------
my ($rc, $stdout, $stderr) = ch_run_distinct_statements($node, 200);
ok($rc, '20,000 distinct statements ran');
is($stderr, '', 'with zero errors to the user');
is(scalar(() = $stdout =~ /\n/g), 20000, 'and 20,000 results');

ok($node->poll_query_until('postgres',
		'SELECT evictions + dropped_samples > 0 FROM coder_health.status'),
	'the overflow is counted in status (evictions, dropped samples)');
is($node->safe_psql('postgres',
		'SELECT statements_tracked <= max_statements AND max_statements = 100
		 FROM coder_health.status'),
	't', 'the statement table stays within max_statements');
is($node->safe_psql('postgres',
		'SELECT count(*) <= 100 FROM coder_health.statement_latency'),
	't', 'the view shows at most max_statements entries');
my ($reserved1, $used1) = split /\|/, $node->safe_psql('postgres', $status_sql);
is($reserved1, $reserved0, 'reserved shared memory unchanged');
cmp_ok($used1, '<=', $reserved1, "shared memory used ($used1) within reserved ($reserved1)");
is(views_inconsistencies($node, 'postgres'), '', 'every view consistent with a full table');

# --- the text pool full: 100 slots reserve 300 128-byte text blocks --------
# 80 statements whose texts take 5 to 6 blocks each (480 in all): the pool
# runs out, an entry then stays without text (never with a piece of another
# one's), eviction gives blocks back, and a reset gives them all back.
$node->safe_psql('postgres', 'SELECT coder_health.reset()');
my $long_script = '';
$long_script .= 'SELECT ' . join('+', ('1') x $_) . ";\n" for 300 .. 379;
my ($lrc, $lout, $lerr) = $node->psql('postgres', $long_script);
is($lrc, 0, '80 statements with texts of 600 to 760 bytes ran');
is($lerr, '', 'with zero errors to the user');
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM coder_health.statement_latency
		 WHERE query LIKE 'SELECT ?+?+?%' AND query IS NOT NULL"),
	'long texts are kept while the pool has blocks');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM coder_health.statement_latency
		 WHERE query LIKE 'SELECT ?+?+?%'
		   AND (query !~ '^SELECT [?]([+][?])+\$'
		        OR length(query) NOT BETWEEN 606 AND 764)"),
	'0', 'every text kept is whole and its own: its blocks were chained right');
my ($reserved_t, $used_t) = split /\|/, $node->safe_psql('postgres', $status_sql);
is($reserved_t, $reserved0, 'reserved shared memory unchanged by the text pool running out');
cmp_ok($used_t, '<=', $reserved_t, "shared memory used ($used_t) within reserved ($reserved_t)");
$node->safe_psql('postgres', 'SELECT coder_health.reset()');
my $last = 'SELECT ' . join('+', ('1') x 380);
$node->safe_psql('postgres', $last);
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM coder_health.statement_latency
		 WHERE query = 'SELECT ' || repeat('?+', 379) || '?'"),
	'after a reset the blocks are free again: a new long statement gets its text');

# --- 100,000 distinct families into a 10-entry table ------------------------
# letters only (g..p stand for digits, which would fold into one family)
$node->safe_psql('postgres', 'SELECT coder_health.notify_reset()');
my ($nrc, $nout, $nerr) = $node->psql('postgres',
	"SELECT count(pg_notify('full_' || translate(g::text, '0123456789', 'ghijklmnop'), 'x'))
	 FROM generate_series(1, 50000) g;
	 SELECT count(pg_notify('full_' || translate(g::text, '0123456789', 'ghijklmnop'), 'x'))
	 FROM generate_series(50001, 100000) g;");
is($nrc, 0, '100,000 notifications on 100,000 distinct families');
is($nerr, '', 'with zero errors to the user');
is($node->safe_psql('postgres',
		"SELECT count(*) <= 11 FROM coder_health.notify_channels"),
	't', 'at most max_channel_families rows plus (other)');
is($node->safe_psql('postgres',
		"SELECT sum(notifications) FROM coder_health.notify_channels
		 WHERE channel_family LIKE 'full\\_%' OR channel_family = '(other)'"),
	'100000', 'every notification counted once');
cmp_ok($node->safe_psql('postgres',
		"SELECT notifications FROM coder_health.notify_channels
		 WHERE channel_family = '(other)'"),
	'>=', 100000 - 10, 'the families that did not fit are counted in (other)');

# --- 100,000 distinct channels of one family (uuids) ------------------------
$node->safe_psql('postgres', 'SELECT coder_health.notify_reset()');
($nrc, $nout, $nerr) = $node->psql('postgres',
	"SELECT count(pg_notify('workspace_owner:' || gen_random_uuid(), ''))
	 FROM generate_series(1, 100000)");
is($nrc, 0, '100,000 distinct workspace_owner:<uuid> channels');
is($nerr, '', 'with zero errors to the user');
is($node->safe_psql('postgres',
		"SELECT count(*) || ' ' || sum(notifications) || ' ' ||
		        bool_and(distinct_channels BETWEEN 80000 AND 120000)
		 FROM coder_health.notify_channels WHERE notifications > 0"),
	'1 100000 true', 'one family, all counted, about 100,000 distinct channels');

my ($reserved2, $used2) = split /\|/, $node->safe_psql('postgres', $status_sql);
is($reserved2, $reserved0, 'reserved shared memory unchanged after the channel storm');
cmp_ok($used2, '<=', $reserved2, "shared memory used ($used2) within reserved");
is(views_inconsistencies($node, 'postgres'), '', 'every view consistent');
ok(!ch_server_crashed($node), 'no backend crashed');
unlike(slurp_file($node->logfile), qr/(ERROR|PANIC).*coder_health|coder_health.*(ERROR|PANIC)/,
	'no ERROR from coder_health in the log');

$node->stop;
done_testing();
