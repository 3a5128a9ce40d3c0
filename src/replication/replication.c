/*-------------------------------------------------------------------------
 *
 * replication.c
 *	  Replication lag, sampled by the collector: WAL senders on a primary,
 *	  the WAL receiver and replay on a standby, and replication slots.
 *
 * PostgreSQL's own numbers are wrong in the ways everyone trips on: the
 * primary's write/flush/replay_lag turn NULL when idle and stop growing
 * while a standby's replay is stuck (they are measured only when a standby
 * confirms a position), and now() - pg_last_xact_replay_timestamp() grows
 * forever on an idle primary.  So coder_health keeps its own LSN -> time
 * track: every collector cycle it records when this server's end of WAL
 * passed which position (a primary's flush position, a standby's received
 * position).  "How long ago was the oldest WAL that X has not yet replayed
 * written?" is then a lookup, which is 0 when X has everything, grows while
 * X is stuck, and is a lower bound (by at most one interval) otherwise.  It
 * is combined with PostgreSQL's measured lag, the larger wins.
 *
 * The collector has no database connection: it reads WalSndCtl, WalRcv and
 * ReplicationSlotCtl under their spinlocks and ReplicationSlotControlLock,
 * exactly as pg_stat_get_wal_senders, pg_stat_get_wal_receiver and
 * pg_get_replication_slots do (replication_read.c), into local copies, and
 * only then takes our own lock to update the track, the per-minute peaks
 * and the slots' inactivity.  The SQL functions (replication_sql.c) read
 * the same way, so what they show is live, and add the peaks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "common/ip.h"
#include "pgstat.h"
#include "replication/slot.h"
#include "replication/walreceiver.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "core/module.h"
#include "replication.h"
#include "replication_track.h"
#include "tcp_diag.h"

#include <arpa/inet.h>
#include <sys/socket.h>

/* Peaks of standbys that went away are kept this long after last seen. */
#define CH_REPL_PEAK_KEEP_US ((int64) (CH_REPL_PEAK_MINUTES + 1) * USECS_PER_MINUTE)

typedef struct ChSenderPeak
{
	bool		in_use;
	char		key[NAMEDATALEN];	/* slot name, or "pid N" without a slot */
	TimestampTz last_seen;
	ChPeakBuckets peaks;
	ChReplRtt	rtt;			/* of the sender's connection (pid inside) */
} ChSenderPeak;

typedef struct ChSlotSeen
{
	bool		in_use;
	char		name[NAMEDATALEN];
	bool		active;
	TimestampTz inactive_since; /* when we saw it go inactive; 0 if active */
} ChSlotSeen;

typedef struct ChReplShared
{
	TimestampTz initialized_at; /* server (re)start: no WAL sender ran yet */
	bool		slots_seen_once;

	/* the LSN -> time track */
	ChReplTrack track;

	/* as a standby */
	TimestampTz last_streaming_at;	/* last cycle the receiver streamed */
	ChPeakBuckets standby_peaks;
	ChReplRtt	standby_rtt;	/* of the WAL receiver's connection */

	int			max_senders;
	int			max_slots;
	/* then ChSenderPeak[max_senders], ChSlotSeen[max_slots] */
} ChReplShared;

static ChReplShared *repl = NULL;

#define repl_senders() \
	((ChSenderPeak *) ((char *) repl + MAXALIGN(sizeof(ChReplShared))))
#define repl_slots() \
	((ChSlotSeen *) ((char *) repl_senders() + \
					 MAXALIGN(sizeof(ChSenderPeak) * repl->max_senders)))

/* local buffers of the collector */
static ChSenderRow *collector_senders = NULL;
static ChSlotRow *collector_slots = NULL;

/* ------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------
 */

/* Peaks for every WAL sender plus some that went away recently. */
int
ch_repl_max_senders(void)
{
	return max_wal_senders + 8;
}

int
ch_repl_max_slots(void)
{
	return Max(max_replication_slots, 1);
}

static Size
ch_repl_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(ChReplShared));

	size = add_size(size, MAXALIGN(mul_size(sizeof(ChSenderPeak), ch_repl_max_senders())));
	size = add_size(size, MAXALIGN(mul_size(sizeof(ChSlotSeen), ch_repl_max_slots())));
	return size;
}

