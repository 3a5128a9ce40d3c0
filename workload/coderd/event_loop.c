/*-------------------------------------------------------------------------
 *
 * event_loop.c
 *		One thread drives every connection with non-blocking libpq: due
 *		work (the heartbeat, then notifications, then statements at the
 *		chosen rate) goes to idle pool connections, poll() waits for the
 *		busy ones and the listener, and each statement done moves its unit
 *		of work on to the next.
 *
 * Apart because pacing and waiting are the simulator's scheduler, the same
 * whatever the work is; it alone knows every kind of work, so it steps
 * each through the file that builds its statements (statements.c,
 * pubsub.c, heartbeat.c), and those never call up into it or each other.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>

#include "coderd_sim.h"

/*
 * Send the statement for the current step of pc's op, built by the file
 * that owns that kind of work; when the op has nothing more to send (or
 * sending failed), pc is left idle.
 */
static void
op_step(PoolConn *pc)
{
	bool		sent;

	if (pc->conn == NULL)
		sent = false;
	else if (pc->op == OP_NOTIFY)
		sent = pc->step == 0 && send_notify(pc);
	else if (pc->op == OP_REPLICA_SYNC)
		sent = replica_sync_step(pc);
	else
		sent = traffic_step(pc);
	if (!sent)
		pc->op = OP_NONE;
}

/* Start op on idle pc. */
static void
start_op(PoolConn *pc, OpKind op)
{
	begin_op(pc, op);
	op_step(pc);
}

/* Hand due work to idle connections. */
void
dispatch(double now)
{
	static int	rr = 0;
	int			i;

	/*
	 * Start at a different connection each time so that work spreads over
	 * the whole pool, as it does over coderd's many concurrent goroutines,
	 * instead of piling onto the first few connections.
	 */
	rr = (rr + 1) % opt_pool;
	for (i = 0; i < opt_pool; i++)
	{
		PoolConn   *pc = &pool[(rr + i) % opt_pool];

		if (pc->conn == NULL || pc->busy)
			continue;

		if (sync_pending)
		{
			sync_pending = false;
			start_op(pc, OP_REPLICA_SYNC);
			continue;
		}
		if (opt_notify_rate > 0 && now >= next_notify_at)
		{
			next_notify_at += 1.0 / opt_notify_rate;
			if (next_notify_at < now - 1.0)
				next_notify_at = now - 1.0;
			start_op(pc, OP_NOTIFY);
			continue;
		}
		if (opt_rate <= 0)
		{
			start_op(pc, pick_op());
			continue;
		}
		if (now >= next_stmt_at)
		{
			/* after a stall, do not try to make up for more than a second */
			if (next_stmt_at < now - 1.0)
				next_stmt_at = now - 1.0;
			start_op(pc, pick_op());
			continue;
		}
		break;
	}
}

/*
 * Wait up to timeout_ms for any busy pool connection or the listener, and
 * process what arrived.
 */
void
poll_once(int timeout_ms)
{
	static struct pollfd *pfd = NULL;
	static int *who = NULL;
	int			n = 0;
	int			i;
	int			rc;

	/* one slot per pool connection and one for the listener */
	if (pfd == NULL)
	{
		pfd = xmalloc(sizeof(struct pollfd) * (opt_pool + 1));
		who = xmalloc(sizeof(int) * (opt_pool + 1));
	}

	for (i = 0; i < opt_pool; i++)
	{
		PoolConn   *pc = &pool[i];

		if (pc->conn == NULL || !pc->busy)
			continue;
		pfd[n].fd = PQsocket(pc->conn);
		pfd[n].events = POLLIN | (pc->flushing ? POLLOUT : 0);
		pfd[n].revents = 0;
		who[n++] = i;
	}
	if (listener != NULL)
	{
		pfd[n].fd = PQsocket(listener);
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		who[n++] = -1;
	}

	rc = poll(pfd, n, timeout_ms);
	if (rc < 0 && errno != EINTR)
	{
		perror("poll");
		stop_requested = 1;
	}

	for (i = 0; rc > 0 && i < n; i++)
	{
		PoolConn   *pc;

		if (pfd[i].revents == 0)
			continue;
		if (who[i] < 0)
		{
			listener_read();
			continue;
		}
		pc = &pool[who[i]];
		if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
		{
			if (!PQconsumeInput(pc->conn))
			{
				pool_conn_broken(pc);
				continue;
			}
		}
		if (pc->flushing)
		{
			int			r = PQflush(pc->conn);

			if (r < 0)
			{
				pool_conn_broken(pc);
				continue;
			}
			pc->flushing = (r == 1);
		}
		/* each statement done moves its op on to its next statement */
		while (collect_results(pc))
			op_step(pc);
	}
}
