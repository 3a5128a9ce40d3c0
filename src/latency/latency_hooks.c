/*-------------------------------------------------------------------------
 *
 * latency_hooks.c
 *	  Timing statements from inside the backend that runs them.
 *
 * What is measured is what log_min_duration_statement measures: the time
 * from the protocol message that started the statement (so parsing,
 * planning and lock waits are included) to its end, including the commit
 * when the statement commits by itself.  For a top-level statement the start
 * is PostgreSQL's own statement timestamp, already taken when the message
 * arrived, so timing costs one clock read per statement (two for an
 * autocommit write, whose commit is timed too).
 *
 * Each statement in flight has a frame on a small backend-local stack.  A
 * frame ends at ExecutorEnd / the end of ProcessUtility, or, if the
 * statement fails, in the (sub)transaction abort callback, which records it
 * as an error with its time to failure (a statement_timeout is a tail event
 * the caller waited for).
 *
 * Nothing here takes a lock, allocates memory or raises an error: a sample
 * is appended to this backend's ring in shared memory, and at most every
 * CH_FOLD_AFTER_US (or when the ring is half full) the backend *tries* to
 * fold its ring into the shared sketches (latency_store.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "common/ip.h"
#include "executor/executor.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "tcop/pquery.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/elog.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "latency.h"
#include "lib/hash64.h"
#include "lib/statement_text.h"
#include "text_query_id.h"

/* Deeper nesting than this is not timed (and counted nowhere: it is
 * function-internal detail of a statement that is timed). */
#define CH_MAX_FRAMES 32

typedef struct ChFrame
{
	QueryDesc  *query;			/* NULL for a utility statement */
	uint64		queryid;
	uint64		namehash;		/* its sqlc name's hash, 0 = none */
	TimestampTz start;
	TimestampTz end;			/* 0 until the statement's work is done */
	int			xact_level;		/* transaction nest level at start */
	bool		toplevel;
	bool		select_like;	/* work ends with ExecutorRun, not Finish */
	const char *text;			/* the query string, valid until the end */
	int			text_location;	/* this statement's part of it */
	int			text_len;		/* 0: to the end of the string */
	TimestampTz last_msg;		/* statement_timestamp() when it last ran */
	bool		excluded;		/* a read of coder_health or by the monitoring
								 * role: not timed (set when it ends) */
} ChFrame;

static ChFrame frames[CH_MAX_FRAMES];
static int	nframes = 0;

/*
 * A top-level statement whose commit follows at once (autocommit, COMMIT,
 * ROLLBACK): it ends when the transaction does.
 */
static ChFrame deferred;
static bool have_deferred = false;
static bool deferred_is_rollback = false;
/* statement_timestamp() of the message that ran the deferred statement */
static TimestampTz deferred_msg_start = 0;

/* A SAVEPOINT or ROLLBACK TO whose subtransaction has yet to start */
static ChFrame subxact_frame;
static bool have_subxact_frame = false;

/*
 * statement_timestamp() of the message of the last top-level ROLLBACK / ROLLBACK
 * TO, tracked or not: the (sub)transaction abort that follows it in the
 * same message is what the user asked for, not a failure.  Cleared by the
 * abort it announces (ROLLBACK TO of an already failed savepoint: by the
 * subtransaction that starts instead).
 */
static TimestampTz rollback_msg = 0;
static bool rollback_is_to_savepoint = false;

/* At backend exit, after this backend's last fold: record nothing more. */
static bool exiting = false;

/*
 * Statements started now are nested when we are inside ExecutorRun/Finish
 * or ProcessUtility.  Utility depth is kept with PG_TRY (utility statements
 * are rare and costly anyway).  Executor depth is not, to keep PG_TRY off
 * every statement: an error that leaves ExecutorRun early is restored where
 * it lands, by the abort callback (0), by a subtransaction abort (the depth
 * saved when that subtransaction started: PL/pgSQL exception blocks), and,
 * as a safety net, by a commit outside any utility statement (only CALL and
 * DO can commit mid-statement, and they are utility statements).
 */
static int	utility_depth = 0;
static int	executor_depth = 0;

#define CH_DEPTH_LEVELS 64
static int	executor_depth_at_level[CH_DEPTH_LEVELS];

#define running_depth() (utility_depth + executor_depth)

/* End of the previous top-level statement of this backend: in a
 * multi-statement query string, the next one starts there. */
static TimestampTz last_top_end = 0;

/*
 * Statements this backend has already posted a sqlc name and text for,
 * keyed by (queryid, name hash, role, toplevel): a direct-mapped cache, so
 * the common case is one compare per statement.  A collision only means
 * posting again.  The name itself is part of the statement's identity and
 * is read from each statement's own text (query_name_parse stops at the
 * first character that is not the marker, so an unnamed statement costs a
 * few compares); the cache never answers one text with another text's name.
 */
