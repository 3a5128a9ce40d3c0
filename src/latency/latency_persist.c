/*-------------------------------------------------------------------------
 *
 * latency_persist.c
 *	  The latency module's section of pg_stat/coder_health.stat: per
 *	  statement its totals, extremes, full sketch, sqlc name and text
 *	  (rolling windows are not saved: they describe the last minutes, which
 *	  a restart interrupts anyway).  core/persist.c owns the file.
 *
 * Section "latency", version 1:
 *	  uint32 sketch_buckets, uint32 entry_size (sizeof(ChSavedEntry): a
 *	  layout guard), uint32 nentries, uint32 reserved, TimestampTz
 *	  reset_time; then per entry a ChSavedEntry, its nbuckets uint16 bucket
 *	  numbers, as many uint64 counts, a ChSavedText and the text's bytes
 *	  (no NUL; length < CH_TEXT_LEN, 0: none).  The entries are laid out as
 *	  in format 3 of the file, which had them after a common header
 *	  (formats 1 and 2: without the text).
 *
 * Locking: saving (the collector) takes CH_LOCK_LATENCY in shared mode
 * only to copy every entry into the writer's local buffer, so folding goes
 * on meanwhile and only creating, evicting, rotating and resetting wait
 * for the copy, never for the disk.  In the postmaster at shutdown no
 * backend is left and no lock is taken.  Loading runs in the postmaster
 * before any backend exists: no lock.
 *
 * Every value read back is checked before anything is restored (counts and
 * durations within int64, errors <= calls, timestamps finite and in order,
 * sqlc names made of what sqlc names are made of, statement texts shorter
 * than an entry holds and valid in their encoding).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "core/persist.h"
#include "latency.h"

typedef struct ChLatencySectionHead
{
	uint32		sketch_buckets;
	uint32		entry_size;
	uint32		nentries;
	uint32		reserved;
	TimestampTz reset_time;
} ChLatencySectionHead;

/* after an entry's buckets: its text's length and encoding, then the text */
typedef struct ChSavedText
{
	uint32 len;
	int32  encoding;
} ChSavedText;

/* The header of formats 1..3 (before sections), as far as latency reads it. */
#define CH_LEGACY_SKETCH_BUCKETS 12
#define CH_LEGACY_ENTRY_SIZE 16
#define CH_LEGACY_NENTRIES 20
#define CH_LEGACY_RESET_TIME 24
#define CH_LEGACY_FAMILY_SIZE 40
#define CH_LEGACY_NFAMILIES 44
#define CH_LEGACY_HEADER_SIZE 56 /* format 1: CH_STATS_LEGACY_HEADER_SIZE */

/* ------------------------------------------------------------------------
 * Saving
 * ------------------------------------------------------------------------
 */

