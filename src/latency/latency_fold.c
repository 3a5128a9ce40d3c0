/*-------------------------------------------------------------------------
 *
 * latency_fold.c
 *	  How samples get from a backend's ring into the shared sketches: the
 *	  fold.  Samples are grouped per statement into a local delta, which is
 *	  added to the statement's total and current window and then, through
 *	  the statement's delta, to its database's and client's aggregates;
 *	  names and texts the backend posted are applied once their statements'
 *	  samples are in.
 *
 * Locking (latency_store.c has the whole protocol).  A fold adds to
 * existing entries under the latency lock in *shared* mode, with atomic
 * adds (many backends fold at once); it takes the lock exclusively only to
 * create an entry or claim an aggregate.  A backend folding its own ring
 * never waits: it only tries the lock, and on a busy one leaves the rest
 * for its next attempt or for the collector.  One folder per ring at a time
 * (the ring's folding flag); the ring's owner only appends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/lwlock.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "core/coder_health.h"
#include "lib/atomic_sketch.h"
#include "latency.h"

/* A local batch of durations bound for one sketch pair (total + window). */
typedef struct ChDelta
{
	uint64		calls;
	uint64		errors;
	uint64		sum_ns;
	uint64		min_ns;
	uint64		max_ns;
	int			ntouched;
	uint16		touched[CH_RING_SIZE];
	uint32		counts[SKETCH_NBUCKETS];
} ChDelta;

static ChDelta stmt_delta;
static ChDelta scope_delta;

/*
 * Statement durations are whole microseconds (TimestampTz): the buckets of
 * the first CH_US_BUCKETS of them, looked up instead of computed (8 against
 * about 45 instructions a sample).  Filled by sketch_index itself in
 * _PG_init, so a lookup gives exactly what sketch_index would.
 */
#define CH_US_BUCKETS 8192
static uint16 us_bucket[CH_US_BUCKETS];
static bool us_bucket_ready = false;

void
ch_latency_prepare_buckets(void)
{
	for (int us = 0; us < CH_US_BUCKETS; us++)
		us_bucket[us] = (uint16) sketch_index((uint64) us * 1000);
	us_bucket_ready = true;
}

static inline int
sample_bucket(uint64 ns)
{
	uint64		us = ns / 1000;

	if (likely(us < CH_US_BUCKETS && us * 1000 == ns && us_bucket_ready))
		return us_bucket[us];
	return sketch_index(ns);
}

static void
delta_reset(ChDelta *d)
{
	d->calls = 0;
	d->errors = 0;
	d->sum_ns = 0;
	d->min_ns = PG_UINT64_MAX;
	d->max_ns = 0;
	d->ntouched = 0;
}

static inline void
delta_add(ChDelta *d, const ChSample *s, int bucket)
{
	d->calls++;
	if (s->flags & CH_SAMPLE_ERROR)
	{
		d->errors++;
		if (!ch_include_errors)
			return;
	}
	if (d->counts[bucket]++ == 0)
		d->touched[d->ntouched++] = (uint16) bucket;
	d->sum_ns += s->duration_ns;
	if (s->duration_ns < d->min_ns)
		d->min_ns = s->duration_ns;
	if (s->duration_ns > d->max_ns)
		d->max_ns = s->duration_ns;
}

/*
 * Add a delta to one shared sketch: its buckets to the chunks of its pool
 * (64-bit counts for totals, 32-bit for windows), its counters to the head.
 */
static void
delta_apply_one(const ChDelta *d, ChSketchHead *head, pg_atomic_uint32 *slots,
				int nslots, ChPoolId pool)
{
	int			width = pool == CH_POOL_TOTAL ? CH_TOTAL_CHUNK : CH_WINDOW_CHUNK;

	/* durations close together share a chunk: look each one up once */
	int			cur = -1;
	void	   *data = NULL;

	for (int i = 0; i < d->ntouched; i++)
	{
		int			b = d->touched[i];

		if (b / width != cur)
		{
			cur = b / width;
			data = ch_sketch_chunk(slots, nslots, pool, cur);
		}
		if (data == NULL)
			pg_atomic_fetch_add_u64(&ch_latency->dropped_no_chunk, d->counts[b]);
		else if (pool == CH_POOL_TOTAL)
			pg_atomic_fetch_add_u64(&((pg_atomic_uint64 *) data)[b % width],
									d->counts[b]);
		else
			pg_atomic_fetch_add_u32(&((pg_atomic_uint32 *) data)[b % width],
									d->counts[b]);
	}
	pg_atomic_fetch_add_u64(&head->calls, d->calls);
	if (d->errors)
		pg_atomic_fetch_add_u64(&head->errors, d->errors);
	pg_atomic_fetch_add_u64(&head->sum_ns, d->sum_ns);
	if (d->min_ns != PG_UINT64_MAX)
		ch_atomic_min_u64(&head->min_ns, d->min_ns);
	ch_atomic_max_u64(&head->max_ns, d->max_ns);
}

