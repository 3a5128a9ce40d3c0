/*-------------------------------------------------------------------------
 *
 * status.c
 *	  coder_health.status(): what the extension itself is doing.  Its own
 *	  figures are atomics of CoderHealthShared (no lock); the modules'
 *	  (status.h) each module reads itself (module.h: status).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg/compat.h"
#include "coder_health.h"
#include "module.h"
#include "status.h"

PG_FUNCTION_INFO_V1(coder_health_status);

/* A TimestampTz kept as an atomic; 0 means "never". */
static void
put_timestamp(Datum *values, bool *nulls, int i, pg_atomic_uint64 *ts)
{
	uint64		v = pg_atomic_read_u64(ts);

	if (v == 0)
		nulls[i] = true;
	else
		values[i] = TimestampTzGetDatum((TimestampTz) v);
}

Datum
coder_health_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[16];
	bool		nulls[16];
	ChStatusRow row;
	uint32		pid;
	int			i = 0;

	ch_require_loaded();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (tupdesc->natts != lengthof(values))
		elog(ERROR, "coder_health.status() returns %d columns, the library expects %d",
			 tupdesc->natts, (int) lengthof(values));

	memset(nulls, 0, sizeof(nulls));

	values[i++] = CStringGetTextDatum(CODER_HEALTH_VERSION);
	values[i++] = Int64GetDatum((int64) ch_shared->reserved_bytes);
	values[i++] = Int64GetDatum((int64) ch_shmem_used_bytes());

	pid = pg_atomic_read_u32(&ch_shared->collector_pid);
	if (pid == 0)
		nulls[i] = true;
	values[i++] = Int32GetDatum((int32) pid);
	put_timestamp(values, nulls, i++, &ch_shared->collector_started);
	put_timestamp(values, nulls, i++, &ch_shared->collector_last_run);
	values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&ch_shared->collector_runs));
	values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&ch_shared->collector_overruns));
	values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&ch_shared->collector_starts));
	values[i++] = Int32GetDatum((int32) pg_atomic_read_u32(&ch_shared->collector_interval_ms));
	values[i++] = Float8GetDatum((double) pg_atomic_read_u64(&ch_shared->collector_last_cycle_us) / 1000.0);
	values[i++] = BoolGetDatum(RecoveryInProgress());

	/* the modules' columns */
	memset(&row, 0, sizeof(row));
	for (int m = 0; m < ch_nmodules; m++)
		if (ch_modules[m]->status)
			ch_modules[m]->status(&row);
	values[i++] = Int64GetDatum(row.statements_tracked);
	values[i++] = Int32GetDatum(row.max_statements);
	values[i++] = Int64GetDatum(row.evictions);
	values[i++] = Int64GetDatum(row.dropped_samples);
	Assert(i == lengthof(values));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
