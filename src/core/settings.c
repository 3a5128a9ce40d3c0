/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The coder_health.* configuration parameters that belong to no one
 *	  feature: the collector's interval, how often statistics are saved,
 *	  and the step of every rolling window.  Each feature defines its own
 *	  in its module's define_settings (latency/latency_settings.c,
 *	  notify/notify_track.c, health/health_settings.c, ...).
 *
 * Every setting has a range and, where it is a duration or a size, a unit,
 * so that PostgreSQL itself rejects bad values at startup and on reload with
 * its usual message.  Settings that shape shared memory are PGC_POSTMASTER;
 * the rest can be changed with a reload.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "pg/compat.h"
#include "coder_health.h"

int			ch_sample_interval_ms = 1000;
int			ch_save_interval_s = 300;
int			ch_window_step_s = 60;

void
ch_define_settings(void)
{
	DefineCustomIntVariable("coder_health.sample_interval",
							"How often the collector wakes up to sample and fold data.",
							"The collector rotates windows, drains idle backends' samples "
							"and reads PostgreSQL's shared state once per interval.",
							&ch_sample_interval_ms,
							1000, 100, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("coder_health.save_interval",
							"How often the collector saves statement and channel-family statistics to pg_stat/coder_health.stat.",
							"They are always saved at a clean shutdown; this bounds what a crash "
							"loses.  0 saves only at shutdown.",
							&ch_save_interval_s,
							300, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("coder_health.window_step",
							"Length of one step of the rolling latency windows.",
							"Windows (recent, 1 min, 5 min, 15 min) advance by this step; "
							"60 s makes them minutes.  Shorten only for testing.",
							&ch_window_step_s,
							60, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* After every module has defined its settings: the prefix is ours. */
void
ch_reserve_settings_prefix(void)
{
	CH_RESERVE_GUC_PREFIX("coder_health");
}