void
ch_latency_save(ChStatsWriter *w, uint32 *count)
{
	ChLatencySectionHead head;
	HASH_SEQ_STATUS		 hs;
	ChStmtEntry			*entry;
	ChReadout			*r;
	uint16				*idx;
	uint64				*cnt;
	bool				 lock = IsUnderPostmaster;
	uint32				 written = 0;

	*count = 0;
	if (ch_latency == NULL || ch_statement_table() == NULL)
		return;
	r = ch_readout_alloc();
	idx = palloc(sizeof(uint16) * SKETCH_NBUCKETS);
	cnt = palloc(sizeof(uint64) * SKETCH_NBUCKETS);

	/* copy under the shared lock: entries cannot come or go meanwhile */
	if (lock)
		LWLockAcquire(ch_shared->locks[CH_LOCK_LATENCY], LW_SHARED);

	memset(&head, 0, sizeof(head));
	head.sketch_buckets = SKETCH_NBUCKETS;
	head.entry_size = sizeof(ChSavedEntry);
	head.nentries = (uint32) ch_statements_tracked();
	head.reset_time = ch_latency->reset_time;
	ch_stats_put(w, &head, sizeof(head));

	hash_seq_init(&hs, ch_statement_table());
	while ((entry = hash_seq_search(&hs)) != NULL)
	{
		ChSavedEntry saved;
		ChSavedText	 st;
		char		 text[CH_TEXT_LEN];
		int			 encoding = 0;
		uint32		 n = 0;

		if (written == head.nentries)
		{
			hash_seq_term(&hs);
			break;
		}
		ch_readout_reset(r);
		ch_read_sketch(&entry->total, r);
		for (int b = Max(r->lo, 0); b <= r->hi; b++)
		{
			if (r->sk.bucket[b] == 0)
				continue;
			idx[n] = (uint16) b;
			cnt[n] = r->sk.bucket[b];
			n++;
		}

		memset(&saved, 0, sizeof(saved));
		saved.key = entry->key;
		strlcpy(saved.name, entry->name, QUERY_NAME_LEN);
		saved.first_seen = entry->first_seen;
		saved.last_seen = (TimestampTz) pg_atomic_read_u64(&entry->last_seen);

		/*
		 * Counters are read one by one while backends add to them, and
		 * clocks differ between backends: write values that pass the
		 * loader's checks (errors <= calls, first_seen <= last_seen).
		 */
		if (saved.last_seen < saved.first_seen)
			saved.last_seen = saved.first_seen;
		saved.calls = r->calls;
		saved.errors = Min(r->errors, r->calls);
		saved.sum_ns = r->sk.sum_ns;
		saved.min_ns = r->sk.min_ns;
		saved.max_ns = r->sk.max_ns;
		saved.nbuckets = n;
		ch_stats_put(w, &saved, sizeof(saved));
		ch_stats_put(w, idx, sizeof(uint16) * n);
		ch_stats_put(w, cnt, sizeof(uint64) * n);

		memset(&st, 0, sizeof(st));
		if (ch_entry_text(entry, text, &encoding))
		{
			st.len = (uint32) strnlen(text, CH_TEXT_LEN - 1);
			st.encoding = encoding;
		}
		ch_stats_put(w, &st, sizeof(st));
		ch_stats_put(w, text, st.len);
		written++;
	}

	if (lock)
		LWLockRelease(ch_shared->locks[CH_LOCK_LATENCY]);

	/* the section promised nentries; if fewer were there, do not save */
	if (written != head.nentries)
		ch_stats_fail(w);
	*count = written;
	pfree(r);
	pfree(idx);
	pfree(cnt);
}

/* ------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------
 */

/* "" (no name) or an sqlc name: letters, digits and underscores
 * (query_name.c), which is also valid in every server encoding. */
