/*-------------------------------------------------------------------------
 *
 * latency_history.c
 *	  The latency module's history series (core/history.h): p99 over the
 *	  current minute and calls per second, per database (key: its OID; the
 *	  view coder_health.history shows its name).
 *
 * Locking: CH_LOCK_LATENCY in shared mode while the database scopes'
 * windows are read, as the SQL functions read them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "core/coder_health.h"
#include "core/history.h"
#include "latency.h"

const ChHistoryMetric ch_latency_history_metrics[CH_LATENCY_HM_COUNT] = {
	[CH_LATENCY_HM_P99_MS] = {"p99_ms", false},
	[CH_LATENCY_HM_CALLS_PER_S] = {"calls_per_s", false},
};

void
ch_latency_history_sample(TimestampTz now, ChHistorySink *sink)
{
	ChReadout		   *r = ch_readout_alloc();
	static const double q99[] = {0.99};

	LWLockAcquire(ch_shared->locks[CH_LOCK_LATENCY], LW_SHARED);
	for (int s = 0; s < ch_latency->max_scopes; s++)
	{
		ChScope	   *scope = &ch_scopes[s];
		TimestampTz since;
		double		span_s;
		double		p99;
		char		key[CH_HISTORY_KEY_LEN];

		if (scope->kind != CH_SCOPE_DATABASE)
			continue;
		ch_readout_reset(r);
		/* one complete window step and the current one */
		ch_read_windows(scope->window, CH_SCOPE_WINDOWS, 1, r, &since);
		span_s = (double) (now - since) / USECS_PER_SEC;
		snprintf(key, sizeof(key), "%u", scope->dbid);
		ch_history_note(sink, CH_LATENCY_HM_CALLS_PER_S, key,
						span_s > 0 ? r->calls / span_s : 0.0);
		if (r->calls > 0)
		{
			ch_readout_quantiles(r, q99, 1, &p99);
			ch_history_note(sink, CH_LATENCY_HM_P99_MS, key, p99 / 1000000.0);
		}
	}
	LWLockRelease(ch_shared->locks[CH_LOCK_LATENCY]);
	pfree(r);
}
