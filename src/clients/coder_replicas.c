/*-------------------------------------------------------------------------
 *
 * coder_replicas.c
 *	  coder_health.coder_replicas(): Coder's own record of its replicas
 *	  (public.replicas), read without running anybody's code.
 *
 * The table belongs to another role (Coder's), and the schema it lives in
 * is one where other roles may be able to create objects.  Reading it with
 * SQL would run whatever is planted there with the reader's rights: a view
 * calling a function, a row-level security policy, a column type's output
 * function, an operator.  The readers are privileged (superusers, the
 * monitoring role), so that would be a privilege escalation.
 *
 * So the table is read the way VACUUM or ANALYZE read a heap, not the way
 * a query does: it is accepted only when it is an ordinary heap table whose
 * columns have exactly the built-in types Coder gives them, and then its
 * tuples are read with a heap scan under the statement's snapshot.  Built-in
 * type input/output and detoasting are the only code that runs; no view,
 * function, operator, policy or trigger is ever looked at.
 *
 * What stays true to SQL's rules:
 *	- the reader needs SELECT on the table (or on each column read); without
 *	  it there are no rows, not an error;
 *	- when row-level security applies to the reader, the table is not read
 *	  at all (filtering by policies would mean running them); roles that
 *	  bypass it (superusers, the owner, BYPASSRLS) see every row, as in SQL;
 *	- the lock is AccessShareLock, taken only if it is free at once, so an
 *	  ALTER TABLE in progress never makes a monitoring read wait.
 *
 * Anything unexpected (no table, another shape, another access method, a
 * lock not free) gives no rows; the last row (replica_id NULL, source_ok
 * true) says the table was read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "core/srf.h"

PG_FUNCTION_INFO_V1(coder_health_coder_replicas);

/* Where Coder keeps the table: its migrations create it unqualified, in
 * the first schema of its search_path, which is public. */
#define CODER_SCHEMA "public"
#define CODER_REPLICAS "replicas"

/* The columns read, with the exact type Coder's migrations give them. */
typedef enum ReplicaColumn
{
	RC_ID,
	RC_HOSTNAME,
	RC_RELAY_ADDRESS,
	RC_REGION_ID,
	RC_VERSION,
	RC_DATABASE_LATENCY,
	RC_UPDATED_AT,
	RC_STOPPED_AT,				/* optional: older Coder versions lack it */
	RC_COUNT
} ReplicaColumn;

static const struct
{
	const char *name;
	Oid			type;
	bool		required;
}			replica_columns[RC_COUNT] =
{
	[RC_ID] = {"id", UUIDOID, true},
	[RC_HOSTNAME] = {"hostname", TEXTOID, true},
	[RC_RELAY_ADDRESS] = {"relay_address", TEXTOID, true},
	[RC_REGION_ID] = {"region_id", INT4OID, true},
	[RC_VERSION] = {"version", TEXTOID, true},
	[RC_DATABASE_LATENCY] = {"database_latency", INT4OID, true},
	[RC_UPDATED_AT] = {"updated_at", TIMESTAMPTZOID, true},
	[RC_STOPPED_AT] = {"stopped_at", TIMESTAMPTZOID, false},
};

/*
 * The attribute number of every column (0: absent, allowed only for an
 * optional one).  False when a required column is missing or any column
 * has another type.
 */
static bool
find_columns(Relation rel, AttrNumber attnums[RC_COUNT])
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int c = 0; c < RC_COUNT; c++)
	{
		attnums[c] = 0;
		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (att->attisdropped ||
				strcmp(NameStr(att->attname), replica_columns[c].name) != 0)
				continue;
			if (att->atttypid != replica_columns[c].type)
				return false;
			attnums[c] = att->attnum;
			break;
		}
		if (attnums[c] == 0 && replica_columns[c].required)
			return false;
	}
	return true;
}

/* SELECT on the table, or on every column read, as SQL would require. */
static bool
may_select(Oid relid, const AttrNumber attnums[RC_COUNT])
{
	Oid			user = GetUserId();

	if (pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK)
		return true;
	for (int c = 0; c < RC_COUNT; c++)
		if (attnums[c] != 0 &&
			pg_attribute_aclcheck(relid, attnums[c], user, ACL_SELECT) != ACLCHECK_OK)
			return false;
	return true;
}

/*
 * The host of a relay address such as http://10.1.2.3:8080 or
 * http://[fd00::1]:8080, lower-cased; NULL when there is none.  Same result
 * as the regular expression 0.3.0 used:
 * ^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(\[[^]]*\]|[^/:]+), brackets trimmed.
 */
