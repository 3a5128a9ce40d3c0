/*-------------------------------------------------------------------------
 *
 * latency_store.c
 *	  Where statement latency lives in shared memory: per-backend sample
 *	  rings, the statement table, database and client aggregates; window
 *	  rotation, eviction, reset.  How samples get there is latency_fold.c;
 *	  the pools their sketches and texts live in, latency_sketch.c.
 *
 * Locking.  ch_shared->lock protects the *layout*: which entries exist and
 * which chunks belong to which sketch.  Folding samples only adds to
 * counters, so it takes the lock in shared mode and uses atomic adds; many
 * backends fold at once.  Creating or evicting entries, rotating windows and
 * resetting take it exclusively.  A backend folding its own samples only
 * ever *tries* the lock: if it is busy the samples wait in the ring for the
 * next attempt or for the collector, so a user's statement never waits on
 * coder_health.  Readers outside this file take it in shared mode only for
 * a copy: the SQL functions, the history sample (latency_history.c) and the
 * statistics file's save (latency_persist.c), which copies every entry into
 * collector-local memory and writes the file after releasing it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "latency.h"
#include "core/status.h"

ChLatencyShared *ch_latency = NULL;
ChBackendSlot *ch_slots = NULL;
ChScope    *ch_scopes = NULL;
HTAB	   *ch_statements = NULL;

/* ------------------------------------------------------------------------
 * Sizing and setup
 * ------------------------------------------------------------------------
 */

static int
max_scopes(void)
{
	/* every client is also counted per database; databases are few */
	return ch_max_clients + 64;
}

Size
ch_latency_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(ChLatencyShared));

	size = add_size(size, mul_size(compat_total_procs(), sizeof(ChBackendSlot)));
	size = add_size(size, mul_size(max_scopes(), sizeof(ChScope)));
	size = add_size(size, ch_pool_shmem_size());
	size = add_size(size, hash_estimate_size(ch_max_statements,
											 sizeof(ChStmtEntry)));
	return size;
}

/*
 * What one max_statements slot reserves: its entry in the table (with the
 * hash table's own overhead) and its share of the three pools.
 */
Size
ch_statement_slot_bytes(void)
{
	return hash_estimate_size(ch_max_statements, sizeof(ChStmtEntry)) /
		ch_max_statements +
		CH_TOTAL_CHUNKS_PER_STATEMENT * CH_TOTAL_CHUNK * sizeof(pg_atomic_uint64) +
		CH_WINDOW_CHUNKS_PER_STATEMENT * CH_WINDOW_CHUNK * sizeof(pg_atomic_uint32) +
		CH_TEXT_BLOCKS_PER_STATEMENT * CH_TEXT_BLOCK;
}

static void
slot_init(ChBackendSlot *slot)
{
	pg_atomic_init_u64(&slot->head, 0);
	pg_atomic_init_u64(&slot->tail, 0);
	pg_atomic_init_flag(&slot->folding);
	pg_atomic_init_u64(&slot->dropped, 0);
	pg_atomic_init_u64(&slot->note_head, 0);
	pg_atomic_init_u64(&slot->note_tail, 0);
	for (int n = 0; n < CH_NAME_NOTES; n++)
		slot->notes[n].done = false;
	slot->dbid = InvalidOid;
	slot->client_addr[0] = '\0';
	slot->db_scope = -1;
	slot->client_scope = -1;
}

