/*-------------------------------------------------------------------------
 *
 * latency_frame.h
 *	  The backend-local state of statement timing, shared by the files that
 *	  time statements: latency_timing.c (frames, samples, the text cache,
 *	  ExecutorStart's part), latency_names.c (sqlc names and texts),
 *	  latency_utility.c (ProcessUtility's part) and latency_xact.c
 *	  (transaction ends).  Only this backend touches any of it; the order
 *	  of hooks and callbacks is the protocol (docs/architecture.md, 4.5).
 *	  Nothing here takes a lock, allocates memory or raises an error.
 *
 * Private to src/latency, and to the inline executor parts of
 * latency_hooks.h that src/hooks.c calls.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_LATENCY_FRAME_H
#define CODER_HEALTH_LATENCY_FRAME_H

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/execdesc.h"
#include "lib/query_name.h"
#include "utils/timestamp.h"

#include "core/coder_health.h"
#include "latency.h"
#include "latency_settings.h"

/*
 * Statement timing calls across its files on every statement: bind those
 * calls and variables inside the library (a direct call, no PLT, no GOT),
 * as PostgreSQL 16+ builds modules anyway (-fvisibility=hidden).
 */
#ifdef __GNUC__
#pragma GCC visibility push(hidden)
#endif

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

/* latency_timing.c: each statement in flight, innermost last */
extern ChFrame ch_frames[CH_MAX_FRAMES];
extern int	ch_nframes;

/*
 * latency_timing.c: a top-level statement whose commit follows at once
 * (autocommit, COMMIT, ROLLBACK): it ends when the transaction does.
 */
extern ChFrame ch_deferred;
extern bool ch_have_deferred;
extern bool ch_deferred_is_rollback;
/* statement_timestamp() of the message that ran the deferred statement */
extern TimestampTz ch_deferred_msg_start;

/* latency_xact.c: a SAVEPOINT or ROLLBACK TO whose subtransaction has yet
 * to start (set by latency_utility.c) */
extern ChFrame ch_subxact_frame;
extern bool ch_have_subxact_frame;

/*
 * latency_xact.c: statement_timestamp() of the message of the last
 * top-level ROLLBACK / ROLLBACK TO, tracked or not: the (sub)transaction
 * abort that follows it in the same message is what the user asked for,
 * not a failure.  Cleared by the abort it announces (ROLLBACK TO of an
 * already failed savepoint: by the subtransaction that starts instead).
 */
extern TimestampTz ch_rollback_msg;
extern bool ch_rollback_is_to_savepoint;

/* latency_xact.c: at backend exit, after this backend's last fold: record
 * nothing more. */
extern bool ch_latency_exiting;

/*
 * latency_timing.c: statements started now are nested when we are inside
 * ExecutorRun/Finish or ProcessUtility.  Utility depth is kept with PG_TRY
 * (utility statements are rare and costly anyway: src/hooks.c).  Executor
 * depth is not, to keep PG_TRY off every statement: an error that leaves
 * ExecutorRun early is restored where it lands, by the abort callback (0),
 * by a subtransaction abort (the depth saved when that subtransaction
 * started: PL/pgSQL exception blocks), and, as a safety net, by a commit
 * outside any utility statement (only CALL and DO can commit
 * mid-statement, and they are utility statements).
 */
extern int	ch_utility_depth;
extern int	ch_executor_depth;

#define ch_running_depth() (ch_utility_depth + ch_executor_depth)

/* latency_timing.c: end of the previous top-level statement of this
 * backend: in a multi-statement query string, the next one starts there. */
extern TimestampTz ch_last_top_end;

/* latency_timing.c: this backend's slot, set up at its first sample. */
extern ChBackendSlot *ch_my_slot;

/* latency_timing.c: samples */
extern ChBackendSlot *ch_claim_latency_slot(void);
extern bool ch_excluded_now(uint64 namehash);
extern void ch_record_sample(bool excluded, uint64 queryid, uint64 namehash,
							 TimestampTz start, TimestampTz end,
							 bool toplevel, bool error);
/* the same for a frame's statement */
extern void ch_record_frame_sample(const ChFrame *f, TimestampTz end,
								   bool error);
extern void ch_maybe_fold(TimestampTz now);
extern void ch_resume_portal(ChFrame *f);
extern void ch_fold_own_ring(int max_tries);

/* latency_timing.c: frames */
extern ChFrame *ch_push_frame(QueryDesc *query, uint64 queryid,
							  const char *text, int location, int len);
extern void ch_remove_frame(ChFrame *f);
extern void ch_finish_frame(ChFrame *f, bool commit_follows, bool is_rollback);

/* latency_names.c */
extern uint64 ch_statement_namehash(const char *text, int location, int len);
extern void ch_note_name(const ChFrame *f, bool may_fold);
extern void ch_forget_posted_names(void);

/* latency_xact.c */
extern void ch_schedule_cleanup(const ChFrame *f);
extern void ch_fail_frames_from(int first, TimestampTz now);
extern void ch_end_subxact_frame(bool failed);
extern void ch_fold_at_exit(int code, Datum arg);

#ifdef __GNUC__
#pragma GCC visibility pop
#endif

static inline bool
ch_tracking(bool toplevel)
{
	if (ch_shared == NULL || IsParallelWorker())
		return false;
	return toplevel ? ch_track != CH_TRACK_NONE : ch_track == CH_TRACK_ALL;
}

/* The frame of an executor's statement in flight, innermost first. */
static inline ChFrame *
ch_find_frame(QueryDesc *query)
{
	for (int i = ch_nframes - 1; i >= 0; i--)
		if (ch_frames[i].query == query)
			return &ch_frames[i];
	return NULL;
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
ch_touch_next_sample(void)
{
	uint64		head;

	if (ch_my_slot == NULL)
		return;
	head = pg_atomic_read_u64(&ch_my_slot->head);
	if (head - pg_atomic_read_u64(&ch_my_slot->tail) < CH_RING_SIZE)
		ch_my_slot->ring[head % CH_RING_SIZE].flags = 0;
}

/*
 * Whether the transaction commits right after this top-level statement
 * (autocommit): then the statement ends with the commit, as
 * log_min_duration_statement counts it (ExecutorEnd, dropping the portal and
 * the commit included), and the clock is read there instead.
 */
static inline bool
ch_autocommit(void)
{
	return !IsTransactionBlock();
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
ch_statement_head(const char *text, int location, int len, long *span)
{
	int			start = Max(location, 0);

	while (start > 0 && text[start - 1] != ';')
		start--;
	*span = len > 0 ? len + (Max(location, 0) - start) : -1;
	return text + start;
}

/* what query_name_parse skips before the marker */
static inline bool
ch_name_space(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Whether a statement may have a sqlc name.  Most statements have none: the
 * marker's '-' must be the first thing after whitespace, which is one look
 * (no strlen, no name buffer) to rule out.
 */
static inline bool
ch_statement_may_be_named(const char *text, int location, int len)
{
	long		span;
	const char *p = ch_statement_head(text, location, len, &span);

	if (span >= 0)
	{
		const char *end = p + span;

		while (p < end && ch_name_space(*p))
			p++;
		if (p >= end)
			return false;
	}
	else
	{
		/* to the end of the string: its NUL is not a space */
		while (ch_name_space(*p))
			p++;
	}
	return *p == '-';
}

#endif							/* CODER_HEALTH_LATENCY_FRAME_H */
