/*-------------------------------------------------------------------------
 *
 * clients.c
 *	  Per-backend network round-trip and LISTEN state, published in shared
 *	  slots for the coder_health.coder_servers view.
 *
 * A backend reads TCP_INFO of its own client socket once when the client
 * authenticates and then at most every coder_health.rtt_interval, at the
 * start of a statement.  Most statements pay one comparison: the statement
 * start time PostgreSQL already took against the time the next reading is
 * due; no clock read, no system call, no lock.  A reading that fails gives
 * no value (NULL in the views), never an error; a unix socket never has one.
 *
 * Slots are indexed by PGPROC number, written only by their owner under a
 * change counter (like PgBackendStatus), and carry the owner's pid so that
 * a reader ignores a slot left behind by a backend that has exited.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/guc.h"

#include "pg/compat.h"
#include "core/coder_health.h"
#include "clients.h"
#include "core/module.h"

ChClientsShared *ch_clients = NULL;
ChClientSlot *ch_client_slots = NULL;

int			ch_rtt_interval_s = 10;
double		ch_max_rtt_ms = 10.0;
int			ch_coder_pool_size = 11;

/* When this backend reads TCP_INFO next (statement start time scale). */
static TimestampTz rtt_due = 0;
static ChClientSlot *my_client_slot = NULL;

/* LISTEN state change made by the current transaction, applied at commit. */
typedef enum ChListenChange
{
	CH_LISTEN_UNCHANGED,
	CH_LISTEN_ADDED,
	CH_LISTEN_DROPPED_ALL
} ChListenChange;

static ChListenChange listen_change = CH_LISTEN_UNCHANGED;

/* ------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------
 */
static void
ch_define_clients_settings(void)
{
	DefineCustomIntVariable("coder_health.rtt_interval",
							"How often a backend reads the round-trip time of its client's TCP connection.",
							"Read from the kernel (TCP_INFO) at a statement start, at most this "
							"often per backend, and once at connect.  0 turns the readings off.",
							&ch_rtt_interval_s,
							10, 0, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomRealVariable("coder_health.max_rtt_ms",
							 "Round-trip time above which a Coder Server is flagged far.",
							 "Coder asks for every Coder Server within 10 ms of PostgreSQL.",
							 &ch_max_rtt_ms,
							 10.0, 0.0, 60000.0,
							 PGC_USERSET, GUC_UNIT_MS,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("coder_health.coder_pool_size",
							"Connections one Coder Server may open (pool + LISTEN connection).",
							"CODER_PG_CONN_MAX_OPEN (default 10) plus one listener; used for "
							"the headroom if every known Coder Server filled its pool.",
							&ch_coder_pool_size,
							11, 1, 10000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * Shared memory
 * ------------------------------------------------------------------------
 */
static int
clients_nslots(void)
{
	return compat_total_procs();
}

static Size
ch_clients_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(ChClientsShared)),
					mul_size(clients_nslots(), sizeof(ChClientSlot)));
}

static void
ch_clients_shmem_init(void)
{
	bool		found;
	int			nslots = clients_nslots();

	ch_clients = ShmemInitStruct("coder_health clients",
								 ch_clients_shmem_size(), &found);
	ch_client_slots = (ChClientSlot *) ((char *) ch_clients +
										MAXALIGN(sizeof(ChClientsShared)));
	if (!found)
	{
		memset(ch_clients, 0, ch_clients_shmem_size());
		ch_clients->nslots = nslots;
		pg_atomic_init_u64(&ch_clients->hosts_dropped, 0);
		for (int i = 0; i < nslots; i++)
			pg_atomic_init_u32(&ch_client_slots[i].changecount, 0);
	}
}

static Size
ch_clients_used_bytes(void)
{
	int			used = 0;

	if (ch_clients == NULL)
		return 0;
	for (int i = 0; i < CH_MAX_HOSTS; i++)
		if (ch_clients->hosts[i].used)
			used++;
	return MAXALIGN(offsetof(ChClientsShared, hosts)) +
		used * sizeof(ChHostPeak) +
		ch_clients->nslots * sizeof(ChClientSlot);
}

/* ------------------------------------------------------------------------
 * The slot: single writer, change counter
 * ------------------------------------------------------------------------
 */
static inline void
slot_begin_write(ChClientSlot *slot)
{
	pg_atomic_fetch_add_u32(&slot->changecount, 1);
	pg_write_barrier();
}

static inline void
slot_end_write(ChClientSlot *slot)
{
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&slot->changecount, 1);
}

