/*-------------------------------------------------------------------------
 *
 * latency_sketch.c
 *	  The shared pools latency's sketches and texts live in, and the
 *	  sketches themselves: add, read, clear.
 *
 * Locking.  Each pool's free list is guarded by its spinlock, held for a
 * few instructions to take or give back a chunk; nothing else is done
 * under it.  A chunk belongs to a sketch once a compare-and-swap has put
 * it into one of the sketch's slots (filled in order, from 0 only); the
 * folders that add to it hold the latency lock (latency_store.c) in shared
 * mode, and a chunk goes back to its pool only under the exclusive lock
 * (window rotation, eviction, reset), when nobody can be adding to or
 * reading it.  A chunk is zeroed when it is taken, before the
 * compare-and-swap publishes it, so a reader never sees an earlier owner's
 * counts.  Text blocks follow the same rule: written by the one backend
 * that moved the entry's text_state to WRITING, freed under the exclusive
 * lock.
 *
 * Start-up touches no chunk: a pool hands out never-used chunks in order
 * (never_used) before it reuses freed ones, so its cost is proportional to
 * what is used, not to max_statements.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "storage/shmem.h"
#include "storage/spin.h"

#include "pg/compat.h"
#include "latency.h"

/* per pool: its chunks, and the free list's links (index + 1) */
static char *pool_data[CH_NPOOLS];
static int *pool_next[CH_NPOOLS];

static const Size pool_unit[CH_NPOOLS] = {
	[CH_POOL_TOTAL] = CH_TOTAL_CHUNK * sizeof(pg_atomic_uint64),
	[CH_POOL_WINDOW] = CH_WINDOW_CHUNK * sizeof(pg_atomic_uint32),
	[CH_POOL_TEXT] = CH_TEXT_BLOCK,
};

static const char *const pool_name[CH_NPOOLS] = {
	[CH_POOL_TOTAL] = "coder_health total chunks",
	[CH_POOL_WINDOW] = "coder_health window chunks",
	[CH_POOL_TEXT] = "coder_health text blocks",
};
static const char *const pool_links_name[CH_NPOOLS] = {
	[CH_POOL_TOTAL] = "coder_health total chunk links",
	[CH_POOL_WINDOW] = "coder_health window chunk links",
	[CH_POOL_TEXT] = "coder_health text block links",
};

/* buckets per chunk of a sketch pool */
static inline int
pool_buckets(ChPoolId pool)
{
	return pool == CH_POOL_TOTAL ? CH_TOTAL_CHUNK : CH_WINDOW_CHUNK;
}

static int
pool_units(ChPoolId pool)
{
	switch (pool)
	{
		case CH_POOL_TOTAL:
			return ch_max_statements * CH_TOTAL_CHUNKS_PER_STATEMENT +
				ch_max_clients * CH_TOTAL_CHUNKS_PER_SCOPE;
		case CH_POOL_WINDOW:
			return ch_max_statements * CH_WINDOW_CHUNKS_PER_STATEMENT +
				ch_max_clients * CH_WINDOW_CHUNKS_PER_SCOPE;
		default:
			return ch_max_statements * CH_TEXT_BLOCKS_PER_STATEMENT;
	}
}

Size
ch_pool_shmem_size(void)
{
	Size		size = 0;

	for (int p = 0; p < CH_NPOOLS; p++)
	{
		size = add_size(size, mul_size(pool_units(p), pool_unit[p]));
		size = add_size(size, mul_size(pool_units(p), sizeof(int)));
	}
	return size;
}

/* With AddinShmemInitLock held; found: the latency struct existed. */
void
ch_pool_shmem_init(bool found)
{
	for (int p = 0; p < CH_NPOOLS; p++)
	{
		bool		pool_found;
		int			n = pool_units(p);

		/* a chunk number must fit in a slot beside its range */
		StaticAssertStmt(SKETCH_NBUCKETS / CH_TOTAL_CHUNK < 255,
						 "a range must fit in 8 bits");
		Assert(n < (int) CH_SLOT_REF_MASK);
		pool_data[p] = ShmemInitStruct(pool_name[p], mul_size(n, pool_unit[p]),
									   &pool_found);
		pool_next[p] = ShmemInitStruct(pool_links_name[p],
									   mul_size(n, sizeof(int)), &pool_found);
		if (found)
			continue;
		SpinLockInit(&ch_latency->pool[p].lock);
		ch_latency->pool[p].size = n;
		ch_latency->pool[p].free_head = 0;
		ch_latency->pool[p].never_used = 0;
		ch_latency->pool[p].in_use = 0;
	}
}

/* Take a unit from a pool: its number + 1, or 0 when the pool is empty. */
static uint32
pool_take(ChPoolId p)
{
	ChPool	   *pool = &ch_latency->pool[p];
	uint32		ref = 0;

	SpinLockAcquire(&pool->lock);
	if (pool->free_head != 0)
	{
		ref = (uint32) pool->free_head;
		pool->free_head = pool_next[p][ref - 1];
	}
	else if (pool->never_used < pool->size)
		ref = (uint32) ++pool->never_used;
	if (ref != 0)
		pool->in_use++;
	SpinLockRelease(&pool->lock);
	return ref;
}