static void
ch_repl_shmem_init(void)
{
	bool		found;

	repl = ShmemInitStruct("coder_health replication", ch_repl_shmem_size(), &found);
	if (!found)
	{
		memset(repl, 0, ch_repl_shmem_size());
		repl->initialized_at = GetCurrentTimestamp();
		repl->max_senders = ch_repl_max_senders();
		repl->max_slots = ch_repl_max_slots();
		ch_repl_peaks_init(&repl->standby_peaks);
	}
}

static Size
ch_repl_used_bytes(void)
{
	/* fixed tables, always in use */
	return repl ? ch_repl_shmem_size() : 0;
}

/* ------------------------------------------------------------------------
 * Lag in seconds (CH_LOCK_REPLICATION held)
 * ------------------------------------------------------------------------
 */

/*
 * Lag seconds of a WAL sender's write, flush and replay positions: 0 when
 * the standby has all WAL this server has; otherwise the larger of what
 * PostgreSQL measured and how long ago the oldest WAL the standby lacks
 * was written; unknown only when the standby reported no position or
 * neither source has anything yet.
 */
void
ch_repl_sender_seconds(ChSenderRow *row, TimestampTz now)
{
	for (int k = 0; k < 3; k++)
	{
		XLogRecPtr	pos = row->ptr[CH_LAG_WRITE + k];
		double		core;
		double		track;

		row->has_s[k] = false;
		if (XLogRecPtrIsInvalid(pos))
			continue;
		if (pos >= row->end)
		{
			row->has_s[k] = true;
			row->lag_s[k] = 0;
			continue;
		}
		core = row->core_lag_us[k] >= 0 ? row->core_lag_us[k] / 1000000.0 : -1;
		track = ch_repl_track_seconds_behind(&repl->track, pos, now);
		if (core < 0 && track < 0)
			continue;
		row->has_s[k] = true;
		row->lag_s[k] = Max(core, track);
	}
}

/*
 * How far behind the primary this standby's data is, in seconds: 0 while
 * the receiver streams and everything received is replayed; while replay
 * lags, how long ago the oldest WAL not yet replayed arrived; and while the
 * receiver is not streaming, at least the time since we last heard from
 * the primary (it may have written anything since).
 */
double
ch_repl_standby_delay(const ChStandbyRow *row, TimestampTz now)
{
	double		delay = 0;

	if (!XLogRecPtrIsInvalid(row->received) && row->replayed < row->received)
		delay = Max(ch_repl_track_seconds_behind(&repl->track, row->replayed, now), 0);

	if (!row->streaming)
	{
		/*
		 * The last cycle the collector saw the receiver streaming.  Not
		 * WalRcv's lastMsgReceiptTime: every new receiver process resets
		 * it to its start time, connected or not.
		 */
		TimestampTz heard = repl->last_streaming_at;

		/*
		 * Not seen streaming since the server started: the data is no
		 * newer than the last transaction replayed, or, with none
		 * replayed since startup, than the start itself.
		 */
		if (heard == 0)
			heard = row->latest_xact_time;
		if (heard == 0)
			heard = repl->initialized_at;
		delay = Max(delay, Max(now - heard, 0) / 1000000.0);
	}
	return delay;
}

/* ------------------------------------------------------------------------
 * Per-minute peaks (CH_LOCK_REPLICATION held)
 * ------------------------------------------------------------------------
 */

/* A sender's peaks follow its slot across reconnects; without one, its pid. */
static void
sender_key(const ChSenderRow *row, char *key)
{
	if (row->slot_name[0] != '\0')
		strlcpy(key, row->slot_name, NAMEDATALEN);
	else
		snprintf(key, NAMEDATALEN, "pid %d", row->pid);
}

