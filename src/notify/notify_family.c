/*-------------------------------------------------------------------------
 *
 * notify_family.c
 *	  Channel families: channel names with their identifiers folded into
 *	  "*", kept in a bounded shared table that backends add to without a
 *	  lock, and a small distinct-count estimate per family.
 *
 * A family is a channel name with its identifiers folded into "*"
 * (channel_family.c).
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

#include "port/pg_bitutils.h"
#include "storage/s_lock.h"

#include "core/coder_health.h"
#include "notify.h"
#include "lib/hash64.h"

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
ch_family_lookup(const char *family, int len)
{
	pg_atomic_uint32 *index = family_index();
	uint32		mask = ch_notify->index_size - 1;
	uint32		h = (uint32) hash64_bytes(family, len, 0);

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
		if (memcmp(ch_families[v - 1].name, family, len + 1) == 0)
			return v - 1;
	}
	return CH_FAMILY_OTHER;
}

/* The entry of a channel's family (named here, created if need be). */
uint32
ch_family_of_channel(const char *channel, int len)
{
	char		name[CH_FAMILY_NAME_LEN];
	int			namelen = channel_family(channel, len, name);

	return ch_family_lookup(name, namelen);
}

/* ------------------------------------------------------------------------
 * Saving and restoring (persist.c)
 * ------------------------------------------------------------------------
 */

uint32
ch_notify_families_in_use(void)
{
	return Min(pg_atomic_read_u32(&ch_notify->nfamilies),
			   (uint32) ch_notify->max_families + 1);
}

void
ch_notify_save_family(uint32 entry, ChSavedFamily *saved)
{
	ChFamily   *f = &ch_families[entry];

	memset(saved, 0, sizeof(*saved));
	strlcpy(saved->name, f->name, CH_FAMILY_NAME_LEN);
	saved->notifications = pg_atomic_read_u64(&f->notifications);
	saved->bytes = pg_atomic_read_u64(&f->bytes);
	saved->max_payload = pg_atomic_read_u64(&f->max_payload);
	saved->last_notify_at = (TimestampTz) pg_atomic_read_u64(&f->last_notify_at);
	for (int w = 0; w < CH_HLL_WORDS; w++)
		saved->hll[w] = pg_atomic_read_u32(&f->hll[w]);
}

/*
 * At startup, before any backend runs.  A family that no longer fits (a
 * smaller coder_health.max_channel_families) is added to "(other)", as it
 * would have been counted; so is anything saved as "(other)".
 */
bool
ch_notify_restore_family(const ChSavedFamily *saved)
{
	char		name[CH_FAMILY_NAME_LEN];
	ChFamily   *f;
	uint64		n;

	memcpy(name, saved->name, CH_FAMILY_NAME_LEN);
	name[CH_FAMILY_NAME_LEN - 1] = '\0';
	if (name[0] == '\0')
		return false;
	f = &ch_families[strcmp(name, ch_families[CH_FAMILY_OTHER].name) == 0 ?
					 CH_FAMILY_OTHER : ch_family_lookup(name, (int) strlen(name))];

	n = pg_atomic_read_u64(&f->notifications) + saved->notifications;
	pg_atomic_write_u64(&f->notifications, n);
	pg_atomic_write_u64(&f->bytes, pg_atomic_read_u64(&f->bytes) + saved->bytes);
	if (saved->max_payload > pg_atomic_read_u64(&f->max_payload))
		pg_atomic_write_u64(&f->max_payload, saved->max_payload);
	if ((uint64) saved->last_notify_at > pg_atomic_read_u64(&f->last_notify_at))
		pg_atomic_write_u64(&f->last_notify_at, (uint64) saved->last_notify_at);
	/* registers merge by maximum, byte by byte */
	for (int w = 0; w < CH_HLL_WORDS; w++)
	{
		uint32		cur = pg_atomic_read_u32(&f->hll[w]);
		uint32		merged = 0;

		for (int k = 0; k < 4; k++)
		{
			uint32		a = (cur >> (k * 8)) & 0xFF;
			uint32		b = (saved->hll[w] >> (k * 8)) & 0xFF;

			merged |= Max(a, b) << (k * 8);
		}
		pg_atomic_write_u32(&f->hll[w], merged);
	}
	/* rates count from here: every snapshot starts at the restored total */
	for (int s = 0; s < CH_NOTIFY_SNAPS; s++)
		pg_atomic_write_u64(&f->snap[s], n);
	return true;
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
