/*-------------------------------------------------------------------------
 *
 * notify_readback.c
 *	  Counting notifications exactly by reading back, at commit, the
 *	  entries the committing backend itself put into PostgreSQL's NOTIFY
 *	  queue; and the verified mirror of the queue's private control struct.
 *
 * Why this is exact (docs/notify.md says it for users):
 *
 * PreCommit_Notify (async.c) takes a heavyweight lock on "database 0"
 * (LockSharedObject(DatabaseRelationId, InvalidOid, 0, AccessExclusiveLock))
 * before it appends the transaction's notifications to the queue, and holds
 * it until the transaction's locks are released, after the XACT_EVENT_COMMIT
 * (or XACT_EVENT_ABORT) callbacks.  So:
 *   - whoever holds that lock at its commit callback has just written
 *     queue entries; nobody else can have appended anything since;
 *   - the entries of one holder follow those of the previous holder, so
 *     "where the previous holder's entries ended" (written_end, kept in our
 *     shared memory and touched only by the lock's holder) is where ours
 *     begin, and the queue head is where they end;
 *   - each entry carries the writer's xid, database and pid, so only our
 *     own entries are counted even if written_end were behind.
 * The entries are what PostgreSQL delivers: one per distinct (channel,
 * payload) of the committed transaction, after rolled-back subtransactions,
 * whatever sent them (NOTIFY, pg_notify from a client, PL/pgSQL, a trigger,
 * a rule, a view, a SQL function, inlined or not).  Nothing on the
 * statement path is touched.
 *
 * Truncation: the queue's tail can pass our entries once our xid is no
 * longer running (a listener that read them, or none listening), and
 * SimpleLruTruncate removes whole segments before the tail's segment.  The
 * segment holding the head is never removed, so only a transaction whose
 * entries span a segment boundary (32 pages) can lose its first pages,
 * and only if the tail crosses that boundary in the microseconds between
 * ProcArrayEndTransaction and our callback.  A page that is neither in the
 * SLRU buffers nor in its segment file is not guessed at: it is counted in
 * ch_notify->unread_pages and logged (once per process).
 *
 * Reading: a page is looked for in the SLRU buffers under the SLRU's lock
 * in shared mode (the bank's lock from 17 on), which keeps a valid page
 * from being replaced while its entries are parsed; a page written out and
 * evicted (a transaction of more pages than there are buffers) is read from
 * its segment file with pread.  Nothing here raises an ERROR (this runs
 * after the commit record): sizes and lengths are checked as they are read,
 * and a malformed entry stops the reading with one LOG.
 *
 * The mirror: async.c's AsyncQueueControl is private; src/pg/async_mirror.c
 * finds it and, in the postmaster at startup, verifies coder_health's
 * mirror of it by what its fields hold.  If anything disagrees then or
 * later (ch_notify_mirror_off), one LOG says so and the NOTIFY features
 * that read PostgreSQL's queue turn off: notifications are not counted and
 * the queue views fall back to pg_notification_queue_usage(); nothing else
 * changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/lock.h"
#include "storage/lwlock.h"

#include "pg/async_mirror.h"
#include "pg/compat.h"
#include "core/coder_health.h"
#include "lib/hash64.h"
#include "notify.h"

/* ------------------------------------------------------------------------
 * Startup: the mirror of async.c's queue
 * ------------------------------------------------------------------------
 */

/*
 * The NOTIFY features that read PostgreSQL's queue stop trusting the
 * mirror: one LOG per server says why.  Called at startup when the mirror
 * does not verify, and by a reader that finds what cannot hold
 * (notify_queue.c).  Once off, off until the server restarts.
 */
void
ch_notify_mirror_off(const char *why)
{
	ch_notify->mirror_ok = false;
	if (pg_atomic_exchange_u32(&ch_notify->mirror_off_logged, 1) == 0)
		ereport(LOG,
				(errmsg("coder_health does not read the NOTIFY queue of PostgreSQL %s: notifications are not counted and per-listener backlog is not shown",
						PG_VERSION),
				 errdetail("%s.", why)));
}

/*
 * Find async.c's structures: when PostgreSQL has just created them
 * (postmaster startup or crash restart: verify = true), verify the mirror
 * by what the fields hold; otherwise (EXEC_BACKEND) find them again in the
 * layout the postmaster verified.  Caller holds AddinShmemInitLock.
 */
void
ch_notify_readback_attach(bool verify)
{
	const char *why;

	if (!verify)
	{
		if (ch_notify->mirror_ok &&
			!ch_async_mirror_attach(ch_notify->has_stop_page))
			ch_notify_mirror_off("The NOTIFY queue was not found again in a new process");
		return;
	}
	pg_atomic_init_u32(&ch_notify->mirror_off_logged, 0);
	ch_notify->written_end_page = 0;
	ch_notify->written_end_offset = 0;
	ch_notify->mirror_ok = true;
	why = ch_async_mirror_verify();
	ch_notify->has_stop_page = ch_async_mirror_has_stop_page();
	if (why != NULL)
		ch_notify_mirror_off(why);
}

