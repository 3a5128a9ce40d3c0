/*-------------------------------------------------------------------------
 *
 * async_mirror.c
 *	  Finding PostgreSQL's LISTEN/NOTIFY queue state (async.c's "Async Queue
 *	  Control" struct and its SLRU), verifying coder_health's mirror of it
 *	  by what its fields hold, and reading it.
 *
 * Finding: each structure is looked up by name with the size PostgreSQL
 * itself registered it under, computed by PostgreSQL's own functions
 * (AsyncShmemSize() less SimpleLruShmemSize() of the queue's buffers, and
 * that SimpleLruShmemSize()), so the lookup neither allocates nor depends
 * on the mirror.  If PostgreSQL ever refused it (a release whose
 * AsyncShmemSize() counts something else), the ERROR is caught and the
 * mirror is reported unusable.
 *
 * Verifying, in the postmaster at startup, right after PostgreSQL created
 * the structures and before any backend ran (ch_async_mirror_verify):
 *	- the size PostgreSQL registered is the mirror's header plus exactly one
 *	  backend entry per possible listener (MaxBackends, + 1 on 13..16);
 *	- every field holds the value async.c gives it: head = tail = 0/0,
 *	  stopPage 0, firstListener -1, and every backend entry pid -1,
 *	  database 0, next -1, position 0/0 (the -1s and 0s tell the two
 *	  layouts apart and check the entries' stride);
 *	- the SLRU has the slot count PostgreSQL configured, every slot empty
 *	  with a buffer, and (13..16) NotifySLRULock as its lock.
 * And at every read (ch_async_read_listeners), what must hold while the
 * queue runs: head and tail within the page range, the tail at most the
 * queue's capacity behind the head; the listener chain in increasing index
 * order within the backend array (async.c inserts in order), each listener
 * with a pid and a database, its position between the tail and the head.
 * A reader that finds otherwise gets the reason and stops trusting the
 * mirror; nothing is ever written here.
 *
 * Locking: the struct is read as async.c reads other backends' entries,
 * under NotifyQueueLock in exclusive mode, for the time it takes to copy
 * the listener chain.  The queue's head alone is read without the lock by
 * the holder of PostgreSQL's NOTIFY lock, which nobody else moves the head
 * under (notify_readback.c says why).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#include "pg/compat.h"
#include "pg/async_mirror.h"

/*
 * The rest of what differs between versions in async.c's state: how many
 * backend entries there are, how many pages may be in use, the SLRU's name
 * (renamed in 17), its segment file names (15 hex digits
 * from 17), and the lock of a page: 13..16 guard all slots with one control
 * lock; 17+ split them into banks of 16 (slru.c's SLRU_BANK_SIZE), page p
 * in bank p % nbanks under that bank's lock.
 */
#if PG_VERSION_NUM >= 170000
#define ASYNC_BACKEND_ENTRIES() (MaxBackends)
#define ASYNC_MAX_PAGES() ((int64) max_notify_queue_pages)
#define NOTIFY_SLRU_NAME "notify"
#define SLRU_BANK_SIZE 16
#define NOTIFY_SEGMENT_FORMAT "pg_notify/%015llX"
#else
#define ASYNC_BACKEND_ENTRIES() (MaxBackends + 1)
/* (QUEUE_MAX_PAGE + 1) / 2 */
#define ASYNC_MAX_PAGES() (CH_ASYNC_PAGE_WRAP / 2)
#define NOTIFY_SLRU_NAME "Notify"
#define NOTIFY_SEGMENT_FORMAT "pg_notify/%04llX"
#endif

/* Where async.c's structures are (same addresses in every process). */
static char *async_control = NULL;
static SlruShared notify_slru = NULL;

/* The layout found at startup. */
static bool has_stop_page = true;

/* ------------------------------------------------------------------------
 * The layouts
 * ------------------------------------------------------------------------
 */
static inline ChAsyncQueueControl *
with_stop(void)
{
	return (ChAsyncQueueControl *) async_control;
}

static inline ChAsyncQueueControlNoStop *
without_stop(void)
{
	return (ChAsyncQueueControlNoStop *) async_control;
}

static inline ChAsyncQueuePosition
async_tail(void)
{
	return has_stop_page ? with_stop()->tail : without_stop()->tail;
}

