/*-------------------------------------------------------------------------
 *
 * latency_sql.c
 *	  SQL functions that read statement latency: per statement, per
 *	  database and client, single quantiles, a text chart, Prometheus
 *	  histogram rows, and reset.
 *
 * Readers take the shared lock only while they copy sketches out; folding
 * backends never wait for them (they only add under the same shared lock),
 * and the collector's exclusive work waits at most one read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "latency.h"
#include "core/privacy.h"
#include "core/srf.h"

PG_FUNCTION_INFO_V1(coder_health_statement_slot_bytes);
PG_FUNCTION_INFO_V1(coder_health_statement_latency);
PG_FUNCTION_INFO_V1(coder_health_statement_latency_with_text);
PG_FUNCTION_INFO_V1(coder_health_latency);
PG_FUNCTION_INFO_V1(coder_health_statement_quantile);
PG_FUNCTION_INFO_V1(coder_health_latency_chart);
PG_FUNCTION_INFO_V1(coder_health_latency_buckets);
PG_FUNCTION_INFO_V1(coder_health_reset);
PG_FUNCTION_INFO_V1(coder_health_reset_statement);
PG_FUNCTION_INFO_V1(coder_health_flush);
PG_FUNCTION_INFO_V1(coder_health_query_latency);

static const double report_qs[] = {0.5, 0.9, 0.95, 0.99, 0.999};

/* (PostgreSQL 16+ defines an integer NS_PER_MS in instr_time.h) */
#define CH_NS_PER_MS 1000000.0

/* Nanoseconds as milliseconds, to 0.1 us: finer digits are noise. */
static inline double
ns_to_ms(double ns)
{
	return rint(ns / 100.0) / 10000.0;
}

/* A ms value, or NULL when there is none (NaN: no samples). */
static void
put_ms(Datum *values, bool *nulls, int i, double ns)
{
	if (isnan(ns))
		nulls[i] = true;
	else
		values[i] = Float8GetDatum(ns_to_ms(ns));
}

static void
put_extremes(Datum *values, bool *nulls, int i, const sketch_t *sk, bool min)
{
	if (sk->count == 0 || sk->min_ns > sk->max_ns)
		nulls[i] = true;
	else
		values[i] = Float8GetDatum(ns_to_ms((double) (min ? sk->min_ns : sk->max_ns)));
}

/*
 * An entry's text (constants already out), as pg_stat_statements shows
 * another role's: "<insufficient privilege>" unless visible.  NULL when
 * no text is known yet.  A text kept in another database's encoding is
 * shown with its non-ASCII bytes as '?' (never converted: conversion can
 * fail).  Lock held.
 */
static void
put_text(Datum *values, bool *nulls, int i, ChStmtEntry *entry, bool visible)
{
	int			encoding;
	char		text[CH_TEXT_LEN];

	if (!visible)
	{
		values[i] = CStringGetTextDatum("<insufficient privilege>");
		return;
	}
	if (!ch_entry_text(entry, text, &encoding))
	{
		nulls[i] = true;
		return;
	}
	if (encoding != GetDatabaseEncoding())
	{
		for (char *p = text; *p != '\0'; p++)
			if (IS_HIGHBIT_SET(*p))
				*p = '?';
		values[i] = CStringGetTextDatum(text);
	}
	else
		values[i] = CStringGetTextDatum(text);
}

/* ------------------------------------------------------------------------
 * coder_health.statement_latency
 * ------------------------------------------------------------------------
 */
static Datum statement_latency(FunctionCallInfo fcinfo, bool with_text);

/* 0.1.0 .. 0.3.0's declaration (no query column), until ALTER EXTENSION */
Datum
coder_health_statement_latency(PG_FUNCTION_ARGS)
{
	return statement_latency(fcinfo, false);
}

Datum
coder_health_statement_latency_with_text(PG_FUNCTION_ARGS)
{
	return statement_latency(fcinfo, true);
}

