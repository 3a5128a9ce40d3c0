/*
 * sketch_quantile.c
 *		Mergeable relative-error latency histogram; see sketch.h.  This file
 *		is what a sketch_t holds: adding samples, merging sketches, and
 *		reading quantiles and cumulative counts from the buckets.  The
 *		buckets themselves (bounds, index <-> value) are in sketch.c.
 */
#include "sketch.h"

#include <math.h>
#include <stdint.h>

static uint64_t
sketch_add_saturating(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void
sketch_reset(sketch_t *s)
{
	int			i;

	s->count = 0;
	s->sum_ns = 0;
	s->min_ns = UINT64_MAX;
	s->max_ns = 0;
	for (i = 0; i < SKETCH_NBUCKETS; i++)
		s->bucket[i] = 0;
}

void
sketch_add(sketch_t *s, uint64_t ns)
{
	s->count++;
	s->sum_ns = sketch_add_saturating(s->sum_ns, ns);
	if (ns < s->min_ns)
		s->min_ns = ns;
	if (ns > s->max_ns)
		s->max_ns = ns;
	s->bucket[sketch_index(ns)]++;
}

void
sketch_add_bucket(sketch_t *s, int index, uint64_t n)
{
	s->count += n;
	s->bucket[sketch_clamp_index(index)] += n;
}

void
sketch_merge(sketch_t *dst, const sketch_t *src)
{
	int			i;

	dst->count += src->count;
	dst->sum_ns = sketch_add_saturating(dst->sum_ns, src->sum_ns);
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
	for (i = 0; i < SKETCH_NBUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
}

/* 1-based rank of the lower nearest-rank q-quantile of n samples, n > 0 */
static uint64_t
sketch_rank(double q, uint64_t n)
{
	double		r = ceil(q * (double) n);

	if (r < 1.0)
		return 1;
	/* also keeps the conversion below in range */
	if (r >= (double) n)
		return n;
	return (uint64_t) r;
}

static double
sketch_clamp(const sketch_t *s, double value)
{
	if (s->min_ns <= s->max_ns)
	{
		if (value < (double) s->min_ns)
			value = (double) s->min_ns;
		if (value > (double) s->max_ns)
			value = (double) s->max_ns;
	}
	return value;
}

void
sketch_quantiles_range(const sketch_t *s, int lo, int hi, const double *qs,
					   int nq, double *out)
{
	uint64_t	total = 0;
	uint64_t	seen = 0;
	int			i;
	int			k;

	if (lo < 0)
		lo = 0;
	if (hi > SKETCH_NBUCKETS - 1)
		hi = SKETCH_NBUCKETS - 1;
	for (i = lo; i <= hi; i++)
		total += s->bucket[i];

	i = lo;
	for (k = 0; k < nq; k++)
	{
		uint64_t	rank;

		if (total == 0 || !(qs[k] >= 0.0 && qs[k] <= 1.0))
		{
			out[k] = NAN;
			continue;
		}
		rank = sketch_rank(qs[k], total);
		/* qs ascend, so the walk only ever moves forward */
		while (i < hi && seen + s->bucket[i] < rank)
			seen += s->bucket[i++];
		out[k] = sketch_clamp(s, sketch_value(i));
	}
}

void
sketch_quantiles(const sketch_t *s, const double *qs, int nq, double *out)
{
	sketch_quantiles_range(s, 0, SKETCH_NBUCKETS - 1, qs, nq, out);
}

double
sketch_quantile(const sketch_t *s, double q)
{
	double		value;

	sketch_quantiles(s, &q, 1, &value);
	return value;
}

uint64_t
sketch_count_le(const sketch_t *s, double bound_ns)
{
	uint64_t	total = 0;
	int			i;

	/* representatives increase with the index; NaN stops at once */
	for (i = 0; i < SKETCH_NBUCKETS; i++)
	{
		if (!(sketch_value(i) <= bound_ns))
			break;
		total += s->bucket[i];
	}
	return total;
}
