/*
 * sketch.h
 *		Mergeable relative-error latency histogram (DDSketch style).
 *
 * Durations are uint64 nanoseconds.  With gamma = (1 + alpha) / (1 - alpha),
 * bucket i (1 <= i <= SKETCH_NBUCKETS - 2) holds the values v with
 *
 *		gamma^(i + SKETCH_OFFSET - 1) < v <= gamma^(i + SKETCH_OFFSET)
 *
 * and reports them as upper * (1 - alpha) = 2 * upper / (gamma + 1).  That
 * representative is exactly alpha (relatively) away from both ends of the
 * bucket, so it is within alpha of every value in it, and any quantile read
 * from the buckets is within alpha of the exact one: the sample of the
 * requested rank lies in the bucket the rank walk stops at, because bucket
 * order is value order.  alpha = 0.009 leaves room below the promised 1% for
 * floating-point noise.
 *
 * Bucket 0 holds everything up to gamma^SKETCH_OFFSET (about 63.95 ns, so
 * 0..63 ns); the last bucket holds everything above the top regular bucket
 * (about 5.5 hours).  Neither has a meaningful representative, which is why
 * sketch_quantile() clamps its answer to the exact min and max: a sketch
 * whose samples all fall in bucket 0 reports its min, and the top quantile of
 * samples beyond the range is still the exact max.
 *
 * Finding the bucket.  sketch_index() runs once per recorded statement, so it
 * avoids log().  The bucket upper bounds are a precomputed table (gamma^k
 * computed in 60-digit arithmetic and rounded to the nearest double), and
 * membership is decided only by exact comparisons of the value against that
 * table.  A guess, from the IEEE exponent of the value plus a quadratic for
 * log2 of its mantissa (off by at most 0.3 bucket), picks where to start
 * comparing; then the index is moved until upper[i - 1] < v <= upper[i].  The
 * guess therefore only decides how many comparisons are made (normally two),
 * never the answer, so no value can land in a bucket whose bounds do not
 * contain it and whose representative is more than alpha away.
 * ceil(log(v) / log(gamma)) - SKETCH_OFFSET gives the same index except for
 * values within about 1e-13 (relatively) of a bound, where the double log is
 * the inexact one; the unit test checks every table entry against exp() and
 * the index against the log formula.
 *
 * The extension keeps the counts in shared memory in chunks of SKETCH_CHUNK
 * consecutive buckets, so the index <-> value mapping is usable without a
 * sketch_t.  This file uses only C99 and <stdint.h>, and every name starts
 * with sketch_ or SKETCH_, so it can be included from PostgreSQL code.
 */
#ifndef SKETCH_H
#define SKETCH_H

#include <stdint.h>

#define SKETCH_ALPHA 0.009
#define SKETCH_GAMMA ((1.0 + SKETCH_ALPHA) / (1.0 - SKETCH_ALPHA))

/* bucket i >= 1 ends at gamma^(i + SKETCH_OFFSET); gamma^231 = 63.95 ns */
#define SKETCH_OFFSET 231

/* ceil(log_gamma(2^44 / 63.95)) + 2 = 1466, rounded up to whole chunks */
#define SKETCH_NBUCKETS 1472
#define SKETCH_CHUNK 32
#define SKETCH_NCHUNKS (SKETCH_NBUCKETS / SKETCH_CHUNK)

/* smallest value with a regular bucket; everything below is in bucket 0 */
#define SKETCH_LOW_NS UINT64_C(64)
/* largest value with a regular bucket (~5.5 h); above it, the last bucket */
#define SKETCH_HIGH_NS UINT64_C(19842093396970)

typedef struct sketch_t
{
	uint64_t	count;
	uint64_t	sum_ns;			/* saturates at UINT64_MAX */
	uint64_t	min_ns;			/* UINT64_MAX when empty */
	uint64_t	max_ns;			/* 0 when empty */
	uint64_t	bucket[SKETCH_NBUCKETS];
} sketch_t;

/*
 * Index <-> value mapping.  sketch_index() accepts any uint64 and returns
 * 0 .. SKETCH_NBUCKETS - 1.  The others clamp an out-of-range index.
 * sketch_value() is 0.0 for bucket 0; sketch_lower(0) is 0.0 and
 * sketch_upper(SKETCH_NBUCKETS - 1) is INFINITY.  sketch_upper(i) ==
 * sketch_lower(i + 1) exactly.
 */
extern int	sketch_index(uint64_t ns);

/* An index clamped to 0 .. SKETCH_NBUCKETS - 1. */
static inline int
sketch_clamp_index(int index)
{
	if (index < 0)
		return 0;
	if (index > SKETCH_NBUCKETS - 1)
		return SKETCH_NBUCKETS - 1;
	return index;
}

extern double sketch_value(int index);
extern double sketch_lower(int index);
extern double sketch_upper(int index);

extern void sketch_reset(sketch_t *s);
extern void sketch_add(sketch_t *s, uint64_t ns);

/* adds n samples to one bucket and to count; min, max and sum are untouched */
extern void sketch_add_bucket(sketch_t *s, int index, uint64_t n);
extern void sketch_merge(sketch_t *dst, const sketch_t *src);

/*
 * The lower nearest-rank quantile: the value of the sample of rank
 * max(1, ceil(q * n)) (1-based) in sorted order, so q = 0 is the minimum and
 * q = 1 the maximum.  n is the total of the bucket counts rather than
 * s->count, so a sketch whose count and buckets were read at slightly
 * different moments still gives a consistent answer.  The result is clamped to
 * [min_ns, max_ns] when min_ns <= max_ns.  NaN when there are no samples or q
 * is not in [0, 1].
 */
extern double sketch_quantile(const sketch_t *s, double q);

/*
 * Several quantiles in one pass: qs must be ascending; out[i] is exactly
 * what sketch_quantile(s, qs[i]) returns.  Reading thousands of statements
 * with five quantiles each is where this matters.
 */
extern void sketch_quantiles(const sketch_t *s, const double *qs, int nq,
							 double *out);

/* The same when every bucket outside [lo, hi] is known to be empty: a
 * statement's durations span a few dozen of the 1472 buckets. */
extern void sketch_quantiles_range(const sketch_t *s, int lo, int hi,
								   const double *qs, int nq, double *out);

/*
 * Number of samples whose bucket representative is <= bound_ns: the
 * cumulative count of a Prometheus histogram bucket le=bound_ns.  Samples in
 * bucket 0 always count (representative 0); +INFINITY gives the bucket total.
 */
extern uint64_t sketch_count_le(const sketch_t *s, double bound_ns);

#endif							/* SKETCH_H */