/* Called from ch_shmem_startup with AddinShmemInitLock held. */
void
ch_latency_shmem_init(void)
{
	bool		found;
	HASHCTL		info;
	int			nslots = compat_total_procs();
	TimestampTz now = GetCurrentTimestamp();

	ch_latency = ShmemInitStruct("coder_health latency",
								 sizeof(ChLatencyShared), &found);
	ch_slots = ShmemInitStruct("coder_health backend slots",
							   mul_size(nslots, sizeof(ChBackendSlot)),
							   &found);
	ch_scopes = ShmemInitStruct("coder_health scopes",
								mul_size(max_scopes(), sizeof(ChScope)),
								&found);

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ChStmtKey);
	info.entrysize = sizeof(ChStmtEntry);
	ch_statements = ShmemInitHash("coder_health statements",
								  ch_max_statements, ch_max_statements,
								  &info, HASH_ELEM | HASH_BLOBS);
	ch_pool_shmem_init(found);

	if (found)
		return;

	pg_atomic_init_u64(&ch_latency->step, 0);
	for (int i = 0; i < CH_SCOPE_WINDOWS; i++)
		ch_latency->step_start[i] = now;
	ch_latency->reset_time = now;
	pg_atomic_init_u64(&ch_latency->evictions, 0);
	pg_atomic_init_u64(&ch_latency->dropped_table_full, 0);
	pg_atomic_init_u64(&ch_latency->dropped_no_chunk, 0);
	pg_atomic_init_u64(&ch_latency->forgets, 0);
	ch_latency->max_scopes = max_scopes();
	ch_latency->nslots = nslots;

	for (int i = 0; i < nslots; i++)
		slot_init(&ch_slots[i]);
	for (int i = 0; i < ch_latency->max_scopes; i++)
	{
		ChScope    *scope = &ch_scopes[i];

		memset(scope, 0, sizeof(ChScope));
		scope->kind = CH_SCOPE_FREE;
		pg_atomic_init_u64(&scope->last_seen, 0);
		ch_sketch_init_of(&scope->total);
		for (int w = 0; w < CH_SCOPE_WINDOWS; w++)
			ch_sketch_init_of(&scope->window[w]);
	}
}

/* Bytes that hold data now: tracked statements, used scopes, used chunks
 * and text blocks. */
Size
ch_latency_used_bytes(void)
{
	Size		size = MAXALIGN(sizeof(ChLatencyShared));

	size += ch_latency->nslots * sizeof(ChBackendSlot);
	size += ch_latency->max_scopes * sizeof(ChScope);
	size += ch_statements_tracked() * sizeof(ChStmtEntry);
	size += ch_pool_used_bytes();
	return size;
}

long
ch_statements_tracked(void)
{
	return hash_get_num_entries(ch_statements);
}

/* coder_health.status()'s statement columns (core/status.h): atomics and
 * the table's entry count, no lock, as before */
void
ch_latency_status(ChStatusRow *row)
{
	uint64		dropped;

	row->statements_tracked = (int64) ch_statements_tracked();
	row->max_statements = ch_max_statements;
	row->evictions = (int64) pg_atomic_read_u64(&ch_latency->evictions);
	dropped = pg_atomic_read_u64(&ch_latency->dropped_table_full) +
		pg_atomic_read_u64(&ch_latency->dropped_no_chunk);
	for (int s = 0; s < ch_latency->nslots; s++)
		dropped += pg_atomic_read_u64(&ch_slots[s].dropped);
	row->dropped_samples = (int64) dropped;
}

/* ------------------------------------------------------------------------
 * Windows
 * ------------------------------------------------------------------------
 */

/* Start a new window step: empty the slots it reuses.  Exclusive lock. */
static void
rotate_windows(TimestampTz now)
{
	uint64		next = pg_atomic_read_u64(&ch_latency->step) + 1;
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;

	hash_seq_init(&hs, ch_statements);
	while ((entry = hash_seq_search(&hs)) != NULL)
		ch_sketch_clear_of(&entry->window[next % CH_STMT_WINDOWS]);
	for (int i = 0; i < ch_latency->max_scopes; i++)
		if (ch_scopes[i].kind != CH_SCOPE_FREE)
			ch_sketch_clear_of(&ch_scopes[i].window[next % CH_SCOPE_WINDOWS]);
	ch_latency->step_start[next % CH_SCOPE_WINDOWS] = now;
	pg_atomic_write_u64(&ch_latency->step, next);
}

/* ------------------------------------------------------------------------
 * Collector work: drain, rotate, evict
 * ------------------------------------------------------------------------
 */

typedef struct ChEvictCandidate
{
	ChStmtEntry *entry;
	uint64		recent_calls;
	TimestampTz last_seen;
} ChEvictCandidate;

static int
evict_order(const void *a, const void *b)
{
	const ChEvictCandidate *x = a;
	const ChEvictCandidate *y = b;

	if (x->recent_calls != y->recent_calls)
		return x->recent_calls < y->recent_calls ? -1 : 1;
	if (x->last_seen != y->last_seen)
		return x->last_seen < y->last_seen ? -1 : 1;
	return 0;
}

