/*-------------------------------------------------------------------------
 *
 * replication_read.c
 *	  What PostgreSQL itself knows about replication, read the way its own
 *	  views read it: this server's end of WAL, the WAL senders
 *	  (pg_stat_replication), the WAL receiver (pg_stat_wal_receiver), the
 *	  replication slots (pg_replication_slots), and where each replication
 *	  connection's peer is, for the kernel's round trip (tcp_diag.c).
 *
 * Apart from replication.c because none of it holds state of its own or a
 * lock of coder_health's: each function copies PostgreSQL's shared state
 * under PostgreSQL's spinlocks and ReplicationSlotControlLock into rows the
 * caller owns.  The collector (replication.c, history.c) and the SQL
 * functions (replication_sql.c) call it, so what they show is live.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/slot.h"
#include "replication/walreceiver.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "replication.h"
#include "tcp_diag.h"

/*
 * This server's end of WAL, the position WAL senders send up to: the flush
 * position on a primary; on a standby (cascading), what it has received or
 * replayed, whichever is further.
 */
XLogRecPtr
ch_repl_wal_end(bool in_recovery)
{
	if (in_recovery)
	{
		XLogRecPtr	received = GetWalRcvFlushRecPtr(NULL, NULL);
		XLogRecPtr	replayed = GetXLogReplayRecPtr(NULL);

		return Max(received, replayed);
	}
	return compat_get_flush_rec_ptr();
}

const char *
ch_repl_sender_state_name(int state)
{
	switch ((WalSndState) state)
	{
		case WALSNDSTATE_STARTUP:
			return "startup";
		case WALSNDSTATE_BACKUP:
			return "backup";
		case WALSNDSTATE_CATCHUP:
			return "catchup";
		case WALSNDSTATE_STREAMING:
			return "streaming";
		case WALSNDSTATE_STOPPING:
			return "stopping";
	}
	return "unknown";
}

static const char *
receiver_state_name(WalRcvState state)
{
	switch (state)
	{
		case WALRCV_STOPPED:
			return "stopped";
		case WALRCV_STARTING:
			return "starting";
		case WALRCV_STREAMING:
			return "streaming";
		case WALRCV_WAITING:
			return "waiting";
		case WALRCV_RESTARTING:
			return "restarting";
		case WALRCV_STOPPING:
			return "stopping";
	}
	return "unknown";
}

/* Bytes from pos to end, never negative (they are read at different times). */
static inline int64
bytes_behind(XLogRecPtr end, XLogRecPtr pos)
{
	return end > pos ? (int64) (end - pos) : 0;
}

/*
 * Every active WAL sender, read under its spinlock as
 * pg_stat_get_wal_senders does.  Seconds are filled in later
 * (ch_repl_sender_seconds), under our lock.
 */
int
ch_repl_read_senders(ChSenderRow *rows, int max_rows, XLogRecPtr end)
{
	int			n = 0;

	for (int i = 0; i < max_wal_senders && n < max_rows; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];
		ChSenderRow *row = &rows[n];

		memset(row, 0, sizeof(*row));
		SpinLockAcquire(&walsnd->mutex);
		if (walsnd->pid == 0)
		{
			SpinLockRelease(&walsnd->mutex);
			continue;
		}
		row->pid = (int) walsnd->pid;
		row->state = (int) walsnd->state;
		row->ptr[CH_LAG_SENT] = walsnd->sentPtr;
		row->ptr[CH_LAG_WRITE] = walsnd->write;
		row->ptr[CH_LAG_FLUSH] = walsnd->flush;
		row->ptr[CH_LAG_REPLAY] = walsnd->apply;
		row->core_lag_us[0] = (int64) walsnd->writeLag;
		row->core_lag_us[1] = (int64) walsnd->flushLag;
		row->core_lag_us[2] = (int64) walsnd->applyLag;
		row->reply_time = walsnd->replyTime;
		SpinLockRelease(&walsnd->mutex);

		row->walsnd_index = i;
		row->end = end;
		for (int k = 0; k < 4; k++)
		{
			row->has_bytes[k] = !XLogRecPtrIsInvalid(row->ptr[k]);
			if (row->has_bytes[k])
				row->lag_bytes[k] = bytes_behind(end, row->ptr[k]);
		}
		n++;
	}
	return n;
}

