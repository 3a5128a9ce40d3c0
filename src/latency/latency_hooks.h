/*-------------------------------------------------------------------------
 *
 * latency_hooks.h
 *	  Statement latency's part in PostgreSQL's hooks and callbacks, for the
 *	  one place that installs them all (src/hooks.c, which says in which
 *	  order and why).  Each part does latency's work before or after the
 *	  previous hook; none calls a hook or keeps a pointer to one.
 *
 * The executor's parts around ExecutorRun, ExecutorFinish and ExecutorEnd
 * run on every statement and are a few lines each: they are inline here,
 * so each of those hooks costs one function of coder_health's (hooks.c's)
 * as when latency chained them itself.  They read and write the
 * backend-local frame stack of latency_frame.h, as latency_timing.c does.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_LATENCY_HOOKS_H
#define CODER_HEALTH_LATENCY_HOOKS_H

#include "access/xact.h"
#include "executor/execdesc.h"
#include "nodes/plannodes.h"
#include "utils/timestamp.h"

#include "latency_frame.h"

/* called on every statement: bound inside the library (latency_frame.h) */
#ifdef __GNUC__
#pragma GCC visibility push(hidden)
#endif

/* latency_timing.c: before the previous ExecutorStart, the statement's frame */
extern void ch_latency_ExecutorStart(QueryDesc *queryDesc, int eflags);

/*
 * latency_utility.c: ProcessUtility, outermost of all.  _before returns
 * false for a statement latency leaves alone (EXECUTE, PREPARE,
 * DEALLOCATE): pass it on, and call neither of the others.  Otherwise the
 * statement is nested inside latency's utility depth: call _leave however
 * the previous hook returns (PG_FINALLY), then _after if it returned.
 */
typedef struct ChLatencyUtility
{
	uint64		queryid;
	int			pushed_at;		/* its frame's index, -1: not timed */
	bool		is_rollback;
	bool		ends_xact;
	bool		in_aborted_block;
} ChLatencyUtility;

extern bool ch_latency_ProcessUtility_before(PlannedStmt *pstmt,
											 const char *queryString,
											 ChLatencyUtility *u);
extern void ch_latency_ProcessUtility_leave(void);
extern void ch_latency_ProcessUtility_after(PlannedStmt *pstmt,
											const ChLatencyUtility *u);

/* latency_xact.c: transaction and subtransaction ends */
extern void ch_latency_xact_callback(XactEvent event);
extern void ch_latency_subxact_callback(SubXactEvent event);

#ifdef __GNUC__
#pragma GCC visibility pop
#endif

/* Before the previous ExecutorRun; no PG_TRY (see ch_executor_depth). */
static inline void
ch_latency_ExecutorRun_before(QueryDesc *queryDesc)
{
	ChFrame    *f;

	/*
	 * The message that runs a top-level statement's portal (a Bind starts
	 * it, an Execute runs it): an abort in a later message is not its
	 * failure.  A portal run again by a later Execute (a row limit): its
	 * previous run noted where its work ended (f->end); the time since was
	 * the client's (ch_resume_portal).
	 */
	if (ch_nframes > 0 && (f = ch_find_frame(queryDesc)) != NULL &&
		f->toplevel)
	{
		if (unlikely(f->end != 0))
			ch_resume_portal(f);
		else
			f->last_msg = GetCurrentStatementStartTimestamp();
	}
	ch_executor_depth++;
}

/* After the previous ExecutorRun returned. */
static inline void
ch_latency_ExecutorRun_after(QueryDesc *queryDesc, uint64 count)
{
	ChFrame    *f;

	ch_executor_depth--;

	/*
	 * A client's SELECT in autocommit ends with its commit, and one sent
	 * with the simple protocol (DestRemote; the extended protocol's Execute
	 * is DestRemoteExecute) at its ExecutorEnd, when its portal is dropped
	 * in this same message, as the log counts it: no clock here, unless the
	 * run was limited to some rows (another Execute may follow).
	 */
	if (ch_nframes > 0 && (f = ch_find_frame(queryDesc)) != NULL &&
		f->select_like &&
		(count != 0 ||
		 !(f->toplevel &&
		   (queryDesc->dest->mydest == DestRemote || ch_autocommit()))))
		f->end = GetCurrentTimestamp();
}

/* Before the previous ExecutorFinish: statements run inside are nested. */
static inline void
ch_latency_ExecutorFinish_before(QueryDesc *queryDesc)
{
	ch_executor_depth++;
}

/* After the previous ExecutorFinish returned. */
static inline void
ch_latency_ExecutorFinish_after(QueryDesc *queryDesc)
{
	ChFrame    *f;

	ch_executor_depth--;

	/* nested writes end after Finish (AFTER triggers: foreign key checks);
	 * a top-level one's ExecutorEnd follows at once (its portal runs it to
	 * the end), where the clock is read, as the log counts it */
	if (ch_nframes > 0 && (f = ch_find_frame(queryDesc)) != NULL &&
		!f->select_like && !f->toplevel)
		f->end = GetCurrentTimestamp();
}

/*
 * After the previous ExecutorEnd: the statement's work is done.  Its frame
 * is looked up now, not before (frames may have moved while ExecutorEnd ran
 * nested statements): no frame is pushed for this queryDesc meanwhile
 * (only its own ExecutorStart pushes one, and it is still allocated, so no
 * nested statement has its address), so it has a frame now exactly when it
 * had one before the previous hook ran, or lost it meanwhile.
 */
static inline void
ch_latency_ExecutorEnd_after(QueryDesc *queryDesc)
{
	ChFrame    *f = ch_nframes > 0 ? ch_find_frame(queryDesc) : NULL;

	if (f != NULL)
		ch_finish_frame(f, f->toplevel && ch_autocommit(), false);
}

#endif							/* CODER_HEALTH_LATENCY_HOOKS_H */
