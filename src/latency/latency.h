/*-------------------------------------------------------------------------
 *
 * latency.h
 *	  Statement latency: how samples travel from a user's statement to the
 *	  shared sketches.
 *
 *	  statement end (latency_timing.c)
 *	      -> one 24-byte sample appended to this backend's ring in shared
 *	         memory: no lock, no system call; single writer
 *	  fold (latency_store.c), by the backend itself at most every few
 *	  hundred ms or when its ring is half full, else by the collector
 *	      -> under a *conditional* shared LWLock (a user statement never
 *	         waits for it), samples are grouped per statement and added to
 *	         chunked sketches with atomic adds
 *	  collector, once per coder_health.sample_interval
 *	      -> drains idle backends' rings, rotates windows, evicts
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_LATENCY_H
#define CODER_HEALTH_LATENCY_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "lib/query_name.h"
#include "lib/sketch.h"
#include "latency_settings.h"
#include "core/history.h"

/* Samples a backend can buffer before it must fold (or drop). */
#define CH_RING_SIZE 512

/*
 * A backend folds once this many samples wait, or after CH_FOLD_AFTER_US.
 * A fold costs ~10,000 instructions whatever its size (the lock, the
 * statements' entries, six sketches per statement), so a backend running
 * a few hundred statements a second pays it once per second, not four
 * times; the views are as fresh as the collector keeps them anyway (it
 * folds every backend's ring each coder_health.sample_interval, 1 s).
 */
#define CH_FOLD_THRESHOLD (CH_RING_SIZE / 2)
#define CH_FOLD_AFTER_US 1000000

/* Windows: per statement 5 complete steps + the current one ("recent"),
 * per database/client 15 complete steps + the current one. */
#define CH_STMT_WINDOWS 6
#define CH_SCOPE_WINDOWS 16
#define CH_RECENT_STEPS 5

/*
 * Shared memory for sketch counts and texts comes from three pools
 * (latency_sketch.c), sized from max_statements and max_clients and taken
 * from on first use, so a statement pays for the durations it shows and the
 * text it has, not for the widest statement's.  What each slot reserves (a
 * statement uses about two thirds of it on Coder's workload; eviction
 * starts when any pool is 90% used):
 *
 *   totals   chunks of CH_TOTAL_CHUNK 64-bit counts (128 B)
 *   windows  chunks of CH_WINDOW_CHUNK 32-bit counts (128 B): a bucket of one
 *            window step never reaches 2^32
 *   texts    blocks of CH_TEXT_BLOCK bytes, chained
 */
#define CH_TOTAL_CHUNK 16
#define CH_WINDOW_CHUNK 32
#define CH_TEXT_BLOCK 128
#define CH_TOTAL_CHUNKS_PER_STATEMENT 6
#define CH_WINDOW_CHUNKS_PER_STATEMENT 12
#define CH_TEXT_BLOCKS_PER_STATEMENT 3
#define CH_TOTAL_CHUNKS_PER_SCOPE 12
#define CH_WINDOW_CHUNKS_PER_SCOPE 80

typedef enum ChPoolId
{
	CH_POOL_TOTAL,
	CH_POOL_WINDOW,
	CH_POOL_TEXT,
	CH_NPOOLS
} ChPoolId;

/*
 * A pool's free list.  Chunks never taken are not on it: never_used says
 * how many have been, so start-up does not walk the pool.
 */
typedef struct ChPool
{
	slock_t		lock;
	int			size;
	int			free_head;		/* index + 1; 0 = empty */
	int			never_used;		/* chunks size - never_used.. never taken */
	int			in_use;
} ChPool;

#define CH_CLIENT_ADDR_LEN 48	/* INET6_ADDRSTRLEN + room */

/* sample flags */
#define CH_SAMPLE_TOPLEVEL 0x01
#define CH_SAMPLE_ERROR 0x02

typedef struct ChSample
{
	uint64		queryid;
	uint64		namehash;		/* hash of the sqlc name, 0 = none */
	uint64		duration_ns;
	Oid			userid;
	uint32		flags;
} ChSample;

/*
 * A statement's text as the views show it (statement_text_display():
 * constants replaced by '?', comments and extra spacing gone), kept per
 * entry in shared memory: at most this many bytes with its NUL; a longer
 * text is cut at a character boundary and ends with "...".
 */
