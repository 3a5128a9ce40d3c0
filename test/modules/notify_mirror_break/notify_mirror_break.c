/*-------------------------------------------------------------------------
 *
 * notify_mirror_break.c
 *	  For TAP 105 only: while coder_health verifies its mirror of async.c's
 *	  "Async Queue Control" at startup, the queue's head holds an offset it
 *	  never has at startup; right after, the struct is as PostgreSQL left it.
 *
 * Preload it after coder_health (shared_preload_libraries =
 * 'coder_health,notify_mirror_break'): its shmem_startup_hook then runs
 * first and calls coder_health's from inside.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "pg/async_mirror.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
break_during_startup(void)
{
	bool		found;
	ChAsyncQueuePosition *head;

	/* the head comes first in every layout */
	head = (ChAsyncQueuePosition *)
		ShmemInitStruct(CH_ASYNC_CONTROL_NAME, CH_ASYNC_REGISTERED_SIZE(), &found);
	if (!found || head->offset != 0)
		elog(FATAL, "notify_mirror_break: \"%s\" is not as expected",
			 CH_ASYNC_CONTROL_NAME);
	head->offset = 4;
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	head->offset = 0;
	elog(LOG, "notify_mirror_break: the NOTIFY queue's head was off while coder_health started");
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = break_during_startup;
}
