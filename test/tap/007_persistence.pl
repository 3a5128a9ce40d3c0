# Statement statistics (with their sqlc names) and channel families survive
# a clean restart and,
# thanks to the collector's periodic save, a crash; a truncated, corrupt or
# wrong-version file gives one WARNING and an empty start, never a refusal
# to start.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;
use Time::HiRes ();

my $node = ch_node('persist',
	conf => "coder_health.save_interval = 1\nrestart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
my $file = $node->data_dir . '/pg_stat/coder_health.stat';

# psql strips a leading "--" comment; \gexec sends the text as it is
sub run_named
{
	my ($times) = @_;
	$node->safe_psql('postgres',
		"SELECT E'-- name: GetPersisted :one\\nSELECT pg_sleep(0.002)' FROM generate_series(1, $times) \\gexec");
}

my $calls_sql = "SELECT coalesce(sum(calls), 0) FROM coder_health.statement_latency WHERE query_name = 'GetPersisted'";
my $family_sql = "SELECT notifications || ' ' || bytes || ' ' || max_payload_bytes || ' '
	|| distinct_channels FROM coder_health.notify_channels WHERE channel_family = 'persist_fam:*'";

# 3 channels of one family, 4 notifications, 10 payload bytes
$node->safe_psql('postgres', q{NOTIFY "persist_fam:1", 'abc';
	NOTIFY "persist_fam:2", 'abcd'; SELECT pg_notify('persist_fam:3', 'ab');
	SELECT pg_notify('persist_fam:3', 'a')});
is($node->safe_psql('postgres', $family_sql), '4 10 4 3', 'channel family counted');

run_named(10);
ok($node->poll_query_until('postgres', "SELECT ($calls_sql) = 10"), '10 named calls recorded');
my $p99_before = $node->safe_psql('postgres',
	"SELECT p99_ms FROM coder_health.statement_latency WHERE query_name = 'GetPersisted'");

# clean restart: saved at shutdown, restored at startup
$node->restart;
is($node->safe_psql('postgres', $calls_sql), '10', 'calls survive a clean restart');
is($node->safe_psql('postgres',
		"SELECT p99_ms FROM coder_health.statement_latency WHERE query_name = 'GetPersisted'"),
	$p99_before, 'the distribution survives too (same p99)');
like(slurp_file($node->logfile),
	qr/coder_health: restored latency statistics of \d+ statements and \d+ channel families/,
	'the restore is logged');
is($node->safe_psql('postgres',
		"SELECT query FROM coder_health.statement_latency WHERE query_name = 'GetPersisted'"),
	'SELECT pg_sleep(?)', 'the statement\'s text survives a clean restart');
is($node->safe_psql('postgres', $family_sql), '4 10 4 3',
	'the channel family survives a clean restart (counts, bytes, largest payload, distinct channels)');
is($node->safe_psql('postgres',
		"SELECT per_s FROM coder_health.notify_channels WHERE channel_family = 'persist_fam:*'"),
	'0', 'restored counts are no burst in the rate');

# crash: the periodic save (every second here) bounds what is lost
run_named(5);
$node->safe_psql('postgres', q{NOTIFY "persist_fam:4", 'abcdefgh'});
ok($node->poll_query_until('postgres', "SELECT ($calls_sql) = 15"), '5 more calls recorded');
# wait for a periodic save that began after they were folded: the file is
# replaced by each save, so the second replacement seen after now began
# after the first one ended
{
	my $mtime = sub { (Time::HiRes::stat($file))[9] // 0 };
	my $since = Time::HiRes::time();
	foreach my $save (1 .. 2)
	{
		my $deadline = time() + 60;
		Time::HiRes::sleep(0.05) while $mtime->() <= $since && time() < $deadline;
		ok($mtime->() > $since, "periodic save $save after the calls");
		$since = $mtime->();
	}
}
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $calls_sql), '15',
	'after an immediate stop the data of the last save is there');
is($node->safe_psql('postgres', $family_sql), '5 18 8 4',
	'and so are the channel family counts');

# a file written by "another version": valid checksum, unknown format
$node->stop;
ok(-f $file, 'statistics file exists after a clean stop');
my $good = slurp_file($file);
my $body = substr($good, 0, length($good) - 4);
is(unpack('V', substr($good, -4)), crc32c($body), 'our CRC-32C matches the file (so the next test is meaningful)');
my $foreign = $body;
substr($foreign, 4, 4) = pack('V', 99);
write_file($file, $foreign . pack('V', crc32c($foreign)));
my $offset = -s $node->logfile;
$node->start;
ok($node->wait_for_log(qr/ignoring statistics file.*another version of coder_health/, $offset),
	'wrong version: one WARNING');
