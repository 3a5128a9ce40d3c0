/*-------------------------------------------------------------------------
 *
 * notify_track.c
 *	  LISTEN/NOTIFY: settings and shared memory, listeners per channel
 *	  family, and the transaction callbacks that count notifications.
 *
 * Notifications are counted from PostgreSQL's own NOTIFY queue: at commit,
 * a backend that wrote to the queue reads its own entries back while it
 * still holds the lock that serializes writers (notify_readback.c).  No
 * statement, plan, function call or privilege is touched to count them;
 * what is counted is what PostgreSQL delivers, whatever sent it.
 *
 * LISTEN / UNLISTEN / UNLISTEN * / DISCARD ALL are queued like async.c
 * queues them and applied at commit to a backend-local copy of the listen
 * set; the families it covers go to this backend's slot in shared memory
 * (a seqlock-style counter makes readers retry a half-written slot).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "core/module.h"
#include "notify.h"

PG_FUNCTION_INFO_V1(coder_health_pg_notify);

/* settings */
int			ch_max_channel_families = 1000;
int			ch_notify_stall_bytes = 1024 * 1024;
int			ch_notify_stall_seconds = 60;
bool		ch_track_notify = true;

/* shared state */
ChNotifyShared *ch_notify = NULL;
ChFamily   *ch_families = NULL;
ChListenSlot *ch_listen_slots = NULL;
ChListenerProgress *ch_progress = NULL;

#define CH_WRAPPER_SCHEMA "coder_health_notify"

/* ------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------
 */
