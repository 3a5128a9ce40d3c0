/*-------------------------------------------------------------------------
 *
 * text_query_id.c
 *	  Query ids on PostgreSQL 13, where core computes none.
 *
 * From 14 on core computes a query id for every statement once an extension
 * asks for it (EnableQueryId).  On 13 only pg_stat_statements computes one,
 * and only when it is loaded; statement latency is keyed by query id and
 * skips statements without one, so without a fallback nothing would be
 * tracked.  The fallback is a hash of the statement's own text: the part of
 * the query string the statement spans (stmt_location, stmt_len), without
 * surrounding whitespace, hashed as pg_stat_statements 13 (and core 14/15)
 * hash utility statements, so for those the ids are the same.
 *
 * What that means for users of 13 (docs/versions.md):
 * - the same text is the same statement: what Coder sends, parameterized
 *   statements over the extended protocol ($1, $2 ...), group exactly as on
 *   14+;
 * - statements that differ only in constants (`WHERE id = 1`, `= 2`) are
 *   different statements, where 14+ normalizes the constants away;
 * - an id someone else set is kept: with pg_stat_statements loaded its
 *   (normalizing) ids are used, and coder_health's rows match its rows.
 *
 * The post_parse_analyze_hook is installed only after every preloaded
 * library has run its _PG_init (from shmem_startup_hook), so it is the
 * outermost one: it lets pg_stat_statements and the like set their ids first
 * and only fills in a zero.  (Installed from _PG_init before
 * pg_stat_statements', it would run inside that hook, which asserts that it
 * finds no id yet.)
 *
 * Utility statements carry no query id into their PlannedStmt on 13, so
 * compat_utility_query_id() hashes their text at ProcessUtility instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "compat.h"

#ifndef CH_HAVE_CORE_QUERY_ID

#include "common/hashfn.h"
#include "parser/analyze.h"
#include "parser/scansup.h"
#include "storage/ipc.h"

static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/*
 * The id of the statement at source[location .. location + len): len <= 0
 * means "to the end", location < 0 "unknown, the whole string" (the rules of
 * RawStmt.stmt_location/stmt_len).  Never 0, which means "no id".
 */
uint64
ch_text_query_id(const char *source, int location, int len)
{
	uint64		id;

	if (source == NULL)
		return UINT64CONST(0);
	if (location >= 0)
	{
		source += location;
		if (len <= 0)
			len = (int) strlen(source);
	}
	else
		len = (int) strlen(source);

	/* scanner_isspace, not isspace: what the lexer skips */
	while (len > 0 && scanner_isspace(source[0]))
		source++, len--;
	while (len > 0 && scanner_isspace(source[len - 1]))
		len--;

	id = DatumGetUInt64(hash_any_extended((const unsigned char *) source,
										  len, 0));
	return id != UINT64CONST(0) ? id : UINT64CONST(1);
}

static void
text_query_id_post_parse_analyze(ParseState *pstate, Query *query)
{
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query);

	if (query->queryId == UINT64CONST(0) && query->utilityStmt == NULL)
		query->queryId = ch_text_query_id(pstate->p_sourcetext,
										  query->stmt_location,
										  query->stmt_len);
}

/*
 * After every preloaded library's _PG_init: shmem_startup_hook runs then in
 * the postmaster, again after a crash restart, and in each backend under
 * EXEC_BACKEND; the hook is installed once per process.
 */
static void
text_query_id_install(void)
{
	static bool installed = false;

	if (prev_shmem_startup)
		prev_shmem_startup();
	if (installed)
		return;
	installed = true;
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = text_query_id_post_parse_analyze;
}

/* _PG_init: query ids are wanted (what EnableQueryId is on 14+). */
void
ch_text_query_id_request(void)
{
	static bool requested = false;

	if (requested)
		return;
	requested = true;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = text_query_id_install;
}

#endif							/* !CH_HAVE_CORE_QUERY_ID */
