/*-------------------------------------------------------------------------
 *
 * persist.c
 *	  Statistics survive restarts: pg_stat/coder_health.stat, one section
 *	  per module (module.h: save, load; the framing: lib/stats_file.h).
 *
 * Like pg_stat_statements, the statistics are written at a clean shutdown
 * and read back at startup.  Unlike it, the collector also writes them every
 * coder_health.save_interval, and the file is kept after loading, so after
 * a crash the server starts from the last save: a crash loses at most one
 * interval.  What a module saves is its own business (latency_persist.c:
 * statement totals, extremes, full sketch, sqlc name and text;
 * notify_persist.c: channel families); this file knows no module.
 *
 * Locking: saving, each module's save function copies its data into a
 * buffer in the collector's (or postmaster's) local memory under its own
 * lock, held only for the copy; this file then writes the header, every
 * section and the CRC to a temporary file and renames it over the old one
 * (durable_rename), holding no lock at all, so nothing a backend does waits
 * for the disk.  Only the collector saves while the server runs (and the
 * postmaster at a clean shutdown, when no backend is left), so saves never
 * overlap.  Loading runs in the postmaster before any backend exists,
 * after AddinShmemInitLock is released (shmem.c): nobody else can touch
 * shared memory yet, so no lock is taken.
 *
 * The file ends with a CRC-32C of everything before it.  A truncated,
 * corrupt, foreign or unknown-version file is reported with one WARNING and
 * ignored: the server always starts, with empty statistics at worst.  That
 * holds for a file of any size or content: the header and the section
 * table are checked before the rest is read, a file larger than palloc can
 * take (1 GB - 1) is never read, the buffer is allocated without raising
 * out of memory, and every module checks every value of its CRC-valid
 * section before any module restores anything: the file is ours, but
 * anybody who can write to the data directory can write it too.  Files of
 * formats 1 to 3 (before sections) are still read: each module is given
 * the whole file and reads its old layout.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "coder_health.h"
#include "module.h"
#include "persist.h"

#define CH_STAT_FILE PGSTAT_STAT_PERMANENT_DIRECTORY "/coder_health.stat"
#define CH_STAT_TMP CH_STAT_FILE ".tmp"
/* a file larger than this is not ours to load: the most palloc takes */
#define CH_STAT_MAX_BYTES ((Size) MaxAllocSize)

static TimestampTz last_save = 0;

/* ------------------------------------------------------------------------
 * Saving
 * ------------------------------------------------------------------------
 */

/* One module's section, built in local memory. */
struct ChStatsWriter
{
	char *data;
	Size  len;
	Size  cap;
	bool  failed;
};

void
ch_stats_put(ChStatsWriter *w, const void *data, size_t len)
{
	if (w->failed || len == 0)
		return;
	if (len > CH_STAT_MAX_BYTES - w->len)
	{
		w->failed = true; /* a file we could not load again */
		return;
	}
	if (w->len + len > w->cap)
	{
		Size  cap = Max(w->cap, 8192);
		char *grown;

		while (cap < w->len + len)
			cap = Min(cap * 2, CH_STAT_MAX_BYTES);
		grown = palloc_extended(cap, MCXT_ALLOC_NO_OOM);
		if (grown == NULL)
		{
			w->failed = true;
			return;
		}
		if (w->data != NULL)
		{
			memcpy(grown, w->data, w->len);
			pfree(w->data);
		}
		w->data = grown;
		w->cap = cap;
	}
	memcpy(w->data + w->len, data, len);
	w->len += len;
}

void
ch_stats_fail(ChStatsWriter *w)
{
	w->failed = true;
}

typedef struct ChFileOut
{
	FILE  *file;
	uint32 crc;
	bool   failed;
} ChFileOut;

static void
put_file(ChFileOut *out, const void *data, size_t len)
{
	if (out->failed || len == 0)
		return;
	out->crc = ch_crc32c_add(out->crc, data, len);
	if (fwrite(data, 1, len, out->file) != len)
		out->failed = true;
}

/*
 * Save every module's section.  Never raises an error: a failed save is
 * logged and the old file stays.
 */
