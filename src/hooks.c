/*-------------------------------------------------------------------------
 *
 * hooks.c
 *	  The one place that installs coder_health's hooks and transaction
 *	  callbacks.  Beside the entry point (src/coder_health.c), above the
 *	  features: it names them, and they name no hook.  Each feature exports
 *	  plain functions that do its part before or after the previous hook;
 *	  here are the previous hooks, and each hook below calls the features'
 *	  parts in the order of this table, then the previous hook (or
 *	  PostgreSQL's standard_*), with direct calls: one indirect call per
 *	  hook and statement, PostgreSQL's own.
 *
 * hook                  before the previous hook     after it
 * --------------------  ---------------------------  ----------------------
 * shmem_request (15+)   -                            core: ch_shmem_request
 * shmem_startup         -                            core: ch_shmem_startup;
 *                                                    then, once per process,
 *                                                    install ProcessUtility
 *                                                    (outermost)
 * ClientAuthentication  -                            clients
 * ExecutorStart         clients, latency             -
 * ExecutorRun           latency                      latency
 * ExecutorFinish        latency                      latency
 * ExecutorEnd           -                            latency
 * ProcessUtility,       latency (PG_FINALLY around   latency
 *   outermost           the previous hook)
 * ProcessUtility        clients                      notify
 * xact callback         (one callback) notify, clients, latency
 * subxact callback      (one callback) notify, latency
 *
 * Why this order:
 *
 * - shmem_startup: shared memory first (each module's shmem_init, in the
 *   module list's order; notify's checks async.c's queue struct, which
 *   PostgreSQL has created by then; in the postmaster the saved statistics
 *   are loaded after AddinShmemInitLock is released), then the outermost
 *   ProcessUtility.  shmem_request: sizes are known once every setting is
 *   defined (13 and 14 have no such hook: asked for at once, in _PG_init).
 * - ProcessUtility is two hooks.  Latency's must be the outermost of all:
 *   pg_stat_statements (14+) clears a utility statement's query id before it
 *   passes the statement on, so a hook below it sees none.  It is installed
 *   from shmem_startup_hook, after every preloaded library's _PG_init, once
 *   per process (in the postmaster at startup, again after a crash restart,
 *   and in each backend under EXEC_BACKEND).  Its utility depth must come
 *   back however the statement ends (statements inside a DO or CALL are
 *   nested), hence PG_FINALLY; utility statements are rare enough to pay
 *   for it.  Clients' and notify's keep the place of a hook installed in
 *   _PG_init (between the libraries preloaded before coder_health and
 *   those after it): they need no query id.  Clients notes a LISTEN,
 *   UNLISTEN * or DISCARD ALL before the statement runs (applied at
 *   commit, forgotten at abort); notify records the action only once
 *   PostgreSQL accepted the statement.
 * - ExecutorStart: clients' round-trip check (one comparison, now and then
 *   a TCP_INFO system call) comes first, outside any statement latency
 *   starts with a clock read (a nested one); latency pushes the statement's
 *   frame before PostgreSQL starts the executor, so an error raised there
 *   (permissions, a lock timeout) fails that statement.  A top-level
 *   statement starts at PostgreSQL's statement_timestamp(), so the order
 *   changes none of its measurements.
 * - ExecutorRun / Finish: the executor depth goes up before and down after,
 *   so that statements run inside are nested; no PG_TRY on this path: an
 *   error is put right by the abort callbacks (latency_frame.h).  After:
 *   where the statement's work ended.  ExecutorEnd: latency finishes the
 *   frame after PostgreSQL's ExecutorEnd, whose work the log counts.
 *   The parts around these three are inline (latency_hooks.h).
 * - ClientAuthentication: clients reads TCP_INFO once the previous hooks
 *   let the connection in.
 * - Transaction callbacks: one callback each, registered in _PG_init where
 *   the three modules registered theirs one after the other (PostgreSQL
 *   calls the newest first: notify, clients, latency).  Latency comes last
 *   so that the others' work at a transaction's end is inside the time of
 *   the statement that ends with it, as the log counts it: at COMMIT notify
 *   reads back what it queued (still holding PostgreSQL's NOTIFY lock) and
 *   applies LISTEN actions, clients publishes the LISTEN state, latency ends
 *   the deferred statement; at ABORT notify and clients forget the
 *   transaction's actions and latency records failed statements.  A
 *   subtransaction abort: notify cuts its queued LISTEN actions, latency
 *   fails the frames of the aborted level.
 *
 * Exit callbacks are not here: latency and notify register theirs with
 * before_shmem_exit when a backend first needs them (docs/architecture.md).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "libpq/auth.h"
#include "storage/ipc.h"
#include "tcop/utility.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "clients/clients.h"
#include "latency/latency_hooks.h"
#include "notify/notify.h"
#include "hooks.h"

#ifdef CH_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ClientAuthentication_hook_type prev_ClientAuthentication = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static ProcessUtility_hook_type prev_ProcessUtility_outermost = NULL;

#ifdef CH_HAVE_SHMEM_REQUEST_HOOK
static void
ch_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	ch_shmem_request();
}
#endif

static void ch_ProcessUtility_outermost(CH_PROCESS_UTILITY_ARGS);

static void
ch_shmem_startup_hook(void)
{
	static bool installed = false;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	ch_shmem_startup();
	if (installed)
		return;
	installed = true;
	prev_ProcessUtility_outermost = ProcessUtility_hook;
	ProcessUtility_hook = ch_ProcessUtility_outermost;
}

static void
ch_ClientAuthentication(Port *port, int status)
{
	if (prev_ClientAuthentication)
		prev_ClientAuthentication(port, status);
	ch_clients_ClientAuthentication(port, status);
}

static void
ch_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	ch_clients_ExecutorStart();
	ch_latency_ExecutorStart(queryDesc, eflags);
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
ch_ExecutorRun(CH_EXECUTOR_RUN_ARGS)
{
	ch_latency_ExecutorRun_before(queryDesc);
	if (prev_ExecutorRun)
		prev_ExecutorRun(CH_EXECUTOR_RUN_PASS);
	else
		standard_ExecutorRun(CH_EXECUTOR_RUN_PASS);
	ch_latency_ExecutorRun_after(queryDesc, count);
}

static void
ch_ExecutorFinish(QueryDesc *queryDesc)
{
	ch_latency_ExecutorFinish_before(queryDesc);
	if (prev_ExecutorFinish)
		prev_ExecutorFinish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
	ch_latency_ExecutorFinish_after(queryDesc);
}

static void
ch_ExecutorEnd(QueryDesc *queryDesc)
{
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
	ch_latency_ExecutorEnd_after(queryDesc);
}

/* installed in _PG_init: clients' and notify's parts */
static void
ch_ProcessUtility(CH_PROCESS_UTILITY_ARGS)
{
	ch_clients_ProcessUtility(pstmt);
	if (prev_ProcessUtility)
		prev_ProcessUtility(CH_PROCESS_UTILITY_PASS);
	else
		standard_ProcessUtility(CH_PROCESS_UTILITY_PASS);
	ch_notify_ProcessUtility(pstmt);
}

