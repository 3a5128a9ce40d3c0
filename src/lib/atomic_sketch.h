/*-------------------------------------------------------------------------
 *
 * atomic_sketch.h
 *	  Lock-free building blocks over PostgreSQL's atomics: a running
 *	  minimum and maximum, and a latency sketch (sketch.h's buckets) whose
 *	  counters are all atomics, added to by many backends at once.
 *
 * The one header of src/lib that needs PostgreSQL (port/atomics.h, for
 * pg_atomic_uint64 in shared memory); everything is static inline, so the
 * plain-C unit tests of sketch.c never see it.
 *
 * An atomic sketch keeps only buckets and the largest value: its count is
 * the sum of its buckets, and a reader (ch_atomic_sketch_read) adds them
 * into a sketch_t.  A reader that runs while writers add sees each bucket
 * either with or without a sample in flight, never a torn count; the
 * quantiles of sketch.h are computed from the bucket total, so they stay
 * consistent.  Clearing (ch_atomic_sketch_clear) is for a sketch no one
 * adds to at the moment (a window rotated out).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_ATOMIC_SKETCH_H
#define CODER_HEALTH_ATOMIC_SKETCH_H

#include "postgres.h"

#include "port/atomics.h"

#include "lib/sketch.h"

/* Raise *p to v if v is larger (a CAS loop: many writers may race). */
static inline void
ch_atomic_max_u64(pg_atomic_uint64 *p, uint64 v)
{
	uint64		cur = pg_atomic_read_u64(p);

	while (v > cur && !pg_atomic_compare_exchange_u64(p, &cur, v))
		;
}

/* Lower *p to v if v is smaller. */
static inline void
ch_atomic_min_u64(pg_atomic_uint64 *p, uint64 v)
{
	uint64		cur = pg_atomic_read_u64(p);

	while (v < cur && !pg_atomic_compare_exchange_u64(p, &cur, v))
		;
}

typedef struct ChAtomicSketch
{
	pg_atomic_uint64 max_ns;
	pg_atomic_uint64 bucket[SKETCH_NBUCKETS];
} ChAtomicSketch;

/* Once, when the shared memory holding it is created. */
static inline void
ch_atomic_sketch_init(ChAtomicSketch *sk)
{
	pg_atomic_init_u64(&sk->max_ns, 0);
	for (int b = 0; b < SKETCH_NBUCKETS; b++)
		pg_atomic_init_u64(&sk->bucket[b], 0);
}

/* Empty it again. */
static inline void
ch_atomic_sketch_clear(ChAtomicSketch *sk)
{
	pg_atomic_write_u64(&sk->max_ns, 0);
	for (int b = 0; b < SKETCH_NBUCKETS; b++)
		pg_atomic_write_u64(&sk->bucket[b], 0);
}

/* One sample of ns nanoseconds. */
static inline void
ch_atomic_sketch_add(ChAtomicSketch *sk, uint64 ns)
{
	pg_atomic_fetch_add_u64(&sk->bucket[sketch_index(ns)], 1);
	ch_atomic_max_u64(&sk->max_ns, ns);
}

/* Add its samples into dst (count, buckets, max; min and sum unknown). */
static inline void
ch_atomic_sketch_read(ChAtomicSketch *src, sketch_t *dst)
{
	uint64		max_ns = pg_atomic_read_u64(&src->max_ns);

	for (int b = 0; b < SKETCH_NBUCKETS; b++)
	{
		uint64		n = pg_atomic_read_u64(&src->bucket[b]);

		if (n)
		{
			dst->bucket[b] += n;
			dst->count += n;
		}
	}
	if (max_ns > dst->max_ns)
		dst->max_ns = max_ns;
}

#endif							/* CODER_HEALTH_ATOMIC_SKETCH_H */
