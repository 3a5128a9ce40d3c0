/*
 * exactness: a libpq client that drives the paths of docs/latency.md with
 * sqlc-named statements (several names share one SQL text) and keeps the
 * ground truth on its side: how many executions of each name, how many
 * failed, the time the client waited for each, and the same counts per
 * database.  test/tap/010 compares it with coder_health's views and with
 * the server log's log_min_duration_statement durations.
 *
 *   exactness "conninfo of database coder" "conninfo of database coder_other"
 *
 * Output, one line per name, per database, then one for the whole client:
 *   name <name> <calls> <errors> <sum_us> <max_us> <min_us> <lower_us> <log>
 *        <preempted> <unread> <waited_us> <slept> <ran_us>
 *   unnamed <calls> <errors> <sql>   (unnamed statements that ran)
 *   absent <name>     (sent, but never ran, or failed before its executor
 *                      with no text to read its name from: no statement
 *                      row; the database and client count it)
 *   db <datname> <calls> <errors>
 *   client <calls> <errors>
 * lower_us: a time each execution took at least (a timeout), 0 for none.
 * log: which of the server log's durations of a name add up to the time
 * coder_health records for it (docs/latency.md): "statement" (simple
 * protocol), "bind+execute" (extended protocol, a SELECT: it starts at its
 * Bind), "execute" (extended protocol, anything else), "none" (the log has
 * no duration for it: it failed, or it was cut short); "+sync": ours also
 * has time the log has no line for (the commit at Sync in autocommit; in a
 * pipeline, the next statement's Parse), so it can only be at least that.
 * preempted: calls during which the backend, once running, lost the CPU
 * and waited on a run queue to get it back (the second and third fields of
 * /proc/<pid>/schedstat, read just before the client sent the statement
 * and just after it had the whole answer: it got a CPU more than once and
 * waited for it); waited_us: how long it waited in all in those calls;
 * slept: calls during which it slept other than for the client's message
 * (a lock, I/O: voluntary_ctxt_switches of /proc/<pid>/status, read while
 * it is idle before and after the call, grew by more than the one idle
 * sleep); unread: calls for which that could not be read (a backend that
 * is gone, no /proc); ran_us: how long the backend ran on a CPU during
 * the calls (the first field of schedstat), which holds the log's duration
 * unless time passed while it was not running without it losing its CPU
 * (taken by the hypervisor or by interrupts).  coder_health reads its end clock a few us before
 * the log's duration ends; a backend preempted or asleep just there shows
 * a log duration longer than ours by that time, so the TAP test compares
 * exactly only names none of whose calls was preempted or slept.  The
 * wait to be woken for the client's message is not counted: the statement
 * had not begun.  Nonvoluntary context switches are not used: most of
 * them are the client, woken by the answer, taking the CPU from a backend
 * that has already written its log line.
 *
 * EXACTNESS_ONLY=<bit mask> runs some groups of paths only (debugging);
 * EXACTNESS_DEBUG=1 prints each call's time, run queue wait and sleeps on
 * stderr.
 *
 * All connections come from one client address; every statement any of
 * them sends, the polls of the control connection included, is counted.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

#define MAX_NAMES 512

typedef struct Truth
{
	char		name[64];
	long		calls;
	long		errors;
	double		sum_us;
	double		max_us;
	double		min_us;
	double		lower_us;
	const char *log;
	long		preempted;
	long		unread;
	double		waited_us;
	long		slept;
	double		ran_us;
} Truth;

typedef struct Db
{
	char		name[64];
	long		calls;
	long		errors;
} Db;

static Truth truth[MAX_NAMES];
static int	ntruth = 0;
static Db	dbs[4];
static int	ndbs = 0;
/* unnamed statements that reached their executor, by text */
typedef struct Unnamed
{
	char		sql[256];
	long		calls;
	long		errors;
} Unnamed;

#define MAX_UNNAMED 128
static Unnamed unnamed[MAX_UNNAMED];
static int	nunnamed = 0;

static const char *absent[MAX_NAMES];
static int	nabsent = 0;
static long client_calls = 0;
static long client_errors = 0;
static PGconn *conn;			/* session A, database coder */
static PGconn *conn2;			/* session B, database coder */
static PGconn *ctl;				/* polls, cancels and terminates */

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
pause_us(long us)
{
	struct timespec t = {us / 1000000, (us % 1000000) * 1000};

	nanosleep(&t, NULL);
}

/*
 * How long the backend has waited on a run queue so far, in ns, how many
 * times it got a CPU (*arrivals) and how long it ran (*oncpu, ns): the
 * fields of
 * /proc/<pid>/schedstat (the same host: the test connects to 127.0.0.1),
 * both counted when it gets the CPU.  -1 when they cannot be read.
 */
static long long
run_delay_of(int pid, long long *arrivals, long long *oncpu)
{
	char		path[64];
	long long	delay = -1;
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(f, "%lld %lld %lld", oncpu, &delay, arrivals) != 3)
		delay = -1;
	fclose(f);
	return delay;
}

/*
 * How many times the backend has gone to sleep so far (its
 * voluntary_ctxt_switches), read once it is asleep (waiting for the
 * client's next message, after an answer): -1 when it cannot be read or
 * does not fall asleep within 10 s.
 */
