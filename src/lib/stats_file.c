/*-------------------------------------------------------------------------
 *
 * stats_file.c
 *	  Framing of pg_stat/coder_health.stat (see stats_file.h): CRC-32C,
 *	  header and section headers, bounded readers.
 *
 * Every function here trusts nothing in the bytes it is given: lengths are
 * compared with what is left before anything is read, sums are checked
 * against overflow, and a file is either accepted whole or refused with the
 * reason.  No allocation, no I/O (the caller reads the file).
 *
 *-------------------------------------------------------------------------
 */
#include "stats_file.h"

#include <string.h>

/* CRC-32C, reflected polynomial 0x82F63B78, one table lookup per byte */
static uint32_t crc_table[256];
static bool		crc_table_ready = false;

static void
crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++)
	{
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
	crc_table_ready = true;
}

uint32_t
ch_crc32c_add(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (!crc_table_ready)
		crc_table_init();
	while (len-- > 0)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return crc;
}

static uint32_t
get_u32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
get_u64(const char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

ChStatsStatus
ch_stats_file_parse(const char *buf, size_t len, ChStatsFile *f)
{
	uint32_t	stored;
	uint32_t	crc;
	const char *p;

	memset(f, 0, sizeof(*f));
	if (len < CH_STATS_MIN_SIZE)
		return CH_STATS_TOO_SHORT;
	if (get_u32(buf) != CH_STATS_MAGIC)
		return CH_STATS_NOT_OURS;
	f->format = get_u32(buf + 4);
	f->pg_major = get_u32(buf + 8);
	f->start = buf;
	f->end = buf + len - CH_STATS_CRC_SIZE;

	crc = CH_CRC32C_FINISH(
		ch_crc32c_add(CH_CRC32C_INIT, buf, len - CH_STATS_CRC_SIZE));
	stored = get_u32(f->end);
	if (crc != stored)
		return CH_STATS_BAD_CRC;

	if (f->format >= CH_STATS_FORMAT_OLDEST && f->format < CH_STATS_FORMAT)
	{
		f->saved_at = (int64_t) get_u64(buf + CH_STATS_LEGACY_SAVED_AT);
		return CH_STATS_OK;
	}
	if (f->format != CH_STATS_FORMAT)
		return CH_STATS_OTHER_FORMAT;

	/* format 4: the sections must tile the body exactly */
	f->nsections = get_u32(buf + 12);
	f->saved_at = (int64_t) get_u64(buf + 16);
	f->sections = buf + CH_STATS_HEADER_SIZE;
	if (f->nsections > CH_STATS_MAX_SECTIONS)
		return CH_STATS_MALFORMED;
	p = f->sections;
	for (uint32_t i = 0; i < f->nsections; i++)
	{
		ChStatsSection s;

		if ((size_t) (f->end - p) < CH_STATS_SECTION_HEADER_SIZE ||
			!ch_stats_section_decode(p, &s))
			return CH_STATS_MALFORMED;
		p += CH_STATS_SECTION_HEADER_SIZE;
		if (s.length > (uint64_t) (f->end - p))
			return CH_STATS_MALFORMED;
		p += s.length;
	}
	if (p != f->end)
		return CH_STATS_MALFORMED;
	return CH_STATS_OK;
}

bool
ch_stats_section_decode(const char *hdr, ChStatsSection *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->name, hdr, CH_STATS_NAME_LEN);
	/* a name, NUL-terminated and NUL-padded */
	if (s->name[0] == '\0' || s->name[CH_STATS_NAME_LEN - 1] != '\0')
		return false;
	for (size_t k = strlen(s->name); k < CH_STATS_NAME_LEN; k++)
		if (s->name[k] != '\0')
			return false;
	s->version = get_u32(hdr + CH_STATS_NAME_LEN);
	if (get_u32(hdr + CH_STATS_NAME_LEN + 4) != 0)
		return false;
	s->length = get_u64(hdr + CH_STATS_NAME_LEN + 8);
	s->data = hdr + CH_STATS_SECTION_HEADER_SIZE;
	return true;
}

bool
ch_stats_file_section(const ChStatsFile *f, uint32_t i, ChStatsSection *s)
{
	const char *p = f->sections;

	if (f->format != CH_STATS_FORMAT || i >= f->nsections)
		return false;
	/* ch_stats_file_parse checked every header and length */
	for (uint32_t k = 0;; k++)
	{
		if (!ch_stats_section_decode(p, s))
			return false;
		if (k == i)
			return true;
		p += CH_STATS_SECTION_HEADER_SIZE + s->length;
	}
}

uint64_t
ch_stats_promised_size(uint32_t nsections, uint64_t limit,
					   ch_stats_read_fn read, void *arg)
{
	uint64_t at = CH_STATS_HEADER_SIZE;

	if (nsections > CH_STATS_MAX_SECTIONS)
		return 0;
	for (uint32_t i = 0; i < nsections; i++)
	{
		char		   hdr[CH_STATS_SECTION_HEADER_SIZE];
		ChStatsSection s;

		if (at > limit || limit - at < CH_STATS_SECTION_HEADER_SIZE ||
			!read(arg, at, hdr, sizeof(hdr)) ||
			!ch_stats_section_decode(hdr, &s))
			return 0;
		at += CH_STATS_SECTION_HEADER_SIZE;
		if (s.length > limit - at)
			return 0;
		at += s.length;
	}
	if (limit - at < CH_STATS_CRC_SIZE)
		return 0;
	return at + CH_STATS_CRC_SIZE;
}

void
ch_stats_header_encode(void *dst, uint32_t pg_major, uint32_t nsections,
					   int64_t saved_at)
{
	uint32_t	words[4];

	words[0] = CH_STATS_MAGIC;
	words[1] = CH_STATS_FORMAT;
	words[2] = pg_major;
	words[3] = nsections;
	memcpy(dst, words, sizeof(words));
	memcpy((unsigned char *) dst + sizeof(words), &saved_at, sizeof(saved_at));
}

bool
ch_stats_section_encode(void *dst, const char *name, uint32_t version,
						uint64_t length)
{
	char	   *out = dst;
	uint32_t	words[2];
	size_t		n = strlen(name);

	if (n == 0 || n >= CH_STATS_NAME_LEN)
		return false;
	/* NUL-padded: strncpy fills the rest of the 16 bytes with NULs */
	strncpy(out, name, CH_STATS_NAME_LEN);
	words[0] = version;
	words[1] = 0;				/* reserved */
	memcpy(out + CH_STATS_NAME_LEN, words, sizeof(words));
	memcpy(out + CH_STATS_NAME_LEN + sizeof(words), &length, sizeof(length));
	return true;
}

void
ch_stats_reader_init(ChStatsReader *r, const char *data, size_t len)
{
	r->start = data;
	r->p = data;
	r->end = data + len;
}

bool
ch_stats_read(ChStatsReader *r, void *dst, size_t n)
{
	if ((size_t) (r->end - r->p) < n)
		return false;
	if (n > 0)
		memcpy(dst, r->p, n);
	r->p += n;
	return true;
}

const char *
ch_stats_take(ChStatsReader *r, size_t n)
{
	const char *at = r->p;

	if ((size_t) (r->end - r->p) < n)
		return NULL;
	r->p += n;
	return at;
}

size_t
ch_stats_left(const ChStatsReader *r)
{
	return (size_t) (r->end - r->p);
}

bool
ch_stats_seek(ChStatsReader *r, size_t at)
{
	if ((size_t) (r->end - r->start) < at)
		return false;
	r->p = r->start + at;
	return true;
}
