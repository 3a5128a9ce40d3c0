/*-------------------------------------------------------------------------
 *
 * replication_sql.c
 *	  SQL functions behind coder_health.replication and
 *	  coder_health.replication_slots.
 *
 * They read PostgreSQL's state live (as the collector does, see
 * replication.c), then take our lock in shared mode only to look up the
 * LSN -> time track, the peaks and the slots' inactivity.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "replication.h"
#include "core/srf.h"

PG_FUNCTION_INFO_V1(coder_health_replication);
PG_FUNCTION_INFO_V1(coder_health_replication_slots);
PG_FUNCTION_INFO_V1(coder_health_replication_rtt);

/* Seconds to the millisecond: finer digits are noise here. */
static inline Datum
seconds_datum(double s)
{
	return Float8GetDatum(rint(s * 1000.0) / 1000.0);
}

static double
age_seconds(TimestampTz now, TimestampTz then)
{
	return Max(now - then, 0) / 1000000.0;
}

/* ------------------------------------------------------------------------
 * coder_health.replication: one row per WAL sender, and one for this
 * server's own WAL receiver and replay when it is a standby
 * ------------------------------------------------------------------------
 */
#define REPL_COLS 21

Datum
coder_health_replication(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	bool		in_recovery;
	bool		privileged;
	XLogRecPtr	end;
	ChSenderRow *senders;
	ChSlotRow  *slots;
	ChStandbyRow standby;
	int			nsenders;
	int			nslots;
	int64	   *peak_bytes;
	double	   *peak_s;
	int64		standby_peak_bytes = -1;
	double		standby_peak_s = -1;
	double		standby_delay = 0;
	TimestampTz now;

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, REPL_COLS);
	privileged = has_privs_of_role(GetUserId(), COMPAT_ROLE_READ_ALL_STATS);

	senders = palloc(sizeof(ChSenderRow) * Max(max_wal_senders, 1));
	slots = palloc(sizeof(ChSlotRow) * ch_repl_max_slots());
	peak_bytes = palloc(sizeof(int64) * Max(max_wal_senders, 1));
	peak_s = palloc(sizeof(double) * Max(max_wal_senders, 1));

	in_recovery = RecoveryInProgress();
	end = ch_repl_wal_end(in_recovery);
	nsenders = ch_repl_read_senders(senders, max_wal_senders, end);
	nslots = ch_repl_read_slots(slots, max_replication_slots, in_recovery);
	ch_repl_match_slots(senders, nsenders, slots, nslots);
	if (in_recovery)
		ch_repl_read_standby(&standby);
	now = GetCurrentTimestamp();

	LWLockAcquire(ch_shared->locks[CH_LOCK_REPLICATION], LW_SHARED);
	for (int i = 0; i < nsenders; i++)
	{
		ch_repl_sender_seconds(&senders[i], now);
		ch_repl_sender_peak(&senders[i], now, &peak_bytes[i], &peak_s[i]);
	}
	if (in_recovery)
	{
		standby_delay = ch_repl_standby_delay(&standby, now);
		ch_repl_standby_peak(now, &standby_peak_bytes, &standby_peak_s);
	}
	LWLockRelease(ch_shared->locks[CH_LOCK_REPLICATION]);

	for (int i = 0; i < nsenders; i++)
	{
		ChSenderRow *row = &senders[i];
		Datum		values[REPL_COLS];
		bool		nulls[REPL_COLS];
		int			c = 0;

		memset(nulls, true, sizeof(nulls));
		values[c] = CStringGetTextDatum("primary");
		nulls[c++] = false;
		values[c] = Int32GetDatum(row->pid);
		nulls[c++] = false;
		if (privileged)
		{
			if (row->slot_name[0] != '\0')
			{
				values[c] = CStringGetTextDatum(row->slot_name);
				nulls[c] = false;
			}
			c++;
			values[c] = CStringGetTextDatum(ch_repl_sender_state_name(row->state));
			nulls[c++] = false;
			for (int k = 0; k < 4; k++, c++)
				if (row->has_bytes[k])
				{
					values[c] = Int64GetDatum(row->lag_bytes[k]);
					nulls[c] = false;
				}
			for (int k = 0; k < 3; k++, c++)
				if (row->has_s[k])
				{
					values[c] = seconds_datum(row->lag_s[k]);
					nulls[c] = false;
				}
			if (row->reply_time != 0)
			{
				values[c] = seconds_datum(age_seconds(now, row->reply_time));
				nulls[c] = false;
			}
			c++;
			/* receiver_status .. replay_paused: standby only */
			c += 7;
			if (peak_bytes[i] >= 0)
			{
				values[c] = Int64GetDatum(peak_bytes[i]);
				nulls[c] = false;
			}
			c++;
			if (peak_s[i] >= 0)
			{
				values[c] = seconds_datum(peak_s[i]);
				nulls[c] = false;
			}
			c++;
			Assert(c == REPL_COLS);
		}
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}

	if (in_recovery)
	{
		Datum		values[REPL_COLS];
		bool		nulls[REPL_COLS];
		int			c = 0;

		memset(nulls, true, sizeof(nulls));
		values[c] = CStringGetTextDatum("standby");
		nulls[c++] = false;
		if (standby.receiver_pid != 0)
		{
			values[c] = Int32GetDatum(standby.receiver_pid);
			nulls[c] = false;
		}
		c++;
		if (privileged)
		{
			if (standby.slot_name[0] != '\0')
			{
				values[c] = CStringGetTextDatum(standby.slot_name);
				nulls[c] = false;
			}
			c++;
			c++;				/* state: a sender's */
			c++;				/* sent_lag_bytes */
			c++;				/* write_lag_bytes */
			c++;				/* flush_lag_bytes */
			if (standby.has_replay_lag)
			{
				values[c] = Int64GetDatum(standby.replay_lag_bytes);
				nulls[c] = false;
			}
			c++;
			c += 3;				/* write/flush/replay_lag_s: a sender's */
			c++;				/* reply_age_s */
			values[c] = CStringGetTextDatum(standby.receiver_status);
			nulls[c++] = false;
			if (standby.sender_host[0] != '\0')
			{
				values[c] = CStringGetTextDatum(standby.sender_host);
				nulls[c] = false;
			}
			c++;
			if (standby.sender_port != 0)
			{
				values[c] = Int32GetDatum(standby.sender_port);
				nulls[c] = false;
			}
			c++;
			if (standby.has_receive_lag)
			{
				values[c] = Int64GetDatum(standby.receive_lag_bytes);
				nulls[c] = false;
			}
			c++;
			values[c] = seconds_datum(standby_delay);
			nulls[c++] = false;
			if (standby.has_last_msg)
			{
				values[c] = seconds_datum(age_seconds(now, standby.last_msg_time));
				nulls[c] = false;
			}
			c++;
			values[c] = BoolGetDatum(standby.replay_paused);
			nulls[c++] = false;
			/* the peaks include what is seen right now */
			if (standby.has_replay_lag)
				standby_peak_bytes = Max(standby_peak_bytes, standby.replay_lag_bytes);
			standby_peak_s = Max(standby_peak_s, standby_delay);
			if (standby_peak_bytes >= 0)
			{
				values[c] = Int64GetDatum(standby_peak_bytes);
				nulls[c] = false;
			}
			c++;
			values[c] = seconds_datum(standby_peak_s);
			nulls[c++] = false;
			Assert(c == REPL_COLS);
		}
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * coder_health.replication_rtt_internal: the kernel's round trip of each
 * replication connection, as the collector last read it (tcp_diag.c); the
 * view coder_health.replication joins it by role and pid.  Rows only for
 * roles with pg_read_all_stats, like the addresses they are about.
 * ------------------------------------------------------------------------
 */
#define RTT_COLS 5

static inline Datum
ms_datum(double ms)
{
	/* microseconds: the kernel's resolution */
	return Float8GetDatum(rint(ms * 1000.0) / 1000.0);
}

Datum
coder_health_replication_rtt(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	bool		in_recovery;
	XLogRecPtr	end;
	ChSenderRow *senders;
	ChStandbyRow standby;
	ChReplRttRow *rows;
	int			nsenders;
	int			nrows;
	TimestampTz now;

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, RTT_COLS);
	if (!has_privs_of_role(GetUserId(), COMPAT_ROLE_READ_ALL_STATS))
		return (Datum) 0;

	senders = palloc(sizeof(ChSenderRow) * Max(max_wal_senders, 1));
	rows = palloc(sizeof(ChReplRttRow) * (Max(max_wal_senders, 1) + 1));
	in_recovery = RecoveryInProgress();
	end = ch_repl_wal_end(in_recovery);
	nsenders = ch_repl_read_senders(senders, max_wal_senders, end);
	if (ch_repl_max_slots() > 0)
	{
		ChSlotRow  *slots = palloc(sizeof(ChSlotRow) * ch_repl_max_slots());
		int			nslots = ch_repl_read_slots(slots, max_replication_slots, in_recovery);

		/* peaks are kept by slot name */
		ch_repl_match_slots(senders, nsenders, slots, nslots);
	}
	if (in_recovery)
		ch_repl_read_standby(&standby);
	now = GetCurrentTimestamp();

	LWLockAcquire(ch_shared->locks[CH_LOCK_REPLICATION], LW_SHARED);
	nrows = ch_repl_rtt_rows(senders, nsenders, in_recovery ? &standby : NULL,
							 now, rows);
	LWLockRelease(ch_shared->locks[CH_LOCK_REPLICATION]);

	for (int i = 0; i < nrows; i++)
	{
		Datum		values[RTT_COLS];
		bool		nulls[RTT_COLS];

		memset(nulls, true, sizeof(nulls));
		values[0] = CStringGetTextDatum(rows[i].is_standby ? "standby" : "primary");
		nulls[0] = false;
		if (rows[i].pid != 0)
		{
			values[1] = Int32GetDatum(rows[i].pid);
			nulls[1] = false;
		}
		if (rows[i].has_rtt)
		{
			values[2] = ms_datum(rows[i].rtt_ms);
			nulls[2] = false;
			values[3] = ms_datum(rows[i].rtt_recent_ms);
			nulls[3] = false;
		}
		if (rows[i].rtt_max_ms >= 0)
		{
			values[4] = ms_datum(rows[i].rtt_max_ms);
			nulls[4] = false;
		}
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * coder_health.replication_slots
 * ------------------------------------------------------------------------
 */
#define SLOT_COLS 9

Datum
coder_health_replication_slots(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ChSlotRow  *slots;
	TimestampTz *since;
	bool	   *has_since;
	int			nslots;
	TimestampTz now;

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, SLOT_COLS);

	slots = palloc(sizeof(ChSlotRow) * ch_repl_max_slots());
	since = palloc(sizeof(TimestampTz) * ch_repl_max_slots());
	has_since = palloc(sizeof(bool) * ch_repl_max_slots());
	nslots = ch_repl_read_slots(slots, max_replication_slots, RecoveryInProgress());
	now = GetCurrentTimestamp();

	LWLockAcquire(ch_shared->locks[CH_LOCK_REPLICATION], LW_SHARED);
	for (int i = 0; i < nslots; i++)
		has_since[i] = ch_repl_slot_inactive_since(&slots[i], &since[i]);
	LWLockRelease(ch_shared->locks[CH_LOCK_REPLICATION]);

	for (int i = 0; i < nslots; i++)
	{
		ChSlotRow  *row = &slots[i];
		Datum		values[SLOT_COLS];
		bool		nulls[SLOT_COLS];
		int			c = 0;

		memset(nulls, false, sizeof(nulls));
		values[c++] = CStringGetTextDatum(row->name);
		values[c++] = CStringGetTextDatum(row->logical ? "logical" : "physical");
		if (row->logical)
			values[c++] = ObjectIdGetDatum(row->database);
		else
			nulls[c++] = true;
		values[c++] = BoolGetDatum(row->active);
		if (row->active)
			values[c++] = Int32GetDatum(row->active_pid);
		else
			nulls[c++] = true;
		if (row->has_retained)
			values[c++] = Int64GetDatum(row->retained_wal_bytes);
		else
			nulls[c++] = true;
		if (row->wal_status)
			values[c++] = CStringGetTextDatum(row->wal_status);
		else
			nulls[c++] = true;
		if (row->has_safe)
			values[c++] = Int64GetDatum(row->safe_wal_bytes);
		else
			nulls[c++] = true;
		/* 0 while active; NULL until the collector has seen it inactive */
		if (row->active)
			values[c++] = Float8GetDatum(0);
		else if (has_since[i])
			values[c++] = seconds_datum(age_seconds(now, since[i]));
		else
			nulls[c++] = true;
		Assert(c == SLOT_COLS);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}
