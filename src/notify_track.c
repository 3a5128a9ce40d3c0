/*-------------------------------------------------------------------------
 *
 * notify_track.c
 *	  Counting committed notifications per channel family, listeners per
 *	  family, and the commit phase of notifying transactions.
 *
 * What counts is what PostgreSQL delivers: notifications of committed
 * transactions, minus those of rolled-back subtransactions, with
 * duplicates (same channel and payload in one transaction) folded the way
 * async.c folds them.  Each NOTIFY or pg_notify() call appends a record to
 * a backend-local array after PostgreSQL accepted it; the commit callback
 * folds the surviving records into the shared family table with atomic adds
 * (notify_family.c), so the notifying path takes no lock of ours.
 *
 * pg_notify() is built in, so fmgr hooks never see it.  The planner hook
 * replaces its FuncExpr with coder_health_notify.pg_notify(text, text)
 * before planning: a C function that calls PostgreSQL's pg_notify() itself
 * (so every check and error is PostgreSQL's own) and then makes the record.
 * That covers SQL, prepared statements, PL/pgSQL and triggers, whose
 * statements are all planned; it needs the extension in that database.
 * A client's own SELECT pg_notify(..) (Coder's publish) keeps pg_notify in
 * its plan instead: ExecutorStart points the call's expression step at the
 * same C function (count_in_executor), which spares the executor a catalog
 * lookup of the wrapper at every execution.
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
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_language.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "portability/instr_time.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "executor/execExpr.h"
#include "jit/jit.h"
#include "tcop/tcopprot.h"
#include "utils/plancache.h"
#include "utils/syscache.h"
#include "utils/hsearch.h"

#include "compat.h"
#include "coder_health.h"
#include "module.h"
#include "notify.h"

PG_FUNCTION_INFO_V1(coder_health_pg_notify);

/* settings */
int			ch_max_channel_families = 1000;
int			ch_notify_stall_bytes = 1024 * 1024;
int			ch_notify_stall_seconds = 60;
bool		ch_track_notify = true;
int			ch_notify_layout_test_bytes = 0;

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
	/* for tests only: makes the queue reader expect a wrong layout size */
	DefineCustomIntVariable("coder_health.notify_layout_test_bytes",
							"Test only: bytes added to the expected size of PostgreSQL's notification queue struct.",
							NULL,
							&ch_notify_layout_test_bytes,
							0, 0, 4096,
							PGC_SUSET,
							GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL,
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

static void
sketch_clear_atomic(ChAtomicSketch *sk)
{
	pg_atomic_write_u64(&sk->max_ns, 0);
	for (int b = 0; b < SKETCH_NBUCKETS; b++)
		pg_atomic_write_u64(&sk->bucket[b], 0);
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
		return;

	ch_notify->max_families = ch_max_channel_families;
	ch_notify->index_size = nindex;
	pg_atomic_init_u32(&ch_notify->nfamilies, 1);
	pg_atomic_init_u64(&ch_notify->dropped, 0);
	pg_atomic_init_u64(&ch_notify->reset_time, (uint64) now);
	pg_atomic_init_u64(&ch_notify->snap_step, 0);
	for (int i = 0; i < CH_NOTIFY_SNAPS; i++)
		pg_atomic_init_u64(&ch_notify->snap_time[i], (uint64) now);
	for (int w = 0; w < CH_NOTIFY_WINDOWS; w++)
	{
		ChAtomicSketch *sk = &ch_notify->commit_window[w];

		pg_atomic_init_u64(&sk->max_ns, 0);
		for (int b = 0; b < SKETCH_NBUCKETS; b++)
			pg_atomic_init_u64(&sk->bucket[b], 0);
	}
	pg_atomic_init_u64(&ch_notify->mismatch_warned_size, 0);
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
 * Backend-local records of this transaction
 * ------------------------------------------------------------------------
 */
typedef struct PendingNotify
{
	uint64		dedup_hash;		/* channel and payload, once needed */
	uint64		channel_hash;
	int32		payload_len;
	int32		level;			/* subtransaction nest level */
	uint32		family;			/* entry in the family table */
} PendingNotify;

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

static PendingNotify *pending = NULL;
static int	npending = 0;
static int	maxpending = 0;

static ListenAction *actions = NULL;
static int	nactions = 0;
static int	maxactions = 0;

static instr_time commit_start;
static bool commit_timing = false;

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
tracking(void)
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

/* The channel of the previous record and its family. */
static char last_channel[NAMEDATALEN];
static int	last_channel_len = -1;
static uint32 last_family = CH_FAMILY_OTHER;

/*
 * The payload of the transaction's first notification.  A duplicate needs
 * two notifications, so the first one's payload is hashed only when a
 * second comes; a transaction that notifies once (Coder's publishes) pays a
 * copy instead of a hash of up to 8 kB.  async.c caps payloads below BLCKSZ.
 */
static char first_payload[BLCKSZ];
static bool first_dedup_pending = false;

static inline uint64
dedup_hash(const char *payload, int payload_len, uint64 channel_hash)
{
	return hash_bytes_extended((const unsigned char *) payload, payload_len,
							   channel_hash);
}

/* A notification PostgreSQL accepted into this transaction. */
static void
record_notification(const char *channel, int chlen, const char *payload,
					int payload_len)
{
	PendingNotify *r;

	if (npending >= maxpending &&
		!grow((void **) &pending, &maxpending, sizeof(PendingNotify)))
	{
		pg_atomic_fetch_add_u64(&ch_notify->dropped, 1);
		return;
	}
	r = &pending[npending++];

	/*
	 * The family is found now, not at commit: the commit callback runs while
	 * PostgreSQL holds its cluster-wide notify lock, so it only adds.
	 */
	if (chlen == last_channel_len && memcmp(last_channel, channel, chlen) == 0)
		r->family = last_family;
	else
	{
		r->family = ch_family_of_channel(channel, chlen);
		memcpy(last_channel, channel, chlen);
		last_channel_len = chlen;
		last_family = r->family;
	}
	r->channel_hash = channel_hash(channel, chlen);
	r->payload_len = payload_len;
	r->level = GetCurrentTransactionNestLevel();

	if (npending == 1 && payload_len <= (int) sizeof(first_payload))
	{
		memcpy(first_payload, payload, payload_len);
		first_dedup_pending = true;
		return;
	}
	if (first_dedup_pending)
	{
		pending[0].dedup_hash = dedup_hash(first_payload, pending[0].payload_len,
										   pending[0].channel_hash);
		first_dedup_pending = false;
	}
	r->dedup_hash = dedup_hash(payload, payload_len, r->channel_hash);
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

/* Forget everything of the transaction; keep small buffers for the next. */
static void
forget_transaction(void)
{
	npending = 0;
	nactions = 0;
	commit_timing = false;
	first_dedup_pending = false;
	if (maxpending > 1024)
	{
		pfree(pending);
		pending = NULL;
		maxpending = 0;
	}
}

/* ------------------------------------------------------------------------
 * Commit: fold notifications into the family table
 * ------------------------------------------------------------------------
 */
static int
pending_order(const void *a, const void *b)
{
	const PendingNotify *x = a;
	const PendingNotify *y = b;

	if (x->dedup_hash != y->dedup_hash)
		return x->dedup_hash < y->dedup_hash ? -1 : 1;
	return 0;
}

typedef struct FamilyDelta
{
	uint32		family;
	uint64		notifications;
	uint64		bytes;
	uint64		max_payload;
} FamilyDelta;

#define MAX_DELTAS 16

static inline void
atomic_max_u64(pg_atomic_uint64 *p, uint64 v)
{
	uint64		cur = pg_atomic_read_u64(p);

	while (v > cur && !pg_atomic_compare_exchange_u64(p, &cur, v))
		;
}

static void
apply_deltas(FamilyDelta *d, int n, TimestampTz now)
{
	for (int i = 0; i < n; i++)
	{
		ChFamily   *f = &ch_families[d[i].family];

		pg_atomic_fetch_add_u64(&f->notifications, d[i].notifications);
		pg_atomic_fetch_add_u64(&f->bytes, d[i].bytes);
		atomic_max_u64(&f->max_payload, d[i].max_payload);
		pg_atomic_write_u64(&f->last_notify_at, (uint64) now);
	}
}

static void
publish_notifications(void)
{
	FamilyDelta deltas[MAX_DELTAS];
	int			ndeltas = 0;
	TimestampTz now = GetCurrentTransactionStopTimestamp();

	/* async.c delivers one of each (channel, payload) per transaction */
	if (npending > 1)
		qsort(pending, npending, sizeof(PendingNotify), pending_order);

	for (int i = 0; i < npending; i++)
	{
		PendingNotify *r = &pending[i];
		uint32		family = r->family;
		int			k;

		if (i > 0 && r->dedup_hash == pending[i - 1].dedup_hash)
			continue;
		ch_hll_add(&ch_families[family], r->channel_hash);

		for (k = 0; k < ndeltas; k++)
			if (deltas[k].family == family)
				break;
		if (k == ndeltas)
		{
			if (ndeltas == MAX_DELTAS)
			{
				apply_deltas(deltas, ndeltas, now);
				ndeltas = 0;
				k = 0;
			}
			deltas[k].family = family;
			deltas[k].notifications = 0;
			deltas[k].bytes = 0;
			deltas[k].max_payload = 0;
			ndeltas++;
		}
		deltas[k].notifications++;
		deltas[k].bytes += r->payload_len;
		deltas[k].max_payload = Max(deltas[k].max_payload, (uint64) r->payload_len);
	}
	apply_deltas(deltas, ndeltas, now);
}

/* The commit phase (pre-commit to commit) into the current window. */
static void
record_commit_time(void)
{
	instr_time	end;
	uint64		ns;
	ChAtomicSketch *sk;

	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, commit_start);
	ns = compat_instr_time_ns(end);
	sk = &ch_notify->commit_window[pg_atomic_read_u64(&ch_notify->snap_step) %
								   CH_NOTIFY_WINDOWS];
	/*
	 * Every notifying commit in the cluster lands here: one atomic add to a
	 * bucket; the count is the buckets' sum, and the maximum is only read
	 * unless this commit is a new one.
	 */
	pg_atomic_fetch_add_u64(&sk->bucket[sketch_index(ns)], 1);
	atomic_max_u64(&sk->max_ns, ns);
}

/* Copy an atomic sketch into a local one (adds to dst). */
void
ch_sketch_read(ChAtomicSketch *src, sketch_t *dst)
{
	uint64		max_ns = pg_atomic_read_u64(&src->max_ns);

	for (int b = 0; b < SKETCH_NBUCKETS; b++)
	{
		uint64		n = pg_atomic_read_u64(&src->bucket[b]);

		if (n)
		{
			dst->bucket[b] += n;
			dst->count += n;
		}
	}
	if (max_ns > dst->max_ns)
		dst->max_ns = max_ns;
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

static void
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
static void
ch_notify_xact_callback(XactEvent event, void *arg)
{
	if (npending == 0 && nactions == 0)
		return;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (npending > 0)
			{
				INSTR_TIME_SET_CURRENT(commit_start);
				commit_timing = true;
			}
			break;
		case XACT_EVENT_COMMIT:
			if (ch_notify != NULL)
			{
				if (npending > 0 && commit_timing)
					record_commit_time();
				if (npending > 0)
					publish_notifications();
				if (nactions > 0)
					apply_listen_actions();
			}
			forget_transaction();
			break;
		case XACT_EVENT_ABORT:
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

static void
ch_notify_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	int			level;

	if (npending == 0 && nactions == 0)
		return;
	level = GetCurrentTransactionNestLevel();
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* records are in level order: cut at the first of this level */
		int			i;

		for (i = 0; i < npending && pending[i].level < level; i++)
			;
		npending = i;
		for (i = 0; i < nactions && actions[i].level < level; i++)
			;
		nactions = i;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* the parent owns them now */
		for (int i = 0; i < npending; i++)
			if (pending[i].level >= level)
				pending[i].level = level - 1;
		for (int i = 0; i < nactions; i++)
			if (actions[i].level >= level)
				actions[i].level = level - 1;
	}
}

/* ------------------------------------------------------------------------
 * NOTIFY, LISTEN, UNLISTEN, DISCARD ALL
 * ------------------------------------------------------------------------
 */
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static void
ch_notify_ProcessUtility(CH_PROCESS_UTILITY_ARGS)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (prev_ProcessUtility)
		prev_ProcessUtility(CH_PROCESS_UTILITY_PASS);
	else
		standard_ProcessUtility(CH_PROCESS_UTILITY_PASS);

	/* PostgreSQL accepted the statement: note what it queued */
	if (!tracking())
		return;
	switch (nodeTag(parsetree))
	{
		case T_NotifyStmt:
			{
				NotifyStmt *stmt = (NotifyStmt *) parsetree;
				const char *payload = stmt->payload ? stmt->payload : "";

				record_notification(stmt->conditionname,
									(int) strnlen(stmt->conditionname, NAMEDATALEN - 1),
									payload, (int) strlen(payload));
				break;
			}
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

/* ------------------------------------------------------------------------
 * pg_notify(): swapped for coder_health_notify.pg_notify at plan time
 * ------------------------------------------------------------------------
 */
static planner_hook_type prev_planner = NULL;

/* The wrapper's OID in this database, looked up once per catalog change. */
static Oid	wrapper_oid = InvalidOid;
static bool wrapper_known = false;

/* The verdicts of sql_function_notifies() need looking at again. */
static bool notifying_cache_stale = false;

/* Last roles allowed to run pg_notify and the wrapper (grants can change). */
static Oid	acl_ok_role = InvalidOid;
static Oid	wrapper_acl_role = InvalidOid;

/*
 * Plans that call the wrapper carry no dependency on it of PostgreSQL's
 * making (forget_wrapper_dependency); this backend invalidates them itself
 * when a wrapper whose dependency it dropped changes (DROP EXTENSION).
 */
static bool dropped_dependency = false;
static uint32 dropped_dependency_hash = 0;
static uint32 wrapper_hash = 0;

static void
proc_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	wrapper_known = false;
	acl_ok_role = InvalidOid;
	wrapper_acl_role = InvalidOid;
	notifying_cache_stale = true;
	/* 0: every entry of the cache; what PlanCacheObjectCallback would do */
	if (cacheid == PROCOID && dropped_dependency &&
		(hashvalue == 0 || hashvalue == dropped_dependency_hash))
	{
		ResetPlanCache();
		dropped_dependency = false;
	}
}

static Oid
lookup_wrapper(void)
{
	Oid			nsp;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Oid			fn = InvalidOid;
	Oid			ext;

	if (wrapper_known)
		return wrapper_oid;
	nsp = get_namespace_oid(CH_WRAPPER_SCHEMA, true);
	if (OidIsValid(nsp))
		fn = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
							 CStringGetDatum("pg_notify"),
							 PointerGetDatum(buildoidvector(argtypes, 2)),
							 ObjectIdGetDatum(nsp));
	/* only our own function, created by CREATE EXTENSION coder_health */
	ext = get_extension_oid("coder_health", true);
	if (OidIsValid(fn) &&
		(!OidIsValid(ext) || getExtensionOfObject(ProcedureRelationId, fn) != ext))
		fn = InvalidOid;
	wrapper_oid = fn;
	wrapper_hash = OidIsValid(fn) ?
		GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(fn)) : 0;
	wrapper_known = true;
	return fn;
}