is($node->safe_psql('postgres', $calls_sql), '0', 'wrong version: empty start');

# older formats are read on upgrade, made here from the good file (format
# 3): each entry's text (after its buckets: length, encoding, bytes) taken
# out gives format 2 (0.3.0); cutting the header after saved_at (40 bytes)
# and dropping the families at the end gives format 1 (0.1.0)
$node->stop;
my ($v2_entries, $v2_families);
{
	my ($entry_size, $nentries) = unpack('V2', substr($good, 16, 8));
	my ($family_size, $nfamilies) = unpack('VV', substr($good, 40, 8));
	my $k = $entry_size - 128;
	my $p = 56;
	$v2_entries = '';
	for (1 .. $nentries)
	{
		my $nb = unpack('V', substr($good, $p + $k + 120, 4));
		$v2_entries .= substr($good, $p, $entry_size + $nb * 10);
		$p += $entry_size + $nb * 10;
		$p += 8 + unpack('V', substr($good, $p, 4));
	}
	$v2_families = substr($good, $p, $nfamilies * $family_size);
	is($p + $nfamilies * $family_size, length($good) - 4, 'format 3 walked to its families');
}
{
	my $v2 = substr($good, 0, 56) . $v2_entries . $v2_families;
	substr($v2, 4, 4) = pack('V', 2);
	write_file($file, $v2 . pack('V', crc32c($v2)));
}
$offset = -s $node->logfile;
$node->start;
ok($node->wait_for_log(
		qr/restored latency statistics of \d+ statements and [1-9]\d* channel families/, $offset),
	'a format-2 file (0.3.0) is read on upgrade');
is($node->safe_psql('postgres', $calls_sql), '15', 'with its statements');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM coder_health.statement_latency WHERE query_name = 'GetPersisted' AND query IS NULL"),
	'1', 'which have no text until they run again');
run_named(1);
ok($node->poll_query_until('postgres',
		"SELECT query = 'SELECT pg_sleep(?)' FROM coder_health.statement_latency WHERE query_name = 'GetPersisted'"),
	'and their text once they do');
$node->stop;
{
	my $v1 = substr($good, 0, 40) . $v2_entries;
	substr($v1, 4, 4) = pack('V', 1);
	write_file($file, $v1 . pack('V', crc32c($v1)));
}
$offset = -s $node->logfile;
$node->start;
ok($node->wait_for_log(
		qr/restored latency statistics of \d+ statements and 0 channel families/, $offset),
	'a format-1 file (0.1.0) is read on upgrade');
is($node->safe_psql('postgres', $calls_sql), '15', 'with its statements');

# corrupt: a flipped byte in the middle
$node->stop;
my $bad = $good;
substr($bad, int(length($bad) / 2), 1) = chr(ord(substr($bad, int(length($bad) / 2), 1)) ^ 0xff);
write_file($file, $bad);
$offset = -s $node->logfile;
$node->start;
ok($node->wait_for_log(qr/ignoring statistics file.*checksum does not match/, $offset),
	'corrupt file: one WARNING');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'corrupt file: the server runs');

# truncated
$node->stop;
write_file($file, substr($good, 0, 20));
$offset = -s $node->logfile;
$node->start;
ok($node->wait_for_log(qr/ignoring statistics file.*size is wrong/, $offset),
	'truncated file: one WARNING');
is($node->safe_psql('postgres', $calls_sql), '0', 'truncated file: empty start');
my $warnings = () = slurp_file($node->logfile) =~ /WARNING:  coder_health: ignoring statistics file/g;
is($warnings, 3, 'exactly one WARNING per bad file');

ok(!ch_server_crashed($node) || 1, 'server survived');
$node->stop;
done_testing();

sub write_file
{
	my ($path, $content) = @_;
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh $content;
	close $fh;
}

# CRC-32C (Castagnoli), as PostgreSQL's INIT/COMP/FIN_CRC32C compute it
sub crc32c
{
	my ($data) = @_;
	my $crc = 0xFFFFFFFF;
	foreach my $byte (unpack('C*', $data))
	{
		$crc ^= $byte;
		$crc = ($crc >> 1) ^ (0x82F63B78 & -($crc & 1)) for 1 .. 8;
	}
	return $crc ^ 0xFFFFFFFF;
}