static char *
relay_host(const char *addr)
{
	const char *p = addr;
	const char *start;
	const char *end;

	/* an optional scheme */
	if (isalpha((unsigned char) *p))
	{
		const char *q = p + 1;

		while (isalnum((unsigned char) *q) || *q == '+' || *q == '.' || *q == '-')
			q++;
		if (strncmp(q, "://", 3) == 0)
			p = q + 3;
	}
	start = p;
	end = NULL;
	if (*p == '[')
	{
		const char *close = strchr(p, ']');

		if (close != NULL)
			end = close + 1;
	}
	if (end == NULL)
	{
		end = p;
		while (*end != '\0' && *end != '/' && *end != ':')
			end++;
		if (end == start)
			return NULL;
	}
	/* btrim(.., '[]') */
	while (start < end && (*start == '[' || *start == ']'))
		start++;
	while (end > start && (end[-1] == '[' || end[-1] == ']'))
		end--;
	return str_tolower(start, end - start, DEFAULT_COLLATION_OID);
}

/*
 * Open public.replicas if it is a table this role may read as described
 * above, locked in AccessShareLock; NULL otherwise.
 */
static Relation
open_replicas(AttrNumber attnums[RC_COUNT])
{
	Oid			nspid;
	Oid			relid;
	Relation	rel;

	nspid = get_namespace_oid(CODER_SCHEMA, true);
	if (!OidIsValid(nspid))
		return NULL;
	relid = get_relname_relid(CODER_REPLICAS, nspid);
	if (!OidIsValid(relid))
		return NULL;
	/* a cheap first look, before any lock: only tables */
	if (get_rel_relkind(relid) != RELKIND_RELATION)
		return NULL;
	if (!ConditionalLockRelationOid(relid, AccessShareLock))
		return NULL;
	/* dropped (or replaced) while we waited for nothing: look again */
	rel = try_relation_open(relid, NoLock);
	if (rel == NULL)
	{
		UnlockRelationOid(relid, AccessShareLock);
		return NULL;
	}
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rel->relnamespace != nspid ||
		strcmp(NameStr(rel->rd_rel->relname), CODER_REPLICAS) != 0 ||
		!find_columns(rel, attnums) ||
		!may_select(relid, attnums) ||
		check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
	{
		relation_close(rel, AccessShareLock);
		return NULL;
	}
	return rel;
}

Datum
coder_health_coder_replicas(PG_FUNCTION_ARGS)
{
#define CR_COLS 9
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	AttrNumber	attnums[RC_COUNT];
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[CR_COLS];
	bool		nulls[CR_COLS];

	store = ch_srf_begin(fcinfo, &tupdesc, CR_COLS);
	rel = open_replicas(attnums);
	if (rel == NULL)
		return (Datum) 0;

	snapshot = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() :
								GetTransactionSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		Datum		d;
		bool		isnull;
		char	   *s;

		CHECK_FOR_INTERRUPTS();
		memset(nulls, 0, sizeof(nulls));

		d = slot_getattr(slot, attnums[RC_ID], &isnull);
		if (isnull)
			nulls[0] = true;
		else
			values[0] = DirectFunctionCall1(uuid_out, d);
		if (!nulls[0])
			values[0] = CStringGetTextDatum(DatumGetCString(values[0]));

		d = slot_getattr(slot, attnums[RC_HOSTNAME], &isnull);
		nulls[1] = isnull;
		if (!isnull)
			values[1] = PointerGetDatum(DatumGetTextPCopy(d));

		d = slot_getattr(slot, attnums[RC_RELAY_ADDRESS], &isnull);
		s = isnull ? NULL : relay_host(TextDatumGetCString(d));
		nulls[2] = (s == NULL);
		if (s != NULL)
			values[2] = CStringGetTextDatum(s);

		d = slot_getattr(slot, attnums[RC_REGION_ID], &isnull);
		nulls[3] = isnull;
		values[3] = isnull ? (Datum) 0 : d;

		d = slot_getattr(slot, attnums[RC_VERSION], &isnull);
		nulls[4] = isnull;
		if (!isnull)
			values[4] = PointerGetDatum(DatumGetTextPCopy(d));

		d = slot_getattr(slot, attnums[RC_UPDATED_AT], &isnull);
		if (isnull || TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(d)))
			nulls[5] = true;
		else
			values[5] = Float8GetDatum((double) (now - DatumGetTimestampTz(d)) /
									   USECS_PER_SEC);

		d = slot_getattr(slot, attnums[RC_DATABASE_LATENCY], &isnull);
		nulls[6] = isnull;
		if (!isnull)
			values[6] = Float8GetDatum((double) DatumGetInt32(d) / 1000.0);

		if (attnums[RC_STOPPED_AT] != 0)
		{
			(void) slot_getattr(slot, attnums[RC_STOPPED_AT], &isnull);
			values[7] = BoolGetDatum(!isnull);
		}
		else
			values[7] = BoolGetDatum(false);

		nulls[8] = true;		/* source_ok: only on the last row */
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	/* the lock is kept to the end of the transaction, as a query's is */
	relation_close(rel, NoLock);

	/* the table was read */
	for (int i = 0; i < CR_COLS; i++)
		nulls[i] = true;
	nulls[8] = false;
	values[8] = BoolGetDatum(true);
	tuplestore_putvalues(store, tupdesc, values, nulls);
	return (Datum) 0;
}
