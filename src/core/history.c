/*-------------------------------------------------------------------------
 *
 * history.c
 *	  Recent history of key figures, kept in shared memory by the collector:
 *	  coder_health.history and coder_health.sparkline() (the history
 *	  module, core's own; settings coder_health.history_interval and
 *	  history_length).
 *
 * Each module names its series and fills the values of one sample
 * (module.h: history_metrics, history_sample; history.h); this file only
 * stores rows (time, metric, key, value) and knows no module's struct.
 * A sample appends a variable number of rows (one per Coder Server,
 * database, standby), so the ring is sized for CH_HISTORY_ROWS_PER_SAMPLE
 * rows per sample over history_length and readers filter on time: more
 * keys than that shorten the time covered, they never overflow anything.
 * When the modules note more rows than a sample's budget, each keeps a
 * fair share: rows are taken from the modules in turn, one at a time.
 *
 * Locking: only the collector writes the ring.  Each module's
 * history_sample takes its own lock alone, in shared mode, for a copy
 * (never two of coder_health's locks at once, so there is no lock order
 * to get wrong); then the rows are appended under CH_LOCK_HISTORY in
 * exclusive mode.  Readers note how many rows were written under the lock
 * in shared mode, then copy chunks under it and skip the rows overwritten
 * in between (history_ring.h; the arithmetic is unit-tested in
 * test/unit/test_history_ring.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "coder_health.h"
#include "history.h"
#include "lib/history_ring.h"
#include "module.h"
#include "privacy.h"
#include "srf.h"

PG_FUNCTION_INFO_V1(coder_health_history);

#define CH_HISTORY_ROWS_PER_SAMPLE 48

/*
 * The ring never holds more rows than this (72 MB): the largest settings
 * (history_length 7 days, history_interval 1 s) would otherwise ask for
 * 29 million rows, 2 GB of shared memory.  With the cap the ring covers
 * less time than history_length when samples have many rows; readers
 * filter on time anyway.  Readers copy the ring in chunks of
 * CH_HISTORY_READ_CHUNK rows, so no allocation grows with it.
 */
#define CH_HISTORY_MAX_ROWS 1000000
#define CH_HISTORY_READ_CHUNK 8192

typedef struct ChHistoryRow
{
	TimestampTz ts;
	int32		metric;			/* see metric_of */
	char		key[CH_HISTORY_KEY_LEN];
	double		value;
} ChHistoryRow;

typedef struct ChHistoryShared
{
	int			capacity;		/* rows */
	uint64		written;		/* rows ever appended; next = written % capacity */
	ChHistoryRow rows[FLEXIBLE_ARRAY_MEMBER];
} ChHistoryShared;

static ChHistoryShared *ch_history;

int			ch_history_interval_s = 10;
int			ch_history_length_s = 3600;

/*
 * One module's rows of the sample being taken (collector-local): metric is
 * already the ring's number (the module's offset + its own index).
 */
struct ChHistorySink
{
	int			offset;
	int			n;
	ChHistoryRow *rows;			/* CH_HISTORY_ROWS_PER_SAMPLE */
	TimestampTz now;
};

/* collector-local */
static TimestampTz next_sample;
static MemoryContext sample_context;
static ChHistorySink *sinks;	/* one per module */
static ChHistoryRow *pending;

/*
 * A metric's number in the ring: the modules' series one after another, in
 * the list's order (the list is fixed while the server runs).
 */
static int
metric_offset(int module)
{
	int			offset = 0;

	for (int i = 0; i < module; i++)
		offset += ch_modules[i]->nhistory_metrics;
	return offset;
}

/* The series of a ring's metric number, or NULL. */
static const ChHistoryMetric *
metric_of(int32 metric)
{
	if (metric < 0)
		return NULL;
	for (int i = 0; i < ch_nmodules; i++)
	{
		if (metric < ch_modules[i]->nhistory_metrics)
			return &ch_modules[i]->history_metrics[metric];
		metric -= ch_modules[i]->nhistory_metrics;
	}
	return NULL;
}

