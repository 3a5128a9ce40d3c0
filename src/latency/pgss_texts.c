/*-------------------------------------------------------------------------
 *
 * pgss_texts.c
 *	  coder_health.statement_texts(): statement texts from
 *	  pg_stat_statements, called by its function's OID.
 *
 * The function is the one that belongs to the pg_stat_statements extension
 * (pg_extension -> pg_depend), not whatever the name pg_stat_statements
 * resolves to: a role allowed to create functions in the extension's schema
 * (public, often) could otherwise add an overload such as
 * pg_stat_statements(showtext boolean, x int DEFAULT 0) and make every call
 * ambiguous, or a look-alike in an earlier schema of the search_path.  The
 * function found must be the C function pg_stat_statements(boolean)
 * returning a set; it is called through fmgr in materialize mode, so no
 * name is resolved and no SQL runs.  pg_stat_statements applies its own
 * privilege rule to the texts (another role's text is shown only with
 * pg_read_all_stats); EXECUTE on it is checked as a call would.
 *
 * No pg_stat_statements in this database, one not preloaded (it would
 * raise an error), or one of an unexpected shape: no rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "core/srf.h"

PG_FUNCTION_INFO_V1(coder_health_statement_texts);

#define PGSS_NAME "pg_stat_statements"

/* Whether pg_stat_statements is in shared_preload_libraries (it must be,
 * or its functions raise an error; the setting cannot change until a
 * restart, so its value is what was loaded). */
static bool
pgss_preloaded(void)
{
	const char *setting = GetConfigOption("shared_preload_libraries", true, false);
	char	   *copy;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (setting == NULL)
		return false;
	copy = pstrdup(setting);
	if (!SplitDirectoriesString(copy, ',', &names))
		return false;
	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);
		const char *base = strrchr(name, '/');
		size_t		len;

		base = base ? base + 1 : name;
		len = strlen(base);
		if (len >= 3 && strcmp(base + len - 3, ".so") == 0)
			len -= 3;
		if (len == strlen(PGSS_NAME) && strncmp(base, PGSS_NAME, len) == 0)
			found = true;
	}
	return found;
}

/*
 * The OID of pg_stat_statements(boolean), the C set-returning function
 * that is a member of the extension pg_stat_statements; InvalidOid when
 * there is none.
 */
static Oid
pgss_function(void)
{
	Oid			extoid = get_extension_oid(PGSS_NAME, true);
	Relation	depend;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			result = InvalidOid;

	if (!OidIsValid(extoid))
		return InvalidOid;

	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(ExtensionRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(extoid));
	scan = systable_beginscan(depend, DependReferenceIndexId, true, NULL, 2, key);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
		HeapTuple	proctup;
		Form_pg_proc proc;

		if (dep->deptype != DEPENDENCY_EXTENSION ||
			dep->classid != ProcedureRelationId)
			continue;
		proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(dep->objid));
		if (!HeapTupleIsValid(proctup))
			continue;
		proc = (Form_pg_proc) GETSTRUCT(proctup);
		if (strcmp(NameStr(proc->proname), PGSS_NAME) == 0 &&
			proc->pronargs == 1 &&
			proc->proargtypes.values[0] == BOOLOID &&
			proc->proretset &&
			proc->prolang == ClanguageId)
			result = dep->objid;
		ReleaseSysCache(proctup);
		if (OidIsValid(result))
			break;
	}
	systable_endscan(scan);
	table_close(depend, AccessShareLock);
	return result;
}

/* The column of the result named name, of type type; 0 if there is none. */
static AttrNumber
result_column(TupleDesc desc, const char *name, Oid type)
{
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->atttypid == type ? att->attnum : 0;
	}
	return 0;
}

Datum
coder_health_statement_texts(PG_FUNCTION_ARGS)
{
#define ST_COLS 5
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	Oid			fnoid;
	FmgrInfo	flinfo;
	ReturnSetInfo rsinfo;
	ExprContext *econtext;
	TupleTableSlot *slot;
	AttrNumber	col[ST_COLS];

	LOCAL_FCINFO(call, 1);

	store = ch_srf_begin(fcinfo, &tupdesc, ST_COLS);
	if (!pgss_preloaded())
		return (Datum) 0;
	fnoid = pgss_function();
	if (!OidIsValid(fnoid) ||
		compat_proc_aclcheck(fnoid, GetUserId()) != ACLCHECK_OK)
		return (Datum) 0;

	/* call it as the executor calls a function in FROM, by OID */
	fmgr_info(fnoid, &flinfo);
	econtext = CreateStandaloneExprContext();
	memset(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = econtext;
	rsinfo.allowedModes = (int) SFRM_Materialize;
	rsinfo.returnMode = SFRM_ValuePerCall;
	rsinfo.isDone = ExprSingleResult;
	InitFunctionCallInfoData(*call, &flinfo, 1, InvalidOid, NULL,
							 (Node *) &rsinfo);
	call->args[0].value = BoolGetDatum(true);
	call->args[0].isnull = false;
	(void) FunctionCallInvoke(call);

	if (rsinfo.returnMode != SFRM_Materialize || rsinfo.setResult == NULL ||
		rsinfo.setDesc == NULL)
	{
		FreeExprContext(econtext, true);
		return (Datum) 0;
	}

	col[0] = result_column(rsinfo.setDesc, "dbid", OIDOID);
	col[1] = result_column(rsinfo.setDesc, "userid", OIDOID);
	col[2] = result_column(rsinfo.setDesc, "queryid", INT8OID);
	/* before pg_stat_statements 1.9 (PostgreSQL 13) there is no toplevel:
	 * one entry covers top-level and nested executions (NULL matches both) */
	col[3] = result_column(rsinfo.setDesc, "toplevel", BOOLOID);
	col[4] = result_column(rsinfo.setDesc, "query", TEXTOID);
	if (col[0] == 0 || col[1] == 0 || col[2] == 0 || col[4] == 0)
	{
		tuplestore_end(rsinfo.setResult);
		FreeExprContext(econtext, true);
		return (Datum) 0;
	}

	slot = MakeSingleTupleTableSlot(rsinfo.setDesc, &TTSOpsMinimalTuple);
	while (tuplestore_gettupleslot(rsinfo.setResult, true, false, slot))
	{
		Datum		values[ST_COLS];
		bool		nulls[ST_COLS];

		for (int i = 0; i < ST_COLS; i++)
		{
			if (col[i] == 0)
			{
				values[i] = (Datum) 0;
				nulls[i] = true;
			}
			else
				values[i] = slot_getattr(slot, col[i], &nulls[i]);
		}
		tuplestore_putvalues(store, tupdesc, values, nulls);
		ExecClearTuple(slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(rsinfo.setResult);
	FreeExprContext(econtext, true);
	return (Datum) 0;
}