#define CH_NAMED_CACHE 1024
static uint64 named_cache[CH_NAMED_CACHE];
/* ch_latency->forgets when named_cache was last emptied: entries removed
 * since (reset, eviction) come back without a name or text unless posted
 * again */
static uint64 named_cache_forgets = 0;

/* This backend's slot, set up at its first sample. */
static ChBackendSlot *my_slot = NULL;
static TimestampTz last_fold = 0;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* ------------------------------------------------------------------------
 * Samples
 * ------------------------------------------------------------------------
 */

/*
 * Fold this backend's whole ring, waiting for the lock, and for another
 * folder (the collector) to finish, up to max_tries milliseconds.
 */
static void
fold_own_ring(int max_tries)
{
	for (int tries = 0; my_slot != NULL && tries < max_tries; tries++)
	{
		if (ch_fold_slot(my_slot, true))
			break;
		pg_usleep(1000L);
	}
}

static void fail_frames_from(int first, TimestampTz now);
static void end_subxact_frame(bool failed);
static void record(bool excluded, uint64 queryid, uint64 namehash, TimestampTz start,
				   TimestampTz end, bool toplevel, bool error);

static void
fold_at_exit(int code, Datum arg)
{
	/*
	 * This runs before the transaction is aborted at exit (callbacks run in
	 * reverse order of registration, and PostgreSQL's own was registered
	 * first): statements still running were cut short by the exit
	 * (pg_terminate_backend, a lost client).  They failed.
	 */
	if (have_subxact_frame)
		end_subxact_frame(true);
	if (have_deferred || nframes > 0)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (have_deferred)
			record(deferred.excluded, deferred.queryid, deferred.namehash, deferred.start, now,
				   true, true);
		have_deferred = false;
		fail_frames_from(0, now);
	}
	/* leave nothing behind for the next owner of the slot */
	fold_own_ring(1000);
	exiting = true;
}

/* The client address as text: what identifies a Coder Server. */
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

static ChBackendSlot *
claim_slot(void)
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
	before_shmem_exit(fold_at_exit, (Datum) 0);
	memset(named_cache, 0, sizeof(named_cache));
	named_cache_forgets = pg_atomic_read_u64(&ch_latency->forgets);
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
static bool
excluded_now(uint64 namehash)
{
	if (ch_track_monitoring)
		return false;
	return ch_self_read ||
		(namehash == UINT64CONST(0) && monitor_is_member &&
		 OidIsValid(monitor_role) && monitor_role == GetUserId());
}

static void
record(bool excluded, uint64 queryid, uint64 namehash, TimestampTz start,
	   TimestampTz end, bool toplevel, bool error)
{
	uint64		head;
	ChSample   *s;

	if (exiting || excluded)
		return;
	if (my_slot == NULL)
	{
		my_slot = claim_slot();
		if (my_slot == NULL)
			return;
	}
	head = pg_atomic_read_u64(&my_slot->head);
	if (head - pg_atomic_read_u64(&my_slot->tail) >= CH_RING_SIZE)
	{
		pg_atomic_fetch_add_u64(&my_slot->dropped, 1);
		return;
	}
	s = &my_slot->ring[head % CH_RING_SIZE];
	s->queryid = queryid;
	s->namehash = namehash;
	s->duration_ns = end > start ? (uint64) (end - start) * 1000 : 0;
	s->userid = GetUserId();
	s->flags = (toplevel ? CH_SAMPLE_TOPLEVEL : 0) | (error ? CH_SAMPLE_ERROR : 0);
	pg_write_barrier();
	pg_atomic_write_u64(&my_slot->head, head + 1);
}

/*
 * Write to the ring entry the next sample will take, before the clock that
 * ends a statement is read.  A backend's first write to a page of shared
 * memory faults the page in (fork does not copy those mappings), once per
 * 128 samples: after the clock it was time the log counted and we did not
 * (12 to 115 us seen on a busy virtual machine).  The entry is not
 * published (head is not moved); when the ring is full it may be a
 * folder's to read, and the sample will be dropped anyway.
 */
static inline void
touch_next_sample(void)
{
	uint64		head;

	if (my_slot == NULL)
		return;
	head = pg_atomic_read_u64(&my_slot->head);
	if (head - pg_atomic_read_u64(&my_slot->tail) < CH_RING_SIZE)
		my_slot->ring[head % CH_RING_SIZE].flags = 0;
}

/* Fold our own ring now and then; never from inside an abort. */
static void
maybe_fold(TimestampTz now)
{
	uint64		waiting;

	if (my_slot == NULL)
		return;
	waiting = pg_atomic_read_u64(&my_slot->head) -
		pg_atomic_read_u64(&my_slot->tail);
	if (waiting >= CH_FOLD_THRESHOLD ||
		(waiting > 0 && now - last_fold >= CH_FOLD_AFTER_US))
	{
		last_fold = now;
		(void) ch_fold_slot(my_slot, false);
	}
}

/*
 * Fold this backend's samples now, waiting for the lock if need be: for
 * coder_health.flush(), called between statements, never inside a hook.
 */
