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
# 4: a header, then sections; src/lib/stats_file.h).  Format 3 had one
# 56-byte header with the latency and notify fields, then the entries (laid
# out as in the latency section), then the families; each entry's text
# (after its buckets: length, encoding, bytes) taken out gives format 2
# (0.3.0); cutting the header after saved_at (40 bytes) and dropping the
# families gives format 1 (0.1.0)
$node->stop;
my ($v3_header, $v3_entries, $v2_entries, $v2_families);
{
	my ($magic, $format, $pg_major, $nsections, $saved_at) = unpack('V4 q<', $good);
	is($format, 4, 'the file is of format 4');
	my %section;
	my $p = 24;
	for (1 .. $nsections)
	{
		my $name = unpack('Z16', substr($good, $p, 16));
		my $len = unpack('Q<', substr($good, $p + 24, 8));
		$section{$name} = [ $p + 32, $len ];
		$p += 32 + $len;
	}
	my ($lat, $lat_len) = @{ $section{latency} };
	my ($ntf, $ntf_len) = @{ $section{notify} };
	my ($buckets, $entry_size, $nentries) = unpack('V3', substr($good, $lat, 12));
	my $reset_time = unpack('q<', substr($good, $lat + 16, 8));
	my ($family_size, $nfamilies) = unpack('VV', substr($good, $ntf, 8));
	my $notify_reset_time = unpack('q<', substr($good, $ntf + 8, 8));
	$v3_header = pack('V6 q< q< V2 q<', 0x43485354, 3, $pg_major, $buckets,
		$entry_size, $nentries, $reset_time, $saved_at, $family_size, $nfamilies,
		$notify_reset_time);
	$v3_entries = substr($good, $lat + 24, $lat_len - 24);
	$v2_families = substr($good, $ntf + 16, $ntf_len - 16);
	is(length($v2_families), $nfamilies * $family_size, 'the notify section holds its families');
	my $k = $entry_size - 128;
	$p = 0;
	$v2_entries = '';
	for (1 .. $nentries)
	{
		my $nb = unpack('V', substr($v3_entries, $p + $k + 120, 4));
		$v2_entries .= substr($v3_entries, $p, $entry_size + $nb * 10);
		$p += $entry_size + $nb * 10;
		$p += 8 + unpack('V', substr($v3_entries, $p, 4));
	}
	is($p, length($v3_entries), 'the latency section walked to its end');
}
{
	my $v3 = $v3_header . $v3_entries . $v2_families;
	write_file($file, $v3 . pack('V', crc32c($v3)));
}
$offset = -s $node->logfile;
$node->start;
ok($node->wait_for_log(
		qr/restored latency statistics of \d+ statements and [1-9]\d* channel families/, $offset),
	'a format-3 file (before sections) is read on upgrade');
is($node->safe_psql('postgres', $calls_sql), '15', 'with its statements');
is($node->safe_psql('postgres', $family_sql), '5 18 8 4', 'and its channel families');
is($node->safe_psql('postgres',
		"SELECT query FROM coder_health.statement_latency WHERE query_name = 'GetPersisted'"),
	'SELECT pg_sleep(?)', 'and its texts');
$node->stop;
{
	my $v2 = $v3_header . $v2_entries . $v2_families;
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
	my $v1 = substr($v3_header, 0, 40) . $v2_entries;
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
