/*
 * Unit tests for the history ring's arithmetic (src/lib/history_ring.h): its
 * size, where each row goes, and that a reader copying in chunks while the
 * collector keeps appending sees every row it can, in order, each once,
 * never a row that was overwritten.  A real ring of numbered rows is
 * written and read, with the writer running between the reader's chunks as
 * it does when the reader releases the lock.  TAP output.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/lib/history_ring.h"

/* history.c's figures */
#define ROWS_PER_SAMPLE 48
#define MAX_ROWS 1000000

static int	tests_run = 0;
static int	tests_failed = 0;

static void
ok(bool pass, const char *what)
{
	tests_run++;
	if (!pass)
		tests_failed++;
	printf("%sok %d - %s\n", pass ? "" : "not ", tests_run, what);
}

static void
is_u64(uint64_t got, uint64_t want, const char *what)
{
	tests_run++;
	if (got != want)
		tests_failed++;
	printf("%sok %d - %s (got %llu, want %llu)\n", got == want ? "" : "not ",
		   tests_run, what, (unsigned long long) got, (unsigned long long) want);
}

/* A ring of row numbers, as history.c's rows hold samples. */
typedef struct Ring
{
	uint64_t	capacity;
	uint64_t	written;
	uint64_t   *rows;
} Ring;

static void
ring_append(Ring *r, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
	{
		r->rows[history_ring_slot(r->written, r->capacity)] = r->written;
		r->written++;
	}
}

/*
 * Read the ring as coder_health_history() does, chunk rows at a time; after
 * each chunk the writer appends `between` rows.  Checks that every row
 * copied is the row the reader meant (not an overwritten slot), that rows
 * come in increasing order, each once, none newer than end - 1, and, with
 * no writer, that the last row is end - 1.
 * Returns the number of rows read, or -1 on a violation.
 */
static long
ring_read(Ring *r, int chunk, uint64_t between, uint64_t *first_read)
{
	uint64_t	end = r->written;
	uint64_t	pos = history_ring_oldest(end, r->capacity);
	uint64_t	last = 0;
	bool		any = false;
	long		nread = 0;
	uint64_t   *copy = malloc(sizeof(uint64_t) * (size_t) chunk);

	while (pos < end)
	{
		int			n = history_ring_chunk(&pos, end, r->written, r->capacity,
										   chunk);

		if (n < 0 || n > chunk)
		{
			free(copy);
			return -1;
		}
		for (int i = 0; i < n; i++)
			copy[i] = r->rows[history_ring_slot(pos + (uint64_t) i, r->capacity)];
		for (int i = 0; i < n; i++)
		{
			/* the slot still holds the row the reader asked for */
			if (copy[i] != pos + (uint64_t) i || (any && copy[i] <= last) ||
				copy[i] >= end)
			{
				free(copy);
				return -1;
			}
			if (!any && first_read)
				*first_read = copy[i];
			last = copy[i];
			any = true;
			nread++;
		}
		pos += (uint64_t) n;
		if (n == 0)
			break;
		ring_append(r, between);
	}
	free(copy);
	/* with no writer meanwhile, the reader ends at the newest row */
	if (between == 0 && any && last != end - 1)
		return -1;
	return nread;
}