void
ch_flush_my_samples(void)
{
	fold_own_ring(100);
	last_fold = GetCurrentTimestamp();
}

/*
 * Post "queryid is called name and reads <text>" for the fold; false when
 * the ring is full.  The text is the statement's as statement_text.c shows
 * it (no constants), cut to CH_TEXT_LEN at a character boundary.
 */
static bool
post_name(const ChFrame *f, const char *name, bool may_fold)
{
	uint64		head = pg_atomic_read_u64(&my_slot->note_head);
	ChNameNote *note;
	const char *src;
	int			len;
	int			n;
	bool		truncated;

	/*
	 * A few places are kept for statements that fail (their note is posted
	 * from the abort, which cannot fold): a statement that times out right
	 * after a burst of new ones still gets its name.
	 */
	uint64		limit = may_fold ? CH_NAME_NOTES_POST_LIMIT : CH_NAME_NOTES;

	/*
	 * Full: a session that runs many new statements at once.  Their samples
	 * are in the ring before this note, so a fold (only ever trying the
	 * lock, as maybe_fold does) creates their entries and takes their notes.
	 */
	if (head - pg_atomic_read_u64(&my_slot->note_tail) >= limit && may_fold)
		(void) ch_fold_slot(my_slot, false);
	if (head - pg_atomic_read_u64(&my_slot->note_tail) >= limit)
		return false;
	note = &my_slot->notes[head % CH_NAME_NOTES];
	note->queryid = f->queryid;
	note->namehash = f->namehash;
	note->userid = GetUserId();
	note->toplevel = f->toplevel;
	note->encoding = GetDatabaseEncoding();
	strlcpy(note->name, name, QUERY_NAME_LEN);
	note->text[0] = '\0';
	if (f->text != NULL)
	{
		/* the span as RawStmt gives it: len <= 0 to the end, location < 0
		 * the whole string */
		src = f->text + Max(f->text_location, 0);
		len = f->text_len > 0 && f->text_location >= 0 ?
			f->text_len : (int) strlen(src);
		n = statement_text_display(src, len, note->text, CH_TEXT_LEN,
								   &truncated);
		if (truncated)
		{
			n = pg_mbcliplen(note->text, n, CH_TEXT_LEN - 4);
			memcpy(note->text + n, "...", 4);
		}
	}
	pg_write_barrier();
	pg_atomic_write_u64(&my_slot->note_head, head + 1);
	return true;
}

/*
 * Where the text of the statement at text[location .. location + len)
 * starts, with *span its length (-1: to the end of the string).  The sqlc
 * marker is a comment before the statement.  PostgreSQL 18 starts a
 * statement's location after its leading comments (17 and older at the end
 * of the previous statement), so look back to the previous ';' or the start
 * of the string: only whitespace and comments lie between.
 */
static inline const char *
statement_head(const char *text, int location, int len, long *span)
{
	int			start = Max(location, 0);

	while (start > 0 && text[start - 1] != ';')
		start--;
	*span = len > 0 ? len + (Max(location, 0) - start) : -1;
	return text + start;
}

/*
 * The sqlc name of a statement, into name; returns its hash (0: no name).
 */
static uint64
statement_name(const char *text, int location, int len,
			   char name[QUERY_NAME_LEN])
{
	long		span;
	uint64		h;

	if (text == NULL)
		return UINT64CONST(0);
	text = statement_head(text, location, len, &span);
	if (!query_name_parse(text, span, name))
		return UINT64CONST(0);
	h = hash64_bytes(name, (int) strlen(name), UINT64CONST(0x6e616d6568617368));
	return h != UINT64CONST(0) ? h : UINT64CONST(1);
}

static uint64 pg_noinline
statement_namehash_slow(const char *text, int location, int len)
{
	char		name[QUERY_NAME_LEN];

	return statement_name(text, location, len, name);
}

/* what query_name_parse skips before the marker */
static inline bool
name_space(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Whether a statement may have a sqlc name.  Most statements have none: the
 * marker's '-' must be the first thing after whitespace, which is one look
 * (no strlen, no name buffer) to rule out.
 */
static inline bool
statement_may_be_named(const char *text, int location, int len)
{
	long		span;
	const char *p = statement_head(text, location, len, &span);

	if (span >= 0)
	{
		const char *end = p + span;

		while (p < end && name_space(*p))
			p++;
		if (p >= end)
			return false;
	}
	else
	{
		/* to the end of the string: its NUL is not a space */
		while (name_space(*p))
			p++;
	}
	return *p == '-';
}

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

static const ChTextInfo *
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
		head = statement_head(text, location, len, &span);
		n = span >= 0 ? (int) span : (int) strlen(head);
	}
	key = hash64_key(head, n, CH_TEXT_KEY_SEED);
	e = &text_cache[key % CH_TEXT_CACHE];
	if (!e->filled || e->key != key)
	{
		e->key = key;
		e->id = UINT64CONST(0);
		e->namehash = statement_may_be_named(text, location, len) ?
			statement_namehash_slow(text, location, len) : UINT64CONST(0);
		e->filled = true;
	}
	if (need_id && e->id == UINT64CONST(0))
		e->id = ch_normalized_query_id_uncached(text, location, len);
	return e;
}

