/*-------------------------------------------------------------------------
 *
 * clients_history.c
 *	  The clients module's history series (core/history.h): connections
 *	  per client host, as the clients collector counted them this cycle.
 *	  A host's address is shown to another role only with
 *	  pg_read_all_stats, as in coder_servers (private_key).
 *
 * Locking: CH_LOCK_CLIENTS in shared mode while the host peaks are read
 * (the collector writes them under it exclusively).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/lwlock.h"

#include "core/coder_health.h"
#include "core/history.h"
#include "clients.h"

const ChHistoryMetric ch_clients_history_metrics[CH_CLIENTS_HM_COUNT] = {
	[CH_CLIENTS_HM_CONNECTIONS] = {"connections", true},
};

void
ch_clients_history_sample(TimestampTz now, ChHistorySink *sink)
{
	LWLockAcquire(ch_shared->locks[CH_LOCK_CLIENTS], LW_SHARED);
	for (int i = 0; i < CH_MAX_HOSTS; i++)
	{
		ChHostPeak *h = &ch_clients->hosts[i];

		if (h->used)
			ch_history_note(sink, CH_CLIENTS_HM_CONNECTIONS, h->addr,
							h->current);
	}
	LWLockRelease(ch_shared->locks[CH_LOCK_CLIENTS]);
}
