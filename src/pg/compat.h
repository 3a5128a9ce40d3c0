/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The differences between the PostgreSQL major versions coder_health
 *	  supports (13 to 18) in interfaces PostgreSQL exports.
 *
 * The rest of the code is written against the newest interfaces; the macros
 * here map them onto older servers.  Mirrors of PostgreSQL's private
 * structs live beside this file, each in its own (async_mirror.h: the
 * LISTEN/NOTIFY queue).  Nothing outside src/pg/ tests PG_VERSION_NUM.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_COMPAT_H
#define CODER_HEALTH_COMPAT_H

#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "executor/executor.h"
#include "utils/guc.h"
#include "access/twophase.h"
#include "catalog/pg_proc.h"
#include "storage/lock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "pgstat.h"
/* backend status (PgBackendStatus) moved out of pgstat.h in 14 */
#if PG_VERSION_NUM >= 140000
#include "utils/backend_status.h"
#endif
/* wait event names (PG_WAIT_EXTENSION) moved out of pgstat.h in 14 */
#if PG_VERSION_NUM >= 140000
#include "utils/wait_event.h"
#endif
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#elif PG_VERSION_NUM >= 140000
#include "utils/queryjumble.h"
#endif

#if PG_VERSION_NUM < 130000
#error "coder_health needs PostgreSQL 13 or newer"
#endif

/* the settings MaxBackends is computed from, before 15 */
#if PG_VERSION_NUM < 150000
#include "postmaster/autovacuum.h"
#include "replication/walsender.h"
#endif

/*
 * Shared memory is requested from shmem_request_hook on 15+, where requests
 * made directly from _PG_init are rejected; before 15 it must be done from
 * _PG_init itself.
 */
#if PG_VERSION_NUM >= 150000
#define CH_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/* Reserving the GUC prefix (rejecting misspelt names) is 15+; older servers
 * only warn about placeholders. */
#if PG_VERSION_NUM >= 150000
#define CH_RESERVE_GUC_PREFIX(prefix) MarkGUCPrefixReserved(prefix)
#else
#define CH_RESERVE_GUC_PREFIX(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * Number of PGPROC slots: regular backends, auxiliary processes and the
 * dummy procs of prepared transactions.  Before 15, MaxBackends is still 0
 * while shared_preload_libraries run, so compute it the way
 * InitializeMaxBackends() does.
 */
static inline int
compat_max_backends(void)
{
#if PG_VERSION_NUM >= 150000
	return MaxBackends;
#else
	return MaxConnections + autovacuum_max_workers + 1 +
		max_worker_processes + max_wal_senders;
#endif
}

#define compat_total_procs() \
	(compat_max_backends() + NUM_AUXILIARY_PROCS + max_prepared_xacts)

/* This process's index into ProcGlobal->allProcs. */
#if PG_VERSION_NUM >= 170000
#define compat_my_proc_number() (MyProcNumber)
#define compat_proc_number(proc) GetNumberFromPGProc(proc)
#else
#define compat_my_proc_number() (MyProc ? MyProc->pgprocno : -1)
#define compat_proc_number(proc) ((proc)->pgprocno)
#endif

/* ProcessUtility gained readOnlyTree in 14. */
#if PG_VERSION_NUM >= 140000
#define CH_PROCESS_UTILITY_ARGS \
	PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define CH_PROCESS_UTILITY_PASS \
	pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc
#else
#define CH_PROCESS_UTILITY_ARGS \
	PlannedStmt *pstmt, const char *queryString, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define CH_PROCESS_UTILITY_PASS \
	pstmt, queryString, context, params, queryEnv, dest, qc
#endif

/* ExecutorRun lost execute_once in 18. */
#if PG_VERSION_NUM >= 180000
#define CH_EXECUTOR_RUN_ARGS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define CH_EXECUTOR_RUN_PASS queryDesc, direction, count
#else
#define CH_EXECUTOR_RUN_ARGS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count, \
	bool execute_once
#define CH_EXECUTOR_RUN_PASS queryDesc, direction, count, execute_once
#endif

