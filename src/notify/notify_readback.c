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
 * The mirror: async.c's AsyncQueueControl is private.  At startup, in the
 * postmaster, right after PostgreSQL created it and before any backend ran,
 * every field has a known value (head = tail = 0/0, firstListener = -1,
 * every backend slot pid -1, database 0, next -1), so the layout is checked
 * by meaning, not only by size; likewise the SLRU's shared part (slot count,
 * all slots empty, its lock).  If anything disagrees, one LOG says so and
 * notifications are not counted (nothing else changes).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/slru.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "lib/hash64.h"
#include "notify.h"

/* Where async.c's structures are (same addresses in every process). */
static char *async_control = NULL;
static SlruShared notify_slru = NULL;

/* The detected layout of AsyncQueueControl. */
static bool has_stop_page = true;

/* ------------------------------------------------------------------------
 * The mirror's accessors
 * ------------------------------------------------------------------------
 */
static inline ChAsyncQueueControl *
with_stop(void)
{
	return (ChAsyncQueueControl *) async_control;
}

static inline ChAsyncQueueControlNoStop *
without_stop(void)
{
	return (ChAsyncQueueControlNoStop *) async_control;
}

bool
ch_async_control_known(void)
{
	return async_control != NULL;
}

Size
ch_async_control_size(void)
{
	return has_stop_page ? compat_async_control_size(ChAsyncQueueControl) :
		compat_async_control_size(ChAsyncQueueControlNoStop);
}

ChAsyncQueuePosition
ch_async_head(void)
{
	return has_stop_page ? with_stop()->head : without_stop()->head;
}

ChAsyncQueuePosition
ch_async_tail(void)
{
	return has_stop_page ? with_stop()->tail : without_stop()->tail;
}

int
ch_async_first_listener(void)
{
	return has_stop_page ? with_stop()->firstListener :
		without_stop()->firstListener;
}

ChAsyncBackendStatus *
ch_async_backend(int i)
{
	return has_stop_page ? &with_stop()->backend[i] : &without_stop()->backend[i];
}

/* ------------------------------------------------------------------------
 * Startup: find and verify
 * ------------------------------------------------------------------------
 */

/* ShmemInitStruct for an existing struct; NULL (and why) if it refuses. */
static void *
find_struct(const char *name, Size size, char **why)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	void	   *ptr = NULL;
	bool		found = false;

	PG_TRY();
	{
		ptr = ShmemInitStruct(name, size, &found);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		*why = psprintf("%s", edata->message ? edata->message : "error");
		FreeErrorData(edata);
		ptr = NULL;
	}
	PG_END_TRY();
	if (ptr != NULL && !found)
	{
		/* we just made it: PostgreSQL has no such struct */
		*why = psprintf("no shared memory structure \"%s\"", name);
		return NULL;
	}
	return ptr;
}

/* The fields as async.c leaves them at startup, in the detected layout. */
static bool
control_is_pristine(void)
{
	ChAsyncQueuePosition head = ch_async_head();
	ChAsyncQueuePosition tail = ch_async_tail();

	if (head.page != 0 || head.offset != 0 || tail.page != 0 || tail.offset != 0 ||
		ch_async_first_listener() != CH_ASYNC_INVALID_LISTENER)
		return false;
	if (has_stop_page && with_stop()->stopPage != 0)
		return false;
	for (int i = CH_ASYNC_FIRST_INDEX; i < compat_async_backend_entries(); i++)
	{
		ChAsyncBackendStatus *b = ch_async_backend(i);

		if (b->pid != -1 || b->dboid != InvalidOid ||
			b->nextListener != CH_ASYNC_INVALID_LISTENER ||
			b->pos.page != 0 || b->pos.offset != 0)
			return false;
	}
	return true;
}