#define CH_TEXT_LEN 1024

/*
 * "The statement (queryid, namehash) is called <name> and reads <text>":
 * posted by a backend the first time it ends such a statement (one compare
 * per statement otherwise), applied by the fold once the entry exists (an
 * entry takes the first text it is given).
 */
#define CH_NAME_NOTES 16
/*
 * A backend posts a note from a statement's end only while fewer than this
 * many wait (the rest are kept for notes posted from an abort); waiting
 * notes whose entry has not come give way once this many wait
 * (latency_fold.c: apply_names).
 */
#define CH_NAME_NOTES_POST_LIMIT (CH_NAME_NOTES - 4)

typedef struct ChNameNote
{
	uint64		queryid;
	uint64		namehash;
	Oid			userid;
	bool		toplevel;
	bool		done;			/* the fold's own mark: applied, or given up;
								 * false again once the tail passes it */
	int			encoding;		/* of text: the poster's database's */
	char		name[QUERY_NAME_LEN];
	char		text[CH_TEXT_LEN];	/* "" when not known */
} ChNameNote;

/* One backend's ring of samples; indexed by PGPROC number. */
typedef struct ChBackendSlot
{
	pg_atomic_uint64 head;		/* next write position; owner only */
	pg_atomic_uint64 tail;		/* next read position; folder only */
	pg_atomic_flag folding;		/* held by whoever folds this ring */
	pg_atomic_uint64 dropped;	/* samples lost because the ring was full */

	/* identity of the owner, written before its first sample */
	Oid			dbid;
	char		client_addr[CH_CLIENT_ADDR_LEN];
	int			db_scope;		/* index into scopes, -1 = not resolved */
	int			client_scope;

	ChSample	ring[CH_RING_SIZE];

	/* query names, a small ring of their own (same protocol) */
	pg_atomic_uint64 note_head;
	pg_atomic_uint64 note_tail;
	ChNameNote	notes[CH_NAME_NOTES];
} ChBackendSlot;

/*
 * A sketch in shared memory: counters are atomics so that several folders
 * can add at once.  Its buckets live in pool chunks (above), listed in
 * slot[]: each used slot holds ((range + 1) << 24 | chunk number + 1),
 * where range is bucket / chunk size.  Slots are filled in order, each by
 * one compare-and-swap from 0 under the shared lock, and emptied only under
 * the exclusive lock, so a reader stops at the first empty one.  A sketch
 * with every slot taken drops a sample of a further range (counted in
 * dropped_samples): a statement's 48 total slots (16 buckets each) and a
 * window's 24 (32 each) both span a factor of 10^6 between its fastest
 * and slowest call; a database's or client's sketch has a slot for every
 * range.
 */
typedef struct ChSketchHead
{
	pg_atomic_uint64 calls;		/* every execution, failed ones too */
	pg_atomic_uint64 errors;
	pg_atomic_uint64 sum_ns;
	pg_atomic_uint64 min_ns;
	pg_atomic_uint64 max_ns;
} ChSketchHead;

#define CH_SLOT_REF_BITS 24
#define CH_SLOT_REF_MASK ((1U << CH_SLOT_REF_BITS) - 1)

/* a statement's total (CH_POOL_TOTAL) */
typedef struct ChSketch
{
	ChSketchHead head;
	pg_atomic_uint32 slot[48];
} ChSketch;

/* a statement's window step (CH_POOL_WINDOW) */
typedef struct ChWindow
{
	ChSketchHead head;
	pg_atomic_uint32 slot[24];
} ChWindow;

/* a database's or client's total and windows: every range has a slot */
typedef struct ChScopeSketch
{
	ChSketchHead head;
	pg_atomic_uint32 slot[SKETCH_NBUCKETS / CH_TOTAL_CHUNK];
} ChScopeSketch;

typedef struct ChScopeWindow
{
	ChSketchHead head;
	pg_atomic_uint32 slot[SKETCH_NBUCKETS / CH_WINDOW_CHUNK];
} ChScopeWindow;

/*
 * A statement is a query id *and* a sqlc name: texts that PostgreSQL (or
 * our text ids) give one query id but that sqlc names differently are
 * different statements, each with its own row (namehash 0: no name).
 */
