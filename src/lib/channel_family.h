/*-------------------------------------------------------------------------
 *
 * channel_family.h
 *	  The family of a NOTIFY channel name (its identifiers folded into "*")
 *	  and a hash of the name.  Both run on every notification, so they are
 *	  one pass each over at most 63 bytes.  Plain C, no PostgreSQL headers,
 *	  so they are unit-tested alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_CHANNEL_FAMILY_H
#define CODER_HEALTH_CHANNEL_FAMILY_H

#include <stdint.h>

/* bytes of a family name, including the terminating NUL (NAMEDATALEN) */
#define CHANNEL_FAMILY_LEN 64

/*
 * Write the family of channel[0 .. len) to family and return its length.
 * Every UUID (8-4-4-4-12 hex digits) and every run of 16 or more hex digits
 * with a digit among them that starts a word (no hex digit before it), and
 * every run of decimal digits anywhere, becomes "*":
 * workspace_owner:<uuid> -> workspace_owner:*, agent-logs:42 -> agent-logs:*.
 * The result is cut to CHANNEL_FAMILY_LEN - 1 bytes and NUL-terminated.
 */
extern int	channel_family(const char *channel, int len,
						   char family[CHANNEL_FAMILY_LEN]);

/* A well-mixed 64-bit hash of s[0 .. len) (distinct-channel estimates). */
extern uint64_t channel_hash(const char *s, int len);

#endif							/* CODER_HEALTH_CHANNEL_FAMILY_H */
