/*-------------------------------------------------------------------------
 *
 * replication_track.h
 *	  What the replication collector remembers between its cycles, as plain
 *	  bookkeeping over structs in coder_health's shared memory: when the
 *	  end of WAL passed which position (the LSN -> time track), and
 *	  per-minute peaks of lag and round trip (replication_track.c).
 *
 * Every function here reads or writes only the struct it is given; the
 * caller holds CH_LOCK_REPLICATION (exclusively to write).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_REPLICATION_TRACK_H
#define CODER_HEALTH_REPLICATION_TRACK_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "utils/timestamp.h"

/*
 * The LSN -> time track: 4096 entries, at most one per 200 ms and only when
 * the end of WAL moved, so it covers at least 13 minutes of continuous
 * writing; a standby stuck for longer shows a lag of at least that.
 */
#define CH_REPL_TRACK_SIZE 4096
#define CH_REPL_TRACK_MIN_SPACING_MS 200

/* A ring in LSN order. */
typedef struct ChReplTrack
{
	int			next;
	int			count;
	XLogRecPtr	lsn[CH_REPL_TRACK_SIZE];
	TimestampTz time[CH_REPL_TRACK_SIZE];
} ChReplTrack;

/* Peaks are kept as per-minute maxima: 15 complete minutes + the current. */
#define CH_REPL_PEAK_MINUTES 15
#define CH_REPL_PEAK_BUCKETS (CH_REPL_PEAK_MINUTES + 1)

/* One sample of one lag (bytes and seconds), as the collector saw it. */
typedef struct ChPeakBuckets
{
	int64		minute[CH_REPL_PEAK_BUCKETS];	/* Unix minute held, -1: none */
	int64		max_bytes[CH_REPL_PEAK_BUCKETS];
	double		max_s[CH_REPL_PEAK_BUCKETS];
	double		max_rtt_ms[CH_REPL_PEAK_BUCKETS];	/* of rtt_ms (min_rtt) */
} ChPeakBuckets;

extern void ch_repl_track_record(ChReplTrack *t, XLogRecPtr end, TimestampTz now);
extern double ch_repl_track_seconds_behind(const ChReplTrack *t, XLogRecPtr pos,
										   TimestampTz now);

extern void ch_repl_peaks_init(ChPeakBuckets *p);
extern void ch_repl_peaks_add(ChPeakBuckets *p, TimestampTz now,
							  bool has_bytes, int64 bytes, bool has_s, double s);
extern void ch_repl_peaks_add_rtt(ChPeakBuckets *p, TimestampTz now, double ms);
extern void ch_repl_peaks_read(const ChPeakBuckets *p, TimestampTz now,
							   int64 *bytes, double *s);
extern double ch_repl_peaks_read_rtt(const ChPeakBuckets *p, TimestampTz now);

#endif							/* CODER_HEALTH_REPLICATION_TRACK_H */