static ChSenderPeak *
sender_peak_find(const ChSenderRow *row, bool create, TimestampTz now)
{
	ChSenderPeak *peaks = repl_senders();
	ChSenderPeak *free_entry = NULL;
	ChSenderPeak *oldest = NULL;
	char		key[NAMEDATALEN];

	sender_key(row, key);
	for (int i = 0; i < repl->max_senders; i++)
	{
		ChSenderPeak *e = &peaks[i];

		if (!e->in_use)
		{
			if (!free_entry)
				free_entry = e;
			continue;
		}
		if (strcmp(e->key, key) == 0)
			return e;
		if (!oldest || e->last_seen < oldest->last_seen)
			oldest = e;
	}
	if (!create)
		return NULL;
	/* full: the one not seen for longest gives way */
	if (!free_entry)
		free_entry = oldest;
	if (!free_entry)
		return NULL;
	memset(free_entry, 0, sizeof(*free_entry));
	free_entry->in_use = true;
	strlcpy(free_entry->key, key, NAMEDATALEN);
	free_entry->last_seen = now;
	ch_repl_peaks_init(&free_entry->peaks);
	return free_entry;
}

/* A sender's 15-minute peaks including its current lag; false if none. */
bool
ch_repl_sender_peak(const ChSenderRow *row, TimestampTz now,
					int64 *bytes, double *seconds)
{
	ChSenderPeak *e = sender_peak_find(row, false, now);

	*bytes = -1;
	*seconds = -1;
	if (e)
		ch_repl_peaks_read(&e->peaks, now, bytes, seconds);
	if (row->has_bytes[CH_LAG_REPLAY])
		*bytes = Max(*bytes, row->lag_bytes[CH_LAG_REPLAY]);
	if (row->has_s[2])
		*seconds = Max(*seconds, row->lag_s[2]);
	return *bytes >= 0 || *seconds >= 0;
}

bool
ch_repl_standby_peak(TimestampTz now, int64 *bytes, double *seconds)
{
	ch_repl_peaks_read(&repl->standby_peaks, now, bytes, seconds);
	return *bytes >= 0 || *seconds >= 0;
}

/* ------------------------------------------------------------------------
 * Slot inactivity (CH_LOCK_REPLICATION held)
 * ------------------------------------------------------------------------
 */

/*
 * Since when the slot has been inactive: PostgreSQL's own record on 17+,
 * otherwise what the collector saw.  False when not known (active, or not
 * yet seen by the collector).
 */
bool
ch_repl_slot_inactive_since(const ChSlotRow *row, TimestampTz *since)
{
	ChSlotSeen *seen = repl_slots();

	if (row->active)
		return false;
	if (row->core_inactive_since != 0)
	{
		*since = row->core_inactive_since;
		return true;
	}
	for (int i = 0; i < repl->max_slots; i++)
		if (seen[i].in_use && strcmp(seen[i].name, row->name) == 0)
		{
			if (seen[i].active || seen[i].inactive_since == 0)
				return false;
			*since = seen[i].inactive_since;
			return true;
		}
	return false;
}

/*
 * Follow active -> inactive transitions.  A slot the collector sees for the
 * first time inactive has been inactive since the server started if this is
 * the first look after startup (no WAL sender ran before), or since it was
 * created (within the last interval) otherwise.
 */
static void
slots_update(const ChSlotRow *rows, int nrows, TimestampTz now)
{
	ChSlotSeen *seen = repl_slots();

	/* forget dropped slots */
	for (int i = 0; i < repl->max_slots; i++)
	{
		bool		exists = false;

		if (!seen[i].in_use)
			continue;
		for (int j = 0; j < nrows && !exists; j++)
			exists = strcmp(seen[i].name, rows[j].name) == 0;
		if (!exists)
			seen[i].in_use = false;
	}

	for (int j = 0; j < nrows; j++)
	{
		ChSlotSeen *e = NULL;
		ChSlotSeen *free_entry = NULL;

		for (int i = 0; i < repl->max_slots; i++)
		{
			if (seen[i].in_use && strcmp(seen[i].name, rows[j].name) == 0)
			{
				e = &seen[i];
				break;
			}
			if (!seen[i].in_use && !free_entry)
				free_entry = &seen[i];
		}
		if (!e)
		{
			if (!free_entry)
				continue;
			e = free_entry;
			e->in_use = true;
			strlcpy(e->name, rows[j].name, NAMEDATALEN);
			e->active = rows[j].active;
			e->inactive_since = rows[j].active ? 0 :
				(repl->slots_seen_once ? now : repl->initialized_at);
			continue;
		}
		if (e->active && !rows[j].active)
			e->inactive_since = now;
		else if (rows[j].active)
			e->inactive_since = 0;
		e->active = rows[j].active;
	}
	repl->slots_seen_once = true;
}

