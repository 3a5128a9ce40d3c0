/*-------------------------------------------------------------------------
 *
 * notify_sql.c
 *	  SQL functions behind coder_health.notify_queue, notify_listeners and
 *	  notify_channels.
 *
 * PostgreSQL's queue is read live (notify_queue.c: NotifyQueueLock for the
 * length of a copy); family counters are atomics read without a lock;
 * listener slots are re-read when their owner was writing them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "notify.h"
#include "core/privacy.h"
#include "core/srf.h"

PG_FUNCTION_INFO_V1(coder_health_notify_queue);
PG_FUNCTION_INFO_V1(coder_health_notify_listeners);
PG_FUNCTION_INFO_V1(coder_health_notify_channels);
PG_FUNCTION_INFO_V1(coder_health_notify_stall_reason);
PG_FUNCTION_INFO_V1(coder_health_notify_reset);

/* Rate window: this many snapshot steps back (a minute). */
#define RATE_STEPS 6

/* A consistent copy of a listener slot; false if it kept changing. */
static bool
read_listen_slot(ChListenSlot *slot, ChListenSlot *copy)
{
	for (int tries = 0; tries < 1000; tries++)
	{
		uint32		before = pg_atomic_read_u32(&slot->changecount);
		uint32		after;

		if (before & 1)
		{
			pg_spin_delay();
			continue;
		}
		pg_read_barrier();
		copy->pid = slot->pid;
		copy->nchannels = slot->nchannels;
		copy->nfamilies = Min(slot->nfamilies, CH_NOTIFY_SLOT_FAMILIES);
		copy->overflow = slot->overflow;
		memcpy(copy->family, slot->family, sizeof(uint32) * copy->nfamilies);
		pg_read_barrier();
		after = pg_atomic_read_u32(&slot->changecount);
		if (before == after)
			return true;
	}
	return false;
}

/* Notifications per second over about the last minute. */
static double
family_rate(ChFamily *f, uint64 count, TimestampTz now, uint64 step)
{
	uint64		back = step >= RATE_STEPS ? step - RATE_STEPS : 0;
	TimestampTz then = (TimestampTz) pg_atomic_read_u64(&ch_notify->snap_time[back % CH_NOTIFY_SNAPS]);
	uint64		before = pg_atomic_read_u64(&f->snap[back % CH_NOTIFY_SNAPS]);
	double		span = (double) (now - then) / USECS_PER_SEC;

	if (span < 1.0 || count < before)
		return 0.0;
	return (double) (count - before) / span;
}

static inline double
ns_to_ms(double ns)
{
	return rint(ns / 100.0) / 10000.0;
}

/* ------------------------------------------------------------------------
 * coder_health.notify_queue
 * ------------------------------------------------------------------------
 */