static inline int
async_first_listener(void)
{
	return has_stop_page ? with_stop()->firstListener :
		without_stop()->firstListener;
}

static inline ChAsyncBackendStatus *
async_backend(int i)
{
	return has_stop_page ? &with_stop()->backend[i] : &without_stop()->backend[i];
}

ChAsyncQueuePosition
ch_async_head(void)
{
	return has_stop_page ? with_stop()->head : without_stop()->head;
}

int
ch_async_backend_entries(void)
{
	return ASYNC_BACKEND_ENTRIES();
}

int64
ch_async_max_pages(void)
{
	return ASYNC_MAX_PAGES();
}

bool
ch_async_mirror_has_stop_page(void)
{
	return has_stop_page;
}

/* Pages from page from forward to page to (13..16: across the wrap). */
int64
ch_async_page_distance(int64 from, int64 to)
{
	int64		pages = to - from;

	if (CH_ASYNC_PAGE_WRAP > 0 && pages < 0)
		pages += CH_ASYNC_PAGE_WRAP;
	return pages;
}

/* Bytes from position (page, offset) forward to (to_page, to_offset). */
int64
ch_async_byte_distance(int64 from_page, int from_offset,
					   int64 to_page, int to_offset)
{
	return ch_async_page_distance(from_page, to_page) * BLCKSZ +
		(to_offset - from_offset);
}

int64
ch_async_next_page(int64 page)
{
	page++;
	if (CH_ASYNC_PAGE_WRAP > 0 && page >= CH_ASYNC_PAGE_WRAP)
		page = 0;
	return page;
}

/* ------------------------------------------------------------------------
 * Finding
 * ------------------------------------------------------------------------
 */

/* The bytes of the control struct in the mirror's layout. */
#define MIRROR_SIZE(type) \
	add_size(offsetof(type, backend), \
			 mul_size(ASYNC_BACKEND_ENTRIES(), sizeof(ChAsyncBackendStatus)))

/* Look up an existing struct; NULL (and why) if PostgreSQL refuses. */
static void *
lookup_struct(const char *name, Size size, const char **why)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	void	   *ptr = NULL;
	bool		found = false;

	PG_TRY();
	{
		ptr = ShmemInitStruct(name, size, &found);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* ShmemInitStruct released its lock before raising */
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		*why = psprintf("%s", edata->message ? edata->message : "error");
		FreeErrorData(edata);
		ptr = NULL;
	}
	PG_END_TRY();
	if (ptr != NULL && !found)
	{
		*why = psprintf("No shared memory structure \"%s\"", name);
		return NULL;
	}
	return ptr;
}

static bool
find_structs(const char **why)
{
	async_control = lookup_struct(CH_ASYNC_CONTROL_NAME,
								  CH_ASYNC_REGISTERED_SIZE(), why);
	notify_slru = async_control == NULL ? NULL :
		lookup_struct(NOTIFY_SLRU_NAME,
					  SimpleLruShmemSize(CH_NOTIFY_SLRU_SLOTS(), 0), why);
	if (notify_slru == NULL)
		async_control = NULL;
	return async_control != NULL;
}

/* ------------------------------------------------------------------------
 * Verifying at startup
 * ------------------------------------------------------------------------
 */

/* The fields as async.c leaves them at startup, in the current layout. */
static bool
control_is_pristine(void)
{
	ChAsyncQueuePosition head = ch_async_head();
	ChAsyncQueuePosition tail = async_tail();

	if (head.page != 0 || head.offset != 0 || tail.page != 0 || tail.offset != 0 ||
		async_first_listener() != CH_ASYNC_INVALID_LISTENER)
		return false;
	if (has_stop_page && with_stop()->stopPage != 0)
		return false;
	for (int i = CH_ASYNC_FIRST_INDEX; i < ASYNC_BACKEND_ENTRIES(); i++)
	{
		ChAsyncBackendStatus *b = async_backend(i);

		if (b->pid != -1 || b->dboid != InvalidOid ||
			b->nextListener != CH_ASYNC_INVALID_LISTENER ||
			b->pos.page != 0 || b->pos.offset != 0)
			return false;
	}
	return true;
}