int
main(void)
{
	Ring		r;
	uint64_t	first = 0;
	uint64_t	pos;

	/* capacity */
	is_u64((uint64_t) history_ring_capacity(3600, 10, ROWS_PER_SAMPLE, MAX_ROWS),
		   (3600 / 10 + 1) * 48, "defaults (1 h every 10 s): 361 samples of 48 rows");
	is_u64((uint64_t) history_ring_capacity(7 * 86400, 1, ROWS_PER_SAMPLE, MAX_ROWS),
		   MAX_ROWS, "the largest settings (7 days every 1 s, 29 million rows) are capped");
	is_u64((uint64_t) history_ring_capacity(60, 0, ROWS_PER_SAMPLE, MAX_ROWS),
		   61 * 48, "an interval of 0 counts as 1 s");
	is_u64((uint64_t) history_ring_capacity(60, 3600, ROWS_PER_SAMPLE, MAX_ROWS),
		   48, "an interval longer than the length: one sample");
	is_u64((uint64_t) history_ring_capacity(2000000000, 1, ROWS_PER_SAMPLE, MAX_ROWS),
		   MAX_ROWS, "no int overflow on a huge length");

	/* slots, rows held, oldest */
	is_u64(history_ring_slot(0, 5), 0, "row 0 in slot 0");
	is_u64(history_ring_slot(7, 5), 2, "row 7 of a ring of 5 in slot 2");
	is_u64(history_ring_held(3, 5), 3, "3 appends: 3 rows held");
	is_u64(history_ring_held(12, 5), 5, "12 appends to a ring of 5: 5 rows held");
	is_u64(history_ring_oldest(3, 5), 0, "not yet full: the oldest is row 0");
	is_u64(history_ring_oldest(5, 5), 0, "exactly full: the oldest is row 0");
	is_u64(history_ring_oldest(12, 5), 7, "12 appends to a ring of 5: the oldest is row 7");
	is_u64(history_ring_slot(UINT64_MAX, 1000), UINT64_MAX % 1000,
		   "the last row number before written would wrap");

	/* chunks */
	pos = 0;
	is_u64((uint64_t) history_ring_chunk(&pos, 10, 10, 100, 4), 4,
		   "chunk: at most chunk rows");
	pos = 8;
	is_u64((uint64_t) history_ring_chunk(&pos, 10, 10, 100, 4), 2,
		   "chunk: only the rows left before end");
	pos = 10;
	is_u64((uint64_t) history_ring_chunk(&pos, 10, 10, 100, 4), 0,
		   "chunk: none at end");
	pos = 2;
	is_u64((uint64_t) history_ring_chunk(&pos, 10, 16, 10, 4), 4,
		   "chunk: the rows left after skipping the overwritten");
	is_u64(pos, 6, "chunk: the position moves past rows overwritten since");
	pos = 2;
	is_u64((uint64_t) history_ring_chunk(&pos, 10, 30, 10, 4), 0,
		   "chunk: nothing when everything wanted was overwritten");
	is_u64(pos, 20, "chunk: ... and the position is past end");

	/* whole reads against a real ring */
	r.capacity = 100;
	r.written = 0;
	r.rows = calloc(r.capacity, sizeof(uint64_t));
	is_u64((uint64_t) ring_read(&r, 8, 0, NULL), 0, "an empty ring reads nothing");
	ring_append(&r, 30);
	is_u64((uint64_t) ring_read(&r, 8, 0, &first), 30, "30 rows, not yet full: all read");
	is_u64(first, 0, "... from row 0");
	ring_append(&r, 250);
	is_u64((uint64_t) ring_read(&r, 8, 0, &first), 100, "280 appends to a ring of 100: 100 rows read");
	is_u64(first, 180, "... from row 180, the oldest held");
	is_u64((uint64_t) ring_read(&r, 8, 5, &first), 100,
		   "a writer appending 5 rows between chunks of 8 stays behind the reader: all read");
	is_u64((uint64_t) ring_read(&r, 8, 12, &first), 8 * 8 + 4,
		   "a writer appending 12 rows between chunks of 8: the rows it overwrote are skipped");
	ok(ring_read(&r, 8, 0, NULL) == 100, "the ring still reads whole afterwards");
	is_u64((uint64_t) ring_read(&r, 8, 200, &first), 8,
		   "a writer overwriting the whole ring between chunks: the first chunk only");
	is_u64((uint64_t) ring_read(&r, 1000, 500, &first), 100,
		   "one chunk larger than the ring: every row in one copy");
	is_u64((uint64_t) ring_read(&r, 1, 2, &first), 50,
		   "one row a chunk while two are appended each: every other row is read");
	{
		bool		all_ok = true;

		for (int chunk = 1; chunk <= 130 && all_ok; chunk += 3)
			for (uint64_t between = 0; between <= 120 && all_ok; between += 7)
				if (ring_read(&r, chunk, between, NULL) < 0)
					all_ok = false;
		ok(all_ok, "every chunk size 1..130 against writers of 0..120 rows a chunk: rows in order, each once, never overwritten");
	}
	free(r.rows);

	printf("1..%d\n", tests_run);
	if (tests_failed)
		printf("# %d of %d failed\n", tests_failed, tests_run);
	return tests_failed ? 1 : 0;
}