/* ------------------------------------------------------------------------
 * Commit: read back this transaction's entries
 * ------------------------------------------------------------------------
 */
static instr_time commit_start;
static bool commit_started = false;

/* Whether this backend holds the lock PreCommit_Notify takes to write. */
static inline bool
holds_notify_lock(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, InvalidOid, 0);
	return compat_lock_held_by_me(&tag, AccessExclusiveLock);
}

/* What one transaction's entries add to each family. */
typedef struct FamilyDelta
{
	uint32		family;
	uint64		notifications;
	uint64		bytes;
	uint64		max_payload;
} FamilyDelta;

#define MAX_DELTAS 16

typedef struct ReadState
{
	TransactionId xid;
	FamilyDelta deltas[MAX_DELTAS];
	int			ndeltas;
	uint64		counted;
	TimestampTz now;
	/* the previous entry's channel and family: Coder repeats channels */
	char		last_channel[NAMEDATALEN];
	int			last_len;
	uint32		last_family;
} ReadState;

static void
apply_deltas(ReadState *st)
{
	for (int i = 0; i < st->ndeltas; i++)
	{
		FamilyDelta *d = &st->deltas[i];
		ChFamily   *f = &ch_families[d->family];

		pg_atomic_fetch_add_u64(&f->notifications, d->notifications);
		pg_atomic_fetch_add_u64(&f->bytes, d->bytes);
		ch_atomic_max_u64(&f->max_payload, d->max_payload);
		pg_atomic_write_u64(&f->last_notify_at, (uint64) st->now);
	}
	st->ndeltas = 0;
}

static void
count_entry(ReadState *st, const char *channel, int chlen, int payload_len)
{
	uint32		family;
	int			k;

	if (chlen == st->last_len && memcmp(st->last_channel, channel, chlen) == 0)
		family = st->last_family;
	else
	{
		family = ch_family_of_channel(channel, chlen);
		memcpy(st->last_channel, channel, chlen);
		st->last_len = chlen;
		st->last_family = family;
	}
	ch_hll_add(&ch_families[family], hash64_bytes(channel, chlen, 0));

	for (k = 0; k < st->ndeltas; k++)
		if (st->deltas[k].family == family)
			break;
	if (k == st->ndeltas)
	{
		if (st->ndeltas == MAX_DELTAS)
			apply_deltas(st);
		k = st->ndeltas++;
		st->deltas[k].family = family;
		st->deltas[k].notifications = 0;
		st->deltas[k].bytes = 0;
		st->deltas[k].max_payload = 0;
	}
	st->deltas[k].notifications++;
	st->deltas[k].bytes += payload_len;
	st->deltas[k].max_payload = Max(st->deltas[k].max_payload, (uint64) payload_len);
	st->counted++;
}

/*
 * Parse the entries of one page from offset from up to offset to (BLCKSZ:
 * to the page's end).  False when an entry makes no sense.
 */
static bool
parse_page(ReadState *st, const char *page, int from, int to)
{
	int			off = from;

	while (off < to)
	{
		ChAsyncQueueEntryHeader hdr;
		const char *data;
		int			datalen;
		int			chlen;

		if (off + (int) CH_ASYNC_ENTRY_EMPTY_SIZE > BLCKSZ)
			break;				/* no room for an entry: the page ends */
		memcpy(&hdr, page + off, sizeof(hdr));
		if (hdr.length < (int) CH_ASYNC_ENTRY_EMPTY_SIZE ||
			off + hdr.length > BLCKSZ || hdr.length % sizeof(int) != 0)
			return false;
		data = page + off + sizeof(hdr);
		datalen = hdr.length - (int) sizeof(hdr);
		if (hdr.xid == st->xid && hdr.dboid == MyDatabaseId &&
			hdr.srcPid == MyProcPid)
		{
			const char *payload;

			chlen = (int) strnlen(data, Min(datalen, NAMEDATALEN));
			if (chlen >= datalen || chlen >= NAMEDATALEN)
				return false;
			payload = data + chlen + 1;
			count_entry(st, data, chlen,
						(int) strnlen(payload, datalen - chlen - 1));
		}
		off += hdr.length;
		/* async.c moves to the next page when no empty entry fits */
		if (off + (int) CH_ASYNC_QUEUEALIGN(CH_ASYNC_ENTRY_EMPTY_SIZE) > BLCKSZ)
			break;
	}
	return true;
}

/* One page's entries, for ch_async_with_page. */
typedef struct PageRead
{
	ReadState  *st;
	int			from;
	int			to;
} PageRead;

static bool
parse_page_cb(void *arg, const char *page)
{
	PageRead   *pr = (PageRead *) arg;

	return parse_page(pr->st, page, pr->from, pr->to);
}

/*
 * Count our entries on one page between from and to.  -1 when the page is
 * gone, 0 when it made no sense, 1 when read.
 */
