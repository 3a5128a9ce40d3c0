# The kernel's round trip between a primary and its standbys: a primary in
# one network namespace and a streaming standby in another, both made here
# (test/tap/netns_link.sh) and joined through a user-space delay line
# (workload/link_delay).  Each side's rtt_ms must agree with ping between
# the namespaces within 1 ms + 10% of ping's minimum; a standby on the unix
# socket has NULL on both sides; the health check replication_rtt flips
# with lowered thresholds; with 10 ms added each way (tc netem's module is
# missing here) both sides follow to ~20 ms, the 15-minute maximum keeps
# it after the delay is gone, and the history and the health check carry it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Temp;
use CoderHealthTest;

my $root = ch_root();
my $link_delay = "$root/workload/link_delay";
ok(-x $link_delay, 'workload/link_delay is built');

# --- the namespaces ------------------------------------------------------------
# With CAP_SYS_ADMIN and CAP_NET_ADMIN (test/run.sh gives them to the TAP
# suite when it runs as root) plain network namespaces; otherwise inside a
# user namespace of our own (not possible in a chroot).
my $caps = system('unshare --net true >/dev/null 2>&1') == 0;
my @unshare = $caps ? ('unshare', '--net')
  : ('unshare', '--user', '--map-current-user', '--keep-caps', '--net');
if (!$caps && system('unshare --user --map-current-user --net true >/dev/null 2>&1') != 0)
{
	plan skip_all => 'cannot make network namespaces here (no CAP_SYS_ADMIN, no user namespaces)';
}
my $state = PostgreSQL::Test::Utils::tempdir('netns');
my $keeper_in = '';
my $keeper = IPC::Run::start([ @unshare, 'bash', "$root/test/tap/netns_link.sh", $state, $link_delay ],
	'<', \$keeper_in, '>', "$state/keeper.out", '2>', "$state/keeper.err");
my $deadline = time() + 30;
select(undef, undef, undef, 0.05) while !-f "$state/ready" && time() < $deadline;
ok(-f "$state/ready", 'namespaces A and B joined by the delay line')
  or diag(slurp_file("$state/keeper.err"));
my %ns_pid = (a => slurp_file("$state/a.pid"), b => slurp_file("$state/b.pid"));
chomp %ns_pid;
my @enter_flags = $caps ? ('-n') : ('-U', '-n', '--preserve-credentials');

# a directory with a pg_ctl that runs the real one in namespace $side: the
# postmaster it starts lives there
my %wrapper;
for my $side (qw(a b))
{
	my $dir = "$state/bin_$side";
	mkdir $dir or die "$dir: $!";
	my ($real) = grep { -x "$_/pg_ctl" } split /:/, $ENV{PATH};
	die "no pg_ctl on the PATH" unless $real;
	$real .= '/pg_ctl';
	open my $fh, '>', "$dir/pg_ctl" or die $!;
	print $fh "#!/bin/sh\nexec nsenter -t $ns_pid{$side} @enter_flags -- $real \"\$@\"\n";
	close $fh;
	chmod 0755, "$dir/pg_ctl";
	$wrapper{$side} = $dir;
}
sub start_in
{
	my ($node, $side) = @_;
	local $ENV{PATH} = "$wrapper{$side}:$ENV{PATH}";
	$node->start;
}

sub ping_ms
{
	my ($from, $to) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'nsenter', '-t', $ns_pid{$from}, @enter_flags, '--',
			'ping', '-n', '-q', '-c', '10', '-i', '0.2', $to ], '>', \$out, '2>', \$err);
	my ($min, $avg, $max) = $out =~ m{= ([\d.]+)/([\d.]+)/([\d.]+)/} or die "ping: $out $err";
	return ($min, $avg, $max);
}

sub set_delay_us
{
	my ($us) = @_;
	open my $fh, '>', "$state/delay_us" or die $!;
	print $fh "$us\n";
	close $fh;
	kill 'HUP', slurp_file("$state/link_delay.pid") =~ s/\s+//gr;
}

# the stated tolerance: rtt_ms (the kernel's minimum) within 1 ms + 10% of
# ping's minimum over 10 echoes (a busy machine delays single echoes, so
# minimum against minimum)
sub agrees
{
	my ($rtt, $ping_min) = @_;
	return defined $rtt && $rtt ne '' && abs($rtt - $ping_min) <= 1 + 0.1 * $ping_min;
}

# --- a primary in A, a standby in B streaming over TCP ---------------------------
my $primary = ch_node('primary',
	init => { allows_streaming => 1 },
	conf => "listen_addresses = '10.231.0.1'\n"
	  . "wal_receiver_status_interval = 1s\n"
	  . "coder_health.history_interval = 1\n"
	  . "wal_retrieve_retry_interval = 200ms\n");
