/*-------------------------------------------------------------------------
 *
 * srf.c
 *	  Materialize-mode set-returning functions (InitMaterializedSRF exists
 *	  only from 15 on, so this is the portable spelling of it).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"

#include "srf.h"

/*
 * Set up a tuplestore for the caller's result.  Checks that the SQL
 * declaration has as many columns as the C code fills, so that an install
 * script out of step with the library fails with a message, not garbage.
 */
Tuplestorestate *
ch_srf_begin(FunctionCallInfo fcinfo, TupleDesc *tupdesc, int expected_cols)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcontext;
	Tuplestorestate *store;
	TupleDesc	desc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (desc->natts != expected_cols)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("coder_health function returns %d columns, the library expects %d",
						desc->natts, expected_cols),
				 errhint("Run ALTER EXTENSION coder_health UPDATE so the SQL objects match the loaded library.")));

	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	desc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcontext);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = desc;
	*tupdesc = desc;
	return store;
}
