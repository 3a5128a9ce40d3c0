/*-------------------------------------------------------------------------
 *
 * hash64.h
 *	  A fast 64-bit hash of a byte string, eight bytes a step, for keys that
 *	  are hashed on the statement path (channel names, statement texts).
 *	  PostgreSQL's hash_bytes_extended reads unaligned input (a query string
 *	  inside a protocol message) a byte at a time: 491 instructions for a
 *	  74-byte statement, against about 70 here.  Plain C.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_HASH64_H
#define CODER_HEALTH_HASH64_H

#include <stdint.h>
#include <string.h>

/* 64-bit finalizer (MurmurHash3's fmix64): every input bit moves the output */
static inline uint64_t
hash64_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

static inline uint64_t
hash64_bytes(const char *s, int len, uint64_t seed)
{
	uint64_t	h = seed ^ UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t) len;

	/* eight bytes a step; the tail zero-padded (the length is in the seed) */
	for (; len >= 8; s += 8, len -= 8)
	{
		uint64_t	w;

		memcpy(&w, s, 8);
		h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
		h ^= h >> 31;
	}
	if (len > 0)
	{
		uint64_t	w = 0;

		memcpy(&w, s, (size_t) len);
		h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
		h ^= h >> 31;
	}
	return hash64_mix(h);
}

#ifdef __SIZEOF_INT128__
/*
 * A 64 x 64 -> 128-bit product folded to 64 bits: every bit of either
 * factor moves the result.  One multiply takes sixteen bytes.
 */
static inline uint64_t
hash64_fold_mul(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128) a * b;

	return (uint64_t) r ^ (uint64_t) (r >> 64);
}

/*
 * XORed into the first word of each sixteen bytes, so that this factor is
 * 0 only for a text holding exactly these eight bytes there: a 0x1f
 * control character and a 0xff byte (which no UTF-8 text has, though a
 * LATIN1 one may).  A zero factor drops what came before, so two such
 * texts that differ only before it would share a cache entry (and its id
 * and name); natural statement texts do not hold that sequence.
 */
#define HASH64_KEY_LANE UINT64_C(0xff9a3c5e2b7d1f43)
#endif

/*
 * A hash of a byte string for keys that live only in this process (caches):
 * the same strength as hash64_bytes, but the last word is read whole,
 * overlapping the one before (no byte-wise copy of a tail); over sixteen
 * bytes (statement texts), sixteen bytes a step with one wide multiply, as
 * wyhash does.  Not the same
 * values as hash64_bytes: never use it for anything stored or shown.
 */
static inline uint64_t
hash64_key(const char *s, int len, uint64_t seed)
{
	uint64_t	h = seed ^ UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t) len;
	uint64_t	w;

#ifdef __SIZEOF_INT128__
	if (len > 16)
	{
		/* sixteen bytes a multiply; the last sixteen read whole */
		const char *last = s + len - 16;
		uint64_t	a;

		for (; s < last; s += 16)
		{
			memcpy(&a, s, 8);
			memcpy(&w, s + 8, 8);
			h = hash64_fold_mul(a ^ HASH64_KEY_LANE, w ^ h);
		}
		memcpy(&a, last, 8);
		memcpy(&w, last + 8, 8);
		return hash64_mix(hash64_fold_mul(a ^ HASH64_KEY_LANE, w ^ h));
	}
#endif
	if (len >= 8)
	{
		const char *last = s + len - 8;

		for (; s < last; s += 8)
		{
			memcpy(&w, s, 8);
			h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
			h ^= h >> 31;
		}
		memcpy(&w, last, 8);
	}
	else if (len >= 4)
	{
		uint32_t	a;
		uint32_t	b;

		memcpy(&a, s, 4);
		memcpy(&b, s + len - 4, 4);
		w = ((uint64_t) a << 32) | b;
	}
	else
	{
		w = len > 0 ? (uint64_t) (unsigned char) s[0] |
			((uint64_t) (unsigned char) s[len / 2] << 8) |
			((uint64_t) (unsigned char) s[len - 1] << 16) : 0;
	}
	h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 31;
	return hash64_mix(h);
}

#endif							/* CODER_HEALTH_HASH64_H */