Datum
coder_health_notify_queue(PG_FUNCTION_ARGS)
{
#define Q_COLS 14
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ChQueueSnapshot snap;
	Datum		values[Q_COLS];
	bool		nulls[Q_COLS];
	int			i = 0;
	int			slowest = -1;
	uint64		notifications = 0;
	uint64		bytes = 0;
	double		per_s = 0.0;
	TimestampTz now = GetCurrentTimestamp();
	uint64		step;
	uint32		nfam;
	sketch_t   *sk;
	static const double qs[] = {0.5, 0.99};
	double		q[2];
	int			listeners = 0;

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, Q_COLS);
	ch_notify_queue_read(&snap);

	step = pg_atomic_read_u64(&ch_notify->snap_step);
	nfam = Min(pg_atomic_read_u32(&ch_notify->nfamilies),
			   (uint32) ch_notify->max_families + 1);
	for (uint32 f = 0; f < nfam; f++)
	{
		uint64		n = pg_atomic_read_u64(&ch_families[f].notifications);

		notifications += n;
		bytes += pg_atomic_read_u64(&ch_families[f].bytes);
		per_s += family_rate(&ch_families[f], n, now, step);
	}

	sk = palloc(sizeof(sketch_t));
	sketch_reset(sk);
	for (uint64 s = step >= RATE_STEPS ? step - RATE_STEPS + 1 : 0; s <= step; s++)
		ch_atomic_sketch_read(&ch_notify->commit_window[s % CH_NOTIFY_WINDOWS], sk);
	sketch_quantiles(sk, qs, 2, q);

	if (snap.supported)
	{
		listeners = snap.nlisteners;
		for (int k = 0; k < snap.nlisteners; k++)
			if (slowest < 0 ||
				snap.listeners[k].backlog_bytes > snap.listeners[slowest].backlog_bytes)
				slowest = k;
	}
	else
	{
		for (int s = 0; s < ch_notify->nslots; s++)
		{
			ChListenSlot copy;

			if (read_listen_slot(&ch_listen_slots[s], &copy) && copy.pid != 0)
				listeners++;
		}
	}

	memset(nulls, 0, sizeof(nulls));
	values[i++] = Float8GetDatum(snap.usage);
	values[i++] = Int64GetDatum(snap.backlog_bytes);
	values[i++] = Int64GetDatum(snap.max_bytes);
	values[i++] = Int32GetDatum(listeners);
	if (slowest >= 0)
	{
		values[i++] = Int32GetDatum(snap.listeners[slowest].pid);
		values[i++] = Int64GetDatum(snap.listeners[slowest].backlog_bytes);
	}
	else
	{
		nulls[i++] = true;
		nulls[i++] = true;
	}
	values[i++] = Int64GetDatum((int64) notifications);
	values[i++] = Int64GetDatum((int64) bytes);
	values[i++] = Float8GetDatum(rint(per_s * 1000.0) / 1000.0);
	for (int k = 0; k < 2; k++)
	{
		if (isnan(q[k]))
			nulls[i++] = true;
		else
			values[i++] = Float8GetDatum(ns_to_ms(q[k]));
	}
	values[i++] = BoolGetDatum(snap.supported);
	values[i++] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&ch_notify->reset_time));
	/* queue pages a committing backend could not read back: their
	 * notifications are missing from the counts (notify_readback.c) */
	values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&ch_notify->unread_pages));
	Assert(i == Q_COLS);
	tuplestore_putvalues(store, tupdesc, values, nulls);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * coder_health.notify_listeners
 * ------------------------------------------------------------------------
 */

static Datum
family_names(const ChListenSlot *slot)
{
	Datum	   *names = palloc(sizeof(Datum) * (CH_NOTIFY_SLOT_FAMILIES + 1));
	int			n = 0;

	for (int k = 0; k < slot->nfamilies; k++)
		names[n++] = CStringGetTextDatum(ch_families[slot->family[k]].name);
	if (slot->overflow)
		names[n++] = CStringGetTextDatum("(other)");
	return PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
}