/*
 * The first time this session ends a statement, post its sqlc name and its
 * text for the fold.  Called at statement end, just before its sample, so
 * the fold sees the entry before the note.  may_fold: not from an abort
 * (the ring of notes is then only left for the next fold when full).
 */
static void
note_name(const ChFrame *f, bool may_fold)
{
	uint64		key;
	int			slot;
	char		name[QUERY_NAME_LEN];

	if (my_slot == NULL)
		return;
	/* one unlocked read of a counter that changes at a reset or eviction */
	if (pg_atomic_read_u64(&ch_latency->forgets) != named_cache_forgets)
	{
		memset(named_cache, 0, sizeof(named_cache));
		named_cache_forgets = pg_atomic_read_u64(&ch_latency->forgets);
	}
	key = (f->queryid ^ (f->namehash * UINT64CONST(0xC2B2AE3D27D4EB4F)) ^
		   ((uint64) GetUserId() * UINT64CONST(0x9E3779B97F4A7C15))) +
		(uint64) f->toplevel;
	slot = (int) (key % CH_NAMED_CACHE);
	if (named_cache[slot] == key)
		return;
	name[0] = '\0';
	if (f->namehash != UINT64CONST(0) &&
		statement_name(f->text, f->text_location, f->text_len, name) !=
		f->namehash)
		return;					/* the text went away: cannot happen */
	if (!post_name(f, name, may_fold))
		return;					/* ring full: try again next time */
	named_cache[slot] = key;
}

/* ------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------
 */

static inline bool
tracking(bool toplevel)
{
	if (ch_shared == NULL || IsParallelWorker())
		return false;
	return toplevel ? ch_track != CH_TRACK_NONE : ch_track == CH_TRACK_ALL;
}

/*
 * A statement starts.  queryid is core's (0 when core computed none: then
 * coder_health's own id from the statement's text, text_query_id.c; core's
 * query id is never written).
 */
static ChFrame *
push_frame(QueryDesc *query, uint64 queryid, const char *text,
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
	bool		toplevel = (running_depth() == 0 && ActivePortal != NULL);

	/* a new client statement: whether it reads coder_health is its own */
	if (toplevel)
		ch_self_read = false;
	if (nframes >= CH_MAX_FRAMES || !tracking(toplevel))
		return NULL;
	if (text != NULL &&
		(queryid == UINT64CONST(0) ||
		 (ch_query_names && statement_may_be_named(text, location, len))))
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
	if (my_slot == NULL)
		my_slot = claim_slot();
	f = &frames[nframes++];
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
		f->start = Max(f->last_msg, last_top_end);
	}
	else
		f->start = GetCurrentTimestamp();
	return f;
}

static ChFrame *
find_frame(QueryDesc *query)
{
	for (int i = nframes - 1; i >= 0; i--)
		if (frames[i].query == query)
			return &frames[i];
	return NULL;
}

static void
remove_frame(ChFrame *f)
{
	int			i = (int) (f - frames);

	if (i < nframes - 1)
		memmove(&frames[i], &frames[i + 1], sizeof(ChFrame) * (nframes - 1 - i));
	nframes--;
}

/*
 * A statement's work is done.  If a commit follows at once, the statement
 * ends with it (the commit is part of what the client waits for); otherwise
 * it ends now.
 */
static void
finish_frame(ChFrame *f, bool commit_follows, bool is_rollback)
{
	ChFrame		done;

	f->excluded = excluded_now(f->namehash);
	if (f->toplevel)
		ch_self_read = false;
	if (my_slot == NULL)
		my_slot = claim_slot();
	/*
	 * Several statements pipelined before one Sync share a transaction: the
	 * earlier one ended at the latest where this one began.  Its sample goes
	 * before this one's name, so a fold for the name finds its entry.
	 */
	if (f->toplevel && commit_follows && have_deferred)
	{
		record(deferred.excluded, deferred.queryid, deferred.namehash, deferred.start,
			   deferred.end ? deferred.end : Max(f->start, deferred.start),
			   true, false);
		have_deferred = false;
	}
	/*
	 * A SELECT whose portal is dropped by a later message (the next Bind of
	 * a pipeline) finished its work before that message began.
	 */
	if (f->toplevel && f->end == 0 &&
		f->last_msg != GetCurrentStatementStartTimestamp())
		f->end = Max(GetCurrentStatementStartTimestamp(), f->start);
	/* no name note for a statement that is not timed: it would wait for an
	 * entry that never comes */
	if (!f->excluded)
		note_name(f, true);
	if (f->toplevel && commit_follows)
	{
		deferred = *f;
		remove_frame(f);
		have_deferred = true;
		deferred_is_rollback = is_rollback;
		deferred_msg_start = deferred.last_msg;
		/*
		 * Fold now and then here too: most client statements take this
		 * path.  No clock was read; the statement's own start time is close
		 * enough for "every second".
		 */
		maybe_fold(deferred.start);
		return;
	}
	done = *f;
	remove_frame(f);
	/*
	 * Our own work (a fold: a new statement's entry) before the clock is
	 * read: the client waits for it, and the log counts it.
	 */
	maybe_fold(done.start);
	touch_next_sample();
	if (done.end == 0)
		done.end = GetCurrentTimestamp();
	record(done.excluded, done.queryid, done.namehash, done.start, done.end,
		   done.toplevel, false);
	if (done.toplevel)
		last_top_end = done.end;
}

