/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  coder_health's shared memory: how much it asks for, and setting it up.
 *
 * The size is fixed at server start (from settings that need a restart), so
 * nothing is ever allocated in shared memory after startup.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "pg/compat.h"
#include "coder_health.h"
#include "module.h"
#include "persist.h"

CoderHealthShared *ch_shared = NULL;

/*
 * Postmaster-local: how many times the collector started in the shared
 * memory generations before this one.  After a crash (a backend or the
 * collector itself killed) the postmaster initialises shared memory again;
 * status.collector_restarts counts restarts since the server started, so
 * the postmaster carries the count over from the old segment, read just
 * before it is detached.
 */
static uint64 collector_starts_before = 0;

static void
remember_collector_starts(int code, Datum arg)
{
	if (ch_shared != NULL)
		collector_starts_before = pg_atomic_read_u64(&ch_shared->collector_starts);
}

Size
ch_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(CoderHealthShared));

	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->shmem_size)
			size = add_size(size, ch_modules[i]->shmem_size());
	/* each structure is allocated cache-line aligned */
	size = add_size(size, (8 + 8 * ch_nmodules) * PG_CACHE_LINE_SIZE);
	return size;
}

/*
 * Bytes of the reservation that hold data right now.  The fixed part is
 * always in use; tables count by their fill.
 */
Size
ch_shmem_used_bytes(void)
{
	Size		size = MAXALIGN(sizeof(CoderHealthShared));

	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->used_bytes)
			size += ch_modules[i]->used_bytes();
	return size;
}

/* Ask for shared memory and our LWLock tranche (from the right hook). */
void
ch_shmem_request(void)
{
	RequestAddinShmemSpace(ch_shmem_size());
	RequestNamedLWLockTranche(CH_TRANCHE_NAME, CH_NUM_LOCKS);
}

/*
 * Attach to (or, in the postmaster, create) the shared state.  Runs in the
 * postmaster at startup and after every crash restart, and in each backend
 * under EXEC_BACKEND.
 */
void
ch_shmem_startup(void)
{
	bool		found;
	bool		in_postmaster;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ch_shared = ShmemInitStruct(CH_SHMEM_NAME, sizeof(CoderHealthShared), &found);
	if (!found)
	{
		LWLockPadded *tranche = GetNamedLWLockTranche(CH_TRANCHE_NAME);

		memset(ch_shared, 0, sizeof(CoderHealthShared));
		for (int i = 0; i < CH_NUM_LOCKS; i++)
			ch_shared->locks[i] = &tranche[i].lock;
		ch_shared->lock = ch_shared->locks[CH_LOCK_LATENCY];
		ch_shared->reserved_bytes = ch_shmem_size();
		pg_atomic_init_u32(&ch_shared->collector_pid, 0);
		pg_atomic_init_u64(&ch_shared->collector_started, 0);
		pg_atomic_init_u64(&ch_shared->collector_last_run, 0);
		pg_atomic_init_u64(&ch_shared->collector_runs, 0);
		pg_atomic_init_u64(&ch_shared->collector_overruns, 0);
		pg_atomic_init_u64(&ch_shared->collector_starts,
						   IsUnderPostmaster ? 0 : collector_starts_before);
		pg_atomic_init_u32(&ch_shared->collector_interval_ms, 0);
		pg_atomic_init_u64(&ch_shared->collector_last_cycle_us, 0);
	}
	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->shmem_init)
			ch_modules[i]->shmem_init();
	in_postmaster = !found && !IsUnderPostmaster;
	LWLockRelease(AddinShmemInitLock);

	/*
	 * In the postmaster (or single-user), before any backend runs:
	 * statistics from the last save, read without holding
	 * AddinShmemInitLock (nobody else can touch our memory yet), and the
	 * collector start count kept for after a crash restart.
	 */
	if (in_postmaster)
	{
		ch_persist_load();
		ch_persist_register_shutdown();
		on_shmem_exit(remember_collector_starts, (Datum) 0);
	}
}

/* this statement reads coder_health (see ch_require_loaded) */
bool		ch_self_read = false;

/*
 * Every SQL-callable function starts here: without the preloaded library
 * there is no shared state to read, and the user needs to know why.
 */
void
ch_require_loaded(void)
{
	/* every SQL function of coder_health comes here: the statement running
	 * it reads coder_health (latency_timing.c leaves it out) */
	ch_self_read = true;
	if (ch_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coder_health is not loaded"),
				 errhint("Add coder_health to shared_preload_libraries in postgresql.conf and restart the server.")));
}