$primary->append_conf('pg_hba.conf', "host replication all 10.231.0.0/24 trust\n");
start_in($primary, 'a');
$primary->safe_psql('postgres', 'CREATE EXTENSION coder_health');
$primary->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('far', true)");
$primary->backup('bk_far');
my $standby = PostgreSQL::Test::Cluster->new('far');
$standby->init_from_backup($primary, 'bk_far', has_streaming => 1);
$standby->append_conf('postgresql.conf',
	"listen_addresses = ''\n"
	  . "primary_conninfo = 'host=10.231.0.1 port=" . $primary->port . " application_name=far'\n"
	  . "primary_slot_name = 'far'\n");
start_in($standby, 'b');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

# and a standby on the unix socket, in this namespace
my $local = ch_streaming_standby($primary, 'local', 'local', "listen_addresses = ''\n");

ok($primary->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM coder_health.replication
	WHERE application_name = 'far' AND client_addr = '10.231.0.2' AND rtt_ms IS NOT NULL}),
	'primary: the TCP standby has a round trip');
ok($standby->poll_query_until('postgres', q{
	SELECT rtt_ms IS NOT NULL FROM coder_health.replication WHERE role = 'standby'}),
	'standby: its WAL receiver has a round trip');

my ($pmin, $pavg, $pmax) = ping_ms('a', '10.231.0.2');
my $p_rtt = $primary->safe_psql('postgres',
	"SELECT rtt_ms FROM coder_health.replication WHERE application_name = 'far'");
my $s_rtt = $standby->safe_psql('postgres',
	"SELECT rtt_ms FROM coder_health.replication WHERE role = 'standby'");
diag("no delay: ping $pmin/$pavg/$pmax ms (min/avg/max), rtt_ms primary $p_rtt, standby $s_rtt");
ok(agrees($p_rtt, $pmin), "primary's rtt_ms ($p_rtt) agrees with ping ($pmin)");
ok(agrees($s_rtt, $pmin), "standby's rtt_ms ($s_rtt) agrees with ping ($pmin)");
is($primary->safe_psql('postgres', q{
	SELECT rtt_ms > 0 AND rtt_recent_ms > 0 AND rtt_max_ms >= rtt_ms AND NOT far
	FROM coder_health.replication WHERE application_name = 'far'}),
	't', 'primary: recent and 15-minute max beside it, not far');

# --- the unix-socket standby: NULL, never 0 --------------------------------------
is($primary->safe_psql('postgres', q{
	SELECT rtt_ms IS NULL AND rtt_recent_ms IS NULL AND rtt_max_ms IS NULL AND NOT far
	FROM coder_health.replication WHERE application_name = 'local'}),
	't', 'primary: the unix-socket standby has no round trip (NULL)');
ok($local->poll_query_until('postgres', q{
	SELECT receiver_status = 'streaming' FROM coder_health.replication WHERE role = 'standby'}),
	'unix-socket standby streams');
is($local->safe_psql('postgres', q{
	SELECT rtt_ms IS NULL AND rtt_recent_ms IS NULL AND NOT far
	FROM coder_health.replication WHERE role = 'standby'}),
	't', 'unix-socket standby: NULL on its own side too');
is($local->safe_psql('postgres', q{
	SELECT status || ' ' || (value IS NULL) FROM coder_health.health WHERE check_name = 'replication_rtt'}),
	'unknown true', 'unix-socket standby: the check is unknown, not ok at 0');

# --- the health check flips with the thresholds -----------------------------------
is($primary->safe_psql('postgres', q{
	SELECT status FROM coder_health.health WHERE check_name = 'replication_rtt'}),
	'ok', 'primary: replication_rtt ok at the default 10 ms');
like($primary->safe_psql('postgres', q{
	SELECT detail FROM coder_health.health WHERE check_name = 'replication_rtt'}),
	qr/^farthest standby far \(10\.231\.0\.2\): [\d.]+ ms/, 'and names the farthest standby');
is($primary->safe_psql('postgres', q{
	SET coder_health.health_replication_rtt_warn_ms = 0;
	SELECT status || ' ' || (SELECT far FROM coder_health.replication WHERE application_name = 'far')
	FROM coder_health.health WHERE check_name = 'replication_rtt'}),
	'warn true', 'warn threshold 0: warn, and the standby is far');
is($primary->safe_psql('postgres', q{
	SET coder_health.health_replication_rtt_warn_ms = 0;
	SET coder_health.health_replication_rtt_critical_ms = 0;
	SELECT status FROM coder_health.health WHERE check_name = 'replication_rtt'}),
	'critical', 'critical threshold 0: critical');
is($standby->safe_psql('postgres', q{
	SET coder_health.health_replication_rtt_warn_ms = 0;
	SELECT status FROM coder_health.health WHERE check_name = 'replication_rtt'}),
	'warn', 'standby: the check flips too');