static bool
valid_query_name(const char *name)
{
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

/* Every value of a saved statement entry is one a save can have written. */
static bool
valid_entry(const ChSavedEntry *saved)
{
	uint8 toplevel;

	if (memchr(saved->name, '\0', QUERY_NAME_LEN) == NULL ||
		!valid_query_name(saved->name))
		return false;
	if (!ch_stats_valid_count(saved->calls) ||
		!ch_stats_valid_count(saved->errors) || saved->errors > saved->calls ||
		!ch_stats_valid_count(saved->sum_ns) ||
		!ch_stats_valid_count(saved->max_ns) ||
		(saved->min_ns != PG_UINT64_MAX &&
		 !ch_stats_valid_count(saved->min_ns)))
		return false;
	/* a bool byte other than 0 or 1 would make another key */
	memcpy(&toplevel, &saved->key.toplevel, 1);
	if (toplevel > 1)
		return false;
	if (!ch_stats_valid_time(saved->first_seen) ||
		!ch_stats_valid_time(saved->last_seen) ||
		saved->first_seen > saved->last_seen)
		return false;
	return true;
}

/*
 * Read nentries entries from r.  restore = false only checks that every
 * entry is well formed and fits; true recreates them.
 */
static bool
walk_entries(ChStatsReader *r, uint32 nentries, bool with_texts, bool restore,
			 uint32 *restored)
{
	uint16 *idx = palloc(sizeof(uint16) * SKETCH_NBUCKETS);
	uint64 *cnt = palloc(sizeof(uint64) * SKETCH_NBUCKETS);
	bool	ok = true;

	for (uint32 i = 0; i < nentries && ok; i++)
	{
		ChSavedEntry saved;
		ChSavedText	 st;
		char		 text[CH_TEXT_LEN];

		/* the arrays are not aligned in the file: copied out */
		if (!ch_stats_read(r, &saved, sizeof(saved)) ||
			saved.nbuckets > SKETCH_NBUCKETS ||
			!ch_stats_read(r, idx, sizeof(uint16) * saved.nbuckets) ||
			!ch_stats_read(r, cnt, sizeof(uint64) * saved.nbuckets) ||
			!valid_entry(&saved))
		{
			ok = false;
			break;
		}
		memset(&st, 0, sizeof(st));
		if (with_texts)
		{
			/* the text: shorter than an entry holds, no NUL inside, valid
			 * in a server encoding */
			if (!ch_stats_read(r, &st, sizeof(st)) || st.len >= CH_TEXT_LEN ||
				!ch_stats_read(r, text, st.len) ||
				(st.len > 0 &&
				 (!PG_VALID_BE_ENCODING(st.encoding) ||
				  memchr(text, '\0', st.len) != NULL ||
				  !pg_verify_mbstr(st.encoding, text, (int) st.len, true))))
			{
				ok = false;
				break;
			}
		}
		text[st.len] = '\0';
		for (uint32 b = 0; b < saved.nbuckets; b++)
			if (idx[b] >= SKETCH_NBUCKETS || !ch_stats_valid_count(cnt[b]))
				ok = false;
		if (ok && restore &&
			ch_restore_entry(&saved, idx, cnt, (int) saved.nbuckets, text,
							 st.encoding))
			(*restored)++;
	}
	pfree(idx);
	pfree(cnt);
	return ok;
}

/* A file of format 1..3: one header, the entries, then the families. */
static const char *
latency_load_legacy(ChStatsReader *r, uint32 format, bool restore,
					uint32 *count)
{
	uint32		buckets;
	uint32		entry_size;
	uint32		nentries;
	TimestampTz reset_time;
	uint32		family_size = 0;
	uint32		nfamilies = 0;
	Size		header_size =
		   format == 1 ? CH_STATS_LEGACY_HEADER_SIZE : CH_LEGACY_HEADER_SIZE;

	if (!ch_stats_seek(r, CH_LEGACY_SKETCH_BUCKETS) ||
		!ch_stats_read(r, &buckets, 4) || !ch_stats_read(r, &entry_size, 4) ||
		!ch_stats_read(r, &nentries, 4) || !ch_stats_read(r, &reset_time, 8))
		return CH_STATS_WHY_MALFORMED;
	if (format != 1 && (!ch_stats_seek(r, CH_LEGACY_FAMILY_SIZE) ||
						!ch_stats_read(r, &family_size, 4) ||
						!ch_stats_read(r, &nfamilies, 4)))
		return CH_STATS_WHY_MALFORMED;
	if (entry_size != sizeof(ChSavedEntry) || buckets != SKETCH_NBUCKETS)
		return CH_STATS_WHY_VERSION;
	if (!ch_stats_valid_time(reset_time))
		return CH_STATS_WHY_TIME;
	if (!ch_stats_seek(r, header_size) ||
		!walk_entries(r, nentries, format >= 3, restore, count) ||
		(uint64) ch_stats_left(r) != (uint64) nfamilies * family_size)
		return CH_STATS_WHY_MALFORMED;
	if (restore)
		ch_latency->reset_time = reset_time;
	return NULL;
}

const char *
ch_latency_load(ChStatsReader *r, uint32 version, bool restore, uint32 *count)
{
	ChLatencySectionHead head;

	*count = 0;
	if (CH_STATS_IS_LEGACY(version))
		return latency_load_legacy(r, CH_STATS_LEGACY_FORMAT(version), restore,
								   count);
	if (version != CH_LATENCY_SECTION_VERSION)
		return CH_STATS_WHY_VERSION;
	if (!ch_stats_read(r, &head, sizeof(head)))
		return CH_STATS_WHY_MALFORMED;
	if (head.entry_size != sizeof(ChSavedEntry) ||
		head.sketch_buckets != SKETCH_NBUCKETS)
		return CH_STATS_WHY_VERSION;
	if (!ch_stats_valid_time(head.reset_time))
		return CH_STATS_WHY_TIME;
	if (!walk_entries(r, head.nentries, true, restore, count) ||
		ch_stats_left(r) != 0)
		return CH_STATS_WHY_MALFORMED;
	if (restore)
		ch_latency->reset_time = head.reset_time;
	return NULL;
}
