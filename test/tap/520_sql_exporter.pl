# The sql_exporter collector (prometheus/sql_exporter/coder_health.collector.yml),
# generated from prometheus/queries.yaml by scripts/sql_exporter_collector.py.
# sql_exporter itself (github.com/burningalchemist/sql_exporter) is not
# packaged for Debian (prometheus-sql-exporter is a different exporter), so
# this test does what it can without the binary:
#   (a) the committed collector file is what the script makes from
#       queries.yaml (no drift), and the check can fail;
#   (b) the file keeps sql_exporter's configuration rules (as its config
#       package checks them), and every query in it runs as a pg_monitor
#       role against a server with coder_health and returns every column its
#       metrics name (key_labels and values), values that read as numbers,
#       and no series twice;
#   (c) the series the collector would expose (built from those rows the way
#       sql_exporter builds them) have the same names and label names as the
#       ones the real postgres_exporter exposes from queries.yaml on the same
#       server (its `server` label aside), the same le bounds and health
#       checks, and every coder_health metric of the alert rules and the
#       dashboard.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use File::Copy;
use CoderHealthTest;

my $root = ch_root();
my $script = "$root/scripts/sql_exporter_collector.py";
my $collector_file = "$root/prometheus/sql_exporter/coder_health.collector.yml";
# Debian's python3 (with python3-yaml, see scripts/install-deps.sh)
my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $tmp = PostgreSQL::Test::Utils::tempdir();

# ---------------------------------------------------------------------------
# (a) no drift
ok(system($python, '-c', 'import yaml') == 0, "$python has PyYAML (python3-yaml)")
  or BAIL_OUT('python3-yaml is missing: run scripts/install-deps.sh');
command_ok([ $python, $script, '--check' ],
	'the committed collector file is what the script generates from queries.yaml');
{
	# the check fails when queries.yaml changes and the collector file does not
	my $changed = "$tmp/queries.yaml";
	copy("$root/prometheus/queries.yaml", $changed) or die "copy: $!";
	open my $fh, '>>', $changed or die "$changed: $!";
	print $fh "\ncoder_health_drift_probe:\n  query: SELECT 1 AS one\n  metrics:\n"
	  . "    - one:\n        usage: \"GAUGE\"\n        description: \"probe\"\n";
	close $fh;
	command_fails([ $python, $script, '--check', '--queries', $changed ],
		'the drift check fails for a queries.yaml the collector file does not match');
}

my $json = `$python -c 'import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)' '$collector_file'`;
my $collector = eval { decode_json($json) };
ok(ref $collector eq 'HASH', 'the collector file is YAML') or BAIL_OUT('cannot read the collector file');

# ---------------------------------------------------------------------------
# (b1) sql_exporter's configuration rules (config/collector_config.go,
# metric_config.go, query_config.go): unknown keys are errors, type is gauge
# or counter, help is required, exactly one of query and query_ref, values
# not empty, value_label when there are several values, no duplicate or
# reserved labels, query_ref resolves, no column both a key and a value.
my @problems;
my %known_collector = map { $_ => 1 } qw(collector_name min_interval metrics queries);
my %known_metric = map { $_ => 1 } qw(metric_name type help key_labels static_labels
  value_label values query query_ref no_prepared_statement static_value timestamp_value);
