# The Prometheus path, end to end with real parts: postgres_exporter (the
# Debian binary) with prometheus/queries.yaml against a server running
# coder_health; the scrape has every expected family with the right type and
# plausible values; the alert rules pass promtool, and every coder_health
# metric they (and the Grafana dashboard) use was really emitted.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use CoderHealthTest;

my $root = ch_root();
my $exporter = '/usr/bin/prometheus-postgres-exporter';
plan skip_all => 'prometheus-postgres-exporter is not installed' unless -x $exporter;

my $node = ch_node('exporter', init => { allows_streaming => 1 });
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
$node->safe_psql('postgres', 'SELECT pg_sleep(0.01)') for 1 .. 5;
$node->safe_psql('postgres', "SELECT 'x' || g FROM generate_series(1, 20) g");

# Families with no rows are not emitted at all, so make every condition the
# dashboard and the alerts look at real: a sqlc-named query, a LISTEN
# session, notifications, a streaming standby with a slot.
# (psql -c sends the comment; a script read from stdin would drop it)
system_or_bail('psql', '-X', '-q', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
	'-c', "-- name: GetWorkspaceByID :one\nSELECT 1") for 1 .. 3;
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN tailnet_peer_update');
$node->safe_psql('postgres',
	"SELECT pg_notify('workspace_owner:6f1c2a9e-1234-4abc-9def-0123456789ab', 'x'), pg_notify('tailnet_peer_update', 'y')");
my $standby = ch_streaming_standby($node, 'exporter_standby', 'standby1');

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = 'host=' . $node->host . ' port=' . $node->port
  . ' user=' . ($ENV{USER} // 'postgres') . ' dbname=postgres sslmode=disable';
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ $exporter, "--web.listen-address=127.0.0.1:$port",
		"--extend.query-path=$root/prometheus/queries.yaml" ],
	'>', \$out, '2>', \$err,
	init => sub { $ENV{DATA_SOURCE_NAME} = $dsn });

my $http = HTTP::Tiny->new(timeout => 10);
my $metrics;
my $deadline = time() + 60;
while (time() < $deadline)
{
	my $r = $http->get("http://127.0.0.1:$port/metrics");
	# the sqlc-named statements reach the shared tables within a collector cycle
	if ($r->{success} && $r->{content} =~ /^coder_health_status_collector_up/m
		&& $r->{content} =~ /^coder_health_query_latency_calls\{[^}]*GetWorkspaceByID/m)
	{
		$metrics = $r->{content};
		last;
	}
	select(undef, undef, undef, 0.2);
}
ok(defined $metrics, 'exporter answers with coder_health metrics') or diag($err);
$metrics //= '';

like($metrics, qr/^pg_up(\{[^}]*\})? 1$/m, 'exporter reaches PostgreSQL');
like($metrics, qr/^pg_exporter_user_queries_load_error\{[^}]*\} 0$/m,
	'queries.yaml loads without error');