static int
read_page(ReadState *st, int64 pageno, int from, int to)
{
	PageRead	pr = {.st = st,.from = from,.to = to};

	return ch_async_with_page(pageno, parse_page_cb, &pr);
}

/* Read the entries between start and head; ours are counted. */
static void
read_back(TransactionId xid, int64 page, int offset, ChAsyncQueuePosition head)
{
	ReadState	st;
	int64		distance = ch_async_page_distance(page, head.page);
	static bool malformed_logged = false;
	static bool unread_logged = false;

	/* our entries lie within the queue's capacity behind the head */
	if (distance < 0 || distance > ch_async_max_pages())
	{
		pg_atomic_fetch_add_u64(&ch_notify->unread_pages, 1);
		return;
	}

	/* no memset: the deltas are filled as families are met */
	st.xid = xid;
	st.ndeltas = 0;
	st.counted = 0;
	st.last_len = -1;
	st.last_family = CH_FAMILY_OTHER;
	st.now = GetCurrentTransactionStopTimestamp();

	for (;;)
	{
		bool		last = (page == (int64) head.page);
		int			r;

		if (last && offset >= head.offset)
			break;
		r = read_page(&st, page, offset, last ? head.offset : BLCKSZ);
		if (r < 0)
		{
			if (!unread_logged)
				ereport(LOG,
						(errmsg("coder_health could not read back NOTIFY queue page " INT64_FORMAT ": its notifications are not counted",
								page),
						 errdetail("The page was neither in the SLRU buffers nor in its segment file (truncated after every listener had read it).")));
			unread_logged = true;
			pg_atomic_fetch_add_u64(&ch_notify->unread_pages, 1);
		}
		else if (r == 0)
		{
			if (!malformed_logged)
				ereport(LOG,
						(errmsg("coder_health stopped reading back NOTIFY queue page " INT64_FORMAT ": an entry is not in the expected format",
								page)));
			malformed_logged = true;
			pg_atomic_fetch_add_u64(&ch_notify->unread_pages, 1);
			break;
		}
		if (last)
			break;
		page = ch_async_next_page(page);
		offset = 0;
	}
	apply_deltas(&st);
}

/* XACT_EVENT_PRE_COMMIT: the commit starts (the NOTIFY lock not yet taken). */
void
ch_notify_readback_pre_commit(void)
{
	INSTR_TIME_SET_CURRENT(commit_start);
	commit_started = true;
}

static void
record_commit_time(void)
{
	instr_time	end;
	uint64		ns;
	ChAtomicSketch *sk;

	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, commit_start);
	ns = compat_instr_time_ns(end);
	sk = &ch_notify->commit_window[pg_atomic_read_u64(&ch_notify->snap_step) %
								   CH_NOTIFY_WINDOWS];
	ch_atomic_sketch_add(sk, ns);
}

/*
 * The part of a commit or abort that may have written to the queue, out of
 * line: the lock-table lookup's tag and the read-back's buffers stay off
 * the path of every other transaction (no frame to set up, no stack check).
 */
static pg_noinline void
readback_written(TransactionId xid, bool committed, bool timed)
{
	ChAsyncQueuePosition head;
	int64		start_page;
	int			start_offset;

	/*
	 * A writer that did not notify, spared its lock-table lookup: had this
	 * transaction written entries, the head would be past written_end (only
	 * the lock's holder moves either, and written_end is where the holder
	 * before us left it).  A head read while another backend writes may be
	 * stale or torn; then it differs, and the lookup decides.
	 */
	head = ch_async_head();
	if (head.page == ch_notify->written_end_page &&
		head.offset == ch_notify->written_end_offset)
		return;
	if (!holds_notify_lock())
		return;

	/*
	 * While we hold the lock nobody but us moves the head (asyncQueueAddEntries
	 * runs only under it; the tail moves, the head does not), and it was
	 * this process that wrote it: read without NotifyQueueLock.  written_end
	 * is touched only by the lock's holder.  Read it again now that we know.
	 */
	head = ch_async_head();
	start_page = ch_notify->written_end_page;
	start_offset = ch_notify->written_end_offset;
	ch_notify->written_end_page = head.page;
	ch_notify->written_end_offset = head.offset;

	/* counted: committed, with tracking on (not in a parallel worker) */
	if (!committed || !ch_track_notify || IsParallelWorker())
		return;
	if (timed)
		record_commit_time();
	read_back(xid, start_page, start_offset, head);
}

/*
 * XACT_EVENT_COMMIT / XACT_EVENT_ABORT.  A transaction that wrote to the
 * queue has an xid (PreCommit_Notify assigns one) and still holds the
 * NOTIFY lock here; any other returns after one comparison (no xid: every
 * read-only transaction, one call) or one lookup in its own lock table.
 */
void
ch_notify_readback_end(bool committed)
{
	TransactionId xid = GetTopTransactionIdIfAny();
	bool		timed = commit_started;

	commit_started = false;
	if (!TransactionIdIsValid(xid) || ch_notify == NULL ||
		!ch_notify->mirror_ok)
		return;
	readback_written(xid, committed, timed);
}
