/*
 * pkclient: a libpq client that sends pgbench's primary-key SELECT the way
 * a sqlc-generated Go server does, for bench/run.sh backend: over the
 * connection string's transport (TCP to 127.0.0.1 there), with the
 * extended protocol and sqlc's "-- name:" marker in front of the text.
 *
 *   pkclient "conninfo" prepared|params N
 *
 *   prepared  one PQprepare, then N x PQexecPrepared (pgx's statement cache:
 *             Bind/Execute/Sync of a named prepared statement)
 *   params    N x PQexecParams (lib/pq: unnamed Parse/Bind/Execute/Sync,
 *             the text parsed again each time)
 *
 * Prints the backend's process id first (which callgrind profile is this
 * connection's), then "ok N" once every statement returned its one row.
 * Exit status 1 if anything failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

#define QUERY "-- name: GetAccountBalance :one\n" \
	"SELECT abalance FROM pgbench_accounts WHERE aid = $1"

static int
one_row(PGconn *conn, PGresult *res, const char *what)
{
	int			ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	if (!ok)
		fprintf(stderr, "pkclient: %s: %s%s\n", what, PQresStatus(PQresultStatus(res)),
				PQerrorMessage(conn));
	PQclear(res);
	return ok;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	long		n;
	int			prepared;
	char		aid[16];
	const char *values[1] = {aid};

	if (argc != 4 || (strcmp(argv[2], "prepared") != 0 && strcmp(argv[2], "params") != 0))
	{
		fprintf(stderr, "usage: pkclient conninfo prepared|params N\n");
		return 2;
	}
	prepared = strcmp(argv[2], "prepared") == 0;
	n = atol(argv[3]);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "pkclient: %s", PQerrorMessage(conn));
		return 1;
	}
	printf("%d\n", PQbackendPID(conn));
	fflush(stdout);
	if (prepared)
	{
		PGresult   *res = PQprepare(conn, "GetAccountBalance", QUERY, 1, NULL);

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "pkclient: prepare: %s", PQerrorMessage(conn));
			return 1;
		}
		PQclear(res);
	}
	for (long i = 1; i <= n; i++)
	{
		PGresult   *res;

		/* the same keys as bench/run.sh instructions */
		snprintf(aid, sizeof(aid), "%ld", (i * 7919) % 100000 + 1);
		if (prepared)
			res = PQexecPrepared(conn, "GetAccountBalance", 1, values, NULL, NULL, 0);
		else
			res = PQexecParams(conn, QUERY, 1, NULL, values, NULL, NULL, 0);
		if (!one_row(conn, res, "select"))
			return 1;
	}
	printf("ok %ld\n", n);
	PQfinish(conn);
	return 0;
}