/*
 * EXECUTE permission of the current role on fn, remembered in *allowed_role
 * once granted, until a catalog change clears it (proc_changed).
 */
static AclResult
cached_proc_aclcheck(Oid fn, Oid *allowed_role)
{
	Oid			role = GetUserId();
	AclResult	result;

	if (role == *allowed_role)
		return ACLCHECK_OK;
	result = compat_proc_aclcheck(fn, role);
	if (result == ACLCHECK_OK)
		*allowed_role = role;
	return result;
}

/* The wrapper if this role may run it; a role that may not keeps pg_notify. */
static Oid
usable_wrapper(void)
{
	Oid			fn = lookup_wrapper();

	if (!OidIsValid(fn) ||
		cached_proc_aclcheck(fn, &wrapper_acl_role) != ACLCHECK_OK)
		return InvalidOid;
	return fn;
}

typedef struct SwapContext
{
	Oid			wrapper;
	bool		looked_up;
	bool		found;			/* a pg_notify call was seen */
	bool		find_only;		/* look, do not swap (counted at execution) */
} SwapContext;

/* Swap one pg_notify call; false when there is nothing to swap it for. */
static bool
swap_call(FuncExpr *call, SwapContext *cxt)
{
	cxt->found = true;
	if (cxt->find_only)
		return true;
	if (!cxt->looked_up)
	{
		cxt->looked_up = true;
		cxt->wrapper = usable_wrapper();
	}
	if (!OidIsValid(cxt->wrapper))
		return false;
	call->funcid = cxt->wrapper;
	return true;
}

