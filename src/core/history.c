/*-------------------------------------------------------------------------
 *
 * history.c
 *	  Recent history of key figures, kept in shared memory by the collector
 *	  (see health.h): coder_health.history and coder_health.sparkline().
 *
 * The collector has no database connection, so every figure is read from
 * the other features' shared state through their headers, under their own
 * locks, taken one at a time and only for a copy.  The ring holds rows
 * (time, metric, key, value); a sample appends a variable number of rows
 * (one per Coder Server, database, standby), so the ring is sized for
 * CH_HISTORY_ROWS_PER_SAMPLE rows per sample over history_length and
 * readers filter on time: more keys than that shorten the time covered,
 * they never overflow anything.
 *
 * Locking: only the collector writes the ring, appending a sample's rows
 * under CH_LOCK_HISTORY in exclusive mode after it has read the other
 * features (never holding two of coder_health's locks at once).  Readers
 * note how many rows were written under the lock in shared mode, then copy
 * chunks under it and skip the rows overwritten in between (history_ring.h;
 * the arithmetic is unit-tested in test/unit/test_history_ring.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "coder_health.h"
#include "clients/clients.h"
#include "health/health.h"
#include "lib/history_ring.h"
#include "latency/latency.h"
#include "module.h"
#include "notify/notify.h"
#include "privacy.h"
#include "replication/replication.h"
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
#define CH_HISTORY_KEY_LEN 48

/* The metrics, in the order sparkline() lists them. */
typedef enum ChHistoryMetric
{
	CH_HM_CONNECTIONS,			/* key: client host */
	CH_HM_NOTIFY_QUEUE_USAGE,	/* percent, as notify_queue.usage_pct */
	CH_HM_NOTIFY_BACKLOG,		/* bytes behind of the slowest listener */
	CH_HM_REPL_LAG_BYTES,		/* key: standby (slot, else walsender pid) */
	CH_HM_REPL_LAG_S,
	CH_HM_P99_MS,				/* key: database oid (the view shows its name) */
	CH_HM_CALLS_PER_S,
	CH_HM_REPL_RTT_MS,			/* key as the lag's; kernel min_rtt */
	CH_HM_COUNT
} ChHistoryMetric;

static const char *const metric_names[CH_HM_COUNT] = {
	"connections",
	"notify_queue_usage_pct",
	"notify_backlog_bytes",
	"replication_lag_bytes",
	"replication_lag_s",
	"p99_ms",
	"calls_per_s",
	"replication_rtt_ms",
};