static Datum
statement_latency(FunctionCallInfo fcinfo, bool with_text)
{
#define SL_COLS 25
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;
	ChReadout  *total;
	ChReadout  *recent;
	bool		sees_all = ch_sees_all_roles();

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, with_text ? SL_COLS : SL_COLS - 1);
	total = ch_readout_alloc();
	recent = ch_readout_alloc();

	LWLockAcquire(ch_shared->lock, LW_SHARED);
	hash_seq_init(&hs, ch_statement_table());
	while ((entry = hash_seq_search(&hs)) != NULL)
	{
		Datum		values[SL_COLS];
		bool		nulls[SL_COLS];
		double		q[lengthof(report_qs)];
		int			i = 0;
		bool		visible = ch_may_see_role(sees_all, entry->key.userid);

		memset(nulls, 0, sizeof(nulls));
		ch_readout_reset(total);
		ch_readout_reset(recent);
		ch_read_sketch(&entry->total, total);
		ch_read_windows(entry->window, CH_STMT_WINDOWS, CH_RECENT_STEPS,
						recent, NULL);

		values[i++] = ObjectIdGetDatum(entry->key.dbid);
		values[i++] = ObjectIdGetDatum(entry->key.userid);
		/* another role's statement: its numbers, not its identity */
		if (visible)
			values[i++] = Int64GetDatum((int64) entry->key.queryid);
		else
			nulls[i++] = true;
		values[i++] = BoolGetDatum(entry->key.toplevel);
		if (visible && entry->name[0] != '\0')
			values[i++] = CStringGetTextDatum(entry->name);
		else
			nulls[i++] = true;
		if (with_text)
			put_text(values, nulls, i++, entry, visible);
		values[i++] = Int64GetDatum((int64) total->calls);
		values[i++] = Int64GetDatum((int64) total->errors);
		values[i++] = Float8GetDatum(ns_to_ms((double) total->sk.sum_ns));
		put_ms(values, nulls, i++, total->sk.count ?
			   (double) total->sk.sum_ns / total->sk.count : NAN);
		put_extremes(values, nulls, i++, &total->sk, true);
		ch_readout_quantiles(total, report_qs, lengthof(report_qs), q);
		for (int k = 0; k < lengthof(report_qs); k++)
			put_ms(values, nulls, i++, q[k]);
		put_extremes(values, nulls, i++, &total->sk, false);

		values[i++] = Int64GetDatum((int64) recent->calls);
		values[i++] = Int64GetDatum((int64) recent->errors);
		ch_readout_quantiles(recent, report_qs, lengthof(report_qs), q);
		put_ms(values, nulls, i++, q[0]);	/* p50 */
		put_ms(values, nulls, i++, q[2]);	/* p95 */
		put_ms(values, nulls, i++, q[3]);	/* p99 */
		put_extremes(values, nulls, i++, &recent->sk, false);

		values[i++] = TimestampTzGetDatum(entry->first_seen);
		values[i++] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&entry->last_seen));
		Assert(i == (with_text ? SL_COLS : SL_COLS - 1));
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	LWLockRelease(ch_shared->lock);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * coder_health.latency: per database and per client, by window
 * ------------------------------------------------------------------------
 */
static const struct
{
	const char *name;
	int			steps;			/* complete steps before the current; -1: total */
}			scope_windows[] =
{
	/* named for what they cover: N complete steps plus the current one,
	 * so at the default 60 s step "1-2 min" holds 60 to 120 s */
	{"1-2 min", 1},
	{"5-6 min", 5},
	{"15-16 min", 15},
	{"total", -1}
};

