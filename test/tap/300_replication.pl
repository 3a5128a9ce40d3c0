# Replication lag on a real primary and a streaming standby made with
# pg_basebackup -R and a physical slot: 0 when idle (where the naive
# measure keeps growing), growing on both sides while replay is paused,
# back to 0 after resume, peaks that stay, the slot going inactive with its
# retained WAL growing, and a standby whose primary is gone reporting its
# receiver down and a growing replay delay.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $primary = ch_node('primary',
	init => { allows_streaming => 1 },
	conf => "autovacuum = off\n"
	  . "max_slot_wal_keep_size = 1GB\n"
	  . "wal_receiver_status_interval = 1s\n");
my $t_start = time();
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION coder_health');
# the standby inherits the primary's configuration; application_name
# 'standby', slot standby1
my $standby = ch_streaming_standby($primary, 'standby', 'standby1');

my $row = sub {
	my ($node, $cols, $where) = @_;
	return $node->safe_psql('postgres',
		"SELECT $cols FROM coder_health.replication WHERE $where");
};

# --- the extension on the standby, both roles ------------------------------
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_extension WHERE extname = 'coder_health'"),
	'1', 'extension created on the primary is visible on the standby');
ok($primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM coder_health.replication "
		  . "WHERE role = 'primary' AND slot_name = 'standby1' AND state = 'streaming' "
		  . "AND application_name = 'standby'"),
	'primary: one sender row for the standby, with slot and application_name');
is($standby->safe_psql('postgres',
		"SELECT string_agg(role || ':' || receiver_status, ',') FROM coder_health.replication"),
	'standby:streaming', 'standby: one row of its own, receiver streaming');

# --- idle: lag is 0 and stays 0, where the naive measure grows ---------------
ok($primary->poll_query_until('postgres',
		"SELECT replay_lag_bytes = 0 AND replay_lag_s = 0 AND write_lag_s = 0 "
		  . "AND flush_lag_s = 0 FROM coder_health.replication WHERE role = 'primary'"),
	'idle primary: replay lag 0 bytes and 0 s (not NULL)');
is($primary->safe_psql('postgres',
		"SELECT scale(replay_lag_s) || ' ' || scale(reply_age_s) FROM coder_health.replication WHERE role = 'primary'"),
	'3 3', 'seconds at one fixed precision, to the millisecond (#21)');
ok($standby->poll_query_until('postgres',
		"SELECT replay_lag_bytes = 0 AND replay_delay_s = 0 AND NOT replay_paused "
		  . "FROM coder_health.replication"),
	'idle standby: replay lag 0 bytes, replay delay 0 s');
# commit something so the naive measure has a starting point, then idle
$primary->safe_psql('postgres', 'CREATE TABLE t (i int)');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
ok($standby->poll_query_until('postgres',
		"SELECT now() - pg_last_xact_replay_timestamp() > interval '2 s'"),
	'naive now() - pg_last_xact_replay_timestamp() keeps growing while idle');
ok($primary->poll_query_until('postgres',
		"SELECT replay_lag_s = 0 AND replay_lag_bytes = 0 "
		  . "FROM coder_health.replication WHERE role = 'primary'"),
	'...while primary-side lag is still 0');
ok($standby->poll_query_until('postgres',
		"SELECT replay_delay_s = 0 FROM coder_health.replication"),
	'...and standby replay delay is still 0');
# while idle the peak is at most the standby's catching up since the start
# (how long that took depends on load: bounded by the test's own age)
is($primary->safe_psql('postgres',
		"SELECT coalesce(peak_replay_lag_s_15min, 0) BETWEEN 0 AND "
		  . (time() - $t_start + 1) . " FROM coder_health.replication"),
	't', 'no lag peak while idle beyond the time the test has run');

# --- replay paused: lag grows on both sides ----------------------------------
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
# (pg_get_wal_replay_pause_state() is 14+; 13 has pg_is_wal_replay_paused())
ok($standby->poll_query_until('postgres',
		$standby->safe_psql('postgres', 'SHOW server_version_num') >= 140000
		? "SELECT pg_get_wal_replay_pause_state() = 'paused'"
		: "SELECT pg_is_wal_replay_paused()"),
	'replay paused');
$primary->safe_psql('postgres',
	'INSERT INTO t SELECT generate_series(1, 50000)');
ok($primary->poll_query_until('postgres',
		"SELECT replay_lag_bytes > 1000000 AND replay_lag_s > 0 "
		  . "FROM coder_health.replication WHERE role = 'primary'"),
	'primary: replay lag bytes and seconds > 0 while standby replay is paused');
my $lag1 = $row->($primary, 'replay_lag_s', "role = 'primary'");
ok($primary->poll_query_until('postgres',
		"SELECT replay_lag_s > $lag1 + 1 FROM coder_health.replication "
		  . "WHERE role = 'primary'"),
	"primary: replay lag seconds keep growing (was $lag1 s)");
