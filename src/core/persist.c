/*-------------------------------------------------------------------------
 *
 * persist.c
 *	  Statement latency and channel families survive restarts:
 *	  pg_stat/coder_health.stat.
 *
 * Like pg_stat_statements, the statistics are written at a clean shutdown
 * and read back at startup.  Unlike it, the collector also writes them every
 * coder_health.save_interval, and the file is kept after loading, so after
 * a crash the server starts from the last save: a crash loses at most one
 * interval.  Rolling windows and rates are not saved (they describe the
 * last minutes, which a restart interrupts anyway); per statement the
 * totals, extremes, full sketch, sqlc name and text are, and per channel family
 * its name, counts, bytes, largest payload, last notification and
 * distinct-channel registers.
 *
 * The file is versioned and ends with a CRC-32C of everything before it.  A
 * truncated, corrupt, foreign or old file is reported with one WARNING and
 * ignored: the server always starts, with empty statistics at worst.  That
 * holds for a file of any size or content: the header is checked before the
 * rest is read, a file larger than palloc can take (1 GB - 1) is never
 * read, the buffer is allocated without raising out of memory, and every
 * value of a CRC-valid file is checked before anything is restored (counts
 * and durations within int64, errors <= calls, timestamps finite and in
 * order, sqlc names made of what sqlc names are made of, statement texts
 * shorter than an entry holds and valid in their encoding, channel family
 * names valid UTF-8): the file is ours, but anybody who can write to the
 * data directory can write it too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "coder_health.h"
#include "latency/latency.h"
#include "notify/notify.h"

#define CH_STAT_FILE PGSTAT_STAT_PERMANENT_DIRECTORY "/coder_health.stat"
#define CH_STAT_TMP CH_STAT_FILE ".tmp"
#define CH_STAT_MAGIC 0x43485354	/* "CHST" */
#define CH_STAT_FORMAT 3	/* 3: each statement's text after its buckets */
#define CH_STAT_FORMAT_V2 2		/* 0.3.0: channel families; no texts; still read */
#define CH_STAT_FORMAT_V1 1		/* 0.1.0: statements only; still read */

/* In format 3, after an entry's buckets: its text's length and encoding,
 * then the text (no NUL; length < CH_TEXT_LEN, 0: none). */
typedef struct ChSavedText
{
	uint32		len;
	int32		encoding;
} ChSavedText;
/* a file larger than this is not ours to load: the most palloc takes */
#define CH_STAT_MAX_BYTES ((Size) MaxAllocSize)

typedef struct ChStatHeader
{
	uint32		magic;
	uint32		format;
	uint32		pg_major;		/* sketches and ids are per major version */
	uint32		sketch_buckets;
	uint32		entry_size;		/* sizeof(ChSavedEntry): layout guard */
	uint32		nentries;
	TimestampTz reset_time;
	TimestampTz saved_at;
	uint32		family_size;	/* sizeof(ChSavedFamily): layout guard */
	uint32		nfamilies;
	TimestampTz notify_reset_time;
} ChStatHeader;

/* Format 1 (coder_health 0.1.0) had the header up to saved_at only. */
#define CH_STAT_HEADER_V1_SIZE offsetof(ChStatHeader, family_size)

static TimestampTz last_save = 0;

/* ------------------------------------------------------------------------
 * Saving
 * ------------------------------------------------------------------------
 */

typedef struct ChWriter
{
	FILE	   *file;
	pg_crc32c	crc;
	bool		failed;
} ChWriter;

static void
put(ChWriter *w, const void *data, size_t len)
{
	if (w->failed || len == 0)
		return;
	COMP_CRC32C(w->crc, data, len);
	if (fwrite(data, 1, len, w->file) != len)
		w->failed = true;
}

/*
 * Write every statement entry.  lock: take the latency lock in shared mode
 * (the collector); false at postmaster shutdown, when no backend is left.
 * Never raises an error: a failed save is logged and the old file stays.
 */
