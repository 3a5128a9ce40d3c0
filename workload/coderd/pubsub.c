/*-------------------------------------------------------------------------
 *
 * pubsub.c
 *		Coder's pubsub: publishing notifications from the pool with
 *		"select pg_notify('<channel>', $1)" and JSON payloads of 100..7900
 *		bytes, and the one long-lived LISTEN connection (lib/pq's
 *		pq.Listener) that consumes them and measures how long each took.
 *
 * Apart because LISTEN/NOTIFY is its own path through PostgreSQL (and
 * through coder_health's notify module): channels, payload sizes, the
 * listener's connection and the delivery latency belong together.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coderd_sim.h"

PGconn	   *listener;
double		listener_reconnect_at;
char		listen_channels[N_CHANNEL_IDS + 8][CHANNEL_LEN];
int			n_listen_channels;

/*
 * Publish one notification.  Coder's pubsub inlines the channel as a quoted
 * literal, "select pg_notify('<channel>', $1)", and sends it through
 * database/sql with an unnamed statement; -p sends pg_notify($1, $2)
 * instead.
 */
bool
send_notify(PoolConn *pc)
{
	char		channel[CHANNEL_LEN];
	const char *event;
	const char *values[2];
	StrBuf		payload;
	int			target = rng_range(MIN_PAYLOAD, MAX_PAYLOAD);
	int			dice = rng_range(1, 100);
	int			ok;

	if (dice <= 50 && n_channel_owners > 0)
	{
		snprintf(channel, sizeof(channel), "workspace_owner:%.36s",
				 channel_owners[rng_range(0, n_channel_owners - 1)]);
		event = "workspace_updated";
	}
	else if (dice <= 75 && n_channel_agents > 0)
	{
		snprintf(channel, sizeof(channel), "agent-logs:%.36s",
				 channel_agents[rng_range(0, n_channel_agents - 1)]);
		event = "logs_added";
	}
	else if (dice <= 90)
	{
		snprintf(channel, sizeof(channel), "tailnet_peer_update");
		event = "peer_update";
	}
	else
	{
		snprintf(channel, sizeof(channel), "latency-measure:%.36s", replica_id);
		event = "ping";
	}

	sb_init(&payload, MAX_PAYLOAD + 256);
	sb_printf(&payload, "{\"sent_us\":%lld,\"replica\":\"%s\",\"kind\":\"%s\",\"data\":\"",
			  (long long) wall_usec(), replica_id, event);
	if ((int) payload.len + 2 < target)
		sb_fill(&payload, 'x', target - payload.len - 2);
	sb_printf(&payload, "\"}");

	if (opt_param_channel)
	{
		values[0] = channel;
		values[1] = payload.data;
		ok = PQsendQueryParams(pc->conn, "select pg_notify($1, $2)", 2, NULL,
							   values, NULL, NULL, 0);
	}
	else
	{
		char		sql[CHANNEL_LEN + 64];

		/* The channel holds only [a-z0-9:_-], so it needs no escaping. */
		snprintf(sql, sizeof(sql), "select pg_notify('%s', $1)", channel);
		values[0] = payload.data;
		ok = PQsendQueryParams(pc->conn, sql, 1, NULL, values, NULL, NULL, 0);
	}
	sb_free(&payload);
	return after_send(pc, S_NOTIFY, ok);
}

/*
 * The channels this server's listener follows: half of the shared
 * workspace_owner channels and a quarter of the agent-logs ones (a random
 * subset per server, like the browsers that happen to be connected to it),
 * the coordinator channel and this server's own latency probe.
 */
void
choose_listen_channels(void)
{
	int			k,
				j;

	for (k = 0; k < n_channel_owners; k++)
		if (rng_range(0, 1) == 0 && n_listen_channels < N_CHANNEL_IDS / 2)
			snprintf(listen_channels[n_listen_channels++], CHANNEL_LEN,
					 "workspace_owner:%.36s", channel_owners[k]);
	for (j = 0, k = 0; k < n_channel_agents && j < N_CHANNEL_IDS / 4; k++)
		if (rng_range(0, 3) == 0)
		{
			snprintf(listen_channels[n_listen_channels++], CHANNEL_LEN,
					 "agent-logs:%.36s", channel_agents[k]);
			j++;
		}
	snprintf(listen_channels[n_listen_channels++], CHANNEL_LEN,
			 "tailnet_peer_update");
	snprintf(listen_channels[n_listen_channels++], CHANNEL_LEN,
			 "latency-measure:%.36s", replica_id);
}

/* lib/pq's pq.Listener issues LISTEN "<channel>" as simple queries. */
PGconn *
open_listener(void)
{
	PGconn	   *conn = PQconnectdb(opt_conninfo);
	int			i;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		note("listener connection failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_processor, NULL);
	for (i = 0; i < n_listen_channels; i++)
	{
		char		sql[CHANNEL_LEN + 16];
		PGresult   *res;

		snprintf(sql, sizeof(sql), "LISTEN \"%s\"", listen_channels[i]);
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			note("%s failed: %s", sql, PQresultErrorMessage(res));
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}
	if (PQsetnonblocking(conn, 1) != 0)
	{
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Reconnect the listener if it is gone and its retry is due. */
void
listener_reconnect_due(double now)
{
	if (opt_listen && listener == NULL && now >= listener_reconnect_at)
	{
		listener = open_listener();
		if (listener == NULL)
			listener_reconnect_at = now_sec() + RECONNECT_SEC;
	}
}

void
listener_read(void)
{
	PGnotify   *n;

	if (!PQconsumeInput(listener))
	{
		note("listener connection lost: %s", PQerrorMessage(listener));
		n_errors++;
		PQfinish(listener);
		listener = NULL;
		listener_reconnect_at = now_sec() + RECONNECT_SEC;
		return;
	}
	while ((n = PQnotifies(listener)) != NULL)
	{
		const char *p = strstr(n->extra, "\"sent_us\":");

		n_notify_received++;
		/* Every simulated server stamps its payloads; all share one clock. */
		if (p != NULL)
		{
			long long	sent = strtoll(p + 10, NULL, 10);
			double		ms = (wall_usec() - sent) / 1000.0;

			if (sent > 0 && ms >= 0)
			{
				n_notify_timed++;
				notify_lat_sum_ms += ms;
				if (ms > notify_lat_max_ms)
					notify_lat_max_ms = ms;
			}
		}
		PQfreemem(n);
	}
}