/*
 * This server as a standby: its WAL receiver, read under WalRcv's spinlock
 * as pg_stat_get_wal_receiver does, and replay.
 */
void
ch_repl_read_standby(ChStandbyRow *row)
{
	WalRcvState state;
	bool		connected;
	XLogRecPtr	latest_end;
	TimestampTz last_receipt;

	memset(row, 0, sizeof(*row));
	SpinLockAcquire(&WalRcv->mutex);
	row->receiver_pid = (int) WalRcv->pid;
	state = WalRcv->walRcvState;
	connected = WalRcv->ready_to_display;
	row->received = WalRcv->flushedUpto;
	latest_end = WalRcv->latestWalEnd;
	last_receipt = WalRcv->lastMsgReceiptTime;
	strlcpy(row->sender_host, (char *) WalRcv->sender_host, sizeof(row->sender_host));
	row->sender_port = WalRcv->sender_port;
	strlcpy(row->slot_name, (char *) WalRcv->slotname, sizeof(row->slot_name));
	SpinLockRelease(&WalRcv->mutex);

	row->replayed = GetXLogReplayRecPtr(NULL);
	row->latest_xact_time = GetLatestXTime();
	row->replay_paused = compat_replay_pause_requested();

	/*
	 * A receiver that exited leaves its last state behind.  One that is
	 * still connecting already says "streaming" (WalReceiverMain sets it
	 * before it connects); ready_to_display is set once it has connected.
	 */
	row->streaming = row->receiver_pid != 0 && state == WALRCV_STREAMING &&
		connected;
	if (row->receiver_pid == 0)
		row->receiver_status = "stopped";
	else if (state == WALRCV_STREAMING && !connected)
		row->receiver_status = "connecting";
	else
		row->receiver_status = receiver_state_name(state);

	row->has_receive_lag = !XLogRecPtrIsInvalid(latest_end) &&
		!XLogRecPtrIsInvalid(row->received);
	if (row->has_receive_lag)
		row->receive_lag_bytes = bytes_behind(latest_end, row->received);
	row->has_replay_lag = !XLogRecPtrIsInvalid(row->received);
	if (row->has_replay_lag)
		row->replay_lag_bytes = bytes_behind(row->received, row->replayed);
	row->has_last_msg = last_receipt != 0;
	row->last_msg_time = last_receipt;
}

/*
 * Every replication slot, read as pg_get_replication_slots does: in_use
 * under ReplicationSlotControlLock, the rest under the slot's spinlock.
 */
int
ch_repl_read_slots(ChSlotRow *rows, int max_rows, bool in_recovery)
{
	XLogRecPtr	currlsn;
	int			n = 0;

	currlsn = in_recovery ? GetXLogReplayRecPtr(NULL) : GetXLogWriteRecPtr();

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; i < max_replication_slots && n < max_rows; i++)
	{
		ReplicationSlot *slot = &ReplicationSlotCtl->replication_slots[i];
		ChSlotRow  *row = &rows[n];
		ReplicationSlotPersistentData data;
		int			active_pid;
		WALAvailability walstate;

		if (!slot->in_use)
			continue;

		SpinLockAcquire(&slot->mutex);
		data = slot->data;
		active_pid = (int) slot->active_pid;
		row->core_inactive_since = compat_slot_inactive_since(slot);
		SpinLockRelease(&slot->mutex);

		strlcpy(row->name, NameStr(data.name), sizeof(row->name));
		row->logical = data.database != InvalidOid;
		row->database = data.database;
		row->active = active_pid != 0;
		row->active_pid = active_pid;
		row->has_retained = !XLogRecPtrIsInvalid(data.restart_lsn);
		if (row->has_retained)
			row->retained_wal_bytes = bytes_behind(currlsn, data.restart_lsn);

		if (compat_slot_invalidated(&data))
			walstate = WALAVAIL_REMOVED;
		else
			walstate = GetWALAvailability(data.restart_lsn);
		switch (walstate)
		{
			case WALAVAIL_INVALID_LSN:
				row->wal_status = NULL;
				break;
			case WALAVAIL_RESERVED:
				row->wal_status = "reserved";
				break;
			case WALAVAIL_EXTENDED:
				row->wal_status = "extended";
				break;
			case WALAVAIL_UNRESERVED:
				row->wal_status = "unreserved";
				break;
			case WALAVAIL_REMOVED:
				/* a live sender may just have moved on: not lost yet */
				row->wal_status = active_pid != 0 &&
					!XLogRecPtrIsInvalid(data.restart_lsn) ? "unreserved" : "lost";
				break;
		}

		/* WAL that may still be written before this slot loses its WAL */
		row->has_safe = walstate != WALAVAIL_REMOVED &&
			walstate != WALAVAIL_INVALID_LSN && max_slot_wal_keep_size_mb >= 0;
		if (row->has_safe)
		{
			XLogSegNo	target_seg;
			XLogSegNo	fail_seg;
			uint64		slot_keep_segs;
			uint64		keep_segs;
			XLogRecPtr	fail_lsn;

			XLByteToSeg(data.restart_lsn, target_seg, wal_segment_size);
			slot_keep_segs = XLogMBVarToSegs(max_slot_wal_keep_size_mb, wal_segment_size);
			keep_segs = XLogMBVarToSegs(wal_keep_size_mb, wal_segment_size);
			fail_seg = target_seg + Max(slot_keep_segs, keep_segs) + 1;
			XLogSegNoOffsetToRecPtr(fail_seg, 0, wal_segment_size, fail_lsn);
			row->safe_wal_bytes = (int64) (fail_lsn - currlsn);
		}
		n++;
	}
	LWLockRelease(ReplicationSlotControlLock);
	return n;
}

