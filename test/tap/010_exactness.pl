# Exactness (#17): a real libpq client (test/exactness/exactness.c) drives
# the paths of docs/latency.md with sqlc-named statements, several names
# sharing one SQL text, over the simple and the extended protocol (unnamed
# and named prepared statements, pipelines, single-row mode, COPY), with
# timeouts, locks, deadlocks, serialization failures, cancels, terminations
# and clients that go away, and keeps the ground truth: executions and
# failures per name, per unnamed statement, per database and for the whole
# client address, and the time it waited for each.  coder_health must agree
# exactly on counts, never record more time than the client waited
# (+50 us), record at least the timeout for a statement that timed out,
# and agree with log_min_duration_statement = 0 within 1% or 20 us per call
# (for what the log has a duration of: see docs/latency.md).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $root = ch_root();

# build the client against this PostgreSQL's libpq
my $client = "$PostgreSQL::Test::Utils::tmp_check/exactness";
my $incdir = `pg_config --includedir`;
my $libdir = `pg_config --libdir`;
chomp($incdir, $libdir);
my ($cout, $cerr) = ('', '');
ok( IPC::Run::run(
		[ 'cc', '-std=gnu99', '-O2', '-Wall', '-Werror', "-I$incdir",
			'-o', $client, "$root/test/exactness/exactness.c",
			"-L$libdir", "-Wl,-rpath,$libdir", '-lpq' ],
		'>', \$cout, '2>', \$cerr),
	'the libpq client builds')
  or diag($cerr);