static bool
slru_is_pristine(void)
{
	int			nslots = CH_NOTIFY_SLRU_SLOTS();

	if (notify_slru->num_slots != nslots || nslots <= 0)
		return false;
#if PG_VERSION_NUM >= 170000
	if (nslots % SLRU_BANK_SIZE != 0)
		return false;
#else
	if (notify_slru->ControlLock != NotifySLRULock)
		return false;
#endif
	for (int s = 0; s < nslots; s++)
		if (notify_slru->page_status[s] != SLRU_PAGE_EMPTY ||
			notify_slru->page_buffer[s] == NULL)
			return false;
	return true;
}

/*
 * Find async.c's structures and verify the mirror by meaning.  Only in the
 * postmaster, when PostgreSQL has just created them (startup or crash
 * restart), with AddinShmemInitLock held.  NULL when the mirror holds;
 * otherwise why not, and nothing is to be read.
 */
const char *
ch_async_mirror_verify(void)
{
	const char *why = NULL;
	Size		registered;

	if (!find_structs(&why))
		return why;

	/* the entries PostgreSQL sized the struct for are the ones we expect */
	registered = CH_ASYNC_REGISTERED_SIZE();
	if (registered == MIRROR_SIZE(ChAsyncQueueControl))
		has_stop_page = true;
	else if (registered == MIRROR_SIZE(ChAsyncQueueControlNoStop))
		has_stop_page = false;
	else
		why = psprintf("\"%s\" has %zu bytes, not a header and %d backend entries (%zu or %zu bytes)",
					   CH_ASYNC_CONTROL_NAME, registered, ASYNC_BACKEND_ENTRIES(),
					   MIRROR_SIZE(ChAsyncQueueControl),
					   MIRROR_SIZE(ChAsyncQueueControlNoStop));

	/* 13..16: both layouts have this size; the one whose fields hold wins */
	if (why == NULL && !control_is_pristine() &&
		MIRROR_SIZE(ChAsyncQueueControl) == MIRROR_SIZE(ChAsyncQueueControlNoStop))
		has_stop_page = !has_stop_page;
	if (why == NULL && !control_is_pristine())
		why = psprintf("The head, tail or listener entries of \"%s\" do not hold their initial values",
					   CH_ASYNC_CONTROL_NAME);
	if (why == NULL && !slru_is_pristine())
		why = psprintf("The %d slots of SLRU \"%s\" are not in their initial state",
					   CH_NOTIFY_SLRU_SLOTS(), NOTIFY_SLRU_NAME);
	if (why != NULL)
	{
		async_control = NULL;
		notify_slru = NULL;
	}
	return why;
}

/*
 * EXEC_BACKEND: find the structures again in a new process, in the layout
 * the postmaster verified.
 */