/*
 * Whether the transaction commits right after this top-level statement
 * (autocommit): then the statement ends with the commit, as
 * log_min_duration_statement counts it (ExecutorEnd, dropping the portal and
 * the commit included), and the clock is read there instead.
 */
static bool
autocommit(void)
{
	return !IsTransactionBlock();
}

/* ------------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------------
 */

static void
ch_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
	{
		ChFrame    *f;

		if (tracking(true))
			note_monitoring_role();
		f = push_frame(queryDesc,
								   (uint64) queryDesc->plannedstmt->queryId,
								   queryDesc->sourceText,
								   queryDesc->plannedstmt->stmt_location,
								   queryDesc->plannedstmt->stmt_len);

		/* a plain SELECT's work ends with its last ExecutorRun; a portal
		 * may run Finish/End much later (at the next Bind or at commit) */
		if (f)
			f->select_like = queryDesc->operation == CMD_SELECT &&
				!queryDesc->plannedstmt->hasModifyingCTE;
	}
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
ch_ExecutorRun(CH_EXECUTOR_RUN_ARGS)
{
	ChFrame    *f;

	/*
	 * A portal run again by a later Execute (a row limit): the time between
	 * the end of its previous run and this message was the client's.
	 */
	if (nframes > 0 && (f = find_frame(queryDesc)) != NULL && f->toplevel)
	{
		TimestampTz msg = GetCurrentStatementStartTimestamp();

		if (f->end != 0 && msg > f->end)
		{
			f->start += msg - f->end;
			f->end = 0;
		}
		f->last_msg = msg;
	}

	executor_depth++;
	if (prev_ExecutorRun)
		prev_ExecutorRun(CH_EXECUTOR_RUN_PASS);
	else
		standard_ExecutorRun(CH_EXECUTOR_RUN_PASS);
	executor_depth--;

	/*
	 * A client's SELECT in autocommit ends with its commit, and one sent
	 * with the simple protocol (DestRemote; the extended protocol's Execute
	 * is DestRemoteExecute) at its ExecutorEnd, when its portal is dropped
	 * in this same message, as the log counts it: no clock here, unless the
	 * run was limited to some rows (another Execute may follow).
	 */
	if (nframes > 0 && (f = find_frame(queryDesc)) != NULL && f->select_like &&
		(count != 0 ||
		 !(f->toplevel &&
		   (autocommit() || queryDesc->dest->mydest == DestRemote))))
		f->end = GetCurrentTimestamp();
}

static void
ch_ExecutorFinish(QueryDesc *queryDesc)
{
	ChFrame    *f;

	executor_depth++;
	if (prev_ExecutorFinish)
		prev_ExecutorFinish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
	executor_depth--;

	/* nested writes end after Finish (AFTER triggers: foreign key checks);
	 * a top-level one's ExecutorEnd follows at once (its portal runs it to
	 * the end), where the clock is read, as the log counts it */
	if (nframes > 0 && (f = find_frame(queryDesc)) != NULL && !f->select_like &&
		!f->toplevel)
		f->end = GetCurrentTimestamp();
}

static void
ch_ExecutorEnd(QueryDesc *queryDesc)
{
	ChFrame    *f = nframes > 0 ? find_frame(queryDesc) : NULL;

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);

	if (f != NULL)
	{
		/* frames may have moved while ExecutorEnd ran nested statements */
		f = find_frame(queryDesc);
		if (f != NULL)
			finish_frame(f, f->toplevel && autocommit(), false);
	}
}

/* Statements whose work is only the commit or rollback that follows them. */
static bool
ends_transaction(Node *parsetree, bool *is_rollback)
{
	*is_rollback = false;
	if (IsA(parsetree, TransactionStmt))
	{
		TransactionStmt *stmt = (TransactionStmt *) parsetree;

		switch (stmt->kind)
		{
			case TRANS_STMT_COMMIT:
			case TRANS_STMT_PREPARE:
				return true;
			case TRANS_STMT_ROLLBACK:
				*is_rollback = true;
				return true;
			default:
				return false;
		}
	}
	return false;
}

/*
 * A top-level ROLLBACK or ROLLBACK TO SAVEPOINT: the (sub)transaction abort
 * that follows (in this same message) is what the user asked for.
 */