/*
 * Query ids.  Core computes them from 14 on when something asks for them
 * (compute_query_id = on, or auto and an extension called EnableQueryId,
 * as pg_stat_statements does); 13 has none of its own.  coder_health does
 * not ask: where a statement it times has no id it uses its own, from the
 * normalized text (text_query_id.c), kept in its own state only (core's
 * query id is never written).  Utility statements carry an id into their
 * PlannedStmt from 14 on; on 13, and whenever it is 0,
 * compat_utility_query_id() hashes the statement's text at ProcessUtility
 * with ch_text_query_id(), declared in latency/text_query_id.h (which the
 * user of this macro includes).  18 made queryId an int64; coder_health
 * keeps the same 64 bits in a uint64.
 */
#define compat_utility_query_id(pstmt, query_string) \
	((uint64) (pstmt)->queryId != UINT64CONST(0) ? (uint64) (pstmt)->queryId : \
	 ch_text_query_id((query_string), (pstmt)->stmt_location, (pstmt)->stmt_len))


/*
 * Parse analysis of a statement whose parameters' types are inferred (what
 * PREPARE without types and the extended protocol do): 15 added the query
 * environment argument.
 */
#if PG_VERSION_NUM >= 150000
#define compat_parse_analyze_varparams(raw, text, types, ntypes) \
	parse_analyze_varparams((raw), (text), (types), (ntypes), NULL)
#else
#define compat_parse_analyze_varparams(raw, text, types, ntypes) \
	parse_analyze_varparams((raw), (text), (types), (ntypes))
#endif


/*
 * The backend status snapshot (pg_stat_activity's source): the local copy
 * of entry idx (1-based, idx <= pgstat_fetch_stat_numbackends()), and
 * forgetting the snapshot so the next read is fresh.  16 renamed the
 * by-index accessor; 15 split the activity snapshot from the stats one.
 * (Only 15 was built and tested here.)
 */
#if PG_VERSION_NUM >= 160000
#define compat_local_beentry(idx) pgstat_get_local_beentry_by_index(idx)
#else
#define compat_local_beentry(idx) pgstat_fetch_stat_local_beentry(idx)
#endif
#if PG_VERSION_NUM >= 150000
#define compat_clear_backend_snapshot() pgstat_clear_backend_activity_snapshot()
#else
#define compat_clear_backend_snapshot() pgstat_clear_snapshot()
#endif


/*
 * The text of the client message this backend is running, as
 * pgstat_report_activity stored it for pg_stat_activity at the start of
 * exec_simple_query, exec_parse_message, exec_bind_message and
 * exec_execute_message: raw, cut to track_activity_query_size - 1 bytes
 * (perhaps inside a character: 14+ clip it when it is read), "" when
 * track_activities is off.  *reported_at: the statement_timestamp() of
 * the message that stored it (0: none), so a caller can tell a text of the
 * current message from one a message that stores none (Describe, Close, a
 * function call) left behind.  Only this backend writes its own entry:
 * reading it needs no lock.  Nothing here allocates or raises; it may run
 * in an abort callback.  14+ read MyBEEntry; 13 keeps its entry static and
 * pgstat_get_backend_current_activity finds it by pid (a "<...>" text
 * when there is none; its CHECK_FOR_INTERRUPTS cannot fire in an abort,
 * which holds interrupts), without the time: *reported_at is then the
 * current message's, so on 13 a message that stores no text reads the
 * previous message's.
 */
static inline const char *
compat_my_activity(TimestampTz *reported_at)
{
#if PG_VERSION_NUM >= 140000
	volatile PgBackendStatus *be = MyBEEntry;

	if (be == NULL)
		return NULL;
	*reported_at = be->st_activity_start_timestamp;
	return be->st_activity_raw;
#else
	*reported_at = GetCurrentStatementStartTimestamp();
	return pgstat_get_backend_current_activity(MyProcPid, false);
#endif
}


/* The pg_read_all_stats role's OID macro was renamed in 14. */
#if PG_VERSION_NUM >= 140000
#define COMPAT_ROLE_READ_ALL_STATS ROLE_PG_READ_ALL_STATS
#else
#define COMPAT_ROLE_READ_ALL_STATS DEFAULT_ROLE_READ_ALL_STATS
#endif
#if PG_VERSION_NUM >= 140000
#define COMPAT_ROLE_MONITOR ROLE_PG_MONITOR
#else
#define COMPAT_ROLE_MONITOR DEFAULT_ROLE_MONITOR
#endif

