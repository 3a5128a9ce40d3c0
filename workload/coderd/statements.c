/*-------------------------------------------------------------------------
 *
 * statements.c
 *		The units of work an idle pool connection picks up (an API request,
 *		an agent's stats, a provisioner job, ...), each a short sequence of
 *		statements run back to back on one connection as one Go request
 *		handler would; sending each statement, reading its results, and
 *		counting calls, times and errors per statement.
 *
 * Apart because this is the traffic itself: which statements, with which
 * parameters, in which mix.  The replicas heartbeat and pubsub publishes
 * are units of work too; their statements are built in heartbeat.c and
 * pubsub.c, above this file, and sent with send_stmt() and after_send();
 * event_loop.c steps every op.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include "coderd_sim.h"

/* Relative weights of the rate-limited work; see pick_op(). */
static const struct
{
	OpKind		op;
	int			weight;
}			op_mix[] = {
	{OP_API_REQUEST, 30},
	{OP_GET_AGENT, 25},
	{OP_AGENT_CONNECTION, 15},
	{OP_TAILNET_PEER, 8},
	{OP_AGENT_STATS, 5},
	{OP_TAILNET_TUNNEL, 5},
	{OP_LIST_WORKSPACES, 5},
	{OP_ACQUIRE_JOB, 3},
	{OP_INSERT_JOB, 3},
};

/*
 * A statement was handed to libpq (ok: whether that worked): mark pc busy
 * with it, pace -r, and start flushing.  False if it could not be sent.
 */
bool
after_send(PoolConn *pc, StmtId id, int ok)
{
	int			r;

	if (!ok)
	{
		if (PQstatus(pc->conn) == CONNECTION_BAD)
		{
			pc->cur = id;
			pc->busy = true;
			pc->failed = false;
			pool_conn_broken(pc);
		}
		else
			count_error(id, PQerrorMessage(pc->conn));
		return false;
	}
	pc->cur = id;
	pc->busy = true;
	pc->failed = false;
	pc->sent_at = now_sec();
	/* -r paces every statement sent, follow-ups and heartbeats included */
	if (id != S_NOTIFY && opt_rate > 0)
		next_stmt_at += 1.0 / opt_rate;
	r = PQflush(pc->conn);
	if (r < 0)
	{
		pool_conn_broken(pc);
		return false;
	}
	pc->flushing = (r == 1);
	return true;
}

/* Send statement id with text-format parameters. */
bool
send_stmt(PoolConn *pc, StmtId id, int nparams, const char *const *values)
{
	int			ok;

	if (id == S_PING)

		/*
		 * database/sql's Ping through lib/pq is a simple-protocol query, not
		 * a prepared statement.
		 */
		ok = PQsendQuery(pc->conn, stmts[id].sql);
	else if (opt_prepared)
		ok = PQsendQueryPrepared(pc->conn, stmts[id].name, nparams, values,
								 NULL, NULL, 0);
	else
		ok = PQsendQueryParams(pc->conn, stmts[id].sql, nparams, NULL, values,
							   NULL, NULL, 0);
	return after_send(pc, id, ok);
}

static void
random_ip(char *buf, size_t len)
{
	snprintf(buf, len, "10.%d.%d.%d", rng_range(0, 255), rng_range(0, 255),
			 rng_range(1, 254));
}

static void
random_hex(StrBuf *sb, int nbytes)
{
	static const char hex[] = "0123456789abcdef";
	int			i;

	sb_reserve(sb, (size_t) nbytes * 2);
	for (i = 0; i < nbytes; i++)
	{
		unsigned	v = (unsigned) (rng_next() & 0xff);

		sb->data[sb->len++] = hex[v >> 4];
		sb->data[sb->len++] = hex[v & 0xf];
	}
	sb->data[sb->len] = '\0';
}

/*
 * InsertWorkspaceAgentStats: coderd batches agent stats reports and flushes
 * them as one multi-row insert built from parallel arrays.
 */
