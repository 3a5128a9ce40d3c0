/*-------------------------------------------------------------------------
 *
 * latency_utility.c
 *	  Timing utility statements (ProcessUtility): when each kind ends.
 *
 * Protocol: src/hooks.c calls ch_latency_ProcessUtility_before, then the
 * previous hook inside PG_TRY with ch_latency_ProcessUtility_leave in its
 * PG_FINALLY (the utility depth must come back on an error: statements run
 * inside a DO or CALL are nested), then ch_latency_ProcessUtility_after.
 * This part is the outermost ProcessUtility hook of all (src/hooks.c says
 * why).  A utility statement's frame ends:
 *
 * - at once, or with the commit that follows (autocommit, COMMIT,
 *   ROLLBACK: latency_timing.c's deferred frame);
 * - COMMIT or ROLLBACK of a failed block: when the transaction's memory is
 *   released (latency_xact.c's cleanup);
 * - SAVEPOINT, ROLLBACK TO: when the new subtransaction has started
 *   (latency_xact.c's SUBXACT_EVENT_START_SUB ends ch_subxact_frame).
 *
 * A top-level ROLLBACK / ROLLBACK TO is noted (ch_rollback_msg), so that
 * the abort it asks for is not counted as a failure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "pg/compat.h"
#include "latency_frame.h"
#include "latency_hooks.h"
#include "text_query_id.h"


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
		ch_rollback_msg = GetCurrentStatementStartTimestamp();
		ch_rollback_is_to_savepoint = stmt->kind == TRANS_STMT_ROLLBACK_TO;
	}
}

/*
 * A statement whose end comes after ProcessUtility returns: what
 * finish_frame does before its clock read (exclusion, the slot, the name
 * note) is done now, while the statement is current.
 */
static void
prepare_late_end(ChFrame *f)
{
	f->excluded = ch_excluded_now(f->namehash);
	ch_self_read = false;
	if (ch_my_slot == NULL)
		ch_my_slot = ch_claim_latency_slot();
	if (!f->excluded)
		ch_note_name(f, true);
}

static void
end_at_cleanup(ChFrame *f)
{
	prepare_late_end(f);
	ch_schedule_cleanup(f);
	ch_remove_frame(f);
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
	prepare_late_end(f);
	/* our own work before the clock, as in finish_frame */
	ch_maybe_fold(f->start);
	ch_subxact_frame = *f;
	ch_have_subxact_frame = true;
	ch_remove_frame(f);
}

/* ------------------------------------------------------------------------
 * ProcessUtility's part (src/hooks.c calls it around the previous hook)
 * ------------------------------------------------------------------------
 */

/*
 * Before the previous ProcessUtility: the statement's frame.  False for
 * statements latency leaves alone.  All of *u is set here and only read
 * after the previous hook returned.
 */
bool
ch_latency_ProcessUtility_before(PlannedStmt *pstmt, const char *queryString,
								 ChLatencyUtility *u)
{
	Node	   *parsetree = pstmt->utilityStmt;
	ChFrame    *f;

	/*
	 * EXECUTE runs its prepared statement through the executor, which times
	 * it (as a top-level statement); PREPARE and DEALLOCATE do no work worth
	 * a sample.  Same rule as pg_stat_statements, so counts compare.
	 */
	if (IsA(parsetree, ExecuteStmt) || IsA(parsetree, PrepareStmt) ||
		IsA(parsetree, DeallocateStmt))
		return false;

	u->ends_xact = ends_transaction(parsetree, &u->is_rollback);

	/*
	 * COMMIT or ROLLBACK of a block that already failed: the abort happened
	 * with the error, what is left is cleanup without any callback, so the
	 * statement ends with this call.
	 */
	u->in_aborted_block = u->ends_xact && IsAbortedTransactionBlockState();
	if (ch_running_depth() == 0)
		note_user_rollback(parsetree);
	u->queryid = ch_track_utility ?
		compat_utility_query_id(pstmt, queryString) : UINT64CONST(0);
	f = u->queryid != UINT64CONST(0) ?
		ch_push_frame(NULL, u->queryid, queryString, pstmt->stmt_location,
					  pstmt->stmt_len) : NULL;
	u->pushed_at = f ? (int) (f - ch_frames) : -1;

	/* statements inside (DO, CALL, CREATE TABLE AS ...) are nested either way */
	ch_utility_depth++;
	return true;
}

/* However the previous ProcessUtility returned, error or not (PG_FINALLY). */
void
ch_latency_ProcessUtility_leave(void)
{
	ch_utility_depth--;
}

/* After the previous ProcessUtility returned: the statement's work is done. */
void
ch_latency_ProcessUtility_after(PlannedStmt *pstmt, const ChLatencyUtility *u)
{
	ChFrame    *f;
	bool		commit_follows;

	if (u->pushed_at < 0)
		return;

	/*
	 * Find our frame again: statements run inside the utility may have come
	 * and gone.
	 */
	if (u->pushed_at >= ch_nframes || ch_frames[u->pushed_at].query != NULL ||
		ch_frames[u->pushed_at].queryid != u->queryid)
		return;
	f = &ch_frames[u->pushed_at];
	if (u->in_aborted_block && f->toplevel)
	{
		end_at_cleanup(f);
		return;
	}
	if (f->toplevel && starts_subtransaction(pstmt->utilityStmt))
	{
		end_at_subxact_start(f);
		return;
	}
	commit_follows = !u->in_aborted_block &&
		(u->ends_xact || (f->toplevel && ch_autocommit()));
	ch_finish_frame(f, f->toplevel && commit_follows, u->is_rollback);
}
