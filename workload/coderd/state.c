/*-------------------------------------------------------------------------
 *
 * state.c
 *		What more than one file of the simulator reads or writes: the
 *		options, the stop request, this server's identity and measured
 *		database latency, the pacing deadlines, and the counters the summary
 *		line reports (with count_error(), the one way to book an error).
 *
 * Apart, and at the bottom, so that every other file can read the options
 * and count into the totals without reaching up to the file that set them:
 * main.c parses the options into these variables, heartbeat.c stores the
 * replica id, statements.c the latency its ping measured.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>

#include "coderd_sim.h"

/* options, set by main.c */
const char *opt_conninfo = "";
const char *opt_name = "coderd-sim";
const char *opt_relay = "http://127.0.0.1:8080";
int			opt_pool = 10;
double		opt_rate = 200.0;
double		opt_notify_rate = 20.0;
bool		opt_listen = true;
bool		opt_quiet = false;
bool		opt_prepared = true;
bool		opt_param_channel = false;

volatile sig_atomic_t stop_requested = 0;

/* identity */
char		replica_id[UUID_LEN];
char		worker_id[UUID_LEN];
char		first_connected_ts[TS_LEN];
int			db_latency_us;

/* pacing */
double		next_stmt_at;
double		next_notify_at;
double		next_sync_at;
bool		sync_pending;

/* counters */
long		n_statements;
long		n_errors;
StmtStats	stats[N_STMTS];
long		n_notify_sent;
long		n_notify_received;
long		n_notify_timed;
double		notify_lat_sum_ms;
double		notify_lat_max_ms;

static int	n_printed_errors;

/* Count an error on statement id; print the first few. */
void
count_error(StmtId id, const char *msg)
{
	n_errors++;
	stats[id].errors++;
	if (n_printed_errors < MAX_PRINTED_ERRORS && !stop_requested)
	{
		n_printed_errors++;
		fprintf(stderr, "%s: %s: %s", opt_name, stmts[id].name,
				msg && msg[0] ? msg : "(no message)\n");
		if (n_printed_errors == MAX_PRINTED_ERRORS)
			fprintf(stderr, "%s: further errors are only counted\n", opt_name);
	}
}
