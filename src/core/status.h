/*-------------------------------------------------------------------------
 *
 * status.h
 *	  The columns of coder_health.status() that a module owns (module.h:
 *	  status).  status.c fills the extension's own columns (version, shared
 *	  memory, collector) and asks each module for its figures, without
 *	  knowing any module's struct.  A module reads its figures as its own
 *	  views do: atomics, or a short lock of its own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_STATUS_H
#define CODER_HEALTH_STATUS_H

#include "postgres.h"

typedef struct ChStatusRow
{
	int64 statements_tracked;
	int32 max_statements;
	int64 evictions;
	int64 dropped_samples;
} ChStatusRow;

#endif /* CODER_HEALTH_STATUS_H */
