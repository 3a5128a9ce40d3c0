/*-------------------------------------------------------------------------
 *
 * notify_queue.c
 *	  Reading PostgreSQL's notification queue state: head, tail and every
 *	  listening backend's read position, from async.c's "Async Queue
 *	  Control" struct in shared memory.
 *
 * async.c keeps that struct private, so coder_health reads it through a
 * per-version mirror of its layout (compat.h).  Before trusting the mirror,
 * a process asks ShmemInitStruct for the struct under its registered name
 * with the size the mirror implies: PostgreSQL answers with the existing
 * struct when the sizes agree and raises "ShmemIndex entry size is wrong"
 * when they do not.  That ERROR is caught here (in the collector or a
 * coder_health SQL function, never in a user's statement), the reader falls
 * back to what pg_notification_queue_usage() reports with supported =
 * false, and the server log gets one WARNING.  The answer is kept per
 * process.
 *
 * Reading: like async.c itself, other backends' entries are inspected only
 * under NotifyQueueLock in exclusive mode (a backend updates its own
 * position under the shared lock).  The lock is held while the listener
 * list is copied, O(listeners), and released before anything else.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "notify.h"

typedef enum
{
	MIRROR_UNCHECKED,
	MIRROR_OK,
	MIRROR_MISMATCH
} MirrorState;

static MirrorState mirror_state = MIRROR_UNCHECKED;
static int	mirror_checked_with = -1;	/* layout_test_bytes of the check */

/*
 * Find the queue's control struct and check that it has the size our mirror
 * says it has.  Sets mirror_state; logs one WARNING per server and mirror
 * size on a mismatch.
 */
static void
check_mirror(void)
{
	Size		expected = ch_async_control_size() +
		(Size) ch_notify_layout_test_bytes;
	MemoryContext oldcontext = CurrentMemoryContext;
	void	   *found_ptr = NULL;
	bool		found = false;
	char	   *why = NULL;

	mirror_checked_with = ch_notify_layout_test_bytes;
	PG_TRY();
	{
		found_ptr = ShmemInitStruct(CH_ASYNC_CONTROL_NAME, expected, &found);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* ShmemInitStruct released its lock before raising */
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		why = edata->message ? pstrdup(edata->message) : pstrdup("unknown error");
		FreeErrorData(edata);
		found_ptr = NULL;
	}
	PG_END_TRY();

	/* the layout was told apart and checked by meaning at startup */
	if (found_ptr != NULL && found && ch_async_control_known() &&
		ch_notify->readback_ok)
	{
		mirror_state = MIRROR_OK;
		return;
	}
	if (found_ptr != NULL && !found)
		why = pstrdup("no such shared memory structure");
	else if (found_ptr != NULL)
		why = pstrdup("its fields did not hold their initial values at startup");

	mirror_state = MIRROR_MISMATCH;
	if (pg_atomic_exchange_u64(&ch_notify->mismatch_warned_size,
							   (uint64) expected) != (uint64) expected)
		ereport(WARNING,
				(errmsg("coder_health cannot read the LISTEN/NOTIFY queue of this PostgreSQL version"),
				 errdetail("%s; coder_health's mirror of \"%s\" for PostgreSQL %s expects %zu bytes.",
						   why, CH_ASYNC_CONTROL_NAME, PG_VERSION, expected),
				 errhint("Per-listener backlog is not shown (coder_health.notify_queue.supported = false); "
						 "queue usage comes from pg_notification_queue_usage().")));
}

static bool
mirror_usable(void)
{
	if (ch_notify == NULL)
		return false;
	if (mirror_state == MIRROR_UNCHECKED ||
		mirror_checked_with != ch_notify_layout_test_bytes)
		check_mirror();
	return mirror_state == MIRROR_OK;
}

/* Bytes from position (page, offset) forward to (head_page, head_offset). */
static int64
queue_distance(int64 from_page, int from_offset, int64 to_page, int to_offset)
{
	int64		pages = to_page - from_page;

	if (CH_ASYNC_PAGE_WRAP > 0 && pages < 0)
		pages += CH_ASYNC_PAGE_WRAP;	/* the head wrapped around */
	return pages * BLCKSZ + (to_offset - from_offset);
}

/* Fallback: PostgreSQL's own whole-page usage figure. */
static void
read_fallback(ChQueueSnapshot *snap)
{
	snap->supported = false;
	snap->usage = DatumGetFloat8(DirectFunctionCall1(pg_notification_queue_usage,
													 (Datum) 0));
	snap->max_bytes = compat_notify_max_pages() * BLCKSZ;
	snap->backlog_bytes = (int64) (snap->usage * (double) snap->max_bytes);
}