static void
pool_give(ChPoolId p, uint32 ref)
{
	ChPool	   *pool = &ch_latency->pool[p];

	SpinLockAcquire(&pool->lock);
	pool_next[p][ref - 1] = pool->free_head;
	pool->free_head = (int) ref;
	pool->in_use--;
	SpinLockRelease(&pool->lock);
}

static inline void *
pool_unit_data(ChPoolId p, uint32 ref)
{
	return pool_data[p] + (Size) (ref - 1) * pool_unit[p];
}

static int
pool_in_use(ChPoolId p)
{
	int			in_use;

	SpinLockAcquire(&ch_latency->pool[p].lock);
	in_use = ch_latency->pool[p].in_use;
	SpinLockRelease(&ch_latency->pool[p].lock);
	return in_use;
}

/* Bytes of the pools that hold data now. */
Size
ch_pool_used_bytes(void)
{
	Size		size = 0;

	for (int p = 0; p < CH_NPOOLS; p++)
		size += (Size) pool_in_use(p) * (pool_unit[p] + sizeof(int));
	return size;
}

/* How full the fullest pool is, in percent. */
int
ch_pool_percent_used(void)
{
	int			most = 0;

	for (int p = 0; p < CH_NPOOLS; p++)
	{
		int			size = ch_latency->pool[p].size;
		int			used = size > 0 ?
			(int) ((int64) pool_in_use(p) * 100 / size) : 100;

		most = Max(most, used);
	}
	return most;
}

/* ------------------------------------------------------------------------
 * Sketches
 * ------------------------------------------------------------------------
 */

void
ch_sketch_init(ChSketchHead *head, pg_atomic_uint32 *slots, int nslots)
{
	pg_atomic_init_u64(&head->calls, 0);
	pg_atomic_init_u64(&head->errors, 0);
	pg_atomic_init_u64(&head->sum_ns, 0);
	pg_atomic_init_u64(&head->min_ns, PG_UINT64_MAX);
	pg_atomic_init_u64(&head->max_ns, 0);
	for (int i = 0; i < nslots; i++)
		pg_atomic_init_u32(&slots[i], 0);
}

/* Empty a sketch and give its chunks back.  Exclusive lock held. */
void
ch_sketch_clear(ChSketchHead *head, pg_atomic_uint32 *slots, int nslots)
{
	for (int i = 0; i < nslots; i++)
	{
		uint32		v = pg_atomic_read_u32(&slots[i]);

		if (v == 0)
			break;
		pg_atomic_write_u32(&slots[i], 0);
		/* the pool is told by the slot's range which kind it is */
		pool_give((v >> 31) ? CH_POOL_WINDOW : CH_POOL_TOTAL,
				  v & CH_SLOT_REF_MASK);
	}
	pg_atomic_write_u64(&head->calls, 0);
	pg_atomic_write_u64(&head->errors, 0);
	pg_atomic_write_u64(&head->sum_ns, 0);
	pg_atomic_write_u64(&head->min_ns, PG_UINT64_MAX);
	pg_atomic_write_u64(&head->max_ns, 0);
}

/* A fresh chunk, zeroed; 0 when the pool is empty. */
static uint32
chunk_take(ChPoolId pool)
{
	uint32		ref = pool_take(pool);

	if (ref != 0)
	{
		void	   *data = pool_unit_data(pool, ref);

		if (pool == CH_POOL_TOTAL)
			for (int i = 0; i < CH_TOTAL_CHUNK; i++)
				pg_atomic_init_u64(&((pg_atomic_uint64 *) data)[i], 0);
		else
			for (int i = 0; i < CH_WINDOW_CHUNK; i++)
				pg_atomic_init_u32(&((pg_atomic_uint32 *) data)[i], 0);
	}
	return ref;
}

/*
 * The counts of a sketch's chunk for one range of buckets, taking a chunk
 * on first use: pg_atomic_uint64[CH_TOTAL_CHUNK] for CH_POOL_TOTAL,
 * pg_atomic_uint32[CH_WINDOW_CHUNK] for CH_POOL_WINDOW.  NULL when every
 * slot holds another range or the pool is empty.  Shared lock held.
 */
void *
ch_sketch_chunk(pg_atomic_uint32 *slots, int nslots, ChPoolId pool, int range)
{
	/* the top bit tells clear which pool a slot's chunk came from */
	uint32		tag = ((uint32) (range + 1) << CH_SLOT_REF_BITS) |
		(pool == CH_POOL_WINDOW ? 0x80000000U : 0);
	uint32		fresh = 0;

	for (int i = 0; i < nslots; i++)
	{
		uint32		v = pg_atomic_read_u32(&slots[i]);

		if (v == 0)
		{
			if (fresh == 0 && (fresh = chunk_take(pool)) == 0)
				return NULL;
			if (pg_atomic_compare_exchange_u32(&slots[i], &v, tag | fresh))
				return pool_unit_data(pool, fresh);
			/* another folder filled this slot first: v is what it put */
		}
		if ((v & ~CH_SLOT_REF_MASK) == tag)
		{
			if (fresh != 0)
				pool_give(pool, fresh); /* never visible to anyone */
			return pool_unit_data(pool, v & CH_SLOT_REF_MASK);
		}
	}
	if (fresh != 0)
		pool_give(pool, fresh);
	return NULL;
}

