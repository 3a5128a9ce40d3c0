/*-------------------------------------------------------------------------
 *
 * replication_track.c
 *	  The replication collector's memory between cycles: the LSN -> time
 *	  track (when this server's end of WAL passed which position) and
 *	  per-minute peaks of lag and round trip.  replication.c keeps both in
 *	  its shared struct; see replication_track.h.
 *
 * Plain bookkeeping: each function touches only the struct it is given,
 * under CH_LOCK_REPLICATION held by the caller (exclusively to write).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlogdefs.h"
#include "utils/timestamp.h"

#include "replication_track.h"

/* ------------------------------------------------------------------------
 * The LSN -> time track
 * ------------------------------------------------------------------------
 */

static inline int
track_index(const ChReplTrack *t, int k)
{
	/* k-th oldest entry */
	return (t->next - t->count + k + CH_REPL_TRACK_SIZE) % CH_REPL_TRACK_SIZE;
}

/* The end of WAL was at end at time now (lock held exclusively). */
void
ch_repl_track_record(ChReplTrack *t, XLogRecPtr end, TimestampTz now)
{
	if (XLogRecPtrIsInvalid(end))
		return;
	if (t->count > 0)
	{
		int			last = track_index(t, t->count - 1);

		if (end <= t->lsn[last])
			return;
		if (now - t->time[last] < CH_REPL_TRACK_MIN_SPACING_MS * 1000L)
			return;
	}
	t->lsn[t->next] = end;
	t->time[t->next] = now;
	t->next = (t->next + 1) % CH_REPL_TRACK_SIZE;
	if (t->count < CH_REPL_TRACK_SIZE)
		t->count++;
}

/*
 * Seconds since WAL past pos first existed here, as a lower bound: the time
 * of the first entry beyond pos.  0 when the track knows nothing beyond pos
 * (written since the last cycle), -1 when the track is empty.
 */
double
ch_repl_track_seconds_behind(const ChReplTrack *t, XLogRecPtr pos,
							 TimestampTz now)
{
	int			lo = 0;
	int			hi;

	if (t->count == 0)
		return -1;
	hi = t->count;
	/* first k with lsn > pos; entries are in LSN order */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (t->lsn[track_index(t, mid)] > pos)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo == t->count)
		return 0;
	return Max(now - t->time[track_index(t, lo)], 0) / 1000000.0;
}

/* ------------------------------------------------------------------------
 * Per-minute peaks
 * ------------------------------------------------------------------------
 */

void
ch_repl_peaks_init(ChPeakBuckets *p)
{
	for (int i = 0; i < CH_REPL_PEAK_BUCKETS; i++)
	{
		p->minute[i] = -1;
		p->max_bytes[i] = -1;
		p->max_s[i] = -1;
		p->max_rtt_ms[i] = -1;
	}
}

void
ch_repl_peaks_add(ChPeakBuckets *p, TimestampTz now, bool has_bytes,
				  int64 bytes, bool has_s, double s)
{
	int64		minute = now / USECS_PER_MINUTE;
	int			b = (int) (minute % CH_REPL_PEAK_BUCKETS);

	if (p->minute[b] != minute)
	{
		p->minute[b] = minute;
		p->max_bytes[b] = -1;
		p->max_s[b] = -1;
		p->max_rtt_ms[b] = -1;
	}
	if (has_bytes && bytes > p->max_bytes[b])
		p->max_bytes[b] = bytes;
	if (has_s && s > p->max_s[b])
		p->max_s[b] = s;
}

/* Maxima over the current and the 15 previous minutes; -1 where none. */
void
ch_repl_peaks_read(const ChPeakBuckets *p, TimestampTz now, int64 *bytes, double *s)
{
	int64		minute = now / USECS_PER_MINUTE;

	*bytes = -1;
	*s = -1;
	for (int i = 0; i < CH_REPL_PEAK_BUCKETS; i++)
	{
		if (p->minute[i] < 0 || p->minute[i] <= minute - CH_REPL_PEAK_BUCKETS ||
			p->minute[i] > minute)
			continue;
		*bytes = Max(*bytes, p->max_bytes[i]);
		*s = Max(*s, p->max_s[i]);
	}
}

/* Highest round trip over the current and the 15 previous minutes; -1: none */
double
ch_repl_peaks_read_rtt(const ChPeakBuckets *p, TimestampTz now)
{
	int64		minute = now / USECS_PER_MINUTE;
	double		ms = -1;

	for (int i = 0; i < CH_REPL_PEAK_BUCKETS; i++)
		if (p->minute[i] >= 0 && p->minute[i] > minute - CH_REPL_PEAK_BUCKETS &&
			p->minute[i] <= minute)
			ms = Max(ms, p->max_rtt_ms[i]);
	return ms;
}

void
ch_repl_peaks_add_rtt(ChPeakBuckets *p, TimestampTz now, double ms)
{
	int64		minute = now / USECS_PER_MINUTE;
	int			b = (int) (minute % CH_REPL_PEAK_BUCKETS);

	/* ch_repl_peaks_add ran for this minute already (it opens the bucket) */
	if (p->minute[b] == minute && ms > p->max_rtt_ms[b])
		p->max_rtt_ms[b] = ms;
}
