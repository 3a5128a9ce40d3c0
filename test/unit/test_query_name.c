/*
 * Unit tests for query_name_parse(): what names a statement and what must
 * not.  TAP output.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../../src/lib/query_name.h"

static int	tests_run = 0;
static int	tests_failed = 0;

static void
expect(const char *text, long len, const char *want, const char *what)
{
	char		out[QUERY_NAME_LEN];
	int			found = query_name_parse(text, len, out);
	bool		pass = want ? (found == 1 && strcmp(out, want) == 0)
		: (found == 0 && out[0] == '\0');

	tests_run++;
	if (!pass)
		tests_failed++;
	printf("%sok %d - %s (got \"%s\")\n", pass ? "" : "not ", tests_run, what, out);
}

int
main(void)
{
	char		longname[300];
	char		want[QUERY_NAME_LEN];

	expect("-- name: GetWorkspaceAgentByID :one\nSELECT 1", -1,
		   "GetWorkspaceAgentByID", "sqlc marker names the statement");
	expect("\n  \t-- name: InsertWorkspaceAgentStats :exec\nINSERT INTO t VALUES (1)", -1,
		   "InsertWorkspaceAgentStats", "leading whitespace is allowed");
	expect("-- name: GetUsers :many\r\nSELECT 1", -1, "GetUsers", "CRLF line end");
	expect("-- name: AcquireProvisionerJob   :one\nUPDATE x", -1,
		   "AcquireProvisionerJob", "several spaces before the kind");
	expect("SELECT 1 -- name: Hidden :one", -1, NULL, "marker later in the text does not name");
	expect("SELECT 1;\n--name: Tight :one\nSELECT 2", -1, NULL, "--name: without space does not name");
	expect("/* -- name: x :one */ SELECT 1", -1, NULL, "marker inside a block comment does not name");
	expect("-- name: NoKind\nSELECT 1", -1, NULL, "a marker without :kind does not name");
	expect("-- name: :one\nSELECT 1", -1, NULL, "an empty name does not name");
	expect("-- name: Bad-Name :one\nSELECT 1", -1, NULL, "a name with other characters does not name");
	expect("-- comment\n-- name: Second :one\nSELECT 1", -1, NULL, "the marker must come first");
	expect("SELECT 1", -1, NULL, "no comment, no name");
	expect("", -1, NULL, "empty text");
	expect(NULL, -1, NULL, "NULL text");
	/* only the statement's own part of a multi-statement string counts */
	expect("-- name: First :one\nSELECT 1; -- name: Second :one\nSELECT 2", 8,
		   NULL, "cut before the kind: no name");
	expect("SELECT 1; -- name: Second :one\nSELECT 2" + 9, 31, "Second",
		   "the second statement's own part");
	expect("-- name: Cut :one", 12, NULL, "never reads past len");

	memset(longname, 'N', sizeof(longname));
	memcpy(longname, "-- name: ", 9);
	strcpy(longname + 250, " :one\nSELECT 1");
	memset(want, 'N', QUERY_NAME_LEN - 1);
	want[QUERY_NAME_LEN - 1] = '\0';
	expect(longname, -1, want, "a long name is cut to 63 bytes");

	printf("1..%d\n", tests_run);
	return tests_failed == 0 ? 0 : 1;
}