typedef struct ChStmtKey
{
	Oid			dbid;
	Oid			userid;
	uint64		queryid;
	uint64		namehash;
	bool		toplevel;
} ChStmtKey;

typedef struct ChStmtEntry
{
	ChStmtKey	key;			/* hash key: must be first */
	char		name[QUERY_NAME_LEN];	/* sqlc name, "" when none */
	/* text: written once by whoever moves text_state from EMPTY to
	 * WRITING; read only once it is SET; its CH_POOL_TEXT blocks */
	pg_atomic_uint32 text_state;
	int			text_encoding;
	uint32		text_block;		/* first block + 1; 0 = none */
	TimestampTz first_seen;
	pg_atomic_uint64 last_seen; /* TimestampTz */
	ChSketch	total;
	ChWindow	window[CH_STMT_WINDOWS];
} ChStmtEntry;

#define CH_TEXT_EMPTY 0
#define CH_TEXT_WRITING 1
#define CH_TEXT_SET 2

typedef enum ChScopeKind
{
	CH_SCOPE_FREE = 0,
	CH_SCOPE_DATABASE,
	CH_SCOPE_CLIENT
} ChScopeKind;

/* Per-database and per-client (Coder Server) aggregates. */
typedef struct ChScope
{
	ChScopeKind kind;
	Oid			dbid;
	char		client_addr[CH_CLIENT_ADDR_LEN];
	pg_atomic_uint64 last_seen;
	ChScopeSketch total;
	ChScopeWindow window[CH_SCOPE_WINDOWS];
} ChScope;

/* The latency part of shared memory. */
typedef struct ChLatencyShared
{
	/* window clock: step number and when each step started */
	pg_atomic_uint64 step;
	TimestampTz step_start[CH_SCOPE_WINDOWS];
	TimestampTz reset_time;

	/* chunk and text pools (latency_sketch.c) */
	ChPool		pool[CH_NPOOLS];

	pg_atomic_uint64 evictions;
	pg_atomic_uint64 dropped_table_full;
	pg_atomic_uint64 dropped_no_chunk;
	/* bumped whenever entries are removed (reset, eviction): backends
	 * then post names and texts again (latency_names.c) */
	pg_atomic_uint64 forgets;
	int			max_scopes;
	int			nslots;
} ChLatencyShared;

/* An entry as saved on disk (everything but the rolling windows;
 * latency_persist.c). */
typedef struct ChSavedEntry
{
	ChStmtKey	key;
	char		name[QUERY_NAME_LEN];
	TimestampTz first_seen;
	TimestampTz last_seen;
	uint64		calls;
	uint64		errors;
	uint64		sum_ns;
	uint64		min_ns;
	uint64		max_ns;
	uint32		nbuckets;		/* (uint16 index, uint64 count) pairs follow */
} ChSavedEntry;

/* latency_store.c */
extern ChLatencyShared *ch_latency;
extern ChBackendSlot *ch_slots;
extern ChScope *ch_scopes;
extern HTAB *ch_statements;
extern Size ch_latency_shmem_size(void);
extern void ch_latency_shmem_init(void);
extern Size ch_latency_used_bytes(void);
extern bool ch_fold_slot(ChBackendSlot *slot, bool wait);
extern void ch_latency_collect(TimestampTz now);
extern void ch_latency_prepare_buckets(void);
/* A shared sketch copied out for reading. */
typedef struct ChReadout
{
	uint64		calls;
	uint64		errors;
	int			lo;				/* buckets outside [lo, hi] are zero */
	int			hi;
	sketch_t	sk;
} ChReadout;

extern ChReadout *ch_readout_alloc(void);
extern void ch_readout_reset(ChReadout *r);
extern void ch_readout_quantiles(const ChReadout *r, const double *qs, int nq,
								 double *out);
extern long ch_statements_tracked(void);
extern HTAB *ch_statement_table(void);
extern void ch_latency_reset(bool all, uint64 queryid);
extern void ch_latency_forget(bool all, uint64 queryid);
extern void ch_latency_rotate_and_evict(TimestampTz now);
extern bool ch_restore_entry(const ChSavedEntry *saved, const uint16 *buckets,
							 const uint64 *counts, int nbuckets,
							 const char *text, int text_encoding);
extern bool ch_entry_set_text(ChStmtEntry *entry, const char *text,
							  int encoding);