#define delta_apply_total(d, sk) \
	delta_apply_one((d), &(sk)->head, CH_SKETCH_SLOTS(sk), CH_POOL_TOTAL)
#define delta_apply_window(d, w) \
	delta_apply_one((d), &(w)->head, CH_SKETCH_SLOTS(w), CH_POOL_WINDOW)

/*
 * Add a statement's delta to its total and current window, then move it into
 * the database/client delta (into): a sample is counted once, in the
 * statement's delta, and reaches the aggregates through it.
 */
static void
delta_apply(ChDelta *d, ChSketch *total, ChWindow *window, ChDelta *into)
{
	if (d->calls == 0)
		return;
	delta_apply_total(d, total);
	delta_apply_window(d, window);
	for (int i = 0; i < d->ntouched; i++)
	{
		int			b = d->touched[i];

		if (into->counts[b] == 0)
			into->touched[into->ntouched++] = (uint16) b;
		into->counts[b] += d->counts[b];
		d->counts[b] = 0;
	}
	into->calls += d->calls;
	into->errors += d->errors;
	into->sum_ns += d->sum_ns;
	if (d->min_ns < into->min_ns)
		into->min_ns = d->min_ns;
	if (d->max_ns > into->max_ns)
		into->max_ns = d->max_ns;
	delta_reset(d);
}

static void
delta_discard(ChDelta *d)
{
	for (int i = 0; i < d->ntouched; i++)
		d->counts[d->touched[i]] = 0;
	delta_reset(d);
}

