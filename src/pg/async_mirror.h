/*-------------------------------------------------------------------------
 *
 * async_mirror.h
 *	  A mirror of PostgreSQL's private LISTEN/NOTIFY queue state (async.c's
 *	  "Async Queue Control" struct, its queue entries and its SLRU), one
 *	  layout per major version, verified at startup by what its fields
 *	  hold (async_mirror.c).
 *
 * async.c keeps these structures private; coder_health's notify module
 * reads them (notify_queue.c: head, tail and each listener's position;
 * notify_readback.c: the entries a committing backend wrote).  Nothing
 * outside this file and async_mirror.c knows their layout; nothing outside
 * src/pg/ tests PG_VERSION_NUM.
 *
 *	13..16: 32-bit page numbers that wrap at QUEUE_MAX_PAGE + 1; listeners
 *	        are indexed by BackendId (1-based, backend[0] unused); at most
 *	        half the page space in use (8 GB).
 *	17..18: 64-bit page numbers that never wrap; listeners are indexed by
 *	        ProcNumber (0-based, MaxBackends entries); the limit is the
 *	        max_notify_queue_pages setting.
 *
 * Each family has two layouts: with stopPage (the physical tail; every
 * release checked: 13.16, 15, 17.12, 18.6) and without it (async.c before
 * the truncation fix that added it).  On 13..16 both have the same size;
 * async_mirror.c tells them apart at startup by what the fields hold.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_ASYNC_MIRROR_H
#define CODER_HEALTH_ASYNC_MIRROR_H

#include "postgres.h"

#include "access/slru.h"
#include "commands/async.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

/* The name async.c registers its struct under, the same 13..18. */
#define CH_ASYNC_CONTROL_NAME "Async Queue Control"

#if PG_VERSION_NUM >= 170000

/* 17..18 */
typedef int64 ch_async_page;

/* the queue's SLRU buffers: a setting from 17 on */
#define CH_NOTIFY_SLRU_SLOTS() (notify_buffers)

#define CH_ASYNC_INVALID_LISTENER (-1)	/* INVALID_PROC_NUMBER */
#define CH_ASYNC_FIRST_INDEX 0
#define CH_ASYNC_PAGE_WRAP 0			/* pages never wrap */

#else

/* 13..16 */
typedef int ch_async_page;

#define CH_NOTIFY_SLRU_SLOTS() (NUM_NOTIFY_BUFFERS)

#define CH_ASYNC_INVALID_LISTENER (-1)	/* InvalidBackendId */
#define CH_ASYNC_FIRST_INDEX 1
/* QUEUE_MAX_PAGE + 1, with QUEUE_MAX_PAGE = SLRU_PAGES_PER_SEGMENT * 0x10000 - 1 */
#define CH_ASYNC_PAGE_WRAP ((int64) SLRU_PAGES_PER_SEGMENT * 0x10000)

#endif

/* async.c's QueuePosition */
typedef struct ChAsyncQueuePosition
{
	ch_async_page page;
	int			offset;
} ChAsyncQueuePosition;

/* async.c's QueueBackendStatus */
typedef struct ChAsyncBackendStatus
{
	int32		pid;
	Oid			dboid;
	int			nextListener;	/* BackendId / ProcNumber */
	ChAsyncQueuePosition pos;
} ChAsyncBackendStatus;

/* async.c's AsyncQueueControl, with stopPage */
typedef struct ChAsyncQueueControl
{
	ChAsyncQueuePosition head;
	ChAsyncQueuePosition tail;
	ch_async_page stopPage;
	int			firstListener;
	TimestampTz lastQueueFillWarn;
	ChAsyncBackendStatus backend[FLEXIBLE_ARRAY_MEMBER];
} ChAsyncQueueControl;

/* async.c's AsyncQueueControl before stopPage */
typedef struct ChAsyncQueueControlNoStop
{
	ChAsyncQueuePosition head;
	ChAsyncQueuePosition tail;
	int			firstListener;
	TimestampTz lastQueueFillWarn;
	ChAsyncBackendStatus backend[FLEXIBLE_ARRAY_MEMBER];
} ChAsyncQueueControlNoStop;

/*
 * The bytes PostgreSQL registers its struct under: what AsyncShmemSize()
 * counts, less the SLRU's part.
 */
#define CH_ASYNC_REGISTERED_SIZE() \
	(AsyncShmemSize() - SimpleLruShmemSize(CH_NOTIFY_SLRU_SLOTS(), 0))

/*
 * One entry of the queue (async.c's AsyncQueueEntry, the same 13..18):
 * header, then channel and payload, each NUL-terminated; length rounded up
 * to int alignment.  A page ends with a filler entry of dboid 0.
 */
typedef struct ChAsyncQueueEntryHeader
{
	int			length;
	Oid			dboid;
	TransactionId xid;
	int32		srcPid;
} ChAsyncQueueEntryHeader;

#define CH_ASYNC_ENTRY_EMPTY_SIZE (sizeof(ChAsyncQueueEntryHeader) + 2)
#define CH_ASYNC_QUEUEALIGN(len) INTALIGN(len)

/* A copy of one listener of the queue (ch_async_read_listeners). */
typedef struct ChAsyncListener
{
	int32		pid;
	Oid			dboid;
	int			index;			/* into PostgreSQL's backend[] array */
	int64		page;
	int32		offset;
} ChAsyncListener;

/* async_mirror.c: finding and verifying, in the postmaster at startup */
extern const char *ch_async_mirror_verify(void);
extern bool ch_async_mirror_attach(bool has_stop_page);
extern bool ch_async_mirror_has_stop_page(void);

/* async_mirror.c: reading, once verified */
extern ChAsyncQueuePosition ch_async_head(void);
extern int	ch_async_read_listeners(ChAsyncListener *out, int max,
									ChAsyncQueuePosition *head,
									ChAsyncQueuePosition *tail,
									const char **why);
extern int	ch_async_backend_entries(void);
extern int64 ch_async_max_pages(void);
extern int64 ch_async_next_page(int64 page);
extern int64 ch_async_page_distance(int64 from, int64 to);
extern int64 ch_async_byte_distance(int64 from_page, int from_offset,
									int64 to_page, int to_offset);

/*
 * async_mirror.c: the queue's pages.  ch_async_with_page hands page
 * pageno's bytes to reader: from the SLRU's buffers, under the SLRU's lock
 * in shared mode (the bank's lock from 17 on), which keeps the page from
 * being replaced meanwhile; or, when it was evicted, read from its segment
 * file into a buffer of this process.  1 when the reader accepted the
 * page, 0 when it did not, -1 when the page is in neither place.
 */
typedef bool (*ChAsyncPageReader) (void *arg, const char *page);

extern int	ch_async_with_page(int64 pageno, ChAsyncPageReader reader, void *arg);

#endif							/* CODER_HEALTH_ASYNC_MIRROR_H */