Datum
coder_health_latency(PG_FUNCTION_ARGS)
{
#define L_COLS 14
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ChReadout  *r;
	TimestampTz now = GetCurrentTimestamp();

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, L_COLS);
	r = ch_readout_alloc();

	LWLockAcquire(ch_shared->lock, LW_SHARED);
	for (int s = 0; s < ch_latency->max_scopes; s++)
	{
		ChScope    *scope = &ch_scopes[s];

		if (scope->kind == CH_SCOPE_FREE)
			continue;
		for (int w = 0; w < lengthof(scope_windows); w++)
		{
			Datum		values[L_COLS];
			bool		nulls[L_COLS];
			double		q[lengthof(report_qs)];
			TimestampTz since;
			double		span_s;
			int			i = 0;

			memset(nulls, 0, sizeof(nulls));
			ch_readout_reset(r);
			if (scope_windows[w].steps < 0)
			{
				ch_read_sketch(&scope->total, r);
				since = ch_latency->reset_time;
			}
			else
				ch_read_windows(scope->window, CH_SCOPE_WINDOWS,
								scope_windows[w].steps, r, &since);
			span_s = (double) (now - since) / USECS_PER_SEC;

			values[i++] = CStringGetTextDatum(scope->kind == CH_SCOPE_DATABASE ?
											  "database" : "client");
			values[i++] = ObjectIdGetDatum(scope->dbid);
			if (scope->kind == CH_SCOPE_CLIENT)
				values[i++] = CStringGetTextDatum(scope->client_addr);
			else
				nulls[i++] = true;
			values[i++] = CStringGetTextDatum(scope_windows[w].name);
			values[i++] = Int64GetDatum((int64) r->calls);
			values[i++] = Int64GetDatum((int64) r->errors);
			values[i++] = Float8GetDatum(span_s > 0 ? r->calls / span_s : 0.0);
			ch_readout_quantiles(r, report_qs, lengthof(report_qs), q);
			for (int k = 0; k < lengthof(report_qs); k++)
				put_ms(values, nulls, i++, q[k]);
			put_extremes(values, nulls, i++, &r->sk, false);
			values[i++] = Float8GetDatum(span_s);
			Assert(i == L_COLS);
			tuplestore_putvalues(store, tupdesc, values, nulls);
		}
	}
	LWLockRelease(ch_shared->lock);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * One statement's distribution (all entries with a queryid, merged)
 * ------------------------------------------------------------------------
 */

/* Merge every entry of queryid into r; false when there is none. */
static bool
read_queryid(uint64 queryid, bool recent, ChReadout *r)
{
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;
	bool		found = false;

	ch_readout_reset(r);
	LWLockAcquire(ch_shared->lock, LW_SHARED);
	hash_seq_init(&hs, ch_statement_table());
	while ((entry = hash_seq_search(&hs)) != NULL)
	{
		if (entry->key.queryid != queryid)
			continue;
		found = true;
		if (recent)
			ch_read_windows(entry->window, CH_STMT_WINDOWS, CH_RECENT_STEPS,
							r, NULL);
		else
			ch_read_sketch(&entry->total, r);
	}
	LWLockRelease(ch_shared->lock);
	return found;
}

Datum
coder_health_statement_quantile(PG_FUNCTION_ARGS)
{
	uint64		queryid = (uint64) PG_GETARG_INT64(0);
	double		q = PG_GETARG_FLOAT8(1);
	bool		recent = PG_GETARG_BOOL(2);
	ChReadout  *r;
	double		v;

	ch_require_loaded();
	if (!(q >= 0.0 && q <= 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantile %g is out of range", q),
				 errhint("Pass a fraction between 0 and 1, for example 0.99 for p99.")));

	r = ch_readout_alloc();
	if (!read_queryid(queryid, recent, r))
		PG_RETURN_NULL();
	v = sketch_quantile(&r->sk, q);
	if (isnan(v))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(ns_to_ms(v));
}

/* Human-readable duration for chart labels. */
static char *
format_ns(double ns)
{
	if (ns < 1000.0)
		return psprintf("%.0f ns", ns);
	if (ns < 1000000.0)
		return psprintf("%.3g us", ns / 1000.0);
	if (ns < 1000000000.0)
		return psprintf("%.3g ms", ns / 1000000.0);
	return psprintf("%.3g s", ns / 1000000000.0);
}

/*
 * Text bars of one statement's distribution: ranges on a 1-2-5 log scale
 * from the fastest to the slowest execution.
 */
