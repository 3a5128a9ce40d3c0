/*-------------------------------------------------------------------------
 *
 * latency_timing.c
 *	  Timing statements from inside the backend that runs them: the frame
 *	  of each statement in flight, the executor's part of timing, and the
 *	  per-backend sample ring.
 *
 * What is measured is what log_min_duration_statement measures: the time
 * from the protocol message that started the statement (so parsing,
 * planning and lock waits are included) to its end, including the commit
 * when the statement commits by itself.  For a top-level statement the start
 * is PostgreSQL's own statement timestamp, already taken when the message
 * arrived, so timing costs one clock read per statement (two for an
 * autocommit write, whose commit is timed too).
 *
 * Protocol: each statement in flight has a frame on a small backend-local
 * stack (latency_frame.h).  ch_latency_ExecutorStart pushes it; the
 * ExecutorRun / Finish parts (inline, latency_hooks.h) note where its work
 * ended; the ExecutorEnd part (or latency_utility.c's, for a utility
 * statement) finishes it with ch_finish_frame: it is recorded now, or,
 * when a commit follows at once, it becomes the deferred frame that
 * latency_xact.c ends with the transaction.  A statement that fails is
 * recorded as an error with its time to failure by the (sub)transaction
 * abort callback (latency_xact.c).  src/hooks.c calls these parts around
 * the previous hook, in the order its table gives.
 *
 * Nothing here takes a lock, allocates memory or raises an error: a sample
 * is appended to this backend's ring in shared memory, and at most every
 * CH_FOLD_AFTER_US (or when the ring is half full) the backend *tries* to
 * fold its ring into the shared sketches (latency_store.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/ip.h"
#include "executor/executor.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "tcop/pquery.h"
#include "utils/acl.h"

#include "pg/compat.h"
#include "latency_frame.h"
#include "latency_hooks.h"
#include "lib/hash64.h"
#include "text_query_id.h"

ChFrame		ch_frames[CH_MAX_FRAMES];
int			ch_nframes = 0;

ChFrame		ch_deferred;
bool		ch_have_deferred = false;
bool		ch_deferred_is_rollback = false;
TimestampTz ch_deferred_msg_start = 0;

int			ch_utility_depth = 0;
int			ch_executor_depth = 0;

TimestampTz ch_last_top_end = 0;

ChBackendSlot *ch_my_slot = NULL;
static TimestampTz last_fold = 0;

/* ------------------------------------------------------------------------
 * Samples
 * ------------------------------------------------------------------------
 */


/*
 * Fold this backend's whole ring, waiting for the lock, and for another
 * folder (the collector) to finish, up to max_tries milliseconds.
 */
void
ch_fold_own_ring(int max_tries)
{
	for (int tries = 0; ch_my_slot != NULL && tries < max_tries; tries++)
	{
		if (ch_fold_slot(ch_my_slot, true))
			break;
		pg_usleep(1000L);
	}
}

static void
describe_client(char *buf, size_t len)
{
	if (MyProcPort == NULL)
		strlcpy(buf, "background", len);
	else if (MyProcPort->raddr.addr.ss_family == AF_UNIX)
		strlcpy(buf, "local", len);
	else if (pg_getnameinfo_all(&MyProcPort->raddr.addr, MyProcPort->raddr.salen,
								buf, len, NULL, 0, NI_NUMERICHOST) != 0)
		strlcpy(buf, "unknown", len);
}

ChBackendSlot *
ch_claim_latency_slot(void)
{
	int			n = compat_my_proc_number();
	ChBackendSlot *slot;

	if (ch_slots == NULL || n < 0 || n >= ch_latency->nslots)
		return NULL;
	slot = &ch_slots[n];
	/* the previous owner emptied the ring when it exited */
	slot->dbid = MyDatabaseId;
	describe_client(slot->client_addr, sizeof(slot->client_addr));
	slot->db_scope = -1;
	slot->client_scope = -1;
	/* slot->dropped stays: it counts every owner's losses until reset() */
	pg_write_barrier();
	before_shmem_exit(ch_fold_at_exit, (Datum) 0);
	ch_forget_posted_names();
	return slot;
}

/*
 * The monitoring role: a role that is a member of pg_monitor (not through
 * being superuser), as the exporter's role is.  Looked up when a statement
 * starts with a role other than the last one (the executor runs then, so
 * the catalog may be read), and kept for the session.
 */
