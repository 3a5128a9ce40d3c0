/*-------------------------------------------------------------------------
 *
 * channel_family.c
 *	  Channel families and channel hashes, one pass over the name each.
 *
 * Coder names channels after the object they are about
 * (workspace_owner:<uuid>, agent-logs:<uuid>, prebuild_claimed_<uuid>), so
 * counting per channel would grow without bound; a family folds the
 * identifiers into "*".  This runs once per notification, before the
 * notifying transaction commits, so it reads each byte once through a class
 * table: a word of hex digits is measured once and then either folded whole
 * (a UUID, or 16+ hex digits with a digit among them) or copied with its
 * digit runs folded.
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <string.h>

#include "channel_family.h"
#include "hash64.h"

#define CLASS_HEX 0x01
#define CLASS_DIGIT 0x02
#define HEXLETTER CLASS_HEX
#define DIGIT (CLASS_HEX | CLASS_DIGIT)

static const unsigned char char_class[256] = {
	['0'] = DIGIT,['1'] = DIGIT,['2'] = DIGIT,['3'] = DIGIT,['4'] = DIGIT,
	['5'] = DIGIT,['6'] = DIGIT,['7'] = DIGIT,['8'] = DIGIT,['9'] = DIGIT,
	['a'] = HEXLETTER,['b'] = HEXLETTER,['c'] = HEXLETTER,
	['d'] = HEXLETTER,['e'] = HEXLETTER,['f'] = HEXLETTER,
	['A'] = HEXLETTER,['B'] = HEXLETTER,['C'] = HEXLETTER,
	['D'] = HEXLETTER,['E'] = HEXLETTER,['F'] = HEXLETTER,
};

#define UUID_LEN 36

/*
 * Whether s[0 .. avail) starts with a UUID, given that s starts with exactly
 * 8 hex digits (so s[8] is not one).
 */
static bool
uuid_at(const unsigned char *s, int avail)
{
	static const int dashes[] = {8, 13, 18, 23};
	int			d = 0;

	if (avail < UUID_LEN)
		return false;
	for (int i = 8; i < UUID_LEN; i++)
	{
		if (d < 4 && i == dashes[d])
		{
			if (s[i] != '-')
				return false;
			d++;
		}
		else if (!(char_class[s[i]] & CLASS_HEX))
			return false;
	}
	return true;
}

int
channel_family(const char *channel, int len, char family[CHANNEL_FAMILY_LEN])
{
	const unsigned char *restrict p = (const unsigned char *) channel;
	const unsigned char *stop;
	char	   *restrict out = family;

	/*
	 * Channel names are shorter than this anyway (NAMEDATALEN); cutting the
	 * input keeps the output in bounds, as every input byte yields at most
	 * one output byte.
	 */
	if (len > CHANNEL_FAMILY_LEN - 1)
		len = CHANNEL_FAMILY_LEN - 1;
	stop = p + (len > 0 ? len : 0);

	while (p < stop)
	{
		const unsigned char *end;
		unsigned char classes = 0;

		if (char_class[*p] == 0)
		{
			*out++ = (char) *p++;
			continue;
		}

		/* a word of hex digits starts here (nothing hex before it) */
		for (end = p; end < stop && char_class[*end]; end++)
			classes |= char_class[*end];
		if (end - p == 8 && uuid_at(p, (int) (stop - p)))
		{
			*out++ = '*';
			p += UUID_LEN;
			/* hex digits right after it belong to the same word */
			for (end = p; end < stop && char_class[*end]; end++)
				;
		}
		else if (end - p >= 16 && (classes & CLASS_DIGIT))
		{
			*out++ = '*';
			p = end;
			continue;
		}

		/* the rest of the word: letters stay, each digit run becomes "*" */
		while (p < end)
		{
			if (char_class[*p] & CLASS_DIGIT)
			{
				*out++ = '*';
				do
					p++;
				while (p < end && (char_class[*p] & CLASS_DIGIT));
			}
			else
				*out++ = (char) *p++;
		}
	}
	*out = '\0';
	return (int) (out - family);
}

uint64_t
channel_hash(const char *s, int len)
{
	return hash64_bytes(s, len, 0);
}
