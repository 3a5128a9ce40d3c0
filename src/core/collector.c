/*-------------------------------------------------------------------------
 *
 * collector.c
 *	  The coder_health collector: one background worker that does, once per
 *	  coder_health.sample_interval, everything that must not happen inside
 *	  a user's statement (folding idle backends' samples, rotating windows,
 *	  evicting, reading PostgreSQL's shared state).
 *
 * It starts once the server is consistent, so it also runs on a hot
 * standby, and it is attached to no database (like the logical replication
 * launcher), so it shows in pg_stat_activity without needing one.  If it
 * dies, the postmaster starts it again after bgw_restart_time.
 *
 * Memory: each cycle runs in its own memory context, reset when the cycle
 * ends, so what a module's collect function pallocs lives one cycle and a
 * forgotten pfree cannot add up over days (test/tap/008 watches it).  What
 * must outlive a cycle is allocated in TopMemoryContext explicitly (the
 * replication module's row buffers, the history module's pending rows).
 *
 * Locking: the collector holds no lock of its own; each module's collect
 * takes its own, and the periodic save (persist.c) writes the statistics
 * file holding none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "coder_health.h"
#include "module.h"
#include "persist.h"

/* Seconds before the postmaster restarts a collector that died. */
#define CH_COLLECTOR_RESTART_SECONDS 1

void
ch_register_collector(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = CH_COLLECTOR_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "coder_health");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "ch_collector_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, CH_COLLECTOR_TYPE);
	snprintf(worker.bgw_type, BGW_MAXLEN, CH_COLLECTOR_TYPE);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

static void
ch_collector_detach(int code, Datum arg)
{
	pg_atomic_write_u32(&ch_shared->collector_pid, 0);
}

/*
 * One collector cycle: every module's periodic work, then the periodic
 * save of the statistics file (persist.c: each module copies its section
 * under its own lock, the file is written holding none), in cycle_context,
 * which is empty again when this returns.
 */
static void
ch_collector_cycle(MemoryContext cycle_context, TimestampTz now)
{
	MemoryContext oldcontext = MemoryContextSwitchTo(cycle_context);

	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->collect)
			ch_modules[i]->collect(now);
	ch_persist_maybe_save(now);
	MemoryContextSwitchTo(oldcontext);
	MemoryContextReset(cycle_context);
}

void
ch_collector_main(Datum arg)
{
	TimestampTz next_run;
	MemoryContext cycle_context;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* Connected to no database: shared state is all it reads. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	pg_atomic_write_u32(&ch_shared->collector_pid, (uint32) MyProcPid);
	pg_atomic_write_u64(&ch_shared->collector_started,
						(uint64) GetCurrentTimestamp());
	pg_atomic_fetch_add_u64(&ch_shared->collector_starts, 1);
	before_shmem_exit(ch_collector_detach, (Datum) 0);

	pgstat_report_activity(STATE_RUNNING, "collecting");

	cycle_context =
		AllocSetContextCreate(TopMemoryContext, "coder_health collector cycle",
							  ALLOCSET_DEFAULT_SIZES);

	next_run = GetCurrentTimestamp();
	while (!ShutdownRequestPending)
	{
		TimestampTz start;
		TimestampTz end;
		long		cycle_us;
		long		wait_ms;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		pg_atomic_write_u32(&ch_shared->collector_interval_ms,
							(uint32) ch_sample_interval_ms);

		start = GetCurrentTimestamp();
		ch_collector_cycle(cycle_context, start);
		end = GetCurrentTimestamp();

		cycle_us = (long) (end - start);
		pg_atomic_write_u64(&ch_shared->collector_last_cycle_us,
							(uint64) Max(cycle_us, 0));
		pg_atomic_write_u64(&ch_shared->collector_last_run, (uint64) end);
		pg_atomic_fetch_add_u64(&ch_shared->collector_runs, 1);

		/*
		 * Keep a steady cadence: the next cycle is one interval after the
		 * previous planned start.  A cycle that ran past it is an overrun;
		 * then restart the cadence from now instead of catching up in a
		 * burst.
		 */
		next_run = TimestampTzPlusMilliseconds(next_run, ch_sample_interval_ms);
		if (end >= next_run)
		{
			if (cycle_us > (long) ch_sample_interval_ms * 1000L)
				pg_atomic_fetch_add_u64(&ch_shared->collector_overruns, 1);
			next_run = TimestampTzPlusMilliseconds(end, ch_sample_interval_ms);
		}
		wait_ms = (long) ((next_run - end + 999) / 1000);
		if (wait_ms > ch_sample_interval_ms)
			wait_ms = ch_sample_interval_ms;

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	/*
	 * Exit code 1 so that the postmaster restarts us when this was a
	 * pg_terminate_backend(); at server shutdown it restarts nothing.
	 */
	proc_exit(1);
}