static void
entry_release(ChStmtEntry *entry)
{
	ch_sketch_clear_of(&entry->total);
	for (int w = 0; w < CH_STMT_WINDOWS; w++)
		ch_sketch_clear_of(&entry->window[w]);
	if (entry->text_block != 0)
		ch_text_free(entry->text_block);
	entry->text_block = 0;
}

/*
 * Keep room for new statements: past 90% of max_statements (or of the chunk
 * pool), drop the least used entries (fewest recent calls, then longest
 * unseen) down to 80%.  Exclusive lock held.
 */
static void
evict_if_needed(void)
{
	long		n = hash_get_num_entries(ch_statements);
	long		limit = (long) ch_max_statements * 9 / 10;
	long		target = (long) ch_max_statements * 8 / 10;
	bool		pool_tight = ch_pool_percent_used() > 90;
	ChEvictCandidate *cand;
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;
	long		i = 0;
	long		remove;

	if (n <= limit && !pool_tight)
		return;
	if (pool_tight)
		target = Min(target, n * 8 / 10);

	cand = palloc(sizeof(ChEvictCandidate) * Max(n, 1));
	hash_seq_init(&hs, ch_statements);
	while ((entry = hash_seq_search(&hs)) != NULL && i < n)
	{
		uint64		recent = 0;

		for (int w = 0; w < CH_STMT_WINDOWS; w++)
			recent += pg_atomic_read_u64(&entry->window[w].head.calls);
		cand[i].entry = entry;
		cand[i].recent_calls = recent;
		cand[i].last_seen = (TimestampTz) pg_atomic_read_u64(&entry->last_seen);
		i++;
	}
	qsort(cand, i, sizeof(ChEvictCandidate), evict_order);
	remove = i - target;
	for (long k = 0; k < remove && k < i; k++)
	{
		entry_release(cand[k].entry);
		hash_search(ch_statements, &cand[k].entry->key, HASH_REMOVE, NULL);
		pg_atomic_fetch_add_u64(&ch_latency->evictions, 1);
	}
	if (remove > 0)
		pg_atomic_fetch_add_u64(&ch_latency->forgets, 1);
	pfree(cand);
}

/*
 * The collector's part of a cycle once the rings are folded
 * (latency_module.c): start a new window step when one is due, evict.
 */
void
ch_latency_rotate_and_evict(TimestampTz now)
{
	TimestampTz step_start;

	LWLockAcquire(ch_shared->lock, LW_EXCLUSIVE);
	step_start = ch_latency->step_start[pg_atomic_read_u64(&ch_latency->step) %
										CH_SCOPE_WINDOWS];
	if (now - step_start >= (int64) ch_window_step_s * USECS_PER_SEC)
		rotate_windows(now);
	evict_if_needed();
	LWLockRelease(ch_shared->lock);
}

/*
 * Forget statistics: everything (all = true), or the entries of one
 * queryid.  The rings are folded first (latency_module.c: ch_latency_reset).
 */
void
ch_latency_forget(bool all, uint64 queryid)
{
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(ch_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&hs, ch_statements);
	while ((entry = hash_seq_search(&hs)) != NULL)
	{
		if (!all && entry->key.queryid != queryid)
			continue;
		entry_release(entry);
		hash_search(ch_statements, &entry->key, HASH_REMOVE, NULL);
	}
	pg_atomic_fetch_add_u64(&ch_latency->forgets, 1);
	if (all)
	{
		for (int i = 0; i < ch_latency->max_scopes; i++)
		{
			ChScope    *scope = &ch_scopes[i];

			if (scope->kind == CH_SCOPE_FREE)
				continue;
			ch_sketch_clear_of(&scope->total);
			for (int w = 0; w < CH_SCOPE_WINDOWS; w++)
				ch_sketch_clear_of(&scope->window[w]);
		}
		for (int i = 0; i < CH_SCOPE_WINDOWS; i++)
			ch_latency->step_start[i] = now;
		pg_atomic_write_u64(&ch_latency->step, 0);
		ch_latency->reset_time = now;
		pg_atomic_write_u64(&ch_latency->evictions, 0);
		pg_atomic_write_u64(&ch_latency->dropped_table_full, 0);
		pg_atomic_write_u64(&ch_latency->dropped_no_chunk, 0);
		for (int i = 0; i < ch_latency->nslots; i++)
			pg_atomic_write_u64(&ch_slots[i].dropped, 0);
	}
	LWLockRelease(ch_shared->lock);
}

