/*-------------------------------------------------------------------------
 *
 * coder_health.c
 *	  The entry point: the library's magic block, _PG_init, and the list of
 *	  coder_health's features.  The only file that names them; it stands
 *	  above them all, and core (src/core) below them walks the list it is
 *	  given (module.h), so no include or call runs from core back up to a
 *	  feature.
 *
 * The order is that of settings, shared memory, hooks, the collector's
 * cycle and the statistics file's sections: health last, so its history
 * samples see this cycle's figures.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "core/history.h"
#include "core/module.h"

PG_MODULE_MAGIC;

/* each defined with its feature (src/<feature>/) */
extern const ChModule ch_latency_module;
extern const ChModule ch_clients_module;
extern const ChModule ch_replication_module;
extern const ChModule ch_notify_module;
extern const ChModule ch_health_module;
/* and core's own: the history, last, so it samples this cycle's figures */

static const ChModule *const modules[] = {
	&ch_latency_module,
	&ch_clients_module,
	&ch_replication_module,
	&ch_notify_module,
	&ch_health_module,
	&ch_history_module,
};

void		_PG_init(void);

void
_PG_init(void)
{
	ch_load(modules, lengthof(modules));
}
