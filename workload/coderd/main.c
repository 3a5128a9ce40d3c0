/*-------------------------------------------------------------------------
 *
 * main.c
 *		Simulate one Coder Server (a coderd replica) against PostgreSQL:
 *		the options, start-up, the main loop and the summary line.
 *
 * What coderd does to its database, at a chosen rate:
 *
 *	- a pool of connections (CODER_PG_CONN_MAX_OPEN, default 10) running
 *	  Coder's hot sqlc statements, each text starting with sqlc's
 *	  "-- name: X :kind" marker and sent with the extended protocol as named
 *	  prepared statements, as pgx does (-M extended: unnamed statements, as
 *	  lib/pq does);
 *	- pubsub publishes from that pool, "select pg_notify('<channel>', $1)",
 *	  with JSON payloads of 100..7900 bytes;
 *	- one long-lived LISTEN connection (lib/pq's pq.Listener) that consumes
 *	  notifications as they arrive;
 *	- its own row in "replicas", heartbeated every 5 s with the database
 *	  latency it measured, and stopped_at set when it exits.
 *
 * One thread drives everything with non-blocking libpq and poll(): each
 * pool connection carries at most one statement at a time, like a
 * database/sql connection, and an idle connection picks up the next due
 * piece of work.  Statement errors are counted, never fatal; only failing
 * to connect at all is.
 *
 * Output: one summary line on stdout at the end.  Progress and errors go to
 * stderr (-q silences progress).
 *
 * coderd_sim.h lists the files and what each does.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coderd_sim.h"

/* the options only main.c reads; the shared ones are in state.c */
static double opt_duration = 20.0;
static bool opt_verbose = false;

static void
handle_signal(int signo)
{
	(void) signo;
	stop_requested = 1;
}

static void
usage(const char *prog)
{
	fprintf(stderr,
			"Usage: %s [options]\n"
			"Simulate one Coder Server (coderd) against PostgreSQL.\n\n"
			"  -d CONNINFO   libpq connection string (\"host=127.0.0.1 port=5432 dbname=coder\")\n"
			"  -n NAME       replica hostname (default coderd-sim)\n"
			"  -c N          pool size (default 10, like CODER_PG_CONN_MAX_OPEN)\n"
			"  -t SECONDS    duration (default 20; 0 = until SIGINT/SIGTERM)\n"
			"  -r RATE       statements per second over the pool (default 200; 0 = flat out)\n"
			"  -N RATE       notifications per second (default 20; 0 = none)\n"
			"  -L / -l       hold a LISTEN connection (default) / do not\n"
			"  -a URL        relay_address to record (default http://127.0.0.1:8080)\n"
			"  -M MODE       prepared (named statements, like pgx; default) or\n"
			"                extended (unnamed statements, like lib/pq)\n"
			"  -p            publish with pg_notify($1, $2) instead of Coder's\n"
			"                pg_notify('<channel>', $1)\n"
			"  -q            quiet: only the summary line\n"
			"  -v            per-statement breakdown at the end (stderr)\n",
			prog);
}

static double
parse_num(const char *s, char opt)
{
	char	   *end;
	double		v = strtod(s, &end);

	if (end == s || *end != '\0' || v < 0)
		fatal("invalid value for -%c: %s", opt, s);
	return v;
}

