/*-------------------------------------------------------------------------
 *
 * latency_settings.c
 *	  The settings of statement latency: which statements are timed, how
 *	  many are kept apart, what is exported, and sqlc query names.
 *
 * Every setting has a range and, where it is a duration or a size, a unit;
 * the ones that size shared memory are PGC_POSTMASTER.  The settings every
 * feature shares (sample_interval, save_interval, window_step) are in
 * core/settings.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "latency_settings.h"

int			ch_track = CH_TRACK_TOP;
bool		ch_track_utility = true;
bool		ch_track_monitoring = false;
bool		ch_include_errors = true;
int			ch_max_statements = 5000;
int			ch_max_clients = 256;
int			ch_export_top_statements = 50;
int			ch_export_top_queries = 100;
bool		ch_query_names = true;

static const struct config_enum_entry track_options[] = {
	{"none", CH_TRACK_NONE, false},
	{"top", CH_TRACK_TOP, false},
	{"all", CH_TRACK_ALL, false},
	{NULL, 0, false}
};

static void define_query_name_settings(void);

/* Statement latency's settings (module latency's define_settings). */
void
ch_define_latency_settings(void)
{
	define_query_name_settings();

	DefineCustomEnumVariable("coder_health.track",
							 "Which statements get latency statistics.",
							 "top: statements sent by clients; all: also statements "
							 "run inside functions; none: nothing.",
							 &ch_track,
							 CH_TRACK_TOP, track_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("coder_health.track_utility",
							 "Whether utility statements (DDL, COPY, COMMIT ...) are timed too.",
							 NULL,
							 &ch_track_utility,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("coder_health.track_monitoring",
							 "Whether coder_health's own reads and the monitoring role's statements are timed too.",
							 "Off: a statement that reads coder_health (a view or function of "
							 "the extension) or runs as a member of pg_monitor (not a "
							 "superuser) is not timed, so a DBA's or an exporter's reads never "
							 "count against Coder's latency and error rate.",
							 &ch_track_monitoring,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("coder_health.include_errors",
							 "Whether failed statements' time to failure goes into the latency distribution.",
							 "Failed statements (errors, cancels, statement_timeout) are always "
							 "counted in errors; with this on, the time the caller waited for "
							 "them also counts as a latency sample.",
							 &ch_include_errors,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("coder_health.max_statements",
							"How many distinct statements are tracked.",
							"Past 90% the collector evicts the least used. Each reserves "
							"about 3.9 kB of shared memory with all its windows and its text.",
							&ch_max_statements,
							5000, 100, 100000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("coder_health.max_clients",
							"How many distinct (database, client address) pairs get their own latency aggregate.",
							"A Coder Server is one client address.",
							&ch_max_clients,
							256, 16, 10000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("coder_health.export_top_statements",
							"How many statements (by total time) coder_health.latency_buckets exports.",
							"Keeps Prometheus label cardinality bounded.",
							&ch_export_top_statements,
							50, 0, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/* sqlc query names (part of module latency). */
static void
define_query_name_settings(void)
{
	DefineCustomBoolVariable("coder_health.query_names",
							 "Whether statements get the name sqlc gives them (\"-- name: X :one\").",
							 "The name is read from a statement's own text once per session "
							 "and statement, never per execution.",
							 &ch_query_names,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("coder_health.export_top_queries",
							"How many query names (by total time) coder_health.latency_buckets exports.",
							"Keeps Prometheus label cardinality bounded.",
							&ch_export_top_queries,
							100, 0, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}