/* Which slot each WAL sender streams from (the slot's active_pid). */
void
ch_repl_match_slots(ChSenderRow *senders, int nsenders,
					const ChSlotRow *slots, int nslots)
{
	for (int i = 0; i < nsenders; i++)
	{
		senders[i].slot_name[0] = '\0';
		for (int j = 0; j < nslots; j++)
			if (slots[j].active_pid == senders[i].pid)
			{
				strlcpy(senders[i].slot_name, slots[j].name, NAMEDATALEN);
				break;
			}
	}
}

/*
 * A WAL sender's query: its standby's address and port from the backend
 * status array.  False (no round trip: NULL) for a unix-socket standby, or
 * when the sender has no status entry.
 */
bool
ch_repl_sender_query(int pid, ChTcpRttQuery *q)
{
	int			nbackends = pgstat_fetch_stat_numbackends();

	memset(q, 0, sizeof(*q));
	q->pid = pid;
	for (int i = 1; i <= nbackends; i++)
	{
		LocalPgBackendStatus *local = compat_local_beentry(i);
		const SockAddr *sa;

		if (local == NULL || local->backendStatus.st_procpid != pid)
			continue;
		sa = &local->backendStatus.st_clientaddr;
		if (sa->salen == 0)
			return false;
		if (sa->addr.ss_family == AF_INET)
		{
			const struct sockaddr_in *in = (const struct sockaddr_in *) &sa->addr;

			q->remote_family = AF_INET;
			memcpy(q->remote_addr, &in->sin_addr, 4);
			q->remote_port = ntohs(in->sin_port);
			return true;
		}
		if (sa->addr.ss_family == AF_INET6)
		{
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &sa->addr;

			q->remote_family = AF_INET6;
			memcpy(q->remote_addr, &in6->sin6_addr, 16);
			q->remote_port = ntohs(in6->sin6_port);
			return true;
		}
		return false;			/* AF_UNIX */
	}
	return false;
}

/*
 * The WAL receiver's query: the primary's port, and its address when
 * primary_conninfo names it numerically.  False for a unix socket (a host
 * that is a directory, or none).
 */
bool
ch_repl_receiver_query(const ChStandbyRow *standby, ChTcpRttQuery *q)
{
	memset(q, 0, sizeof(*q));
	if (standby->receiver_pid == 0 || !standby->streaming ||
		standby->sender_host[0] == '\0' || standby->sender_host[0] == '/' ||
		standby->sender_port == 0)
		return false;
	q->pid = standby->receiver_pid;
	q->remote_port = standby->sender_port;
	if (inet_pton(AF_INET, standby->sender_host, q->remote_addr) == 1)
		q->remote_family = AF_INET;
	else if (inet_pton(AF_INET6, standby->sender_host, q->remote_addr) == 1)
		q->remote_family = AF_INET6;
	return true;
}