void
ch_persist_save(const char *why)
{
	ChWriter	w;
	ChStatHeader header;
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;
	ChReadout  *r;
	uint16	   *idx;
	uint64	   *cnt;
	bool		lock = IsUnderPostmaster;
	uint32		written = 0;

	if (ch_latency == NULL || ch_statement_table() == NULL)
		return;

	w.file = AllocateFile(CH_STAT_TMP, PG_BINARY_W);
	if (w.file == NULL)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("coder_health: could not write \"%s\": %m", CH_STAT_TMP)));
		return;
	}
	INIT_CRC32C(w.crc);
	w.failed = false;

	r = ch_readout_alloc();
	idx = palloc(sizeof(uint16) * SKETCH_NBUCKETS);
	cnt = palloc(sizeof(uint64) * SKETCH_NBUCKETS);

	if (lock)
		LWLockAcquire(ch_shared->lock, LW_SHARED);

	memset(&header, 0, sizeof(header));
	header.magic = CH_STAT_MAGIC;
	header.format = CH_STAT_FORMAT;
	header.pg_major = PG_VERSION_NUM / 100;
	header.sketch_buckets = SKETCH_NBUCKETS;
	header.entry_size = sizeof(ChSavedEntry);
	header.nentries = (uint32) ch_statements_tracked();
	header.reset_time = ch_latency->reset_time;
	header.saved_at = GetCurrentTimestamp();
	header.family_size = sizeof(ChSavedFamily);
	header.nfamilies = ch_notify != NULL ? ch_notify_families_in_use() : 0;
	header.notify_reset_time = ch_notify != NULL ?
		(TimestampTz) pg_atomic_read_u64(&ch_notify->reset_time) : 0;
	put(&w, &header, sizeof(header));

	hash_seq_init(&hs, ch_statement_table());
	while ((entry = hash_seq_search(&hs)) != NULL)
	{
		ChSavedEntry saved;
		uint32		n = 0;

		if (written == header.nentries)
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
		put(&w, &saved, sizeof(saved));
		put(&w, idx, sizeof(uint16) * n);
		put(&w, cnt, sizeof(uint64) * n);
		{
			ChSavedText st;
			int			encoding = 0;
			const char *text = ch_entry_text(entry, &encoding);

			memset(&st, 0, sizeof(st));
			if (text != NULL)
			{
				st.len = (uint32) strnlen(text, CH_TEXT_LEN - 1);
				st.encoding = encoding;
			}
			put(&w, &st, sizeof(st));
			put(&w, text, st.len);
		}
		written++;
	}

	if (lock)
		LWLockRelease(ch_shared->lock);

	/* the header promised nentries; if fewer were there, say so at the end */
	if (written != header.nentries)
		w.failed = true;

	/* families: entries never move, their counters are atomics, no lock */
	for (uint32 f = 0; f < header.nfamilies; f++)
	{
		ChSavedFamily saved;

		ch_notify_save_family(f, &saved);
		put(&w, &saved, sizeof(saved));
	}

	FIN_CRC32C(w.crc);
	if (!w.failed && fwrite(&w.crc, sizeof(w.crc), 1, w.file) != 1)
		w.failed = true;
	if (FreeFile(w.file) != 0)
		w.failed = true;

	pfree(r);
	pfree(idx);
	pfree(cnt);

	if (w.failed)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("coder_health: could not write \"%s\" (%s): %m",
						CH_STAT_TMP, why)));
		unlink(CH_STAT_TMP);
		return;
	}
	(void) durable_rename(CH_STAT_TMP, CH_STAT_FILE, LOG);
	last_save = header.saved_at;
	elog(DEBUG1, "coder_health: saved %u statements and %u channel families (%s)",
		 written, header.nfamilies, why);
}

/* The collector: save every coder_health.save_interval (0: never). */
void
ch_persist_maybe_save(TimestampTz now)
{
	if (ch_save_interval_s <= 0)
		return;
	if (last_save == 0)
		last_save = now;		/* first interval counts from start */
	if (now - last_save >= (int64) ch_save_interval_s * USECS_PER_SEC)
		ch_persist_save("periodic");
}