static void
history_define_settings(void)
{
	DefineCustomIntVariable("coder_health.history_interval",
							"How often the collector records a history sample.",
							"Connections per Coder Server, NOTIFY queue usage and "
							"backlog, replication lag, p99 and calls/s per database.  "
							"Lowering it at run time shortens the time the history "
							"covers (its size is fixed at server start).",
							&ch_history_interval_s,
							10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("coder_health.history_length",
							"How much history is kept in shared memory.",
							"Together with history_interval at server start it sizes "
							"the history ring.",
							&ch_history_length_s,
							3600, 60, 7 * 86400,
							PGC_POSTMASTER, GUC_UNIT_S,
							NULL, NULL, NULL);
}

static int
history_capacity(void)
{
	return history_ring_capacity(ch_history_length_s, ch_history_interval_s,
								 CH_HISTORY_ROWS_PER_SAMPLE, CH_HISTORY_MAX_ROWS);
}

static Size
history_shmem_size(void)
{
	return add_size(offsetof(ChHistoryShared, rows),
					mul_size(history_capacity(), sizeof(ChHistoryRow)));
}

static void
history_shmem_init(void)
{
	bool		found;

	ch_history = ShmemInitStruct("coder_health history",
								 history_shmem_size(), &found);
	if (!found)
	{
		ch_history->capacity = history_capacity();
		ch_history->written = 0;
	}
}

static Size
history_used_bytes(void)
{
	uint64		n;

	if (ch_history == NULL)
		return 0;
	n = history_ring_held(ch_history->written, (uint64) ch_history->capacity);
	return offsetof(ChHistoryShared, rows) + n * sizeof(ChHistoryRow);
}

void
ch_history_note(ChHistorySink *sink, int metric, const char *key, double value)
{
	ChHistoryRow *r;

	if (sink->n >= CH_HISTORY_ROWS_PER_SAMPLE || isnan(value))
		return;
	r = &sink->rows[sink->n++];
	r->ts = sink->now;
	r->metric = (int32) (sink->offset + metric);
	strlcpy(r->key, key ? key : "", sizeof(r->key));
	r->value = value;
}

static void
history_collect(TimestampTz now)
{
	MemoryContext oldcontext;
	int			npending = 0;
	bool		more = true;

	if (now < next_sample)
		return;
	next_sample = TimestampTzPlusMilliseconds(now, ch_history_interval_s * 1000);

	if (sample_context == NULL)
	{
		sample_context = AllocSetContextCreate(TopMemoryContext,
											   "coder_health history",
											   ALLOCSET_SMALL_SIZES);
		sinks = MemoryContextAllocZero(TopMemoryContext,
									   sizeof(ChHistorySink) * ch_nmodules);
		for (int i = 0; i < ch_nmodules; i++)
		{
			sinks[i].offset = metric_offset(i);
			if (ch_modules[i]->history_sample != NULL)
				sinks[i].rows = MemoryContextAlloc(TopMemoryContext,
												   sizeof(ChHistoryRow) * CH_HISTORY_ROWS_PER_SAMPLE);
		}
		pending = MemoryContextAlloc(TopMemoryContext,
									 sizeof(ChHistoryRow) * CH_HISTORY_ROWS_PER_SAMPLE);
	}
	oldcontext = MemoryContextSwitchTo(sample_context);

	/* each module reads its own state under its own lock */
	for (int i = 0; i < ch_nmodules; i++)
	{
		sinks[i].n = 0;
		sinks[i].now = now;
		if (ch_modules[i]->history_sample != NULL)
			ch_modules[i]->history_sample(now, &sinks[i]);
	}
	/* the sample's budget, shared: a row from each module in turn */
	for (int k = 0; more && npending < CH_HISTORY_ROWS_PER_SAMPLE; k++)
	{
		more = false;
		for (int i = 0; i < ch_nmodules && npending < CH_HISTORY_ROWS_PER_SAMPLE; i++)
			if (k < sinks[i].n)
			{
				pending[npending++] = sinks[i].rows[k];
				more = true;
			}
	}

	/* ours only to append */
	LWLockAcquire(ch_shared->locks[CH_LOCK_HISTORY], LW_EXCLUSIVE);
	for (int i = 0; i < npending; i++)
	{
		ch_history->rows[history_ring_slot(ch_history->written,
										   (uint64) ch_history->capacity)] = pending[i];
		ch_history->written++;
	}
	LWLockRelease(ch_shared->locks[CH_LOCK_HISTORY]);

	MemoryContextSwitchTo(oldcontext);
	MemoryContextReset(sample_context);
}

/* coder_health.history_internal(): rows of the last history_length, oldest first */
Datum
coder_health_history(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	TimestampTz oldest;
	ChHistoryRow *copy;
	uint64		capacity;
	uint64		pos;
	uint64		end;
	bool		sees_all = ch_sees_all_roles();

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, 4);
	capacity = (uint64) ch_history->capacity;
	oldest = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										 -(int64) ch_history_length_s * 1000);

	/* the rows there are now, oldest first */
	LWLockAcquire(ch_shared->locks[CH_LOCK_HISTORY], LW_SHARED);
	end = ch_history->written;
	LWLockRelease(ch_shared->locks[CH_LOCK_HISTORY]);
	pos = history_ring_oldest(end, capacity);

	/* a chunk at a time: copy under the lock, build tuples after */
	copy = palloc(sizeof(ChHistoryRow) * CH_HISTORY_READ_CHUNK);
	while (pos < end)
	{
		int			n;

		LWLockAcquire(ch_shared->locks[CH_LOCK_HISTORY], LW_SHARED);
		/* rows overwritten since the last chunk are gone: skip them */
		n = history_ring_chunk(&pos, end, ch_history->written, capacity,
							   CH_HISTORY_READ_CHUNK);
		for (int i = 0; i < n; i++)
			copy[i] = ch_history->rows[history_ring_slot(pos + i, capacity)];
		LWLockRelease(ch_shared->locks[CH_LOCK_HISTORY]);
		pos += n;

		for (int i = 0; i < n; i++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};
			const ChHistoryMetric *metric = metric_of(copy[i].metric);

			if (copy[i].ts < oldest || metric == NULL)
				continue;
			values[0] = TimestampTzGetDatum(copy[i].ts);
			values[1] = CStringGetTextDatum(metric->name);
			/*
			 * Keys that identify a client (connections: the client host):
			 * another role's are shown only with pg_read_all_stats
			 * (privacy.h), as in the module's own view.
			 */
			if (copy[i].key[0] == '\0' ||
				(metric->private_key && !sees_all))
				nulls[2] = true;
			else
				values[2] = CStringGetTextDatum(copy[i].key);
			values[3] = Float8GetDatum(copy[i].value);
			tuplestore_putvalues(store, tupdesc, values, nulls);
		}
		CHECK_FOR_INTERRUPTS();
	}
	pfree(copy);
	return (Datum) 0;
}

const ChModule ch_history_module = {
	.name = "history",
	.define_settings = history_define_settings,
	.shmem_size = history_shmem_size,
	.shmem_init = history_shmem_init,
	.collect = history_collect,
	.used_bytes = history_used_bytes,
};