/* This backend's slot, claimed at first use. */
static ChClientSlot *
claim_client_slot(void)
{
	int			n = compat_my_proc_number();
	ChClientSlot *slot;

	if (ch_client_slots == NULL || n < 0 || n >= ch_clients->nslots)
		return NULL;
	slot = &ch_client_slots[n];
	slot_begin_write(slot);
	slot->pid = MyProcPid;
	slot->rtt_us = CH_RTT_NONE;
	slot->rttvar_us = CH_RTT_NONE;
	slot->measured_at = 0;
	slot->listening = false;
	slot_end_write(slot);
	return slot;
}

/*
 * Copy slot procno if it belongs to pid.  Readers retry while the owner is
 * writing; the owner writes a few words, so this ends at once.
 */
void
ch_client_read_slot(int procno, int pid, ChClientReading *out)
{
	ChClientSlot *slot;

	memset(out, 0, sizeof(*out));
	if (ch_client_slots == NULL || procno < 0 || procno >= ch_clients->nslots)
		return;
	slot = &ch_client_slots[procno];
	for (int tries = 0; tries < 1000; tries++)
	{
		uint32		before = pg_atomic_read_u32(&slot->changecount);
		uint32		after;

		pg_read_barrier();
		out->valid = (slot->pid == pid);
		out->rtt_us = slot->rtt_us;
		out->rttvar_us = slot->rttvar_us;
		out->measured_at = slot->measured_at;
		out->listening = slot->listening;
		pg_read_barrier();
		after = pg_atomic_read_u32(&slot->changecount);
		if (before == after && (before & 1) == 0)
			return;
		CHECK_FOR_INTERRUPTS();
	}
	out->valid = false;
}

/* ------------------------------------------------------------------------
 * Round-trip time from the kernel
 * ------------------------------------------------------------------------
 */

#ifdef __linux__
/*
 * Linux's struct tcp_info grows by appending fields, and each glibc copies
 * a different prefix of it (bookworm's stops at tcpi_total_retrans, newer
 * ones go further); <linux/tcp.h> cannot be included beside the
 * <netinet/tcp.h> PostgreSQL's headers bring in.  The kernel's layout is a
 * stable ABI, so the fields are read at their offsets from what the kernel
 * filled in; getsockopt says how many bytes that was.
 */
#define CH_TCPI_RTT_OFFSET 68
#define CH_TCPI_RTTVAR_OFFSET 72
#define CH_TCPI_MIN_RTT_OFFSET 148	/* Linux 4.10 */

StaticAssertDecl(offsetof(struct tcp_info, tcpi_rtt) == CH_TCPI_RTT_OFFSET &&
				 offsetof(struct tcp_info, tcpi_rttvar) == CH_TCPI_RTTVAR_OFFSET,
				 "struct tcp_info has the kernel's layout");
#endif

/*
 * Read TCP_INFO of our client socket and publish it.  Never raises: a
 * failing getsockopt publishes "no value".  Only TCP sockets are asked.
 */