/* At a clean postmaster (or single-user) exit, save; after a crash, not. */
static void
save_at_shutdown(int code, Datum arg)
{
	if (code != 0)
		return;
	ch_persist_save("shutdown");
}

void
ch_persist_register_shutdown(void)
{
	if (!IsUnderPostmaster)
		on_shmem_exit(save_at_shutdown, (Datum) 0);
}

/* ------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------
 */

/* A timestamp a save can have written: finite and in PostgreSQL's range. */
static bool
valid_time(TimestampTz t)
{
	return !TIMESTAMP_NOT_FINITE(t) && IS_VALID_TIMESTAMP(t);
}

/* A count or duration shown as bigint: 0 .. INT64_MAX. */
static bool
valid_count(uint64 v)
{
	return v <= (uint64) PG_INT64_MAX;
}

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
	if (memchr(saved->name, '\0', QUERY_NAME_LEN) == NULL ||
		!valid_query_name(saved->name))
		return false;
	if (!valid_count(saved->calls) || !valid_count(saved->errors) ||
		saved->errors > saved->calls ||
		!valid_count(saved->sum_ns) || !valid_count(saved->max_ns) ||
		(saved->min_ns != PG_UINT64_MAX && !valid_count(saved->min_ns)))
		return false;
	{
		uint8		toplevel;

		/* a bool byte other than 0 or 1 would make another key */
		memcpy(&toplevel, &saved->key.toplevel, 1);
		if (toplevel > 1)
			return false;
	}
	if (!valid_time(saved->first_seen) || !valid_time(saved->last_seen) ||
		saved->first_seen > saved->last_seen)
		return false;
	return true;
}

/* Every value of a saved channel family is one a save can have written. */
static bool
valid_family(const ChSavedFamily *saved)
{
	const char *end = memchr(saved->name, '\0', CH_FAMILY_NAME_LEN);

	if (end == NULL ||
		!pg_verify_mbstr(PG_UTF8, saved->name, (int) (end - saved->name), true))
		return false;
	if (!valid_count(saved->notifications) || !valid_count(saved->bytes) ||
		!valid_count(saved->max_payload))
		return false;
	if (saved->last_notify_at != 0 && !valid_time(saved->last_notify_at))
		return false;
	return true;
}

static void
ignore_file(const char *why)
{
	ereport(WARNING,
			(errmsg("coder_health: ignoring statistics file \"%s\": %s",
					CH_STAT_FILE, why),
			 errdetail("Statement latency statistics start empty."),
			 errhint("The file is rewritten at the next save; remove it to silence this warning.")));
}

/*
 * Walk the entries of a verified buffer.  restore = false only checks that
 * every entry is well formed and fits; true recreates them.
 */