static bool
send_agent_stats(PoolConn *pc)
{
	enum
	{
		NCOL = 18
	};
	StrBuf		col[NCOL];
	const char *values[NCOL];
	char		ts[TS_LEN];
	int			nrows = rng_range(5, 20);
	int			r,
				c;
	bool		ok;

	format_ts(ts, sizeof(ts), 0);
	for (c = 0; c < NCOL; c++)
	{
		sb_init(&col[c], 1024);
		sb_printf(&col[c], "%s", c == 6 ? "[" : "{");
	}
	for (r = 0; r < nrows; r++)
	{
		const Agent *a = &agents[rng_range(0, n_agents - 1)];
		const char *sep = r ? "," : "";
		char		id[UUID_LEN];
		int			conns = rng_range(0, 3);

		gen_uuid(id);
		sb_printf(&col[0], "%s%s", sep, id);
		sb_printf(&col[1], "%s\"%s\"", sep, ts);
		sb_printf(&col[2], "%s%s", sep, a->owner_id);
		sb_printf(&col[3], "%s%s", sep, a->workspace_id);
		sb_printf(&col[4], "%s%s", sep, a->template_id);
		sb_printf(&col[5], "%s%s", sep, a->id);
		sb_printf(&col[6], "%s{\"ssh\": %d, \"vscode\": %d}", sep,
				  conns > 0, conns > 1);
		sb_printf(&col[7], "%s%d", sep, conns);
		sb_printf(&col[8], "%s%d", sep, rng_range(0, 5000));
		sb_printf(&col[9], "%s%d", sep, rng_range(0, 5000000));
		sb_printf(&col[10], "%s%d", sep, rng_range(0, 5000));
		sb_printf(&col[11], "%s%d", sep, rng_range(0, 5000000));
		sb_printf(&col[12], "%s%d", sep, conns > 1);
		sb_printf(&col[13], "%s%d", sep, 0);
		sb_printf(&col[14], "%s%d", sep, rng_range(0, 1));
		sb_printf(&col[15], "%s%d", sep, conns > 0);
		sb_printf(&col[16], "%s%.3f", sep, conns ? 1.0 + rng_unit() * 40 : -1.0);
		sb_printf(&col[17], "%s%s", sep, conns ? "t" : "f");
	}
	for (c = 0; c < NCOL; c++)
	{
		sb_printf(&col[c], "%s", c == 6 ? "]" : "}");
		values[c] = col[c].data;
	}
	/* libpq copies the parameters into its output buffer right away. */
	ok = send_stmt(pc, S_INSERT_WORKSPACE_AGENT_STATS, NCOL, values);
	for (c = 0; c < NCOL; c++)
		sb_free(&col[c]);
	return ok;
}

/*
 * Send the statement for the current step of pc's op, one of the request
 * traffic's (event_loop.c hands the notify and replica sync ops to pubsub.c
 * and heartbeat.c).  Returns false when the op has nothing more to send (or
 * sending failed).
 */
bool
traffic_step(PoolConn *pc)
{
	char		now_ts[TS_LEN];
	char		later_ts[TS_LEN];
	char		buf[64];

	format_ts(now_ts, sizeof(now_ts), 0);

	switch (pc->op)
	{
		case OP_NONE:
		case OP_NOTIFY:
		case OP_REPLICA_SYNC:
			return false;

		case OP_API_REQUEST:
			{
				const char *key = api_keys[pc->pick];

				/*
				 * Every authenticated request looks its API key up; coderd
				 * writes last_used back only now and then.
				 */
				if (pc->step == 0)
				{
					const char *v[1] = {key};

					return send_stmt(pc, S_GET_API_KEY_BY_ID, 1, v);
				}
				if (pc->step == 1 && pc->extra)
				{
					const char *v[4] = {key, now_ts, later_ts, buf};

					format_ts(later_ts, sizeof(later_ts), 86400);
					random_ip(buf, sizeof(buf));
					return send_stmt(pc, S_UPDATE_API_KEY_BY_ID, 4, v);
				}
				return false;
			}

		case OP_GET_AGENT:
			if (pc->step == 0)
			{
				const char *v[1] = {agents[pc->pick].id};

				return send_stmt(pc, S_GET_WORKSPACE_AGENT_BY_ID, 1, v);
			}
			return false;

		case OP_AGENT_CONNECTION:
			if (pc->step == 0)
			{
				const char *v[6] = {agents[pc->pick].id, first_connected_ts,
				now_ts, replica_id, NULL, now_ts};

				return send_stmt(pc, S_UPDATE_WORKSPACE_AGENT_CONNECTION_BY_ID,
								 6, v);
			}
			return false;

		case OP_AGENT_STATS:
			if (pc->step == 0)
				return send_agent_stats(pc);
			return false;

		case OP_ACQUIRE_JOB:
			if (pc->step == 0)
			{
				const char *v[4] = {now_ts, worker_id, org_id, "{terraform,echo}"};

				pc->got_job = false;
				return send_stmt(pc, S_ACQUIRE_PROVISIONER_JOB, 4, v);
			}
			if (pc->step == 1 && pc->got_job)
			{
				/* The provisioner finished the build at once; mark it done. */
				const char *v[5] = {pc->job_id, now_ts, now_ts, NULL, NULL};

				return send_stmt(pc, S_UPDATE_PROVISIONER_JOB_WITH_COMPLETE_BY_ID,
								 5, v);
			}
			return false;

		case OP_INSERT_JOB:
			if (pc->step == 0)
			{
				char		id[UUID_LEN];
				char		file_id[UUID_LEN];
				char		build_id[UUID_LEN];
				char		input[96];
				const char *v[12];

				gen_uuid(id);
				gen_uuid(file_id);
				gen_uuid(build_id);
				snprintf(input, sizeof(input), "{\"workspace_build_id\":\"%s\"}",
						 build_id);
				v[0] = id;
				v[1] = now_ts;
				v[2] = now_ts;
				v[3] = org_id;
				v[4] = agents[pc->pick].owner_id;
				v[5] = "terraform";
				v[6] = "file";
				v[7] = file_id;
				v[8] = "workspace_build";
				v[9] = input;
				v[10] = "{\"scope\":\"organization\",\"owner\":\"\"}";
				v[11] = "{}";
				return send_stmt(pc, S_INSERT_PROVISIONER_JOB, 12, v);
			}
			return false;

		case OP_TAILNET_PEER:
			if (pc->step == 0)
			{
				StrBuf		node;
				const char *v[4];
				bool		ok;

				/* node is a serialized protobuf of a few hundred bytes */
				sb_init(&node, 1024);
				sb_printf(&node, "\\x");
				random_hex(&node, rng_range(150, 400));
				v[0] = agents[pc->pick].id;
				v[1] = replica_id;
				v[2] = node.data;
				v[3] = rng_range(1, 20) == 1 ? "lost" : "ok";
				ok = send_stmt(pc, S_UPSERT_TAILNET_PEER, 4, v);
				sb_free(&node);
				return ok;
			}
			return false;

		case OP_TAILNET_TUNNEL:
			if (pc->step == 0)
			{
				const char *v[3] = {replica_id,
					client_peers[rng_range(0, N_CLIENT_PEERS - 1)],
				agents[pc->pick].id};

				return send_stmt(pc, S_UPSERT_TAILNET_TUNNEL, 3, v);
			}
			return false;

		case OP_LIST_WORKSPACES:
			if (pc->step == 0)
			{
				const char *v[4] = {"false", agents[pc->pick].owner_id, "25", "0"};

				return send_stmt(pc, S_GET_WORKSPACES, 4, v);
			}
			return false;
	}
	return false;
}