static bool
swap_walker(Node *node, SwapContext *cxt)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == CH_PG_NOTIFY_OID &&
		!swap_call((FuncExpr *) node, cxt))
		return true;			/* nothing to swap to: stop walking */
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, swap_walker, (void *) cxt, 0);
	return expression_tree_walker(node, swap_walker, (void *) cxt);
}

/*
 * Swap the pg_notify calls of an expression made of constants, parameters,
 * function and operator calls and casts only ('workspace_owner:' || $1),
 * without the general walker.  False when some other node is met (or the
 * expression is deep): the caller then walks the whole query, which finds
 * any call not swapped yet.
 */
static bool
swap_in_simple_expr(Node *node, SwapContext *cxt, int depth)
{
	List	   *args;
	ListCell   *lc;

	if (node == NULL)
		return true;
	switch (nodeTag(node))
	{
		case T_Const:
		case T_Param:
			return true;
		case T_RelabelType:
			return swap_in_simple_expr((Node *) ((RelabelType *) node)->arg,
									   cxt, depth + 1);
		case T_CoerceViaIO:
			return swap_in_simple_expr((Node *) ((CoerceViaIO *) node)->arg,
									   cxt, depth + 1);
		case T_FuncExpr:
			if (((FuncExpr *) node)->funcid == CH_PG_NOTIFY_OID)
				(void) swap_call((FuncExpr *) node, cxt);
			args = ((FuncExpr *) node)->args;
			break;
		case T_OpExpr:
			args = ((OpExpr *) node)->args;
			break;
		default:
			return false;
	}
	if (depth >= 8)
		return false;
	foreach(lc, args)
	{
		Node	   *arg = (Node *) lfirst(lc);

		/* most arguments are constants and parameters: no call for them */
		if (arg != NULL && (IsA(arg, Const) || IsA(arg, Param)))
			continue;
		if (!swap_in_simple_expr(arg, cxt, depth + 1))
			return false;
	}
	return true;
}