static bool
slru_is_pristine(SlruShared shared, int nslots)
{
	if (shared->num_slots != nslots)
		return false;
#if PG_VERSION_NUM >= 170000
	if (nslots % CH_SLRU_BANK_SIZE != 0 || nslots == 0)
		return false;
#else
	if (shared->ControlLock != NotifySLRULock)
		return false;
#endif
	for (int s = 0; s < nslots; s++)
		if (shared->page_status[s] != SLRU_PAGE_EMPTY ||
			shared->page_buffer[s] == NULL)
			return false;
	return true;
}

/*
 * Find async.c's structures and, when PostgreSQL has just created them
 * (postmaster startup or crash restart: verify = true), check the mirror by
 * what the fields hold.  Caller holds AddinShmemInitLock.
 */
void
ch_notify_readback_attach(bool verify)
{
	char	   *why = NULL;
	int			nslots = compat_notify_slru_slots();
	void	   *control;
	SlruShared slru;

	/* both layouts have this size on 13..16; 17+ differ by stopPage */
	has_stop_page = true;
	control = find_struct(CH_ASYNC_CONTROL_NAME,
						  compat_async_control_size(ChAsyncQueueControl), &why);
	if (control == NULL &&
		compat_async_control_size(ChAsyncQueueControlNoStop) !=
		compat_async_control_size(ChAsyncQueueControl))
	{
		has_stop_page = false;
		control = find_struct(CH_ASYNC_CONTROL_NAME,
							  compat_async_control_size(ChAsyncQueueControlNoStop),
							  &why);
	}
	slru = control ? find_struct(CH_NOTIFY_SLRU_NAME,
								 SimpleLruShmemSize(nslots, 0), &why) : NULL;
	if (control == NULL || slru == NULL)
	{
		async_control = NULL;
		notify_slru = NULL;
		if (verify)
		{
			ch_notify->readback_ok = false;
			ereport(LOG,
					(errmsg("coder_health does not count notifications: the NOTIFY queue of PostgreSQL %s is not the one it knows",
							PG_VERSION),
					 errdetail("%s", why ? why : "not found")));
		}
		return;
	}
	async_control = control;
	notify_slru = slru;
	if (!verify)
		return;

	/* the layout whose firstListener holds -1 at startup */
	if (has_stop_page && !control_is_pristine())
	{
		has_stop_page = false;
		if (compat_async_control_size(ChAsyncQueueControlNoStop) !=
			compat_async_control_size(ChAsyncQueueControl) || !control_is_pristine())
			has_stop_page = true;
	}
	ch_notify->has_stop_page = has_stop_page;
	ch_notify->readback_ok = control_is_pristine() && slru_is_pristine(slru, nslots);
	ch_notify->written_end_page = 0;
	ch_notify->written_end_offset = 0;
	if (!ch_notify->readback_ok)
		ereport(LOG,
				(errmsg("coder_health does not count notifications: the NOTIFY queue of PostgreSQL %s does not hold what coder_health expects",
						PG_VERSION),
				 errdetail("At startup the queue's head, tail and listener slots, or the %d slots of SLRU \"%s\", were not in their initial state.",
						   nslots, CH_NOTIFY_SLRU_NAME)));
}

