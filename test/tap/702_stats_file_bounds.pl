# The statistics file (pg_stat/coder_health.stat) of any size or content
# never keeps the server down (#19 items 3 and 6): files of 1 GiB - 1,
# exactly 1 GiB (palloc's limit + 1: FATAL in the postmaster before) and
# 1 GiB + 1 (sparse), and CRC-valid files crafted from a real save with
# calls of -1, errors above calls, a first_seen of -infinity, a sqlc name
# of 0xff bytes and a family name that is not UTF-8.  Each start gives
# exactly one WARNING naming the file and an empty start; the untouched file
# (the control) is restored, which shows the crafted ones had a valid CRC
# and layout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CoderHealthTest;

my $node = ch_node('stats_file');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
# a named statement and a notification, so the file has an entry and a family
my ($out, $err) = ('', '');
IPC::Run::run(
	[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
		'-c', "-- name: PersistMarker :one\nSELECT count(*) FROM pg_catalog.pg_am",
		'-c', q{SELECT pg_notify('agent-logs:0b7d9a2e-8f3c-4d1e-9a6b-5c4d3e2f1a0b', 'x')},
		'-c', 'SELECT coder_health.flush()' ],
	'<', \undef, '>', \$out, '2>', \$err) or die $err;
$node->stop;

my $file = $node->data_dir . '/pg_stat/coder_health.stat';
ok(-f $file, 'a clean stop saved the statistics file');
my $good = slurp_file($file);

# CRC-32C as PostgreSQL computes it (stored in native, little-endian, order)
my @table;
for my $i (0 .. 255)
{
	my $c = $i;
	$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
	$table[$i] = $c;
}
sub crc32c
{
	my ($data) = @_;
	my $crc = 0xFFFFFFFF;
	$crc = $table[ ($crc ^ $_) & 0xFF ] ^ ($crc >> 8) for unpack('C*', $data);
	return $crc ^ 0xFFFFFFFF;
}
is(unpack('V', substr($good, -4)), crc32c(substr($good, 0, -4)),
	'the CRC-32C of the saved file is computed here the same way');

# the layout (src/lib/stats_file.h; sections: src/latency/latency_persist.c,
# src/notify/notify_persist.c): a 24-byte header, then per module a 32-byte
# section header (name, version, reserved, length) and its data
my ($magic, $format, $pg_major, $nsections) = unpack('V4', $good);
is($magic, 0x43485354, 'the file starts with the magic number');
is($format, 4, 'format 4: one section per module');
my %section;
{
	my $p = 24;
	for (1 .. $nsections)
	{
		my $name = unpack('Z16', substr($good, $p, 16));
		my ($lo, $hi) = unpack('VV', substr($good, $p + 24, 8));
		$section{$name} = $p + 32;
		$p += 32 + $lo + $hi * 4294967296;
	}
	is($p, length($good) - 4, 'the sections tile the file up to its CRC');
}
ok(defined $section{latency} && defined $section{notify}, 'latency and notify sections');
# latency: buckets, entry size, nentries, reserved, reset_time; then entries
my ($entry_size, $nentries) = unpack('V2', substr($good, $section{latency} + 4, 8));
# the key grows with releases: the rest of an entry is 128 bytes
my $k = $entry_size - 128;
cmp_ok($k, '>=', 24, "an entry's key is $k bytes");
cmp_ok($nentries, '>=', 1, "the file holds statements ($nentries)");

# offset of the entry named PersistMarker (name right after the key)
my $marker;
{
	my $p = $section{latency} + 24;
	for (1 .. $nentries)
	{
		my $name = unpack('Z64', substr($good, $p + $k, 64));
		$marker = $p if $name eq 'PersistMarker';
		my $nb = unpack('V', substr($good, $p + $k + 120, 4));
		$p += $entry_size + $nb * 10;
		# the text's length and encoding, then its bytes
		our $marker_text = $p if $name eq 'PersistMarker';
		$p += 8 + unpack('V', substr($good, $p, 4));
	}
	ok(defined $marker, 'the entry of PersistMarker is found in the file');
	# notify: family size, nfamilies, reset_time; then the families
	my $nfam = unpack('V', substr($good, $section{notify} + 4, 4));
	cmp_ok($nfam, '>=', 1, "the file holds channel families ($nfam)");
	our $families_at = $section{notify} + 16;
}