static long
sleeps_of(int pid)
{
	char		path[64];
	char		line[512];
	double		deadline = now_us() + 10e6;
	long		n = -1;
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	for (;;)
	{
		char	   *state = NULL;

		if ((f = fopen(path, "r")) == NULL)
			return -1;
		if (fgets(line, sizeof(line), f))
			state = strrchr(line, ')');
		fclose(f);
		if (state == NULL)
			return -1;
		if (state[1] == ' ' && state[2] == 'S')
			break;
		if (now_us() > deadline)
			return -1;
		pause_us(20);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* what was read just before each connection's statement was sent */
#define MAX_BACKENDS 16
static struct
{
	int			pid;
	long		sleeps;
	long long	run_delay;
	long long	arrivals;
	long long	oncpu;
}			backends[MAX_BACKENDS];

/*
 * A statement is about to be sent on c: once its backend is asleep, read
 * how often it slept and how long it waited for a CPU, then the client's
 * clock (its start).
 */
static double
start_on(PGconn *c)
{
	int			pid = PQbackendPID(c);
	int			i;

	for (i = 0; i < MAX_BACKENDS - 1; i++)
		if (backends[i].pid == pid || backends[i].pid == 0)
			break;
	backends[i].pid = pid;
	backends[i].sleeps = sleeps_of(pid);
	backends[i].run_delay = run_delay_of(pid, &backends[i].arrivals,
										 &backends[i].oncpu);
	return now_us();
}

/*
 * c's answer is in: how long (us) its backend waited on a run queue since
 * start_on, 0 if it got the CPU only once (woken by the client's message:
 * that wait was before the statement began), and, once it is asleep
 * again, how often it slept other than for the client's message
 * (*slept).  Read the run queue now: a wait is counted when the backend
 * gets the CPU back, which it needed to send the answer.  -1 if that is
 * not known.
 */
static double
waited_on(PGconn *c, long *slept, double *ran_us)
{
	int			pid = PQbackendPID(c);
	long long	arrivals = -1;
	long long	oncpu = 0;
	long long	after = run_delay_of(pid, &arrivals, &oncpu);
	long		sleeps = sleeps_of(pid);

	*slept = -1;
	*ran_us = 0;
	for (int i = 0; i < MAX_BACKENDS; i++)
		if (backends[i].pid == pid)
		{
			if (backends[i].run_delay < 0 || after < 0 ||
				backends[i].sleeps < 0 || sleeps < 0)
				return -1;
			*slept = sleeps - backends[i].sleeps - 1;
			*ran_us = (oncpu - backends[i].oncpu) / 1e3;
			if (arrivals - backends[i].arrivals <= 1)
				return 0;
			return (after - backends[i].run_delay) / 1e3;
		}
	return -1;
}

static void
die_on(PGconn *c, const char *what)
{
	fprintf(stderr, "exactness: %s: %s\n", what, c ? PQerrorMessage(c) : "");
	exit(2);
}

static void
die(const char *what)
{
	die_on(conn, what);
}

static void
pause_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000 * 1000};

	nanosleep(&t, NULL);
}

static Truth *
find_name(const char *name)
{
	for (int i = 0; i < ntruth; i++)
		if (strcmp(truth[i].name, name) == 0)
			return &truth[i];
	if (ntruth == MAX_NAMES)
		die("too many names");
	snprintf(truth[ntruth].name, sizeof(truth[ntruth].name), "%s", name);
	truth[ntruth].min_us = 1e18;
	truth[ntruth].log = "statement";
	return &truth[ntruth++];
}

/*
 * Count one execution on connection c.  name NULL: not attributable to a
 * statement (unnamed, or an error before the executor): only the database
 * and the client count it.
 */
static double
note_on(PGconn *c, const char *name, const char *log, bool failed, double us)
{
	const char *dbname = PQdb(c);
	Db		   *d = NULL;
	Truth	   *t;
	long		slept;
	double		ran_us;
	double		waited = waited_on(c, &slept, &ran_us);

	client_calls++;
	if (failed)
		client_errors++;
	for (int i = 0; i < ndbs; i++)
		if (strcmp(dbs[i].name, dbname) == 0)
			d = &dbs[i];
	if (d == NULL)
	{
		d = &dbs[ndbs++];
		snprintf(d->name, sizeof(d->name), "%s", dbname);
	}
	d->calls++;
	if (failed)
		d->errors++;
	if (name == NULL)
		return waited;
	t = find_name(name);
	t->calls++;
	if (failed)
		t->errors++;
	/* a failure leaves no duration line in the log */
	if (failed || strcmp(log, "none") == 0)
		t->log = "none";
	else if (t->calls == 1)
		t->log = log;
	else if (strcmp(t->log, log) != 0)
		t->log = "none";
	if (waited > 0)
	{
		t->preempted++;
		t->waited_us += waited;
	}
	else if (waited < 0)
		t->unread++;
	if (slept > 0)
		t->slept++;
	t->ran_us += ran_us;
	if (getenv("EXACTNESS_DEBUG"))
		fprintf(stderr, "call %s %.1f %.1f %ld\n", name, us, waited, slept);
	t->sum_us += us;
	if (us > t->max_us)
		t->max_us = us;
	if (us < t->min_us)
		t->min_us = us;
	return waited;
}

static void
note_unnamed(const char *sql, bool failed)
{
	Unnamed    *u = NULL;

	for (int i = 0; i < nunnamed; i++)
		if (strcmp(unnamed[i].sql, sql) == 0)
			u = &unnamed[i];
	if (u == NULL)
	{
		if (nunnamed == MAX_UNNAMED)
			die("too many unnamed statements");
		u = &unnamed[nunnamed++];
		snprintf(u->sql, sizeof(u->sql), "%s", sql);
	}
	u->calls++;
	if (failed)
		u->errors++;
}

static void
note(const char *name, bool failed, double us)
{
	note_on(conn, name, "statement", failed, us);
}

static bool
ok(PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);

	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
		s == PGRES_SINGLE_TUPLE || s == PGRES_COPY_OUT || s == PGRES_COPY_IN;
}

