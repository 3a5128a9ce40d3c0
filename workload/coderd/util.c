/*-------------------------------------------------------------------------
 *
 * util.c
 *		What every other file of the simulator uses: error and progress
 *		messages, the two clocks, the random numbers (rows, sizes, uuids)
 *		and a growable string buffer for parameters and payloads.
 *
 * Apart because none of it knows about PostgreSQL or Coder.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coderd_sim.h"

uint64_t	rng_state;

void
fatal(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", opt_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void
note(const char *fmt,...)
{
	va_list		ap;

	if (opt_quiet)
		return;
	fprintf(stderr, "%s: ", opt_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int64_t
wall_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wall-clock timestamp offset_sec from now, as ISO 8601 UTC. */
void
format_ts(char *buf, size_t len, long offset_sec)
{
	struct timespec ts;
	struct tm	tm;
	time_t		t;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = ts.tv_sec + offset_sec;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

/* xorshift64*: cheap, and good enough to pick rows and sizes. */
uint64_t
rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* Uniform integer in [lo, hi]. */
int
rng_range(int lo, int hi)
{
	if (hi <= lo)
		return lo;
	return lo + (int) (rng_next() % (uint64_t) (hi - lo + 1));
}

double
rng_unit(void)
{
	return (rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* A random (version 4) uuid; Coder makes its ids client-side too. */
void
gen_uuid(char *out)
{
	unsigned char b[16];
	uint64_t	r1 = rng_next(),
				r2 = rng_next();

	memcpy(b, &r1, 8);
	memcpy(b + 8, &r2, 8);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, UUID_LEN,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
			 b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void *
xmalloc(size_t n)
{
	void	   *p = malloc(n);

	if (p == NULL)
		fatal("out of memory");
	return p;
}

void
sb_init(StrBuf *sb, size_t cap)
{
	sb->cap = cap;
	sb->len = 0;
	sb->data = xmalloc(cap);
	sb->data[0] = '\0';
}

void
sb_reserve(StrBuf *sb, size_t extra)
{
	if (sb->len + extra + 1 > sb->cap)
	{
		char	   *p;

		while (sb->len + extra + 1 > sb->cap)
			sb->cap *= 2;
		p = realloc(sb->data, sb->cap);
		if (p == NULL)
			fatal("out of memory");
		sb->data = p;
	}
}

void
sb_printf(StrBuf *sb, const char *fmt,...)
{
	for (;;)
	{
		va_list		ap;
		int			n;
		size_t		room = sb->cap - sb->len;

		va_start(ap, fmt);
		n = vsnprintf(sb->data + sb->len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			fatal("vsnprintf failed");
		if ((size_t) n < room)
		{
			sb->len += n;
			return;
		}
		sb_reserve(sb, (size_t) n);
	}
}

void
sb_fill(StrBuf *sb, char c, size_t n)
{
	sb_reserve(sb, n);
	memset(sb->data + sb->len, c, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void
sb_free(StrBuf *sb)
{
	free(sb->data);
	sb->data = NULL;
}