is($primary->safe_psql('postgres',
		"SELECT write_lag_bytes = 0 AND flush_lag_bytes = 0 AND write_lag_s = 0 "
		  . "FROM coder_health.replication WHERE role = 'primary'"),
	't', 'primary: write and flush lag stay 0 (the standby receives)');

ok($standby->poll_query_until('postgres',
		"SELECT replay_lag_bytes > 1000000 AND replay_delay_s > 0 AND replay_paused "
		  . "AND receiver_status = 'streaming' FROM coder_health.replication"),
	'standby: received-not-replayed bytes and replay delay > 0, paused');
my $delay1 = $row->($standby, 'replay_delay_s', 'true');
ok($standby->poll_query_until('postgres',
		"SELECT replay_delay_s > $delay1 + 1 FROM coder_health.replication"),
	"standby: replay delay keeps growing (was $delay1 s)");

# --- resume: back to 0 within seconds ----------------------------------------
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
ok($primary->poll_query_until('postgres',
		"SELECT replay_lag_bytes = 0 AND replay_lag_s = 0 "
		  . "FROM coder_health.replication WHERE role = 'primary'"),
	'primary: replay lag back to 0 after resume');
ok($standby->poll_query_until('postgres',
		"SELECT replay_lag_bytes = 0 AND replay_delay_s = 0 AND NOT replay_paused "
		  . "FROM coder_health.replication"),
	'standby: replay lag and delay back to 0 after resume');

# --- peaks stay --------------------------------------------------------------
is($primary->safe_psql('postgres',
		"SELECT peak_replay_lag_bytes_15min > 1000000 AND peak_replay_lag_s_15min > 1 "
		  . "FROM coder_health.replication WHERE role = 'primary'"),
	't', 'primary: 15-minute peaks keep the pause after lag recovered');
is($standby->safe_psql('postgres',
		"SELECT peak_replay_lag_bytes_15min > 1000000 AND peak_replay_lag_s_15min > 1 "
		  . "FROM coder_health.replication"),
	't', 'standby: 15-minute peaks keep the pause after lag recovered');

# --- the slot while the standby streams --------------------------------------
is($primary->safe_psql('postgres',
		"SELECT s.active AND s.active_pid = r.pid AND s.slot_type = 'physical' "
		  . "AND s.database IS NULL AND s.wal_status = 'reserved' "
		  . "AND s.retained_wal_bytes BETWEEN 0 AND pg_current_wal_lsn() - '0/0' "
		  . "AND s.safe_wal_bytes > 0 AND s.inactive_s = 0 "
		  . "FROM coder_health.replication_slots s "
		  . "JOIN coder_health.replication r ON r.slot_name = s.slot_name"),
	't', 'slot: active, held by the sender, reserved, inactive_s 0');

# --- standby stops: sender row goes, slot inactive, retained WAL grows -------
$standby->stop('fast');
ok($primary->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM coder_health.replication"),
	'primary: the sender row is gone');
ok($primary->poll_query_until('postgres',
		"SELECT NOT active AND active_pid IS NULL AND inactive_s IS NOT NULL "
		  . "FROM coder_health.replication_slots WHERE slot_name = 'standby1'"),
	'slot: inactive, inactive_s known (tracked by the collector before 17)');
my $retained1 = $primary->safe_psql('postgres',
	"SELECT retained_wal_bytes FROM coder_health.replication_slots");
my $inactive1 = $primary->safe_psql('postgres',
	"SELECT inactive_s FROM coder_health.replication_slots");
$primary->safe_psql('postgres',
	'INSERT INTO t SELECT generate_series(1, 50000)');
cmp_ok($primary->safe_psql('postgres',
		"SELECT retained_wal_bytes FROM coder_health.replication_slots"),
	'>', $retained1 + 1000000, 'slot: retained WAL grows while inactive');
ok($primary->poll_query_until('postgres',
		"SELECT inactive_s > $inactive1 + 1 FROM coder_health.replication_slots"),
	"slot: inactive_s grows (was $inactive1)");

# --- primary gone, standby restarted: receiver down, delay grows -------------
$primary->stop('fast');
$standby->start;
ok($standby->poll_query_until('postgres',
		"SELECT receiver_status <> 'streaming' AND replay_delay_s > 0 "
		  . "FROM coder_health.replication WHERE role = 'standby'"),
	'standby without primary: receiver not streaming, replay delay > 0');
my $delay2 = $row->($standby, 'replay_delay_s', "role = 'standby'");
ok($standby->poll_query_until('postgres',
		"SELECT replay_delay_s > $delay2 + 1 FROM coder_health.replication "
		  . "WHERE role = 'standby'"),
	"standby without primary: replay delay grows (was $delay2 s)");

ok(!ch_server_crashed($standby), 'standby did not crash');
ok(!ch_server_crashed($primary), 'primary did not crash');
$standby->stop('fast');
done_testing();