Datum
coder_health_notify_listeners(PG_FUNCTION_ARGS)
{
#define LS_COLS 6
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ChQueueSnapshot snap;
	ChListenSlot *slots;
	bool	   *slot_used;
	int			nslots;
	TimestampTz now = GetCurrentTimestamp();
	int		   *visible;
	int			nvisible;

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, LS_COLS);
	/* another role's listener: its backlog, not its channels (privacy.h) */
	nvisible = ch_visible_session_pids(ch_sees_all_roles(), &visible);
	ch_notify_queue_read(&snap);

	nslots = ch_notify->nslots;
	slots = palloc0(sizeof(ChListenSlot) * nslots);
	slot_used = palloc0(sizeof(bool) * nslots);
	for (int s = 0; s < nslots; s++)
		if (!read_listen_slot(&ch_listen_slots[s], &slots[s]))
			slots[s].pid = 0;

	/* PostgreSQL's listeners, with what coder_health knows of each */
	LWLockAcquire(ch_shared->locks[CH_LOCK_NOTIFY], LW_SHARED);
	for (int k = 0; k < snap.nlisteners; k++)
	{
		ChQueueListener *l = &snap.listeners[k];
		Datum		values[LS_COLS];
		bool		nulls[LS_COLS];
		TimestampTz since = ch_notify_progress_since(l);
		int			s;

		memset(nulls, 0, sizeof(nulls));
		for (s = 0; s < nslots; s++)
			if (slots[s].pid == l->pid && !slot_used[s])
				break;
		values[0] = Int32GetDatum(l->pid);
		values[1] = ObjectIdGetDatum(l->dboid);
		if (s < nslots)
			slot_used[s] = true;
		if (s < nslots && ch_session_visible(visible, nvisible, l->pid))
		{
			values[2] = Int32GetDatum(slots[s].nchannels);
			values[3] = family_names(&slots[s]);
		}
		else
		{
			nulls[2] = true;
			nulls[3] = true;
		}
		values[4] = Int64GetDatum(l->backlog_bytes);
		if (since != 0 && l->backlog_bytes > 0)
			values[5] = Float8GetDatum(rint((double) (now - since) / 1000.0) / 1000.0);
		else
			values[5] = Float8GetDatum(0.0);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	LWLockRelease(ch_shared->locks[CH_LOCK_NOTIFY]);

	/* listeners only coder_health knows of (the queue is not readable) */
	for (int s = 0; s < nslots; s++)
	{
		Datum		values[LS_COLS];
		bool		nulls[LS_COLS];

		if (slots[s].pid == 0 || slot_used[s] || snap.supported)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(slots[s].pid);
		nulls[1] = true;
		if (ch_session_visible(visible, nvisible, slots[s].pid))
		{
			values[2] = Int32GetDatum(slots[s].nchannels);
			values[3] = family_names(&slots[s]);
		}
		else
		{
			nulls[2] = true;
			nulls[3] = true;
		}
		nulls[4] = true;
		nulls[5] = true;
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Why a listener counts as stalled, or NULL: a backlog of at least
 * notify_stall_bytes, and inside a transaction or without progress for at
 * least notify_stall_seconds.
 */
Datum
coder_health_notify_stall_reason(PG_FUNCTION_ARGS)
{
	int64		backlog;
	double		limit = (double) ch_notify_stall_seconds;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	backlog = PG_GETARG_INT64(0);
	if (backlog <= 0 || backlog < (int64) ch_notify_stall_bytes)
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(1) && PG_GETARG_FLOAT8(1) >= limit)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("transaction open for %.0f s",
												  PG_GETARG_FLOAT8(1))));
	if (!PG_ARGISNULL(2) && PG_GETARG_FLOAT8(2) >= limit)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("not reading for %.0f s",
												  PG_GETARG_FLOAT8(2))));
	PG_RETURN_NULL();
}

/* ------------------------------------------------------------------------
 * coder_health.notify_channels
 * ------------------------------------------------------------------------
 */
Datum
coder_health_notify_channels(PG_FUNCTION_ARGS)
{
#define CHN_COLS 8
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	uint32		nfam;
	int		   *listeners;
	TimestampTz now = GetCurrentTimestamp();
	uint64		step = pg_atomic_read_u64(&ch_notify->snap_step);

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, CHN_COLS);
	nfam = Min(pg_atomic_read_u32(&ch_notify->nfamilies),
			   (uint32) ch_notify->max_families + 1);

	/* listeners per family, from every backend's slot */
	listeners = palloc0(sizeof(int) * nfam);
	for (int s = 0; s < ch_notify->nslots; s++)
	{
		ChListenSlot copy;

		if (!read_listen_slot(&ch_listen_slots[s], &copy) || copy.pid == 0)
			continue;
		for (int k = 0; k < copy.nfamilies; k++)
			if (copy.family[k] < nfam)
				listeners[copy.family[k]]++;
		if (copy.overflow)
			listeners[CH_FAMILY_OTHER]++;
	}

	for (uint32 f = 0; f < nfam; f++)
	{
		ChFamily   *fam = &ch_families[f];
		Datum		values[CHN_COLS];
		bool		nulls[CHN_COLS];
		uint64		n = pg_atomic_read_u64(&fam->notifications);
		TimestampTz last = (TimestampTz) pg_atomic_read_u64(&fam->last_notify_at);

		/* an entry being created right now has no name yet */
		if (fam->name[0] == '\0')
			continue;
		if (f == CH_FAMILY_OTHER && n == 0 && listeners[f] == 0)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(fam->name);
		values[1] = Int64GetDatum((int64) ch_hll_estimate(fam));
		values[2] = Int32GetDatum(listeners[f]);
		values[3] = Int64GetDatum((int64) n);
		values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&fam->bytes));
		values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&fam->max_payload));
		values[6] = Float8GetDatum(rint(family_rate(fam, n, now, step) * 1000.0) / 1000.0);
		if (last != 0)
			values[7] = TimestampTzGetDatum(last);
		else
			nulls[7] = true;
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
coder_health_notify_reset(PG_FUNCTION_ARGS)
{
	ch_require_loaded();
	ch_notify_reset();
	PG_RETURN_VOID();
}
