/*-------------------------------------------------------------------------
 *
 * text_query_id.c
 *	  Statement ids from the statement's normalized text, where PostgreSQL
 *	  computes no query id.
 *
 * Statement latency is kept per query id.  PostgreSQL computes one from the
 * analyzed parse tree (14+) when something asks for it: compute_query_id =
 * on, or auto with an extension that called EnableQueryId, as
 * pg_stat_statements does.  That costs more than a short statement's own
 * parsing (about 1,800 instructions for Coder's SELECT pg_notify(..), 2,800
 * for pgbench's primary-key SELECT: bench/notify.sh instructions), and
 * 13 has none at all.  So coder_health does not ask; where a statement
 * has no id where coder_health times it, it gets one here:
 * a hash of its text normalized by statement_text.c (constants, comments,
 * spacing and keyword case taken out).  What that means (docs/versions.md):
 * - with pg_stat_statements loaded, or compute_query_id = on, the ids are
 *   core's and coder_health's rows match pg_stat_statements' rows;
 * - otherwise statements that differ only in constants, spacing or
 *   comments are one statement, as with core ids; statements whose text
 *   differs otherwise (another alias, a reordered list) are two, and the
 *   same text naming tables of different schemas (search_path) is one.
 * Utility statements keep a hash of their exact text, as core 14/15 and
 * pg_stat_statements 13 hash them; on 13, and wherever their PlannedStmt
 * carries no id, compat_utility_query_id() computes it at ProcessUtility.
 *
 * These ids are coder_health's own: they live in its frames and its views
 * only.  Core's query id (Query, PlannedStmt, pg_stat_activity.query_id,
 * EXPLAIN VERBOSE, log_line_prefix %Q) is never written: a statement with
 * no core id gets ours where it is timed (ExecutorStart, ProcessUtility),
 * computed only for statements that are tracked.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "parser/analyze.h"
#include "parser/scansup.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"

#include "pg/compat.h"
#include "lib/hash64.h"
#include "lib/statement_text.h"
#include "text_query_id.h"

PG_FUNCTION_INFO_V1(coder_health_query_id);

/* set when coder_health was preloaded */
static bool requested = false;

/*
 * The span source[location .. location + len) of a statement, by the rules of
 * RawStmt.stmt_location/stmt_len: len <= 0 means "to the end", location < 0
 * "unknown, the whole string".
 */
static const char *
statement_span(const char *source, int location, int *len)
{
	if (location >= 0)
	{
		source += location;
		if (*len <= 0)
			*len = (int) strlen(source);
	}
	else
		*len = (int) strlen(source);
	return source;
}

/*
 * The id of a utility statement: a hash of its exact text, without
 * surrounding whitespace.  Never 0, which means "no id".
 */
uint64
ch_text_query_id(const char *source, int location, int len)
{
	uint64		id;

	if (source == NULL)
		return UINT64CONST(0);
	source = statement_span(source, location, &len);

	/* scanner_isspace, not isspace: what the lexer skips */
	while (len > 0 && scanner_isspace(source[0]))
		source++, len--;
	while (len > 0 && scanner_isspace(source[len - 1]))
		len--;

	id = hash_bytes_extended((const unsigned char *) source, len, 0);
	return id != UINT64CONST(0) ? id : UINT64CONST(1);
}

/*
 * hash64_bytes(chunk, len, *h), reading the last partial word whole and
 * masking it instead of copying it byte by byte (a call to memcpy): a chunk
 * is readable up to the next multiple of 8 (statement_text.h).
 */