extern bool ch_entry_text(ChStmtEntry *entry, char *buf, int *encoding);
extern Size ch_statement_slot_bytes(void);
extern void ch_entry_init(ChStmtEntry *entry, TimestampTz now);

/* latency_fold.c */
extern void ch_fold_all_slots(void);

/*
 * latency_sketch.c: the pools, and sketches whose buckets live in them.
 * The typed macros pass a sketch's slots and pool; any lock held (shared
 * at least) while reading, so no chunk is given back under the reader.
 */
extern Size ch_pool_shmem_size(void);
extern void ch_pool_shmem_init(bool found);
extern int	ch_pool_percent_used(void);
extern Size ch_pool_used_bytes(void);
extern void ch_sketch_init(ChSketchHead *head, pg_atomic_uint32 *slots,
						   int nslots);
extern void ch_sketch_clear(ChSketchHead *head, pg_atomic_uint32 *slots,
							int nslots);
extern void *ch_sketch_chunk(pg_atomic_uint32 *slots, int nslots,
							 ChPoolId pool, int range);
extern void ch_sketch_read(ChSketchHead *head, pg_atomic_uint32 *slots,
						   int nslots, ChPoolId pool, ChReadout *out);
extern void ch_window_span(int steps, uint64 *first, uint64 *last,
						   TimestampTz *since);
extern uint32 ch_text_store(const char *text);
extern void ch_text_copy(uint32 block, char *buf);
extern void ch_text_free(uint32 block);

#define CH_SKETCH_SLOTS(sk) (sk)->slot, lengthof((sk)->slot)
#define ch_sketch_init_of(sk) ch_sketch_init(&(sk)->head, CH_SKETCH_SLOTS(sk))
#define ch_sketch_clear_of(sk) ch_sketch_clear(&(sk)->head, CH_SKETCH_SLOTS(sk))
/* a total (ChSketch, ChScopeSketch) or one window (ChWindow, ChScopeWindow) */
#define ch_read_sketch(sk, out) \
	ch_sketch_read(&(sk)->head, CH_SKETCH_SLOTS(sk), CH_POOL_TOTAL, (out))
#define ch_read_window(w, out) \
	ch_sketch_read(&(w)->head, CH_SKETCH_SLOTS(w), CH_POOL_WINDOW, (out))
/*
 * Merge the last `steps` complete windows and the current one into dst;
 * *since (when not NULL) gets the start of the oldest merged window.
 */
#define ch_read_windows(windows, nwindows, steps, dst, since) \
	do { \
		uint64		first_, last_; \
		\
		ch_window_span((steps), &first_, &last_, (since)); \
		for (uint64 s_ = first_; s_ <= last_; s_++) \
			ch_read_window(&(windows)[s_ % (nwindows)], (dst)); \
	} while (0)



/* latency_persist.c: its section of the statistics file (core/persist.h) */
#define CH_LATENCY_SECTION_VERSION 1
struct ChStatsWriter;
struct ChStatsReader;
extern void ch_latency_save(struct ChStatsWriter *w, uint32 *count);
extern const char *ch_latency_load(struct ChStatsReader *r, uint32 version,
								   bool restore, uint32 *count);

/* latency_history.c: its series of the history (core/history.h) */
typedef enum ChLatencyHistoryMetric
{
	CH_LATENCY_HM_P99_MS,		/* key: database oid (the view shows its name) */
	CH_LATENCY_HM_CALLS_PER_S,
	CH_LATENCY_HM_COUNT
} ChLatencyHistoryMetric;
struct ChStatusRow;
extern const ChHistoryMetric ch_latency_history_metrics[CH_LATENCY_HM_COUNT];
extern void ch_latency_history_sample(TimestampTz now, ChHistorySink *sink);
/* latency_store.c: its columns of coder_health.status() (core/status.h) */
extern void ch_latency_status(struct ChStatusRow *row);

/* latency_timing.c (preload: only what is not a hook; src/hooks.c
 * installs the hooks) */
extern void ch_latency_preload(void);
extern void ch_flush_my_samples(void);

/* this feature's entry in the module list (core/module.h, src/coder_health.c) */
extern const struct ChModule ch_latency_module;

#endif							/* CODER_HEALTH_LATENCY_H */
