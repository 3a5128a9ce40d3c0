/*-------------------------------------------------------------------------
 *
 * statement_text.h
 *	  A statement's text with its constants, comments and spacing
 *	  normalized away: what coder_health hashes into a statement id when
 *	  PostgreSQL computes no query id (text_query_id.c).  Runs once per
 *	  parsed statement, so it is one pass over the text with a class table.
 *	  Plain C, no PostgreSQL headers, so it is unit-tested alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_STATEMENT_TEXT_H
#define CODER_HEALTH_STATEMENT_TEXT_H

#include <stdbool.h>

/* the normalized text is handed over in pieces of at most this many bytes */
#define STATEMENT_TEXT_CHUNK 1024

/*
 * A chunk may be read in whole 8-byte words: the bytes from its end up to
 * the next multiple of 8 are readable (and not part of it).
 */
typedef void (*statement_text_sink) (void *arg, const char *chunk, int len);

/*
 * Normalize src[0 .. len) and pass the result to sink in order, in chunks
 * of STATEMENT_TEXT_CHUNK bytes (the last one shorter; no call for an empty
 * result).  The result, for the SQL lexer's tokens:
 * - string constants ('..', E'..', $tag$..$tag$) become ?s; numbers ?i
 *   (fits int4), ?l (int8), ?n (numeric, or with a point or exponent), ?x
 *   (hex/octal/binary or with underscores, 16+), so constants of different
 *   types, which may pick different functions, stay apart, as in core;
 * - parameters ($1), quoted identifiers and operators are kept as they are;
 * - unquoted words are lower-cased (the lexer folds them);
 * - comments, semicolons and whitespace go; one space is kept only between
 *   two words (or numbers) that it separates.
 * Malformed text (an unterminated string or comment) is taken as running to
 * the end.  The same text always gives the same result.
 */
extern void statement_text_normalize(const char *src, int len,
									 statement_text_sink sink, void *arg);

/*
 * A statement's text as a person reads it, for the views: the same lexer,
 * but case and the client's word order kept, every constant (string,
 * number, E'..', B'..', X'..', $tag$..$tag$) replaced by '?', comments
 * (sqlc's "-- name:" marker included) dropped, each run of whitespace and
 * comments made one space, none at either end, and the trailing ';' gone.
 * Writes at most outsize - 1 bytes and a NUL into out (outsize >= 1);
 * returns the length written, and sets *truncated when the text did not
 * fit (the caller may then clip to a character boundary and mark it).
 * Constants never reach out, not even in part.
 */
extern int	statement_text_display(const char *src, int len, char *out,
								   int outsize, bool *truncated);

#endif							/* CODER_HEALTH_STATEMENT_TEXT_H */