typedef struct ChHistoryRow
{
	TimestampTz ts;
	int32		metric;
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

/* collector-local */
static TimestampTz next_sample;
static MemoryContext sample_context;
static ChHistoryRow *pending;
static int	npending;

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

/* Queue one row of this sample; a sample past its row budget drops the rest. */
static void
note(TimestampTz now, ChHistoryMetric metric, const char *key, double value)
{
	ChHistoryRow *r;

	if (npending >= CH_HISTORY_ROWS_PER_SAMPLE || isnan(value))
		return;
	r = &pending[npending++];
	r->ts = now;
	r->metric = (int32) metric;
	strlcpy(r->key, key ? key : "", sizeof(r->key));
	r->value = value;
}

/* Connections per client host, as the clients collector counted them. */
static void
sample_connections(TimestampTz now)
{
	LWLockAcquire(ch_shared->locks[CH_LOCK_CLIENTS], LW_SHARED);
	for (int i = 0; i < CH_MAX_HOSTS; i++)
	{
		ChHostPeak *h = &ch_clients->hosts[i];

		if (h->used)
			note(now, CH_HM_CONNECTIONS, h->addr, h->current);
	}
	LWLockRelease(ch_shared->locks[CH_LOCK_CLIENTS]);
}

/* Queue usage and the slowest listener's backlog, from Async Queue Control. */
static void
sample_notify(TimestampTz now)
{
	ChQueueSnapshot snap;
	int64		worst = 0;

	ch_notify_queue_read(&snap);
	if (!snap.supported)
		return;
	for (int k = 0; k < snap.nlisteners; k++)
		worst = Max(worst, snap.listeners[k].backlog_bytes);
	note(now, CH_HM_NOTIFY_QUEUE_USAGE, NULL, snap.usage * 100.0);
	note(now, CH_HM_NOTIFY_BACKLOG, NULL, (double) worst);
}

/* Replay lag of each WAL sender, or of this standby. */
static void
sample_replication(TimestampTz now)
{
	bool		in_recovery = RecoveryInProgress();
	XLogRecPtr	end = ch_repl_wal_end(in_recovery);
	ChSenderRow *senders;
	int			nsenders;
	ChSlotRow  *slots;
	int			nslots;
	ChStandbyRow standby;
	double		standby_delay = 0;
	ChReplRttRow *rtt;
	int			nrtt;

	senders = palloc(sizeof(ChSenderRow) * Max(max_wal_senders, 1));
	nsenders = ch_repl_read_senders(senders, max_wal_senders, end);
	/* a standby is named by its slot when it has one */
	slots = palloc(sizeof(ChSlotRow) * ch_repl_max_slots());
	nslots = ch_repl_read_slots(slots, max_replication_slots, in_recovery);
	ch_repl_match_slots(senders, nsenders, slots, nslots);
	if (in_recovery)
		ch_repl_read_standby(&standby);

	rtt = palloc(sizeof(ChReplRttRow) * (Max(max_wal_senders, 1) + 1));
	LWLockAcquire(ch_shared->locks[CH_LOCK_REPLICATION], LW_SHARED);
	for (int i = 0; i < nsenders; i++)
		ch_repl_sender_seconds(&senders[i], now);
	if (in_recovery)
		standby_delay = ch_repl_standby_delay(&standby, now);
	/* one row per sender, in order, then the standby's */
	nrtt = ch_repl_rtt_rows(senders, nsenders, in_recovery ? &standby : NULL,
							now, rtt);
	LWLockRelease(ch_shared->locks[CH_LOCK_REPLICATION]);

	for (int i = 0; i < nsenders; i++)
	{
		ChSenderRow *row = &senders[i];
		char		key[CH_HISTORY_KEY_LEN];

		if (row->slot_name[0] != '\0')
			strlcpy(key, row->slot_name, sizeof(key));
		else
			snprintf(key, sizeof(key), "walsender %d", row->pid);
		if (row->has_bytes[CH_LAG_REPLAY])
			note(now, CH_HM_REPL_LAG_BYTES, key, (double) row->lag_bytes[CH_LAG_REPLAY]);
		if (row->has_s[2])
			note(now, CH_HM_REPL_LAG_S, key, row->lag_s[2]);
		if (i < nrtt && rtt[i].has_rtt)
			note(now, CH_HM_REPL_RTT_MS, key, rtt[i].rtt_ms);
	}
	if (in_recovery)
	{
		if (standby.has_replay_lag)
			note(now, CH_HM_REPL_LAG_BYTES, "standby",
				 (double) standby.replay_lag_bytes);
		note(now, CH_HM_REPL_LAG_S, "standby", standby_delay);
		if (nrtt > nsenders && rtt[nsenders].has_rtt)
			note(now, CH_HM_REPL_RTT_MS, "standby", rtt[nsenders].rtt_ms);
	}
}

/* p99 over the current minute and calls per second, per database. */
static void
sample_latency(TimestampTz now)
{
	ChReadout  *r = ch_readout_alloc();
	static const double q99[] = {0.99};

	LWLockAcquire(ch_shared->lock, LW_SHARED);
	for (int s = 0; s < ch_latency->max_scopes; s++)
	{
		ChScope    *scope = &ch_scopes[s];
		TimestampTz since;
		double		span_s;
		double		p99;
		char		key[CH_HISTORY_KEY_LEN];

		if (scope->kind != CH_SCOPE_DATABASE)
			continue;
		ch_readout_reset(r);
		/* one complete window step and the current one */
		ch_read_windows(scope->window, CH_SCOPE_WINDOWS, 1, r, &since);
		span_s = (double) (now - since) / USECS_PER_SEC;
		snprintf(key, sizeof(key), "%u", scope->dbid);
		note(now, CH_HM_CALLS_PER_S, key, span_s > 0 ? r->calls / span_s : 0.0);
		if (r->calls > 0)
		{
			ch_readout_quantiles(r, q99, 1, &p99);
			note(now, CH_HM_P99_MS, key, p99 / 1000000.0);
		}
	}
	LWLockRelease(ch_shared->lock);
}

static void
history_collect(TimestampTz now)
{
	MemoryContext oldcontext;

	if (now < next_sample)
		return;
	next_sample = TimestampTzPlusMilliseconds(now, ch_history_interval_s * 1000);

	if (sample_context == NULL)
	{
		sample_context = AllocSetContextCreate(TopMemoryContext,
											   "coder_health history",
											   ALLOCSET_SMALL_SIZES);
		pending = MemoryContextAlloc(TopMemoryContext,
									 sizeof(ChHistoryRow) * CH_HISTORY_ROWS_PER_SAMPLE);
	}
	oldcontext = MemoryContextSwitchTo(sample_context);
	npending = 0;

	/* each reader takes its feature's lock alone; ours only to append */
	sample_latency(now);
	sample_notify(now);
	sample_replication(now);
	sample_connections(now);

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

			if (copy[i].ts < oldest || copy[i].metric < 0 ||
				copy[i].metric >= CH_HM_COUNT)
				continue;
			values[0] = TimestampTzGetDatum(copy[i].ts);
			values[1] = CStringGetTextDatum(metric_names[copy[i].metric]);
			/*
			 * Connections are keyed by client host: another role's
			 * addresses are shown only with pg_read_all_stats (privacy.h),
			 * as in coder_servers.
			 */
			if (copy[i].key[0] == '\0' ||
				(copy[i].metric == CH_HM_CONNECTIONS && !sees_all))
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

const ChModule ch_health_module = {
	.name = "health",
	.define_settings = ch_define_health_settings,
	.shmem_size = history_shmem_size,
	.shmem_init = history_shmem_init,
	.collect = history_collect,
	.used_bytes = history_used_bytes,
};
