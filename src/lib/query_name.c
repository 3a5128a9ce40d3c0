/*-------------------------------------------------------------------------
 *
 * query_name.c
 *	  Parse sqlc's "-- name: <Name> :<kind>" marker.
 *
 * Strict on purpose: the marker must open the statement (after whitespace
 * only), be spelled as sqlc writes it, and be followed by a kind, so that
 * a comment that only looks similar ("--name:" later in the text, the
 * marker inside a block comment, prose mentioning "name:") names nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "query_name.h"

#include <string.h>

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_ident(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

int
query_name_parse(const char *text, long len, char out[QUERY_NAME_LEN])
{
	static const char marker[] = "-- name: ";
	const size_t marker_len = sizeof(marker) - 1;
	const char *p = text;
	const char *end;
	const char *name;
	size_t		name_len;

	out[0] = '\0';
	if (text == NULL)
		return 0;
	end = len >= 0 ? text + len : text + strlen(text);

	while (p < end && is_space(*p))
		p++;
	if ((size_t) (end - p) < marker_len || memcmp(p, marker, marker_len) != 0)
		return 0;
	p += marker_len;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;

	name = p;
	while (p < end && is_ident(*p))
		p++;
	name_len = (size_t) (p - name);
	if (name_len == 0)
		return 0;

	/* " :kind" must follow on the same line */
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end || *p != ':' || p + 1 >= end || !is_alpha(p[1]))
		return 0;

	if (name_len > QUERY_NAME_LEN - 1)
		name_len = QUERY_NAME_LEN - 1;
	memcpy(out, name, name_len);
	out[name_len] = '\0';
	return 1;
}
