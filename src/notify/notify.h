/*-------------------------------------------------------------------------
 *
 * notify.h
 *	  LISTEN/NOTIFY health: how notifications are counted, where listeners
 *	  are recorded, and how PostgreSQL's own queue state is read.
 *
 *	  commit of a transaction that wrote to PostgreSQL's NOTIFY queue
 *	      -> while it still holds the lock serializing writers, the backend
 *	         reads its own entries back from the queue's pages (what
 *	         PostgreSQL delivers: NOTIFY and pg_notify from anywhere, after
 *	         rollbacks and duplicate folding), folded into the channel-family
 *	         table with atomic adds (notify_readback.c)
 *	      -> commit phase (pre-commit .. commit) timed into a shared sketch
 *	  LISTEN / UNLISTEN / UNLISTEN * / DISCARD ALL
 *	      -> applied to a backend-local copy of the listen set at commit;
 *	         the families it covers are published in this backend's slot
 *	  collector / SQL functions
 *	      -> "Async Queue Control" read under NotifyQueueLock through a
 *	         per-version mirror verified by meaning at startup
 *	         (src/pg/async_mirror.c; notify_queue.c)
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_NOTIFY_H
#define CODER_HEALTH_NOTIFY_H

#include "postgres.h"

#include "access/xact.h"
#include "port/atomics.h"
#include "utils/timestamp.h"

#include "lib/atomic_sketch.h"
#include "lib/channel_family.h"
#include "lib/sketch.h"
#include "core/history.h"

/* Families one backend's slot can name; more count as "(other)". */
#define CH_NOTIFY_SLOT_FAMILIES 16

/* Rate snapshots: one every CH_NOTIFY_SNAP_S seconds, enough for a minute. */
#define CH_NOTIFY_SNAP_S 10
#define CH_NOTIFY_SNAPS 8

/* Commit-phase sketch windows: CH_NOTIFY_SNAP_S each, a minute in all. */
#define CH_NOTIFY_WINDOWS 7

/* Registers of the distinct-channel estimate (HyperLogLog), 4 per word. */
#define CH_HLL_REGISTERS 256
#define CH_HLL_WORDS (CH_HLL_REGISTERS / 4)

/* Entry 0 of the family table is "(other)". */
#define CH_FAMILY_OTHER 0
#define CH_FAMILY_NAME_LEN CHANNEL_FAMILY_LEN	/* = NAMEDATALEN */

typedef struct ChFamily
{
	char		name[CH_FAMILY_NAME_LEN];
	pg_atomic_uint64 notifications;
	pg_atomic_uint64 bytes;		/* payload bytes */
	pg_atomic_uint64 max_payload;
	pg_atomic_uint64 last_notify_at;	/* TimestampTz, 0 = never */
	pg_atomic_uint32 hll[CH_HLL_WORDS];
	/* notifications at each snapshot time (collector writes) */
	pg_atomic_uint64 snap[CH_NOTIFY_SNAPS];
} ChFamily;

/* Index slot states of the family hash index (besides entry number + 1). */
#define CH_FAMILY_SLOT_EMPTY 0
#define CH_FAMILY_SLOT_BUSY PG_UINT32_MAX
#define CH_FAMILY_SLOT_OVERFLOW (PG_UINT32_MAX - 1)

/* What one backend listens to, as of its last commit (single writer). */
typedef struct ChListenSlot
{
	pg_atomic_uint32 changecount;	/* odd while the owner writes */
	int32		pid;			/* 0 = not listening */
	int32		nchannels;
	int32		nfamilies;
	bool		overflow;		/* families beyond the array */
	uint32		family[CH_NOTIFY_SLOT_FAMILIES];
} ChListenSlot;

/* Per listener of PostgreSQL's queue: where it was and since when. */
typedef struct ChListenerProgress
{
	int32		pid;
	int64		page;
	int32		offset;
	TimestampTz since;			/* position unchanged since */
} ChListenerProgress;

typedef struct ChNotifyShared
{
	int			max_families;	/* entries after "(other)" */
	uint32		index_size;		/* power of two */
	pg_atomic_uint32 nfamilies; /* entries handed out, incl. "(other)" */
	pg_atomic_uint64 unread_pages;	/* queue pages not read back */
	pg_atomic_uint64 reset_time;

	/* rate snapshots: when each was taken (collector) */
	pg_atomic_uint64 snap_step;
	pg_atomic_uint64 snap_time[CH_NOTIFY_SNAPS];

	/* commit phase: windows rotated with the snapshots (lib/atomic_sketch.h) */
	ChAtomicSketch commit_window[CH_NOTIFY_WINDOWS];

	/*
	 * The mirror of async.c's queue (src/pg/async_mirror.c): whether it was
	 * verified at startup and is still trusted (cleared once, for good, by
	 * ch_notify_mirror_off, which logs when it flips mirror_off_logged), and
	 * the layout found.
	 */
	bool		mirror_ok;
	bool		has_stop_page;
	pg_atomic_uint32 mirror_off_logged;

	/*
	 * Read-back (notify_readback.c): where the last writer's entries ended
	 * -- read and written only by the holder of PostgreSQL's NOTIFY lock
	 * (the lock on "database 0").
	 */
	int64		written_end_page;
	int32		written_end_offset;

	/* listener progress (collector writes under CH_LOCK_NOTIFY) */
	int			nprogress;
	int			nslots;			/* listen slots, one per PGPROC */
} ChNotifyShared;

