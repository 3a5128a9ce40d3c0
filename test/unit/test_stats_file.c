/*
 * Unit tests for the statistics file's framing (src/lib/stats_file.c):
 * CRC-32C, header and section table, bounds of every read, and that any
 * damage is refused with its reason.  TAP output.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/stats_file.h"

static int tests_run = 0;
static int tests_failed = 0;

static void
ok(bool pass, const char *what)
{
	tests_run++;
	if (!pass)
		tests_failed++;
	printf("%sok %d - %s\n", pass ? "" : "not ", tests_run, what);
}

/* a file of format 4 with the given sections, CRC included */
typedef struct Buf
{
	char   data[4096];
	size_t len;
} Buf;

static void
put(Buf *b, const void *p, size_t n)
{
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
finish(Buf *b)
{
	uint32_t crc =
		CH_CRC32C_FINISH(ch_crc32c_add(CH_CRC32C_INIT, b->data, b->len));

	put(b, &crc, 4);
}

static void
recrc(Buf *b)
{
	b->len -= 4;
	finish(b);
}

static void
build(Buf *b)
{
	char h[CH_STATS_HEADER_SIZE];
	char s[CH_STATS_SECTION_HEADER_SIZE];

	b->len = 0;
	ch_stats_header_encode(h, 15, 2, 123456789);
	put(b, h, sizeof(h));
	ch_stats_section_encode(s, "latency", 1, 10);
	put(b, s, sizeof(s));
	put(b, "0123456789", 10);
	ch_stats_section_encode(s, "notify", 7, 0);
	put(b, s, sizeof(s));
	finish(b);
}

/* read_at over a Buf, for ch_stats_promised_size */
static bool
read_buf(void *arg, uint64_t at, void *dst, size_t n)
{
	Buf *b = arg;

	if (at > b->len || b->len - at < n)
		return false;
	memcpy(dst, b->data + at, n);
	return true;
}

int
main(void)
{
	Buf			   b;
	Buf			   c;
	ChStatsFile	   f;
	ChStatsSection s;
	ChStatsReader  r;
	char		   out[8];
	uint32_t	   u;

	/* CRC-32C check value of "123456789" */
	ok(CH_CRC32C_FINISH(ch_crc32c_add(CH_CRC32C_INIT, "123456789", 9)) ==
		   0xE3069283u,
	   "CRC-32C of \"123456789\" is the standard check value E3069283");
	/* streaming gives the same as one call */
	u = ch_crc32c_add(CH_CRC32C_INIT, "1234", 4);
	u = ch_crc32c_add(u, "56789", 5);
	ok(CH_CRC32C_FINISH(u) == 0xE3069283u,
	   "CRC-32C added in two pieces is the same");

	build(&b);
	ok(b.len ==
		   CH_STATS_HEADER_SIZE + 2 * CH_STATS_SECTION_HEADER_SIZE + 10 + 4,
	   "a file of two sections is header + section headers + data + CRC");
	ok(ch_stats_file_parse(b.data, b.len, &f) == CH_STATS_OK,
	   "a well-formed file parses");
	ok(f.format == 4 && f.pg_major == 15 && f.nsections == 2 &&
		   f.saved_at == 123456789,
	   "its header fields are read back");
	ok(ch_stats_file_section(&f, 0, &s) && strcmp(s.name, "latency") == 0 &&
		   s.version == 1 && s.length == 10 &&
		   memcmp(s.data, "0123456789", 10) == 0,
	   "section 0 is latency, version 1, its 10 bytes");
	ok(ch_stats_file_section(&f, 1, &s) && strcmp(s.name, "notify") == 0 &&
		   s.version == 7 && s.length == 0,
	   "section 1 is notify, empty");
	ok(!ch_stats_file_section(&f, 2, &s), "there is no section 2");
	ok(ch_stats_promised_size(2, b.len, read_buf, &b) == b.len,
	   "the section headers alone promise the file's size");
	ok(ch_stats_promised_size(3, b.len, read_buf, &b) == 0,
	   "a header promising a section more than the file holds is refused");

	/* damage, each refused with its reason */
	ok(ch_stats_file_parse(b.data, CH_STATS_MIN_SIZE - 1, &f) ==
		   CH_STATS_TOO_SHORT,
	   "a file shorter than any we write: too short");
	c = b;
	c.data[0] ^= 1;
	ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_NOT_OURS,
	   "wrong magic: not ours");
	c = b;
	c.data[40] ^= 0x10;
	ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_BAD_CRC,
	   "a flipped bit: bad CRC");
	for (size_t cut = 1; cut < 12; cut++)
	{
		c = b;
		c.len -= cut;
		if (ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_OK)
			break;
		if (cut == 11)
			ok(true, "a file cut short by 1 to 11 bytes never parses");
	}
	c = b;
	u = 99;
	memcpy(c.data + 4, &u, 4);
	recrc(&c);
	ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_OTHER_FORMAT,
	   "format 99 with a valid CRC: another format");
	c = b;
	u = 3;
	memcpy(c.data + 12, &u, 4);
	recrc(&c);
	ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_MALFORMED,
	   "one section more than there is: malformed");
	c = b;
	u = 1;
	memcpy(c.data + 12, &u, 4);
	recrc(&c);
	ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_MALFORMED,
	   "one section less than there is (bytes left over): malformed");
	c = b;
	u = CH_STATS_MAX_SECTIONS + 1;
	memcpy(c.data + 12, &u, 4);
	recrc(&c);
	ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_MALFORMED,
	   "more sections than any build writes: malformed");
	{
		uint64_t big = UINT64_MAX - 5;

		c = b;
		memcpy(c.data + CH_STATS_HEADER_SIZE + 24, &big, 8);
		recrc(&c);
		ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_MALFORMED,
		   "a section length near 2^64 (no overflow): malformed");
		ok(ch_stats_promised_size(2, c.len, read_buf, &c) == 0,
		   "and its promised size is refused too");
	}
	c = b;
	memcpy(c.data + CH_STATS_HEADER_SIZE, "latencyXYZ", 10);
	c.data[CH_STATS_HEADER_SIZE + 15] = 'X';
	recrc(&c);
	ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_MALFORMED,
	   "a section name without its NUL: malformed");
	c = b;
	c.data[CH_STATS_HEADER_SIZE + 20] = 1;
	recrc(&c);
	ok(ch_stats_file_parse(c.data, c.len, &f) == CH_STATS_MALFORMED,
	   "a reserved word that is not 0: malformed");
	ok(!ch_stats_section_encode(out, "", 1, 0) &&
		   !ch_stats_section_encode(out, "a_name_of_16_chr", 1, 0),
	   "names must be 1 to 15 bytes");

	/* a legacy file: magic, format 1..3, CRC; saved_at at offset 32 */
	{
		Buf		 l;
		uint32_t hdr[14];
		int64_t	 at = 987654321;

		memset(hdr, 0, sizeof(hdr));
		hdr[0] = CH_STATS_MAGIC;
		hdr[1] = 3;
		hdr[2] = 15;
		l.len = 0;
		put(&l, hdr, sizeof(hdr));
		memcpy(l.data + 32, &at, 8);
		finish(&l);
		ok(ch_stats_file_parse(l.data, l.len, &f) == CH_STATS_OK &&
			   f.format == 3 && f.saved_at == 987654321 &&
			   f.end == l.data + l.len - 4,
		   "a format-3 file parses as legacy, saved_at at 32");
		ok(!ch_stats_file_section(&f, 0, &s), "and has no sections");
	}
	ok(CH_STATS_IS_LEGACY(CH_STATS_LEGACY(2)) &&
		   CH_STATS_LEGACY_FORMAT(CH_STATS_LEGACY(2)) == 2 &&
		   !CH_STATS_IS_LEGACY(1),
	   "legacy versions are told from section versions");

	/* the bounded reader */
	ch_stats_reader_init(&r, "abcdef", 6);
	ok(ch_stats_read(&r, out, 4) && memcmp(out, "abcd", 4) == 0 &&
		   ch_stats_left(&r) == 2,
	   "read 4 of 6");
	ok(!ch_stats_read(&r, out, 3) && ch_stats_left(&r) == 2,
	   "reading 3 of the 2 left fails and moves nothing");
	ok(ch_stats_take(&r, 3) == NULL && ch_stats_take(&r, 2) != NULL &&
		   ch_stats_left(&r) == 0,
	   "take is bounded the same way");
	ok(ch_stats_read(&r, out, 0), "reading nothing at the end is fine");
	ok(ch_stats_seek(&r, 6) && !ch_stats_seek(&r, 7) && ch_stats_seek(&r, 1) &&
		   ch_stats_left(&r) == 5,
	   "seek stays within the reader");
	ok(!ch_stats_read(&r, out, (size_t) -1),
	   "a length of SIZE_MAX cannot wrap around");

	printf("1..%d\n", tests_run);
	if (tests_failed > 0)
		printf("# %d of %d failed\n", tests_failed, tests_run);
	return tests_failed > 0 ? 1 : 0;
}