static void
note_user_rollback(Node *parsetree)
{
	TransactionStmt *stmt;

	if (!IsA(parsetree, TransactionStmt))
		return;
	stmt = (TransactionStmt *) parsetree;
	if (stmt->kind == TRANS_STMT_ROLLBACK || stmt->kind == TRANS_STMT_ROLLBACK_TO)
	{
		rollback_msg = GetCurrentStatementStartTimestamp();
		rollback_is_to_savepoint = stmt->kind == TRANS_STMT_ROLLBACK_TO;
	}
}

/*
 * A statement that ends with its transaction ends when the transaction's
 * memory is released, the last step of a commit (CommitTransaction) and of
 * the cleanup after an abort (CleanupTransaction), as
 * log_min_duration_statement counts it: the xact callbacks come before
 * the locks, buffers and memory are released, which can take longer than
 * the statement itself (a failed block's portals).  A COMMIT or ROLLBACK
 * of a failed block has no callback at all but this one.  Registering it
 * needs no allocation.
 */
static ChFrame cleanup_frame;
static bool have_cleanup = false;
static MemoryContextCallback cleanup_callback;

static void
cleanup_done(void *arg)
{
	TimestampTz now;

	if (!have_cleanup)
		return;
	have_cleanup = false;
	touch_next_sample();
	now = GetCurrentTimestamp();
	record(cleanup_frame.excluded, cleanup_frame.queryid,
		   cleanup_frame.namehash, cleanup_frame.start, now, true, false);
	last_top_end = now;
}

static void
schedule_cleanup(const ChFrame *f)
{
	if (have_cleanup)
		cleanup_done(NULL);		/* cannot happen: one per transaction end */
	cleanup_frame = *f;
	have_cleanup = true;
	cleanup_callback.func = cleanup_done;
	cleanup_callback.arg = NULL;
	MemoryContextRegisterResetCallback(TopTransactionContext, &cleanup_callback);
}

static void
end_at_cleanup(ChFrame *f)
{
	f->excluded = excluded_now(f->namehash);
	ch_self_read = false;
	if (my_slot == NULL)
		my_slot = claim_slot();
	if (!f->excluded)
		note_name(f, true);
	schedule_cleanup(f);
	remove_frame(f);
}

/*
 * SAVEPOINT and ROLLBACK TO SAVEPOINT do their work after ProcessUtility,
 * in the CommitTransactionCommand that follows at once in the same message
 * (ROLLBACK TO: the abort and cleanup of the subtransactions, then a new
 * one), which log_min_duration_statement counts: they end when that new
 * subtransaction has started (its SUBXACT_EVENT_START_SUB, the last step).
 */
static bool
starts_subtransaction(Node *parsetree)
{
	TransactionStmt *stmt;

	if (!IsA(parsetree, TransactionStmt))
		return false;
	stmt = (TransactionStmt *) parsetree;
	return stmt->kind == TRANS_STMT_SAVEPOINT ||
		stmt->kind == TRANS_STMT_ROLLBACK_TO;
}

static void
end_at_subxact_start(ChFrame *f)
{
	f->excluded = excluded_now(f->namehash);
	ch_self_read = false;
	if (my_slot == NULL)
		my_slot = claim_slot();
	if (!f->excluded)
		note_name(f, true);
	/* our own work before the clock, as in finish_frame */
	maybe_fold(f->start);
	subxact_frame = *f;
	have_subxact_frame = true;
	remove_frame(f);
}

/* failed: the transaction ended before the subtransaction started */
static void
end_subxact_frame(bool failed)
{
	TimestampTz now;

	have_subxact_frame = false;
	touch_next_sample();
	now = GetCurrentTimestamp();
	record(subxact_frame.excluded, subxact_frame.queryid,
		   subxact_frame.namehash, subxact_frame.start, now, true, failed);
	last_top_end = now;
}