static Oid	monitor_role = InvalidOid;
static bool monitor_is_member = false;

static void
note_monitoring_role(void)
{
	Oid			role = GetUserId();

	if (ch_track_monitoring || role == monitor_role)
		return;
	monitor_is_member = !superuser_arg(role) &&
		is_member_of_role_nosuper(role, COMPAT_ROLE_MONITOR);
	monitor_role = role;
}

/*
 * Whether a statement ending now is left out of the statistics: it read
 * coder_health (one of its functions ran: ch_self_read), or the monitoring
 * role ran it without a sqlc name, and coder_health.track_monitoring is off.
 * A DBA's SELECT * FROM coder_health.health or the exporter's scrape must not
 * count against Coder's verdict; but a statement carrying a sqlc name is
 * Coder's whatever role sends it (a Coder database role that was granted
 * pg_monitor must not vanish from the statistics).
 */
bool
ch_excluded_now(uint64 namehash)
{
	if (ch_track_monitoring)
		return false;
	return ch_self_read ||
		(namehash == UINT64CONST(0) && monitor_is_member &&
		 OidIsValid(monitor_role) && monitor_role == GetUserId());
}

static inline void
record_sample(uint64 queryid, uint64 namehash, TimestampTz start,
			  TimestampTz end, bool toplevel, bool error)
{
	uint64		head;
	ChSample   *s;

	if (unlikely(ch_my_slot == NULL))
	{
		ch_my_slot = ch_claim_latency_slot();
		if (ch_my_slot == NULL)
			return;
	}
	head = pg_atomic_read_u64(&ch_my_slot->head);
	if (unlikely(head - pg_atomic_read_u64(&ch_my_slot->tail) >= CH_RING_SIZE))
	{
		pg_atomic_fetch_add_u64(&ch_my_slot->dropped, 1);
		return;
	}
	s = &ch_my_slot->ring[head % CH_RING_SIZE];
	s->queryid = queryid;
	s->namehash = namehash;
	s->duration_ns = end > start ? (uint64) (end - start) * 1000 : 0;
	s->userid = GetUserId();
	s->flags = (toplevel ? CH_SAMPLE_TOPLEVEL : 0) | (error ? CH_SAMPLE_ERROR : 0);
	pg_write_barrier();
	pg_atomic_write_u64(&ch_my_slot->head, head + 1);
}

void
ch_record_sample(bool excluded, uint64 queryid, uint64 namehash,
				 TimestampTz start, TimestampTz end, bool toplevel, bool error)
{
	if (ch_latency_exiting || excluded)
		return;
	record_sample(queryid, namehash, start, end, toplevel, error);
}

void
ch_record_frame_sample(const ChFrame *f, TimestampTz end, bool error)
{
	if (ch_latency_exiting || f->excluded)
		return;
	record_sample(f->queryid, f->namehash, f->start, end, f->toplevel,
				  error);
}

/* maybe_fold's fold, out of line: once per CH_FOLD_THRESHOLD samples */
static pg_noinline void
fold_now(TimestampTz now)
{
	last_fold = now;
	(void) ch_fold_slot(ch_my_slot, false);
}

/*
 * Fold our own ring now and then (half full, or a second since the last
 * fold); never from inside an abort.  Inline for ch_finish_frame, which
 * ends nearly every statement; ch_maybe_fold for latency_utility.c.
 */
static inline void
maybe_fold(TimestampTz now)
{
	uint64		waiting;

	if (unlikely(ch_my_slot == NULL))
		return;
	waiting = pg_atomic_read_u64(&ch_my_slot->head) -
		pg_atomic_read_u64(&ch_my_slot->tail);
	if (unlikely(waiting >= CH_FOLD_THRESHOLD ||
				 (waiting > 0 && now - last_fold >= CH_FOLD_AFTER_US)))
		fold_now(now);
}

void
ch_maybe_fold(TimestampTz now)
{
	maybe_fold(now);
}

/*
 * A portal run again by a later Execute (a row limit): the time between
 * the end of its previous run and this message was the client's.
 */
void
ch_resume_portal(ChFrame *f)
{
	TimestampTz msg = GetCurrentStatementStartTimestamp();

	if (msg > f->end)
	{
		f->start += msg - f->end;
		f->end = 0;
	}
	f->last_msg = msg;
}

/*
 * Fold this backend's samples now, waiting for the lock if need be: for
 * coder_health.flush(), called between statements, never inside a hook.
 */