int
main(int argc, char **argv)
{
	int			c;
	int			i;
	int			connected = 0;
	double		start,
				end_at,
				drain_until,
				elapsed;
	struct sigaction sa;

	while ((c = getopt(argc, argv, "d:n:c:t:r:N:Lla:M:pqvh")) != -1)
	{
		switch (c)
		{
			case 'd':
				opt_conninfo = optarg;
				break;
			case 'n':
				opt_name = optarg;
				break;
			case 'c':
				opt_pool = (int) parse_num(optarg, 'c');
				break;
			case 't':
				opt_duration = parse_num(optarg, 't');
				break;
			case 'r':
				opt_rate = parse_num(optarg, 'r');
				break;
			case 'N':
				opt_notify_rate = parse_num(optarg, 'N');
				break;
			case 'L':
				opt_listen = true;
				break;
			case 'l':
				opt_listen = false;
				break;
			case 'a':
				opt_relay = optarg;
				break;
			case 'M':
				if (strcmp(optarg, "prepared") == 0)
					opt_prepared = true;
				else if (strcmp(optarg, "extended") == 0)
					opt_prepared = false;
				else
					fatal("-M must be prepared or extended");
				break;
			case 'p':
				opt_param_channel = true;
				break;
			case 'q':
				opt_quiet = true;
				break;
			case 'v':
				opt_verbose = true;
				break;
			case 'h':
				usage(argv[0]);
				return 0;
			default:
				usage(argv[0]);
				return 2;
		}
	}
	if (optind < argc)
	{
		usage(argv[0]);
		return 2;
	}
	if (opt_pool < 1 || opt_pool > 1000)
		fatal("-c must be between 1 and 1000");

	rng_state = (uint64_t) wall_usec() ^ ((uint64_t) getpid() << 32) ^
		UINT64_C(0x9e3779b97f4a7c15);
	if (rng_state == 0)
		rng_state = 1;
	gen_uuid(worker_id);
	format_ts(first_connected_ts, sizeof(first_connected_ts), -3600);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: poll() must return so the loop sees the request */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pool = calloc(opt_pool, sizeof(PoolConn));
	if (pool == NULL)
		fatal("out of memory");

	/* The first connection also does the setup work. */
	pool[0].conn = open_pool_conn();
	if (pool[0].conn == NULL)
	{
		fprintf(stderr, "%s: could not connect to the database\n", opt_name);
		printf("%s statements=0 errors=1 notifications_sent=0 "
			   "notifications_received=0 elapsed=0.00s connect_failed=1\n",
			   opt_name);
		return 1;
	}
	load_reference_data(pool[0].conn);
	db_latency_us = measure_latency_us(pool[0].conn);
	register_replica(pool[0].conn);
	connected = 1;
	for (i = 1; i < opt_pool; i++)
	{
		pool[i].conn = open_pool_conn();
		if (pool[i].conn != NULL)
			connected++;
		else
			pool[i].reconnect_at = now_sec() + RECONNECT_SEC;
	}

	if (opt_listen)
	{
		choose_listen_channels();
		listener = open_listener();
		if (listener == NULL)
			listener_reconnect_at = now_sec() + RECONNECT_SEC;
	}

	note("replica %s, %d/%d pool connections, %s, %d channels, rate %.0f/s, "
		 "notify %.0f/s, db latency %d us",
		 replica_id, connected, opt_pool,
		 listener ? "listening" : "not listening", n_listen_channels,
		 opt_rate, opt_notify_rate, db_latency_us);

	start = now_sec();
	end_at = opt_duration > 0 ? start + opt_duration : 1e300;
	next_stmt_at = start;
	next_notify_at = start;
	next_sync_at = start + HEARTBEAT_SEC;

	while (!stop_requested)
	{
		double		now = now_sec();
		double		wake;
		int			timeout_ms;
		bool		idle = false;

		if (now >= end_at)
			break;
		if (now >= next_sync_at)
		{
			sync_pending = true;
			next_sync_at += HEARTBEAT_SEC;
		}
		reconnect_due(now);
		listener_reconnect_due(now);
		dispatch(now);

		for (i = 0; i < opt_pool; i++)
			if (pool[i].conn != NULL && !pool[i].busy)
				idle = true;
		wake = next_sync_at < end_at ? next_sync_at : end_at;
		if (idle)
		{
			if (opt_rate > 0 && next_stmt_at < wake)
				wake = next_stmt_at;
			if (opt_notify_rate > 0 && next_notify_at < wake)
				wake = next_notify_at;
		}
		timeout_ms = (int) ((wake - now) * 1000.0 + 0.999);
		if (timeout_ms < 0)
			timeout_ms = 0;
		if (timeout_ms > 100)
			timeout_ms = 100;
		poll_once(timeout_ms);
	}

	/* Let in-flight statements finish (a second signal cuts this short). */
	stop_requested = 0;
	drain_until = now_sec() + DRAIN_SEC;
	while (busy_count() > 0 && now_sec() < drain_until && !stop_requested)
		poll_once(50);
	cancel_busy();
	elapsed = now_sec() - start;
	/* Notifications already queued to us may still be on their way. */
	if (listener != NULL)
	{
		double		until = now_sec() + 0.2;

		while (listener != NULL && now_sec() < until)
			poll_once(50);
	}

	mark_replica_stopped();

	for (i = 0; i < opt_pool; i++)
		if (pool[i].conn != NULL)
			PQfinish(pool[i].conn);
	if (listener != NULL)
		PQfinish(listener);

	printf("%s statements=%ld errors=%ld notifications_sent=%ld "
		   "notifications_received=%ld elapsed=%.2fs stmt_per_s=%.1f "
		   "notify_per_s=%.1f notify_latency_avg_ms=%.2f notify_latency_max_ms=%.2f\n",
		   opt_name, n_statements, n_errors, n_notify_sent, n_notify_received,
		   elapsed, elapsed > 0 ? n_statements / elapsed : 0.0,
		   elapsed > 0 ? n_notify_sent / elapsed : 0.0,
		   n_notify_timed ? notify_lat_sum_ms / n_notify_timed : 0.0,
		   notify_lat_max_ms);
	fflush(stdout);

	if (opt_verbose)
	{
		fprintf(stderr, "%-40s %9s %7s %9s %9s\n", "statement", "calls",
				"errors", "avg_ms", "max_ms");
		for (i = 0; i < N_STMTS; i++)
			if (stats[i].count > 0 || stats[i].errors > 0)
				fprintf(stderr, "%-40s %9ld %7ld %9.3f %9.3f\n", stmts[i].name,
						stats[i].count, stats[i].errors,
						stats[i].count ? stats[i].total_ms / stats[i].count : 0.0,
						stats[i].max_ms);
	}

	free(agents);
	free(api_keys);
	free(pool);
	return 0;
}
