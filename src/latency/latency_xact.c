/*-------------------------------------------------------------------------
 *
 * latency_xact.c
 *	  Transaction ends: deferred statements end, failed statements are
 *	  errors; and the backend's exit.
 *
 * Protocol (docs/architecture.md, 4.5): at XACT_EVENT_COMMIT the deferred
 * statement (latency_timing.c) ends when the commit has released
 * everything: a reset callback of TopTransactionContext, the last step of
 * CommitTransaction and of CleanupTransaction, records it (ch_schedule_
 * cleanup).  At XACT_EVENT_ABORT, a deferred ROLLBACK did what it was
 * asked; a deferred statement whose own commit failed is an error; frames
 * still open failed, with their time to failure; an abort with no frame
 * open is an error raised before the executor (unattributed).  A
 * subtransaction abort fails the frames started inside it and restores
 * the executor depth saved when it started; a subtransaction start ends a
 * SAVEPOINT / ROLLBACK TO (latency_utility.c).  src/hooks.c calls these
 * from its one transaction and subtransaction callback, after notify's and
 * clients' parts.  At exit, ch_fold_at_exit (before PostgreSQL's own abort)
 * records what is still open as failed and empties the ring.
 *
 * Nothing here takes a lock, allocates memory or raises an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "latency_frame.h"
#include "latency_hooks.h"
#include "pg/compat.h"
#include "text_query_id.h"

bool		ch_latency_exiting = false;

ChFrame		ch_subxact_frame;
bool		ch_have_subxact_frame = false;

TimestampTz ch_rollback_msg = 0;
bool		ch_rollback_is_to_savepoint = false;

/* the executor depth when each subtransaction level started */
#define CH_DEPTH_LEVELS 64
static int	executor_depth_at_level[CH_DEPTH_LEVELS];

/* ------------------------------------------------------------------------
 * Transaction ends: deferred statements end, failed statements are errors
 * ------------------------------------------------------------------------
 */

/*
 * A SAVEPOINT or ROLLBACK TO ends: its subtransaction started, or
 * (failed) the transaction ended before it did.
 */
void
ch_end_subxact_frame(bool failed)
{
	TimestampTz now;

	ch_have_subxact_frame = false;
	ch_touch_next_sample();
	now = GetCurrentTimestamp();
	ch_record_sample(ch_subxact_frame.excluded, ch_subxact_frame.queryid,
					 ch_subxact_frame.namehash, ch_subxact_frame.start, now,
					 true, failed);
	ch_last_top_end = now;
}

/*
 * Registered with before_shmem_exit at this backend's first sample
 * (ch_claim_latency_slot).
 */
void
ch_fold_at_exit(int code, Datum arg)
{
	/*
	 * This runs before the transaction is aborted at exit (callbacks run in
	 * reverse order of registration, and PostgreSQL's own was registered
	 * first): statements still running were cut short by the exit
	 * (pg_terminate_backend, a lost client).  They failed.
	 */
	if (ch_have_subxact_frame)
		ch_end_subxact_frame(true);
	if (ch_have_deferred || ch_nframes > 0)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (ch_have_deferred)
			ch_record_sample(ch_deferred.excluded, ch_deferred.queryid,
							 ch_deferred.namehash, ch_deferred.start, now,
							 true, true);
		ch_have_deferred = false;
		ch_fail_frames_from(0, now);
	}
	/* leave nothing behind for the next owner of the slot */
	ch_fold_own_ring(1000);
	ch_latency_exiting = true;
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
	ch_touch_next_sample();
	now = GetCurrentTimestamp();
	ch_record_frame_sample(&cleanup_frame, now, false);
	ch_last_top_end = now;
}

void
ch_schedule_cleanup(const ChFrame *f)
{
	if (have_cleanup)
		cleanup_done(NULL);		/* cannot happen: one per transaction end */
	cleanup_frame = *f;
	have_cleanup = true;
	cleanup_callback.func = cleanup_done;
	cleanup_callback.arg = NULL;
	MemoryContextRegisterResetCallback(TopTransactionContext, &cleanup_callback);
}


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

	for (int i = 0; i < ch_nframes; i++)
	{
		ChFrame    *f = &ch_frames[i];

		if (f->toplevel && f->last_msg != msg)
		{
			TimestampTz end = f->end ? f->end : Max(msg, f->start);
			bool		excluded = ch_excluded_now(f->namehash);

			if (!excluded)
				ch_note_name(f, false);
			ch_record_sample(excluded, f->queryid, f->namehash, f->start, end,
							 true, false);
			ch_last_top_end = end;
			continue;
		}
		if (kept != i)
			ch_frames[kept] = *f;
		kept++;
	}
	ch_nframes = kept;
}