void
ch_persist_save(const char *why)
{
	ChStatsWriter *sections;
	uint32		  *counts;
	uint32		   nsections = 0;
	ChFileOut	   out;
	char		   header[CH_STATS_HEADER_SIZE];
	TimestampTz	   saved_at;
	bool		   failed = false;
	StringInfoData summary;

	if (ch_shared == NULL)
		return;

	/* 1. each module copies its data under its own short lock */
	sections = palloc0(sizeof(ChStatsWriter) * ch_nmodules);
	counts = palloc0(sizeof(uint32) * ch_nmodules);
	for (int i = 0; i < ch_nmodules; i++)
	{
		if (ch_modules[i]->save == NULL)
			continue;
		ch_modules[i]->save(&sections[i], &counts[i]);
		if (sections[i].failed)
			failed = true;
		nsections++;
	}
	saved_at = GetCurrentTimestamp();

	/* 2. the file, holding no lock */
	out.file = NULL;
	out.failed = failed;
	out.crc = CH_CRC32C_INIT;
	if (!failed)
	{
		out.file = AllocateFile(CH_STAT_TMP, PG_BINARY_W);
		if (out.file == NULL)
		{
			ereport(LOG, (errcode_for_file_access(),
						  errmsg("coder_health: could not write \"%s\": %m",
								 CH_STAT_TMP)));
			goto done;
		}
		ch_stats_header_encode(header, PG_VERSION_NUM / 100, nsections,
							   (int64) saved_at);
		put_file(&out, header, sizeof(header));
		for (int i = 0; i < ch_nmodules; i++)
		{
			char sh[CH_STATS_SECTION_HEADER_SIZE];

			if (ch_modules[i]->save == NULL)
				continue;
			if (!ch_stats_section_encode(sh, ch_modules[i]->name,
										 ch_modules[i]->save_version,
										 (uint64) sections[i].len))
				out.failed = true;
			put_file(&out, sh, sizeof(sh));
			put_file(&out, sections[i].data, sections[i].len);
		}
		{
			uint32 crc = CH_CRC32C_FINISH(out.crc);

			if (!out.failed && fwrite(&crc, sizeof(crc), 1, out.file) != 1)
				out.failed = true;
		}
		if (FreeFile(out.file) != 0)
			out.failed = true;
	}

	if (out.failed)
	{
		if (failed)
			ereport(LOG, (errmsg("coder_health: could not save statistics "
								 "(%s): out of memory or changed while copied",
								 why)));
		else
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("coder_health: could not write \"%s\" (%s): %m",
							CH_STAT_TMP, why)));
		if (out.file != NULL)
			unlink(CH_STAT_TMP);
		goto done;
	}
	(void) durable_rename(CH_STAT_TMP, CH_STAT_FILE, LOG);
	last_save = saved_at;

	initStringInfo(&summary);
	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->save != NULL)
			appendStringInfo(&summary, "%s%u %s",
							 summary.len > 0 ? " and " : "", counts[i],
							 ch_modules[i]->saved_what);
	elog(DEBUG1, "coder_health: saved %s (%s)", summary.data, why);
	pfree(summary.data);

done:
	for (int i = 0; i < ch_nmodules; i++)
		if (sections[i].data != NULL)
			pfree(sections[i].data);
	pfree(sections);
	pfree(counts);
}

/* The collector, after each cycle: save every coder_health.save_interval
 * (0: never). */
void
ch_persist_maybe_save(TimestampTz now)
{
	if (ch_save_interval_s <= 0)
		return;
	if (last_save == 0)
		last_save = now; /* first interval counts from start */
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

static void
ignore_file(const char *why)
{
	ereport(WARNING,
			(errmsg("coder_health: ignoring statistics file \"%s\": %s",
					CH_STAT_FILE, why),
			 errdetail("Statement latency statistics start empty."),
			 errhint("The file is rewritten at the next save; remove it to "
					 "silence this warning.")));
}

/* ch_stats_promised_size's reader: pread-like, on an open file */
static bool
read_at(void *arg, uint64 at, void *dst, size_t n)
{
	FILE *file = (FILE *) arg;

	return fseeko(file, (off_t) at, SEEK_SET) == 0 &&
		   fread(dst, 1, n, file) == n;
}

/* The module that owns a section, or -1. */
static int
module_of(const char *name)
{
	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->load != NULL &&
			strcmp(ch_modules[i]->name, name) == 0)
			return i;
	return -1;
}

/*
 * Each module's load, on its section (format 4) or the whole legacy file:
 * check only, or restore.  True, or false and *why the file is ignored.
 */
static bool
load_modules(const ChStatsFile *f, bool restore, uint32 *counts,
			 const char **why)
{
	for (int i = 0; i < ch_nmodules; i++)
	{
		const ChModule *m = ch_modules[i];
		ChStatsReader	r;
		ChStatsSection	s;
		uint32			version;
		bool			found = false;

		if (m->load == NULL)
			continue;
		if (f->format == CH_STATS_FORMAT)
		{
			for (uint32 k = 0; k < f->nsections && !found; k++)
				if (ch_stats_file_section(f, k, &s) &&
					strcmp(s.name, m->name) == 0)
					found = true;
			if (!found)
				continue; /* not saved: this module starts empty */
			ch_stats_reader_init(&r, s.data, (size_t) s.length);
			version = s.version;
		}
		else
		{
			ch_stats_reader_init(&r, f->start, (size_t) (f->end - f->start));
			version = CH_STATS_LEGACY(f->format);
		}
		*why = m->load(&r, version, restore, &counts[i]);
		if (*why != NULL)
			return false;
	}
	return true;
}

