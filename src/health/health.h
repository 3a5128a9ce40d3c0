/*-------------------------------------------------------------------------
 *
 * health.h
 *	  The health verdict's thresholds and the in-database history.
 *
 *	  collector, every coder_health.history_interval (history.c)
 *	      -> reads the other features' shared state directly (no database
 *	         connection, no SQL): connections per client host, NOTIFY queue
 *	         usage and worst listener backlog, replication lag, p99 and
 *	         calls/s per database
 *	      -> appends one row per (metric, key) to a ring in shared memory
 *	         sized for coder_health.history_length
 *	  SQL: coder_health.history, coder_health.sparkline(); the health view
 *	  itself is plain SQL over the other views (sql/install/60_health.sql)
 *	  with its thresholds in the coder_health.health_* settings
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_HEALTH_H
#define CODER_HEALTH_HEALTH_H

#include "postgres.h"

/* settings (health_settings.c) */
extern int	ch_history_interval_s;
extern int	ch_history_length_s;
extern void ch_define_health_settings(void);

#endif							/* CODER_HEALTH_HEALTH_H */
