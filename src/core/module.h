/*-------------------------------------------------------------------------
 *
 * module.h
 *	  What each coder_health feature (latency, LISTEN/NOTIFY, Coder
 *	  Servers, replication, ...) plugs into: settings, shared memory, hooks,
 *	  the collector's cycle, its section of the statistics file, its series
 *	  of the history and its columns of coder_health.status().
 *	  core/coder_health.c, collector.c, persist.c, history.c and status.c
 *	  walk the list that src/coder_health.c hands over, so a feature lives
 *	  in its own files and core names none of them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_MODULE_H
#define CODER_HEALTH_MODULE_H

#include "postgres.h"

#include "utils/timestamp.h"

struct ChStatsWriter;			/* persist.h */
struct ChStatsReader;			/* lib/stats_file.h */
struct ChHistoryMetric;			/* history.h */
struct ChHistorySink;			/* history.h */
struct ChStatusRow;				/* status.h */

typedef struct ChModule
{
	const char *name;
	/* _PG_init, preload only: DefineCustom*Variable calls */
	void		(*define_settings) (void);
	/* bytes of shared memory this feature needs (settings are known) */
	Size		(*shmem_size) (void);
	/* create or attach its shared memory; AddinShmemInitLock is held */
	void		(*shmem_init) (void);
	/*
	 * _PG_init, preload only: what it asks of PostgreSQL that is not a hook
	 * or a transaction callback (latency: query ids).  Hooks and callbacks
	 * are installed in one place, src/hooks.c, which says in which order
	 * the features run in each and why.
	 */
	void		(*preload) (void);
	/* once per collector cycle, in the collector (no database) */
	void		(*collect) (TimestampTz now);
	/* bytes of its reservation that hold data now, for status */
	Size		(*used_bytes) (void);
	/* its columns of coder_health.status() (status.h), in a backend */
	void		(*status) (struct ChStatusRow *row);

	/*
	 * Its series of coder_health.history (history.h): their names, and one
	 * sample's values, in the collector every history_interval: read under
	 * its own lock, shared, for a copy, then ch_history_note each row.
	 */
	const struct ChHistoryMetric *history_metrics;
	int			nhistory_metrics;
	void		(*history_sample) (TimestampTz now, struct ChHistorySink *sink);

	/*
	 * Its section of pg_stat/coder_health.stat (persist.h), named after the
	 * module, in this version.  save: in the collector every save_interval
	 * (its own lock, short, shared) or in the postmaster at a clean shutdown
	 * (no lock: no backend is left); copy what survives a restart into w,
	 * count what it wrote.  load: in the postmaster before any backend runs;
	 * r is bounded to the section (for a file of format 1..3, version is
	 * CH_STATS_LEGACY(format) and r the whole file before its CRC); check
	 * only (restore = false) or restore, count what it restored (reset
	 * times included: they are its own).  NULL, or why the file is ignored.
	 * A module without a section in the file starts empty.
	 */
	uint32		save_version;
	const char *saved_what;		/* "statements": for the log line */
	void		(*save) (struct ChStatsWriter *w, uint32 *count);
	const char *(*load) (struct ChStatsReader *r, uint32 version,
						 bool restore, uint32 *count);
} ChModule;

/*
 * The list, handed over by the entry point (src/coder_health.c, the only
 * file that names the features) to ch_load (core/coder_health.c); its
 * order is the order of settings, shared memory, preload, the collector's
 * cycle, the history's samples and the statistics file's sections.
 */
extern const ChModule *const *ch_modules;
extern int	ch_nmodules;
extern bool ch_load(const ChModule *const *modules, int nmodules);

#endif							/* CODER_HEALTH_MODULE_H */
