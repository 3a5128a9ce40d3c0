/*-------------------------------------------------------------------------
 *
 * health.h
 *	  The health verdict's thresholds (coder_health.health_* settings).
 *	  The verdict itself is plain SQL over the other views
 *	  (sql/install/60_health.sql); the history it draws on is core's
 *	  (core/history.c), fed by each module's history_sample.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_HEALTH_H
#define CODER_HEALTH_HEALTH_H

#include "postgres.h"

/* settings (health_settings.c) */
extern void ch_define_health_settings(void);

/* this feature's entry in the module list (core/module.h, src/coder_health.c) */
extern const struct ChModule ch_health_module;

#endif							/* CODER_HEALTH_HEALTH_H */
