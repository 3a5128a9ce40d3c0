/*-------------------------------------------------------------------------
 *
 * module.h
 *	  What each coder_health feature (latency, LISTEN/NOTIFY, Coder
 *	  Servers, replication, ...) plugs into: settings, shared memory, hooks
 *	  and the collector's cycle.  coder_health.c and collector.c walk the
 *	  list in modules.c, so a feature lives in its own files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_MODULE_H
#define CODER_HEALTH_MODULE_H

#include "postgres.h"

#include "utils/timestamp.h"

typedef struct ChModule
{
	const char *name;
	/* _PG_init, preload only: DefineCustom*Variable calls */
	void		(*define_settings) (void);
	/* bytes of shared memory this feature needs (settings are known) */
	Size		(*shmem_size) (void);
	/* create or attach its shared memory; AddinShmemInitLock is held */
	void		(*shmem_init) (void);
	/* _PG_init, preload only: chain hooks, register callbacks */
	void		(*install_hooks) (void);
	/* once per collector cycle, in the collector (no database) */
	void		(*collect) (TimestampTz now);
	/* bytes of its reservation that hold data now, for status */
	Size		(*used_bytes) (void);
} ChModule;

/* modules.c */
extern const ChModule *const ch_modules[];
extern const int ch_nmodules;

/* the features */
extern const ChModule ch_latency_module;
extern const ChModule ch_clients_module;
extern const ChModule ch_replication_module;
extern const ChModule ch_notify_module;
extern const ChModule ch_health_module;

#endif							/* CODER_HEALTH_MODULE_H */