/*
 * SELECT pg_notify($1, $2), the way Coder publishes, has nothing but a target
 * list of simple expressions: swap by looking at that list alone instead of
 * walking the whole tree.  False for a query of any other shape, which the
 * caller walks.
 */
static bool
swap_simple_select(Query *q, SwapContext *cxt)
{
	ListCell   *lc;

	if (q->commandType != CMD_SELECT || q->rtable != NIL || q->hasSubLinks ||
		q->cteList != NIL || q->setOperations != NULL ||
		q->havingQual != NULL || q->limitOffset != NULL ||
		q->limitCount != NULL || q->windowClause != NIL ||
		q->jointree == NULL || q->jointree->fromlist != NIL ||
		q->jointree->quals != NULL)
		return false;
	foreach(lc, q->targetList)
		if (!swap_in_simple_expr((Node *) ((TargetEntry *) lfirst(lc))->expr,
								 cxt, 0))
			return false;
	return true;
}

/*
 * SQL-language functions whose body mentions pg_notify must not be inlined:
 * an inlined body is planned inside the caller's planning, after the swap
 * above, and would call pg_notify directly.  The planner does not inline a
 * function for which needs_fmgr_hook says yes; fmgr then runs it through
 * fmgr_security_definer, which with no fmgr_hook set just calls it.  Its
 * own statements are then planned (and swapped) like any other.
 */