void
ch_fail_frames_from(int first, TimestampTz now)
{
	/* a statement whose every execution fails still has its name, also
	 * when it is the first of its session */
	if (ch_my_slot == NULL && ch_nframes > first)
		ch_my_slot = ch_claim_latency_slot();
	for (int i = first; i < ch_nframes; i++)
	{
		bool		excluded = ch_excluded_now(ch_frames[i].namehash);

		/* a statement whose every execution fails still has its name */
		if (!excluded)
			ch_note_name(&ch_frames[i], false);
		ch_record_sample(excluded, ch_frames[i].queryid, ch_frames[i].namehash,
						 ch_frames[i].start, now, ch_frames[i].toplevel, true);
		if (ch_frames[i].toplevel)
			ch_self_read = false;
		if (ch_frames[i].toplevel)
			ch_last_top_end = now;
	}
	ch_nframes = first;
}

/*
 * The statement of a client message that failed before its executor, when
 * it has a sqlc name, into *f (a frame that was never pushed).  Its text is
 * the one pg_stat_activity shows: PostgreSQL stored it at the start of the
 * Query, Parse, Bind and Execute messages (debug_query_string is NULL by
 * now).  Its id is coder_health's text id (text_query_id.c), as the
 * statement's own would be had it reached its executor with no core id.
 * false (unattributed) when names are off, when the text has no name, when
 * the message stored no text of its own (Describe, Close, a function call;
 * on 14+), when track_activities is off (no text), and for a later
 * statement of a multi-statement string (an earlier one of the same message
 * has ended: ch_last_top_end is past the message's start), which is not the
 * text's first statement.  No lock, no allocation, no error.
 */
static bool
failed_named_statement(TimestampTz msg, ChFrame *f)
{
	TimestampTz reported_at = 0;
	const char *text;
	int			len;
	uint64		namehash;

	if (!ch_query_names || ch_last_top_end > msg)
		return false;
	text = compat_my_activity(&reported_at);
	if (text == NULL || reported_at != msg ||
		!ch_statement_may_be_named(text, 0, 0))
		return false;
	/* stored cut to track_activity_query_size, maybe inside a character */
	len = (int) strlen(text);
	len = pg_mbcliplen(text, len, len);
	if (len <= 0 ||
		(namehash = ch_statement_namehash(text, 0, len)) == UINT64CONST(0))
		return false;
	memset(f, 0, sizeof(*f));
	f->queryid = ch_normalized_query_id(text, 0, len);
	f->namehash = namehash;
	f->xact_level = GetCurrentTransactionNestLevel();
	f->toplevel = true;
	f->text = text;
	f->text_location = 0;
	f->text_len = len;
	f->last_msg = msg;
	return true;
}

/*
 * A (sub)transaction aborted while a client message was being processed
 * and no statement frame was open: an error raised before the executor
 * (parse, analysis, planning, a lock timeout while opening a table, a bad
 * Bind), with its time to failure.  Counted in the database and client
 * totals; and, when the message's statement has a sqlc name
 * (failed_named_statement), as an error of that statement and name, whose
 * name and text are posted as for any failing statement.  Otherwise
 * queryid 0: not attributed to a statement.  This does not depend on
 * log_min_messages or client_min_messages.
 */
static void
record_unattributed_error(TimestampTz now)
{
	/* a client's message: not autovacuum's or a background worker's own */
	if (ch_tracking(true) && MyProcPort != NULL && !am_walsender)
	{
		TimestampTz msg = GetCurrentStatementStartTimestamp();
		TimestampTz start = Max(msg, ch_last_top_end);
		ChFrame		f;

		if (failed_named_statement(msg, &f))
		{
			bool		excluded = ch_excluded_now(f.namehash);

			f.start = start;
			f.end = now;
			/* its name even when it is the session's first statement */
			if (ch_my_slot == NULL)
				ch_my_slot = ch_claim_latency_slot();
			if (!excluded)
				ch_note_name(&f, false);
			ch_record_sample(excluded, f.queryid, f.namehash, start, now,
							 true, true);
		}
		else
			ch_record_sample(ch_excluded_now(UINT64CONST(0)), UINT64CONST(0),
							 UINT64CONST(0), start, now, true, true);
		ch_self_read = false;
		ch_last_top_end = now;
	}
}

/* Whether this (sub)transaction abort is the one a ROLLBACK asked for. */
static bool
asked_for(bool consume)
{
	bool		asked = ch_rollback_msg != 0 &&
		ch_rollback_msg == GetCurrentStatementStartTimestamp();

	if (consume)
		ch_rollback_msg = 0;
	return asked;
}

/*
 * A transaction aborted: out of line, so that the commit that ends nearly
 * every statement does not set up this path's frame.
 */