void
ch_flush_my_samples(void)
{
	ch_fold_own_ring(100);
	last_fold = GetCurrentTimestamp();
}


/* ------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------
 */

/*
 * What a statement's text gives it: coder_health's own id (0 until asked
 * for) and its sqlc name's hash, for the texts this backend saw last.  A
 * client sends the same texts again and again (sqlc's statements, as
 * prepared statements or re-parsed each time), and hashing a text as it is
 * costs a fraction of normalizing it or parsing its name.  Keyed by a hash
 * of everything the id and the name are read from (from statement_head to
 * the statement's end); direct-mapped; both are functions of that text
 * alone, so nothing ever invalidates an entry.  (A different text with the
 * same 64-bit hash would take the other's id and name: as likely as two
 * statements sharing a core query id.)
 */
#define CH_TEXT_CACHE 512
#define CH_TEXT_KEY_SEED UINT64CONST(0x746578745f6b6579)

typedef struct ChTextInfo
{
	uint64		key;
	uint64		id;				/* 0: not computed yet */
	uint64		namehash;		/* 0: no name */
	bool		filled;
} ChTextInfo;

static ChTextInfo text_cache[CH_TEXT_CACHE];

static pg_noinline const ChTextInfo *
text_info(const char *text, int location, int len, bool need_id)
{
	long		span;
	const char *head;
	int			n;
	uint64		key;
	ChTextInfo *e;

	if (location < 0)
	{
		/* unknown location: the id reads the whole string */
		head = text;
		n = (int) strlen(text);
	}
	else
	{
		head = ch_statement_head(text, location, len, &span);
		n = span >= 0 ? (int) span : (int) strlen(head);
	}
	key = hash64_key(head, n, CH_TEXT_KEY_SEED);
	e = &text_cache[key % CH_TEXT_CACHE];
	if (!e->filled || e->key != key)
	{
		e->key = key;
		e->id = UINT64CONST(0);
		e->namehash = ch_statement_may_be_named(text, location, len) ?
			ch_statement_namehash(text, location, len) : UINT64CONST(0);
		e->filled = true;
	}
	if (need_id && e->id == UINT64CONST(0))
		e->id = ch_normalized_query_id_uncached(text, location, len);
	return e;
}

/*
 * A statement starts.  queryid is core's (0 when core computed none: then
 * coder_health's own id from the statement's text, text_query_id.c; core's
 * query id is never written).
 */
ChFrame *
ch_push_frame(QueryDesc *query, uint64 queryid, const char *text,
			  int location, int len)
{
	ChFrame    *f;
	uint64		namehash = UINT64CONST(0);

	/*
	 * A client's statement runs in a portal; statements that run when none
	 * is active are part of something else: deferred triggers (a foreign
	 * key's check) fired by the commit are the COMMIT's, or the autocommit
	 * statement's, not statements of their own.
	 */
	bool		toplevel = (ch_running_depth() == 0 && ActivePortal != NULL);

	/* a new client statement: whether it reads coder_health is its own */
	if (toplevel)
		ch_self_read = false;
	if (ch_nframes >= CH_MAX_FRAMES || !ch_tracking(toplevel))
		return NULL;
	if (text != NULL &&
		(queryid == UINT64CONST(0) ||
		 (ch_query_names && ch_statement_may_be_named(text, location, len))))
	{
		const ChTextInfo *t = text_info(text, location, len,
										queryid == UINT64CONST(0));

		if (queryid == UINT64CONST(0))
			queryid = t->id;
		namehash = t->namehash;
	}
	if (queryid == UINT64CONST(0))
		return NULL;
	/* a session's first statement claims its slot inside its own time, as
	 * the log counts it (not after its end is read) */
	if (ch_my_slot == NULL)
		ch_my_slot = ch_claim_latency_slot();
	f = &ch_frames[ch_nframes++];
	f->query = query;
	f->queryid = queryid;
	f->namehash = ch_query_names ? namehash : UINT64CONST(0);
	f->toplevel = toplevel;
	f->end = 0;
	f->xact_level = GetCurrentTransactionNestLevel();
	f->select_like = false;
	f->text = text;
	f->text_location = location;
	f->text_len = len;
	f->last_msg = GetCurrentStatementStartTimestamp();
	f->excluded = false;
	if (toplevel)
	{
		/* started when its message arrived, or when the previous statement
		 * of the same query string ended */
		f->start = Max(f->last_msg, ch_last_top_end);
	}
	else
		f->start = GetCurrentTimestamp();
	return f;
}