/* ------------------------------------------------------------------------
 * Round trips of the replication connections, from the kernel
 * ------------------------------------------------------------------------
 */

/* The kernel is asked at most this often (the collector may run faster). */
#define CH_REPL_RTT_INTERVAL_US USECS_PER_SEC
/* A reading older than this is not shown (the collector stopped). */
#define CH_REPL_RTT_MAX_AGE_US (10 * USECS_PER_SEC)

static ChTcpRttQuery *rtt_queries = NULL;

static void
rtt_store(ChReplRtt *dst, const ChTcpRttQuery *q, bool asked, TimestampTz now)
{
	uint32		min_rtt;
	uint32		rtt;

	memset(dst, 0, sizeof(*dst));
	if (!asked || q == NULL || !ch_tcp_rtt_result(q, &min_rtt, &rtt))
		return;
	dst->pid = q->pid;
	dst->min_rtt_us = min_rtt;
	dst->rtt_us = rtt;
	dst->read_at = now;
}

/*
 * Rows for coder_health.replication_rtt_internal(): per WAL sender and for
 * this standby's receiver, the round trip the collector read last, if it
 * belongs to that very process and is recent.  CH_LOCK_REPLICATION held.
 */
int
ch_repl_rtt_rows(const ChSenderRow *senders, int nsenders,
				 const ChStandbyRow *standby, TimestampTz now,
				 ChReplRttRow *out)
{
	int			n = 0;

	for (int i = 0; i < nsenders; i++)
	{
		ChSenderPeak *e = sender_peak_find(&senders[i], false, now);
		ChReplRttRow *r = &out[n++];

		memset(r, 0, sizeof(*r));
		r->pid = senders[i].pid;
		r->rtt_max_ms = e ? ch_repl_peaks_read_rtt(&e->peaks, now) : -1;
		if (e && e->rtt.pid == senders[i].pid &&
			now - e->rtt.read_at <= CH_REPL_RTT_MAX_AGE_US)
		{
			r->has_rtt = true;
			r->rtt_ms = e->rtt.min_rtt_us / 1000.0;
			r->rtt_recent_ms = e->rtt.rtt_us / 1000.0;
			r->rtt_max_ms = Max(r->rtt_max_ms, r->rtt_ms);
		}
	}
	if (standby)
	{
		ChReplRttRow *r = &out[n++];
		const ChReplRtt *s = &repl->standby_rtt;

		memset(r, 0, sizeof(*r));
		r->is_standby = true;
		r->pid = standby->receiver_pid;
		r->rtt_max_ms = ch_repl_peaks_read_rtt(&repl->standby_peaks, now);
		if (s->pid != 0 && s->pid == standby->receiver_pid &&
			now - s->read_at <= CH_REPL_RTT_MAX_AGE_US)
		{
			r->has_rtt = true;
			r->rtt_ms = s->min_rtt_us / 1000.0;
			r->rtt_recent_ms = s->rtt_us / 1000.0;
			r->rtt_max_ms = Max(r->rtt_max_ms, r->rtt_ms);
		}
	}
	return n;
}

/* ------------------------------------------------------------------------
 * The collector's cycle
 * ------------------------------------------------------------------------
 */
