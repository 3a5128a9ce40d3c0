/*-------------------------------------------------------------------------
 *
 * health_settings.c
 *	  The health module: the settings of the health verdict
 *	  (coder_health.health_*).  The history it draws on is core's
 *	  (core/history.c, coder_health.history_*).
 *
 * The thresholds are only read by the SQL view coder_health.health (from
 * pg_settings), so they are plain USERSET settings: a DBA can try other
 * limits in a session, and set the defaults in postgresql.conf or with
 * ALTER ROLE / ALTER DATABASE for the monitoring role.  Defaults follow
 * Coder's scaling guidance where it gives a number (coderd to PostgreSQL
 * round trip under 10 ms, coder_health.max_rtt_ms) and PostgreSQL's own
 * warnings elsewhere (the NOTIFY queue warns at 50% full).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "core/module.h"
#include "health.h"

/* Integer thresholds (with a unit). */
typedef struct ChIntThreshold
{
	const char *name;
	const char *description;
	int			value;
	int			min;
	int			max;
	int			unit;
} ChIntThreshold;

static ChIntThreshold int_thresholds[] = {
	{"coder_health.health_p99_warn_ms",
	 "Recent statement p99 (per database, 5 minutes) at which the statement_p99 check warns.",
	 100, 1, 3600000, GUC_UNIT_MS},
	{"coder_health.health_p99_critical_ms",
	 "Recent statement p99 (per database, 5 minutes) at which the statement_p99 check is critical.",
	 500, 1, 3600000, GUC_UNIT_MS},
	{"coder_health.health_rtt_critical_ms",
	 "Coder Server round trip at which the coder_server_rtt check is critical (it warns above coder_health.max_rtt_ms).",
	 50, 0, 60000, GUC_UNIT_MS},
	{"coder_health.health_stalled_listeners_warn",
	 "Stalled LISTEN sessions at which the stalled_listeners check warns.",
	 1, 1, 100000, 0},
	{"coder_health.health_stalled_listeners_critical",
	 "Stalled LISTEN sessions at which the stalled_listeners check is critical.",
	 2, 1, 100000, 0},
	{"coder_health.health_replication_lag_warn_bytes",
	 "Replay lag of a standby at which the replication_lag_bytes check warns.",
	 64 * 1024, 1, INT_MAX, GUC_UNIT_KB},
	{"coder_health.health_replication_lag_critical_bytes",
	 "Replay lag of a standby at which the replication_lag_bytes check is critical.",
	 1024 * 1024, 1, INT_MAX, GUC_UNIT_KB},
	{"coder_health.health_replication_lag_warn_s",
	 "Replay lag in time at which the replication_lag_time check warns.",
	 10, 1, 86400, GUC_UNIT_S},
	{"coder_health.health_replication_lag_critical_s",
	 "Replay lag in time at which the replication_lag_time check is critical.",
	 60, 1, 86400, GUC_UNIT_S},
	{"coder_health.health_slot_retained_warn_bytes",
	 "WAL held back by one replication slot at which the slot_wal_retention check warns.",
	 1024 * 1024, 1, INT_MAX, GUC_UNIT_KB},
	{"coder_health.health_slot_retained_critical_bytes",
	 "WAL held back by one replication slot at which the slot_wal_retention check is critical.",
	 10 * 1024 * 1024, 1, INT_MAX, GUC_UNIT_KB},
	{"coder_health.health_collector_warn_s",
	 "Seconds since the collector's last cycle at which the collector check warns.",
	 5, 1, 86400, GUC_UNIT_S},
	{"coder_health.health_collector_critical_s",
	 "Seconds since the collector's last cycle at which the collector check is critical.",
	 30, 1, 86400, GUC_UNIT_S},
	{"coder_health.health_min_statements",
	 "Fewest statements of a database in the last 5 minutes on which the statement_p99 and error_rate checks judge; with fewer they are unknown (too few statements).",
	 100, 0, INT_MAX, 0},
};

/* Percentages. */
typedef struct ChRealThreshold
{
	const char *name;
	const char *description;
	double		value;
} ChRealThreshold;

static ChRealThreshold pct_thresholds[] = {
	{"coder_health.health_error_rate_warn_pct",
	 "Percentage of failed statements (per database, 5 minutes) at which the error_rate check warns.", 1},
	{"coder_health.health_error_rate_critical_pct",
	 "Percentage of failed statements (per database, 5 minutes) at which the error_rate check is critical.", 5},
	{"coder_health.health_notify_queue_warn_pct",
	 "NOTIFY queue usage (percent of its maximum) at which the notify_queue check warns.", 10},
	{"coder_health.health_notify_queue_critical_pct",
	 "NOTIFY queue usage (percent of its maximum) at which the notify_queue check is critical (PostgreSQL itself warns at 50).", 50},
	{"coder_health.health_headroom_warn_pct",
	 "Free connection slots (percent of those usable by clients, if every Coder Server filled its pool) below which the connection_headroom check warns.", 20},
	{"coder_health.health_headroom_critical_pct",
	 "Free connection slots (percent, as for the warning) below which the connection_headroom check is critical.", 10},
	{"coder_health.health_pool_busy_warn_pct",
	 "Busy connections of one Coder Server (active, in transaction or waiting; percent of coder_health.coder_pool_size) at which the coder_server_pool check warns.", 80},
	{"coder_health.health_pool_busy_critical_pct",
	 "Busy connections of one Coder Server (percent of coder_health.coder_pool_size) at which the coder_server_pool check is critical.", 100},
};

/*
 * Round trips between the primary and its standbys, in milliseconds (real:
 * a lowered threshold may be fractional).  Coder's guide asks replicas of a
 * clustered PostgreSQL to be "low-latency with respect to one another"; the
 * warning uses the 10 ms it gives for Coder Servers to PostgreSQL.
 */
static ChRealThreshold ms_thresholds[] = {
	{"coder_health.health_replication_rtt_warn_ms",
	 "Kernel TCP round trip between the primary and a standby at which the replication_rtt check warns (and the standby is far).", 10},
	{"coder_health.health_replication_rtt_critical_ms",
	 "Kernel TCP round trip between the primary and a standby at which the replication_rtt check is critical.", 50},
};

void
ch_define_health_settings(void)
{
	for (int i = 0; i < lengthof(int_thresholds); i++)
	{
		ChIntThreshold *t = &int_thresholds[i];

		DefineCustomIntVariable(t->name, t->description,
								"A threshold of coder_health.health.",
								&t->value, t->value, t->min, t->max,
								PGC_USERSET, t->unit,
								NULL, NULL, NULL);
	}
	for (int i = 0; i < lengthof(pct_thresholds); i++)
	{
		ChRealThreshold *t = &pct_thresholds[i];

		DefineCustomRealVariable(t->name, t->description,
								 "A threshold of coder_health.health, in percent.",
								 &t->value, t->value, 0.0, 100.0,
								 PGC_USERSET, 0,
								 NULL, NULL, NULL);
	}
	for (int i = 0; i < lengthof(ms_thresholds); i++)
	{
		ChRealThreshold *t = &ms_thresholds[i];

		DefineCustomRealVariable(t->name, t->description,
								 "A threshold of coder_health.health.",
								 &t->value, t->value, 0.0, 60000.0,
								 PGC_USERSET, GUC_UNIT_MS,
								 NULL, NULL, NULL);
	}
}

const ChModule ch_health_module = {
	.name = "health",
	.define_settings = ch_define_health_settings,
};
