/*-------------------------------------------------------------------------
 *
 * latency_names.c
 *	  A statement's sqlc name ("-- name: GetUser :one") and posting it, with
 *	  the statement's text as the views show it, for the fold.
 *
 * Protocol: ch_push_frame (latency_timing.c) asks ch_statement_namehash
 * for the hash of a statement's name (through its per-backend cache of
 * texts).  When a statement ends, just before its sample is written,
 * ch_note_name posts "queryid is called name and reads text" to this
 * backend's ring of name notes (ChBackendSlot.notes), once per session and
 * statement (a direct-mapped cache, emptied when the shared table forgot
 * entries), so the fold (latency_store.c) sees the statement's entry
 * before the note.  Backend-local; no lock, no allocation, no error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"

#include "latency_frame.h"
#include "lib/hash64.h"
#include "lib/statement_text.h"
#include "text_query_id.h"

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

/* A session's first sample (ch_claim_latency_slot): nothing posted yet. */
void
ch_forget_posted_names(void)
{
	memset(named_cache, 0, sizeof(named_cache));
	named_cache_forgets = pg_atomic_read_u64(&ch_latency->forgets);
}

/*
 * Post "queryid is called name and reads <text>" for the fold; false when
 * the ring is full.  The text is the statement's as statement_text.c shows
 * it (no constants), cut to CH_TEXT_LEN at a character boundary.
 */
static bool
post_name(const ChFrame *f, const char *name, bool may_fold)
{
	uint64		head = pg_atomic_read_u64(&ch_my_slot->note_head);
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
	if (head - pg_atomic_read_u64(&ch_my_slot->note_tail) >= limit && may_fold)
		(void) ch_fold_slot(ch_my_slot, false);
	if (head - pg_atomic_read_u64(&ch_my_slot->note_tail) >= limit)
		return false;
	note = &ch_my_slot->notes[head % CH_NAME_NOTES];
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
	pg_atomic_write_u64(&ch_my_slot->note_head, head + 1);
	return true;
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
	text = ch_statement_head(text, location, len, &span);
	if (!query_name_parse(text, span, name))
		return UINT64CONST(0);
	h = hash64_bytes(name, (int) strlen(name), UINT64CONST(0x6e616d6568617368));
	return h != UINT64CONST(0) ? h : UINT64CONST(1);
}

/* The hash of a statement's sqlc name, for the text cache of
 * latency_timing.c: 0 when it has none. */
uint64 pg_noinline
ch_statement_namehash(const char *text, int location, int len)
{
	char		name[QUERY_NAME_LEN];

	return statement_name(text, location, len, name);
}

/*
 * Post a statement's name and text, out of line: the name buffer (and the
 * stack check that comes with it) stays off the path of statements this
 * session already posted, which is nearly every statement.
 */
static pg_noinline void
post_first_time(const ChFrame *f, bool may_fold, uint64 key, int slot)
{
	char		name[QUERY_NAME_LEN];

	name[0] = '\0';
	if (f->namehash != UINT64CONST(0) &&
		statement_name(f->text, f->text_location, f->text_len, name) !=
		f->namehash)
		return;					/* the text went away: cannot happen */
	if (!post_name(f, name, may_fold))
		return;					/* ring full: try again next time */
	named_cache[slot] = key;
}

/*
 * The first time this session ends a statement, post its sqlc name and its
 * text for the fold.  Called at statement end, just before its sample, so
 * the fold sees the entry before the note.  may_fold: not from an abort
 * (the ring of notes is then only left for the next fold when full).
 */
void
ch_note_name(const ChFrame *f, bool may_fold)
{
	uint64		key;
	int			slot;

	if (ch_my_slot == NULL)
		return;
	/* one unlocked read of a counter that changes at a reset or eviction */
	if (unlikely(pg_atomic_read_u64(&ch_latency->forgets) != named_cache_forgets))
	{
		memset(named_cache, 0, sizeof(named_cache));
		named_cache_forgets = pg_atomic_read_u64(&ch_latency->forgets);
	}
	key = (f->queryid ^ (f->namehash * UINT64CONST(0xC2B2AE3D27D4EB4F)) ^
		   ((uint64) GetUserId() * UINT64CONST(0x9E3779B97F4A7C15))) +
		(uint64) f->toplevel;
	slot = (int) (key % CH_NAMED_CACHE);
	if (likely(named_cache[slot] == key))
		return;
	post_first_time(f, may_fold, key, slot);
}

