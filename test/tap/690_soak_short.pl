# The 2-minute soak (test/soak.sh with SOAK_SECONDS=120 and fewer
# connections) as part of make test: the Coder workload, a NOTIFY storm and a
# stalled listener against a cluster of its own; every criterion must PASS.
# make soak runs the full 10-minute version (and valgrind).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

plan skip_all => 'the soak runs in the native make test only (CH_SKIP_SOAK is set by make test-matrix)'
  if $ENV{CH_SKIP_SOAK};

my $root = ch_root();
my $seconds = $ENV{SOAK_SHORT_SECONDS} // 120;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dir = "$PostgreSQL::Test::Utils::tmp_check/soak_short";

my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run(
	[ 'bash', "$root/test/soak.sh" ],
	'<', \undef, '>', \$stdout, '2>', \$stderr,
	init => sub {
		$ENV{SOAK_SECONDS} = $seconds;
		$ENV{SOAK_SERVERS} = 4;    # 4 x 11 = 44 connections
		$ENV{SOAK_RATE} = 60;
		$ENV{SOAK_STORM_RATE} = 500;
		$ENV{SOAK_NO_BUILD} = 1;
		$ENV{SOAK_VALGRIND} = 0;
		$ENV{SOAK_PORT} = $port;
		$ENV{SOAK_DIR} = $dir;
	});
note($stdout);
diag($stderr) if $stderr ne '';

for my $criterion ('errors caused by coder_health', 'backend memory flat',
	'shared memory flat', 'stalled listener held the queue', 'collector overruns')
{
	like($stdout, qr/^PASS: \Q$criterion\E /m, "soak: $criterion")
	  or diag(($stdout =~ /^(FAIL: \Q$criterion\E .*)$/m)[0] // 'no verdict line');
}
like($stdout, qr/^5 passed, 0 failed$/m, 'soak: 5 passed, 0 failed');
ok($ok, 'soak.sh exits 0');
done_testing();
