/*-------------------------------------------------------------------------
 *
 * coder_health.h
 *	  Shared declarations of the coder_health extension: the shared memory
 *	  root, settings and the entry points each module offers the others.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_H
#define CODER_HEALTH_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#ifndef CODER_HEALTH_VERSION
#define CODER_HEALTH_VERSION "unknown"
#endif

#define CH_TRANCHE_NAME "coder_health"
#define CH_SHMEM_NAME "coder_health"
#define CH_COLLECTOR_TYPE "coder_health collector"

/* One LWLock per feature, from the coder_health tranche. */
typedef enum ChLockId
{
	CH_LOCK_LATENCY = 0,		/* statement table and sketch layout */
	CH_LOCK_NOTIFY,
	CH_LOCK_CLIENTS,
	CH_LOCK_REPLICATION,
	CH_LOCK_HISTORY,
	CH_NUM_LOCKS
} ChLockId;

/*
 * The root of coder_health's shared memory.  Everything the collector
 * publishes about itself is an atomic so that readers never need a lock for
 * it; module state hangs off pointers set up at startup.
 */
typedef struct CoderHealthShared
{
	LWLock	   *lock;			/* = locks[CH_LOCK_LATENCY] */
	LWLock	   *locks[CH_NUM_LOCKS];	/* one per feature */
	Size		reserved_bytes; /* everything coder_health asked for */

	/* collector heartbeat */
	pg_atomic_uint32 collector_pid; /* 0 while not running */
	pg_atomic_uint64 collector_started;	/* TimestampTz of its start */
	pg_atomic_uint64 collector_last_run;	/* TimestampTz of last cycle end */
	pg_atomic_uint64 collector_runs;
	pg_atomic_uint64 collector_overruns;	/* cycles longer than the interval */
	pg_atomic_uint64 collector_starts;	/* how often it was (re)started */
	pg_atomic_uint32 collector_interval_ms; /* interval it is using now */
	pg_atomic_uint64 collector_last_cycle_us;	/* duration of last cycle */
} CoderHealthShared;

/* shmem.c */
extern CoderHealthShared *ch_shared;
extern void ch_shmem_request(void);
extern void ch_shmem_startup(void);
extern Size ch_shmem_size(void);
extern Size ch_shmem_used_bytes(void);
extern void ch_require_loaded(void);

/* settings.c: the settings no one feature owns (each feature defines its
 * own in its module's define_settings) */
extern int	ch_sample_interval_ms;
extern int	ch_save_interval_s;
extern int	ch_window_step_s;
extern void ch_define_settings(void);
extern void ch_reserve_settings_prefix(void);

/* set by coder_health's SQL functions: this statement reads coder_health
 * (shmem.c; cleared by latency_timing.c when a client statement starts or
 * ends) */
extern bool ch_self_read;

/* collector.c */
extern void ch_register_collector(void);
extern PGDLLEXPORT void ch_collector_main(Datum arg);

#endif							/* CODER_HEALTH_H */