/* Add a shared sketch into a readout.  Lock held. */
void
ch_sketch_read(ChSketchHead *head, pg_atomic_uint32 *slots, int nslots,
			   ChPoolId pool, ChReadout *out)
{
	sketch_t   *dst = &out->sk;
	int			width = pool_buckets(pool);
	uint64		min_ns = pg_atomic_read_u64(&head->min_ns);
	uint64		max_ns = pg_atomic_read_u64(&head->max_ns);

	for (int i = 0; i < nslots; i++)
	{
		uint32		v = pg_atomic_read_u32(&slots[i]);
		int			first;
		void	   *data;

		if (v == 0)
			break;
		first = ((int) ((v >> CH_SLOT_REF_BITS) & 0x7f) - 1) * width;
		data = pool_unit_data(pool, v & CH_SLOT_REF_MASK);
		out->lo = Min(out->lo, first);
		out->hi = Max(out->hi, first + width - 1);
		for (int b = 0; b < width; b++)
		{
			uint64		n = pool == CH_POOL_TOTAL ?
				pg_atomic_read_u64(&((pg_atomic_uint64 *) data)[b]) :
				pg_atomic_read_u32(&((pg_atomic_uint32 *) data)[b]);

			if (n != 0)
			{
				dst->bucket[first + b] += n;
				dst->count += n;
			}
		}
	}
	out->calls += pg_atomic_read_u64(&head->calls);
	out->errors += pg_atomic_read_u64(&head->errors);
	dst->sum_ns += pg_atomic_read_u64(&head->sum_ns);
	if (min_ns < dst->min_ns)
		dst->min_ns = min_ns;
	if (max_ns > dst->max_ns)
		dst->max_ns = max_ns;
}

/* ------------------------------------------------------------------------
 * Readouts: sketches copied out of shared memory, merged, for the views
 * ------------------------------------------------------------------------
 */

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

/*
 * The window steps that make "the last `steps` complete windows and the
 * current one", and when the oldest of them started.  Lock held.
 */
void
ch_window_span(int steps, uint64 *first, uint64 *last, TimestampTz *since)
{
	uint64		step = pg_atomic_read_u64(&ch_latency->step);

	*last = step;
	*first = step >= (uint64) steps ? step - steps : 0;
	if (since)
		*since = ch_latency->step_start[*first % CH_SCOPE_WINDOWS];
}

/* ------------------------------------------------------------------------
 * Texts: CH_TEXT_BLOCK-byte blocks, chained through the pool's links
 * ------------------------------------------------------------------------
 */

/* Store a text (NUL-terminated, < CH_TEXT_LEN); its first block + 1, or 0
 * when the pool has too few blocks left (nothing is kept then). */
uint32
ch_text_store(const char *text)
{
	Size		len = strlen(text) + 1;
	uint32		first = 0;
	uint32		prev = 0;

	for (Size off = 0; off < len; off += CH_TEXT_BLOCK)
	{
		uint32		ref = pool_take(CH_POOL_TEXT);

		if (ref == 0)
		{
			if (first != 0)
				ch_text_free(first);
			return 0;
		}
		memcpy(pool_unit_data(CH_POOL_TEXT, ref), text + off,
			   Min(CH_TEXT_BLOCK, len - off));
		pool_next[CH_POOL_TEXT][ref - 1] = 0;
		if (prev != 0)
			pool_next[CH_POOL_TEXT][prev - 1] = (int) ref;
		else
			first = ref;
		prev = ref;
	}
	return first;
}

/* Copy a stored text into buf (CH_TEXT_LEN bytes). */
void
ch_text_copy(uint32 block, char *buf)
{
	Size		off = 0;

	for (; block != 0 && off < CH_TEXT_LEN;
		 block = (uint32) pool_next[CH_POOL_TEXT][block - 1])
	{
		memcpy(buf + off, pool_unit_data(CH_POOL_TEXT, block),
			   Min(CH_TEXT_BLOCK, CH_TEXT_LEN - off));
		off += CH_TEXT_BLOCK;
	}
	buf[CH_TEXT_LEN - 1] = '\0';
	if (off == 0)
		buf[0] = '\0';
}

/* Give a text's blocks back.  Exclusive lock held (or the text was never
 * visible). */
void
ch_text_free(uint32 block)
{
	while (block != 0)
	{
		uint32		next = (uint32) pool_next[CH_POOL_TEXT][block - 1];

		pool_give(CH_POOL_TEXT, block);
		block = next;
	}
}