static bool
walk_entries(const char *p, const char *end, uint32 nentries, bool with_texts,
			 bool restore, uint32 *restored, const char **entries_end)
{
	for (uint32 i = 0; i < nentries; i++)
	{
		ChSavedEntry saved;
		ChSavedText st;
		const uint16 *idx;
		const uint64 *cnt;
		uint16	   *idx_copy;
		uint64	   *cnt_copy;
		char		text[CH_TEXT_LEN];
		bool		ok;

		if ((Size) (end - p) < sizeof(saved))
			return false;
		memcpy(&saved, p, sizeof(saved));
		p += sizeof(saved);
		if (saved.nbuckets > SKETCH_NBUCKETS ||
			(Size) (end - p) < saved.nbuckets * (sizeof(uint16) + sizeof(uint64)))
			return false;
		idx = (const uint16 *) p;
		p += sizeof(uint16) * saved.nbuckets;
		cnt = (const uint64 *) p;
		p += sizeof(uint64) * saved.nbuckets;
		if (!valid_entry(&saved))
			return false;
		memset(&st, 0, sizeof(st));
		if (with_texts)
		{
			/* the text: shorter than an entry holds, no NUL inside, valid
			 * in a server encoding */
			if ((Size) (end - p) < sizeof(st))
				return false;
			memcpy(&st, p, sizeof(st));
			p += sizeof(st);
			if (st.len >= CH_TEXT_LEN || (Size) (end - p) < st.len)
				return false;
			memcpy(text, p, st.len);
			p += st.len;
			if (st.len > 0 &&
				(!PG_VALID_BE_ENCODING(st.encoding) ||
				 memchr(text, '\0', st.len) != NULL ||
				 !pg_verify_mbstr(st.encoding, text, (int) st.len, true)))
				return false;
		}
		text[st.len] = '\0';

		/* the arrays are not aligned in the file: copy them out */
		idx_copy = palloc(sizeof(uint16) * Max(saved.nbuckets, 1));
		cnt_copy = palloc(sizeof(uint64) * Max(saved.nbuckets, 1));
		memcpy(idx_copy, idx, sizeof(uint16) * saved.nbuckets);
		memcpy(cnt_copy, cnt, sizeof(uint64) * saved.nbuckets);
		ok = true;
		for (uint32 b = 0; b < saved.nbuckets; b++)
			if (idx_copy[b] >= SKETCH_NBUCKETS || !valid_count(cnt_copy[b]))
				ok = false;
		if (ok && restore)
		{
			if (ch_restore_entry(&saved, idx_copy, cnt_copy, (int) saved.nbuckets,
								 text, st.encoding))
				(*restored)++;
		}
		pfree(idx_copy);
		pfree(cnt_copy);
		if (!ok)
			return false;
	}
	*entries_end = p;
	return true;
}

/* Every family of a verified buffer (unaligned: copied out). */
static bool
valid_families(const char *p, uint32 nfamilies)
{
	for (uint32 f = 0; f < nfamilies; f++)
	{
		ChSavedFamily saved;

		memcpy(&saved, p + (Size) f * sizeof(saved), sizeof(saved));
		if (!valid_family(&saved))
			return false;
	}
	return true;
}