static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static HTAB *notifying_sql_functions = NULL;	/* oid -> verdict */

typedef struct NotifyingEntry
{
	Oid			fn;
	bool		notifies;
} NotifyingEntry;

static bool
text_mentions_pg_notify(const char *src)
{
	/* strpbrk finds candidates fast; a statement has few p's */
	for (const char *p = src; (p = strpbrk(p, "pP")) != NULL; p++)
		if (pg_strncasecmp(p, "pg_notify", 9) == 0)
			return true;
	return false;
}

/*
 * Whether a statement calls pg_notify, by query id: a direct-mapped cache,
 * so the text scan above runs once per statement shape rather than at every
 * planning, and a statement known to call it goes straight to the swap,
 * which finds the calls in its tree.  Statements with one id name the same
 * functions (core ids hash the tree, coder_health's the text without its
 * constants), so one whose text does not name pg_notify stands for all.
 * Query id 0 is never cached.
 */
#define CH_VERDICT_CACHE 256

typedef struct NotifyVerdict
{
	uint64		queryid;
	bool		calls_pg_notify;
} NotifyVerdict;

static NotifyVerdict verdict_cache[CH_VERDICT_CACHE];

/* 1: calls pg_notify, 0: does not, -1: not known */
static inline int
cached_verdict(uint64 queryid)
{
	NotifyVerdict *v = &verdict_cache[queryid % CH_VERDICT_CACHE];

	if (queryid == UINT64CONST(0) || v->queryid != queryid)
		return -1;
	return v->calls_pg_notify ? 1 : 0;
}

