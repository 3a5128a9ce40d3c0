/*-------------------------------------------------------------------------
 *
 * coder_health.c
 *	  Loading coder_health: settings, shared memory, hooks and the collector,
 *	  for the modules the entry point (src/coder_health.c: _PG_init) hands
 *	  over.  Core walks that list and names no feature.
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
#include "storage/ipc.h"

#include "pg/compat.h"
#include "coder_health.h"
#include "module.h"

/* the features, in the entry point's order (module.h) */
const ChModule *const *ch_modules = NULL;
int			ch_nmodules = 0;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

#ifdef CH_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;

static void
ch_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	ch_shmem_request();
}
#endif

static void
ch_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	ch_shmem_startup();
}

/* _PG_init (src/coder_health.c), with the list of modules */
void
ch_load(const ChModule *const *modules, int nmodules)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	ch_modules = modules;
	ch_nmodules = nmodules;

	ch_define_settings();
	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->define_settings)
			ch_modules[i]->define_settings();
	ch_reserve_settings_prefix();

#ifdef CH_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ch_shmem_request_hook;
#else
	ch_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ch_shmem_startup_hook;

	for (int i = 0; i < ch_nmodules; i++)
		if (ch_modules[i]->install_hooks)
			ch_modules[i]->install_hooks();
	ch_register_collector();
}
