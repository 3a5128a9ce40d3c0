# Helpers for the reliability TAP tests (600-699): a consistency check of
# every view after a fault, and the Coder workload run in the background.
package ReliabilityTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

our @EXPORT = qw(views_inconsistencies start_workload workload_total);

# The names of the checks that fail, comma-separated; '' when every view
# answers with numbers that make sense together (no negative counts, errors
# within calls, ordered percentiles, tables within their bounds, shared
# memory used within what was reserved).
my $consistency_sql = q{
SELECT coalesce(string_agg(name, ',' ORDER BY name), '')
FROM (VALUES
 ('statement_latency', (SELECT coalesce(bool_and(
     calls >= 0 AND errors >= 0 AND errors <= calls AND total_ms >= 0
     AND min_ms >= 0 AND min_ms <= max_ms
     AND coalesce(p50_ms <= p99_ms, true) AND coalesce(p99_ms >= 0, true)
     AND recent_calls >= 0 AND recent_calls <= calls
     AND recent_errors >= 0 AND recent_errors <= recent_calls), true)
   FROM coder_health.statement_latency)),
 ('latency', (SELECT coalesce(bool_and(
     calls >= 0 AND errors >= 0 AND errors <= calls
     AND coalesce(p50_ms >= 0 AND p50_ms <= p99_ms, true)), true)
   FROM coder_health.latency)),
 ('query_latency', (SELECT coalesce(bool_and(calls >= 0 AND errors >= 0
     AND errors <= calls), true) FROM coder_health.query_latency)),
 ('notify_channels', (SELECT coalesce(bool_and(notifications >= 0 AND bytes >= 0
     AND distinct_channels >= 0 AND listeners >= 0), true)
   FROM coder_health.notify_channels)),
 ('notify_queue', (SELECT coalesce(bool_and(backlog_bytes >= 0
     AND notifications >= 0 AND listeners >= 0), true) FROM coder_health.notify_queue)),
 ('coder_servers', (SELECT coalesce(bool_and(connections >= 0 AND active >= 0
     AND idle >= 0 AND listening >= 0), true) FROM coder_health.coder_servers)),
 ('connections', (SELECT client_backends >= 0 FROM coder_health.connections)),
 ('status', (SELECT statements_tracked >= 0 AND statements_tracked <= max_statements
     AND shmem_used_bytes > 0 AND shmem_used_bytes <= shmem_reserved_bytes
     AND evictions >= 0 AND dropped_samples >= 0 AND collector_overruns >= 0
     AND extension_version = library_version
   FROM coder_health.status))
) AS c(name, ok)
WHERE ok IS NOT TRUE
};

sub views_inconsistencies
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, $consistency_sql);
}

# Start workload/run.sh (simulated Coder Servers) in the background against
# $node's database $db.  Its output goes to files (a pipe nobody reads while
# the test waits would fill up and stall the simulated servers); returns the
# IPC::Run harness and the names of the stdout and stderr files.
my $workload_runs = 0;

sub start_workload
{
	my ($node, $db, @args) = @_;
	$workload_runs++;
	my $base = $node->basedir . "/workload_$workload_runs";
	my $h = IPC::Run::start(
		[
			'bash', ch_root() . '/workload/run.sh', '--host', '127.0.0.1',
			'--port', $node->port, '--dbname', $db, '--user', 'postgres', @args
		],
		'<', \undef, '>', "$base.out", '2>', "$base.err");
	return ($h, "$base.out", "$base.err");
}

# The "total" summary line of a finished workload as a hash.
sub workload_total
{
	my ($file) = @_;
	my $out = -f $file ? slurp_file($file) : '';
	my %v;
	if ($out =~ /^total (.*)$/m)
	{
		for my $kv (split / /, $1)
		{
			my ($k, $val) = split /=/, $kv, 2;
			$v{$k} = $val;
		}
	}
	return \%v;
}

1;
