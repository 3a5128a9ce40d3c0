/*-------------------------------------------------------------------------
 *
 * clients_sql.c
 *	  SQL functions behind coder_health.coder_servers, client_backends and
 *	  connections: live client backends grouped by client host, with their
 *	  state, lock waits, LISTEN state and network round-trip.
 *
 * Everything comes from PostgreSQL's backend status snapshot (the source
 * of pg_stat_activity), the wait event each PGPROC advertises (read the way
 * pg_stat_activity reads it: one unlocked word) and coder_health's own
 * per-backend slots.  Like pg_stat_activity, a role sees the details of its
 * own sessions, or of all sessions with pg_read_all_stats.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "clients.h"
#include "core/srf.h"

PG_FUNCTION_INFO_V1(coder_health_client_hosts);
PG_FUNCTION_INFO_V1(coder_health_client_backends);
PG_FUNCTION_INFO_V1(coder_health_backend_counts);

/* pid -> PGPROC number, from one pass over the PGPROC array */
typedef struct PidProc
{
	int			pid;
	int			procno;
} PidProc;

typedef struct ProcMap
{
	PidProc    *entries;
	int			n;
} ProcMap;

static int
pidproc_cmp(const void *a, const void *b)
{
	int			x = ((const PidProc *) a)->pid;
	int			y = ((const PidProc *) b)->pid;

	return (x > y) - (x < y);
}

static void
proc_map_build(ProcMap *map)
{
	int			total = compat_total_procs();

	map->entries = palloc(sizeof(PidProc) * Max(total, 1));
	map->n = 0;
	for (int i = 0; i < total; i++)
	{
		int			pid = ProcGlobal->allProcs[i].pid;

		if (pid != 0)
		{
			map->entries[map->n].pid = pid;
			map->entries[map->n].procno = i;
			map->n++;
		}
	}
	qsort(map->entries, map->n, sizeof(PidProc), pidproc_cmp);
}

static int
proc_map_find(const ProcMap *map, int pid)
{
	PidProc		key = {pid, -1};
	PidProc    *hit = bsearch(&key, map->entries, map->n, sizeof(PidProc),
							  pidproc_cmp);

	return hit ? hit->procno : -1;
}

/* Waiting for a heavyweight lock (what pg_locks shows as not granted). */
static bool
waiting_on_lock(int procno)
{
	uint32		wait;

	if (procno < 0)
		return false;
	wait = *((volatile uint32 *) &ProcGlobal->allProcs[procno].wait_event_info);
	return (wait & 0xFF000000U) == PG_WAIT_LOCK;
}

static bool
may_see(const PgBackendStatus *be, bool read_all)
{
	return read_all || has_privs_of_role(GetUserId(), be->st_userid);
}

/*
 * The client backends with a client host (TCP or a named unix socket peer)
 * that the current role may see in detail, in backend-status order.
 */
typedef struct ClientIter
{
	int			next;
	int			count;
	bool		read_all;
} ClientIter;

static void
client_iter_begin(ClientIter *it)
{
	it->next = 1;
	it->count = pgstat_fetch_stat_numbackends();
	it->read_all = has_privs_of_role(GetUserId(), COMPAT_ROLE_READ_ALL_STATS);
}

/* The next such backend, its host in addr; NULL after the last. */
static PgBackendStatus *
client_iter_next(ClientIter *it, char *addr, size_t addrlen)
{
	while (it->next <= it->count)
	{
		LocalPgBackendStatus *local = compat_local_beentry(it->next++);
		PgBackendStatus *be;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_backendType == B_BACKEND && may_see(be, it->read_all) &&
			ch_client_host_of(be, addr, addrlen))
			return be;
	}
	return NULL;
}

static inline double
us_to_s(int64 us)
{
	return (double) us / 1000000.0;
}

/* ------------------------------------------------------------------------
 * coder_health.client_hosts_internal(): one row per client host
 * ------------------------------------------------------------------------
 */
typedef struct HostRow
{
	char		addr[CH_HOST_ADDR_LEN];
	char	   *hostname;		/* first known client host name */
	int			connections;
	int			active;
	int			idle;
	int			idle_in_xact;
	int			idle_in_xact_aborted;
	int			lock_waits;
	int			listening;
	TimestampTz oldest_xact;	/* 0 = none */
	TimestampTz oldest_statement;	/* start of the longest running one */
	int			rtt_n;
	double		rtt_sum_us;
	uint32		rtt_max_us;
	bool		named;			/* a visible backend runs a sqlc-named statement */
} HostRow;

