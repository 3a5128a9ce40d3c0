/*-------------------------------------------------------------------------
 *
 * latency_store.c
 *	  Where statement latency lives in shared memory, and how samples get
 *	  there: per-backend sample rings, the statement table, database and
 *	  client aggregates, the sketch chunk pool, window rotation, eviction.
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
#include "core/module.h"
#include "core/status.h"

ChLatencyShared *ch_latency = NULL;
ChBackendSlot *ch_slots = NULL;
ChScope    *ch_scopes = NULL;
static HTAB *ch_statements = NULL;
static pg_atomic_uint64 *ch_pool = NULL;	/* pool_size chunks of SKETCH_CHUNK */
static int *ch_pool_next = NULL;	/* free list links, index + 1 */

/* ------------------------------------------------------------------------
 * Sizing and setup
 * ------------------------------------------------------------------------
 */

static int
pool_chunks(void)
{
	return ch_max_statements * CH_CHUNKS_PER_STATEMENT +
		ch_max_clients * CH_CHUNKS_PER_SCOPE;
}

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
	size = add_size(size, mul_size(pool_chunks(),
								   SKETCH_CHUNK * sizeof(pg_atomic_uint64)));
	size = add_size(size, mul_size(pool_chunks(), sizeof(int)));
	size = add_size(size, hash_estimate_size(ch_max_statements,
											 sizeof(ChStmtEntry)));
	return size;
}

static void
sketch_init(ChSketch *sk)
{
	pg_atomic_init_u64(&sk->calls, 0);
	pg_atomic_init_u64(&sk->errors, 0);
	pg_atomic_init_u64(&sk->sum_ns, 0);
	pg_atomic_init_u64(&sk->min_ns, PG_UINT64_MAX);
	pg_atomic_init_u64(&sk->max_ns, 0);
	for (int c = 0; c < SKETCH_NCHUNKS; c++)
		pg_atomic_init_u32(&sk->chunk[c], 0);
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
	int			npool = pool_chunks();
	TimestampTz now = GetCurrentTimestamp();

	ch_latency = ShmemInitStruct("coder_health latency",
								 sizeof(ChLatencyShared), &found);
	ch_slots = ShmemInitStruct("coder_health backend slots",
							   mul_size(nslots, sizeof(ChBackendSlot)),
							   &found);
	ch_scopes = ShmemInitStruct("coder_health scopes",
								mul_size(max_scopes(), sizeof(ChScope)),
								&found);
	ch_pool = ShmemInitStruct("coder_health sketch chunks",
							  mul_size(npool, SKETCH_CHUNK * sizeof(pg_atomic_uint64)),
							  &found);
	ch_pool_next = ShmemInitStruct("coder_health sketch chunk links",
								   mul_size(npool, sizeof(int)), &found);

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ChStmtKey);
	info.entrysize = sizeof(ChStmtEntry);
	ch_statements = ShmemInitHash("coder_health statements",
								  ch_max_statements, ch_max_statements,
								  &info, HASH_ELEM | HASH_BLOBS);

	if (found)
		return;

	pg_atomic_init_u64(&ch_latency->step, 0);
	for (int i = 0; i < CH_SCOPE_WINDOWS; i++)
		ch_latency->step_start[i] = now;
	ch_latency->reset_time = now;
	SpinLockInit(&ch_latency->pool_lock);
	ch_latency->pool_size = npool;
	ch_latency->pool_in_use = 0;
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
		sketch_init(&scope->total);
		for (int w = 0; w < CH_SCOPE_WINDOWS; w++)
			sketch_init(&scope->window[w]);
	}
	for (long i = 0; i < (long) npool * SKETCH_CHUNK; i++)
		pg_atomic_init_u64(&ch_pool[i], 0);
	for (int i = 0; i < npool; i++)
		ch_pool_next[i] = (i + 1 < npool) ? i + 2 : 0;
	ch_latency->pool_free_head = npool > 0 ? 1 : 0;
}