# --- 10 ms each way: both sides follow -------------------------------------------
set_delay_us(10000);
($pmin, $pavg, $pmax) = ping_ms('a', '10.231.0.2');
cmp_ok($pavg, '>', 19, "ping with the delay line at 10 ms each way: $pavg ms");
# tcpi_min_rtt is a minimum over minutes: a new connection shows the new
# path at once, so the standby reconnects
$primary->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'far'");
ok($primary->poll_query_until('postgres', q{
	SELECT rtt_ms > 15 FROM coder_health.replication WHERE application_name = 'far'}),
	'primary: rtt_ms follows the delay');
ok($standby->poll_query_until('postgres', q{
	SELECT rtt_ms > 15 FROM coder_health.replication WHERE role = 'standby'}),
	'standby: rtt_ms follows the delay');
my ($dmin, $davg, $dmax) = ping_ms('b', '10.231.0.1');
# a new connection's minimum comes down as samples arrive: read until it
# agrees or 30 s have passed (then the assertions below fail)
my $until = time() + 30;
while (1)
{
	$p_rtt = $primary->safe_psql('postgres',
		"SELECT rtt_ms FROM coder_health.replication WHERE application_name = 'far'");
	$s_rtt = $standby->safe_psql('postgres',
		"SELECT rtt_ms FROM coder_health.replication WHERE role = 'standby'");
	last if (agrees($p_rtt, $pmin) && agrees($s_rtt, $dmin)) || time() > $until;
	select(undef, undef, undef, 0.5);
}
diag("+10 ms each way: ping $pmin/$pavg/$pmax (A->B), $dmin/$davg/$dmax (B->A) ms, "
	  . "rtt_ms primary $p_rtt, standby $s_rtt");
ok(agrees($p_rtt, $pmin), "primary's rtt_ms ($p_rtt) agrees with ping ($pmin)");
ok(agrees($s_rtt, $dmin), "standby's rtt_ms ($s_rtt) agrees with ping ($dmin)");
is($primary->safe_psql('postgres', q{
	SELECT status FROM coder_health.health WHERE check_name = 'replication_rtt'}),
	'warn', 'primary: replication_rtt warns at the default 10 ms');
is($primary->safe_psql('postgres', q{
	SELECT far FROM coder_health.replication WHERE application_name = 'far'}),
	't', 'the standby is far');
# synchronous commit: every commit now pays the round trip
is($primary->safe_psql('postgres', q{
	SELECT commits_wait::text || ' ' || coalesce(commit_wait_floor_ms::text, 'NULL') FROM coder_health.sync_commit}),
	'false NULL', 'sync_commit: asynchronous, commits do not wait');
$primary->safe_psql('postgres', "ALTER SYSTEM SET synchronous_standby_names = 'far'; SELECT pg_reload_conf()");
ok($primary->poll_query_until('postgres', q{
	SELECT commits_wait AND sync_standbys = 1 AND commit_wait_floor_ms > 15 FROM coder_health.sync_commit}),
	'sync_commit: commits wait for far, at least its round trip');
my $floor = $primary->safe_psql('postgres', 'SELECT commit_wait_floor_ms FROM coder_health.sync_commit');
# 10 commits in one session, each stamped before it commits: the gap
# between stamps is one commit, with its wait for the standby
$primary->safe_psql('postgres', q{
	CREATE TABLE synced (i int, t timestamptz);
	DO $$ BEGIN FOR i IN 1 .. 10 LOOP
	  INSERT INTO synced VALUES (i, clock_timestamp()); COMMIT;
	END LOOP; END $$});
my $per_commit = $primary->safe_psql('postgres',
	'SELECT round((extract(epoch FROM max(t) - min(t)) * 1000 / 9)::numeric, 3) FROM synced');
diag("synchronous commit: commit_wait_floor_ms $floor, measured $per_commit ms per commit");
cmp_ok($per_commit, '>=', $floor, 'each synchronous commit took at least commit_wait_floor_ms');
$primary->safe_psql('postgres', "ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf()");

ok($primary->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM coder_health.history
	WHERE metric = 'replication_rtt_ms' AND key = 'far' AND value > 15}),
	'history: replication_rtt_ms of the standby');

# --- the delay gone: rtt_ms back, the 15-minute max remembers ---------------------
set_delay_us(0);
$primary->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'far'");
ok($primary->poll_query_until('postgres', q{
	SELECT rtt_ms < 5 AND rtt_max_ms > 15 FROM coder_health.replication WHERE application_name = 'far'}),
	'primary: rtt_ms back under 5 ms, rtt_max_ms keeps the far moment');
ok($standby->poll_query_until('postgres', q{
	SELECT rtt_ms < 5 AND rtt_max_ms > 15 FROM coder_health.replication WHERE role = 'standby'}),
	'standby: the same');

ok(!ch_server_crashed($primary), 'no backend crashed on the primary');
$local->stop;
$standby->stop;
$primary->stop;
# closing the pipe ends the namespaces' holders and the delay line
$keeper->finish;
ok(!kill(0, $ns_pid{a}) && !kill(0, $ns_pid{b}), 'nothing of the namespaces is left running');
done_testing();
