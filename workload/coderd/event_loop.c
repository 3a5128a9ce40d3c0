/*-------------------------------------------------------------------------
 *
 * event_loop.c
 *		One thread drives every connection with non-blocking libpq: due
 *		work (the heartbeat, then notifications, then statements at the
 *		chosen rate) goes to idle pool connections, and poll() waits for the
 *		busy ones and the listener.
 *
 * Apart because pacing and waiting are the simulator's scheduler, the same
 * whatever the work is.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>

#include "coderd_sim.h"

double		next_stmt_at;
double		next_notify_at;
double		next_sync_at;
bool		sync_pending;

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
		drain_results(pc);
	}
}