static void
ch_define_notify_settings(void)
{
	DefineCustomIntVariable("coder_health.max_channel_families",
							"How many channel families LISTEN/NOTIFY statistics keep apart.",
							"Channel names with UUIDs and digit runs replaced by * form a family; "
							"families beyond this count are added up in the (other) row.",
							&ch_max_channel_families,
							1000, 10, 100000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("coder_health.notify_stall_bytes",
							"Backlog from which a listener that does not read counts as stalled.",
							NULL,
							&ch_notify_stall_bytes,
							1024 * 1024, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("coder_health.notify_stall_seconds",
							"How long a listener with a backlog may sit in a transaction or not read before it counts as stalled.",
							NULL,
							&ch_notify_stall_seconds,
							60, 1, 86400,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("coder_health.track_notify",
							 "Whether notifications and LISTEN are counted per channel family.",
							 NULL,
							 &ch_track_notify,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * Shared memory
 * ------------------------------------------------------------------------
 */
static uint32
index_size(void)
{
	uint32		n = 1;

	while (n < (uint32) (ch_max_channel_families + 1) * 2)
		n <<= 1;
	return n;
}

int
ch_notify_total_procs(void)
{
	return compat_total_procs();
}

Size
ch_notify_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(ChNotifyShared));

	size = add_size(size, mul_size(ch_max_channel_families + 1, sizeof(ChFamily)));
	size = add_size(size, mul_size(index_size(), sizeof(pg_atomic_uint32)));
	size = MAXALIGN(size);
	size = add_size(size, mul_size(ch_notify_total_procs(), sizeof(ChListenSlot)));
	size = add_size(size, mul_size(ch_notify_total_procs() + 1,
								   sizeof(ChListenerProgress)));
	return size;
}

void
ch_notify_shmem_init(void)
{
	bool		found;
	char	   *p;
	uint32		nindex = index_size();
	int			nprocs = ch_notify_total_procs();
	TimestampTz now = GetCurrentTimestamp();

	p = ShmemInitStruct("coder_health notify", ch_notify_shmem_size(), &found);
	ch_notify = (ChNotifyShared *) p;
	p += MAXALIGN(sizeof(ChNotifyShared));
	ch_families = (ChFamily *) p;
	p += (Size) (ch_max_channel_families + 1) * sizeof(ChFamily);
	p += (Size) nindex * sizeof(pg_atomic_uint32);
	p = (char *) MAXALIGN(p);
	ch_listen_slots = (ChListenSlot *) p;
	p += (Size) nprocs * sizeof(ChListenSlot);
	ch_progress = (ChListenerProgress *) p;

	if (found)
	{
		/* EXEC_BACKEND: find async.c's structures again */
		ch_notify_readback_attach(false);
		return;
	}

	ch_notify->max_families = ch_max_channel_families;
	ch_notify->index_size = nindex;
	pg_atomic_init_u32(&ch_notify->nfamilies, 1);
	pg_atomic_init_u64(&ch_notify->unread_pages, 0);
	pg_atomic_init_u64(&ch_notify->reset_time, (uint64) now);
	pg_atomic_init_u64(&ch_notify->snap_step, 0);
	for (int i = 0; i < CH_NOTIFY_SNAPS; i++)
		pg_atomic_init_u64(&ch_notify->snap_time[i], (uint64) now);
	for (int w = 0; w < CH_NOTIFY_WINDOWS; w++)
		ch_atomic_sketch_init(&ch_notify->commit_window[w]);
	ch_notify->nprogress = nprocs + 1;
	ch_notify->nslots = nprocs;

	ch_family_entry_init(&ch_families[CH_FAMILY_OTHER], "(other)");
	{
		pg_atomic_uint32 *index = (pg_atomic_uint32 *)
			(ch_families + ch_max_channel_families + 1);

		for (uint32 i = 0; i < nindex; i++)
			pg_atomic_init_u32(&index[i], CH_FAMILY_SLOT_EMPTY);
	}
	for (int i = 0; i < nprocs; i++)
	{
		memset(&ch_listen_slots[i], 0, sizeof(ChListenSlot));
		pg_atomic_init_u32(&ch_listen_slots[i].changecount, 0);
	}
	memset(ch_progress, 0, sizeof(ChListenerProgress) * (nprocs + 1));

	/* PostgreSQL created its queue just now: find it, check the mirror */
	ch_notify_readback_attach(true);
}

static Size
ch_notify_used_bytes(void)
{
	return MAXALIGN(sizeof(ChNotifyShared)) +
		(Size) pg_atomic_read_u32(&ch_notify->nfamilies) * sizeof(ChFamily) +
		(Size) ch_notify->index_size * sizeof(pg_atomic_uint32) +
		(Size) ch_notify->nslots * sizeof(ChListenSlot) +
		(Size) ch_notify->nprogress * sizeof(ChListenerProgress);
}

/* ------------------------------------------------------------------------
 * Backend-local LISTEN / UNLISTEN actions of this transaction
 * ------------------------------------------------------------------------
 */
typedef enum
{
	ACT_LISTEN,
	ACT_UNLISTEN,
	ACT_UNLISTEN_ALL
} ListenActionKind;

typedef struct ListenAction
{
	ListenActionKind kind;
	int			level;
	char		channel[NAMEDATALEN];
} ListenAction;

static ListenAction *actions = NULL;
static int	nactions = 0;
static int	maxactions = 0;

/* The committed listen set: channel -> family entry. */
typedef struct ListenEntry
{
	char		channel[NAMEDATALEN];
	uint32		family;
} ListenEntry;

static HTAB *listen_set = NULL;
static bool slot_exit_registered = false;

static void clear_my_slot(int code, Datum arg);
static bool ensure_listen_set(void);

static inline bool
notify_tracking(void)
{
	return ch_track_notify && ch_notify != NULL && !IsParallelWorker();
}

/* Grow a local array without ever raising: false when memory is short. */
static bool
grow(void **array, int *max, Size elem)
{
	int			newmax = *max == 0 ? 16 : *max * 2;
	void	   *fresh;

	fresh = MemoryContextAllocExtended(TopMemoryContext, (Size) newmax * elem,
									   MCXT_ALLOC_NO_OOM);
	if (fresh == NULL)
		return false;
	if (*array != NULL)
	{
		memcpy(fresh, *array, (Size) *max * elem);
		pfree(*array);
	}
	*array = fresh;
	*max = newmax;
	return true;
}


static void
record_action(ListenActionKind kind, const char *channel)
{
	ListenAction *a;

	/* set up here, not in the commit callback, where nothing may fail */
	if (!slot_exit_registered)
	{
		before_shmem_exit(clear_my_slot, (Datum) 0);
		slot_exit_registered = true;
	}
	if (!ensure_listen_set())
		return;
	if (nactions >= maxactions &&
		!grow((void **) &actions, &maxactions, sizeof(ListenAction)))
		return;
	a = &actions[nactions++];
	a->kind = kind;
	a->level = GetCurrentTransactionNestLevel();
	strlcpy(a->channel, channel ? channel : "", NAMEDATALEN);
}

/* Forget the transaction's actions; keep small buffers for the next. */
static void
forget_transaction(void)
{
	nactions = 0;
}

/* ------------------------------------------------------------------------
 * Commit: apply LISTEN / UNLISTEN to the local set, publish the slot
 * ------------------------------------------------------------------------
 */
static void
clear_my_slot(int code, Datum arg)
{
	int			n = compat_my_proc_number();
	ChListenSlot *slot;

	if (ch_notify == NULL || n < 0 || n >= ch_notify->nslots)
		return;
	slot = &ch_listen_slots[n];
	pg_atomic_fetch_add_u32(&slot->changecount, 1);
	pg_write_barrier();
	slot->pid = 0;
	slot->nchannels = 0;
	slot->nfamilies = 0;
	slot->overflow = false;
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&slot->changecount, 1);
}

static bool
ensure_listen_set(void)
{
	HASHCTL		info;

	if (listen_set != NULL)
		return true;
	memset(&info, 0, sizeof(info));
	info.keysize = NAMEDATALEN;
	info.entrysize = sizeof(ListenEntry);
	info.hcxt = TopMemoryContext;
	listen_set = hash_create("coder_health listen set", 64, &info,
							 HASH_ELEM | CH_HASH_STRINGS | HASH_CONTEXT);
	return listen_set != NULL;
}

static void
publish_listen_slot(void)
{
	int			n = compat_my_proc_number();
	ChListenSlot *slot;
	HASH_SEQ_STATUS hs;
	ListenEntry *e;
	uint32		fam[CH_NOTIFY_SLOT_FAMILIES];
	int			nfam = 0;
	bool		overflow = false;
	long		nchannels = hash_get_num_entries(listen_set);

	if (n < 0 || n >= ch_notify->nslots)
		return;
	slot = &ch_listen_slots[n];

	hash_seq_init(&hs, listen_set);
	while ((e = hash_seq_search(&hs)) != NULL)
	{
		int			k;

		for (k = 0; k < nfam; k++)
			if (fam[k] == e->family)
				break;
		if (k == nfam)
		{
			if (nfam < CH_NOTIFY_SLOT_FAMILIES)
				fam[nfam++] = e->family;
			else
				overflow = true;
		}
	}

	pg_atomic_fetch_add_u32(&slot->changecount, 1);
	pg_write_barrier();
	slot->pid = nchannels > 0 ? MyProcPid : 0;
	slot->nchannels = (int32) nchannels;
	slot->nfamilies = nfam;
	slot->overflow = overflow;
	memcpy(slot->family, fam, sizeof(uint32) * nfam);
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&slot->changecount, 1);
}

/* out of line: its buffers stay off the path of every other commit */
static pg_noinline void
apply_listen_actions(void)
{
	bool		changed = false;

	if (listen_set == NULL)
		return;
	for (int i = 0; i < nactions; i++)
	{
		ListenAction *a = &actions[i];

		switch (a->kind)
		{
			case ACT_LISTEN:
				{
					bool		found;
					ListenEntry *e = hash_search(listen_set, a->channel,
												 HASH_ENTER_NULL, &found);

					if (e != NULL && !found)
					{
						e->family = ch_family_of_channel(a->channel,
														 (int) strlen(a->channel));
						changed = true;
					}
					break;
				}
			case ACT_UNLISTEN:
				if (hash_search(listen_set, a->channel, HASH_REMOVE, NULL))
					changed = true;
				break;
			case ACT_UNLISTEN_ALL:
				{
					HASH_SEQ_STATUS hs;
					ListenEntry *e;

					hash_seq_init(&hs, listen_set);
					while ((e = hash_seq_search(&hs)) != NULL)
					{
						hash_search(listen_set, e->channel, HASH_REMOVE, NULL);
						changed = true;
					}
					break;
				}
		}
	}
	if (changed)
		publish_listen_slot();
}

/* ------------------------------------------------------------------------
 * Transaction callbacks
 * ------------------------------------------------------------------------
 */
/* src/hooks.c's transaction callback, first (before clients' and latency's) */
void
ch_notify_xact_callback(XactEvent event)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* the start of the commit phase, should it notify */
			if (notify_tracking())
				ch_notify_readback_pre_commit();
			break;
		case XACT_EVENT_COMMIT:
			ch_notify_readback_end(true);
			if (nactions > 0)
			{
				if (ch_notify != NULL)
					apply_listen_actions();
				forget_transaction();
			}
			break;
		case XACT_EVENT_ABORT:
			ch_notify_readback_end(false);
			forget_transaction();
			break;
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* PREPARE TRANSACTION refuses NOTIFY and LISTEN anyway */
			forget_transaction();
			break;
		default:
			break;
	}
}