my $node = ch_node('exact', tcp => 1,
	conf => "log_min_duration_statement = 0\n"
	  . "log_line_prefix = '%m [%p] '\n"
	  . "deadlock_timeout = '50ms'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE coder');
$node->safe_psql('postgres', 'CREATE DATABASE coder_other');
# the client's own role (superuser: it sets log_min_messages and ends
# backends): its statements are told from this script's
$node->safe_psql('postgres', 'CREATE ROLE coder_client LOGIN SUPERUSER');
$node->safe_psql('coder', q{
	CREATE EXTENSION coder_health;
	CREATE TABLE site_configs (key text PRIMARY KEY, value text);
	INSERT INTO site_configs VALUES ('logo_url', 'l'), ('zero', '0');
	CREATE TABLE oauth2_apps (id int);
	CREATE TABLE audit_logs (id int);
	CREATE TABLE locks (id int PRIMARY KEY, v int);
	INSERT INTO locks VALUES (1, 0), (2, 0);
	CREATE TABLE parents (id int PRIMARY KEY);
	CREATE TABLE children (parent int REFERENCES parents DEFERRABLE INITIALLY DEFERRED);
	CREATE TABLE copy_target (x int);
	CREATE PROCEDURE commit_rollback() LANGUAGE plpgsql AS $$
	BEGIN
	  INSERT INTO audit_logs VALUES (9);
	  COMMIT;
	  DELETE FROM audit_logs WHERE id = 9;
	  ROLLBACK;
	END $$;
	CREATE FUNCTION catch_division() RETURNS int LANGUAGE plpgsql AS $$
	BEGIN
	  RETURN 1 / (SELECT count(*)::int - count(*)::int FROM site_configs);
	EXCEPTION WHEN division_by_zero THEN
	  RETURN -1;
	END $$;
	SELECT coder_health.reset();
});
my $log_offset = -s $node->logfile;

my ($out, $err) = ('', '');
my $user = 'coder_client';
my $conninfo = 'host=127.0.0.1 port=' . $node->port . " user=$user dbname=";
ok( IPC::Run::run(
		[ $client, $conninfo . 'coder', $conninfo . 'coder_other' ],
		'>', \$out, '2>', \$err),
	'the client ran its paths')
  or diag("$out\n$err");
diag($err) if $ENV{EXACTNESS_DEBUG};

my (%truth, %dbtruth, @absent, @unnamed, $client_calls, $client_errors);
foreach my $line (split /\n/, $out)
{
	my @f = split / /, $line;
	if ($f[0] eq 'name')
	{
		$truth{ $f[1] } = {
			calls => $f[2],
			errors => $f[3],
			sum_us => $f[4],
			max_us => $f[5],
			min_us => $f[6],
			lower_us => $f[7],
			log => $f[8],
			preempted => $f[9],
			unread => $f[10],
			waited_us => $f[11],
			slept => $f[12],
			ran_us => $f[13] };
	}
	elsif ($f[0] eq 'unnamed')
	{
		push @unnamed, [ $f[1], $f[2], join(' ', @f[ 3 .. $#f ]) ];
	}
	elsif ($f[0] eq 'absent')
	{
		push @absent, $f[1];
	}
	elsif ($f[0] eq 'db')
	{
		$dbtruth{ $f[1] } = "$f[2]|$f[3]";
	}
	elsif ($f[0] eq 'client')
	{
		($client_calls, $client_errors) = ($f[1], $f[2]);
	}
}
cmp_ok(scalar(keys %truth), '>=', 50, 'the client reported its names');

# everything the client did is folded when its backends exit (or by the
# collector): poll
ok( $node->poll_query_until('coder',
		"SELECT coalesce(sum(calls), 0) = $client_calls
		 FROM coder_health.latency
		 WHERE scope = 'client' AND client_addr = '127.0.0.1' AND period = 'total'"),
	"the client address has exactly the client's $client_calls calls");
is( $node->safe_psql('coder',
		"SELECT sum(errors) FROM coder_health.latency
		 WHERE scope = 'client' AND client_addr = '127.0.0.1' AND period = 'total'"),
	$client_errors,
	"the client address has exactly the client's $client_errors errors");
# each database's total: the client's statements there and this script's
# psql ones (local socket), nothing else
is( $node->safe_psql('coder',
		"SELECT d.calls - coalesce(c.calls, 0), d.errors - coalesce(c.errors, 0)
		 FROM coder_health.latency d
		 LEFT JOIN coder_health.latency c
		   ON c.scope = 'client' AND c.datname = d.datname
		  AND c.client_addr = 'local' AND c.period = 'total'
		 WHERE d.scope = 'database' AND d.datname = 'coder' AND d.period = 'total'"),
	$dbtruth{coder}, "database coder: exactly the client's calls|errors $dbtruth{coder}");
is( $node->safe_psql('coder',
		"SELECT calls, errors FROM coder_health.latency
		 WHERE scope = 'database' AND datname = 'coder_other' AND period = 'total'"),
	$dbtruth{coder_other},
	"database coder_other: exactly the client's calls|errors $dbtruth{coder_other}");

my %ours;
foreach my $line (
	split /\n/,
	$node->safe_psql('coder',
		"SELECT query_name, calls, errors, total_ms, max_ms, min_ms
		 FROM coder_health.query_latency WHERE datname IN ('coder', 'coder_other')"))
{
	my ($name, $calls, $errors, $total, $max, $min) = split /\|/, $line;
	$ours{$name} = {
		calls => $calls,
		errors => $errors,
		total_ms => $total,
		max_ms => $max,
		min_ms => $min };
}

foreach my $name (sort keys %truth)
{
	my $t = $truth{$name};
	my $o = $ours{$name};
	ok(defined $o, "$name has its own row") or next;
	is("$o->{calls}/$o->{errors}", "$t->{calls}/$t->{errors}",
		"$name: calls/errors exactly the client's");
	cmp_ok($o->{max_ms} * 1000, '<=', $t->{max_us} + 50,
		"$name: max within what the client waited (+50 us)");
	cmp_ok($o->{total_ms} * 1000, '<=', $t->{sum_us} + 50 * $t->{calls},
		"$name: total within what the client waited (+50 us a call)");
	cmp_ok($o->{min_ms} * 1000, '>=', $t->{lower_us},
		"$name: each took at least its timeout ($t->{lower_us} us)")
	  if $t->{lower_us} > 0;
}
# a named statement that failed before its executor is its name's error
# (compared above); one that never ran, or failed with no text to read its
# name from (track_activities = off), has no row
foreach my $name (@absent)
{
	ok(!defined $ours{$name},
		"$name never ran or had no text to name it: no row of its own");
}

# unnamed statements (BEGIN, COMMIT, the control connection's polls, ...):
# exactly as many per statement (query id) as the client sent
{
	my %by_id;
	foreach my $u (@unnamed)
	{
		my ($calls, $errors, $sql) = @$u;
		my $id = $node->safe_psql('coder',
			'SELECT coder_health.query_id($ch$' . $sql . '$ch$)');
		$by_id{$id}{calls} += $calls;
		$by_id{$id}{errors} += $errors;
		$by_id{$id}{sql} //= $sql;
	}
	foreach my $id (sort keys %by_id)
	{
		is( $node->safe_psql('coder',
				"SELECT coalesce(sum(calls), 0) || '/' || coalesce(sum(errors), 0)
				 FROM coder_health.statement_latency
				 WHERE datname = 'coder' AND query_name IS NULL AND queryid = $id"),
			"$by_id{$id}{calls}/$by_id{$id}{errors}",
			"unnamed statement \"$by_id{$id}{sql}\": calls/errors exactly the client's");
	}
}

# the same SQL text under several names: one query id, one row per name
is( $node->safe_psql('coder',
		"SELECT count(DISTINCT queryid) || '/' || count(*)
		 FROM coder_health.statement_latency
		 WHERE query_name IN ('GetLogoURL', 'GetApplicationName')"),
	'1/2', 'two names of one text: one query id, two rows');
is( $node->safe_psql('coder',
		"SELECT count(DISTINCT queryid) || '/' || count(*)
		 FROM coder_health.statement_latency
		 WHERE query_name IN ('GetOAuth2ProviderAppByID', 'GetOAuth2ProviderAppByClientID')"),
	'1/2', 'lib/pq unnamed statements: one query id, two rows');

# PostgreSQL's own durations (log_min_duration_statement = 0): the simple
# protocol logs "duration: X ms  statement: <text>", the extended one a
# duration per message, "parse|bind|execute <name>: <text>".  What
# coder_health records for a name is, per docs/latency.md, the statement
# line (simple), bind + execute (a SELECT: it starts at its Bind) or execute
# (anything else); the extended protocol's commit at Sync has no log line
# and is in ours.
#
# coder_health reads its end clock a few us before the log's duration ends;
# a backend preempted just there, or that sleeps there (a lock, I/O), or
# whose CPU is taken without it knowing (the hypervisor, interrupts), has a
# log duration longer than ours by that time, on a busy machine by
# milliseconds.  The client saw it directly, per call (/proc/<pid>/
# schedstat and status): whether its backend, once running, lost the CPU
# and waited to get it back, whether it slept other than for the client's
# next message, and how long it ran.  A name with such a call, whose
# counts could not be read, or whose log duration is more than its backend
# ran, is set aside from the exact comparison: ours must be at most the
# log's (+ the tolerance) and, when it only waited for a CPU, at least the
# log's less the tolerance and that wait.  Enough calls must be left for
# the exact comparison that it cannot vanish.
my $log = slurp_file($node->logfile, $log_offset);
my %logged;
while ($log =~
	/duration: ([0-9.]+) ms  (statement|parse|bind|execute)[^:\n]*: -- name: (\w+) :one/g)
{
	$logged{$3}{$2}{ms} += $1;
	$logged{$3}{$2}{n}++;
}
my %worst;
my ($exact_names, $exact_calls, %exact_by) = (0, 0);
my @below;
my ($aside_names, $aside_calls, $aside_preempted, $aside_slept, $aside_unread,
	$aside_stolen) = (0, 0, 0, 0, 0, 0);
foreach my $name (sort keys %truth)
{
	my $t = $truth{$name};
	next if $t->{log} eq 'none';
	# "+sync": ours also has time the log has no line for (an
	# extended-protocol write's commit at Sync; in a pipeline, the next
	# statement's Parse): at least the log's durations
	my $at_least = $t->{log} =~ s/\+sync$//;
	my @parts = split /\+/, $t->{log};
	my ($ms, $complete) = (0, 1);
	foreach my $part (@parts)
	{
		my $l = $logged{$name}{$part};
		$complete = 0 unless defined $l && $l->{n} == $t->{calls};
		$ms += $l->{ms} // 0;
	}
	ok($complete, "$name: the log has a $t->{log} duration for each execution")
	  or next;
	if ($at_least)
	{
		cmp_ok($ours{$name}{total_ms}, '>=', $ms - 0.020 * $t->{calls},
			sprintf("$name: total at least the log's $t->{log} (ours %.3f ms, log %.3f ms, %d calls)",
				$ours{$name}{total_ms}, $ms, $t->{calls}));
		next;
	}
	my $diff = abs($ours{$name}{total_ms} - $ms);
	my $tolerance = 0.01 * $ms;
	$tolerance = 0.020 * $t->{calls} if $tolerance < 0.020 * $t->{calls};
	my $what = sprintf("(ours %.3f ms, log %.3f ms, %d calls)",
		$ours{$name}{total_ms}, $ms, $t->{calls});
	# the log's duration is part of what the backend ran on a CPU, unless
	# time went by while it did not run without it losing its CPU (taken
	# by the hypervisor, interrupts): 1 us a call for the log's rounding
	my $stolen = $ms * 1000 > $t->{ran_us} + $t->{calls};
	$aside_stolen++ if $stolen;
	if ($t->{preempted} > 0 || $t->{unread} > 0 || $t->{slept} > 0 || $stolen)
	{
		$aside_names++;
		$aside_calls += $t->{calls};
		$aside_preempted += $t->{preempted};
		$aside_slept += $t->{slept};
		$aside_unread += $t->{unread};
		note("$name: set aside from the exact comparison: of $t->{calls} calls "
			  . "$t->{preempted} waited for a CPU ($t->{waited_us} us), "
			  . "$t->{slept} slept, $t->{unread} not known; it ran $t->{ran_us} us"
			  . ($stolen ? ', less than the log' : '') . " $what");
		cmp_ok($ours{$name}{total_ms}, '<=', $ms + $tolerance,
			"$name: total not above the log's $t->{log} $what");
		cmp_ok($ours{$name}{total_ms}, '>=', $ms - $tolerance - $t->{waited_us} / 1000,
			"$name: total not below the log's $t->{log} by more than its backend "
			  . "waited for a CPU ($t->{waited_us} us) $what")
		  if $t->{unread} == 0 && $t->{slept} == 0 && !$stolen;
		next;
	}
	$exact_names++;
	$exact_calls += $t->{calls};
	# ours is inside the log's duration: never above it
	cmp_ok($ours{$name}{total_ms}, '<=', $ms + $tolerance,
		"$name: total not above the log's $t->{log} $what");
	if ($ours{$name}{total_ms} < $ms - $tolerance)
	{
		push @below, "$name $what";
		next;
	}
	my $protocol = $t->{log} eq 'statement' ? 'simple' : 'extended';
	$exact_by{$protocol} += $t->{calls};
	my $per_call_us = 1000 * $diff / $t->{calls};
	$worst{$protocol} = $per_call_us
	  if !defined $worst{$protocol} || $per_call_us > $worst{$protocol};
	pass("$name: total agrees with the log's $t->{log} $what");
}
# Below the log, on a CPU the whole time: time between our end clock and
# the log's that the backend spent on work not its own.  The kernel charges
# an interrupt's and a softirq's work (loopback TCP of other connections:
# a busy 2-core machine) to the task it interrupts, so the backend's
# schedstat counts it as run time and nothing the client can read tells
# such a call apart; 63 us was seen once in a run of 510 checks (one name
# a run, a different one each time it was seen).  A fault in our
# accounting would put every name of its path below (each path has its own
# names, and the Compare* names must still reach 10 agreeing calls per
# protocol below).
my $allowed_below = int($exact_names / 10) || 1;
cmp_ok(scalar(@below), '<=', $allowed_below,
	"at most $allowed_below of $exact_names names compared exactly are below the log "
	  . "by more than the tolerance: "
	  . (@below ? join('; ', @below) : 'none'));
foreach my $protocol (sort keys %worst)
{
	diag(sprintf("largest deviation from the log per call, %s protocol: %.1f us",
		$protocol, $worst{$protocol}));
}
diag("compared with the log exactly: $exact_names names, $exact_calls calls; "
	  . "set aside: $aside_names names, $aside_calls calls "
	  . "($aside_preempted calls waited for a CPU, $aside_slept slept, "
	  . "$aside_unread not known; $aside_stolen names ran less than the log)");
# a floor, so that the comparison cannot silently vanish: the client sends
# names with one call each (Compare*) until 10 of each protocol ran without
# waiting for a CPU (or it gave up after 200)
foreach my $protocol ('simple', 'extended')
{
	cmp_ok($exact_by{$protocol} // 0, '>=', 10,
		"at least 10 calls of the $protocol protocol agree exactly with the log");
}
ok(defined $worst{simple} && defined $worst{extended},
	'both protocols were compared with the log');

# core's query id is not written (compute_query_id is off here)
SKIP:
{
	skip 'pg_stat_activity has no query_id before 14', 1
	  if $node->safe_psql('coder', 'SHOW server_version_num') < 140000;
	is($node->safe_psql('coder',
			"SELECT query_id IS NULL FROM pg_stat_activity WHERE pid = pg_backend_pid()"),
		't', 'pg_stat_activity.query_id stays NULL');
}
unlike($node->safe_psql('coder', 'EXPLAIN (VERBOSE) SELECT 1'),
	qr/Query Identifier/, 'EXPLAIN VERBOSE shows no Query Identifier');

ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
