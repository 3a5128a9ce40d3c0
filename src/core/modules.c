/*-------------------------------------------------------------------------
 *
 * modules.c
 *	  The list of coder_health's features (see module.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "module.h"

const ChModule *const ch_modules[] = {
	&ch_latency_module,
	&ch_clients_module,
	&ch_replication_module,
	&ch_notify_module,
	&ch_health_module,
};

const int	ch_nmodules = lengthof(ch_modules);
