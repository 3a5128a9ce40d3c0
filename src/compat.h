/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL major versions coder_health
 *	  supports (13 to 18), in one place.
 *
 * The rest of the code is written against the newest interfaces; the macros
 * here map them onto older servers.  Nothing outside this file tests
 * PG_VERSION_NUM.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_COMPAT_H
#define CODER_HEALTH_COMPAT_H

#include "postgres.h"

#include "miscadmin.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "executor/executor.h"
#include "utils/guc.h"
#include "access/twophase.h"
#include "pgstat.h"
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
 * Query ids.  Core computes them from 14 on (compute_query_id); an extension
 * asks for them with EnableQueryId(), and utility statements carry theirs in
 * the PlannedStmt.  On 13 only pg_stat_statements computes them, so
 * coder_health falls back to a hash of the statement's text
 * (text_query_id.c): compat_enable_query_id() asks for it in _PG_init, and
 * compat_utility_query_id() gives a utility statement its id at
 * ProcessUtility.  PostgreSQL 18 made queryId an int64; coder_health keeps
 * it as the same 64 bits in a uint64.
 */
#if PG_VERSION_NUM >= 140000
#define CH_HAVE_CORE_QUERY_ID 1
#define compat_enable_query_id() EnableQueryId()
#define compat_utility_query_id(pstmt, query_string) ((uint64) (pstmt)->queryId)
#else
extern uint64 ch_text_query_id(const char *source, int location, int len);
extern void ch_text_query_id_request(void);

#define compat_enable_query_id() ch_text_query_id_request()
#define compat_utility_query_id(pstmt, query_string) \
	((pstmt)->queryId != UINT64CONST(0) ? (pstmt)->queryId : \
	 ch_text_query_id((query_string), (pstmt)->stmt_location, (pstmt)->stmt_len))
#endif

#endif							/* CODER_HEALTH_COMPAT_H */
