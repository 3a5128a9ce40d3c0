/*-------------------------------------------------------------------------
 *
 * heartbeat.c
 *		The Coder Server's own row in "replicas": registered at start,
 *		heartbeated every 5 s (coderd's replicasync: peers, a ping for the
 *		database latency, UpdateReplica, the tailnet coordinator) and marked
 *		stopped at exit.
 *
 * Apart because it is the one piece of work on a timer rather than a rate,
 * and what coder_health's coder_servers view reads back.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>

#include "coderd_sim.h"

/* when this server started, as its replicas row records it */
static char started_at_ts[TS_LEN];

/*
 * The statement for step pc->step of the heartbeat (OP_REPLICA_SYNC): which
 * peers are alive, a ping to measure the database latency, this server's
 * row, the tailnet coordinator.  False when the heartbeat is done (or
 * sending failed).
 */
bool
replica_sync_step(PoolConn *pc)
{
	char		now_ts[TS_LEN];
	char		later_ts[TS_LEN];
	char		buf[64];

	format_ts(now_ts, sizeof(now_ts), 0);

	switch (pc->step)
	{
		case 0:
			{
				/* peers heartbeating within 3 intervals are alive */
				const char *v[1] = {later_ts};

				format_ts(later_ts, sizeof(later_ts),
						  -(long) (3 * HEARTBEAT_SEC));
				return send_stmt(pc, S_GET_REPLICAS_UPDATED_AFTER, 1, v);
			}
		case 1:
			return send_stmt(pc, S_PING, 0, NULL);
		case 2:
			{
				const char *v[11] = {replica_id, now_ts, started_at_ts,
					NULL, opt_relay, "1", opt_name, SIM_VERSION, "",
				buf, "true"};

				snprintf(buf, sizeof(buf), "%d", db_latency_us);
				return send_stmt(pc, S_UPDATE_REPLICA, 11, v);
			}
		case 3:
			{
				const char *v[1] = {replica_id};

				return send_stmt(pc, S_UPSERT_TAILNET_COORDINATOR, 1, v);
			}
		default:
			return false;
	}
	return false;
}

int
measure_latency_us(PGconn *conn)
{
	double		t0 = now_sec();
	PGresult   *res = PQexec(conn, "SELECT 1");
	int			us = (int) ((now_sec() - t0) * 1e6);

	PQclear(res);
	return us;
}

/*
 * Register this server in "replicas".  coderd inserts a fresh row per
 * start; the simulator reuses the row of its hostname so that repeated runs
 * do not pile up dead replicas.
 */
void
register_replica(PGconn *conn)
{
	PGresult   *res;
	char		lat[16];
	const char *vh[1] = {opt_name};

	snprintf(lat, sizeof(lat), "%d", db_latency_us);
	format_ts(started_at_ts, sizeof(started_at_ts), 0);

	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT id FROM replicas WHERE hostname = $1 "
					   "ORDER BY updated_at DESC LIMIT 1", 1, vh);
	if (PQntuples(res) > 0)
	{
		const char *v[11] = {replica_id, started_at_ts, started_at_ts, NULL,
			opt_relay, "1", opt_name, SIM_VERSION, "", lat, "true"};

		snprintf(replica_id, UUID_LEN, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		res = exec_checked(conn, stmts[S_UPDATE_REPLICA].sql, 11, v);
	}
	else
	{
		const char *v[10] = {replica_id, started_at_ts, started_at_ts,
			started_at_ts, opt_name, "1", opt_relay, SIM_VERSION, lat, "true"};

		PQclear(res);
		gen_uuid(replica_id);
		res = exec_checked(conn, stmts[S_INSERT_REPLICA].sql, 10, v);
	}
	PQclear(res);

	/* The tailnet coordinator must exist before peers point at it. */
	{
		const char *v[1] = {replica_id};

		res = exec_checked(conn, stmts[S_UPSERT_TAILNET_COORDINATOR].sql, 1, v);
		PQclear(res);
	}
}

void
mark_replica_stopped(void)
{
	PGconn	   *conn = NULL;
	bool		own = false;
	char		now_ts[TS_LEN];
	char		lat[16];
	const char *v[11] = {replica_id, now_ts, started_at_ts, now_ts, opt_relay,
		"1", opt_name, SIM_VERSION, "", lat, "true"};
	PGresult   *res;
	int			i;

	for (i = 0; i < opt_pool && conn == NULL; i++)
		if (pool[i].conn != NULL && !pool[i].busy)
			conn = pool[i].conn;
	if (conn == NULL)
	{
		conn = PQconnectdb(opt_conninfo);
		own = true;
		if (PQstatus(conn) != CONNECTION_OK)
		{
			note("could not mark replica stopped: %s", PQerrorMessage(conn));
			PQfinish(conn);
			return;
		}
	}
	format_ts(now_ts, sizeof(now_ts), 0);
	snprintf(lat, sizeof(lat), "%d", db_latency_us);
	res = PQexecParams(conn, stmts[S_UPDATE_REPLICA].sql, 11, NULL, v, NULL,
					   NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		note("could not mark replica stopped: %s", PQresultErrorMessage(res));
	PQclear(res);
	if (own)
		PQfinish(conn);
}
