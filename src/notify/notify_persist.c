/*-------------------------------------------------------------------------
 *
 * notify_persist.c
 *	  The notify module's section of pg_stat/coder_health.stat: per channel
 *	  family its name, counts, bytes, largest payload, last notification
 *	  and distinct-channel registers (rates start again after a restart).
 *	  core/persist.c owns the file.
 *
 * Section "notify", version 1: uint32 family_size (sizeof(ChSavedFamily):
 * a layout guard), uint32 nfamilies, TimestampTz reset_time; then
 * nfamilies ChSavedFamily.  Formats 2 and 3 of the file had the same
 * families at its end and these fields in its header; format 1 had none.
 *
 * Locking: none.  Families never move before a restart and their counters
 * are atomics (notify_family.c), so saving reads them as backends add to
 * them; loading runs in the postmaster before any backend exists.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "core/coder_health.h"
#include "core/persist.h"
#include "notify.h"

typedef struct ChNotifySectionHead
{
	uint32		family_size;
	uint32		nfamilies;
	TimestampTz reset_time;
} ChNotifySectionHead;

/* The header of formats 2 and 3 (before sections), as far as notify reads it. */
#define CH_LEGACY_FAMILY_SIZE 40
#define CH_LEGACY_HEADER_SIZE 56

void
ch_notify_save(ChStatsWriter *w, uint32 *count)
{
	ChNotifySectionHead head;

	*count = 0;
	if (ch_notify == NULL)
		return;
	memset(&head, 0, sizeof(head));
	head.family_size = sizeof(ChSavedFamily);
	head.nfamilies = ch_notify_families_in_use();
	head.reset_time = (TimestampTz) pg_atomic_read_u64(&ch_notify->reset_time);
	ch_stats_put(w, &head, sizeof(head));
	for (uint32 f = 0; f < head.nfamilies; f++)
	{
		ChSavedFamily saved;

		ch_notify_save_family(f, &saved);
		ch_stats_put(w, &saved, sizeof(saved));
	}
	*count = head.nfamilies;
}

/* Every value of a saved channel family is one a save can have written. */
static bool
valid_family(const ChSavedFamily *saved)
{
	const char *end = memchr(saved->name, '\0', CH_FAMILY_NAME_LEN);

	if (end == NULL || !pg_verify_mbstr(PG_UTF8, saved->name,
										(int) (end - saved->name), true))
		return false;
	if (!ch_stats_valid_count(saved->notifications) ||
		!ch_stats_valid_count(saved->bytes) ||
		!ch_stats_valid_count(saved->max_payload))
		return false;
	if (saved->last_notify_at != 0 &&
		!ch_stats_valid_time(saved->last_notify_at))
		return false;
	return true;
}

/* nfamilies families from r (unaligned: copied out); check, or restore */
static bool
walk_families(ChStatsReader *r, uint32 nfamilies, bool restore, uint32 *count)
{
	for (uint32 f = 0; f < nfamilies; f++)
	{
		ChSavedFamily saved;

		if (!ch_stats_read(r, &saved, sizeof(saved)) || !valid_family(&saved))
			return false;
		if (restore && ch_notify_restore_family(&saved))
			(*count)++;
	}
	return true;
}

const char *
ch_notify_load(ChStatsReader *r, uint32 version, bool restore, uint32 *count)
{
	ChNotifySectionHead head;

	*count = 0;
	if (ch_notify == NULL)
		return NULL;
	if (CH_STATS_IS_LEGACY(version))
	{
		Size len;

		/* format 1 (0.1.0) had no families */
		if (CH_STATS_LEGACY_FORMAT(version) == 1)
			return NULL;
		len = ch_stats_left(r);
		if (!ch_stats_seek(r, CH_LEGACY_FAMILY_SIZE) ||
			!ch_stats_read(r, &head, sizeof(head)))
			return CH_STATS_WHY_MALFORMED;
		if (head.family_size != sizeof(ChSavedFamily))
			return CH_STATS_WHY_VERSION;
		if (head.reset_time != 0 && !ch_stats_valid_time(head.reset_time))
			return CH_STATS_WHY_TIME;
		/* the families end the file */
		if ((uint64) head.nfamilies * sizeof(ChSavedFamily) >
				len - CH_LEGACY_HEADER_SIZE ||
			!ch_stats_seek(r, len - (Size) head.nfamilies *
										sizeof(ChSavedFamily)))
			return CH_STATS_WHY_MALFORMED;
	}
	else
	{
		if (version != CH_NOTIFY_SECTION_VERSION)
			return CH_STATS_WHY_VERSION;
		if (!ch_stats_read(r, &head, sizeof(head)))
			return CH_STATS_WHY_MALFORMED;
		if (head.family_size != sizeof(ChSavedFamily))
			return CH_STATS_WHY_VERSION;
		if (head.reset_time != 0 && !ch_stats_valid_time(head.reset_time))
			return CH_STATS_WHY_TIME;
	}
	if (!walk_families(r, head.nfamilies, restore, count) ||
		ch_stats_left(r) != 0)
		return CH_STATS_WHY_MALFORMED;
	if (restore)
		pg_atomic_write_u64(&ch_notify->reset_time, (uint64) head.reset_time);
	return NULL;
}
