/*-------------------------------------------------------------------------
 *
 * notify_history.c
 *	  The notify module's history series (core/history.h): NOTIFY queue
 *	  usage (percent, as notify_queue.usage_pct) and the slowest listener's
 *	  backlog in bytes.
 *
 * Locking: none of coder_health's; ch_notify_queue_read takes
 * PostgreSQL's NotifyQueueLock for its copy (notify_queue.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "core/history.h"
#include "notify.h"

const ChHistoryMetric ch_notify_history_metrics[CH_NOTIFY_HM_COUNT] = {
	[CH_NOTIFY_HM_QUEUE_USAGE] = {"notify_queue_usage_pct", false},
	[CH_NOTIFY_HM_BACKLOG] = {"notify_backlog_bytes", false},
};

void
ch_notify_history_sample(TimestampTz now, ChHistorySink *sink)
{
	ChQueueSnapshot snap;
	int64			worst = 0;

	ch_notify_queue_read(&snap);
	if (!snap.supported)
		return;
	for (int k = 0; k < snap.nlisteners; k++)
		worst = Max(worst, snap.listeners[k].backlog_bytes);
	ch_history_note(sink, CH_NOTIFY_HM_QUEUE_USAGE, NULL, snap.usage * 100.0);
	ch_history_note(sink, CH_NOTIFY_HM_BACKLOG, NULL, (double) worst);
}
