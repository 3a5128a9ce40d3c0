/*-------------------------------------------------------------------------
 *
 * persist.h
 *	  What a module uses to save and load its section of
 *	  pg_stat/coder_health.stat (core/persist.c owns the file; the framing
 *	  is lib/stats_file.h).
 *
 * Saving: persist.c calls each module's save function (module.h) with a
 * writer.  The module takes its own lock for as short as it can, copies its
 * data into the writer (collector-local memory, never raising an error) and
 * releases the lock; persist.c then writes the section to disk holding no
 * lock at all.
 *
 * Loading: persist.c reads and checks the whole file (size, magic, CRC,
 * format, section table), then calls every module's load function twice:
 * first to check its section (restore = false), and only when every module
 * accepted its own, again to restore (restore = true).  A module reads
 * through a bounded reader and returns NULL or the reason the file is
 * ignored; the file is then reported with one WARNING and every module
 * starts empty.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_PERSIST_H
#define CODER_HEALTH_PERSIST_H

#include "postgres.h"

#include "utils/timestamp.h"

#include "lib/stats_file.h"

typedef struct ChStatsWriter ChStatsWriter;

/* Append len bytes to the module's section (local memory; no error raised:
 * out of memory fails the save, which is logged and keeps the old file). */
extern void ch_stats_put(ChStatsWriter *w, const void *data, size_t len);
/* The module found its own data inconsistent: fail this save. */
extern void ch_stats_fail(ChStatsWriter *w);

/* reasons a module's load gives (persist.c logs them as the old code did) */
#define CH_STATS_WHY_VERSION                                                  \
	"it was written by another version of coder_health"
#define CH_STATS_WHY_TIME "its header holds an invalid time"
#define CH_STATS_WHY_MALFORMED                                                \
	"its entries are malformed or hold invalid values"

/* A timestamp a save can have written: finite and in PostgreSQL's range. */
static inline bool
ch_stats_valid_time(TimestampTz t)
{
	return !TIMESTAMP_NOT_FINITE(t) && IS_VALID_TIMESTAMP(t);
}

/* A count or duration shown as bigint: 0 .. INT64_MAX. */
static inline bool
ch_stats_valid_count(uint64 v)
{
	return v <= (uint64) PG_INT64_MAX;
}

/* core: the collector's periodic save and the postmaster's load */
extern void ch_persist_load(void);
extern void ch_persist_save(const char *why);
extern void ch_persist_maybe_save(TimestampTz now);
extern void ch_persist_register_shutdown(void);

#endif /* CODER_HEALTH_PERSIST_H */