/* At startup (postmaster or single-user), before any backend runs. */
void
ch_persist_load(void)
{
	struct stat	  st;
	FILE		 *file;
	char		 *buf;
	Size		  len;
	char		  head[CH_STATS_HEADER_SIZE];
	Size		  head_read;
	ChStatsFile	  f;
	ChStatsStatus status;
	const char	 *why = NULL;
	uint32		 *counts;

	if (stat(CH_STAT_FILE, &st) != 0)
		return; /* first start, or removed: nothing to load */
	if (st.st_size < (off_t) CH_STATS_MIN_SIZE)
	{
		ignore_file("its size is wrong (truncated?)");
		return;
	}
	if ((uint64) st.st_size > (uint64) CH_STAT_MAX_BYTES)
	{
		ignore_file("its size is wrong (larger than any statistics file "
					"coder_health writes)");
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
	memset(head, 0, sizeof(head));
	head_read = Min(sizeof(head), len - CH_STATS_CRC_SIZE);
	if (fread(head, 1, head_read, file) != head_read)
	{
		FreeFile(file);
		ignore_file("it cannot be read");
		return;
	}
	{
		uint32 magic;
		uint32 format;
		uint32 nsections;

		memcpy(&magic, head, 4);
		memcpy(&format, head + 4, 4);
		memcpy(&nsections, head + 12, 4);
		if (magic != CH_STATS_MAGIC)
		{
			FreeFile(file);
			ignore_file("it is not a coder_health statistics file");
			return;
		}
		/* format 4: the section headers must add up to the file's size */
		if (format == CH_STATS_FORMAT &&
			ch_stats_promised_size(nsections, (uint64) len, read_at, file) !=
				(uint64) len)
		{
			FreeFile(file);
			ignore_file("its size is wrong (larger than its header says)");
			return;
		}
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

	status = ch_stats_file_parse(buf, len, &f);
	counts = palloc0(sizeof(uint32) * ch_nmodules);
	if (status == CH_STATS_TOO_SHORT)
		why = "its size is wrong (truncated?)";
	else if (status == CH_STATS_NOT_OURS)
		why = "it is not a coder_health statistics file";
	else if (status == CH_STATS_BAD_CRC)
		why = "its checksum does not match (corrupt or truncated)";
	else if (status == CH_STATS_OTHER_FORMAT)
		why = CH_STATS_WHY_VERSION;
	else if (status == CH_STATS_MALFORMED)
		why = CH_STATS_WHY_MALFORMED;
	else if (f.pg_major != PG_VERSION_NUM / 100)
		why = "it was written by another major version of PostgreSQL";
	else if (!ch_stats_valid_time((TimestampTz) f.saved_at))
		why = CH_STATS_WHY_TIME;
	else if (f.format == CH_STATS_FORMAT)
	{
		/* every section belongs to a module, once */
		for (uint32 k = 0; k < f.nsections && why == NULL; k++)
		{
			ChStatsSection s;

			if (!ch_stats_file_section(&f, k, &s))
				why = CH_STATS_WHY_MALFORMED;
			else if (module_of(s.name) < 0)
				why = CH_STATS_WHY_VERSION;
			for (uint32 j = 0; j < k && why == NULL; j++)
			{
				ChStatsSection t;

				if (ch_stats_file_section(&f, j, &t) &&
					strcmp(s.name, t.name) == 0)
					why = CH_STATS_WHY_MALFORMED;
			}
		}
	}
	/* every module checks its section before any restores anything */
	if (why == NULL)
		(void) load_modules(&f, false, counts, &why);

	if (why != NULL)
		ignore_file(why);
	else
	{
		StringInfoData summary;
		const char *unused;

		memset(counts, 0, sizeof(uint32) * ch_nmodules);
		(void) load_modules(&f, true, counts, &unused);
		initStringInfo(&summary);
		for (int i = 0; i < ch_nmodules; i++)
			if (ch_modules[i]->load != NULL)
				appendStringInfo(&summary, "%s%u %s",
								 summary.len > 0 ? " and " : "", counts[i],
								 ch_modules[i]->saved_what);
		ereport(
			LOG,
			(errmsg(
				"coder_health: restored latency statistics of %s saved at %s",
				summary.data, timestamptz_to_str((TimestampTz) f.saved_at))));
		pfree(summary.data);
	}
	pfree(counts);
	pfree(buf);
}