my %known_query = map { $_ => 1 } qw(query_name query no_prepared_statement);
push @problems, "unknown collector key $_" for grep { !$known_collector{$_} } sort keys %$collector;
push @problems, 'no collector_name' unless ($collector->{collector_name} // '') ne '';
my @metrics = @{ $collector->{metrics} // [] };
push @problems, 'no metrics' unless @metrics;
my %queries;
foreach my $qc (@{ $collector->{queries} // [] })
{
	push @problems, "unknown query key $_" for grep { !$known_query{$_} } sort keys %$qc;
	push @problems, 'query without query_name or query'
	  unless ($qc->{query_name} // '') ne '' && ($qc->{query} // '') ne '';
	push @problems, "query $qc->{query_name} defined twice" if $queries{ $qc->{query_name} };
	$queries{ $qc->{query_name} } = { sql => $qc->{query}, metrics => [] };
}
my (%metric_seen, %column_kind);
foreach my $m (@metrics)
{
	my $n = $m->{metric_name} // '';
	push @problems, "unknown key $_ in metric $n" for grep { !$known_metric{$_} } sort keys %$m;
	push @problems, "bad metric name '$n'" unless $n =~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
	push @problems, "metric $n defined twice" if $metric_seen{$n}++;
	push @problems, "$n: type must be gauge or counter" unless lc($m->{type} // '') =~ /^(gauge|counter)$/;
	push @problems, "$n: no help" unless ($m->{help} // '') ne '';
	push @problems, "$n: exactly one of query and query_ref"
	  unless (defined $m->{query}) != (defined $m->{query_ref});
	my @keys = @{ $m->{key_labels} // [] };
	my @values = @{ $m->{values} // [] };
	push @problems, "$n: no values" unless @values;
	push @problems, "$n: several values need value_label" if @values > 1 && !defined $m->{value_label};
	my %k;
	foreach my $l (@keys, (defined $m->{value_label} ? $m->{value_label} : ()))
	{
		push @problems, "$n: label $l twice" if $k{$l}++;
		push @problems, "$n: reserved label $l" if $l eq 'job' || $l eq 'target';
		push @problems, "$n: bad label name $l" unless $l =~ /^[a-zA-Z_][a-zA-Z0-9_]*$/;
	}
	my $qname = $m->{query_ref} // $n;
	$queries{$qname} //= { sql => $m->{query}, metrics => [] } if defined $m->{query};
	if (!$queries{$qname})
	{
		push @problems, "$n: unresolved query_ref $qname";
		next;
	}
	push @{ $queries{$qname}{metrics} }, $m;
	foreach my $c ([ key => \@keys ], [ value => \@values ])
	{
		foreach my $col (@{ $c->[1] })
		{
			my $was = $column_kind{$qname}{$col} //= $c->[0];
			push @problems, "$qname: column $col used both as key and value" if $was ne $c->[0];
		}
	}
}
is_deeply(\@problems, [], 'the collector file keeps sql_exporter\'s configuration rules')
  or diag(join("\n", @problems));
ok(scalar(@metrics) > 40, 'the collector defines the metrics (' . scalar(@metrics) . ')');

# the sample exporter configuration: one target running this collector,
# loaded from a collector_files glob (relative to the configuration's
# directory) that finds the collector file
{
	my $dir = "$root/prometheus/sql_exporter";
	my $cfg = eval {
		decode_json(`$python -c 'import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)' '$dir/sql_exporter.yml'`);
	} // {};
	my @cp;
	push @cp, "unknown key $_" for grep { !/^(global|target|jobs|collectors|collector_files)$/ } sort keys %$cfg;
	push @cp, 'no target.data_source_name' unless ($cfg->{target}{data_source_name} // '') ne '';
	push @cp, "target does not run collector $collector->{collector_name}"
	  unless grep { $_ eq $collector->{collector_name} } @{ $cfg->{target}{collectors} // [] };
	my @found = map { glob(m{^/} ? $_ : "$dir/$_") } @{ $cfg->{collector_files} // [] };
	push @cp, 'collector_files do not find coder_health.collector.yml'
	  unless grep { $_ eq $collector_file } @found;
	is_deeply(\@cp, [], 'prometheus/sql_exporter/sql_exporter.yml runs the collector') or diag(join("\n", @cp));
}

# ---------------------------------------------------------------------------
# A server in the state where every family has rows (as in 500_exporter.pl):
# statements, a sqlc-named query, a LISTEN session, notifications, a
# streaming standby with a slot.  Exporters connect as a pg_monitor role.
my $node = ch_node('sqlexp', init => { allows_streaming => 1 });
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION coder_health');
$node->safe_psql('postgres', 'CREATE ROLE ch_monitor LOGIN IN ROLE pg_monitor');
$node->safe_psql('postgres', 'SELECT pg_sleep(0.01)') for 1 .. 5;
system_or_bail('psql', '-X', '-q', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
	'-c', "-- name: GetWorkspaceByID :one\nSELECT 1") for 1 .. 3;
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN tailnet_peer_update');
$node->safe_psql('postgres',
	"SELECT pg_notify('workspace_owner:6f1c2a9e-1234-4abc-9def-0123456789ab', 'x'), pg_notify('tailnet_peer_update', 'y')");
my $standby = ch_streaming_standby($node, 'sqlexp_standby', 'standby1');
# the sqlc-named statements reach the shared tables within a collector cycle
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM coder_health.query_latency WHERE query_name = 'GetWorkspaceByID'")
  or die 'GetWorkspaceByID never reached coder_health.query_latency';

# Run one query as ch_monitor: (ok, [columns], [[row values]], stderr).
# NULL comes back as undef.
sub monitor_query
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[ 'psql', '-X', '-q', '-A', '-F', "\x1f", '-R', "\x1e", '-P', 'footer=off',
			'-P', 'null=\\N', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
			'-p', $node->port, '-U', 'ch_monitor', '-d', 'postgres', '-c', $sql ],
		'>', \$out, '2>', \$err);
	return (0, [], [], $err) unless $ok;
	$out =~ s/\n\z//;
	my @records = split /\x1e/, $out, -1;
	my @cols = split /\x1f/, (shift(@records) // ''), -1;
	my @rows = map { [ map { $_ eq '\\N' ? undef : $_ } split /\x1f/, $_, -1 ] } @records;
	return (1, \@cols, \@rows, $err);
}

# (b2) every query: runs, has every column its metrics name, values that
# sql_exporter reads as float64 (Go's ParseFloat), no series twice; the rows
# make the series sql_exporter would expose: name => { labelset => value }.
my $float = qr/^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)$/i;
my %sql_series;
foreach my $qname (sort keys %queries)
{
	my ($ok, $cols, $rows, $err) = monitor_query($queries{$qname}{sql});
	ok($ok, "query $qname runs as a pg_monitor role") or diag($err);
	next unless $ok;
	my %have = map { $_ => 1 } @$cols;
	my %idx = map { $cols->[$_] => $_ } 0 .. $#$cols;
	my @named;
	foreach my $m (@{ $queries{$qname}{metrics} })
	{
		push @named, @{ $m->{key_labels} // [] }, @{ $m->{values} };
	}
	my %uniq = map { $_ => 1 } @named;
	my @missing = grep { !$have{$_} } sort keys %uniq;
	is_deeply(\@missing, [], "query $qname returns every column its metrics name ("
		  . join(', ', sort keys %uniq) . ')');
	ok(scalar(@$rows) > 0, "query $qname returns rows in this state");
	my @bad;
	my $dups = 0;
	foreach my $m (@{ $queries{$qname}{metrics} })
	{
		my @keys = @{ $m->{key_labels} // [] };
		my $seen = {};
		foreach my $r (@$rows)
		{
			foreach my $v (@{ $m->{values} })
			{
				my $val = $r->[ $idx{$v} ];
				next unless defined $val;    # sql_exporter skips NULL values
				push @bad, "$v=$val" unless $val =~ $float;
				my @labels = map { [ $_, $r->[ $idx{$_} ] // '' ] } @keys;
				push @labels, [ $m->{value_label}, $v ] if defined $m->{value_label};
				my $id = join(',', map { "$_->[0]=\"$_->[1]\"" } sort { $a->[0] cmp $b->[0] } @labels);
				$dups++ if $seen->{$id}++;
				$sql_series{ $m->{metric_name} }{$id} = $val;
			}
		}
	}
	is_deeply(\@bad, [], "query $qname: every value reads as a number");
	is($dups, 0, "query $qname: no series twice");
}

# the histogram as sql_exporter would expose it: cumulative buckets, +Inf = _count
{
	my (%byseries, %count);
	while (my ($id, $v) = each %{ $sql_series{coder_health_latency_seconds_bucket} // {} })
	{
		my ($le) = $id =~ /le="([^"]*)"/;
		(my $base = $id) =~ s/,?le="[^"]*"//;
		$base =~ s/^,//;
		push @{ $byseries{$base} }, [ $le, $v ];
	}
	%count = %{ $sql_series{coder_health_latency_seconds_count} // {} };
	my @bad;
	foreach my $base (sort keys %byseries)
	{
		my @b = sort { $a->[0] <=> $b->[0] } map { [ $_->[0] eq '+Inf' ? 9e99 : $_->[0], $_->[1] ] } @{ $byseries{$base} };
		for my $i (1 .. $#b) { push @bad, "$base not cumulative" if $b[$i][1] < $b[ $i - 1 ][1]; }
		push @bad, "$base: +Inf $b[-1][1] != count " . ($count{$base} // 'none')
		  unless defined $count{$base} && $b[-1][0] == 9e99 && $b[-1][1] == $count{$base};
	}
	ok(scalar(keys %byseries) > 0, 'latency histogram series from the collector');
	is_deeply(\@bad, [], 'collector buckets are cumulative and +Inf equals _count');
}

# ---------------------------------------------------------------------------
# (c) the real postgres_exporter on the same server, as the same role
my $exporter = '/usr/bin/prometheus-postgres-exporter';
SKIP:
{
skip 'prometheus-postgres-exporter is not installed', 8 unless -x $exporter;

my ($exporter_version) = `$exporter --version 2>&1` =~ /^postgres_exporter,? (?:version )?v?(\d+\.\d+)/m;
my ($exporter_major, $exporter_minor) = split /\./, ($exporter_version // '0.0');
my $has_histograms = $exporter_major > 0 || $exporter_minor >= 10;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = 'host=' . $node->host . ' port=' . $node->port
  . ' user=ch_monitor dbname=postgres sslmode=disable';
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ $exporter, "--web.listen-address=127.0.0.1:$port",
		"--extend.query-path=$root/prometheus/queries.yaml" ],
	'>', \$out, '2>', \$err,
	init => sub { $ENV{DATA_SOURCE_NAME} = $dsn });
my $http = HTTP::Tiny->new(timeout => 10);
my $metrics;
my $deadline = time + 30;
while (time < $deadline)
{
	my $r = $http->get("http://127.0.0.1:$port/metrics");
	if ($r->{success} && $r->{content} =~ /^coder_health_query_latency_calls\{[^}]*GetWorkspaceByID/m)
	{
		$metrics = $r->{content};
		last;
	}
	select(undef, undef, undef, 0.2);
}
ok(defined $metrics, 'postgres_exporter answers with coder_health metrics') or diag($err);
$metrics //= '';
like($metrics, qr/^pg_exporter_user_queries_load_error\{[^}]*\} 0$/m, 'queries.yaml loads');

# postgres_exporter's series: name => { labelset (without server) => value }
my %pe_series;
foreach my $line (split /\n/, $metrics)
{
	next unless $line =~ /^(coder_health_[a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
	my ($name, $labels, $value) = ($1, $2 // '', $3);
	my @pairs;
	while ($labels =~ /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)
	{
		push @pairs, [ $1, $2 ] unless $1 eq 'server';
	}
	my $id = join(',', map { "$_->[0]=\"$_->[1]\"" } sort { $a->[0] cmp $b->[0] } @pairs);
	$pe_series{$name}{$id} = $value;
}
my %pe_server = map { $_ => 1 } ($metrics =~ /^coder_health_[^{]*\{[^}]*server="([^"]*)"/mg);
note('postgres_exporter ' . ($exporter_version // 'unknown') . ' adds server="'
	  . join('", "', sort keys %pe_server) . '"; with sql_exporter the scrape config sets it');

my %ignore;
unless ($has_histograms)
{
	# postgres_exporter 0.8 (Debian bullseye) has no HISTOGRAM: it skips the
	# arrays and makes untyped metrics of seconds_sum and seconds_count
	%ignore = map { $_ => 1 } grep { /^coder_health_latency_seconds_/ } (keys %sql_series, keys %pe_series);
	delete @pe_series{ keys %ignore };
	note("postgres_exporter $exporter_version has no HISTOGRAM support: latency histogram not compared");
}
my @sql_names = sort grep { !$ignore{$_} } map { $_->{metric_name} } @metrics;
my @pe_names = sort keys %pe_series;
is_deeply(\@sql_names, \@pe_names, 'the collector defines exactly the metric names postgres_exporter exposes')
  or diag("collector only: " . join(' ', grep { !$pe_series{$_} } @sql_names)
	  . "\npostgres_exporter only: " . join(' ', grep { my $n = $_; !grep { $_ eq $n } @sql_names } @pe_names));

# label names, per metric
my $labelnames = sub {
	my ($series) = @_;
	my %sets = map { join(',', ($_ =~ /([a-zA-Z_][a-zA-Z0-9_]*)="/g)) => 1 } keys %$series;
	return [ sort keys %sets ];
};
my @label_diff;
foreach my $name (@pe_names)
{
	my $pe = $labelnames->($pe_series{$name});
	my $sq = $labelnames->($sql_series{$name} // {});
	push @label_diff, "$name: postgres_exporter {" . join('}{', @$pe) . "} collector {" . join('}{', @$sq) . "}"
	  unless join(';', @$pe) eq join(';', @$sq);
}
is_deeply(\@label_diff, [], 'every metric has the same label names with either exporter (server aside)');

# label values that do not depend on timing: the histogram's le bounds, the
# health checks, the channel families, the slots
my $values_of = sub {
	my ($series, $label, $filter) = @_;
	my %v;
	foreach my $id (keys %{ $series // {} })
	{
		next if $filter && $id !~ $filter;
		$v{$1} = 1 if $id =~ /(?:^|,)$label="((?:[^"\\]|\\.)*)"/;
	}
	return [ sort keys %v ];
};
SKIP:
{
	skip 'no histograms from this postgres_exporter', 1 unless $has_histograms;
	my $pe_le = $values_of->($pe_series{coder_health_latency_seconds_bucket}, 'le', qr/scope="database"/);
	my $sq_le = $values_of->($sql_series{coder_health_latency_seconds_bucket}, 'le', qr/scope="database"/);
	ok(@$pe_le > 2 && join(' ', @$pe_le) eq join(' ', @$sq_le),
		'the same le bounds, written the same way: ' . join(' ', @$sq_le))
	  or diag('postgres_exporter: ' . join(' ', @$pe_le));
}
is_deeply($values_of->($sql_series{coder_health_health_status}, 'check'),
	$values_of->($pe_series{coder_health_health_status}, 'check'),
	'the same health checks');
is_deeply([ sort keys %{ $sql_series{coder_health_notify_channels_notifications} // {} } ],
	[ sort keys %{ $pe_series{coder_health_notify_channels_notifications} // {} } ],
	'the same notify channel family series');
is($sql_series{coder_health_connections_max_connections}{''},
	$pe_series{coder_health_connections_max_connections}{''},
	'the same value for a stable gauge (max_connections)');

$h->kill_kill;
}

# every coder_health metric the alert rules and the dashboard use comes from the collector
my %defined = map { $_->{metric_name} => 1 } @metrics;
foreach my $file ("$root/prometheus/alerts.yml", glob("$root/grafana/*.json"))
{
	my $text = slurp_file($file);
	my %used = map { $_ => 1 } ($text =~ /\b(coder_health_[a-z0-9_]+)/g);
	my @missing = grep { !$defined{$_} } sort keys %used;
	is_deeply(\@missing, [], 'every metric in ' . ($file =~ s{.*/}{}r) . ' comes from the collector');
}

$listener->quit;
$standby->stop;
$node->stop;
done_testing();
