# Bad coder_health.* settings are rejected at startup and on reload with
# PostgreSQL's usual messages, and the server keeps working with the old or
# default values.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $node = ch_node('settings',
	conf => "coder_health.max_statements = 10\n"
	  . "coder_health.sampel_interval = 100\n"
	  . "coder_health.track = 'sometimes'\n");
$node->start;

my $log = slurp_file($node->logfile);
like($log, qr/10 is outside the valid range for parameter "coder_health.max_statements"/,
	'out-of-range value at startup is reported');
# 15+ reserves the prefix (the name is refused); 13 and 14 only warn
# about the placeholder (docs/versions.md)
if ($node->safe_psql('postgres', 'SHOW server_version_num') >= 150000)
{
	like($log, qr/invalid configuration parameter name "coder_health.sampel_interval"/,
		'misspelt name at startup is reported');
}
else
{
	like($log, qr/WARNING:  unrecognized configuration parameter "coder_health.sampel_interval"/,
		'misspelt name at startup is reported (a warning before 15)');
}
like($log, qr/invalid value for parameter "coder_health.track": "sometimes"/,
	'bad enum value at startup is reported');
is($node->safe_psql('postgres', 'SHOW coder_health.max_statements'), '5000',
	'default kept for the bad value');
is($node->safe_psql('postgres', 'SHOW coder_health.track'), 'top',
	'default kept for the bad enum');

# reload with a bad value: the old value stays, PostgreSQL logs why
$node->append_conf('postgresql.conf', "coder_health.window_step = 0\n");
my $offset = -s $node->logfile;
$node->reload;
ok($node->wait_for_log(qr/0 s is outside the valid range for parameter "coder_health.window_step"|0 is outside the valid range for parameter "coder_health.window_step"/, $offset),
	'out-of-range value on reload is reported');
is($node->safe_psql('postgres', 'SHOW coder_health.window_step'), '1s',
	'old value kept after a bad reload');

# a good reload is taken
$node->append_conf('postgresql.conf', "coder_health.window_step = 5\n");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT setting = '5' FROM pg_settings WHERE name = 'coder_health.window_step'"),
	'good value taken on reload');

$node->stop;
done_testing();
