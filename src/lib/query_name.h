/*-------------------------------------------------------------------------
 *
 * query_name.h
 *	  The name sqlc gives a statement: "-- name: GetWorkspaceByID :one" at
 *	  the very start of its text.  Plain C, no PostgreSQL headers, so it is
 *	  unit-tested alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_QUERY_NAME_H
#define CODER_HEALTH_QUERY_NAME_H

#include <stddef.h>

/* bytes kept of a name, including the terminating NUL */
#define QUERY_NAME_LEN 64

/*
 * Find the sqlc name of the statement text[0 .. len) (len < 0: up to the
 * NUL).  Only leading whitespace may come before "-- name: <Name> :<kind>";
 * Name is letters, digits and underscores; kind is letters.  On success the
 * name (cut to QUERY_NAME_LEN - 1 bytes) is copied to out and 1 returned;
 * otherwise out is "" and 0 returned.  Never reads past len or the NUL.
 */
extern int	query_name_parse(const char *text, long len,
							 char out[QUERY_NAME_LEN]);

#endif							/* CODER_HEALTH_QUERY_NAME_H */
