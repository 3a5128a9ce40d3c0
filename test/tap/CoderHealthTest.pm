# Helpers shared by coder_health's TAP tests: a PostgreSQL::Test::Cluster
# node set up the way the tests need it.
package CoderHealthTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

our @EXPORT = qw(ch_node ch_root ch_server_crashed ch_run_distinct_statements
  poll_through_restart ch_streaming_standby);

# The repository root (test/run.sh exports it).
sub ch_root
{
	return $ENV{CH_ROOT} // die "CH_ROOT is not set";
}

# ch_node(name, no_preload => 1, tcp => 1, conf => "extra lines")
sub ch_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	my $conf = "";
	$conf .= "shared_preload_libraries = 'coder_health'\n"
	  unless $opts{no_preload};
	$conf .= "coder_health.sample_interval = 200\n"
	  . "coder_health.window_step = 1\n"
	  unless $opts{no_preload};
	$conf .= "listen_addresses = '127.0.0.1'\n" if $opts{tcp};
	$conf .= "log_statement = none\n";
	$conf .= $opts{conf} // '';
	$node->append_conf('postgresql.conf', $conf);
	$node->append_conf('pg_hba.conf', "host all all 127.0.0.0/8 trust\n")
	  if $opts{tcp};
	return $node;
}

# Whether the server log shows a backend crash (a test that did not cause
# one on purpose asserts there is none).
sub ch_server_crashed
{
	my ($node) = @_;
	my $log = slurp_file($node->logfile);
	return $log =~ /was terminated by signal|server process .* exited with exit code [^01]/;
}

# Run $shapes x 100 distinct statements (SELECT 1+1+..., 1*1*...) through
# psql from a file, stopping at the first error; returns (ok, stdout, stderr)
# with one result line per statement.
sub ch_run_distinct_statements
{
	my ($node, $shapes) = @_;
	my $script = '';
	for my $a (1 .. $shapes)
	{
		my $sum = join('+', ('1') x $a);
		$script .= "SELECT $sum, " . join('*', ('1') x $_) . ";\n" for 1 .. 100;
	}
	my $file = $node->basedir . '/distinct.sql';
	open my $fh, '>', $file or die "$file: $!";
	print $fh $script;
	close $fh;
	my ($stdout, $stderr) = ('', '');
	my $rc = IPC::Run::run(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
			'-p', $node->port, '-d', 'postgres', '-f', $file ],
		'>', \$stdout, '2>', \$stderr);
	return ($rc, $stdout, $stderr);
}

# Like $node->poll_query_until, but safe while the server restarts after a
# crash: poll_query_until writes the query to psql's stdin, and a psql that
# is refused ("the database system is in recovery mode") may exit before it
# reads, so the write fails with EPIPE and IPC::Run dies.  Here the query
# goes in -c and stdin is not used.  True once the query returns 't'.
sub poll_through_restart
{
	my ($node, $db, $query) = @_;
	my $deadline = time() + ($ENV{PG_TEST_TIMEOUT_DEFAULT} || 180);
	while (time() < $deadline)
	{
		my ($out, $err) = ('', '');
		eval {
			IPC::Run::run(
				[ 'psql', '-XAt', '-h', $node->host, '-p', $node->port, '-d', $db,
					'-c', $query ],
				'<', \undef, '>', \$out, '2>', \$err);
		};
		chomp $out;
		return 1 if $out eq 't';
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# A streaming standby of $primary made with pg_basebackup -R -S $slot (the
# physical slot is created here): -R writes primary_conninfo and
# standby.signal, and its application_name comes from PGAPPNAME, here $name.
# Started, with $extra_conf appended, and caught up with the primary.
sub ch_streaming_standby
{
	my ($primary, $name, $slot, $extra_conf) = @_;
	$primary->safe_psql('postgres',
		"SELECT pg_create_physical_replication_slot('$slot', true)");
	{
		local $ENV{PGAPPNAME} = $name;
		$primary->backup("bk_$name", backup_options => [ '-R', '-S', $slot ]);
	}
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, "bk_$name", has_streaming => 1);
	$standby->append_conf('postgresql.conf',
		"primary_slot_name = '$slot'\n" . ($extra_conf // ''));
	$standby->start;
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	return $standby;
}

1;
