/*-------------------------------------------------------------------------
 *
 * latency_module.c
 *	  Statement latency's entry in the module list (core/module.h), and the
 *	  two operations that run its whole pipeline: the collector's cycle and
 *	  a reset.  Both fold the rings first (latency_fold.c), then act on the
 *	  tables (latency_store.c), so neither of those calls the other back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "core/module.h"
#include "latency.h"

/*
 * Once per collector cycle: fold what idle backends left behind, so the
 * views are never stale, then rotate the windows and evict.
 */
void
ch_latency_collect(TimestampTz now)
{
	ch_fold_all_slots();
	ch_latency_rotate_and_evict(now);
}

/*
 * Forget statistics: everything (all = true), or the entries of one
 * queryid.  Statements that ended before the reset but still wait in a ring
 * belong to the time before it: they are folded first, so that the reset
 * forgets them.
 */
void
ch_latency_reset(bool all, uint64 queryid)
{
	ch_fold_all_slots();
	ch_latency_forget(all, queryid);
}

const ChModule ch_latency_module = {
	.name = "latency",
	.define_settings = ch_define_latency_settings,
	.shmem_size = ch_latency_shmem_size,
	.shmem_init = ch_latency_shmem_init,
	.preload = ch_latency_preload,
	.collect = ch_latency_collect,
	.used_bytes = ch_latency_used_bytes,
	.status = ch_latency_status,
	.history_metrics = ch_latency_history_metrics,
	.nhistory_metrics = CH_LATENCY_HM_COUNT,
	.history_sample = ch_latency_history_sample,
	.save_version = CH_LATENCY_SECTION_VERSION,
	.saved_what = "statements",
	.save = ch_latency_save,
	.load = ch_latency_load,
};
