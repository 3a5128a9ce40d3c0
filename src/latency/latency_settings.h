/*-------------------------------------------------------------------------
 *
 * latency_settings.h
 *	  Statement latency's settings (latency_settings.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_LATENCY_SETTINGS_H
#define CODER_HEALTH_LATENCY_SETTINGS_H

/* coder_health.track */
typedef enum ChTrackLevel
{
	CH_TRACK_NONE,
	CH_TRACK_TOP,
	CH_TRACK_ALL
} ChTrackLevel;

extern int	ch_track;
extern bool ch_track_utility;
extern bool ch_track_monitoring;
extern bool ch_include_errors;
extern int	ch_max_statements;
extern int	ch_max_clients;
extern int	ch_export_top_statements;
extern int	ch_export_top_queries;
extern bool ch_query_names;

/* module latency's define_settings */
extern void ch_define_latency_settings(void);

#endif							/* CODER_HEALTH_LATENCY_SETTINGS_H */