/* src/hooks.c's subtransaction callback, first (before latency's) */
void
ch_notify_subxact_callback(SubXactEvent event)
{
	int			level;

	if (nactions == 0)
		return;
	level = GetCurrentTransactionNestLevel();
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* actions are in level order: cut at the first of this level */
		int			i;

		for (i = 0; i < nactions && actions[i].level < level; i++)
			;
		nactions = i;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* the parent owns them now */
		for (int i = 0; i < nactions; i++)
			if (actions[i].level >= level)
				actions[i].level = level - 1;
	}
}

/* ------------------------------------------------------------------------
 * LISTEN, UNLISTEN, DISCARD ALL
 * ------------------------------------------------------------------------
 */

/*
 * After the previous ProcessUtility returned (src/hooks.c): PostgreSQL
 * accepted the statement; note what it queued.
 */
void
ch_notify_ProcessUtility(PlannedStmt *pstmt)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (!notify_tracking())
		return;
	switch (nodeTag(parsetree))
	{
		case T_ListenStmt:
			record_action(ACT_LISTEN, ((ListenStmt *) parsetree)->conditionname);
			break;
		case T_UnlistenStmt:
			{
				UnlistenStmt *stmt = (UnlistenStmt *) parsetree;

				if (stmt->conditionname)
					record_action(ACT_UNLISTEN, stmt->conditionname);
				else
					record_action(ACT_UNLISTEN_ALL, NULL);
				break;
			}
		case T_DiscardStmt:
			if (((DiscardStmt *) parsetree)->target == DISCARD_ALL)
				record_action(ACT_UNLISTEN_ALL, NULL);
			break;
		default:
			break;
	}
}