extern ChNotifyShared *ch_notify;
extern ChFamily *ch_families;
extern ChListenSlot *ch_listen_slots;
extern ChListenerProgress *ch_progress;

/* settings (notify_track.c) */
extern int	ch_max_channel_families;
extern int	ch_notify_stall_bytes;
extern int	ch_notify_stall_seconds;
extern bool ch_track_notify;

/* notify_family.c: family (NUL-terminated, len bytes) -> entry number */
extern uint32 ch_family_lookup(const char *family, int len);
extern uint32 ch_family_of_channel(const char *channel, int len);

/* A family as saved on disk (notify_persist.c); rates start again after a
 * restart. */
typedef struct ChSavedFamily
{
	char		name[CH_FAMILY_NAME_LEN];
	uint64		notifications;
	uint64		bytes;
	uint64		max_payload;
	TimestampTz last_notify_at;
	uint32		hll[CH_HLL_WORDS];
} ChSavedFamily;

extern uint32 ch_notify_families_in_use(void);
extern void ch_notify_save_family(uint32 entry, ChSavedFamily *saved);
extern bool ch_notify_restore_family(const ChSavedFamily *saved);

/* notify_history.c: its series of the history (core/history.h) */
typedef enum ChNotifyHistoryMetric
{
	CH_NOTIFY_HM_QUEUE_USAGE,	/* percent, as notify_queue.usage_pct */
	CH_NOTIFY_HM_BACKLOG,		/* bytes behind of the slowest listener */
	CH_NOTIFY_HM_COUNT
} ChNotifyHistoryMetric;
extern const ChHistoryMetric ch_notify_history_metrics[CH_NOTIFY_HM_COUNT];
extern void ch_notify_history_sample(TimestampTz now, ChHistorySink *sink);

/* notify_persist.c: its section of the statistics file (core/persist.h) */
#define CH_NOTIFY_SECTION_VERSION 1
struct ChStatsWriter;
struct ChStatsReader;
extern void ch_notify_save(struct ChStatsWriter *w, uint32 *count);
extern const char *ch_notify_load(struct ChStatsReader *r, uint32 version,
								  bool restore, uint32 *count);
extern void ch_hll_add(ChFamily *f, uint64 hash);
extern double ch_hll_estimate(ChFamily *f);
extern void ch_family_entry_init(ChFamily *f, const char *name);

/* notify_queue.c */
typedef struct ChQueueListener
{
	int32		pid;
	Oid			dboid;
	int			index;			/* into PostgreSQL's backend[] array */
	int64		page;
	int32		offset;
	int64		backlog_bytes;
} ChQueueListener;

typedef struct ChQueueSnapshot
{
	bool		supported;
	double		usage;			/* as pg_notification_queue_usage() */
	int64		backlog_bytes;	/* head - tail */
	int64		max_bytes;
	int64		head_page;
	int32		head_offset;
	int			nlisteners;
	ChQueueListener *listeners; /* palloc'd, nlisteners */
} ChQueueSnapshot;

extern void ch_notify_queue_read(ChQueueSnapshot *snap);
extern void ch_notify_track_progress(TimestampTz now);
extern TimestampTz ch_notify_progress_since(const ChQueueListener *l);

/* notify_readback.c: the mirror of async.c's queue, and read-back */
extern void ch_notify_readback_attach(bool verify);
extern void ch_notify_mirror_off(const char *why);
extern void ch_notify_readback_pre_commit(void);
extern void ch_notify_readback_end(bool committed);

/* notify_track.c */
extern Size ch_notify_shmem_size(void);
extern void ch_notify_shmem_init(void);
extern int	ch_notify_total_procs(void);
extern void ch_notify_reset(void);

/*
 * notify_track.c: its part in PostgreSQL's hooks and callbacks, which
 * src/hooks.c installs and calls in its order.  Called on every
 * transaction: bound inside the library (a direct call, no PLT).
 */
struct PlannedStmt;
#ifdef __GNUC__
#pragma GCC visibility push(hidden)
#endif
extern void ch_notify_ProcessUtility(struct PlannedStmt *pstmt);
extern void ch_notify_xact_callback(XactEvent event);
extern void ch_notify_subxact_callback(SubXactEvent event);
#ifdef __GNUC__
#pragma GCC visibility pop
#endif

/* this feature's entry in the module list (core/module.h, src/coder_health.c) */
extern const struct ChModule ch_notify_module;

#endif							/* CODER_HEALTH_NOTIFY_H */
