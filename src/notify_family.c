/*-------------------------------------------------------------------------
 *
 * notify_family.c
 *	  Channel families: channel names with their identifiers folded into
 *	  "*", kept in a bounded shared table that backends add to without a
 *	  lock, and a small distinct-count estimate per family.
 *
 * Coder names channels after the object they are about
 * (workspace_owner:<uuid>, agent-logs:<uuid>, prebuild_claimed_<uuid>), so
 * counting per channel would grow without bound.  A family replaces every
 * UUID, every run of 16 or more hex digits and every run of decimal digits
 * with "*".
 *
 * The table.  Entries (ChFamily) are handed out in order by an atomic
 * counter and never move or disappear before a restart (a reset zeroes their
 * counters), so a backend can add to an entry with plain atomic adds.  A
 * name finds its entry through an open-addressing index of uint32 slots:
 * empty -> busy (claimed with a compare-and-swap) -> entry number + 1.  The
 * claimer writes the entry's name before publishing the slot, so a reader
 * that sees a published slot sees the name.  When max_channel_families
 * entries are handed out, new names go to entry 0, "(other)".  Nobody ever
 * waits on a lock here; a reader that meets a slot being claimed spins for
 * the few instructions the claimer needs to copy a name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "port/pg_bitutils.h"
#include "storage/s_lock.h"

#include "coder_health.h"
#include "notify.h"

/* ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------
 */

/*
 * Character classes by table: a channel name is classified on every
 * notification, and range comparisons per character were most of its cost.
 */
#define CH_HEX 0x01
#define CH_DIGIT 0x02

#define CH_HEXLETTER CH_HEX
#define CH_DIG (CH_HEX | CH_DIGIT)

static const uint8 char_class[256] = {
	['0'] = CH_DIG,['1'] = CH_DIG,['2'] = CH_DIG,['3'] = CH_DIG,['4'] = CH_DIG,
	['5'] = CH_DIG,['6'] = CH_DIG,['7'] = CH_DIG,['8'] = CH_DIG,['9'] = CH_DIG,
	['a'] = CH_HEXLETTER,['b'] = CH_HEXLETTER,['c'] = CH_HEXLETTER,
	['d'] = CH_HEXLETTER,['e'] = CH_HEXLETTER,['f'] = CH_HEXLETTER,
	['A'] = CH_HEXLETTER,['B'] = CH_HEXLETTER,['C'] = CH_HEXLETTER,
	['D'] = CH_HEXLETTER,['E'] = CH_HEXLETTER,['F'] = CH_HEXLETTER,
};

static inline bool
is_hex(char c)
{
	return (char_class[(unsigned char) c] & CH_HEX) != 0;
}

static inline bool
is_digit(char c)
{
	return (char_class[(unsigned char) c] & CH_DIGIT) != 0;
}

/* Length of a UUID (8-4-4-4-12 hex digits) starting at s, or 0. */
static int
uuid_at(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	int			n = 0;

	for (int g = 0; g < lengthof(groups); g++)
	{
		if (g > 0)
		{
			if (s[n] != '-')
				return 0;
			n++;
		}
		for (int i = 0; i < groups[g]; i++, n++)
			if (!is_hex(s[n]))
				return 0;
	}
	return n;
}

/*
 * The family of a channel name: UUIDs, runs of >= 16 hex digits and runs of
 * decimal digits become "*".  family must have CH_FAMILY_NAME_LEN bytes.
 */
void
ch_channel_family(const char *channel, char *family)
{
	int			out = 0;
	const char *p = channel;

	while (*p && out < CH_FAMILY_NAME_LEN - 1)
	{
		int			skip = 0;

		/* an identifier starts at a boundary, not inside a word */
		if (is_hex(*p) && (p == channel || !is_hex(p[-1])))
		{
			skip = uuid_at(p);
			if (skip == 0)
			{
				int			n = 0;
				bool		digit = false;

				while (is_hex(p[n]))
				{
					digit |= is_digit(p[n]);
					n++;
				}
				if (n >= 16 && digit)
					skip = n;
			}
		}
		if (skip == 0 && is_digit(*p))
		{
			while (is_digit(p[skip]))
				skip++;
		}
		if (skip > 0)
		{
			family[out++] = '*';
			p += skip;
		}
		else
			family[out++] = *p++;
	}
	family[out] = '\0';
}

/* ------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------
 */

static pg_atomic_uint32 *
family_index(void)
{
	/* the index follows the entries (see ch_notify_shmem_init) */
	return (pg_atomic_uint32 *) (ch_families + ch_notify->max_families + 1);
}