/* At startup (postmaster or single-user), before any backend runs. */
void
ch_persist_load(void)
{
	struct stat st;
	FILE	   *file;
	char	   *buf;
	Size		len;
	ChStatHeader header;
	pg_crc32c	crc;
	pg_crc32c	stored;
	uint32		restored = 0;
	const char *families = NULL;
	const char *end;
	Size		header_size = sizeof(ChStatHeader);
	Size		header_read;
	uint32		nfamilies_max;

	if (stat(CH_STAT_FILE, &st) != 0)
		return;					/* first start, or removed: nothing to load */
	if (st.st_size < (off_t) (CH_STAT_HEADER_V1_SIZE + sizeof(pg_crc32c)))
	{
		ignore_file("its size is wrong (truncated?)");
		return;
	}
	if ((uint64) st.st_size > (uint64) CH_STAT_MAX_BYTES)
	{
		ignore_file("its size is wrong (larger than any statistics file coder_health writes)");
		return;
	}
	len = (Size) st.st_size;
	file = AllocateFile(CH_STAT_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		ignore_file("it cannot be opened");
		return;
	}

	/* the header first: a file that is not ours is not read further */
	memset(&header, 0, sizeof(header));
	header_read = Min(sizeof(header), len - sizeof(pg_crc32c));
	if (fread(&header, 1, header_read, file) != header_read)
	{
		FreeFile(file);
		ignore_file("it cannot be read");
		return;
	}
	if (header.magic != CH_STAT_MAGIC)
	{
		FreeFile(file);
		ignore_file("it is not a coder_health statistics file");
		return;
	}
	nfamilies_max = header.format == CH_STAT_FORMAT_V1 ? 0 : header.nfamilies;
	if (header.nentries > (uint32) PG_INT32_MAX / 2 ||
		nfamilies_max > (uint32) PG_INT32_MAX / 2 ||
		(uint64) len > (uint64) sizeof(ChStatHeader) + sizeof(pg_crc32c) +
		(uint64) header.nentries * (sizeof(ChSavedEntry) +
									SKETCH_NBUCKETS * (sizeof(uint16) + sizeof(uint64)) +
									sizeof(ChSavedText) + CH_TEXT_LEN) +
		(uint64) nfamilies_max * sizeof(ChSavedFamily))
	{
		FreeFile(file);
		ignore_file("its size is wrong (larger than its header says)");
		return;
	}

	buf = palloc_extended(len, MCXT_ALLOC_NO_OOM);
	if (buf == NULL)
	{
		FreeFile(file);
		ignore_file("there is not enough memory to read it");
		return;
	}
	if (fseeko(file, 0, SEEK_SET) != 0 || fread(buf, 1, len, file) != len)
	{
		FreeFile(file);
		pfree(buf);
		ignore_file("it cannot be read");
		return;
	}
	FreeFile(file);

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, len - sizeof(pg_crc32c));
	FIN_CRC32C(crc);
	memcpy(&stored, buf + len - sizeof(pg_crc32c), sizeof(stored));
	end = buf + len - sizeof(pg_crc32c);
	memset(&header, 0, sizeof(header));
	memcpy(&header, buf, CH_STAT_HEADER_V1_SIZE);
	if (header.format == CH_STAT_FORMAT_V1)
	{
		/* an upgrade from 0.1.0: its statements, no channel families */
		header_size = CH_STAT_HEADER_V1_SIZE;
		header.family_size = sizeof(ChSavedFamily);
	}
	else if ((Size) (end - buf) >= sizeof(header))
		memcpy(&header, buf, sizeof(header));

	if (header.magic != CH_STAT_MAGIC)
		ignore_file("it is not a coder_health statistics file");
	else if (!EQ_CRC32C(crc, stored))
		ignore_file("its checksum does not match (corrupt or truncated)");
	else if ((header.format != CH_STAT_FORMAT &&
			  header.format != CH_STAT_FORMAT_V2 &&
			  header.format != CH_STAT_FORMAT_V1) ||
			 (Size) (end - buf) < header_size ||
			 header.entry_size != sizeof(ChSavedEntry) ||
			 header.family_size != sizeof(ChSavedFamily) ||
			 header.sketch_buckets != SKETCH_NBUCKETS)
		ignore_file("it was written by another version of coder_health");
	else if (header.pg_major != PG_VERSION_NUM / 100)
		ignore_file("it was written by another major version of PostgreSQL");
	else if (!valid_time(header.reset_time) || !valid_time(header.saved_at) ||
			 (header.format != CH_STAT_FORMAT_V1 && header.notify_reset_time != 0 &&
			  !valid_time(header.notify_reset_time)))
		ignore_file("its header holds an invalid time");
	else if (!walk_entries(buf + header_size, end, header.nentries,
						   header.format >= CH_STAT_FORMAT, false, NULL, &families) ||
			 (Size) (end - families) != (Size) header.nfamilies * sizeof(ChSavedFamily) ||
			 !valid_families(families, header.nfamilies))
		ignore_file("its entries are malformed or hold invalid values");
	else
	{
		uint32		nfamilies = 0;

		(void) walk_entries(buf + header_size, end, header.nentries,
							header.format >= CH_STAT_FORMAT, true, &restored,
							&families);
		ch_latency->reset_time = header.reset_time;
		if (ch_notify != NULL)
		{
			for (uint32 f = 0; f < header.nfamilies; f++)
			{
				ChSavedFamily saved;

				memcpy(&saved, families + (Size) f * sizeof(saved), sizeof(saved));
				if (ch_notify_restore_family(&saved))
					nfamilies++;
			}
			if (header.format != CH_STAT_FORMAT_V1)
				pg_atomic_write_u64(&ch_notify->reset_time,
									(uint64) header.notify_reset_time);
		}
		ereport(LOG,
				(errmsg("coder_health: restored latency statistics of %u statements and %u channel families saved at %s",
						restored, nfamilies, timestamptz_to_str(header.saved_at))));
	}
	pfree(buf);
}