void
ch_remove_frame(ChFrame *f)
{
	int			i = (int) (f - ch_frames);

	if (i < ch_nframes - 1)
		memmove(&ch_frames[i], &ch_frames[i + 1],
				sizeof(ChFrame) * (ch_nframes - 1 - i));
	ch_nframes--;
}

/*
 * The deferred statement of an earlier message of the same implicit
 * transaction (a pipeline before its Sync) completed: it ended at the
 * latest where the statement f, ending now, began.  Out of line: rare.
 */
static pg_noinline void
end_pipelined_deferred(const ChFrame *f)
{
	ch_record_frame_sample(&ch_deferred,
						   ch_deferred.end ? ch_deferred.end :
						   Max(f->start, ch_deferred.start),
						   false);
	ch_have_deferred = false;
}

/*
 * A statement's work is done.  If a commit follows at once, the statement
 * ends with it (the commit is part of what the client waits for); otherwise
 * it ends now.
 */
void
ch_finish_frame(ChFrame *f, bool commit_follows, bool is_rollback)
{
	ChFrame		done;

	f->excluded = ch_excluded_now(f->namehash);
	if (f->toplevel)
	{
		TimestampTz msg = GetCurrentStatementStartTimestamp();

		ch_self_read = false;
		/*
		 * Several statements pipelined before one Sync share a transaction:
		 * the earlier one ended at the latest where this one began.  Its
		 * sample goes before this one's name, so a fold for the name finds
		 * its entry.
		 */
		if (commit_follows && unlikely(ch_have_deferred))
			end_pipelined_deferred(f);
		/*
		 * A SELECT whose portal is dropped by a later message (the next Bind
		 * of a pipeline) finished its work before that message began.
		 */
		if (f->end == 0 && f->last_msg != msg)
			f->end = Max(msg, f->start);
	}
	if (unlikely(ch_my_slot == NULL))
		ch_my_slot = ch_claim_latency_slot();
	/* no name note for a statement that is not timed: it would wait for an
	 * entry that never comes */
	if (!f->excluded)
		ch_note_name(f, true);
	if (f->toplevel && commit_follows)
	{
		ch_deferred = *f;
		ch_remove_frame(f);
		ch_have_deferred = true;
		ch_deferred_is_rollback = is_rollback;
		ch_deferred_msg_start = ch_deferred.last_msg;
		/*
		 * Fold now and then here too: most client statements take this
		 * path.  No clock was read; the statement's own start time is close
		 * enough for "every second".
		 */
		maybe_fold(ch_deferred.start);
		return;
	}
	done = *f;
	ch_remove_frame(f);
	/*
	 * Our own work (a fold: a new statement's entry) before the clock is
	 * read: the client waits for it, and the log counts it.
	 */
	maybe_fold(done.start);
	ch_touch_next_sample();
	if (done.end == 0)
		done.end = GetCurrentTimestamp();
	ch_record_frame_sample(&done, done.end, false);
	if (done.toplevel)
		ch_last_top_end = done.end;
}

/* ------------------------------------------------------------------------
 * ExecutorStart's part (src/hooks.c calls it before the previous hook;
 * the parts around ExecutorRun, Finish and End are in latency_hooks.h)
 * ------------------------------------------------------------------------
 */

/* Before the previous ExecutorStart: the statement's frame. */
void
ch_latency_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	ChFrame    *f;

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0)
		return;
	if (ch_tracking(true))
		note_monitoring_role();
	f = ch_push_frame(queryDesc, (uint64) queryDesc->plannedstmt->queryId,
					  queryDesc->sourceText,
					  queryDesc->plannedstmt->stmt_location,
					  queryDesc->plannedstmt->stmt_len);

	/* a plain SELECT's work ends with its last ExecutorRun; a portal may
	 * run Finish/End much later (at the next Bind or at commit) */
	if (f)
		f->select_like = queryDesc->operation == CMD_SELECT &&
			!queryDesc->plannedstmt->hasModifyingCTE;
}

/*
 * _PG_init (module latency's preload): what statement timing asks of
 * PostgreSQL besides hooks, which src/hooks.c installs.
 */
void
ch_latency_preload(void)
{
	ch_text_query_id_request();
	ch_latency_prepare_buckets();
}