static void
ch_ProcessUtility(CH_PROCESS_UTILITY_ARGS)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		timed;
	bool		is_rollback;
	bool		ends_xact;
	bool		in_aborted_block;
	uint64		queryid;
	ChFrame    *f;
	int			pushed_at;

	/*
	 * EXECUTE runs its prepared statement through the executor, which times
	 * it (as a top-level statement); PREPARE and DEALLOCATE do no work worth
	 * a sample.  Same rule as pg_stat_statements, so counts compare.
	 */
	if (IsA(parsetree, ExecuteStmt) || IsA(parsetree, PrepareStmt) ||
		IsA(parsetree, DeallocateStmt))
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(CH_PROCESS_UTILITY_PASS);
		else
			standard_ProcessUtility(CH_PROCESS_UTILITY_PASS);
		return;
	}

	/* all set before PG_TRY and not changed after: nothing is clobbered */
	ends_xact = ends_transaction(parsetree, &is_rollback);

	/*
	 * COMMIT or ROLLBACK of a block that already failed: the abort happened
	 * with the error, what is left is cleanup without any callback, so the
	 * statement ends with this call.
	 */
	in_aborted_block = ends_xact && IsAbortedTransactionBlockState();
	if (running_depth() == 0)
		note_user_rollback(parsetree);
	timed = ch_track_utility;
	queryid = timed ? compat_utility_query_id(pstmt, queryString) : UINT64CONST(0);
	f = timed && queryid != UINT64CONST(0) ?
		push_frame(NULL, queryid, queryString,
				   pstmt->stmt_location, pstmt->stmt_len) : NULL;
	pushed_at = f ? (int) (f - frames) : -1;

	/* statements inside (DO, CALL, CREATE TABLE AS ...) are nested either way */
	utility_depth++;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(CH_PROCESS_UTILITY_PASS);
		else
			standard_ProcessUtility(CH_PROCESS_UTILITY_PASS);
	}
	PG_FINALLY();
	{
		utility_depth--;
	}
	PG_END_TRY();

	if (pushed_at < 0)
		return;

	/*
	 * Find our frame again: statements run inside the utility may have come
	 * and gone.
	 */
	if (pushed_at < nframes && frames[pushed_at].query == NULL &&
		frames[pushed_at].queryid == queryid)
	{
		bool		commit_follows;

		f = &frames[pushed_at];
		if (in_aborted_block && f->toplevel)
		{
			end_at_cleanup(f);
			return;
		}
		if (f->toplevel && starts_subtransaction(parsetree))
		{
			end_at_subxact_start(f);
			return;
		}
		commit_follows = !in_aborted_block &&
			(ends_xact || (f->toplevel && autocommit()));
		finish_frame(f, f->toplevel && commit_follows, is_rollback);
	}
}

/* ------------------------------------------------------------------------
 * Transaction ends: deferred statements end, failed statements are errors
 * ------------------------------------------------------------------------
 */

/*
 * A transaction aborts in a message after the one that last ran these
 * top-level statements (a pipeline: a SELECT run to completion keeps its
 * portal until the next Bind or the Sync, and the next Parse fails): they
 * completed, and ended at the latest where the failing message began.
 */
static void
end_earlier_frames(TimestampTz msg)
{
	int			kept = 0;

	for (int i = 0; i < nframes; i++)
	{
		ChFrame    *f = &frames[i];

		if (f->toplevel && f->last_msg != msg)
		{
			TimestampTz end = f->end ? f->end : Max(msg, f->start);
			bool		excluded = excluded_now(f->namehash);

			if (!excluded)
				note_name(f, false);
			record(excluded, f->queryid, f->namehash, f->start, end, true,
				   false);
			last_top_end = end;
			continue;
		}
		if (kept != i)
			frames[kept] = *f;
		kept++;
	}
	nframes = kept;
}

static void
fail_frames_from(int first, TimestampTz now)
{
	/* a statement whose every execution fails still has its name, also
	 * when it is the first of its session */
	if (my_slot == NULL && nframes > first)
		my_slot = claim_slot();
	for (int i = first; i < nframes; i++)
	{
		bool		excluded = excluded_now(frames[i].namehash);

		/* a statement whose every execution fails still has its name */
		if (!excluded)
			note_name(&frames[i], false);
		record(excluded, frames[i].queryid, frames[i].namehash,
			   frames[i].start, now, frames[i].toplevel, true);
		if (frames[i].toplevel)
			ch_self_read = false;
		if (frames[i].toplevel)
			last_top_end = now;
	}
	nframes = first;
}

/*
 * A (sub)transaction aborted while a client message was being processed
 * and no statement frame was open: an error raised before the executor
 * (parse, analysis, planning, a lock timeout while opening a table, a bad
 * Bind).  Counted in the database and client totals (queryid 0: not
 * attributed to a statement), with its time to failure.  This does not
 * depend on log_min_messages or client_min_messages.
 */
static void
record_unattributed_error(TimestampTz now)
{
	/* a client's message: not autovacuum's or a background worker's own */
	if (tracking(true) && MyProcPort != NULL && !am_walsender)
	{
		TimestampTz start = Max(GetCurrentStatementStartTimestamp(), last_top_end);

		record(excluded_now(UINT64CONST(0)), UINT64CONST(0), UINT64CONST(0), start, now,
			   true, true);
		ch_self_read = false;
		last_top_end = now;
	}
}

/* Whether this (sub)transaction abort is the one a ROLLBACK asked for. */
static bool
asked_for(bool consume)
{
	bool		asked = rollback_msg != 0 &&
		rollback_msg == GetCurrentStatementStartTimestamp();

	if (consume)
		rollback_msg = 0;
	return asked;
}