/* installed at shmem startup, outermost of all: latency's part */
static void
ch_ProcessUtility_outermost(CH_PROCESS_UTILITY_ARGS)
{
	ChLatencyUtility u;

	if (!ch_latency_ProcessUtility_before(pstmt, queryString, &u))
	{
		if (prev_ProcessUtility_outermost)
			prev_ProcessUtility_outermost(CH_PROCESS_UTILITY_PASS);
		else
			standard_ProcessUtility(CH_PROCESS_UTILITY_PASS);
		return;
	}
	PG_TRY();
	{
		if (prev_ProcessUtility_outermost)
			prev_ProcessUtility_outermost(CH_PROCESS_UTILITY_PASS);
		else
			standard_ProcessUtility(CH_PROCESS_UTILITY_PASS);
	}
	PG_FINALLY();
	{
		ch_latency_ProcessUtility_leave();
	}
	PG_END_TRY();
	ch_latency_ProcessUtility_after(pstmt, &u);
}

static void
ch_xact_callback(XactEvent event, void *arg)
{
	ch_notify_xact_callback(event);
	/* clients and latency act on the outcome, not on the commit's start */
	if (event == XACT_EVENT_PRE_COMMIT ||
		event == XACT_EVENT_PARALLEL_PRE_COMMIT ||
		event == XACT_EVENT_PRE_PREPARE)
		return;
	ch_clients_xact_callback(event);
	ch_latency_xact_callback(event);
}

static void
ch_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	ch_notify_subxact_callback(event);
	ch_latency_subxact_callback(event);
}

void
ch_install_hooks(void)
{
#ifdef CH_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ch_shmem_request_hook;
#else
	ch_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ch_shmem_startup_hook;

	prev_ClientAuthentication = ClientAuthentication_hook;
	ClientAuthentication_hook = ch_ClientAuthentication;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ch_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = ch_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = ch_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = ch_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ch_ProcessUtility;

	RegisterXactCallback(ch_xact_callback, NULL);
	RegisterSubXactCallback(ch_subxact_callback, NULL);
}