bool
ch_async_mirror_attach(bool stop_page)
{
	const char *why = NULL;

	has_stop_page = stop_page;
	return find_structs(&why);
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------
 */

/* A position inside the page range, its offset inside a page. */
static inline bool
position_valid(ChAsyncQueuePosition p)
{
	return p.page >= 0 &&
		(CH_ASYNC_PAGE_WRAP == 0 || (int64) p.page < CH_ASYNC_PAGE_WRAP) &&
		p.offset >= 0 && p.offset <= BLCKSZ;
}

/*
 * Copy head, tail and the listener chain (at most max listeners) under
 * NotifyQueueLock, and check what must hold while the queue runs.  The
 * number of listeners, or -1 and why when something does not hold.
 */
int
ch_async_read_listeners(ChAsyncListener *out, int max,
						ChAsyncQueuePosition *head, ChAsyncQueuePosition *tail,
						const char **why)
{
	int			nentries = ASYNC_BACKEND_ENTRIES();
	int			n = 0;
	int64		used;

	*why = NULL;
	if (async_control == NULL)
	{
		*why = "The NOTIFY queue was not found";
		return -1;
	}
	LWLockAcquire(NotifyQueueLock, LW_EXCLUSIVE);
	*head = ch_async_head();
	*tail = async_tail();
	for (int i = async_first_listener(), prev = CH_ASYNC_FIRST_INDEX - 1;
		 i != CH_ASYNC_INVALID_LISTENER;
		 prev = i, i = async_backend(i)->nextListener)
	{
		ChAsyncBackendStatus *b;

		/* in the array, in increasing order (so no loop) */
		if (i < CH_ASYNC_FIRST_INDEX || i >= nentries || i <= prev)
		{
			*why = "A listener index is out of order or outside the backend array";
			break;
		}
		b = async_backend(i);
		if (n < max)
		{
			out[n].pid = b->pid;
			out[n].dboid = b->dboid;
			out[n].index = i;
			out[n].page = b->pos.page;
			out[n].offset = b->pos.offset;
		}
		n++;
	}
	LWLockRelease(NotifyQueueLock);
	if (*why != NULL)
		return -1;

	used = ch_async_page_distance(tail->page, head->page);
	if (!position_valid(*head) || !position_valid(*tail) ||
		used > ASYNC_MAX_PAGES() + SLRU_PAGES_PER_SEGMENT ||
		ch_async_byte_distance(tail->page, tail->offset,
							   head->page, head->offset) < 0)
	{
		*why = "The queue's head and tail are not an ordered pair of positions";
		return -1;
	}
	n = Min(n, max);
	for (int k = 0; k < n; k++)
	{
		ChAsyncQueuePosition pos = {.page = (ch_async_page) out[k].page,
		.offset = out[k].offset};

		if (out[k].pid <= 0 || out[k].dboid == InvalidOid ||
			!position_valid(pos) ||
			ch_async_page_distance(tail->page, pos.page) > used ||
			ch_async_byte_distance(tail->page, tail->offset,
								   pos.page, pos.offset) < 0 ||
			ch_async_byte_distance(pos.page, pos.offset,
								   head->page, head->offset) < 0)
		{
			*why = "A listener has no pid or database, or a position outside the queue";
			return -1;
		}
	}
	return n;
}

/* Read an evicted page from its segment file. */
static bool
read_page_from_file(int64 pageno, char *buf)
{
	char		path[MAXPGPATH];
	int64		segno = pageno / SLRU_PAGES_PER_SEGMENT;
	off_t		offset = (off_t) (pageno % SLRU_PAGES_PER_SEGMENT) * BLCKSZ;
	int			fd;
	ssize_t		n;

	snprintf(path, sizeof(path), NOTIFY_SEGMENT_FORMAT,
			 (unsigned long long) segno);
	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return false;
	n = pread(fd, buf, BLCKSZ, offset);
	close(fd);
	return n == BLCKSZ;
}

/* The lock guarding SLRU page pageno, and the slots it may be in. */
static inline LWLock *
page_lock(int64 pageno, int *first, int *last)
{
#if PG_VERSION_NUM >= 170000
	int			nbanks = notify_slru->num_slots / SLRU_BANK_SIZE;
	int			bankno = (int) (pageno % nbanks);

	*first = bankno * SLRU_BANK_SIZE;
	*last = *first + SLRU_BANK_SIZE;
	return &notify_slru->bank_locks[bankno].lock;
#else
	*first = 0;
	*last = notify_slru->num_slots;
	return notify_slru->ControlLock;
#endif
}

int
ch_async_with_page(int64 pageno, ChAsyncPageReader reader, void *arg)
{
	int			first;
	int			last;
	LWLock	   *lock;
	bool		ok = true;
	bool		in_buffers = false;
	static char *filebuf = NULL;

	if (notify_slru == NULL)
		return -1;
	lock = page_lock(pageno, &first, &last);
	LWLockAcquire(lock, LW_SHARED);
	for (int s = first; s < last; s++)
	{
		SlruPageStatus status = notify_slru->page_status[s];

		if (notify_slru->page_number[s] == pageno &&
			(status == SLRU_PAGE_VALID || status == SLRU_PAGE_WRITE_IN_PROGRESS))
		{
			in_buffers = true;
			ok = reader(arg, notify_slru->page_buffer[s]);
			break;
		}
	}
	LWLockRelease(lock);
	if (in_buffers)
		return ok ? 1 : 0;

	if (filebuf == NULL)
		filebuf = MemoryContextAllocExtended(TopMemoryContext, BLCKSZ,
											 MCXT_ALLOC_NO_OOM);
	if (filebuf == NULL || !read_page_from_file(pageno, filebuf))
		return -1;
	return reader(arg, filebuf) ? 1 : 0;
}