static void
ch_xact_callback(XactEvent event, void *arg)
{
	TimestampTz now;
	TimestampTz msg;
	bool		rollback;

	/* cannot happen: a SAVEPOINT's subtransaction starts in its message */
	if (have_subxact_frame)
		end_subxact_frame(event == XACT_EVENT_ABORT ||
						  event == XACT_EVENT_PARALLEL_ABORT);

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* a COMMIT outside any utility statement: no executor can be
			 * running (only CALL and DO commit mid-statement) */
			if (utility_depth == 0)
				executor_depth = 0;
			if (!have_deferred)
				return;
			have_deferred = false;
			if (event == XACT_EVENT_COMMIT)
			{
				/* it ends when the commit has released everything */
				schedule_cleanup(&deferred);
				return;
			}
			now = GetCurrentTimestamp();
			record(deferred.excluded, deferred.queryid, deferred.namehash, deferred.start, now,
				   true, false);
			last_top_end = now;
			/*
			 * Frames still open at commit belong to statements that commit
			 * by themselves midway (VACUUM, CREATE INDEX CONCURRENTLY,
			 * procedures with COMMIT); they end normally later.
			 */
			return;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			break;
		default:
			return;
	}

	/*
	 * ROLLBACK inside a procedure or DO block (SPI): the statement goes on,
	 * and it has not failed.  An error that leaves the CALL unwinds through
	 * ProcessUtility first, so its abort comes with utility_depth 0.
	 */
	if (utility_depth > 0)
		return;
	executor_depth = 0;
	rollback = asked_for(true);
	if (!have_deferred && nframes == 0 &&
		(rollback || proc_exit_inprogress || !tracking(true)))
		return;
	now = GetCurrentTimestamp();
	msg = GetCurrentStatementStartTimestamp();

	if (have_deferred)
	{
		have_deferred = false;
		if (deferred_is_rollback)
		{
			/* a ROLLBACK did what it was asked: it ends with the cleanup */
			schedule_cleanup(&deferred);
			last_top_end = now;
		}
		else if (msg != deferred_msg_start)
		{
			/*
			 * It completed; a later message of the same implicit transaction
			 * (a pipeline before its Sync) failed.  It ended where that
			 * message began.
			 */
			TimestampTz end = deferred.end ? deferred.end :
				Max(msg, deferred.start);

			record(deferred.excluded, deferred.queryid, deferred.namehash, deferred.start, end,
				   true, false);
			last_top_end = end;
		}
		else
		{
			/* its own commit failed (a deferred constraint, serialization) */
			record(deferred.excluded, deferred.queryid, deferred.namehash, deferred.start, now,
				   true, true);
			last_top_end = now;
			return;
		}
	}
	if (nframes > 0)
	{
		end_earlier_frames(msg);
		if (nframes == 0)
		{
			/* the failing message had not started a statement */
			if (!rollback && !proc_exit_inprogress)
				record_unattributed_error(now);
			return;
		}
		fail_frames_from(0, now);
	}
	else if (!rollback && !proc_exit_inprogress)
		record_unattributed_error(now);
}

static void
ch_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level;
	int			first;
	bool		rollback;

	if (event == SUBXACT_EVENT_START_SUB)
	{
		if (have_subxact_frame)
			end_subxact_frame(false);
		level = GetCurrentTransactionNestLevel();
		if (level < CH_DEPTH_LEVELS)
			executor_depth_at_level[level] = executor_depth;
		/* ROLLBACK TO of a subtransaction that had already failed: no abort */
		if (rollback_is_to_savepoint)
			rollback_msg = 0;
		return;
	}
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	/* a full ROLLBACK aborts the subtransactions first, then the top */
	rollback = asked_for(rollback_is_to_savepoint);
	/* an error that left ExecutorRun early: back to the depth at START */
	level = GetCurrentTransactionNestLevel();
	if (level < CH_DEPTH_LEVELS)
		executor_depth = executor_depth_at_level[level];
	/* statements started inside the aborted subtransaction failed */
	for (first = 0; first < nframes; first++)
		if (frames[first].xact_level >= level)
			break;
	if (first < nframes)
		fail_frames_from(first, GetCurrentTimestamp());
	else if (!rollback && nframes == 0 && running_depth() == 0 &&
			 !proc_exit_inprogress)
		record_unattributed_error(GetCurrentTimestamp());
}

/*
 * The ProcessUtility hook must be the outermost one: pg_stat_statements
 * (14+) clears a utility statement's query id before it passes the
 * statement on, so a hook it calls sees none.  It is installed once every
 * preloaded library has run its _PG_init, from shmem_startup_hook (in the
 * postmaster at startup, again after a crash restart, and in each backend
 * under EXEC_BACKEND: once per process).
 */
static void
install_outermost_hooks(void)
{
	static bool installed = false;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	if (installed)
		return;
	installed = true;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ch_ProcessUtility;
}

void
ch_latency_install_hooks(void)
{
	ch_text_query_id_request();
	ch_latency_prepare_buckets();

	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ch_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = ch_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = ch_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = ch_ExecutorEnd;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = install_outermost_hooks;

	RegisterXactCallback(ch_xact_callback, NULL);
	RegisterSubXactCallback(ch_subxact_callback, NULL);
}
