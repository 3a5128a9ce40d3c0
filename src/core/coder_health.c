/*-------------------------------------------------------------------------
 *
 * coder_health.c
 *	  Loading coder_health: settings, what each module registers besides
 *	  hooks, and the collector, for the modules the entry point
 *	  (src/coder_health.c: _PG_init) hands over.  Core walks that list and
 *	  names no feature.  Every hook, shared memory's included, is installed
 *	  by src/hooks.c once this has run.
 *
 * coder_health only works from shared_preload_libraries: it needs shared
 * memory and a background worker, both of which can only be set up while the
 * postmaster starts.  Loaded any other way (CREATE EXTENSION without the
 * preload, or LOAD), it installs nothing, and every SQL function reports that
 * with a hint (see ch_require_loaded).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "coder_health.h"
#include "module.h"

/* the features, in the entry point's order (module.h) */
const ChModule *const *ch_modules = NULL;
int			ch_nmodules = 0;

/*
 * _PG_init (src/coder_health.c), with the list of modules.  False when not
 * preloaded: then nothing is to be installed at all.
 */
bool
ch_load(const ChModule *const *modules, int nmodules)
{
	if (!process_shared_preload_libraries_in_progress)
		return false;
	ch_modules = modules;
	ch_nmodules = nmodules;

	ch_define_settings();
	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->define_settings)
			ch_modules[i]->define_settings();
	ch_reserve_settings_prefix();

	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->preload)
			ch_modules[i]->preload();
	ch_register_collector();
	return true;
}