/*
 * The C function behind 0.3.0's coder_health_notify.pg_notify, which 0.4.0
 * drops (the planner no longer swaps it in).  It stays so that a 0.3.0
 * installation still loads; calling it says what to do.
 */
Datum
coder_health_pg_notify(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("coder_health_notify.pg_notify is no longer used"),
			 errhint("Run ALTER EXTENSION coder_health UPDATE, then call pg_catalog.pg_notify: coder_health counts notifications from the NOTIFY queue.")));
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Collector: progress of listeners, rate snapshots, window rotation
 * ------------------------------------------------------------------------
 */
static void
ch_notify_collect(TimestampTz now)
{
	uint64		step = pg_atomic_read_u64(&ch_notify->snap_step);
	TimestampTz last = (TimestampTz) pg_atomic_read_u64(
														&ch_notify->snap_time[step % CH_NOTIFY_SNAPS]);

	ch_notify_track_progress(now);

	if (now - last >= (int64) CH_NOTIFY_SNAP_S * USECS_PER_SEC)
	{
		uint64		next = step + 1;
		uint32		nfam = pg_atomic_read_u32(&ch_notify->nfamilies);

		for (uint32 i = 0; i < nfam && i <= (uint32) ch_notify->max_families; i++)
			pg_atomic_write_u64(&ch_families[i].snap[next % CH_NOTIFY_SNAPS],
								pg_atomic_read_u64(&ch_families[i].notifications));
		pg_atomic_write_u64(&ch_notify->snap_time[next % CH_NOTIFY_SNAPS],
							(uint64) now);
		ch_atomic_sketch_clear(&ch_notify->commit_window[next % CH_NOTIFY_WINDOWS]);
		pg_write_barrier();
		pg_atomic_write_u64(&ch_notify->snap_step, next);
	}
}

/* Forget counts (families and listeners stay). */
void
ch_notify_reset(void)
{
	TimestampTz now = GetCurrentTimestamp();
	uint32		nfam = pg_atomic_read_u32(&ch_notify->nfamilies);

	for (uint32 i = 0; i < nfam && i <= (uint32) ch_notify->max_families; i++)
	{
		ChFamily   *f = &ch_families[i];

		pg_atomic_write_u64(&f->notifications, 0);
		pg_atomic_write_u64(&f->bytes, 0);
		pg_atomic_write_u64(&f->max_payload, 0);
		pg_atomic_write_u64(&f->last_notify_at, 0);
		for (int w = 0; w < CH_HLL_WORDS; w++)
			pg_atomic_write_u32(&f->hll[w], 0);
		for (int s = 0; s < CH_NOTIFY_SNAPS; s++)
			pg_atomic_write_u64(&f->snap[s], 0);
	}
	for (int w = 0; w < CH_NOTIFY_WINDOWS; w++)
		ch_atomic_sketch_clear(&ch_notify->commit_window[w]);
	for (int s = 0; s < CH_NOTIFY_SNAPS; s++)
		pg_atomic_write_u64(&ch_notify->snap_time[s], (uint64) now);
	pg_atomic_write_u64(&ch_notify->unread_pages, 0);
	pg_atomic_write_u64(&ch_notify->reset_time, (uint64) now);
}

const ChModule ch_notify_module = {
	.name = "notify",
	.define_settings = ch_define_notify_settings,
	.shmem_size = ch_notify_shmem_size,
	.shmem_init = ch_notify_shmem_init,
	.collect = ch_notify_collect,
	.used_bytes = ch_notify_used_bytes,
	.history_metrics = ch_notify_history_metrics,
	.nhistory_metrics = CH_NOTIFY_HM_COUNT,
	.history_sample = ch_notify_history_sample,
	.save_version = CH_NOTIFY_SECTION_VERSION,
	.saved_what = "channel families",
	.save = ch_notify_save,
	.load = ch_notify_load,
};
