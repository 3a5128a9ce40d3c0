/*-------------------------------------------------------------------------
 *
 * stats_file.h
 *	  The framing of pg_stat/coder_health.stat: a header, one section per
 *	  module, a CRC-32C at the end.  Plain C, no PostgreSQL headers, so the
 *	  parsing, its bounds and the checksum are unit-tested alone
 *	  (test/unit/test_stats_file.c).  What a section holds is its module's
 *	  business (latency_persist.c, notify_persist.c); core/persist.c reads
 *	  and writes the file.
 *
 * Format 4 (all integers in the machine's byte order, as before):
 *
 *	  header   uint32 magic "CHST", uint32 format (4), uint32 pg_major,
 *			   uint32 nsections, int64 saved_at                    24 bytes
 *	  section  char name[16] (NUL-padded), uint32 version,
 *			   uint32 reserved (0), uint64 length                  32 bytes
 *			   then length bytes of the module's own data
 *	  ...      nsections sections, nothing between or after them
 *	  crc      uint32 CRC-32C of every byte before it
 *
 * Formats 1 to 3 (coder_health 0.1.0 to the first 0.4.0 builds) had one
 * header with the latency and notify fields in it; they share magic,
 * format and pg_major at the same offsets and end with the same CRC, and
 * their saved_at is at offset 32.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_STATS_FILE_H
#define CODER_HEALTH_STATS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CH_STATS_MAGIC 0x43485354u /* "CHST" */
#define CH_STATS_FORMAT 4
#define CH_STATS_FORMAT_OLDEST 1 /* formats 1..3: read on upgrade */
#define CH_STATS_HEADER_SIZE 24
#define CH_STATS_SECTION_HEADER_SIZE 32
#define CH_STATS_NAME_LEN 16 /* with its NUL */
#define CH_STATS_CRC_SIZE 4
/* format 1's header ended after saved_at */
#define CH_STATS_LEGACY_HEADER_SIZE 40
#define CH_STATS_LEGACY_SAVED_AT 32
/* the smallest file of any format: format 1's header and the CRC */
#define CH_STATS_MIN_SIZE (CH_STATS_LEGACY_HEADER_SIZE + CH_STATS_CRC_SIZE)
/* at most this many sections (a bound for a forged header) */
#define CH_STATS_MAX_SECTIONS 64

/*
 * The version a module's load function is given for a file of format 1..3:
 * its reader then spans the whole file before the CRC, header included.
 */
#define CH_STATS_LEGACY(format) (0x80000000u | (uint32_t) (format))
#define CH_STATS_IS_LEGACY(version) (((version) &0x80000000u) != 0)
#define CH_STATS_LEGACY_FORMAT(version) ((version) &0x7fffffffu)

/* CRC-32C (Castagnoli), as PostgreSQL's pg_crc32c computes it */
#define CH_CRC32C_INIT 0xFFFFFFFFu
extern uint32_t ch_crc32c_add(uint32_t crc, const void *data, size_t len);
#define CH_CRC32C_FINISH(crc) ((crc) ^ 0xFFFFFFFFu)

typedef enum ChStatsStatus
{
	CH_STATS_OK = 0,
	CH_STATS_TOO_SHORT,	   /* smaller than any file we write */
	CH_STATS_NOT_OURS,	   /* wrong magic */
	CH_STATS_BAD_CRC,	   /* checksum does not match */
	CH_STATS_OTHER_FORMAT, /* a format this build does not read */
	CH_STATS_MALFORMED	   /* sections do not tile the file */
} ChStatsStatus;

/* What the framing says about a file held in memory. */
typedef struct ChStatsFile
{
	uint32_t	format;
	uint32_t	pg_major;
	uint32_t	nsections; /* format 4 only */
	int64_t		saved_at;
	const char *start;	  /* the file's first byte */
	const char *sections; /* format 4: the first section header */
	const char *end;	  /* the CRC's first byte */
} ChStatsFile;

/* One section of a format-4 file. */
typedef struct ChStatsSection
{
	char		name[CH_STATS_NAME_LEN];
	uint32_t	version;
	const char *data;
	uint64_t	length;
} ChStatsSection;

/*
 * Check a whole file held in buf[0 .. len): size, magic, CRC, format, and
 * for format 4 that the sections tile the body exactly.  Fills *f on
 * CH_STATS_OK (and format/pg_major as far as they could be read otherwise).
 */
extern ChStatsStatus ch_stats_file_parse(const char *buf, size_t len,
										 ChStatsFile *f);

/*
 * Section number i (0 .. nsections-1) of a file ch_stats_file_parse
 * accepted, walked from the start: true and *s filled, false past the end.
 */
extern bool ch_stats_file_section(const ChStatsFile *f, uint32_t i,
								  ChStatsSection *s);

/* Decode a section header (32 bytes); false if its name or reserved word
 * is malformed. */
extern bool ch_stats_section_decode(const char *hdr, ChStatsSection *s);

/*
 * The file's size the section headers promise, walked from its header
 * alone (read piecewise before the file is loaded whole): header + each
 * section header and its length + CRC.  read(at, dst, n) reads n bytes at
 * offset at and returns false if it cannot; limit bounds the walk.  0 when
 * a section header is malformed, unreadable or the sum passes limit.
 */
typedef bool (*ch_stats_read_fn)(void *arg, uint64_t at, void *dst, size_t n);
extern uint64_t ch_stats_promised_size(uint32_t nsections, uint64_t limit,
									   ch_stats_read_fn read, void *arg);

/* Encode the file header and a section header. */
extern void ch_stats_header_encode(void *out, uint32_t pg_major,
								   uint32_t nsections, int64_t saved_at);
extern bool ch_stats_section_encode(void *out, const char *name,
									uint32_t version, uint64_t length);

/*
 * A bounded reader over one section (or, for a legacy file, the whole file
 * before its CRC): every read checks what is left and fails instead of
 * reading past the end.
 */
typedef struct ChStatsReader
{
	const char *start;
	const char *p;
	const char *end;
} ChStatsReader;

extern void ch_stats_reader_init(ChStatsReader *r, const char *data,
								 size_t len);
/* copy n bytes out (the file is not aligned); false if fewer are left */
extern bool ch_stats_read(ChStatsReader *r, void *dst, size_t n);
/* the next n bytes in place, or NULL if fewer are left */
extern const char *ch_stats_take(ChStatsReader *r, size_t n);
extern size_t	   ch_stats_left(const ChStatsReader *r);
/* move to offset at from the start; false if past the end */
extern bool ch_stats_seek(ChStatsReader *r, size_t at);

#endif /* CODER_HEALTH_STATS_FILE_H */