/* The SQL of a named statement: sqlc's marker line, then the text. */
static const char *
named(char *buf, size_t len, const char *name, const char *sql)
{
	snprintf(buf, len, "-- name: %s :one\n%s", name, sql);
	return buf;
}

/*
 * Simple protocol on c; expect_fail tells what the ground truth is;
 * attributed: whether a failure is the statement's (in its executor, or
 * before it with a sqlc name in its text) or not (unnamed before its
 * executor, or track_activities off: then only the database and the client
 * count it).
 */
static double
simple_on(PGconn *c, const char *name, const char *sql, bool expect_fail,
		  bool attributed)
{
	char		buf[1024];
	double		t0 = start_on(c);
	PGresult   *r = PQexec(c, name ? named(buf, sizeof(buf), name, sql) : sql);
	double		us = now_us() - t0;

	if (ok(r) == expect_fail)
	{
		fprintf(stderr, "exactness: %s: unexpected %s %s\n", sql,
				PQresStatus(PQresultStatus(r)), PQerrorMessage(c));
		exit(2);
	}
	PQclear(r);
	note_on(c, attributed ? name : NULL, "statement", expect_fail, us);
	if (name == NULL && attributed)
		note_unnamed(sql, expect_fail);
	if (name && !attributed)
		absent[nabsent++] = name;
	return us;
}

static void
simple(const char *name, const char *sql, bool expect_fail)
{
	(void) simple_on(conn, name, sql, expect_fail, true);
}

/* An unnamed statement on c that must return one row: its value. */
static char *
value_on(PGconn *c, const char *sql)
{
	static char v[256];
	double		t0 = start_on(c);
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		die_on(c, sql);
	snprintf(v, sizeof(v), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	note_on(c, NULL, "statement", false, now_us() - t0);
	note_unnamed(sql, false);
	return v;
}

/* Poll a state with the control connection: true within 60 s or die. */
static void
wait_for(const char *sql)
{
	double		deadline = now_us() + 60e6;

	while (strcmp(value_on(ctl, sql), "t") != 0)
	{
		if (now_us() > deadline)
			die_on(ctl, sql);
		pause_ms(5);
	}
}

/* Extended protocol, unnamed statement: Parse/Bind/Describe/Execute/Sync. */
static void
params_on(PGconn *c, const char *name, const char *log, const char *sql,
		  const char *param, bool expect_fail, bool attributed)
{
	char		buf[1024];
	double		t0 = start_on(c);
	PGresult   *r = PQexecParams(c, named(buf, sizeof(buf), name, sql),
								 param ? 1 : 0, NULL, param ? &param : NULL,
								 NULL, NULL, 0);
	double		us = now_us() - t0;

	if (ok(r) == expect_fail)
		die_on(c, sql);
	PQclear(r);
	note_on(c, attributed ? name : NULL, log, expect_fail, us);
	if (!attributed)
		absent[nabsent++] = name;
}

static void
params(const char *name, const char *sql, const char *param, bool expect_fail)
{
	params_on(conn, name, "bind+execute+sync", sql, param, expect_fail, true);
}

/* lib/pq: Parse+Sync of the unnamed statement, then Bind/Execute/Sync. */
static void
libpq_style(const char *name, const char *sql, const char *param)
{
	char		buf[1024];
	PGresult   *r = PQprepare(conn, "", named(buf, sizeof(buf), name, sql), 1, NULL);
	double		t0;
	double		us;

	if (!ok(r))
		die("prepare unnamed");
	PQclear(r);
	t0 = start_on(conn);
	r = PQexecPrepared(conn, "", 1, &param, NULL, NULL, 0);
	us = now_us() - t0;
	if (!ok(r))
		die("exec unnamed");
	PQclear(r);
	note_on(conn, name, "bind+execute+sync", false, us);
}

/* Send a statement without waiting (simple protocol); returns its start. */
static double
send_on(PGconn *c, const char *name, const char *sql)
{
	static char buf[1024];
	double		t0 = start_on(c);

	if (!PQsendQuery(c, named(buf, sizeof(buf), name, sql)))
		die_on(c, sql);
	return t0;
}

/* The outcome of a statement sent with send_on: true when it failed. */
static bool
collect_on(PGconn *c, const char *name, double t0)
{
	PGresult   *r;
	bool		failed = false;

	while ((r = PQgetResult(c)) != NULL)
	{
		if (!ok(r))
			failed = true;
		PQclear(r);
		if (PQstatus(c) == CONNECTION_BAD)
			break;
	}
	note_on(c, name, "statement", failed, now_us() - t0);
	return failed;
}

static PGconn *
connect_to(const char *conninfo)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
		die_on(c, "connect");
	return c;
}

/* The pid of c's backend as text, for the control connection's SQL. */
static const char *
pid_of(PGconn *c)
{
	static char pid[32];

	snprintf(pid, sizeof(pid), "%d", PQbackendPID(c));
	return pid;
}

static const char *
sqlf(const char *fmt, const char *pid)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), fmt, pid);
	return buf;
}

/* ------------------------------------------------------------------------
 * The paths
 * ------------------------------------------------------------------------
 */

