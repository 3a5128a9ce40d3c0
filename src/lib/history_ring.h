/*-------------------------------------------------------------------------
 *
 * history_ring.h
 *	  The arithmetic of the history ring (history.c), in plain C so that
 *	  test/unit/test_history_ring.c checks it without a server.
 *
 * The ring is an array of `capacity` rows and a count `written` of rows
 * ever appended.  Row number w (0-based, in order of appending) lives in
 * slot w % capacity until row w + capacity overwrites it, so the rows held
 * are numbers max(written - capacity, 0) .. written - 1, oldest first.
 * The collector appends under the history lock in exclusive mode; a reader
 * notes `written` once (the end of what it will show), then copies chunks
 * of rows, each under the lock in shared mode, and before each chunk skips
 * the rows that were overwritten while it did not hold the lock.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_HISTORY_RING_H
#define CODER_HEALTH_HISTORY_RING_H

#include <stdint.h>

/*
 * Rows the ring holds: rows_per_sample rows for each sample over length_s
 * seconds at one sample per interval_s seconds (an interval below 1 counts
 * as 1), one sample more for the one in progress, at most max_rows.
 */
static inline int
history_ring_capacity(int length_s, int interval_s, int rows_per_sample,
					  int max_rows)
{
	int64_t		samples = (int64_t) length_s / (interval_s > 1 ? interval_s : 1) + 1;
	int64_t		rows = samples * rows_per_sample;

	return (int) (rows < max_rows ? rows : max_rows);
}

/* The slot of row number `row`. */
static inline uint64_t
history_ring_slot(uint64_t row, uint64_t capacity)
{
	return row % capacity;
}

/* How many rows the ring holds after `written` appends. */
static inline uint64_t
history_ring_held(uint64_t written, uint64_t capacity)
{
	return written < capacity ? written : capacity;
}

/* The number of the oldest row still held after `written` appends. */
static inline uint64_t
history_ring_oldest(uint64_t written, uint64_t capacity)
{
	return written > capacity ? written - capacity : 0;
}

/*
 * A reader's next chunk: it wants rows *pos .. end - 1 (end being `written`
 * when it started) and may take at most `chunk` at a time; `written` is the
 * count now, read under the lock it copies under.  Moves *pos past rows
 * overwritten since and returns how many rows to copy from *pos on (0 when
 * it is done).
 */
static inline int
history_ring_chunk(uint64_t *pos, uint64_t end, uint64_t written,
				   uint64_t capacity, int chunk)
{
	uint64_t	oldest = history_ring_oldest(written, capacity);
	uint64_t	left;

	if (*pos < oldest)
		*pos = oldest;
	left = end > *pos ? end - *pos : 0;
	return (int) (left < (uint64_t) chunk ? left : (uint64_t) chunk);
}

#endif							/* CODER_HEALTH_HISTORY_RING_H */
