/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  The one place that installs coder_health's hooks and transaction
 *	  callbacks (hooks.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_HOOKS_H
#define CODER_HEALTH_HOOKS_H

/* _PG_init, preload only, after ch_load (core/module.h) */
extern void ch_install_hooks(void);

#endif							/* CODER_HEALTH_HOOKS_H */