/* Find or claim the aggregate for a database or a client.  Exclusive lock. */
static int
scope_find_or_create(ChScopeKind kind, Oid dbid, const char *addr)
{
	int			free_slot = -1;

	for (int i = 0; i < ch_latency->max_scopes; i++)
	{
		ChScope    *scope = &ch_scopes[i];

		if (scope->kind == CH_SCOPE_FREE)
		{
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (scope->kind == kind && scope->dbid == dbid &&
			(kind != CH_SCOPE_CLIENT ||
			 strncmp(scope->client_addr, addr, CH_CLIENT_ADDR_LEN) == 0))
			return i;
	}
	if (free_slot < 0)
		return -2;				/* full: do not try again for this backend */
	ch_scopes[free_slot].kind = kind;
	ch_scopes[free_slot].dbid = dbid;
	strlcpy(ch_scopes[free_slot].client_addr,
			kind == CH_SCOPE_CLIENT ? addr : "", CH_CLIENT_ADDR_LEN);
	return free_slot;
}

static bool
acquire(LWLockMode mode, bool wait)
{
	if (wait)
	{
		LWLockAcquire(ch_shared->lock, mode);
		return true;
	}
	return LWLockConditionalAcquire(ch_shared->lock, mode);
}

/* Make sure the slot's database and client aggregates are known. */
static bool
resolve_scopes(ChBackendSlot *slot, bool wait)
{
	if (slot->db_scope != -1 && slot->client_scope != -1)
		return true;
	if (!acquire(LW_EXCLUSIVE, wait))
		return false;
	if (slot->db_scope == -1)
		slot->db_scope = scope_find_or_create(CH_SCOPE_DATABASE, slot->dbid, NULL);
	if (slot->client_scope == -1)
		slot->client_scope = scope_find_or_create(CH_SCOPE_CLIENT, slot->dbid,
												  slot->client_addr);
	LWLockRelease(ch_shared->lock);
	return true;
}

/* Create the entry for a key.  Takes and releases the exclusive lock;
 * false when the lock was busy (and we may not wait). */
static bool
create_entry(const ChStmtKey *key, bool wait, TimestampTz now)
{
	ChStmtEntry *entry;
	bool		found = true;

	if (!acquire(LW_EXCLUSIVE, wait))
		return false;
	/*
	 * A shared hash table can grow into spare shared memory past the size it
	 * was created with, so the limit is enforced here.  The collector evicts
	 * from 90% on, so reaching it means the table filled faster than one
	 * collector cycle: the sample is counted as dropped.
	 */
	if (hash_get_num_entries(ch_statements) >= ch_max_statements)
		entry = hash_search(ch_statements, key, HASH_FIND, NULL);
	else
		entry = hash_search(ch_statements, key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
		pg_atomic_fetch_add_u64(&ch_latency->dropped_table_full, 1);
	else if (!found)
		ch_entry_init(entry, now);	/* the fold's clock reading */
	LWLockRelease(ch_shared->lock);
	return true;
}

static void
apply_scopes(ChBackendSlot *slot, uint64 step, TimestampTz now)
{
	int			scopes[2] = {slot->db_scope, slot->client_scope};

	if (scope_delta.calls == 0)
		return;
	for (int i = 0; i < 2; i++)
	{
		ChScope    *scope;

		if (scopes[i] < 0)
			continue;
		scope = &ch_scopes[scopes[i]];
		delta_apply_total(&scope_delta, &scope->total);
		delta_apply_window(&scope_delta, &scope->window[step % CH_SCOPE_WINDOWS]);
		pg_atomic_write_u64(&scope->last_seen, (uint64) now);
	}
	delta_discard(&scope_delta);
}

/*
 * Give entries the sqlc names and texts their backend found.  Shared lock
 * held.  Two backends may name one entry at once: they write the same
 * bytes.
 *
 * A note may arrive before its statement's sample (an autocommit
 * statement's sample is written at its commit, after its note; a
 * transaction's at its end): such a note waits for a later fold, marked
 * not done, while the notes after it are applied and marked done.  The
 * tail moves over the done ones only, so the owner never reuses a waiting
 * note.  A note whose entry never comes (its samples were dropped: the
 * table was full; or its entry was evicted or reset before the note was
 * read) must not wait for ever: once the ring is as full as the owner lets
 * it grow (CH_NAME_NOTES_POST_LIMIT), the waiting notes give way.  Before,
 * such a note kept the ring at that limit, and every later session on the
 * same backend slot lost its names and texts.
 */
static void
apply_names(ChBackendSlot *slot)
{
	uint64		head = pg_atomic_read_u64(&slot->note_head);
	uint64		tail = pg_atomic_read_u64(&slot->note_tail);
	bool		give_way = head - tail >= CH_NAME_NOTES_POST_LIMIT;
	bool		waiting = false;
	ChStmtKey	key;

	pg_read_barrier();
	memset(&key, 0, sizeof(key));
	key.dbid = slot->dbid;
	for (uint64 t = tail; t < head; t++)
	{
		ChNameNote *note = &slot->notes[t % CH_NAME_NOTES];

		if (!note->done)
		{
			ChStmtEntry *entry;

			key.queryid = note->queryid;
			key.namehash = note->namehash;
			key.userid = note->userid;
			key.toplevel = note->toplevel;
			entry = hash_search(ch_statements, &key, HASH_FIND, NULL);
			if (entry != NULL)
			{
				if (entry->name[0] == '\0')
					strlcpy(entry->name, note->name, QUERY_NAME_LEN);
				if (note->text[0] != '\0')
					(void) ch_entry_set_text(entry, note->text, note->encoding);
				note->done = true;
			}
			else if (give_way)
				note->done = true;
			else
				waiting = true;
		}
		if (!waiting)
		{
			/* free for the owner again: the next note written here is new */
			note->done = false;
			tail = t + 1;
		}
	}
	pg_memory_barrier();
	pg_atomic_write_u64(&slot->note_tail, tail);
}

/*
 * Fold the samples waiting in a backend's ring into the shared sketches.
 *
 * wait = false (a backend folding its own ring): only ever try locks; on a
 * busy lock stop and leave the rest for later.  wait = true: the collector,
 * or a backend at exit.  Returns true when the ring was emptied.
 */
bool
ch_fold_slot(ChBackendSlot *slot, bool wait)
{
	uint64		head;
	uint64		tail;
	uint64		step;
	ChStmtKey	key;
	ChStmtEntry *entry = NULL;
	TimestampTz now;
	bool		locked;

	if (!pg_atomic_test_set_flag(&slot->folding))
		return false;			/* someone else is folding it right now */

	tail = pg_atomic_read_u64(&slot->tail);
	head = pg_atomic_read_u64(&slot->head);
	pg_read_barrier();
	if (head == tail &&
		pg_atomic_read_u64(&slot->note_head) == pg_atomic_read_u64(&slot->note_tail))
	{
		pg_atomic_clear_flag(&slot->folding);
		return true;
	}
	if (!resolve_scopes(slot, wait))
	{
		pg_atomic_clear_flag(&slot->folding);
		return false;
	}
	if (!acquire(LW_SHARED, wait))
	{
		pg_atomic_clear_flag(&slot->folding);
		return false;
	}
	locked = true;
	now = GetCurrentTimestamp();
	step = pg_atomic_read_u64(&ch_latency->step);
	delta_reset(&stmt_delta);
	delta_reset(&scope_delta);
	memset(&key, 0, sizeof(key));	/* padding is part of the hash key */
	key.dbid = slot->dbid;

	while (tail < head)
	{
		const ChSample *s = &slot->ring[tail % CH_RING_SIZE];
		int			bucket = sample_bucket(s->duration_ns);
		bool		toplevel = (s->flags & CH_SAMPLE_TOPLEVEL) != 0;

		if (s->queryid == UINT64CONST(0))
		{
			/* an error before any statement began: aggregates only */
			delta_add(&scope_delta, s, bucket);
			tail++;
			continue;
		}
		if (entry == NULL || s->queryid != key.queryid ||
			s->namehash != key.namehash ||
			s->userid != key.userid || toplevel != key.toplevel)
		{
			if (entry != NULL)
				delta_apply(&stmt_delta, &entry->total,
							&entry->window[step % CH_STMT_WINDOWS], &scope_delta);
			key.queryid = s->queryid;
			key.namehash = s->namehash;
			key.userid = s->userid;
			key.toplevel = toplevel;
			entry = hash_search(ch_statements, &key, HASH_FIND, NULL);
			if (entry == NULL)
			{
				bool		created;

				/*
				 * A new statement: the one moment a fold needs the exclusive
				 * lock.  Everything gathered so far is applied first.
				 */
				apply_scopes(slot, step, now);
				LWLockRelease(ch_shared->lock);
				locked = false;
				created = create_entry(&key, wait, now);
				if (!created || !acquire(LW_SHARED, wait))
					break;
				locked = true;
				/* the window may have rotated while we were unlocked */
				step = pg_atomic_read_u64(&ch_latency->step);
				entry = hash_search(ch_statements, &key, HASH_FIND, NULL);
				if (entry == NULL)
				{
					/* table full: the sample is counted as dropped */
					tail++;
					continue;
				}
			}
			pg_atomic_write_u64(&entry->last_seen, (uint64) now);
		}
		/* the aggregates get it with the statement's delta */
		delta_add(&stmt_delta, s, bucket);
		tail++;
	}

	if (locked)
	{
		if (entry != NULL)
			delta_apply(&stmt_delta, &entry->total,
						&entry->window[step % CH_STMT_WINDOWS], &scope_delta);
		apply_scopes(slot, step, now);
		/* names only once their statements' samples are all in */
		if (tail == head)
			apply_names(slot);
		LWLockRelease(ch_shared->lock);
	}
	else
	{
		delta_discard(&stmt_delta);
		delta_discard(&scope_delta);
	}

	/* every sample before tail has been read: the owner may reuse them */
	pg_memory_barrier();
	pg_atomic_write_u64(&slot->tail, tail);
	pg_atomic_clear_flag(&slot->folding);
	return tail == head;
}


/* Fold every backend's waiting samples (the collector; reset). */
void
ch_fold_all_slots(void)
{
	for (int i = 0; i < ch_latency->nslots; i++)
	{
		ChBackendSlot *slot = &ch_slots[i];

		if (pg_atomic_read_u64(&slot->head) != pg_atomic_read_u64(&slot->tail) ||
			pg_atomic_read_u64(&slot->note_head) != pg_atomic_read_u64(&slot->note_tail))
			(void) ch_fold_slot(slot, true);
	}
}