static void
ch_repl_collect(TimestampTz now)
{
	bool		in_recovery = RecoveryInProgress();
	XLogRecPtr	end;
	int			nsenders;
	int			nslots;
	ChStandbyRow standby;
	ChSenderPeak *peaks;
	static TimestampTz next_rtt_read = 0;
	bool		read_rtt = now >= next_rtt_read;
	bool	   *asked;
	bool		standby_asked = false;
	int			nq = 0;

	if (collector_senders == NULL)
	{
		collector_senders = MemoryContextAlloc(TopMemoryContext,
											   sizeof(ChSenderRow) * Max(max_wal_senders, 1));
		collector_slots = MemoryContextAlloc(TopMemoryContext,
											 sizeof(ChSlotRow) * ch_repl_max_slots());
		rtt_queries = MemoryContextAlloc(TopMemoryContext,
										 sizeof(ChTcpRttQuery) * (Max(max_wal_senders, 1) + 1));
	}
	asked = palloc0(sizeof(bool) * (Max(max_wal_senders, 1) + 1));

	/* PostgreSQL's state first, under its locks; ours after */
	end = ch_repl_wal_end(in_recovery);
	nsenders = ch_repl_read_senders(collector_senders, max_wal_senders, end);
	nslots = ch_repl_read_slots(collector_slots, max_replication_slots, in_recovery);
	ch_repl_match_slots(collector_senders, nsenders, collector_slots, nslots);
	if (in_recovery)
		ch_repl_read_standby(&standby);

	/*
	 * The kernel's round trip of each replication connection: which socket
	 * is whose comes from /proc and the backend status array, the values
	 * from sock_diag; nothing of ours is locked meanwhile.
	 */
	if (read_rtt && (nsenders > 0 || in_recovery))
	{
		next_rtt_read = now + CH_REPL_RTT_INTERVAL_US;
		compat_clear_backend_snapshot();
		for (int i = 0; i < nsenders; i++)
		{
			ChTcpRttQuery q;

			asked[i] = ch_repl_sender_query(collector_senders[i].pid, &q);
			if (asked[i])
				rtt_queries[nq++] = q;
		}
		compat_clear_backend_snapshot();
		if (in_recovery)
		{
			ChTcpRttQuery q;

			standby_asked = ch_repl_receiver_query(&standby, &q);
			if (standby_asked)
				rtt_queries[nq++] = q;
		}
		if (nq > 0 && !ch_tcp_rtt_lookup(rtt_queries, nq))
			for (int i = 0; i < nq; i++)
				rtt_queries[i].matches = 0;
	}

	LWLockAcquire(ch_shared->locks[CH_LOCK_REPLICATION], LW_EXCLUSIVE);
	ch_repl_track_record(&repl->track, end, now);

	for (int i = 0; i < nsenders; i++)
	{
		ChSenderRow *row = &collector_senders[i];
		ChSenderPeak *e;

		ch_repl_sender_seconds(row, now);
		e = sender_peak_find(row, true, now);
		if (e)
		{
			e->last_seen = now;
			ch_repl_peaks_add(&e->peaks, now, row->has_bytes[CH_LAG_REPLAY],
					  row->lag_bytes[CH_LAG_REPLAY], row->has_s[2], row->lag_s[2]);
			if (read_rtt)
			{
				/* queries were made in sender order, skipping unix sockets */
				int			k = 0;

				for (int j = 0; j < i; j++)
					k += asked[j] ? 1 : 0;
				rtt_store(&e->rtt, &rtt_queries[k], asked[i], now);
			}
			if (e->rtt.pid == row->pid && e->rtt.pid != 0)
				ch_repl_peaks_add_rtt(&e->peaks, now, e->rtt.min_rtt_us / 1000.0);
		}
	}
	/* peaks of senders gone for longer than the window are of no use */
	peaks = repl_senders();
	for (int i = 0; i < repl->max_senders; i++)
		if (peaks[i].in_use && now - peaks[i].last_seen > CH_REPL_PEAK_KEEP_US)
			peaks[i].in_use = false;

	slots_update(collector_slots, nslots, now);

	if (in_recovery)
	{
		if (standby.streaming)
			repl->last_streaming_at = now;
		ch_repl_peaks_add(&repl->standby_peaks, now, standby.has_replay_lag,
				  standby.replay_lag_bytes, true,
				  ch_repl_standby_delay(&standby, now));
		if (read_rtt)
			rtt_store(&repl->standby_rtt,
					  standby_asked ? &rtt_queries[nq - 1] : NULL,
					  standby_asked, now);
		if (repl->standby_rtt.pid != 0 &&
			repl->standby_rtt.pid == standby.receiver_pid)
			ch_repl_peaks_add_rtt(&repl->standby_peaks, now,
						  repl->standby_rtt.min_rtt_us / 1000.0);
	}
	LWLockRelease(ch_shared->locks[CH_LOCK_REPLICATION]);
	pfree(asked);
}

const ChModule ch_replication_module = {
	.name = "replication",
	.shmem_size = ch_repl_shmem_size,
	.shmem_init = ch_repl_shmem_init,
	.collect = ch_repl_collect,
	.used_bytes = ch_repl_used_bytes,
	.history_metrics = ch_repl_history_metrics,
	.nhistory_metrics = CH_REPL_HM_COUNT,
	.history_sample = ch_repl_history_sample,
};