static inline void
remember_verdict(uint64 queryid, bool calls_pg_notify)
{
	NotifyVerdict *v = &verdict_cache[queryid % CH_VERDICT_CACHE];

	if (queryid == UINT64CONST(0))
		return;
	v->queryid = queryid;
	v->calls_pg_notify = calls_pg_notify;
}

static bool
sql_function_notifies(Oid fn)
{
	HeapTuple	tup;
	bool		notifies = false;
	NotifyingEntry *e;
	bool		found;

	if (notifying_sql_functions == NULL || notifying_cache_stale)
	{
		HASHCTL		info;

		if (notifying_sql_functions != NULL)
			hash_destroy(notifying_sql_functions);
		memset(&info, 0, sizeof(info));
		info.keysize = sizeof(Oid);
		info.entrysize = sizeof(NotifyingEntry);
		info.hcxt = TopMemoryContext;
		notifying_sql_functions = hash_create("coder_health notifying functions",
											  64, &info,
											  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		notifying_cache_stale = false;
	}
	e = hash_search(notifying_sql_functions, &fn, HASH_FIND, NULL);
	if (e != NULL)
		return e->notifies;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tup);

		if (proc->prolang == SQLlanguageId)
		{
			bool		isnull;
			Datum		src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc,
											  &isnull);

			if (!isnull)
				notifies = text_mentions_pg_notify(TextDatumGetCString(src));
		}
		ReleaseSysCache(tup);
	}
	e = hash_search(notifying_sql_functions, &fn, HASH_ENTER_NULL, &found);
	if (e != NULL)
		e->notifies = notifies;
	return notifies;
}

static bool
ch_needs_fmgr_hook(Oid fn)
{
	if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn))
		return true;
	/* fmgr asks at every call of the wrapper (a C function): answer first */
	if ((wrapper_known && fn == wrapper_oid) || !tracking() ||
		!IsTransactionState())
		return false;
	return sql_function_notifies(fn);
}

/*
 * A plan calls the wrapper without a PlanInvalItem for it (dropped by
 * forget_wrapper_dependency, or swapped in after planning): proc_changed
 * stands in and resets this backend's plan cache when the wrapper changes.
 */
static void
depend_on_wrapper_unrecorded(void)
{
	/* a plan of another wrapper must be gone (see proc_changed) */
	if (dropped_dependency && dropped_dependency_hash != wrapper_hash)
		ResetPlanCache();
	dropped_dependency = true;
	dropped_dependency_hash = wrapper_hash;
}

/*
 * The planner records a dependency on every function of the plan that is not
 * built in (a PlanInvalItem, setrefs.c), so that cached plans are replanned
 * when the function changes; pg_notify, built in, has none.  For the
 * wrapper that item, copied with every cached plan, made the plan of
 * Coder's SELECT pg_notify(..) outgrow the first block of its memory
 * context: one more malloc and free per execution over the extended
 * protocol.  The item is dropped here and proc_changed stands in for it,
 * resetting this backend's plan cache when the wrapper changes.  A hash
 * shared with another function of the plan takes that one's item along;
 * its changes then reset the plan cache too (same hash), so no plan keeps
 * a stale function.
 */
static void
forget_wrapper_dependency(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->invalItems)
	{
		PlanInvalItem *item = lfirst_node(PlanInvalItem, lc);

		if (item->cacheId == PROCOID && item->hashValue == wrapper_hash)
		{
			stmt->invalItems = foreach_delete_current(stmt->invalItems, lc);
			depend_on_wrapper_unrecorded();
		}
	}
}