void
ch_family_entry_init(ChFamily *f, const char *name)
{
	strlcpy(f->name, name, CH_FAMILY_NAME_LEN);
	pg_atomic_init_u64(&f->notifications, 0);
	pg_atomic_init_u64(&f->bytes, 0);
	pg_atomic_init_u64(&f->max_payload, 0);
	pg_atomic_init_u64(&f->last_notify_at, 0);
	for (int i = 0; i < CH_HLL_WORDS; i++)
		pg_atomic_init_u32(&f->hll[i], 0);
	for (int i = 0; i < CH_NOTIFY_SNAPS; i++)
		pg_atomic_init_u64(&f->snap[i], 0);
}

/*
 * The entry number of a family, created if need be; CH_FAMILY_OTHER when
 * the table is full.  Lock-free; safe in a commit callback.
 */
uint32
ch_family_lookup(const char *family)
{
	pg_atomic_uint32 *index = family_index();
	uint32		mask = ch_notify->index_size - 1;
	uint32		h = hash_bytes((const unsigned char *) family, strlen(family));

	for (uint32 probe = 0; probe <= mask; probe++)
	{
		pg_atomic_uint32 *slot = &index[(h + probe) & mask];
		uint32		v = pg_atomic_read_u32(slot);
		int			spins = 0;

		while (v == CH_FAMILY_SLOT_BUSY)
		{
			/* being claimed: the claimer only copies a name */
			if (++spins > 100000)
				return CH_FAMILY_OTHER;
			pg_spin_delay();
			v = pg_atomic_read_u32(slot);
		}
		if (v == CH_FAMILY_SLOT_EMPTY)
		{
			uint32		expected = CH_FAMILY_SLOT_EMPTY;
			uint32		entry;

			if (pg_atomic_read_u32(&ch_notify->nfamilies) >
				(uint32) ch_notify->max_families)
				return CH_FAMILY_OTHER;
			if (!pg_atomic_compare_exchange_u32(slot, &expected,
												CH_FAMILY_SLOT_BUSY))
			{
				/* somebody else claimed it: look at it again */
				probe--;
				continue;
			}
			entry = pg_atomic_fetch_add_u32(&ch_notify->nfamilies, 1);
			if (entry > (uint32) ch_notify->max_families)
			{
				/* lost the race for the last entry */
				pg_atomic_write_u32(slot, CH_FAMILY_SLOT_OVERFLOW);
				return CH_FAMILY_OTHER;
			}
			ch_family_entry_init(&ch_families[entry], family);
			pg_write_barrier();
			pg_atomic_write_u32(slot, entry + 1);
			return entry;
		}
		if (v == CH_FAMILY_SLOT_OVERFLOW)
			continue;
		pg_read_barrier();
		if (strncmp(ch_families[v - 1].name, family, CH_FAMILY_NAME_LEN) == 0)
			return v - 1;
	}
	return CH_FAMILY_OTHER;
}

/* ------------------------------------------------------------------------
 * Distinct channels per family: HyperLogLog with 256 registers
 * (about 6.5% standard error; small counts are near exact through linear
 * counting).  Four 8-bit registers per atomic word.
 * ------------------------------------------------------------------------
 */

void
ch_hll_add(ChFamily *f, uint64 hash)
{
	int			reg = (int) (hash & (CH_HLL_REGISTERS - 1));
	uint64		rest = hash >> 8;
	uint32		rank = rest == 0 ? 57 : (uint32) pg_rightmost_one_pos64(rest) + 1;
	pg_atomic_uint32 *word = &f->hll[reg / 4];
	int			shift = (reg % 4) * 8;
	uint32		cur = pg_atomic_read_u32(word);

	while (((cur >> shift) & 0xFF) < rank)
	{
		uint32		next = (cur & ~((uint32) 0xFF << shift)) | (rank << shift);

		if (pg_atomic_compare_exchange_u32(word, &cur, next))
			break;
	}
}

double
ch_hll_estimate(ChFamily *f)
{
	double		m = CH_HLL_REGISTERS;
	double		alpha = 0.7213 / (1.0 + 1.079 / m);
	double		sum = 0.0;
	int			zeros = 0;
	double		e;
	static double inverse_power[64];

	if (inverse_power[0] == 0.0)
		for (int r = 0; r < 64; r++)
			inverse_power[r] = ldexp(1.0, -r);

	for (int w = 0; w < CH_HLL_WORDS; w++)
	{
		uint32		v = pg_atomic_read_u32(&f->hll[w]);

		for (int k = 0; k < 4; k++)
		{
			uint32		r = (v >> (k * 8)) & 0xFF;

			sum += inverse_power[Min(r, 63)];
			if (r == 0)
				zeros++;
		}
	}
	e = alpha * m * m / sum;
	if (e <= 2.5 * m && zeros > 0)
		e = m * log(m / zeros);
	return rint(e);
}
