/*-------------------------------------------------------------------------
 *
 * coder_health.c
 *	  The entry point: the library's magic block, _PG_init, and the list of
 *	  coder_health's features.  With hooks.c beside it (every hook and
 *	  transaction callback, in the order its table gives), the only file
 *	  that names them; the two stand above them all, and core (src/core)
 *	  below them walks the list it is given (module.h), so no include or
 *	  call runs from core back up to a feature.
 *
 * The order is that of settings, shared memory, preload, the
 * collector's cycle and the statistics file's sections: health last, so its history
 * samples see this cycle's figures.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "core/history.h"
#include "core/module.h"
#include "hooks.h"
#include "clients/clients.h"
#include "health/health.h"
#include "latency/latency.h"
#include "notify/notify.h"
#include "replication/replication.h"

PG_MODULE_MAGIC;

/*
 * Each declared in its feature's header and defined with it
 * (src/<feature>/); core's own, the history, goes last, so it samples this
 * cycle's figures.
 */

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
	if (ch_load(modules, lengthof(modules)))
		ch_install_hooks();
}
