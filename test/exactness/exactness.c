/*
 * exactness: a libpq client that drives the paths of docs/latency.md with
 * sqlc-named statements (several names share one SQL text) and keeps the
 * ground truth on its side: how many executions of each name, how many
 * failed, and the time the client waited for each.  test/tap/010 compares
 * it with coder_health's views.
 *
 *   exactness "conninfo"
 *
 * Output, one line per name, then one for the whole connection:
 *   name <name> <calls> <errors> <sum_us> <max_us>
 *   client <calls> <errors>
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

#define MAX_NAMES 32

typedef struct Truth
{
	char		name[64];
	long		calls;
	long		errors;
	double		sum_us;
	double		max_us;
} Truth;

static Truth truth[MAX_NAMES];
static int	ntruth = 0;
static long client_calls = 0;
static long client_errors = 0;
static PGconn *conn;

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
die(const char *what)
{
	fprintf(stderr, "exactness: %s: %s\n", what, PQerrorMessage(conn));
	exit(2);
}

/* Count one execution of a named statement (name NULL: unnamed). */
static void
note(const char *name, bool failed, double us)
{
	Truth	   *t = NULL;

	client_calls++;
	if (failed)
		client_errors++;
	if (name == NULL)
		return;
	for (int i = 0; i < ntruth; i++)
		if (strcmp(truth[i].name, name) == 0)
			t = &truth[i];
	if (t == NULL)
	{
		if (ntruth == MAX_NAMES)
			die("too many names");
		t = &truth[ntruth++];
		snprintf(t->name, sizeof(t->name), "%s", name);
	}
	t->calls++;
	if (failed)
		t->errors++;
	t->sum_us += us;
	if (us > t->max_us)
		t->max_us = us;
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

/* Simple protocol; expect_fail tells what the ground truth is. */
static void
simple(const char *name, const char *sql, bool expect_fail)
{
	char		buf[1024];
	double		t0 = now_us();
	PGresult   *r = PQexec(conn, name ? named(buf, sizeof(buf), name, sql) : sql);
	double		us = now_us() - t0;

	if (ok(r) == expect_fail)
	{
		fprintf(stderr, "exactness: %s: unexpected %s\n", sql, PQresStatus(PQresultStatus(r)));
		exit(2);
	}
	PQclear(r);
	note(name, expect_fail, us);
}

/* Extended protocol, unnamed statement: Parse/Bind/Describe/Execute/Sync. */
static void
params(const char *name, const char *sql, const char *param, bool expect_fail)
{
	char		buf[1024];
	double		t0 = now_us();
	PGresult   *r = PQexecParams(conn, named(buf, sizeof(buf), name, sql),
								 param ? 1 : 0, NULL, param ? &param : NULL,
								 NULL, NULL, 0);
	double		us = now_us() - t0;

	if (ok(r) == expect_fail)
		die(sql);
	PQclear(r);
	note(name, expect_fail, us);
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
	t0 = now_us();
	r = PQexecPrepared(conn, "", 1, &param, NULL, NULL, 0);
	us = now_us() - t0;
	if (!ok(r))
		die("exec unnamed");
	PQclear(r);
	note(name, false, us);
}

int
main(int argc, char **argv)
{
	char		buf[1024];
	PGresult   *r;

	if (argc != 2)
	{
		fprintf(stderr, "usage: exactness conninfo\n");
		return 2;
	}
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect");

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
		double		t0 = now_us();

		r = PQexecPrepared(conn, "upsert", 1, &v, NULL, NULL, 0);
		note("UpsertLastUpdateCheck", !ok(r), now_us() - t0);
		PQclear(r);
	}

	/* failures in the executor, autocommit and extended */
	simple("FailDivide", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = 'zero'", true);
	params("FailDivide", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = $1", "zero", true);

	/* a block that fails, then ROLLBACK, then the client idles */
	simple(NULL, "BEGIN", false);
	simple("InsertAuditLog", "INSERT INTO audit_logs VALUES (1)", false);
	simple("FailInBlock", "SELECT 1 / (value::int - value::int) FROM site_configs WHERE key = 'zero'", true);
	simple(NULL, "ROLLBACK", false);
	{
		struct timespec idle = {0, 200 * 1000 * 1000};

		nanosleep(&idle, NULL);	/* the client idles: nobody's time */
	}
	/* a block that commits, with a named COMMIT-less statement inside */
	simple(NULL, "BEGIN", false);
	simple("InsertAuditLog", "INSERT INTO audit_logs VALUES (2)", false);
	simple(NULL, "COMMIT", false);

	/* a procedure that commits and rolls back inside has not failed */
	for (int i = 0; i < 2; i++)
		simple("CallCommitRollback", "CALL commit_rollback()", false);

	/* an error before the executor: counted for the client, no name */
	simple(NULL, "SELEKT 1", true);

	/* single-row mode */
	for (int i = 0; i < 2; i++)
	{
		double		t0 = now_us();
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
		note("ListRows", failed, now_us() - t0);
	}

	/* COPY TO STDOUT */
	{
		double		t0 = now_us();
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

#ifdef LIBPQ_HAS_PIPELINING
	/* a pipeline: three Executes, one Sync; each took at most the whole */
	{
		double		t0 = now_us();
		double		us;
		int			results = 0;

		if (!PQenterPipelineMode(conn))
			die("pipeline");
		for (int i = 0; i < 3; i++)
		{
			const char *v = "logo_url";

			if (!PQsendQueryParams(conn, named(buf, sizeof(buf), "PipelinedGet",
											   "SELECT value FROM site_configs WHERE key = $1"),
								   1, NULL, &v, NULL, NULL, 0))
				die("pipeline send");
		}
		if (!PQpipelineSync(conn))
			die("pipeline sync");
		for (;;)
		{
			r = PQgetResult(conn);
			if (r == NULL)
				continue;
			if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
			{
				PQclear(r);
				break;
			}
			if (PQresultStatus(r) != PGRES_TUPLES_OK)
				die("pipeline result");
			results++;
			PQclear(r);
		}
		us = now_us() - t0;
		if (!PQexitPipelineMode(conn) || results != 3)
			die("pipeline end");
		for (int i = 0; i < 3; i++)
			note("PipelinedGet", false, us);
	}
#endif

	for (int i = 0; i < ntruth; i++)
		printf("name %s %ld %ld %.1f %.1f\n", truth[i].name, truth[i].calls,
			   truth[i].errors, truth[i].sum_us, truth[i].max_us);
	printf("client %ld %ld\n", client_calls, client_errors);
	PQfinish(conn);
	return 0;
}
