/*-------------------------------------------------------------------------
 *
 * history.h
 *	  What a module uses to give the history (core/history.c) its series:
 *	  it names them (module.h: history_metrics) and, every
 *	  coder_health.history_interval, fills the values of one sample
 *	  through ch_history_note.  history.c stores the rows without knowing
 *	  any module's struct.
 *
 * A module's history_sample runs in the collector: it reads its own
 * shared state under its own lock, in shared mode, only for a copy, and
 * notes rows after releasing it (never holding two of coder_health's
 * locks).  history.c then takes CH_LOCK_HISTORY alone to append the rows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_HISTORY_H
#define CODER_HEALTH_HISTORY_H

#include "postgres.h"

#include "utils/timestamp.h"

/* bytes kept of a row's key, including the NUL */
#define CH_HISTORY_KEY_LEN 48

/* One series of a module: coder_health.history's metric. */
typedef struct ChHistoryMetric
{
	const char *name;
	/* keys that identify a client: shown only with pg_read_all_stats
	 * (privacy.h), as in the module's own view */
	bool private_key;
} ChHistoryMetric;

typedef struct ChHistorySink ChHistorySink;

/*
 * One row of this sample: metric is the index in the module's own
 * history_metrics; key may be NULL (a value for the whole server); a NaN
 * value is left out, and so is a row past the sample's budget.
 */
extern void ch_history_note(ChHistorySink *sink, int metric, const char *key,
							double value);

/* the history module (history.c): core's, named by the entry point */
extern int					 ch_history_interval_s;
extern int					 ch_history_length_s;
extern const struct ChModule ch_history_module;

#endif /* CODER_HEALTH_HISTORY_H */