static void
hash_chunk(void *arg, const char *chunk, int len)
{
	uint64	   *h = (uint64 *) arg;
	uint64		x = *h ^ UINT64CONST(0x9e3779b97f4a7c15) ^ (uint64) len;
	int			left = len;

	for (; left >= 8; chunk += 8, left -= 8)
	{
		uint64		w;

		memcpy(&w, chunk, 8);
		x = (x ^ w) * UINT64CONST(0xbf58476d1ce4e5b9);
		x ^= x >> 31;
	}
	if (left > 0)
	{
		uint64		w;

		memcpy(&w, chunk, 8);
#ifdef WORDS_BIGENDIAN
		w &= ~UINT64CONST(0) << (8 * (8 - left));
#else
		w &= ~UINT64CONST(0) >> (8 * (8 - left));
#endif
		x = (x ^ w) * UINT64CONST(0xbf58476d1ce4e5b9);
		x ^= x >> 31;
	}
	*h = hash64_mix(x);
}

/*
 * The ids of the texts this backend saw last, by a hash of the raw text: a
 * client sends the same text again and again (sqlc's statements, a publish
 * to the same channel), and hashing it as it is costs a tenth of
 * normalizing it.  Direct-mapped; an id is a function of the text alone, so
 * nothing ever invalidates an entry.  (A different text with the same
 * 64-bit hash would take the other's id: as likely as two statements
 * sharing a core query id.)
 */
#define CH_ID_CACHE 256
#define CH_RAW_TEXT_SEED UINT64CONST(0x636f6465725f6863)

typedef struct IdCacheEntry
{
	uint64		raw_hash;
	uint64		id;				/* 0: empty */
} IdCacheEntry;

static IdCacheEntry id_cache[CH_ID_CACHE];

/*
 * The id of a planned statement: a hash of its normalized text.  Never 0.
 * No cache: for callers that keep their own (latency_names.c).
 */
uint64
ch_normalized_query_id_uncached(const char *source, int location, int len)
{
	uint64		id = 0;

	if (source == NULL)
		return UINT64CONST(0);
	source = statement_span(source, location, &len);
	statement_text_normalize(source, len, hash_chunk, &id);
	return id != UINT64CONST(0) ? id : UINT64CONST(1);
}

/* The same, through the cache of raw texts above. */
uint64
ch_normalized_query_id(const char *source, int location, int len)
{
	uint64		id;
	uint64		raw_hash;
	IdCacheEntry *e;
	const char *span;
	int			span_len = len;

	if (source == NULL)
		return UINT64CONST(0);
	span = statement_span(source, location, &span_len);
	raw_hash = hash64_key(span, span_len, CH_RAW_TEXT_SEED);
	e = &id_cache[raw_hash % CH_ID_CACHE];
	if (e->id != UINT64CONST(0) && e->raw_hash == raw_hash)
		return e->id;

	id = ch_normalized_query_id_uncached(source, location, len);
	e->raw_hash = raw_hash;
	e->id = id;
	return id;
}

/* _PG_init: statements are to have ids (nothing to install: the ids are
 * computed where a statement is timed, latency_timing.c). */
void
ch_text_query_id_request(void)
{
	requested = true;
}

/*
 * coder_health.query_id(statement text): the id under which coder_health
 * files a statement, so that a statement from a log or from Coder's source
 * can be found in the views.  The statement is parsed and analyzed as a
 * PREPARE without parameter types would, and nothing else happens to it.
 */
Datum
coder_health_query_id(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *raw = pg_parse_query(sql);
	RawStmt    *stmt;
	Query	   *query;
	Oid		   *types = NULL;
	int			ntypes = 0;
	uint64		id;

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coder_health.query_id takes one statement, not %d",
						list_length(raw)),
				 errhint("Pass the statements of a multi-statement string one at a time.")));
	if (!requested)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coder_health is not loaded"),
				 errhint("Add coder_health to shared_preload_libraries and restart PostgreSQL.")));

	stmt = linitial_node(RawStmt, raw);
	query = compat_parse_analyze_varparams(stmt, sql, &types, &ntypes);
	if ((uint64) query->queryId != UINT64CONST(0))
		id = (uint64) query->queryId;
	else if (query->utilityStmt != NULL)
		id = ch_text_query_id(sql, stmt->stmt_location, stmt->stmt_len);
	else
		id = ch_normalized_query_id(sql, query->stmt_location, query->stmt_len);
	PG_RETURN_INT64((int64) id);
}