/*
 * A new entry, empty, seen first at `now`.  first_seen and last_seen come
 * from the same clock reading, so first_seen <= last_seen always holds.
 */
void
ch_entry_init(ChStmtEntry *entry, TimestampTz now)
{
	entry->name[0] = '\0';
	pg_atomic_init_u32(&entry->text_state, CH_TEXT_EMPTY);
	entry->text_encoding = 0;
	entry->text_block = 0;
	entry->first_seen = now;
	pg_atomic_init_u64(&entry->last_seen, (uint64) now);
	ch_sketch_init_of(&entry->total);
	for (int w = 0; w < CH_STMT_WINDOWS; w++)
		ch_sketch_init_of(&entry->window[w]);
}

/*
 * Give an entry its text, unless it has one: the first text given stays
 * (texts with one query id differ at most in spacing, case or aliases).
 * Any lock on the table held (shared: several folders may try at once; the
 * one that moves text_state from EMPTY writes, readers wait for SET).  When
 * the text pool is short the entry stays without text (EMPTY), and a later
 * note may give it one once eviction has made room.
 */
bool
ch_entry_set_text(ChStmtEntry *entry, const char *text, int encoding)
{
	uint32		expected = CH_TEXT_EMPTY;
	uint32		block;

	if (pg_atomic_read_u32(&entry->text_state) != CH_TEXT_EMPTY ||
		!pg_atomic_compare_exchange_u32(&entry->text_state, &expected,
										CH_TEXT_WRITING))
		return false;
	block = ch_text_store(text);
	if (block == 0)
	{
		pg_atomic_write_u32(&entry->text_state, CH_TEXT_EMPTY);
		return false;
	}
	entry->text_block = block;
	entry->text_encoding = encoding;
	pg_write_barrier();
	pg_atomic_write_u32(&entry->text_state, CH_TEXT_SET);
	return true;
}

/* Copy an entry's text (into buf, CH_TEXT_LEN bytes) and its encoding;
 * false while it has none.  Lock held. */
bool
ch_entry_text(ChStmtEntry *entry, char *buf, int *encoding)
{
	if (pg_atomic_read_u32(&entry->text_state) != CH_TEXT_SET)
		return false;
	pg_read_barrier();
	*encoding = entry->text_encoding;
	ch_text_copy(entry->text_block, buf);
	return true;
}

/* For the SQL layer: walk the statement table.  Lock held by the caller. */
HTAB *
ch_statement_table(void)
{
	return ch_statements;
}


/*
 * Recreate an entry from a saved file (latency_persist.c), at startup before
 * anyone else runs.  False when the table or the chunk pool is full.
 */
bool
ch_restore_entry(const ChSavedEntry *saved, const uint16 *buckets,
				 const uint64 *counts, int nbuckets, const char *text,
				 int text_encoding)
{
	ChStmtEntry *entry;
	bool		found;

	if (hash_get_num_entries(ch_statements) >= ch_max_statements)
		return false;
	entry = hash_search(ch_statements, &saved->key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
		return false;
	if (!found)
		ch_entry_init(entry, saved->first_seen);
	if (text != NULL && text[0] != '\0')
		(void) ch_entry_set_text(entry, text, text_encoding);
	strlcpy(entry->name, saved->name, QUERY_NAME_LEN);
	entry->first_seen = saved->first_seen;
	pg_atomic_write_u64(&entry->last_seen, (uint64) saved->last_seen);
	pg_atomic_write_u64(&entry->total.head.calls, saved->calls);
	pg_atomic_write_u64(&entry->total.head.errors, saved->errors);
	pg_atomic_write_u64(&entry->total.head.sum_ns, saved->sum_ns);
	pg_atomic_write_u64(&entry->total.head.min_ns, saved->min_ns);
	pg_atomic_write_u64(&entry->total.head.max_ns, saved->max_ns);
	for (int i = 0; i < nbuckets; i++)
	{
		pg_atomic_uint64 *data = ch_sketch_chunk(CH_SKETCH_SLOTS(&entry->total),
												 CH_POOL_TOTAL,
												 buckets[i] / CH_TOTAL_CHUNK);

		if (data == NULL)
			return false;
		pg_atomic_write_u64(&data[buckets[i] % CH_TOTAL_CHUNK], counts[i]);
	}
	return true;
}