/*
 * Whether a plan made now runs through ExecutorStart, where its pg_notify
 * calls are counted without a wrapper (count_in_executor): a statement the
 * client sent, planned by exec_simple_query or exec_bind_message, which
 * pass the very string they also publish as debug_query_string.
 * Everything planned on the way (PL/pgSQL, whose simple expressions never
 * reach ExecutorStart, SQL functions, SPI, triggers fired at commit, a
 * replication worker's triggers) plans its own text and gets the wrapper.
 */
static inline bool
planned_for_client(const char *query_string)
{
	return query_string != NULL && query_string == debug_query_string &&
		MyBackendType == B_BACKEND;
}

/*
 * Whether the plan of a query will be a bare Result node evaluating its
 * target list, the shape count_in_executor patches: nothing to group, sort,
 * make distinct or expand (swap_simple_select checks the rest).  A DISTINCT
 * or GROUP BY puts the calls into a child node's target list.
 */
static inline bool
plans_to_bare_result(Query *q)
{
	return q->groupClause == NIL && q->groupingSets == NIL &&
		q->distinctClause == NIL && q->sortClause == NIL &&
		!q->hasAggs && !q->hasWindowFuncs && !q->hasTargetSRFs;
}

/*
 * A plan whose pg_notify calls were left for the executor, but whose
 * expressions will be JIT-compiled (they call pg_notify by name, past the
 * steps ExecutorStart patches): swap them in the finished plan instead.
 */
static void
swap_in_plan(PlannedStmt *stmt)
{
	SwapContext cxt = {InvalidOid, false, false, false};

	if (IsA(stmt->planTree, Result) && !(stmt->jitFlags & PGJIT_EXPR))
		return;
	(void) expression_tree_walker((Node *) stmt->planTree->targetlist,
								  swap_walker, (void *) &cxt);
	if (OidIsValid(cxt.wrapper))
		depend_on_wrapper_unrecorded();
}

static PlannedStmt *
ch_notify_planner(Query *parse, const char *query_string, int cursorOptions,
				  ParamListInfo boundParams)
{
	PlannedStmt *result;
	bool		swapped = false;
	bool		left_for_executor = false;

	/*
	 * The planner may scribble on its input (plancache hands it a copy), so
	 * changing the FuncExpr in place is what the planner itself does.  Only
	 * statements that call pg_notify, or whose text mentions it, are looked
	 * at (SQL, PL/pgSQL expressions, prepared statements and SQL function
	 * bodies all come with their own text); after its first planning a
	 * statement's verdict comes from the cache.  A client's SELECT
	 * pg_notify(..) (Coder's publish) is not changed at all: its calls are
	 * counted at ExecutorStart, which spares the executor a catalog lookup
	 * of the wrapper at every execution.
	 */
	if (tracking() && parse->commandType != CMD_UTILITY)
	{
		int			verdict = cached_verdict(parse->queryId);

		if (verdict == 1 ||
			(verdict < 0 &&
			 (query_string == NULL || text_mentions_pg_notify(query_string))))
		{
			SwapContext cxt = {InvalidOid, false, false,
				planned_for_client(query_string) && plans_to_bare_result(parse)};

			if (!swap_simple_select(parse, &cxt))
			{
				/* not the simple shape: swap wherever the calls are */
				cxt.find_only = false;
				cxt.found = false;
				(void) query_tree_walker(parse, swap_walker, (void *) &cxt, 0);
			}
			/*
			 * "Does not call it" is remembered only from the text: statements
			 * with one text-based id (text_query_id.c) may still resolve the
			 * name differently (search_path), but none of them names it.
			 */
			if (cxt.found)
				remember_verdict(parse->queryId, true);
			left_for_executor = cxt.found && cxt.find_only;
			swapped = cxt.found && !cxt.find_only && OidIsValid(cxt.wrapper);
		}
		else if (verdict < 0)
			remember_verdict(parse->queryId, false);
	}
	if (prev_planner)
		result = prev_planner(parse, query_string, cursorOptions, boundParams);
	else
		result = standard_planner(parse, query_string, cursorOptions, boundParams);
	if (swapped)
		forget_wrapper_dependency(result);
	else if (left_for_executor)
		swap_in_plan(result);
	return result;
}