static pg_noinline void
xact_aborted(void)
{
	TimestampTz now;
	TimestampTz msg;
	bool		rollback;

	/*
	 * ROLLBACK inside a procedure or DO block (SPI): the statement goes on,
	 * and it has not failed.  An error that leaves the CALL unwinds through
	 * ProcessUtility first, so its abort comes with utility_depth 0.
	 */
	if (ch_utility_depth > 0)
		return;
	ch_executor_depth = 0;
	rollback = asked_for(true);
	if (!ch_have_deferred && ch_nframes == 0 &&
		(rollback || proc_exit_inprogress || !ch_tracking(true)))
		return;
	now = GetCurrentTimestamp();
	msg = GetCurrentStatementStartTimestamp();

	if (ch_have_deferred)
	{
		ch_have_deferred = false;
		if (ch_deferred_is_rollback)
		{
			/* a ROLLBACK did what it was asked: it ends with the cleanup */
			ch_schedule_cleanup(&ch_deferred);
			ch_last_top_end = now;
		}
		else if (msg != ch_deferred_msg_start)
		{
			/*
			 * It completed; a later message of the same implicit transaction
			 * (a pipeline before its Sync) failed.  It ended where that
			 * message began.
			 */
			TimestampTz end = ch_deferred.end ? ch_deferred.end :
				Max(msg, ch_deferred.start);

			ch_record_sample(ch_deferred.excluded, ch_deferred.queryid,
							 ch_deferred.namehash, ch_deferred.start, end,
							 true, false);
			ch_last_top_end = end;
		}
		else
		{
			/* its own commit failed (a deferred constraint, serialization) */
			ch_record_sample(ch_deferred.excluded, ch_deferred.queryid,
							 ch_deferred.namehash, ch_deferred.start, now,
							 true, true);
			ch_last_top_end = now;
			return;
		}
	}
	if (ch_nframes > 0)
	{
		end_earlier_frames(msg);
		if (ch_nframes == 0)
		{
			/* the failing message had not started a statement */
			if (!rollback && !proc_exit_inprogress)
				record_unattributed_error(now);
			return;
		}
		ch_fail_frames_from(0, now);
	}
	else if (!rollback && !proc_exit_inprogress)
		record_unattributed_error(now);
}


/* src/hooks.c's transaction callback, after notify's and clients' parts */
void
ch_latency_xact_callback(XactEvent event)
{
	TimestampTz now;

	/* cannot happen: a SAVEPOINT's subtransaction starts in its message */
	if (unlikely(ch_have_subxact_frame))
		ch_end_subxact_frame(event == XACT_EVENT_ABORT ||
						  event == XACT_EVENT_PARALLEL_ABORT);

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* a COMMIT outside any utility statement: no executor can be
			 * running (only CALL and DO commit mid-statement) */
			if (ch_utility_depth == 0)
				ch_executor_depth = 0;
			if (!ch_have_deferred)
				return;
			ch_have_deferred = false;
			if (event == XACT_EVENT_COMMIT)
			{
				/* it ends when the commit has released everything */
				ch_schedule_cleanup(&ch_deferred);
				return;
			}
			now = GetCurrentTimestamp();
			ch_record_sample(ch_deferred.excluded, ch_deferred.queryid,
							 ch_deferred.namehash, ch_deferred.start, now,
							 true, false);
			ch_last_top_end = now;
			/*
			 * Frames still open at commit belong to statements that commit
			 * by themselves midway (VACUUM, CREATE INDEX CONCURRENTLY,
			 * procedures with COMMIT); they end normally later.
			 */
			return;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			xact_aborted();
			return;
		default:
			return;
	}
}

/* src/hooks.c's subtransaction callback, after notify's part */
void
ch_latency_subxact_callback(SubXactEvent event)
{
	int			level;
	int			first;
	bool		rollback;

	if (event == SUBXACT_EVENT_START_SUB)
	{
		if (ch_have_subxact_frame)
			ch_end_subxact_frame(false);
		level = GetCurrentTransactionNestLevel();
		if (level < CH_DEPTH_LEVELS)
			executor_depth_at_level[level] = ch_executor_depth;
		/* ROLLBACK TO of a subtransaction that had already failed: no abort */
		if (ch_rollback_is_to_savepoint)
			ch_rollback_msg = 0;
		return;
	}
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	/* a full ROLLBACK aborts the subtransactions first, then the top */
	rollback = asked_for(ch_rollback_is_to_savepoint);
	/* an error that left ExecutorRun early: back to the depth at START */
	level = GetCurrentTransactionNestLevel();
	if (level < CH_DEPTH_LEVELS)
		ch_executor_depth = executor_depth_at_level[level];
	/* statements started inside the aborted subtransaction failed */
	for (first = 0; first < ch_nframes; first++)
		if (ch_frames[first].xact_level >= level)
			break;
	if (first < ch_nframes)
		ch_fail_frames_from(first, GetCurrentTimestamp());
	else if (!rollback && ch_nframes == 0 && ch_running_depth() == 0 &&
			 !proc_exit_inprogress)
		record_unattributed_error(GetCurrentTimestamp());
}
