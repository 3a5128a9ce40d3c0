/*
 * Unit tests for channel_family() and channel_hash(): Coder's channel names,
 * edge cases, and agreement with a straightforward character-at-a-time
 * statement of the rules over a million random names.  TAP output.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/channel_family.h"

static int	tests_run = 0;
static int	tests_failed = 0;

static void
ok(bool pass, const char *what)
{
	tests_run++;
	if (!pass)
		tests_failed++;
	printf("%sok %d - %s\n", pass ? "" : "not ", tests_run, what);
}

static void
expect(const char *channel, const char *want)
{
	char		got[CHANNEL_FAMILY_LEN];
	char		what[256];
	int			n = channel_family(channel, (int) strlen(channel), got);

	snprintf(what, sizeof(what), "%s -> %s (got %s)", channel, want, got);
	ok(strcmp(got, want) == 0 && n == (int) strlen(want), what);
}

/* ---- the rules, one character at a time (the reference) ---- */
static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
ref_uuid_at(const char *s)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	int			n = 0;

	for (int g = 0; g < 5; g++)
	{
		if (g > 0)
		{
			if (s[n] != '-')
				return 0;
			n++;
		}
		for (int i = 0; i < groups[g]; i++, n++)
			if (!is_hex(s[n]))
				return 0;
	}
	return n;
}

static void
ref_family(const char *channel, char *family)
{
	int			out = 0;
	const char *p = channel;

	while (*p && out < CHANNEL_FAMILY_LEN - 1)
	{
		int			skip = 0;

		if (is_hex(*p) && (p == channel || !is_hex(p[-1])))
		{
			skip = ref_uuid_at(p);
			if (skip == 0)
			{
				int			n = 0;
				bool		digit = false;

				while (is_hex(p[n]))
				{
					digit |= is_digit(p[n]);
					n++;
				}
				if (n >= 16 && digit)
					skip = n;
			}
		}
		if (skip == 0 && is_digit(*p))
			while (is_digit(p[skip]))
				skip++;
		if (skip > 0)
		{
			family[out++] = '*';
			p += skip;
		}
		else
			family[out++] = *p++;
	}
	family[out] = '\0';
}

static void
random_channel(char *buf, int *len)
{
	static const char alphabet[] = "0123456789abcdefABCDEFgxyz-_:";
	int			n = rand() % 64;	/* 0 .. 63 bytes, as NAMEDATALEN allows */
	int			i = 0;

	while (i < n)
	{
		/* now and then a whole UUID, maybe cut short by the length */
		if (rand() % 10 == 0 && n - i >= 36)
		{
			i += sprintf(buf + i, "%08x-%04x-%04x-%04x-%04x%08x",
						 (unsigned) rand(), rand() % 0xffff, rand() % 0xffff,
						 rand() % 0xffff, rand() % 0xffff, (unsigned) rand());
			continue;
		}
		buf[i++] = alphabet[rand() % (sizeof(alphabet) - 1)];
	}
	buf[n] = '\0';
	*len = n;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a;
	uint64_t	y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

int
main(void)
{
	char		want[CHANNEL_FAMILY_LEN];
	char		got[CHANNEL_FAMILY_LEN];
	char		buf[128];
	int			len;
	int			mismatches = 0;

	/* Coder's channels */
	expect("workspace_owner:6f1c8e4a-3b2d-4c5e-9f7a-1b2c3d4e5f60", "workspace_owner:*");
	expect("agent-logs:6F1C8E4A-3B2D-4C5E-9F7A-1B2C3D4E5F60", "agent-logs:*");
	expect("prebuild_claimed_6f1c8e4a-3b2d-4c5e-9f7a-1b2c3d4e5f60", "prebuild_claimed_*");
	expect("latency-measure:12345", "latency-measure:*");
	expect("tailnet_peer_update", "tailnet_peer_update");
	expect("workspace_owner:42", "workspace_owner:*");
	/* identifiers inside words, and words that look like identifiers */
	expect("deadbeefcafe1234", "*");	/* 16 hex digits with a digit */
	expect("deadbeefcafebabe", "deadbeefcafebabe");	/* no digit: a word */
	expect("abc123def", "abc*def");
	expect("12ab", "*ab");
	expect("ab12", "ab*");
	expect("6f1c8e4a-3b2d-4c5e-9f7a-1b2c3d4e5f60ab7", "*ab*");
	expect("6f1c8e4a-3b2d-4c5e-9f7a-1b2c3d4e5f6", "*f*c*e*a-*b*d-*c*e-*f*a-*b*c*d*e*f*");	/* one digit short */
	expect("x6f1c8e4a-3b2d-4c5e-9f7a-1b2c3d4e5f60", "x*");	/* x is no hex digit */
	expect("a6f1c8e4a-3b2d-4c5e-9f7a-1b2c3d4e5f60", "a*f*c*e*a-*b*d-*c*e-*f*a-*b*c*d*e*f*");	/* inside a word */
	expect("", "");
	expect("-", "-");

	/* a million random names: the one-pass version says what the rules say */
	srand(20261128);
	for (int t = 0; t < 1000000; t++)
	{
		int			n;

		random_channel(buf, &len);
		ref_family(buf, want);
		n = channel_family(buf, len, got);
		if (strcmp(want, got) != 0 || n != (int) strlen(want))
		{
			if (mismatches++ < 5)
				printf("# %s: want %s, got %s\n", buf, want, got);
		}
	}
	ok(mismatches == 0, "one million random names fold as the rules say");

	/* the hash: no collisions among 200,000 Coder-like names, and its low
	 * 8 bits (the distinct-count register) spread evenly */
	{
		enum
		{
		N = 200000};
		uint64_t   *h = malloc(sizeof(uint64_t) * N);
		int			bucket[256] = {0};
		int			collisions = 0;
		int			lo = N,
					hi = 0;

		for (int i = 0; i < N; i++)
		{
			len = sprintf(buf, "workspace_owner:%08x-1234-4abc-9def-%012d", i, i);
			h[i] = channel_hash(buf, len);
			bucket[h[i] & 255]++;
		}
		for (int b = 0; b < 256; b++)
		{
			lo = bucket[b] < lo ? bucket[b] : lo;
			hi = bucket[b] > hi ? bucket[b] : hi;
		}
		qsort(h, N, sizeof(uint64_t), cmp_u64);
		for (int i = 1; i < N; i++)
			collisions += h[i] == h[i - 1];
		ok(collisions == 0, "no hash collisions among 200,000 names");
		/* 781 expected per register; 5 standard deviations is +-140 */
		printf("# register counts between %d and %d\n", lo, hi);
		ok(lo > 781 - 140 && hi < 781 + 140, "low 8 bits spread evenly");
		ok(channel_hash("abc", 3) != channel_hash("abc\0", 4),
		   "the length is part of the hash");
		free(h);
	}

	printf("1..%d\n", tests_run);
	return tests_failed == 0 ? 0 : 1;
}