OpKind
pick_op(void)
{
	static int	total = 0;
	int			i,
				r;

	if (total == 0)
		for (i = 0; i < (int) (sizeof(op_mix) / sizeof(op_mix[0])); i++)
			total += op_mix[i].weight;
	r = rng_range(1, total);
	for (i = 0; i < (int) (sizeof(op_mix) / sizeof(op_mix[0])); i++)
	{
		r -= op_mix[i].weight;
		if (r <= 0)
			return op_mix[i].op;
	}
	return OP_GET_AGENT;
}

/* Set idle pc up for op, its first step not sent yet. */
void
begin_op(PoolConn *pc, OpKind op)
{
	pc->op = op;
	pc->step = 0;
	pc->got_job = false;
	pc->extra = false;
	if (op == OP_API_REQUEST)
	{
		pc->pick = rng_range(0, n_api_keys - 1);
		/* coderd only writes last_used back once it is a minute old */
		pc->extra = rng_range(1, 5) == 1;
	}
	else
		pc->pick = rng_range(0, n_agents - 1);
}

/* A statement's results are all in: book it and count the op's step. */
static void
statement_done(PoolConn *pc)
{
	double		ms = (now_sec() - pc->sent_at) * 1000.0;
	StmtStats  *st = &stats[pc->cur];

	pc->busy = false;
	st->count++;
	st->total_ms += ms;
	if (ms > st->max_ms)
		st->max_ms = ms;
	if (pc->cur == S_NOTIFY)
	{
		if (!pc->failed)
			n_notify_sent++;
	}
	else
		n_statements++;
	if (pc->cur == S_PING && !pc->failed)
		db_latency_us = (int) (ms * 1000.0);

	pc->step++;
}

static void
handle_result(PoolConn *pc, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
	{
		pc->failed = true;
		count_error(pc->cur, PQresultErrorMessage(res));
		return;
	}
	if (pc->cur == S_ACQUIRE_PROVISIONER_JOB && PQntuples(res) > 0)
	{
		snprintf(pc->job_id, sizeof(pc->job_id), "%s", PQgetvalue(res, 0, 0));
		pc->got_job = true;
	}
}

/*
 * Collect the results that have arrived on pc without blocking.  True when
 * its statement is done (booked, pc idle, the op's step counted): the caller
 * sends the op's next statement and calls again.
 */
bool
collect_results(PoolConn *pc)
{
	while (pc->conn != NULL && pc->busy && !pc->flushing &&
		   !PQisBusy(pc->conn))
	{
		PGresult   *res = PQgetResult(pc->conn);

		if (res == NULL)
		{
			statement_done(pc);
			return true;
		}
		handle_result(pc, res);
		PQclear(res);
	}
	return false;
}
