/*-------------------------------------------------------------------------
 *
 * connections.c
 *		The pool of connections (CODER_PG_CONN_MAX_OPEN): connecting one
 *		and preparing every statement on it as pgx does, giving it up when
 *		the server closes it, reconnecting a second later, and cancelling
 *		what still runs at the end.
 *
 * Apart because a connection's life (up, broken, back) is independent of
 * what runs on it: statements.c only sees a connection that is there.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>

#include "coderd_sim.h"

PoolConn   *pool;

/*
 * Server notices, and errors that arrive while no statement is running (a
 * terminated backend), go to stderr with our name, or nowhere with -q.
 */
void
notice_processor(void *arg, const char *message)
{
	(void) arg;
	if (!opt_quiet)
		fprintf(stderr, "%s: %s", opt_name, message);
}

/* Connect one pool connection and prepare every statement on it. */
PGconn *
open_pool_conn(void)
{
	PGconn	   *conn = PQconnectdb(opt_conninfo);
	int			i;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		note("connection failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_processor, NULL);

	/*
	 * pgx prepares each statement once per connection under a name and then
	 * only sends Bind/Execute; do the same up front.
	 */
	for (i = 0; opt_prepared && i < N_STMTS; i++)
	{
		PGresult   *res;

		if (stmts[i].sql == NULL || i == S_PING)
			continue;
		res = PQprepare(conn, stmts[i].name, stmts[i].sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			note("preparing %s failed: %s", stmts[i].name,
				 PQresultErrorMessage(res));
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}

	if (PQsetnonblocking(conn, 1) != 0)
	{
		note("PQsetnonblocking failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* The connection is gone: count the statement lost with it, retry later. */
void
pool_conn_broken(PoolConn *pc)
{
	/* an error result for it may already have been counted */
	if (pc->busy && !pc->failed)
		count_error(pc->cur, PQerrorMessage(pc->conn));
	PQfinish(pc->conn);
	pc->conn = NULL;
	pc->busy = false;
	pc->flushing = false;
	pc->op = OP_NONE;
	pc->reconnect_at = now_sec() + RECONNECT_SEC;
}

/* Reconnect the pool connections whose retry is due. */
void
reconnect_due(double now)
{
	int			i;

	for (i = 0; i < opt_pool; i++)
	{
		if (pool[i].conn == NULL && now >= pool[i].reconnect_at)
		{
			pool[i].conn = open_pool_conn();
			if (pool[i].conn == NULL)
				pool[i].reconnect_at = now_sec() + RECONNECT_SEC;
		}
	}
}

int
busy_count(void)
{
	int			i,
				n = 0;

	for (i = 0; i < opt_pool; i++)
		if (pool[i].conn != NULL && pool[i].busy)
			n++;
	return n;
}

void
cancel_busy(void)
{
	int			i;

	for (i = 0; i < opt_pool; i++)
	{
		PoolConn   *pc = &pool[i];
		PGcancel   *cancel;
		PGresult   *res;

		if (pc->conn == NULL || !pc->busy)
			continue;
		cancel = PQgetCancel(pc->conn);
		if (cancel != NULL)
		{
			char		errbuf[256];

			(void) PQcancel(cancel, errbuf, sizeof(errbuf));
			PQfreeCancel(cancel);
		}
		PQsetnonblocking(pc->conn, 0);
		while ((res = PQgetResult(pc->conn)) != NULL)
			PQclear(res);
		pc->busy = false;
		pc->op = OP_NONE;
	}
}