/* ------------------------------------------------------------------------
 * Replication (replication.c): WAL positions, recovery state and the
 * fields of WalSnd / WalRcvData / ReplicationSlot that moved between
 * versions.  The struct fields read by name (WalSnd pid, state, sentPtr,
 * write, flush, apply, writeLag, flushLag, applyLag, replyTime, mutex;
 * WalRcvData pid, walRcvState, flushedUpto, lastMsgReceiptTime,
 * latestWalEnd, sender_host, sender_port, slotname, mutex) keep their names
 * from 13 to 18, so they need no macro.
 * ------------------------------------------------------------------------
 */
#include "access/xlog.h"
#if PG_VERSION_NUM >= 150000
#include "access/xlogrecovery.h"
#endif
#include "catalog/pg_authid.h"

/* GetFlushRecPtr gained an insert-timeline out parameter in 15. */
#if PG_VERSION_NUM >= 150000
#define compat_get_flush_rec_ptr() GetFlushRecPtr(NULL)
#else
#define compat_get_flush_rec_ptr() GetFlushRecPtr()
#endif

/*
 * Whether replay is paused or a pause was requested (what
 * pg_is_wal_replay_paused() reports).  14 split the state into "requested"
 * and "paused"; 13 has a bool.
 */
#if PG_VERSION_NUM >= 140000
#define compat_replay_pause_requested() \
	(GetRecoveryPauseState() != RECOVERY_NOT_PAUSED)
#else
#define compat_replay_pause_requested() RecoveryIsPaused()
#endif


/*
 * Whether a slot has been invalidated (its WAL removed).  16 replaced
 * data.invalidated_at (13-15: restart_lsn invalid and invalidated_at set)
 * with an invalidation cause.  Takes a ReplicationSlotPersistentData *.
 */
#if PG_VERSION_NUM >= 160000
#define compat_slot_invalidated(data) ((data)->invalidated != RS_INVAL_NONE)
#else
#define compat_slot_invalidated(data) \
	(XLogRecPtrIsInvalid((data)->restart_lsn) && \
	 !XLogRecPtrIsInvalid((data)->invalidated_at))
#endif

/*
 * When a slot last became inactive: PostgreSQL records it from 17 on
 * (ReplicationSlot.inactive_since); before, 0 and coder_health's collector
 * tracks it from what it sees.  Read it under the slot's mutex.
 */
#if PG_VERSION_NUM >= 170000
#define compat_slot_inactive_since(slot) ((slot)->inactive_since)
#else
#define compat_slot_inactive_since(slot) ((TimestampTz) 0)
#endif

/* LockHeldByMe gained "or stronger" in 17. */
#if PG_VERSION_NUM >= 170000
#define compat_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode), false)
#else
#define compat_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode))
#endif

/* String-keyed dynahash: explicit from 14, the default before. */
#if PG_VERSION_NUM >= 140000
#define CH_HASH_STRINGS HASH_STRINGS
#else
#define CH_HASH_STRINGS 0
#endif

/* An instr_time duration in nanoseconds (INSTR_TIME_GET_NANOSEC is 16+). */
#if PG_VERSION_NUM >= 160000
#define compat_instr_time_ns(t) ((uint64) INSTR_TIME_GET_NANOSEC(t))
#else
#define compat_instr_time_ns(t) ((uint64) (INSTR_TIME_GET_DOUBLE(t) * 1e9))
#endif

/* EXECUTE permission on a function: object_aclcheck from 16. */
#if PG_VERSION_NUM >= 160000
#define compat_proc_aclcheck(funcid, roleid) \
	object_aclcheck(ProcedureRelationId, (funcid), (roleid), ACL_EXECUTE)
#else
#define compat_proc_aclcheck(funcid, roleid) \
	pg_proc_aclcheck((funcid), (roleid), ACL_EXECUTE)
#endif

#endif							/* CODER_HEALTH_COMPAT_H */