sub crafted
{
	my ($offset, $bytes) = @_;
	my $data = $good;
	substr($data, $offset, length($bytes)) = $bytes;
	substr($data, -4) = pack('V', crc32c(substr($data, 0, -4)));
	return $data;
}

# Start with $content as the file (or a sparse file of $size bytes);
# returns the WARNINGs naming the file, the log since the start, and
# whether the server came up.
sub start_with
{
	my (%f) = @_;
	open my $fh, '>', $file or die "$file: $!";
	binmode $fh;
	if (defined $f{size})
	{
		truncate($fh, $f{size}) or die "truncate: $!";
	}
	else
	{
		print $fh $f{content};
	}
	close $fh;
	my $from = -s $node->logfile;
	my $started = $node->start(fail_ok => 1);
	my $log = substr(slurp_file($node->logfile), $from);
	my @warnings = ($log =~ /^.*WARNING: .*coder_health: ignoring statistics file "pg_stat\/coder_health\.stat".*$/mg);
	return ($started, $log, @warnings);
}

sub marker_count
{
	return $node->safe_psql('postgres', q{SELECT count(*)
		FROM coder_health.statement_latency_internal() WHERE query_name = 'PersistMarker'});
}

# the control: the file as saved is restored
{
	my ($started, $log, @w) = start_with(content => $good);
	ok($started, 'control: the server starts');
	is(scalar(@w), 0, 'control: no warning');
	is(marker_count(), '1', 'control: PersistMarker is restored');
	$node->stop;
}

our $families_at;
our $marker_text;
my $marker_text_len = unpack('V', substr($good, $marker_text, 4));
cmp_ok($marker_text_len, '>', 0, "PersistMarker's text is saved ($marker_text_len bytes)");
my @cases = (
	[ '1 GiB - 1 bytes (sparse)', size => 1073741823 ],
	[ '1 GiB exactly (sparse)', size => 1073741824 ],
	[ '1 GiB + 1 bytes (sparse)', size => 1073741825 ],
	[ 'calls = -1', content => crafted($marker + $k + 80, pack('q<', -1)) ],
	[ 'errors above calls', content => crafted($marker + $k + 88, pack('Q<', 1000000)) ],
	[ 'first_seen = -infinity', content => crafted($marker + $k + 64, pack('q<', -9223372036854775808)) ],
	[ 'last_seen before first_seen', content => crafted($marker + $k + 72, pack('q<', 0)) ],
	[ 'a sqlc name of 0xff bytes', content => crafted($marker + $k, ("\xff" x 13) . "\0") ],
	[ 'a text length past the end of the file', content => crafted($marker_text, pack('V', 0x7fffffff)) ],
	[ 'a text longer than an entry holds', content => crafted($marker_text, pack('V', 1024)) ],
	[ 'a text in no server encoding', content => crafted($marker_text + 4, pack('l<', 9999)) ],
	[ 'a text that is not valid in its encoding', content => crafted($marker_text + 8, "\xff\xfe") ],
	[ 'a text with a NUL inside', content => crafted($marker_text + 8, "\0") ],
	[ 'a family name that is not UTF-8', content => crafted($families_at, "\xff\xfe\0") ],
	[ 'a header with saved_at = infinity', content => crafted(16, pack('q<', 9223372036854775807)) ],
	[ 'a latency reset_time of infinity', content => crafted($section{latency} + 16, pack('q<', 9223372036854775807)) ],
	[ 'a section length past the end of the file', content => crafted($section{latency} - 8, pack('Q<', 1 << 40)) ],
);
foreach my $case (@cases)
{
	my ($name, %f) = @$case;
	my ($started, $log, @w) = start_with(%f);
	ok($started, "$name: the server starts");
	is(scalar(@w), 1, "$name: exactly one WARNING naming the file")
	  or diag($log);
	unlike($log, qr/FATAL|PANIC/, "$name: no FATAL");
	like($w[0] // '', qr/size is wrong|not a coder_health|invalid/,
		"$name: the reason is the content, not the checksum")
	  unless defined $f{size};
	next unless $started;
	is(marker_count(), '0', "$name: an empty start");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM coder_health.statement_latency_internal()
		WHERE calls < 0 OR errors > calls OR first_seen = '-infinity'
		   OR convert_to(coalesce(query_name, ''), 'UTF8') IS NULL
		   OR convert_to(coalesce(query, ''), 'UTF8') IS NULL}),
		'0', "$name: no invalid value reached the views");
	$node->stop;
}

ok(!ch_server_crashed($node), 'no backend crashed');
done_testing();
