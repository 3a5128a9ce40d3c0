/*-------------------------------------------------------------------------
 *
 * notify_queue.c
 *	  Reading PostgreSQL's notification queue state: head, tail and every
 *	  listening backend's read position, from async.c's "Async Queue
 *	  Control" struct in shared memory.
 *
 * async.c keeps that struct private, so coder_health reads it through a
 * per-version mirror of its layout (src/pg/async_mirror.h), verified by
 * meaning in the postmaster at startup (notify_readback.c,
 * ch_notify_readback_attach) and checked again at every read for what
 * must hold while the queue runs.  When the mirror is not trusted, the
 * reader falls back to what pg_notification_queue_usage() reports, with
 * supported = false; a read that finds what cannot hold turns the mirror
 * off for every process with one LOG (ch_notify_mirror_off).
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
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "pg/async_mirror.h"
#include "core/coder_health.h"
#include "notify.h"

/* Fallback: PostgreSQL's own whole-page usage figure. */
static void
read_fallback(ChQueueSnapshot *snap)
{
	snap->supported = false;
	snap->usage = DatumGetFloat8(DirectFunctionCall1(pg_notification_queue_usage,
													 (Datum) 0));
	snap->max_bytes = ch_async_max_pages() * BLCKSZ;
	snap->backlog_bytes = (int64) (snap->usage * (double) snap->max_bytes);
}

/*
 * A consistent copy of the queue state.  Listeners are palloc'd in the
 * current memory context.
 */
void
ch_notify_queue_read(ChQueueSnapshot *snap)
{
	int			nentries = ch_async_backend_entries();
	ChAsyncListener *copy;
	ChQueueListener *out;
	int			n;
	ChAsyncQueuePosition head;
	ChAsyncQueuePosition tail;
	const char *why;

	memset(snap, 0, sizeof(*snap));
	if (ch_notify == NULL || !ch_notify->mirror_ok)
	{
		read_fallback(snap);
		return;
	}

	copy = palloc(sizeof(ChAsyncListener) * Max(nentries, 1));
	n = ch_async_read_listeners(copy, nentries, &head, &tail, &why);
	if (n < 0)
	{
		/* what cannot hold does: the mirror is wrong after all */
		pfree(copy);
		ch_notify_mirror_off(why);
		read_fallback(snap);
		return;
	}

	out = palloc(sizeof(ChQueueListener) * Max(n, 1));
	for (int k = 0; k < n; k++)
	{
		out[k].pid = copy[k].pid;
		out[k].dboid = copy[k].dboid;
		out[k].index = copy[k].index;
		out[k].page = copy[k].page;
		out[k].offset = copy[k].offset;
		out[k].backlog_bytes =
			Max(ch_async_byte_distance(copy[k].page, copy[k].offset,
									   head.page, head.offset), 0);
	}
	pfree(copy);

	snap->supported = true;
	snap->max_bytes = ch_async_max_pages() * BLCKSZ;
	snap->head_page = head.page;
	snap->head_offset = head.offset;
	snap->backlog_bytes = Max(ch_async_byte_distance(tail.page, tail.offset,
													 head.page, head.offset), 0);
	/* same basis as asyncQueueUsage(): whole pages between tail and head */
	/* an exact integer (pages), then a ratio: no precision lost */
	snap->usage = (double) ch_async_page_distance(tail.page, head.page) /
		(double) ch_async_max_pages();	/* NOLINT(bugprone-integer-division) */
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