/* Bytes that hold data now: tracked statements, used scopes, used chunks. */
Size
ch_latency_used_bytes(void)
{
	Size		size = MAXALIGN(sizeof(ChLatencyShared));
	int			in_use;

	size += ch_latency->nslots * sizeof(ChBackendSlot);
	size += ch_latency->max_scopes * sizeof(ChScope);
	size += ch_statements_tracked() * sizeof(ChStmtEntry);
	SpinLockAcquire(&ch_latency->pool_lock);
	in_use = ch_latency->pool_in_use;
	SpinLockRelease(&ch_latency->pool_lock);
	size += (Size) in_use * (SKETCH_CHUNK * sizeof(pg_atomic_uint64) + sizeof(int));
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
 * Chunk pool
 * ------------------------------------------------------------------------
 */

static inline pg_atomic_uint64 *
chunk_data(uint32 ref)
{
	return &ch_pool[(Size) (ref - 1) * SKETCH_CHUNK];
}

static uint32
pool_alloc(void)
{
	uint32		ref;

	SpinLockAcquire(&ch_latency->pool_lock);
	ref = (uint32) ch_latency->pool_free_head;
	if (ref != 0)
	{
		ch_latency->pool_free_head = ch_pool_next[ref - 1];
		ch_latency->pool_in_use++;
	}
	SpinLockRelease(&ch_latency->pool_lock);
	return ref;
}

/* Give a chunk back; it is zeroed first so that the next owner starts clean. */
static void
pool_free(uint32 ref)
{
	pg_atomic_uint64 *data = chunk_data(ref);

	for (int i = 0; i < SKETCH_CHUNK; i++)
		pg_atomic_write_u64(&data[i], 0);
	SpinLockAcquire(&ch_latency->pool_lock);
	ch_pool_next[ref - 1] = ch_latency->pool_free_head;
	ch_latency->pool_free_head = (int) ref;
	ch_latency->pool_in_use--;
	SpinLockRelease(&ch_latency->pool_lock);
}

static int
pool_percent_used(void)
{
	int			used;

	SpinLockAcquire(&ch_latency->pool_lock);
	used = ch_latency->pool_size > 0 ?
		(int) ((int64) ch_latency->pool_in_use * 100 / ch_latency->pool_size) : 100;
	SpinLockRelease(&ch_latency->pool_lock);
	return used;
}

/* The counters of chunk c of a sketch, taking a chunk from the pool on
 * first use.  NULL when the pool is empty. */
static pg_atomic_uint64 *
sketch_chunk(ChSketch *sk, int c)
{
	uint32		ref = pg_atomic_read_u32(&sk->chunk[c]);

	if (ref == 0)
	{
		uint32		fresh = pool_alloc();
		uint32		expected = 0;

		if (fresh == 0)
			return NULL;
		if (pg_atomic_compare_exchange_u32(&sk->chunk[c], &expected, fresh))
			ref = fresh;
		else
		{
			/* another folder installed one first; ours was never visible */
			pool_free(fresh);
			ref = expected;
		}
	}
	return chunk_data(ref);
}

/* Empty a sketch and give its chunks back.  Exclusive lock held. */
static void
sketch_clear(ChSketch *sk)
{
	for (int c = 0; c < SKETCH_NCHUNKS; c++)
	{
		uint32		ref = pg_atomic_exchange_u32(&sk->chunk[c], 0);

		if (ref != 0)
			pool_free(ref);
	}
	pg_atomic_write_u64(&sk->calls, 0);
	pg_atomic_write_u64(&sk->errors, 0);
	pg_atomic_write_u64(&sk->sum_ns, 0);
	pg_atomic_write_u64(&sk->min_ns, PG_UINT64_MAX);
	pg_atomic_write_u64(&sk->max_ns, 0);
}

/* Copy a shared sketch into a local one.  Shared (or exclusive) lock held,
 * so no chunk can be freed under us. */
/* A readout to merge sketches into; palloc'd, empty. */
ChReadout *
ch_readout_alloc(void)
{
	ChReadout  *r = palloc0(sizeof(ChReadout));

	r->lo = SKETCH_NBUCKETS;
	r->hi = -1;
	ch_readout_reset(r);
	return r;
}

/* Empty a readout: only the buckets it used need clearing. */
void
ch_readout_reset(ChReadout *r)
{
	if (r->lo <= r->hi)
		memset(&r->sk.bucket[r->lo], 0, sizeof(uint64) * (r->hi - r->lo + 1));
	r->lo = SKETCH_NBUCKETS;
	r->hi = -1;
	r->calls = 0;
	r->errors = 0;
	r->sk.count = 0;
	r->sk.sum_ns = 0;
	r->sk.min_ns = PG_UINT64_MAX;
	r->sk.max_ns = 0;
}

void
ch_readout_quantiles(const ChReadout *r, const double *qs, int nq, double *out)
{
	if (r->lo > r->hi)
	{
		for (int k = 0; k < nq; k++)
			out[k] = NAN;
		return;
	}
	sketch_quantiles_range(&r->sk, r->lo, r->hi, qs, nq, out);
}

void
ch_read_sketch(const ChSketch *src, ChReadout *out)
{
	sketch_t   *dst = &out->sk;
	ChSketch   *sk = (ChSketch *) src;	/* atomics reads take non-const */
	uint64		min_ns = pg_atomic_read_u64(&sk->min_ns);
	uint64		max_ns = pg_atomic_read_u64(&sk->max_ns);

	for (int c = 0; c < SKETCH_NCHUNKS; c++)
	{
		uint32		ref = pg_atomic_read_u32(&sk->chunk[c]);
		pg_atomic_uint64 *data;

		if (ref == 0)
			continue;
		data = chunk_data(ref);
		out->lo = Min(out->lo, c * SKETCH_CHUNK);
		out->hi = Max(out->hi, c * SKETCH_CHUNK + SKETCH_CHUNK - 1);
		for (int i = 0; i < SKETCH_CHUNK; i++)
		{
			uint64		n = pg_atomic_read_u64(&data[i]);

			if (n != 0)
			{
				dst->bucket[c * SKETCH_CHUNK + i] += n;
				dst->count += n;
			}
		}
	}
	out->calls += pg_atomic_read_u64(&sk->calls);
	out->errors += pg_atomic_read_u64(&sk->errors);
	dst->sum_ns += pg_atomic_read_u64(&sk->sum_ns);
	if (min_ns < dst->min_ns)
		dst->min_ns = min_ns;
	if (max_ns > dst->max_ns)
		dst->max_ns = max_ns;
}

/* ------------------------------------------------------------------------
 * Windows
 * ------------------------------------------------------------------------
 */

/*
 * Merge the last `steps` complete windows and the current one into dst;
 * *since gets the start of the oldest merged window.  Lock held.
 */
void
ch_read_windows(const ChSketch *windows, int nwindows, int steps,
				ChReadout *dst, TimestampTz *since)
{
	uint64		step = pg_atomic_read_u64(&ch_latency->step);
	uint64		first = step >= (uint64) steps ? step - steps : 0;

	for (uint64 s = first; s <= step; s++)
		ch_read_sketch(&windows[s % nwindows], dst);
	if (since)
		*since = ch_latency->step_start[first % CH_SCOPE_WINDOWS];
}

/* Start a new window step: empty the slots it reuses.  Exclusive lock. */
static void
rotate_windows(TimestampTz now)
{
	uint64		next = pg_atomic_read_u64(&ch_latency->step) + 1;
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;

	hash_seq_init(&hs, ch_statements);
	while ((entry = hash_seq_search(&hs)) != NULL)
		sketch_clear(&entry->window[next % CH_STMT_WINDOWS]);
	for (int i = 0; i < ch_latency->max_scopes; i++)
		if (ch_scopes[i].kind != CH_SCOPE_FREE)
			sketch_clear(&ch_scopes[i].window[next % CH_SCOPE_WINDOWS]);
	ch_latency->step_start[next % CH_SCOPE_WINDOWS] = now;
	pg_atomic_write_u64(&ch_latency->step, next);
}

/* ------------------------------------------------------------------------
 * Folding samples
 * ------------------------------------------------------------------------
 */

/* A local batch of durations bound for one sketch pair (total + window). */
typedef struct ChDelta
{
	uint64		calls;
	uint64		errors;
	uint64		sum_ns;
	uint64		min_ns;
	uint64		max_ns;
	int			ntouched;
	uint16		touched[CH_RING_SIZE];
	uint32		counts[SKETCH_NBUCKETS];
} ChDelta;

static ChDelta stmt_delta;
static ChDelta scope_delta;

/*
 * Statement durations are whole microseconds (TimestampTz): the buckets of
 * the first CH_US_BUCKETS of them, looked up instead of computed (8 against
 * about 45 instructions a sample).  Filled by sketch_index itself in
 * _PG_init, so a lookup gives exactly what sketch_index would.
 */
#define CH_US_BUCKETS 8192
static uint16 us_bucket[CH_US_BUCKETS];
static bool us_bucket_ready = false;

void
ch_latency_prepare_buckets(void)
{
	for (int us = 0; us < CH_US_BUCKETS; us++)
		us_bucket[us] = (uint16) sketch_index((uint64) us * 1000);
	us_bucket_ready = true;
}

static inline int
sample_bucket(uint64 ns)
{
	uint64		us = ns / 1000;

	if (likely(us < CH_US_BUCKETS && us * 1000 == ns && us_bucket_ready))
		return us_bucket[us];
	return sketch_index(ns);
}

static void
delta_reset(ChDelta *d)
{
	d->calls = 0;
	d->errors = 0;
	d->sum_ns = 0;
	d->min_ns = PG_UINT64_MAX;
	d->max_ns = 0;
	d->ntouched = 0;
}

static inline void
delta_add(ChDelta *d, const ChSample *s, int bucket)
{
	d->calls++;
	if (s->flags & CH_SAMPLE_ERROR)
	{
		d->errors++;
		if (!ch_include_errors)
			return;
	}
	if (d->counts[bucket]++ == 0)
		d->touched[d->ntouched++] = (uint16) bucket;
	d->sum_ns += s->duration_ns;
	if (s->duration_ns < d->min_ns)
		d->min_ns = s->duration_ns;
	if (s->duration_ns > d->max_ns)
		d->max_ns = s->duration_ns;
}

static inline void
atomic_min_u64(pg_atomic_uint64 *p, uint64 v)
{
	uint64		cur = pg_atomic_read_u64(p);

	while (v < cur && !pg_atomic_compare_exchange_u64(p, &cur, v))
		;
}

static inline void
atomic_max_u64(pg_atomic_uint64 *p, uint64 v)
{
	uint64		cur = pg_atomic_read_u64(p);

	while (v > cur && !pg_atomic_compare_exchange_u64(p, &cur, v))
		;
}

static void
delta_apply_one(const ChDelta *d, ChSketch *sk)
{
	/* durations close together share a chunk: look each one up once */
	int			cur = -1;
	pg_atomic_uint64 *data = NULL;

	for (int i = 0; i < d->ntouched; i++)
	{
		int			b = d->touched[i];

		if (b / SKETCH_CHUNK != cur)
		{
			cur = b / SKETCH_CHUNK;
			data = sketch_chunk(sk, cur);
		}
		if (data == NULL)
		{
			pg_atomic_fetch_add_u64(&ch_latency->dropped_no_chunk, d->counts[b]);
			continue;
		}
		pg_atomic_fetch_add_u64(&data[b % SKETCH_CHUNK], d->counts[b]);
	}
	pg_atomic_fetch_add_u64(&sk->calls, d->calls);
	if (d->errors)
		pg_atomic_fetch_add_u64(&sk->errors, d->errors);
	pg_atomic_fetch_add_u64(&sk->sum_ns, d->sum_ns);
	if (d->min_ns != PG_UINT64_MAX)
		atomic_min_u64(&sk->min_ns, d->min_ns);
	atomic_max_u64(&sk->max_ns, d->max_ns);
}

/*
 * Add a statement's delta to its total and current window, then move it into
 * the database/client delta (into): a sample is counted once, in the
 * statement's delta, and reaches the aggregates through it.
 */
static void
delta_apply(ChDelta *d, ChSketch *total, ChSketch *window, ChDelta *into)
{
	if (d->calls == 0)
		return;
	delta_apply_one(d, total);
	delta_apply_one(d, window);
	for (int i = 0; i < d->ntouched; i++)
	{
		int			b = d->touched[i];

		if (into->counts[b] == 0)
			into->touched[into->ntouched++] = (uint16) b;
		into->counts[b] += d->counts[b];
		d->counts[b] = 0;
	}
	into->calls += d->calls;
	into->errors += d->errors;
	into->sum_ns += d->sum_ns;
	if (d->min_ns < into->min_ns)
		into->min_ns = d->min_ns;
	if (d->max_ns > into->max_ns)
		into->max_ns = d->max_ns;
	delta_reset(d);
}

static void
delta_discard(ChDelta *d)
{
	for (int i = 0; i < d->ntouched; i++)
		d->counts[d->touched[i]] = 0;
	delta_reset(d);
}

/* Find or claim the aggregate for a database or a client.  Exclusive lock. */
static int
scope_find_or_create(ChScopeKind kind, Oid dbid, const char *addr)
{
	int			free_slot = -1;

	for (int i = 0; i < ch_latency->max_scopes; i++)
	{
		ChScope    *scope = &ch_scopes[i];

		if (scope->kind == CH_SCOPE_FREE)
		{
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (scope->kind == kind && scope->dbid == dbid &&
			(kind != CH_SCOPE_CLIENT ||
			 strncmp(scope->client_addr, addr, CH_CLIENT_ADDR_LEN) == 0))
			return i;
	}
	if (free_slot < 0)
		return -2;				/* full: do not try again for this backend */
	ch_scopes[free_slot].kind = kind;
	ch_scopes[free_slot].dbid = dbid;
	strlcpy(ch_scopes[free_slot].client_addr,
			kind == CH_SCOPE_CLIENT ? addr : "", CH_CLIENT_ADDR_LEN);
	return free_slot;
}

static bool
acquire(LWLockMode mode, bool wait)
{
	if (wait)
	{
		LWLockAcquire(ch_shared->lock, mode);
		return true;
	}
	return LWLockConditionalAcquire(ch_shared->lock, mode);
}

/* Make sure the slot's database and client aggregates are known. */
static bool
resolve_scopes(ChBackendSlot *slot, bool wait)
{
	if (slot->db_scope != -1 && slot->client_scope != -1)
		return true;
	if (!acquire(LW_EXCLUSIVE, wait))
		return false;
	if (slot->db_scope == -1)
		slot->db_scope = scope_find_or_create(CH_SCOPE_DATABASE, slot->dbid, NULL);
	if (slot->client_scope == -1)
		slot->client_scope = scope_find_or_create(CH_SCOPE_CLIENT, slot->dbid,
												  slot->client_addr);
	LWLockRelease(ch_shared->lock);
	return true;
}

/* Create the entry for a key.  Takes and releases the exclusive lock;
 * false when the lock was busy (and we may not wait). */
static bool
create_entry(const ChStmtKey *key, bool wait, TimestampTz now)
{
	ChStmtEntry *entry;
	bool		found = true;

	if (!acquire(LW_EXCLUSIVE, wait))
		return false;
	/*
	 * A shared hash table can grow into spare shared memory past the size it
	 * was created with, so the limit is enforced here.  The collector evicts
	 * from 90% on, so reaching it means the table filled faster than one
	 * collector cycle: the sample is counted as dropped.
	 */
	if (hash_get_num_entries(ch_statements) >= ch_max_statements)
		entry = hash_search(ch_statements, key, HASH_FIND, NULL);
	else
		entry = hash_search(ch_statements, key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
		pg_atomic_fetch_add_u64(&ch_latency->dropped_table_full, 1);
	else if (!found)
	{
		/*
		 * first_seen and last_seen come from the same clock reading (the
		 * fold's), so first_seen <= last_seen always holds.
		 */
		entry->name[0] = '\0';
		pg_atomic_init_u32(&entry->text_state, CH_TEXT_EMPTY);
		entry->text_encoding = 0;
		entry->text[0] = '\0';
		entry->first_seen = now;
		pg_atomic_init_u64(&entry->last_seen, (uint64) now);
		sketch_init(&entry->total);
		for (int w = 0; w < CH_STMT_WINDOWS; w++)
			sketch_init(&entry->window[w]);
	}
	LWLockRelease(ch_shared->lock);
	return true;
}

static void
apply_scopes(ChBackendSlot *slot, uint64 step, TimestampTz now)
{
	int			scopes[2] = {slot->db_scope, slot->client_scope};

	if (scope_delta.calls == 0)
		return;
	for (int i = 0; i < 2; i++)
	{
		ChScope    *scope;

		if (scopes[i] < 0)
			continue;
		scope = &ch_scopes[scopes[i]];
		delta_apply_one(&scope_delta, &scope->total);
		delta_apply_one(&scope_delta, &scope->window[step % CH_SCOPE_WINDOWS]);
		pg_atomic_write_u64(&scope->last_seen, (uint64) now);
	}
	delta_discard(&scope_delta);
}

/*
 * Give an entry its text, unless it has one: the first text given stays
 * (texts with one query id differ at most in spacing, case or aliases).
 * Any lock on the table held (shared: several folders may try at once; the
 * one that moves text_state from EMPTY writes, readers wait for SET).
 */
bool
ch_entry_set_text(ChStmtEntry *entry, const char *text, int encoding)
{
	uint32		expected = CH_TEXT_EMPTY;

	if (pg_atomic_read_u32(&entry->text_state) != CH_TEXT_EMPTY ||
		!pg_atomic_compare_exchange_u32(&entry->text_state, &expected,
										CH_TEXT_WRITING))
		return false;
	strlcpy(entry->text, text, CH_TEXT_LEN);
	entry->text_encoding = encoding;
	pg_write_barrier();
	pg_atomic_write_u32(&entry->text_state, CH_TEXT_SET);
	return true;
}

/* An entry's text and its encoding, or NULL while it has none.  Lock held. */
const char *
ch_entry_text(ChStmtEntry *entry, int *encoding)
{
	if (pg_atomic_read_u32(&entry->text_state) != CH_TEXT_SET)
		return NULL;
	pg_read_barrier();
	*encoding = entry->text_encoding;
	return entry->text;
}

/*
 * Give entries the sqlc names and texts their backend found.  Shared lock held.  A
 * note may arrive before its statement's sample (see below).  Two backends
 * may name one entry at once: they write the same bytes.
 */
static void
apply_names(ChBackendSlot *slot)
{
	uint64		head = pg_atomic_read_u64(&slot->note_head);
	uint64		tail = pg_atomic_read_u64(&slot->note_tail);
	ChStmtKey	key;

	pg_read_barrier();
	memset(&key, 0, sizeof(key));
	key.dbid = slot->dbid;
	for (; tail < head; tail++)
	{
		const ChNameNote *note = &slot->notes[tail % CH_NAME_NOTES];
		ChStmtEntry *entry;

		key.queryid = note->queryid;
		key.namehash = note->namehash;
		key.userid = note->userid;
		key.toplevel = note->toplevel;
		entry = hash_search(ch_statements, &key, HASH_FIND, NULL);
		if (entry == NULL)
		{
			/*
			 * Its sample is not folded yet (an autocommit statement is
			 * recorded at its commit, after its note): keep the note for the
			 * next fold, unless the ring is full (then the entry never came:
			 * table full) and the note gives way.
			 */
			if (head - tail < CH_NAME_NOTES)
				break;
			continue;
		}
		if (entry->name[0] == '\0')
			strlcpy(entry->name, note->name, QUERY_NAME_LEN);
		if (note->text[0] != '\0')
			(void) ch_entry_set_text(entry, note->text, note->encoding);
	}
	pg_memory_barrier();
	pg_atomic_write_u64(&slot->note_tail, tail);
}

/*
 * Fold the samples waiting in a backend's ring into the shared sketches.
 *
 * wait = false (a backend folding its own ring): only ever try locks; on a
 * busy lock stop and leave the rest for later.  wait = true: the collector,
 * or a backend at exit.  Returns true when the ring was emptied.
 */
bool
ch_fold_slot(ChBackendSlot *slot, bool wait)
{
	uint64		head;
	uint64		tail;
	uint64		step;
	ChStmtKey	key;
	ChStmtEntry *entry = NULL;
	TimestampTz now;
	bool		locked;

	if (!pg_atomic_test_set_flag(&slot->folding))
		return false;			/* someone else is folding it right now */

	tail = pg_atomic_read_u64(&slot->tail);
	head = pg_atomic_read_u64(&slot->head);
	pg_read_barrier();
	if (head == tail &&
		pg_atomic_read_u64(&slot->note_head) == pg_atomic_read_u64(&slot->note_tail))
	{
		pg_atomic_clear_flag(&slot->folding);
		return true;
	}
	if (!resolve_scopes(slot, wait))
	{
		pg_atomic_clear_flag(&slot->folding);
		return false;
	}
	if (!acquire(LW_SHARED, wait))
	{
		pg_atomic_clear_flag(&slot->folding);
		return false;
	}
	locked = true;
	now = GetCurrentTimestamp();
	step = pg_atomic_read_u64(&ch_latency->step);
	delta_reset(&stmt_delta);
	delta_reset(&scope_delta);
	memset(&key, 0, sizeof(key));	/* padding is part of the hash key */
	key.dbid = slot->dbid;

	while (tail < head)
	{
		const ChSample *s = &slot->ring[tail % CH_RING_SIZE];
		int			bucket = sample_bucket(s->duration_ns);
		bool		toplevel = (s->flags & CH_SAMPLE_TOPLEVEL) != 0;

		if (s->queryid == UINT64CONST(0))
		{
			/* an error before any statement began: aggregates only */
			delta_add(&scope_delta, s, bucket);
			tail++;
			continue;
		}
		if (entry == NULL || s->queryid != key.queryid ||
			s->namehash != key.namehash ||
			s->userid != key.userid || toplevel != key.toplevel)
		{
			if (entry != NULL)
				delta_apply(&stmt_delta, &entry->total,
							&entry->window[step % CH_STMT_WINDOWS], &scope_delta);
			key.queryid = s->queryid;
			key.namehash = s->namehash;
			key.userid = s->userid;
			key.toplevel = toplevel;
			entry = hash_search(ch_statements, &key, HASH_FIND, NULL);
			if (entry == NULL)
			{
				bool		created;

				/*
				 * A new statement: the one moment a fold needs the exclusive
				 * lock.  Everything gathered so far is applied first.
				 */
				apply_scopes(slot, step, now);
				LWLockRelease(ch_shared->lock);
				locked = false;
				created = create_entry(&key, wait, now);
				if (!created || !acquire(LW_SHARED, wait))
					break;
				locked = true;
				/* the window may have rotated while we were unlocked */
				step = pg_atomic_read_u64(&ch_latency->step);
				entry = hash_search(ch_statements, &key, HASH_FIND, NULL);
				if (entry == NULL)
				{
					/* table full: the sample is counted as dropped */
					tail++;
					continue;
				}
			}
			pg_atomic_write_u64(&entry->last_seen, (uint64) now);
		}
		/* the aggregates get it with the statement's delta */
		delta_add(&stmt_delta, s, bucket);
		tail++;
	}

	if (locked)
	{
		if (entry != NULL)
			delta_apply(&stmt_delta, &entry->total,
						&entry->window[step % CH_STMT_WINDOWS], &scope_delta);
		apply_scopes(slot, step, now);
		/* names only once their statements' samples are all in */
		if (tail == head)
			apply_names(slot);
		LWLockRelease(ch_shared->lock);
	}
	else
	{
		delta_discard(&stmt_delta);
		delta_discard(&scope_delta);
	}

	/* every sample before tail has been read: the owner may reuse them */
	pg_memory_barrier();
	pg_atomic_write_u64(&slot->tail, tail);
	pg_atomic_clear_flag(&slot->folding);
	return tail == head;
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
	sketch_clear(&entry->total);
	for (int w = 0; w < CH_STMT_WINDOWS; w++)
		sketch_clear(&entry->window[w]);
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
	bool		pool_tight = pool_percent_used() > 90;
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
			recent += pg_atomic_read_u64(&entry->window[w].calls);
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

/* Fold every backend's waiting samples (the collector; reset). */
static void
fold_all_slots(void)
{
	for (int i = 0; i < ch_latency->nslots; i++)
	{
		ChBackendSlot *slot = &ch_slots[i];

		if (pg_atomic_read_u64(&slot->head) != pg_atomic_read_u64(&slot->tail) ||
			pg_atomic_read_u64(&slot->note_head) != pg_atomic_read_u64(&slot->note_tail))
			(void) ch_fold_slot(slot, true);
	}
}

void
ch_latency_collect(TimestampTz now)
{
	TimestampTz step_start;

	/* fold what idle backends left behind, so views are never stale */
	fold_all_slots();

	LWLockAcquire(ch_shared->lock, LW_EXCLUSIVE);
	step_start = ch_latency->step_start[pg_atomic_read_u64(&ch_latency->step) %
										CH_SCOPE_WINDOWS];
	if (now - step_start >= (int64) ch_window_step_s * USECS_PER_SEC)
		rotate_windows(now);
	evict_if_needed();
	LWLockRelease(ch_shared->lock);
}

/*
 * Forget statistics: everything (all = true), or the entries of one queryid.
 */
void
ch_latency_reset(bool all, uint64 queryid)
{
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;
	TimestampTz now = GetCurrentTimestamp();

	/*
	 * Statements that ended before the reset but still wait in a ring belong
	 * to the time before it: fold them now so that the reset forgets them.
	 */
	fold_all_slots();

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
			sketch_clear(&scope->total);
			for (int w = 0; w < CH_SCOPE_WINDOWS; w++)
				sketch_clear(&scope->window[w]);
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

/* For the SQL layer: walk the statement table.  Lock held by the caller. */
HTAB *
ch_statement_table(void)
{
	return ch_statements;
}

const ChModule ch_latency_module = {
	.name = "latency",
	.define_settings = ch_define_latency_settings,
	.shmem_size = ch_latency_shmem_size,
	.shmem_init = ch_latency_shmem_init,
	.install_hooks = ch_latency_install_hooks,
	.collect = ch_latency_collect,
	.used_bytes = ch_latency_used_bytes,
	.status = ch_latency_status,
	.history_metrics = ch_latency_history_metrics,
	.nhistory_metrics = CH_LATENCY_HM_COUNT,
	.history_sample = ch_latency_history_sample,
	.save_version = CH_LATENCY_SECTION_VERSION,
	.saved_what = "statements",
	.save = ch_latency_save,
	.load = ch_latency_load,
};

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
	{
		pg_atomic_init_u32(&entry->text_state, CH_TEXT_EMPTY);
		entry->text[0] = '\0';
		sketch_init(&entry->total);
		for (int w = 0; w < CH_STMT_WINDOWS; w++)
			sketch_init(&entry->window[w]);
	}
	if (text != NULL && text[0] != '\0')
		(void) ch_entry_set_text(entry, text, text_encoding);
	strlcpy(entry->name, saved->name, QUERY_NAME_LEN);
	entry->first_seen = saved->first_seen;
	pg_atomic_write_u64(&entry->last_seen, (uint64) saved->last_seen);
	pg_atomic_write_u64(&entry->total.calls, saved->calls);
	pg_atomic_write_u64(&entry->total.errors, saved->errors);
	pg_atomic_write_u64(&entry->total.sum_ns, saved->sum_ns);
	pg_atomic_write_u64(&entry->total.min_ns, saved->min_ns);
	pg_atomic_write_u64(&entry->total.max_ns, saved->max_ns);
	for (int i = 0; i < nbuckets; i++)
	{
		pg_atomic_uint64 *data = sketch_chunk(&entry->total, buckets[i] / SKETCH_CHUNK);

		if (data == NULL)
			return false;
		pg_atomic_write_u64(&data[buckets[i] % SKETCH_CHUNK], counts[i]);
	}
	return true;
}