Datum
coder_health_latency_chart(PG_FUNCTION_ARGS)
{
#define C_COLS 5
#define CHART_WIDTH 40
	uint64		queryid = (uint64) PG_GETARG_INT64(0);
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ChReadout  *r;
	double		lo;
	uint64		counts[64] = {0};
	double		bounds[65];
	int			nranges = 0;
	uint64		peak = 0;
	int			first;
	int			b;

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, C_COLS);
	r = ch_readout_alloc();
	if (!read_queryid(queryid, false, r) || r->sk.count == 0)
		return (Datum) 0;

	/* 1-2-5 steps from below the minimum to above the maximum */
	lo = 100.0;					/* 100 ns */
	while (lo * 10.0 <= (double) r->sk.min_ns)
		lo *= 10.0;
	bounds[0] = lo;
	while (nranges < 64 && bounds[nranges] <= (double) r->sk.max_ns)
	{
		double		cur = bounds[nranges];
		double		mant = cur / pow(10.0, floor(log10(cur) + 1e-9));

		bounds[nranges + 1] = cur * (mant < 1.5 ? 2.0 : (mant < 3.0 ? 2.5 : 2.0));
		counts[nranges] = 0;
		nranges++;
	}
	for (b = 0; b < SKETCH_NBUCKETS; b++)
	{
		double		v;
		int			k;

		if (r->sk.bucket[b] == 0)
			continue;
		v = Max(Min(sketch_value(b), (double) r->sk.max_ns), (double) r->sk.min_ns);
		for (k = 0; k < nranges - 1 && v >= bounds[k + 1]; k++)
			;
		counts[k] += r->sk.bucket[b];
	}
	for (int k = 0; k < nranges; k++)
		peak = Max(peak, counts[k]);
	/* show from the first to the last non-empty range */
	while (nranges > 0 && counts[nranges - 1] == 0)
		nranges--;
	for (first = 0; first < nranges && counts[first] == 0; first++)
		;

	for (int k = first; k < nranges; k++)
	{
		Datum		values[C_COLS];
		bool		nulls[C_COLS] = {0};
		int			width = peak ? (int) ((counts[k] * CHART_WIDTH + peak - 1) / peak) : 0;
		StringInfoData bar;

		initStringInfo(&bar);
		for (int j = 0; j < width; j++)
			appendStringInfoString(&bar, "#");
		values[0] = CStringGetTextDatum(psprintf("%s - %s", format_ns(bounds[k]),
												 format_ns(bounds[k + 1])));
		values[1] = Float8GetDatum(bounds[k] / CH_NS_PER_MS);
		values[2] = Float8GetDatum(bounds[k + 1] / CH_NS_PER_MS);
		values[3] = Int64GetDatum((int64) counts[k]);
		values[4] = CStringGetTextDatum(bar.data);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * By sqlc query name: every entry with one name (other roles, other
 * queryids after a schema change) merged
 * ------------------------------------------------------------------------
 */
typedef struct ChNameKey
{
	Oid			dbid;
	char		name[QUERY_NAME_LEN];
} ChNameKey;

typedef struct ChNameGroup
{
	ChNameKey	key;			/* hash key: must be first */
	ChReadout  *total;
	ChReadout  *recent;			/* NULL unless asked for */
	int			nqueryids;
	int			maxqueryids;
	uint64	   *queryids;
} ChNameGroup;

/*
 * Group every named entry by (database, name).  Shared lock held.  The
 * names of other roles' statements are shown only to roles that see every
 * role's (privacy.h): for others those entries form one group per database
 * with the name "" (shown as NULL).
 */
static HTAB *
group_by_name(bool with_recent, bool sees_all)
{
	HASHCTL		info;
	HTAB	   *groups;
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ChNameKey);
	info.entrysize = sizeof(ChNameGroup);
	info.hcxt = CurrentMemoryContext;
	groups = hash_create("coder_health query names", 64, &info,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	hash_seq_init(&hs, ch_statement_table());
	while ((entry = hash_seq_search(&hs)) != NULL)
	{
		ChNameKey	key;
		ChNameGroup *g;
		bool		found;
		int			k;

		if (entry->name[0] == '\0')
			continue;
		memset(&key, 0, sizeof(key));
		key.dbid = entry->key.dbid;
		if (ch_may_see_role(sees_all, entry->key.userid))
			strlcpy(key.name, entry->name, QUERY_NAME_LEN);
		g = hash_search(groups, &key, HASH_ENTER, &found);
		if (!found)
		{
			g->total = ch_readout_alloc();
			ch_readout_reset(g->total);
			g->recent = NULL;
			if (with_recent)
			{
				g->recent = ch_readout_alloc();
				ch_readout_reset(g->recent);
			}
			g->nqueryids = 0;
			g->maxqueryids = 4;
			g->queryids = palloc(sizeof(uint64) * g->maxqueryids);
		}
		ch_read_sketch(&entry->total, g->total);
		if (with_recent)
			ch_read_windows(entry->window, CH_STMT_WINDOWS, CH_RECENT_STEPS,
							g->recent, NULL);
		for (k = 0; k < g->nqueryids; k++)
			if (g->queryids[k] == entry->key.queryid)
				break;
		if (k == g->nqueryids)
		{
			if (g->nqueryids == g->maxqueryids)
			{
				g->maxqueryids *= 2;
				g->queryids = repalloc(g->queryids, sizeof(uint64) * g->maxqueryids);
			}
			g->queryids[g->nqueryids++] = entry->key.queryid;
		}
	}
	return groups;
}

Datum
coder_health_query_latency(PG_FUNCTION_ARGS)
{
#define QL_COLS 18
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	HTAB	   *groups;
	HASH_SEQ_STATUS hs;
	ChNameGroup *g;
	bool		sees_all;

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, QL_COLS);

	sees_all = ch_sees_all_roles();
	LWLockAcquire(ch_shared->lock, LW_SHARED);
	groups = group_by_name(true, sees_all);
	LWLockRelease(ch_shared->lock);

	hash_seq_init(&hs, groups);
	while ((g = hash_seq_search(&hs)) != NULL)
	{
		Datum		values[QL_COLS];
		bool		nulls[QL_COLS];
		double		q[lengthof(report_qs)];
		sketch_t   *tot = &g->total->sk;
		int			i = 0;

		memset(nulls, 0, sizeof(nulls));
		values[i++] = ObjectIdGetDatum(g->key.dbid);
		if (g->key.name[0] != '\0')
			values[i++] = CStringGetTextDatum(g->key.name);
		else
			nulls[i++] = true;
		values[i++] = Int64GetDatum((int64) g->total->calls);
		values[i++] = Int64GetDatum((int64) g->total->errors);
		values[i++] = Float8GetDatum(ns_to_ms((double) tot->sum_ns));
		put_ms(values, nulls, i++, tot->count ? (double) tot->sum_ns / tot->count : NAN);
		put_extremes(values, nulls, i++, tot, true);
		ch_readout_quantiles(g->total, report_qs, lengthof(report_qs), q);
		for (int k = 0; k < lengthof(report_qs); k++)
			put_ms(values, nulls, i++, q[k]);
		put_extremes(values, nulls, i++, tot, false);
		values[i++] = Int64GetDatum((int64) g->recent->calls);
		values[i++] = Int64GetDatum((int64) g->recent->errors);
		ch_readout_quantiles(g->recent, report_qs, lengthof(report_qs), q);
		put_ms(values, nulls, i++, q[0]);
		put_ms(values, nulls, i++, q[3]);
		values[i++] = Int32GetDatum(g->nqueryids);
		Assert(i == QL_COLS);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * coder_health.latency_buckets: Prometheus histograms
 * ------------------------------------------------------------------------
 */

/* Fixed Prometheus-style upper bounds, seconds: 100 us .. 60 s. */
static const double prom_le[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

static void
put_histogram(Tuplestorestate *store, TupleDesc tupdesc, const char *scope,
			  Oid dbid, const char *client_addr, uint64 queryid,
			  bool has_queryid, const char *query_name, ChReadout *r)
{
	Datum		values[9];
	bool		nulls[9] = {0};
	Datum		le[lengthof(prom_le)];
	Datum		bucket[lengthof(prom_le)];

	for (int k = 0; k < lengthof(prom_le); k++)
	{
		le[k] = Float8GetDatum(prom_le[k]);
		bucket[k] = Int64GetDatum((int64) sketch_count_le(&r->sk, prom_le[k] * 1e9));
	}
	values[0] = CStringGetTextDatum(scope);
	values[1] = ObjectIdGetDatum(dbid);
	if (client_addr)
		values[2] = CStringGetTextDatum(client_addr);
	else
		nulls[2] = true;
	if (has_queryid)
		values[3] = Int64GetDatum((int64) queryid);
	else
		nulls[3] = true;
	values[4] = PointerGetDatum(construct_array(le, lengthof(prom_le), FLOAT8OID,
												sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[5] = PointerGetDatum(construct_array(bucket, lengthof(prom_le), INT8OID,
												sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[6] = Float8GetDatum((double) r->sk.sum_ns / 1e9);
	values[7] = Int64GetDatum((int64) r->sk.count);
	if (query_name && query_name[0] != '\0')
		values[8] = CStringGetTextDatum(query_name);
	else
		nulls[8] = true;
	tuplestore_putvalues(store, tupdesc, values, nulls);
}

typedef struct ChTopEntry
{
	ChStmtEntry *entry;
	uint64		sum_ns;
} ChTopEntry;

static int
top_order(const void *a, const void *b)
{
	const ChTopEntry *x = a;
	const ChTopEntry *y = b;

	if (x->sum_ns != y->sum_ns)
		return x->sum_ns > y->sum_ns ? -1 : 1;
	return 0;
}

static int
group_order(const void *a, const void *b)
{
	const ChNameGroup *x = *(ChNameGroup *const *) a;
	const ChNameGroup *y = *(ChNameGroup *const *) b;

	if (x->total->sk.sum_ns != y->total->sk.sum_ns)
		return x->total->sk.sum_ns > y->total->sk.sum_ns ? -1 : 1;
	return strcmp(x->key.name, y->key.name);
}

Datum
coder_health_latency_buckets(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ChReadout  *r;
	HASH_SEQ_STATUS hs;
	ChStmtEntry *entry;
	ChTopEntry *top;
	long		n = 0;
	long		cap;
	bool		sees_all = ch_sees_all_roles();

	ch_require_loaded();
	store = ch_srf_begin(fcinfo, &tupdesc, 9);
	r = ch_readout_alloc();

	LWLockAcquire(ch_shared->lock, LW_SHARED);
	for (int s = 0; s < ch_latency->max_scopes; s++)
	{
		ChScope    *scope = &ch_scopes[s];

		if (scope->kind == CH_SCOPE_FREE)
			continue;
		ch_readout_reset(r);
		ch_read_sketch(&scope->total, r);
		put_histogram(store, tupdesc,
					  scope->kind == CH_SCOPE_DATABASE ? "database" : "client",
					  scope->dbid,
					  scope->kind == CH_SCOPE_CLIENT ? scope->client_addr : NULL,
					  0, false, NULL, r);
	}

	cap = Max(ch_statements_tracked(), 1);
	top = palloc(sizeof(ChTopEntry) * cap);
	hash_seq_init(&hs, ch_statement_table());
	while ((entry = hash_seq_search(&hs)) != NULL)
	{
		if (n >= cap)
		{
			hash_seq_term(&hs);
			break;
		}
		top[n].entry = entry;
		top[n].sum_ns = pg_atomic_read_u64(&entry->total.head.sum_ns);
		n++;
	}
	qsort(top, n, sizeof(ChTopEntry), top_order);
	for (long k = 0; k < n && k < ch_export_top_statements; k++)
	{
		bool		visible = ch_may_see_role(sees_all, top[k].entry->key.userid);

		ch_readout_reset(r);
		ch_read_sketch(&top[k].entry->total, r);
		put_histogram(store, tupdesc, "statement", top[k].entry->key.dbid, NULL,
					  top[k].entry->key.queryid, visible,
					  visible ? top[k].entry->name : NULL, r);
	}

	/* per sqlc name, the top export_top_queries by total time */
	if (ch_export_top_queries > 0)
	{
		HTAB	   *groups = group_by_name(false, sees_all);
		long		ngroups = hash_get_num_entries(groups);
		ChNameGroup **byname = palloc(sizeof(ChNameGroup *) * Max(ngroups, 1));
		HASH_SEQ_STATUS gs;
		ChNameGroup *g;
		long		m = 0;

		hash_seq_init(&gs, groups);
		while ((g = hash_seq_search(&gs)) != NULL)
			byname[m++] = g;
		qsort(byname, m, sizeof(ChNameGroup *), group_order);
		for (long k = 0; k < m && k < ch_export_top_queries; k++)
			put_histogram(store, tupdesc, "query", byname[k]->key.dbid, NULL, 0,
						  false, byname[k]->key.name, byname[k]->total);
	}
	LWLockRelease(ch_shared->lock);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * Reset
 * ------------------------------------------------------------------------
 */
Datum
coder_health_reset(PG_FUNCTION_ARGS)
{
	ch_require_loaded();
	ch_latency_reset(true, 0);
	PG_RETURN_VOID();
}

Datum
coder_health_reset_statement(PG_FUNCTION_ARGS)
{
	ch_require_loaded();
	ch_latency_reset(false, (uint64) PG_GETARG_INT64(0));
	PG_RETURN_VOID();
}

/* Make this session's finished statements visible in the views now. */
Datum
coder_health_flush(PG_FUNCTION_ARGS)
{
	ch_require_loaded();
	ch_flush_my_samples();
	PG_RETURN_VOID();
}

/* coder_health.statement_slot_bytes(): what one max_statements slot reserves */
Datum
coder_health_statement_slot_bytes(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) ch_statement_slot_bytes());
}