static void
read_rtt(TimestampTz now)
{
	uint32		rtt = CH_RTT_NONE;
	uint32		rttvar = CH_RTT_NONE;
	bool		is_tcp;

	if (my_client_slot == NULL && (my_client_slot = claim_client_slot()) == NULL)
	{
		rtt_due = PG_INT64_MAX;
		return;
	}
	is_tcp = MyProcPort != NULL && MyProcPort->sock != PGINVALID_SOCKET &&
		(MyProcPort->raddr.addr.ss_family == AF_INET ||
		 MyProcPort->raddr.addr.ss_family == AF_INET6);
#ifdef TCP_INFO
	if (is_tcp && ch_rtt_interval_s > 0)
	{
		struct tcp_info ti_glibc;	/* only for its size */
		uint8		ti[Max(sizeof(ti_glibc), 256)];
		socklen_t	len = sizeof(ti);

		memset(ti, 0, sizeof(ti));
		if (getsockopt(MyProcPort->sock, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 &&
			len >= offsetof(struct tcp_info, tcpi_rttvar) + sizeof(ti_glibc.tcpi_rttvar))
		{
			memcpy(&rtt, ti + offsetof(struct tcp_info, tcpi_rtt), sizeof(rtt));
			memcpy(&rttvar, ti + offsetof(struct tcp_info, tcpi_rttvar), sizeof(rttvar));
#ifdef __linux__
			{
				uint32		min_rtt;

				/*
				 * The smoothed RTT of a request/response connection includes
				 * the client's delayed ACKs whenever it is quiet for a moment
				 * (a pool connection sending a statement every 50 ms reads
				 * ~16 ms on loopback).  The windowed minimum is the path
				 * itself: how far the Coder Server is from PostgreSQL.
				 */
				memcpy(&min_rtt, ti + CH_TCPI_MIN_RTT_OFFSET, sizeof(min_rtt));
				if (len >= CH_TCPI_MIN_RTT_OFFSET + sizeof(min_rtt) &&
					min_rtt > 0 && min_rtt != ~0U)
					rtt = min_rtt;
			}
#endif
		}
	}
#endif
	slot_begin_write(my_client_slot);
	my_client_slot->rtt_us = rtt;
	my_client_slot->rttvar_us = rttvar;
	my_client_slot->measured_at = now;
	slot_end_write(my_client_slot);

	/* unix sockets and disabled readings: nothing to read again */
	if (!is_tcp || ch_rtt_interval_s <= 0)
		rtt_due = ch_rtt_interval_s <= 0 ? now + USECS_PER_SEC : PG_INT64_MAX;
	else
		rtt_due = now + (TimestampTz) ch_rtt_interval_s * USECS_PER_SEC;
}

/*
 * The statement-boundary check: one comparison against a time PostgreSQL
 * already took for the statement.  Parallel workers have no client.
 */
static inline void
maybe_read_rtt(void)
{
	TimestampTz start = GetCurrentStatementStartTimestamp();

	if (likely(start < rtt_due) || ch_clients == NULL || IsParallelWorker())
		return;
	read_rtt(start);
}

/* ------------------------------------------------------------------------
 * Its part in hooks and callbacks (src/hooks.c calls it, in its order)
 * ------------------------------------------------------------------------
 */

/* After the previous ClientAuthentication hook returned. */
void
ch_clients_ClientAuthentication(Port *port, int status)
{
	/* a first reading as soon as the connection exists; idle pool
	 * connections may run no statement for a long time */
	if (status == STATUS_OK && ch_clients != NULL)
		read_rtt(GetCurrentTimestamp());
}

/* Before the previous ExecutorStart. */
void
ch_clients_ExecutorStart(void)
{
	maybe_read_rtt();
}

/* Before the previous ProcessUtility. */
void
ch_clients_ProcessUtility(PlannedStmt *pstmt)
{
	Node	   *parsetree = pstmt->utilityStmt;

	maybe_read_rtt();

	/*
	 * LISTEN takes effect at commit.  UNLISTEN * and DISCARD ALL drop every
	 * channel; UNLISTEN of one channel may or may not drop the last one and
	 * is not followed (see docs/clients.md).
	 */
	if (IsA(parsetree, ListenStmt))
		listen_change = CH_LISTEN_ADDED;
	else if ((IsA(parsetree, UnlistenStmt) &&
			  ((UnlistenStmt *) parsetree)->conditionname == NULL) ||
			 (IsA(parsetree, DiscardStmt) &&
			  ((DiscardStmt *) parsetree)->target == DISCARD_ALL))
		listen_change = CH_LISTEN_DROPPED_ALL;
}

/* src/hooks.c's transaction callback, after notify's part */
void
ch_clients_xact_callback(XactEvent event)
{
	ChListenChange change = listen_change;

	if (likely(change == CH_LISTEN_UNCHANGED))
		return;
	/* PRE_COMMIT and friends come first: wait for the outcome */
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	listen_change = CH_LISTEN_UNCHANGED;
	if (event != XACT_EVENT_COMMIT)
		return;
	/* no allocation, no error: a few stores into our own slot */
	if (my_client_slot == NULL && (my_client_slot = claim_client_slot()) == NULL)
		return;
	slot_begin_write(my_client_slot);
	my_client_slot->listening = (change == CH_LISTEN_ADDED);
	slot_end_write(my_client_slot);
}

const ChModule ch_clients_module = {
	.name = "clients",
	.define_settings = ch_define_clients_settings,
	.shmem_size = ch_clients_shmem_size,
	.shmem_init = ch_clients_shmem_init,
	.collect = ch_clients_collect,
	.used_bytes = ch_clients_used_bytes,
	.history_metrics = ch_clients_history_metrics,
	.nhistory_metrics = CH_CLIENTS_HM_COUNT,
	.history_sample = ch_clients_history_sample,
};
