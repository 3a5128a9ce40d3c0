/*-------------------------------------------------------------------------
 *
 * srf.h
 *	  Set-returning functions in materialize mode, the same way on every
 *	  supported PostgreSQL version.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_SRF_H
#define CODER_HEALTH_SRF_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/tuplestore.h"

extern Tuplestorestate *ch_srf_begin(FunctionCallInfo fcinfo,
									 TupleDesc *tupdesc, int expected_cols);

#endif							/* CODER_HEALTH_SRF_H */
