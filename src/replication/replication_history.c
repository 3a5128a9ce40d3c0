/*-------------------------------------------------------------------------
 *
 * replication_history.c
 *	  The replication module's history series (core/history.h): replay lag
 *	  in bytes and seconds and the kernel's round trip, per standby (key:
 *	  its slot, else "walsender <pid>"), or of this standby ("standby").
 *
 * Locking: PostgreSQL's state (WAL senders, slots, the WAL receiver) is
 * read as replication_read.c reads it; CH_LOCK_REPLICATION in shared mode
 * only while this module's own peaks and round trips are read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "storage/lwlock.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "core/history.h"
#include "replication.h"

const ChHistoryMetric ch_repl_history_metrics[CH_REPL_HM_COUNT] = {
	[CH_REPL_HM_LAG_BYTES] = {"replication_lag_bytes", false},
	[CH_REPL_HM_LAG_S] = {"replication_lag_s", false},
	[CH_REPL_HM_RTT_MS] = {"replication_rtt_ms", false},
};

void
ch_repl_history_sample(TimestampTz now, ChHistorySink *sink)
{
	bool		  in_recovery = RecoveryInProgress();
	XLogRecPtr	  end = ch_repl_wal_end(in_recovery);
	ChSenderRow	 *senders;
	int			  nsenders;
	ChSlotRow	 *slots;
	int			  nslots;
	ChStandbyRow  standby;
	double		  standby_delay = 0;
	ChReplRttRow *rtt;
	int			  nrtt;

	senders = palloc(sizeof(ChSenderRow) * Max(max_wal_senders, 1));
	nsenders = ch_repl_read_senders(senders, max_wal_senders, end);
	/* a standby is named by its slot when it has one */
	slots = palloc(sizeof(ChSlotRow) * ch_repl_max_slots());
	nslots = ch_repl_read_slots(slots, max_replication_slots, in_recovery);
	ch_repl_match_slots(senders, nsenders, slots, nslots);
	if (in_recovery)
		ch_repl_read_standby(&standby);

	rtt = palloc(sizeof(ChReplRttRow) * (Max(max_wal_senders, 1) + 1));
	LWLockAcquire(ch_shared->locks[CH_LOCK_REPLICATION], LW_SHARED);
	for (int i = 0; i < nsenders; i++)
		ch_repl_sender_seconds(&senders[i], now);
	if (in_recovery)
		standby_delay = ch_repl_standby_delay(&standby, now);
	/* one row per sender, in order, then the standby's */
	nrtt = ch_repl_rtt_rows(senders, nsenders, in_recovery ? &standby : NULL,
							now, rtt);
	LWLockRelease(ch_shared->locks[CH_LOCK_REPLICATION]);

	for (int i = 0; i < nsenders; i++)
	{
		ChSenderRow *row = &senders[i];
		char		 key[CH_HISTORY_KEY_LEN];

		if (row->slot_name[0] != '\0')
			strlcpy(key, row->slot_name, sizeof(key));
		else
			snprintf(key, sizeof(key), "walsender %d", row->pid);
		if (row->has_bytes[CH_LAG_REPLAY])
			ch_history_note(sink, CH_REPL_HM_LAG_BYTES, key,
							(double) row->lag_bytes[CH_LAG_REPLAY]);
		if (row->has_s[CH_LAG_REPLAY - 1]) /* seconds: no "sent" */
			ch_history_note(sink, CH_REPL_HM_LAG_S, key,
							row->lag_s[CH_LAG_REPLAY - 1]);
		if (i < nrtt && rtt[i].has_rtt)
			ch_history_note(sink, CH_REPL_HM_RTT_MS, key, rtt[i].rtt_ms);
	}
	if (in_recovery)
	{
		if (standby.has_replay_lag)
			ch_history_note(sink, CH_REPL_HM_LAG_BYTES, "standby",
							(double) standby.replay_lag_bytes);
		ch_history_note(sink, CH_REPL_HM_LAG_S, "standby", standby_delay);
		if (nrtt > nsenders && rtt[nsenders].has_rtt)
			ch_history_note(sink, CH_REPL_HM_RTT_MS, "standby",
							rtt[nsenders].rtt_ms);
	}
	pfree(senders);
	pfree(slots);
	pfree(rtt);
}