static void
paths_protocols(void)
{
	char		buf[1024];
	PGresult   *r;

	/* the same text under several names (Coder's site_configs readers) */
	for (int i = 0; i < 5; i++)
		simple("GetLogoURL", "SELECT value FROM site_configs WHERE key = 'logo_url'", false);
	for (int i = 0; i < 3; i++)
		simple("GetApplicationName", "SELECT value FROM site_configs WHERE key = 'logo_url'", false);
	for (int i = 0; i < 4; i++)
		params("GetDeploymentID", "SELECT value FROM site_configs WHERE key = $1", "deployment_id", false);
	for (int i = 0; i < 2; i++)
		params("GetAnnouncementBanners", "SELECT value FROM site_configs WHERE key = $1", "banners", false);

	/* lib/pq's unnamed Parse+Sync, Bind/Execute/Sync; identical texts */
	for (int i = 0; i < 3; i++)
		libpq_style("GetOAuth2ProviderAppByID", "SELECT id FROM oauth2_apps WHERE id = $1", "1");
	for (int i = 0; i < 2; i++)
		libpq_style("GetOAuth2ProviderAppByClientID", "SELECT id FROM oauth2_apps WHERE id = $1", "2");

	/* pgx: named prepared statements */
	r = PQprepare(conn, "upsert", named(buf, sizeof(buf), "UpsertLastUpdateCheck",
										"INSERT INTO site_configs VALUES ('last_update_check', $1) "
										"ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
				  1, NULL);
	if (!ok(r))
		die("prepare upsert");
	PQclear(r);
	for (int i = 0; i < 4; i++)
	{
		const char *v = "x";
		double		t0 = start_on(conn);

		r = PQexecPrepared(conn, "upsert", 1, &v, NULL, NULL, 0);
		note_on(conn, "UpsertLastUpdateCheck", "execute+sync", !ok(r), now_us() - t0);
		PQclear(r);
	}
	/* the same in a block: no commit at Sync */
	r = PQprepare(conn, "upsert_in_block",
				  named(buf, sizeof(buf), "UpsertInBlock",
						"INSERT INTO site_configs VALUES ('in_block', $1) "
						"ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
				  1, NULL);
	if (!ok(r))
		die("prepare upsert_in_block");
	PQclear(r);
	simple(NULL, "BEGIN", false);
	for (int i = 0; i < 3; i++)
	{
		const char *v = "y";
		double		t0 = start_on(conn);

		r = PQexecPrepared(conn, "upsert_in_block", 1, &v, NULL, NULL, 0);
		note_on(conn, "UpsertInBlock", "execute", !ok(r), now_us() - t0);
		PQclear(r);
	}
	simple(NULL, "COMMIT", false);
	/* failures in the executor, autocommit and extended */
	simple("FailDivide", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = 'zero'", true);
	params("FailDivide", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = $1", "zero", true);

	/* single-row mode */
	for (int i = 0; i < 2; i++)
	{
		double		t0 = start_on(conn);
		bool		failed = false;

		if (!PQsendQueryParams(conn, named(buf, sizeof(buf), "ListRows",
										   "SELECT g FROM generate_series(1, 200) g"),
							   0, NULL, NULL, NULL, NULL, 0) ||
			!PQsetSingleRowMode(conn))
			die("single row");
		while ((r = PQgetResult(conn)) != NULL)
		{
			if (!ok(r))
				failed = true;
			PQclear(r);
		}
		note_on(conn, "ListRows", "bind+execute+sync", failed, now_us() - t0);
	}
}

static void
paths_blocks(void)
{
	/* a block that fails, then ROLLBACK, then the client idles */
	simple(NULL, "BEGIN", false);
	simple("InsertAuditLog", "INSERT INTO audit_logs VALUES (1)", false);
	simple("FailInBlock", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = 'zero'", true);
	simple("RollbackFailed", "ROLLBACK", false);
	pause_ms(200);				/* the client idles: nobody's time */
	/* a failed block ended by COMMIT (the server answers ROLLBACK) */
	simple(NULL, "BEGIN", false);
	simple("FailInBlock", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = 'zero'", true);
	simple("CommitFailed", "COMMIT", false);
	pause_ms(200);
	/* a block that commits */
	simple(NULL, "BEGIN", false);
	simple("InsertAuditLog", "INSERT INTO audit_logs VALUES (2)", false);
	simple("CommitBlock", "COMMIT", false);

	/*
	 * extended protocol in a block: the SELECT's portal stays open until
	 * the next Bind or the end of the block; a ROLLBACK is no failure of it.
	 * Its time runs from its Bind, so the Describe libpq sends between Bind
	 * and Execute is in it, which the log has no line for.
	 */
	simple(NULL, "BEGIN", false);
	params_on(conn, "GetInBlock", "bind+execute+sync", "SELECT value FROM site_configs WHERE key = $1", "logo_url", false, true);
	simple("RollbackAfterExtended", "ROLLBACK", false);
	simple(NULL, "BEGIN", false);
	params_on(conn, "GetInBlock", "bind+execute+sync", "SELECT value FROM site_configs WHERE key = $1", "logo_url", false, true);
	simple("CommitAfterExtended", "COMMIT", false);

	/* COMMIT AND CHAIN, ROLLBACK AND CHAIN */
	simple(NULL, "BEGIN", false);
	simple("InsertChained", "INSERT INTO audit_logs VALUES (3)", false);
	simple("CommitAndChain", "COMMIT AND CHAIN", false);
	simple("InsertChained", "INSERT INTO audit_logs VALUES (4)", false);
	simple("RollbackAndChain", "ROLLBACK AND CHAIN", false);
	simple("InsertChained", "INSERT INTO audit_logs VALUES (5)", false);
	simple("CommitBlock", "COMMIT", false);

	/* SAVEPOINT, a failure, ROLLBACK TO, RELEASE */
	simple(NULL, "BEGIN", false);
	simple("Savepoint", "SAVEPOINT s1", false);
	simple("InsertInSavepoint", "INSERT INTO audit_logs VALUES (6)", false);
	simple("FailInSavepoint", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = 'zero'", true);
	simple("RollbackToSavepoint", "ROLLBACK TO SAVEPOINT s1", false);
	simple("InsertInSavepoint", "INSERT INTO audit_logs VALUES (7)", false);
	simple("RollbackToSavepoint", "ROLLBACK TO SAVEPOINT s1", false);
	simple("ReleaseSavepoint", "RELEASE SAVEPOINT s1", false);
	simple("CommitBlock", "COMMIT", false);

	/* a COMMIT that fails: a deferred foreign key */
	simple(NULL, "BEGIN", false);
	simple("InsertOrphan", "INSERT INTO children VALUES (42)", false);
	simple("CommitDeferredCheck", "COMMIT", true);

	/* a procedure that commits and rolls back inside has not failed */
	for (int i = 0; i < 2; i++)
		simple("CallCommitRollback", "CALL commit_rollback()", false);
	/* PL/pgSQL exception blocks that catch an error */
	for (int i = 0; i < 3; i++)
		simple("CatchDivision", "SELECT catch_division()", false);
	simple("DoCatch", "DO $$BEGIN PERFORM 1 / 0; EXCEPTION WHEN division_by_zero THEN NULL; END$$", false);

	/* cursors in a block */
	simple(NULL, "BEGIN", false);
	simple("DeclareCursor", "DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 100) g", false);
	for (int i = 0; i < 3; i++)
		simple("FetchCursor", "FETCH 10 FROM c", false);
	simple("MoveCursor", "MOVE 10 IN c", false);
	simple("CloseCursor", "CLOSE c", false);
	simple("CommitBlock", "COMMIT", false);
}

static void
paths_copy(void)
{
	char		buf[1024];
	PGresult   *r;

	/* COPY TO STDOUT */
	{
		double		t0 = start_on(conn);
		char	   *line;

		r = PQexec(conn, named(buf, sizeof(buf), "CopyOut",
							   "COPY (SELECT g FROM generate_series(1, 50) g) TO STDOUT"));
		if (PQresultStatus(r) != PGRES_COPY_OUT)
			die("copy");
		PQclear(r);
		while (PQgetCopyData(conn, &line, 0) > 0)
			PQfreemem(line);
		while ((r = PQgetResult(conn)) != NULL)
			PQclear(r);
		note("CopyOut", false, now_us() - t0);
	}

	/* COPY FROM STDIN, then one whose data is bad */
	for (int bad = 0; bad < 2; bad++)
	{
		const char *name = bad ? "CopyInBad" : "CopyIn";
		double		t0 = start_on(conn);
		bool		failed = false;

		r = PQexec(conn, named(buf, sizeof(buf), name, "COPY copy_target FROM STDIN"));
		if (PQresultStatus(r) != PGRES_COPY_IN)
			die("copy in");
		PQclear(r);
		for (int i = 0; i < 100; i++)
		{
			int			n = snprintf(buf, sizeof(buf), "%d\n", i);

			if (bad && i == 50)
				n = snprintf(buf, sizeof(buf), "x%d\n", i);
			if (PQputCopyData(conn, buf, n) != 1)
				die("copy data");
		}
		if (PQputCopyEnd(conn, NULL) != 1)
			die("copy end");
		while ((r = PQgetResult(conn)) != NULL)
		{
			if (!ok(r))
				failed = true;
			PQclear(r);
		}
		if (failed != (bad == 1))
			die("copy in outcome");
		note(name, failed, now_us() - t0);
	}
}

#ifdef LIBPQ_HAS_PIPELINING
/* Send one statement of a pipeline (Parse/Bind/Describe/Execute). */
static void
pipe_send(const char *name, const char *sql, const char *param)
{
	char		buf[1024];

	if (!PQsendQueryParams(conn, named(buf, sizeof(buf), name, sql),
						   param ? 1 : 0, NULL, param ? &param : NULL,
						   NULL, NULL, 0))
		die("pipeline send");
}

/*
 * The results of n statements then the Sync: each statement's status
 * (PGRES_FATAL_ERROR, PGRES_PIPELINE_ABORTED: not run, ...).
 */
static void
pipe_collect(int n, ExecStatusType *status)
{
	PGresult   *r;

	for (int i = 0; i < n; i++)
	{
		status[i] = PGRES_EMPTY_QUERY;
		while ((r = PQgetResult(conn)) != NULL)
		{
			if (status[i] == PGRES_EMPTY_QUERY || !ok(r))
				status[i] = PQresultStatus(r);
			PQclear(r);
		}
	}
	r = PQgetResult(conn);
	if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		die("pipeline sync result");
	PQclear(r);
}

static void
paths_pipeline(void)
{
	ExecStatusType st[4];
	double		t0;
	double		us;

	if (!PQenterPipelineMode(conn))
		die("pipeline");

	/* three Executes, one Sync; each took at most the whole */
	t0 = start_on(conn);
	for (int i = 0; i < 3; i++)
		pipe_send("PipelinedGet", "SELECT value FROM site_configs WHERE key = $1", "logo_url");
	if (!PQpipelineSync(conn))
		die("pipeline sync");
	pipe_collect(3, st);
	us = now_us() - t0;
	for (int i = 0; i < 3; i++)
	{
		if (st[i] != PGRES_TUPLES_OK)
			die("pipeline result");
		note_on(conn, "PipelinedGet", "bind+execute+sync", false, us);
	}

	/*
	 * Sync after an error: the first succeeds, the second fails in its
	 * executor, the third is never run; then the next pipeline works.
	 */
	t0 = start_on(conn);
	pipe_send("PipelineBefore", "SELECT value FROM site_configs WHERE key = $1", "logo_url");
	pipe_send("PipelineFails", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = $1", "zero");
	pipe_send("PipelineSkipped", "SELECT value FROM site_configs WHERE key = $1", "logo_url");
	if (!PQpipelineSync(conn))
		die("pipeline sync");
	pipe_collect(3, st);
	us = now_us() - t0;
	if (st[0] != PGRES_TUPLES_OK || st[1] != PGRES_FATAL_ERROR ||
		st[2] != PGRES_PIPELINE_ABORTED)
		die("pipeline with an error");
	/* it ended where the failing statement's Bind began: the failing
	 * statement's Parse is in it, which the log gives its own line */
	note_on(conn, "PipelineBefore", "bind+execute+sync", false, us);
	absent[nabsent++] = "PipelineSkipped";
	note_on(conn, "PipelineFails", "none", true, us);

	/* an error before the executor (parse) in a pipeline */
	t0 = start_on(conn);
	pipe_send("PipelineBeforeParseError", "SELECT value FROM site_configs WHERE key = $1", "logo_url");
	pipe_send("PipelineParseError", "SELEKT $1", "x");
	if (!PQpipelineSync(conn))
		die("pipeline sync");
	pipe_collect(2, st);
	us = now_us() - t0;
	if (st[0] != PGRES_TUPLES_OK || st[1] != PGRES_FATAL_ERROR)
		die("pipeline with a parse error");
	note_on(conn, "PipelineBeforeParseError", "none", false, us);
	/* its Parse failed: an error of its name (docs/latency.md) */
	note_on(conn, "PipelineParseError", "none", true, us);

	t0 = start_on(conn);
	pipe_send("PipelineAfterSync", "SELECT value FROM site_configs WHERE key = $1", "logo_url");
	if (!PQpipelineSync(conn))
		die("pipeline sync");
	pipe_collect(1, st);
	if (st[0] != PGRES_TUPLES_OK)
		die("pipeline after sync");
	note_on(conn, "PipelineAfterSync", "bind+execute+sync", false, now_us() - t0);

	if (!PQexitPipelineMode(conn))
		die("pipeline end");
}
#endif

/*
 * Errors before the executor, whatever the log and the client are sent: a
 * named statement's are its name's errors (its text is read from
 * pg_stat_activity's), an unnamed one's the database's and client's only,
 * and so is a named one's with track_activities off (no text to read).
 */
static void
paths_before_executor(void)
{
	char		buf[1024];
	PGresult   *r;

	simple(NULL, "SET log_min_messages = panic", false);
	simple(NULL, "SET client_min_messages = error", false);
	/* a named statement whose Bind sends the wrong number of parameters */
	r = PQprepare(conn, "bad_bind_count",
				  named(buf, sizeof(buf), "BadBindCount",
						"SELECT value FROM site_configs WHERE key = $1"),
				  1, NULL);
	if (!ok(r))
		die("prepare bad_bind_count");
	PQclear(r);
	for (int i = 0; i < 2; i++)
	{
		double		t0;

		(void) simple_on(conn, NULL, "SELEKT 1", true, false);
		(void) simple_on(conn, "ParseErrorSimple", "SELEKT 1", true, true);
		(void) simple_on(conn, "SelectMissingTable", "SELECT * FROM no_such_table", true, true);
		params_on(conn, "ParseErrorExtended", "none", "SELEKT $1", "1", true, true);
		params_on(conn, "MissingTableExtended", "none", "SELECT * FROM no_such_table WHERE $1::int = 1", "1", true, true);
		/* a parameter that does not convert fails at Bind */
		params_on(conn, "BadBind", "none", "SELECT value FROM site_configs WHERE key = $1::int::text", "abc", true, true);
		/* Bind with no parameter for a statement that takes one */
		t0 = start_on(conn);
		r = PQexecPrepared(conn, "bad_bind_count", 0, NULL, NULL, NULL, 0);
		if (ok(r))
			die("bind with too few parameters succeeded");
		PQclear(r);
		note_on(conn, "BadBindCount", "none", true, now_us() - t0);
		/* inside a block, then ROLLBACK TO */
		simple(NULL, "BEGIN", false);
		simple(NULL, "SAVEPOINT s", false);
		(void) simple_on(conn, "SelectMissingTable", "SELECT * FROM no_such_table", true, true);
		simple(NULL, "ROLLBACK TO SAVEPOINT s", false);
		simple(NULL, "COMMIT", false);
	}
	/* no text in pg_stat_activity: no name to read */
	simple(NULL, "SET track_activities = off", false);
	(void) simple_on(conn, "ParseErrorNoActivity", "SELEKT 1", true, false);
	params_on(conn, "MissingTableNoActivity", "none", "SELECT * FROM no_such_table WHERE $1::int = 1", "1", true, false);
	simple(NULL, "RESET track_activities", false);
	simple(NULL, "RESET client_min_messages", false);
	simple(NULL, "RESET log_min_messages", false);
}

/* statement_timeout, lock_timeout, deadlock, serialization failures. */
static void
paths_timeouts_and_locks(void)
{
	char		buf[1024];
	PGresult   *r;
	double		t0;
	double		us;
	bool		failed_a;
	bool		failed_b;

	/* statement_timeout: at least the timeout, at most what we waited */
	simple(NULL, "SET statement_timeout = '50ms'", false);
	us = simple_on(conn, "SleepTimeout", "SELECT pg_sleep(10)", true, true);
	find_name("SleepTimeout")->lower_us = 50000;
	/* extended: a prepared statement, its timer starts at its Bind */
	r = PQprepare(conn, "sleep", named(buf, sizeof(buf), "SleepTimeoutPrepared",
									   "SELECT pg_sleep($1)"), 1, NULL);
	if (!ok(r))
		die("prepare sleep");
	PQclear(r);
	{
		const char *v = "10";

		t0 = start_on(conn);
		r = PQexecPrepared(conn, "sleep", 1, &v, NULL, NULL, 0);
		if (ok(r))
			die("prepared sleep did not time out");
		PQclear(r);
		note_on(conn, "SleepTimeoutPrepared", "none", true, now_us() - t0);
		find_name("SleepTimeoutPrepared")->lower_us = 50000;
	}
	simple(NULL, "RESET statement_timeout", false);
	(void) us;

	/* lock_timeout on a row lock: in the executor, the statement's error */
	simple_on(conn2, NULL, "BEGIN", false, true);
	simple_on(conn2, "LockRow", "UPDATE locks SET v = v WHERE id = 1", false, true);
	simple(NULL, "SET lock_timeout = '50ms'", false);
	simple("UpdateLockedRow", "UPDATE locks SET v = v + 1 WHERE id = 1", true);
	find_name("UpdateLockedRow")->lower_us = 50000;
	params_on(conn, "UpdateLockedRowExtended", "none", "UPDATE locks SET v = v + 1 WHERE id = $1", "1", true, true);
	find_name("UpdateLockedRowExtended")->lower_us = 50000;
	simple_on(conn2, NULL, "ROLLBACK", false, true);
	/* lock_timeout on a table, taken while the statement is parsed: before
	 * the executor, an error of its name, at least the timeout */
	simple_on(conn2, NULL, "BEGIN", false, true);
	simple_on(conn2, NULL, "LOCK TABLE locks IN ACCESS EXCLUSIVE MODE", false, true);
	(void) simple_on(conn, "SelectLockedTable", "SELECT v FROM locks", true, true);
	find_name("SelectLockedTable")->lower_us = 50000;
	simple_on(conn2, NULL, "ROLLBACK", false, true);
	simple(NULL, "RESET lock_timeout", false);

	/* deadlock: A waits for B's row, then B for A's; one of them fails */
	simple(NULL, "BEGIN", false);
	simple("LockRow", "UPDATE locks SET v = v WHERE id = 1", false);
	simple_on(conn2, NULL, "BEGIN", false, true);
	simple_on(conn2, "LockRow", "UPDATE locks SET v = v WHERE id = 2", false, true);
	t0 = send_on(conn, "DeadlockA", "UPDATE locks SET v = v WHERE id = 2");
	wait_for(sqlf("SELECT count(*) > 0 FROM pg_catalog.pg_locks "
				  "WHERE pid = %s AND NOT granted", pid_of(conn)));
	{
		double		t1 = send_on(conn2, "DeadlockB", "UPDATE locks SET v = v WHERE id = 1");

		failed_a = collect_on(conn, "DeadlockA", t0);
		/* A's result comes after B's: B failed and released A, or A
		 * failed; either way B's answer arrives now */
		failed_b = collect_on(conn2, "DeadlockB", t1);
	}
	if (failed_a == failed_b)
		die("deadlock: exactly one must fail");
	simple("RollbackDeadlock", "ROLLBACK", false);
	simple_on(conn2, "RollbackDeadlock", "ROLLBACK", false, true);

	/* serialization failure of a repeatable read UPDATE */
	simple(NULL, "BEGIN ISOLATION LEVEL REPEATABLE READ", false);
	simple("ReadSnapshot", "SELECT v FROM locks WHERE id = 1", false);
	simple_on(conn2, "UpdateConcurrently", "UPDATE locks SET v = v + 1 WHERE id = 1", false, true);
	simple("UpdateSerialization", "UPDATE locks SET v = v + 1 WHERE id = 1", true);
	simple("RollbackSerialization", "ROLLBACK", false);
}

/* Cancelled, terminated, abandoned by the client. */
static void
paths_cut_short(const char *conninfo)
{
	PGconn	   *t;
	double		t0;
	double		t1;
	const char *pid;

	/* pg_cancel_backend of a running statement */
	t0 = send_on(conn, "SleepCancelled", "SELECT pg_sleep(60)");
	wait_for(sqlf("SELECT wait_event IS NOT DISTINCT FROM 'PgSleep' "
				  "FROM pg_catalog.pg_stat_activity WHERE pid = %s", pid_of(conn)));
	value_on(ctl, sqlf("SELECT pg_catalog.pg_cancel_backend(%s)", pid_of(conn)));
	if (!collect_on(conn, "SleepCancelled", t0))
		die("cancelled statement did not fail");

	/* pg_terminate_backend of a running statement */
	t = connect_to(conninfo);
	pid = pid_of(t);
	t0 = send_on(t, "SleepTerminated", "SELECT pg_sleep(60)");
	wait_for(sqlf("SELECT wait_event IS NOT DISTINCT FROM 'PgSleep' "
				  "FROM pg_catalog.pg_stat_activity WHERE pid = %s", pid));
	value_on(ctl, sqlf("SELECT pg_catalog.pg_terminate_backend(%s)", pid));
	if (!collect_on(t, "SleepTerminated", t0))
		die("terminated statement did not fail");
	PQfinish(t);

	/* pg_terminate_backend of a session idle in a transaction */
	t = connect_to(conninfo);
	pid = pid_of(t);
	simple_on(t, NULL, "BEGIN", false, true);
	simple_on(t, "InsertThenTerminated", "INSERT INTO audit_logs VALUES (10)", false, true);
	value_on(ctl, sqlf("SELECT pg_catalog.pg_terminate_backend(%s)", pid));
	wait_for(sqlf("SELECT count(*) = 0 FROM pg_catalog.pg_stat_activity WHERE pid = %s", pid));
	PQfinish(t);

	/* a client gone mid-transaction, between statements */
	t = connect_to(conninfo);
	pid = pid_of(t);
	simple_on(t, NULL, "BEGIN", false, true);
	simple_on(t, "InsertThenGone", "INSERT INTO audit_logs VALUES (11)", false, true);
	PQfinish(t);
	wait_for(sqlf("SELECT count(*) = 0 FROM pg_catalog.pg_stat_activity WHERE pid = %s", pid));

	/*
	 * A client gone mid-statement: it reads a few rows of a long result and
	 * goes away; the backend fails when it next sends.  The client's time
	 * for it runs until the backend is seen gone.
	 */
	t = connect_to(conninfo);
	pid = pid_of(t);
	{
		char		buf[1024];
		PGresult   *r;

		t0 = now_us();
		if (!PQsendQuery(t, named(buf, sizeof(buf), "StreamAbandoned",
								  "SELECT repeat('x', 1000) FROM generate_series(1, 100000000)")) ||
			!PQsetSingleRowMode(t))
			die_on(t, "stream");
		r = PQgetResult(t);
		if (r == NULL || PQresultStatus(r) != PGRES_SINGLE_TUPLE)
			die_on(t, "stream row");
		PQclear(r);
		PQfinish(t);
		wait_for(sqlf("SELECT count(*) = 0 FROM pg_catalog.pg_stat_activity WHERE pid = %s", pid));
		t1 = now_us();
		/* counted on conn's database: the same as t's */
		note_on(conn, "StreamAbandoned", "none", true, t1 - t0);
	}
}

/* Another database: its own totals. */
static void
paths_other_database(const char *conninfo)
{
	PGconn	   *o = connect_to(conninfo);

	for (int i = 0; i < 3; i++)
		simple_on(o, "OtherDatabaseGet", "SELECT 1", false, true);
	(void) simple_on(o, NULL, "SELEKT 1", true, false);
	simple_on(o, "OtherDatabaseFail", "SELECT 1 / (random() * 0)::int", true, true);
	PQfinish(o);
}

/*
 * Names with one call each, until 10 of each protocol ran without their
 * backend waiting for a CPU (at most 200 tries each): what the log is
 * compared with exactly, a name at a time, however busy the machine.
 */
static void
paths_compared(void)
{
	char		name[64];
	char		buf[1024];
	int			clean = 0;
	PGresult   *r;

	for (int i = 0; i < 200 && clean < 10; i++)
	{
		snprintf(name, sizeof(name), "CompareSimple%d", i);
		{
			double		t0 = start_on(conn);

			r = PQexec(conn, named(buf, sizeof(buf), name,
								   "SELECT value FROM site_configs WHERE key = 'logo_url'"));
			if (!ok(r))
				die(name);
			PQclear(r);
			if (note_on(conn, name, "statement", false, now_us() - t0) == 0 &&
				find_name(name)->slept == 0)
				clean++;
		}
	}
	/* the extended protocol: a named prepared write in a block (execute) */
	clean = 0;
	simple(NULL, "BEGIN", false);
	for (int i = 0; i < 200 && clean < 10; i++)
	{
		const char *v = "c";
		double		t0;

		snprintf(name, sizeof(name), "CompareExtended%d", i);
		r = PQprepare(conn, name,
					  named(buf, sizeof(buf), name,
							"INSERT INTO site_configs VALUES ('compared', $1) "
							"ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
					  1, NULL);
		if (!ok(r))
			die(name);
		PQclear(r);
		t0 = start_on(conn);
		r = PQexecPrepared(conn, name, 1, &v, NULL, NULL, 0);
		if (!ok(r))
			die(name);
		PQclear(r);
		if (note_on(conn, name, "execute", false, now_us() - t0) == 0 &&
			find_name(name)->slept == 0)
			clean++;
	}
	simple(NULL, "COMMIT", false);
}

int
main(int argc, char **argv)
{
	if (argc != 3)
	{
		fprintf(stderr, "usage: exactness conninfo other-db-conninfo\n");
		return 2;
	}
	conn = connect_to(argv[1]);
	conn2 = connect_to(argv[1]);
	ctl = connect_to(argv[1]);

	{
		const char *o = getenv("EXACTNESS_ONLY");
		long		m = o ? strtol(o, NULL, 0) : 0x1ff;

		if (m & 1)
			paths_protocols();
		if (m & 2)
			paths_blocks();
		if (m & 4)
			paths_copy();
#ifdef LIBPQ_HAS_PIPELINING
		if (m & 8)
			paths_pipeline();
#endif
		if (m & 16)
			paths_before_executor();
		if (m & 32)
			paths_timeouts_and_locks();
		if (m & 64)
			paths_cut_short(argv[1]);
		if (m & 128)
			paths_other_database(argv[2]);
		if (m & 256)
			paths_compared();
	}

	for (int i = 0; i < ntruth; i++)
		printf("name %s %ld %ld %.1f %.1f %.1f %.1f %s %ld %ld %.1f %ld %.1f\n",
			   truth[i].name, truth[i].calls, truth[i].errors,
			   truth[i].sum_us, truth[i].max_us, truth[i].min_us,
			   truth[i].lower_us, truth[i].log, truth[i].preempted,
			   truth[i].unread, truth[i].waited_us, truth[i].slept,
			   truth[i].ran_us);
	for (int i = 0; i < nunnamed; i++)
		printf("unnamed %ld %ld %s\n", unnamed[i].calls, unnamed[i].errors,
			   unnamed[i].sql);
	for (int i = 0; i < nabsent; i++)
		printf("absent %s\n", absent[i]);
	for (int i = 0; i < ndbs; i++)
		printf("db %s %ld %ld\n", dbs[i].name, dbs[i].calls, dbs[i].errors);
	printf("client %ld %ld\n", client_calls, client_errors);
	PQfinish(conn);
	PQfinish(conn2);
	PQfinish(ctl);
	return 0;
}