/*
 * A consistent copy of the queue state.  Listeners are palloc'd in the
 * current memory context.
 */
void
ch_notify_queue_read(ChQueueSnapshot *snap)
{
	int			nentries = compat_async_backend_entries();
	ChQueueListener *out;
	int			n = 0;
	ChAsyncQueuePosition head;
	ChAsyncQueuePosition tail;
	bool		chain_ok = true;
	int64		occupied;

	memset(snap, 0, sizeof(*snap));
	if (!mirror_usable())
	{
		read_fallback(snap);
		return;
	}

	out = palloc(sizeof(ChQueueListener) * Max(nentries, 1));
	LWLockAcquire(NotifyQueueLock, LW_EXCLUSIVE);
	head = ch_async_head();
	tail = ch_async_tail();
	for (int i = ch_async_first_listener();
		 i != CH_ASYNC_INVALID_LISTENER;
		 i = ch_async_backend(i)->nextListener)
	{
		ChAsyncBackendStatus *b;

		/* a broken chain means the mirror is wrong after all */
		if (i < CH_ASYNC_FIRST_INDEX || i >= nentries || n >= nentries)
		{
			chain_ok = false;
			break;
		}
		b = ch_async_backend(i);
		out[n].pid = b->pid;
		out[n].dboid = b->dboid;
		out[n].index = i;
		out[n].page = b->pos.page;
		out[n].offset = b->pos.offset;
		n++;
	}
	LWLockRelease(NotifyQueueLock);

	if (!chain_ok)
	{
		pfree(out);
		read_fallback(snap);
		return;
	}

	snap->supported = true;
	snap->max_bytes = compat_notify_max_pages() * BLCKSZ;
	snap->head_page = head.page;
	snap->head_offset = head.offset;
	snap->backlog_bytes = Max(queue_distance(tail.page, tail.offset,
											 head.page, head.offset), 0);
	/* same basis as asyncQueueUsage(): whole pages between tail and head */
	occupied = (int64) head.page - (int64) tail.page;
	if (CH_ASYNC_PAGE_WRAP > 0 && occupied < 0)
		occupied += CH_ASYNC_PAGE_WRAP;
	/* an exact integer (pages), then a ratio: no precision lost */
	snap->usage = (double) occupied / (double) compat_notify_max_pages();	/* NOLINT(bugprone-integer-division) */
	for (int k = 0; k < n; k++)
		out[k].backlog_bytes = Max(queue_distance(out[k].page, out[k].offset,
												  head.page, head.offset), 0);
	snap->nlisteners = n;
	snap->listeners = out;
}

/* ------------------------------------------------------------------------
 * Progress: when did each listener's position last move?
 * ------------------------------------------------------------------------
 */

/*
 * The collector remembers each listener's position and since when it has
 * not moved; a listener whose position differs from what was remembered (or
 * a new pid in that slot) starts over.
 */
void
ch_notify_track_progress(TimestampTz now)
{
	ChQueueSnapshot snap;
	bool	   *seen;

	ch_notify_queue_read(&snap);
	if (!snap.supported)
		return;

	seen = palloc0(sizeof(bool) * Max(ch_notify->nprogress, 1));
	LWLockAcquire(ch_shared->locks[CH_LOCK_NOTIFY], LW_EXCLUSIVE);
	for (int k = 0; k < snap.nlisteners; k++)
	{
		ChQueueListener *l = &snap.listeners[k];
		ChListenerProgress *p;

		if (l->index < 0 || l->index >= ch_notify->nprogress)
			continue;
		p = &ch_progress[l->index];
		seen[l->index] = true;
		/* a listener that has read everything is not behind */
		if (p->pid != l->pid || p->page != l->page || p->offset != l->offset ||
			l->backlog_bytes == 0)
		{
			p->pid = l->pid;
			p->page = l->page;
			p->offset = l->offset;
			p->since = now;
		}
	}
	for (int i = 0; i < ch_notify->nprogress; i++)
		if (!seen[i])
			ch_progress[i].pid = 0;
	LWLockRelease(ch_shared->locks[CH_LOCK_NOTIFY]);
	pfree(seen);
	if (snap.listeners)
		pfree(snap.listeners);
}

/*
 * Since when the listener's position has not moved, as far as the
 * collector saw; 0 when it has moved since (or was never seen).
 * CH_LOCK_NOTIFY held shared by the caller.
 */
TimestampTz
ch_notify_progress_since(const ChQueueListener *l)
{
	ChListenerProgress *p;

	if (l->index < 0 || l->index >= ch_notify->nprogress)
		return 0;
	p = &ch_progress[l->index];
	if (p->pid != l->pid || p->page != l->page || p->offset != l->offset)
		return 0;
	return p->since;
}
