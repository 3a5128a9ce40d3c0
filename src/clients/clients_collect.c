/*-------------------------------------------------------------------------
 *
 * clients_collect.c
 *	  The collector's part of the Coder Server view: connections per client
 *	  host, counted from PostgreSQL's backend status array (the collector
 *	  has no database connection, so no SQL), kept as per-step maxima so
 *	  that the view can show the peak of the last 15 window steps
 *	  (coder_health.window_step, 60 s by default: 15 minutes).
 *
 * Locking: the collector counts from a fresh copy of the backend status
 * array without any lock of coder_health's, then updates the host table
 * (ch_clients->hosts[]) under CH_LOCK_CLIENTS in exclusive mode; it is the
 * table's only writer.  Readers (clients_sql.c, history.c) take the lock in
 * shared mode for a copy.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "common/ip.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lwlock.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "clients.h"
#include "lib/query_name.h"

/*
 * The client host of a backend as text: its numeric address, or "local"
 * for a unix socket (as coder_health.latency groups them).  False for a
 * backend with no client.
 */
bool
ch_client_host_of(const PgBackendStatus *be, char *buf, size_t len)
{
	const SockAddr *sa = &be->st_clientaddr;

	if (sa->salen == 0)
		return false;
	if (sa->addr.ss_family == AF_UNIX)
	{
		strlcpy(buf, "local", len);
		return true;
	}
	if (sa->addr.ss_family != AF_INET && sa->addr.ss_family != AF_INET6)
		return false;
	if (pg_getnameinfo_all(&sa->addr, sa->salen, buf, len, NULL, 0,
						   NI_NUMERICHOST) != 0)
		return false;
	return true;
}

/*
 * Whether the backend's current (or last) statement carries a sqlc name
 * ("-- name: X :one"), as every statement of a Coder Server does: the
 * evidence, beside Coder's replicas table, that a client host is a Coder
 * Server.  Reads the backend status copy's activity text (only its start).
 */
bool
ch_backend_sqlc_named(const PgBackendStatus *be)
{
	char		name[QUERY_NAME_LEN];

	if (be->st_activity_raw == NULL || be->st_activity_raw[0] == '\0')
		return false;
	return query_name_parse(be->st_activity_raw,
							(long) strnlen(be->st_activity_raw,
										   pgstat_track_activity_query_size),
							name) == 1;
}

/*
 * When the collector last saw a sqlc-named statement from addr (0: never,
 * or the host is not tracked).  Caller holds the clients lock (shared).
 */
TimestampTz
ch_host_named_at(const char *addr)
{
	for (int i = 0; i < CH_MAX_HOSTS; i++)
	{
		const ChHostPeak *h = &ch_clients->hosts[i];

		if (h->used && strcmp(h->addr, addr) == 0)
			return h->named_at;
	}
	return 0;
}

uint64
ch_peak_step(TimestampTz now)
{
	int64		step_us = (int64) Max(ch_window_step_s, 1) * USECS_PER_SEC;

	return now > 0 ? (uint64) (now / step_us) : 0;
}

/* Highest count of a host over the last CH_PEAK_STEPS steps; lock held. */
static int
host_peak(const ChHostPeak *h, uint64 step)
{
	int			peak = 0;

	for (int b = 0; b < CH_PEAK_STEPS; b++)
		if (h->step[b] <= step && h->step[b] + CH_PEAK_STEPS > step)
			peak = Max(peak, h->peak[b]);
	return peak;
}

/*
 * The 15-step peak of addr, or -1 if it is not tracked.  Caller holds the
 * clients lock (shared).
 */
int
ch_host_peak(const char *addr, uint64 *step_out)
{
	uint64		step = ch_peak_step(GetCurrentTimestamp());

	if (step_out)
		*step_out = step;
	for (int i = 0; i < CH_MAX_HOSTS; i++)
	{
		const ChHostPeak *h = &ch_clients->hosts[i];

		if (h->used && strcmp(h->addr, addr) == 0)
			return host_peak(h, step);
	}
	return -1;
}

static void
host_note(ChHostPeak *h, uint64 step, int connections)
{
	int			b = (int) (step % CH_PEAK_STEPS);

	if (h->step[b] != step)
	{
		h->step[b] = step;
		h->peak[b] = 0;
	}
	h->peak[b] = Max(h->peak[b], connections);
	h->current = connections;
}

typedef struct HostCount
{
	char		addr[CH_HOST_ADDR_LEN];
	int			connections;
	bool		named;			/* a backend ran a sqlc-named statement */
} HostCount;

void
ch_clients_collect(TimestampTz now)
{
	static HostCount counts[CH_MAX_HOSTS];
	int			ncounts = 0;
	int			nbackends;
	uint64		step = ch_peak_step(now);
	uint64		dropped = 0;

	if (ch_clients == NULL)
		return;

	/* a fresh copy of the backend status array, forgotten right after */
	compat_clear_backend_snapshot();
	nbackends = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= nbackends; i++)
	{
		LocalPgBackendStatus *local = compat_local_beentry(i);
		char		addr[CH_HOST_ADDR_LEN];
		int			k;

		if (local == NULL || local->backendStatus.st_backendType != B_BACKEND ||
			!ch_client_host_of(&local->backendStatus, addr, sizeof(addr)))
			continue;
		for (k = 0; k < ncounts; k++)
			if (strcmp(counts[k].addr, addr) == 0)
				break;
		if (k == ncounts)
		{
			if (ncounts == CH_MAX_HOSTS)
			{
				dropped++;
				continue;
			}
			strlcpy(counts[k].addr, addr, sizeof(counts[k].addr));
			counts[k].connections = 0;
			counts[k].named = false;
			ncounts++;
		}
		counts[k].connections++;
		if (!counts[k].named && ch_backend_sqlc_named(&local->backendStatus))
			counts[k].named = true;
	}
	compat_clear_backend_snapshot();

	LWLockAcquire(ch_shared->locks[CH_LOCK_CLIENTS], LW_EXCLUSIVE);
	/* hosts seen before and gone now count zero; forget them once their
	 * peak has left the window */
	for (int i = 0; i < CH_MAX_HOSTS; i++)
	{
		ChHostPeak *h = &ch_clients->hosts[i];

		if (!h->used)
			continue;
		host_note(h, step, 0);
		if (host_peak(h, step) == 0)
			h->used = false;
	}
	for (int k = 0; k < ncounts; k++)
	{
		ChHostPeak *h = NULL;
		ChHostPeak *free_entry = NULL;

		for (int i = 0; i < CH_MAX_HOSTS; i++)
		{
			ChHostPeak *c = &ch_clients->hosts[i];

			if (c->used && strcmp(c->addr, counts[k].addr) == 0)
			{
				h = c;
				break;
			}
			if (!c->used && free_entry == NULL)
				free_entry = c;
		}
		if (h == NULL)
		{
			if (free_entry == NULL)
			{
				dropped++;
				continue;
			}
			h = free_entry;
			memset(h, 0, sizeof(*h));
			h->used = true;
			strlcpy(h->addr, counts[k].addr, sizeof(h->addr));
		}
		host_note(h, step, counts[k].connections);
		if (counts[k].named)
			h->named_at = now;
	}
	ch_clients->step = step;
	LWLockRelease(ch_shared->locks[CH_LOCK_CLIENTS]);

	if (dropped > 0)
		pg_atomic_fetch_add_u64(&ch_clients->hosts_dropped, dropped);
}