# postgres_exporter reads a HISTOGRAM column from 0.10 on; Debian bullseye
# (where the PostgreSQL 13 matrix runs) ships 0.8, which skips it silently.
# ("postgres_exporter, version 0.11.1 ..." / "postgres_exporter 0.8.0+ds ...")
my ($exporter_version) = `$exporter --version 2>&1` =~ /^postgres_exporter,? (?:version )?v?(\d+\.\d+)/m;
my ($exporter_major, $exporter_minor) = split /\./, ($exporter_version // '0.0');
my $has_histograms = $exporter_major > 0 || $exporter_minor >= 10;
note("postgres_exporter " . ($exporter_version // 'unknown')
	  . ($has_histograms ? '' : ': no HISTOGRAM support, histogram checks skipped'));

my %type;
$type{$1} = $2 while $metrics =~ /^# TYPE (\S+) (\S+)$/mg;
my %expect = (
	coder_health_status_collector_up => 'gauge',
	coder_health_status_collector_runs => 'counter',
	coder_health_status_statements_tracked => 'gauge',
	coder_health_status_dropped_samples => 'counter',
	coder_health_recent_latency_p99_seconds => 'gauge',
	coder_health_recent_latency_calls => 'gauge',
	coder_health_latency_seconds => 'histogram',
	coder_health_health_status => 'gauge',
	coder_health_notify_queue_usage => 'gauge',
	coder_health_notify_queue_notifications => 'counter',
	coder_health_notify_queue_pubsub_postgres => 'gauge',
	coder_health_notify_queue_unread_pages => 'counter',
	coder_health_notify_listeners_backlog_bytes => 'gauge',
	coder_health_notify_channels_notifications => 'counter',
	coder_health_coder_server_connections => 'gauge',
	coder_health_coder_server_rtt_seconds => 'gauge',
	coder_health_connections_headroom_at_full_pools => 'gauge',
	coder_health_replication_replay_lag_bytes => 'gauge',
	coder_health_replication_replay_lag_seconds => 'gauge',
	coder_health_replication_slots_retained_wal_bytes => 'gauge',
	coder_health_query_latency_calls => 'counter',
	coder_health_query_latency_recent_p99_seconds => 'gauge');
delete $expect{coder_health_latency_seconds} unless $has_histograms;
foreach my $name (sort keys %expect)
{
	is($type{$name}, $expect{$name}, "$name is a $expect{$name}");
}

# histogram shape: buckets with le, +Inf, _sum, _count; cumulative; +Inf = count
SKIP:
{
skip "postgres_exporter $exporter_version has no HISTOGRAM support", 7
  unless $has_histograms;
my @le = map { /le="([^"]+)"/ ? $1 : () } grep { /scope="database"/ } ($metrics =~ /^(coder_health_latency_seconds_bucket\{.*)$/mg);
ok(scalar(grep { $_ eq '0.0001' } @le), 'database histogram has le=0.0001');
ok(scalar(grep { $_ eq '+Inf' } @le), 'database histogram has le=+Inf');
my @counts = map { $_->[1] } sort { $a->[0] <=> $b->[0] } map {
	my ($l, $v) = /le="([^"]+)".*\} (\d+)$/;
	[ $l eq '+Inf' ? 9e99 : $l, $v ]
} grep { /scope="database"/ } ($metrics =~ /^(coder_health_latency_seconds_bucket\{.*)$/mg);
my $monotonic = 1;
$monotonic &&= $counts[$_] >= $counts[ $_ - 1 ] for 1 .. $#counts;
ok(@counts > 2 && $monotonic, 'buckets are cumulative');
my ($count) = $metrics =~ /^coder_health_latency_seconds_count\{[^}]*scope="database"[^}]*\} (\d+)/m;
my ($sum) = $metrics =~ /^coder_health_latency_seconds_sum\{[^}]*scope="database"[^}]*\} (\S+)/m;
ok(defined $count && $count >= 6, "database count covers the statements run (got " . ($count // 'none') . ")");
is($counts[-1], $count, '+Inf bucket equals _count');
ok(defined $sum && $sum >= 0.05, 'sum includes the 5 x 10 ms sleeps');
}
like($metrics, qr/^coder_health_status_collector_up\{[^}]*\} 1$/m, 'collector_up is 1');
like($metrics, qr/^coder_health_notify_queue_pubsub_postgres\{[^}]*\} 1$/m,
	'pubsub mode is 1, PostgreSQL: the test holds a LISTEN connection (was: any of -1, 0, 1)');
like($metrics, qr/^coder_health_notify_queue_unread_pages\{[^}]*\} 0$/m, 'no unread NOTIFY queue pages');

# the health verdict: one series per check, values -1 .. 2
my %health = $metrics =~ /^coder_health_health_status\{[^}]*check="([a-z0-9_]+)"[^}]*\} (\S+)$/mg;
my $checks = $node->safe_psql('postgres', 'SELECT count(*) FROM coder_health.health');
ok($checks >= 12, "coder_health.health has its checks ($checks)");
is(scalar(keys %health), $checks, 'one health status series per check')
  or diag(join("\n", grep { /health_status/ } split /\n/, $metrics));
is(scalar(grep { $_ !~ /^(-1|0|1|2)$/ } values %health), 0, 'health status values are -1, 0, 1 or 2');
is($health{collector}, '0', 'collector check ok (0)');
is($health{replication_lag_bytes}, '0', 'replication lag check ok with a streaming standby');
like($metrics, qr/^coder_health_notify_channels_notifications\{[^}]*channel_family="workspace_owner:\*"[^}]*\} 1$/m,
	'channel family label with the UUID folded');
like($metrics, qr/^coder_health_query_latency_calls\{[^}]*query="GetWorkspaceByID"[^}]*\} 3$/m,
	'sqlc query name as label query, 3 calls');
like($metrics, qr/^coder_health_replication_replay_lag_bytes\{[^}]*application_name="exporter_standby"[^}]*\} [0-9.e+]+$/m,
	'standby replay lag emitted (a number of bytes)');

# every coder_health metric the alert rules and the dashboard use was emitted
my %emitted = map { $_ => 1 } keys %type;
foreach my $file ("$root/prometheus/alerts.yml", glob("$root/grafana/*.json"))
{
	my $text = slurp_file($file);
	my %used = map { $_ => 1 } ($text =~ /\b(coder_health_[a-z0-9_]+)/g);
	delete @used{ grep { /^coder_health_latency_seconds/ } keys %used } unless $has_histograms;
	my @missing = grep {
		my $base = $_;
		$base =~ s/_(bucket|sum|count)$// unless $emitted{$base};
		!$emitted{$base}
	} sort keys %used;
	is_deeply(\@missing, [], "every metric in " . ($file =~ s{.*/}{}r) . " is emitted");
}

# promtool: the rules parse and their unit tests pass
command_ok([ 'promtool', 'check', 'rules', "$root/prometheus/alerts.yml" ],
	'promtool check rules');
command_ok([ 'promtool', 'test', 'rules', "$root/prometheus/alerts_test.yml" ],
	'promtool test rules');

$h->kill_kill;
$listener->quit;
$standby->stop;
$node->stop;
done_testing();