static HostRow *
host_row(HostRow **rows, int *nrows, int *cap, const char *addr)
{
	for (int i = 0; i < *nrows; i++)
		if (strcmp((*rows)[i].addr, addr) == 0)
			return &(*rows)[i];
	if (*nrows == *cap)
	{
		*cap *= 2;
		*rows = repalloc(*rows, sizeof(HostRow) * *cap);
	}
	memset(&(*rows)[*nrows], 0, sizeof(HostRow));
	strlcpy((*rows)[*nrows].addr, addr, CH_HOST_ADDR_LEN);
	return &(*rows)[(*nrows)++];
}

Datum
coder_health_client_hosts(PG_FUNCTION_ARGS)
{
#define CH_HOST_COLS 16
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ProcMap		map;
	HostRow    *rows;
	int			nrows = 0;
	int			cap = 16;
	ClientIter	it;
	PgBackendStatus *be;
	char		addr[CH_HOST_ADDR_LEN];
	TimestampTz now = GetCurrentTimestamp();

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, CH_HOST_COLS);
	rows = palloc(sizeof(HostRow) * cap);
	proc_map_build(&map);

	client_iter_begin(&it);
	while ((be = client_iter_next(&it, addr, sizeof(addr))) != NULL)
	{
		HostRow    *row;
		int			procno;
		ChClientReading rd;

		row = host_row(&rows, &nrows, &cap, addr);
		row->connections++;
		if (!row->named && ch_backend_sqlc_named(be))
			row->named = true;
		if (row->hostname == NULL && be->st_clienthostname &&
			be->st_clienthostname[0] != '\0')
			row->hostname = pstrdup(be->st_clienthostname);
		switch (be->st_state)
		{
			case STATE_RUNNING:
			case STATE_FASTPATH:
				row->active++;
				if (be->st_activity_start_timestamp != 0 &&
					(row->oldest_statement == 0 ||
					 be->st_activity_start_timestamp < row->oldest_statement))
					row->oldest_statement = be->st_activity_start_timestamp;
				break;
			case STATE_IDLE:
				row->idle++;
				break;
			case STATE_IDLEINTRANSACTION:
				row->idle_in_xact++;
				break;
			case STATE_IDLEINTRANSACTION_ABORTED:
				row->idle_in_xact_aborted++;
				break;
			default:
				break;
		}
		if (be->st_xact_start_timestamp != 0 &&
			(row->oldest_xact == 0 || be->st_xact_start_timestamp < row->oldest_xact))
			row->oldest_xact = be->st_xact_start_timestamp;

		procno = proc_map_find(&map, be->st_procpid);
		if (waiting_on_lock(procno))
			row->lock_waits++;
		ch_client_read_slot(procno, be->st_procpid, &rd);
		if (rd.valid)
		{
			if (rd.listening)
				row->listening++;
			if (rd.rtt_us != CH_RTT_NONE)
			{
				row->rtt_n++;
				row->rtt_sum_us += rd.rtt_us;
				row->rtt_max_us = Max(row->rtt_max_us, rd.rtt_us);
			}
		}
	}

	/* hosts with no connection now but a peak in the window */
	LWLockAcquire(ch_shared->locks[CH_LOCK_CLIENTS], LW_SHARED);
	if (it.read_all)
	{
		uint64		step = ch_peak_step(now);

		for (int i = 0; i < CH_MAX_HOSTS; i++)
		{
			ChHostPeak *h = &ch_clients->hosts[i];

			if (h->used && ch_host_peak(h->addr, &step) > 0)
				(void) host_row(&rows, &nrows, &cap, h->addr);
		}
	}
	for (int r = 0; r < nrows; r++)
	{
		HostRow    *row = &rows[r];
		Datum		values[CH_HOST_COLS];
		bool		nulls[CH_HOST_COLS];
		int			peak = ch_host_peak(row->addr, NULL);
		TimestampTz named_at = ch_host_named_at(row->addr);
		int			c = 0;

		memset(nulls, 0, sizeof(nulls));
		values[c++] = CStringGetTextDatum(row->addr);
		if (row->hostname)
			values[c++] = CStringGetTextDatum(row->hostname);
		else
			nulls[c++] = true;
		values[c++] = Int32GetDatum(row->connections);
		values[c++] = Int32GetDatum(row->active);
		values[c++] = Int32GetDatum(row->idle);
		values[c++] = Int32GetDatum(row->idle_in_xact);
		values[c++] = Int32GetDatum(row->idle_in_xact_aborted);
		values[c++] = Int32GetDatum(row->lock_waits);
		values[c++] = Int32GetDatum(row->listening);
		if (row->oldest_xact != 0)
			values[c++] = Float8GetDatum(us_to_s(Max(now - row->oldest_xact, 0)));
		else
			nulls[c++] = true;
		if (row->oldest_statement != 0)
			values[c++] = Float8GetDatum(us_to_s(Max(now - row->oldest_statement, 0)));
		else
			nulls[c++] = true;
		if (row->rtt_n > 0)
		{
			values[c++] = Float8GetDatum(row->rtt_sum_us / row->rtt_n / 1000.0);
			values[c++] = Float8GetDatum(row->rtt_max_us / 1000.0);
		}
		else
		{
			nulls[c++] = true;
			nulls[c++] = true;
		}
		values[c++] = Int32GetDatum(row->rtt_n);
		/* not yet seen by the collector: what is here now is the peak */
		values[c++] = Int32GetDatum(Max(peak, row->connections));
		/* sqlc-named statements now, or seen by the collector while the
		 * host is remembered (its 15-step peak window) */
		if (row->named)
			values[c++] = TimestampTzGetDatum(now);
		else if (named_at != 0)
			values[c++] = TimestampTzGetDatum(named_at);
		else
			nulls[c++] = true;
		Assert(c == CH_HOST_COLS);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	LWLockRelease(ch_shared->locks[CH_LOCK_CLIENTS]);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * coder_health.client_backends_internal(): one row per client backend
 * ------------------------------------------------------------------------
 */
Datum
coder_health_client_backends(PG_FUNCTION_ARGS)
{
#define CH_BACKEND_COLS 7
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ProcMap		map;
	ClientIter	it;
	PgBackendStatus *be;
	char		addr[CH_HOST_ADDR_LEN];

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, CH_BACKEND_COLS);
	proc_map_build(&map);

	client_iter_begin(&it);
	while ((be = client_iter_next(&it, addr, sizeof(addr))) != NULL)
	{
		Datum		values[CH_BACKEND_COLS];
		bool		nulls[CH_BACKEND_COLS];
		ChClientReading rd;
		int			procno;
		int			c = 0;

		procno = proc_map_find(&map, be->st_procpid);
		ch_client_read_slot(procno, be->st_procpid, &rd);

		memset(nulls, 0, sizeof(nulls));
		values[c++] = Int32GetDatum(be->st_procpid);
		values[c++] = CStringGetTextDatum(addr);
		if (rd.valid && rd.rtt_us != CH_RTT_NONE)
		{
			values[c++] = Float8GetDatum(rd.rtt_us / 1000.0);
			values[c++] = Float8GetDatum(rd.rttvar_us / 1000.0);
		}
		else
		{
			nulls[c++] = true;
			nulls[c++] = true;
		}
		if (rd.valid && rd.measured_at != 0)
			values[c++] = TimestampTzGetDatum(rd.measured_at);
		else
			nulls[c++] = true;
		values[c++] = BoolGetDatum(rd.valid && rd.listening);
		values[c++] = BoolGetDatum(waiting_on_lock(procno));
		Assert(c == CH_BACKEND_COLS);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * coder_health.backend_counts_internal(): processes by backend type
 * ------------------------------------------------------------------------
 */
Datum
coder_health_backend_counts(PG_FUNCTION_ARGS)
{
#define CH_COUNT_COLS 2
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	int			counts[64];		/* BackendType values; more than any version has */
	int			nbackends;

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, CH_COUNT_COLS);
	memset(counts, 0, sizeof(counts));

	nbackends = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= nbackends; i++)
	{
		LocalPgBackendStatus *local = compat_local_beentry(i);
		int			type;

		if (local == NULL)
			continue;
		type = (int) local->backendStatus.st_backendType;
		if (type >= 0 && type < lengthof(counts))
			counts[type]++;
	}
	for (int t = 0; t < lengthof(counts); t++)
	{
		Datum		values[CH_COUNT_COLS];
		bool		nulls[CH_COUNT_COLS] = {false, false};

		if (counts[t] == 0)
			continue;
		values[0] = CStringGetTextDatum(GetBackendTypeDesc((BackendType) t));
		values[1] = Int32GetDatum(counts[t]);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}