/*
 * ExecutorStart of a plan that is a Result node projecting pg_notify calls
 * (SELECT pg_notify(..), planned for a client): the calls' expression steps
 * are pointed at coder_health_pg_notify, which calls pg_notify and counts.
 * Only this execution's steps change, never the plan.  A plan of any other
 * shape had its calls swapped for the wrapper when it was planned.
 */
static ExecutorStart_hook_type prev_ExecutorStart = NULL;

static void
count_in_executor(QueryDesc *queryDesc)
{
	PlanState  *ps = queryDesc->planstate;
	ExprState  *state;

	if (ps == NULL || !IsA(ps, ResultState) || ps->ps_ProjInfo == NULL ||
		(queryDesc->estate->es_jit_flags & PGJIT_EXPR))
		return;
	state = &ps->ps_ProjInfo->pi_state;
	for (int i = 0; i < state->steps_len; i++)
	{
		ExprEvalStep *op = &state->steps[i];
		ExprEvalOp	opcode;

		/*
		 * Any step's union can be read as d.func; only a function call's
		 * holds pg_notify's address there.  Its opcode is then confirmed
		 * (decoding an opcode is a search: once per candidate only).
		 */
		if (op->d.func.fn_addr != pg_notify)
			continue;
		opcode = ExecEvalStepOp(state, op);
		if ((opcode == EEOP_FUNCEXPR || opcode == EEOP_FUNCEXPR_FUSAGE) &&
			op->d.func.finfo->fn_oid == CH_PG_NOTIFY_OID)
		{
			op->d.func.fn_addr = coder_health_pg_notify;
			op->d.func.finfo->fn_addr = coder_health_pg_notify;
		}
	}
}

static void
ch_notify_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if (tracking() && IsA(queryDesc->plannedstmt->planTree, Result))
		count_in_executor(queryDesc);
}

/*
 * coder_health_notify.pg_notify(channel text, payload text): PostgreSQL's
 * pg_notify, then a record of what it accepted.
 */
Datum
coder_health_pg_notify(PG_FUNCTION_ARGS)
{
	/* the permission PostgreSQL would have checked on pg_notify itself */
	AclResult	aclresult = cached_proc_aclcheck(CH_PG_NOTIFY_OID, &acl_ok_role);

	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, "pg_notify");

	(void) pg_notify(fcinfo);

	/* accepted: pg_notify raised otherwise, so the channel is not null */
	if (tracking() && !PG_ARGISNULL(0))
	{
		text	   *channel = PG_GETARG_TEXT_PP(0);
		text	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
		const char *name = VARDATA_ANY(channel);
		int			len = Min(VARSIZE_ANY_EXHDR(channel), NAMEDATALEN - 1);

		if (payload)
			record_notification(name, len, VARDATA_ANY(payload),
								(int) VARSIZE_ANY_EXHDR(payload));
		else
			record_notification(name, len, "", 0);
	}
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
		sketch_clear_atomic(&ch_notify->commit_window[next % CH_NOTIFY_WINDOWS]);
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
		sketch_clear_atomic(&ch_notify->commit_window[w]);
	for (int s = 0; s < CH_NOTIFY_SNAPS; s++)
		pg_atomic_write_u64(&ch_notify->snap_time[s], (uint64) now);
	pg_atomic_write_u64(&ch_notify->dropped, 0);
	pg_atomic_write_u64(&ch_notify->reset_time, (uint64) now);
}

static void
ch_notify_install_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ch_notify_ProcessUtility;
	prev_planner = planner_hook;
	planner_hook = ch_notify_planner;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = ch_notify_ExecutorStart;
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = ch_needs_fmgr_hook;
	RegisterXactCallback(ch_notify_xact_callback, NULL);
	RegisterSubXactCallback(ch_notify_subxact_callback, NULL);
	CacheRegisterSyscacheCallback(PROCOID, proc_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, proc_changed, (Datum) 0);
	/* role membership decides EXECUTE when it is not granted to PUBLIC */
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, proc_changed, (Datum) 0);
}

const ChModule ch_notify_module = {
	.name = "notify",
	.define_settings = ch_define_notify_settings,
	.shmem_size = ch_notify_shmem_size,
	.shmem_init = ch_notify_shmem_init,
	.install_hooks = ch_notify_install_hooks,
	.collect = ch_notify_collect,
	.used_bytes = ch_notify_used_bytes,
};
