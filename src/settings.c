/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The coder_health.* configuration parameters.
 *
 * Every setting has a range and, where it is a duration or a size, a unit,
 * so that PostgreSQL itself rejects bad values at startup and on reload with
 * its usual message.  Settings that shape shared memory are PGC_POSTMASTER;
 * the rest can be changed with a reload.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "compat.h"
#include "coder_health.h"

int			ch_sample_interval_ms = 1000;

void
ch_define_settings(void)
{
	DefineCustomIntVariable("coder_health.sample_interval",
							"How often the collector wakes up to sample and fold data.",
							"The collector rotates windows, drains idle backends' samples "
							"and reads PostgreSQL's shared state once per interval.",
							&ch_sample_interval_ms,
							1000, 100, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	CH_RESERVE_GUC_PREFIX("coder_health");
}