/* In a backend: the layout the postmaster found. */
void
ch_notify_readback_adopt(void)
{
	has_stop_page = ch_notify->has_stop_page;
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

static inline void
atomic_max_u64(pg_atomic_uint64 *p, uint64 v)
{
	uint64		cur = pg_atomic_read_u64(p);

	while (v > cur && !pg_atomic_compare_exchange_u64(p, &cur, v))
		;
}

static void
apply_deltas(ReadState *st)
{
	for (int i = 0; i < st->ndeltas; i++)
	{
		FamilyDelta *d = &st->deltas[i];
		ChFamily   *f = &ch_families[d->family];

		pg_atomic_fetch_add_u64(&f->notifications, d->notifications);
		pg_atomic_fetch_add_u64(&f->bytes, d->bytes);
		atomic_max_u64(&f->max_payload, d->max_payload);
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

/* A page evicted from the buffers: read it from its segment file. */
static bool
read_page_from_file(int64 pageno, char *buf)
{
	char		path[MAXPGPATH];
	int64		segno = pageno / SLRU_PAGES_PER_SEGMENT;
	off_t		offset = (off_t) (pageno % SLRU_PAGES_PER_SEGMENT) * BLCKSZ;
	int			fd;
	ssize_t		n;

	snprintf(path, sizeof(path), CH_NOTIFY_SEGMENT_FORMAT,
			 (unsigned long long) segno);
	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return false;
	n = pread(fd, buf, BLCKSZ, offset);
	close(fd);
	return n == BLCKSZ;
}

/*
 * Count our entries on one page between from and to.  -1 when the page is
 * gone, 0 when it made no sense, 1 when read.
 */
static int
read_page(ReadState *st, int64 pageno, int from, int to)
{
	int			first;
	int			last;
	LWLock	   *lock = compat_slru_page_lock(notify_slru, pageno, &first, &last);
	bool		ok = true;
	bool		in_buffers = false;
	static char *filebuf = NULL;

	LWLockAcquire(lock, LW_SHARED);
	for (int s = first; s < last; s++)
	{
		SlruPageStatus status = notify_slru->page_status[s];

		if (notify_slru->page_number[s] == pageno &&
			(status == SLRU_PAGE_VALID || status == SLRU_PAGE_WRITE_IN_PROGRESS))
		{
			in_buffers = true;
			ok = parse_page(st, notify_slru->page_buffer[s], from, to);
			break;
		}
	}
	LWLockRelease(lock);
	if (in_buffers)
		return ok ? 1 : 0;

	if (filebuf == NULL)
		filebuf = MemoryContextAllocExtended(TopMemoryContext, BLCKSZ,
											 MCXT_ALLOC_NO_OOM);
	if (filebuf == NULL || !read_page_from_file(pageno, filebuf))
		return -1;
	return parse_page(st, filebuf, from, to) ? 1 : 0;
}

static inline int64
next_page(int64 page)
{
	page++;
	if (CH_ASYNC_PAGE_WRAP > 0 && page >= CH_ASYNC_PAGE_WRAP)
		page = 0;
	return page;
}

/* Read the entries between start and head; ours are counted. */
static void
read_back(TransactionId xid, int64 page, int offset, ChAsyncQueuePosition head)
{
	ReadState	st;
	int64		distance = (int64) head.page - page;
	static bool malformed_logged = false;
	static bool unread_logged = false;

	/* our entries lie within the queue's capacity behind the head */
	if (CH_ASYNC_PAGE_WRAP > 0 && distance < 0)
		distance += CH_ASYNC_PAGE_WRAP;
	if (distance < 0 || distance > compat_notify_max_pages())
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
		page = next_page(page);
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
	pg_atomic_fetch_add_u64(&sk->bucket[sketch_index(ns)], 1);
	atomic_max_u64(&sk->max_ns, ns);
}

/*
 * XACT_EVENT_COMMIT / XACT_EVENT_ABORT.  A transaction that wrote to the
 * queue has an xid (PreCommit_Notify assigns one) and still holds the
 * NOTIFY lock here; any other returns after one comparison or one lookup
 * in its own lock table.  count: committed, and counting is on.
 */
void
ch_notify_readback_end(bool committed, bool count)
{
	TransactionId xid = GetTopTransactionIdIfAny();
	ChAsyncQueuePosition head;
	int64		start_page;
	int			start_offset;
	bool		timed = commit_started;

	commit_started = false;
	if (!TransactionIdIsValid(xid) || ch_notify == NULL ||
		!ch_notify->readback_ok || async_control == NULL)
		return;

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

	if (!committed || !count)
		return;
	if (timed)
		record_commit_time();
	read_back(xid, start_page, start_offset, head);
}
