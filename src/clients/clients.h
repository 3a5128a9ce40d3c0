/*-------------------------------------------------------------------------
 *
 * clients.h
 *	  Connections and network round-trip per Coder Server (client host).
 *
 *	  every client backend (clients.c)
 *	      -> at connect and then at most every coder_health.rtt_interval,
 *	         at a statement boundary, reads TCP_INFO of its own socket and
 *	         publishes smoothed RTT and its variance in its slot (indexed by
 *	         PGPROC number; single writer, change counter, no lock)
 *	      -> remembers whether it holds a LISTEN (committed LISTEN, not yet
 *	         UNLISTEN * / DISCARD ALL)
 *	  collector (clients_collect.c), once per sample_interval
 *	      -> counts client backends per host from PostgreSQL's backend
 *	         status array and keeps per-step maxima for the 15-step peak
 *	  SQL (clients_sql.c)
 *	      -> groups live backends per host with state, lock waits, RTT
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_CLIENTS_H
#define CODER_HEALTH_CLIENTS_H

#include "postgres.h"

#include "access/xact.h"
#include "port/atomics.h"
#include "pg/compat.h"
#include "utils/timestamp.h"
#include "core/history.h"

#define CH_HOST_ADDR_LEN 48		/* INET6_ADDRSTRLEN + room */
#define CH_MAX_HOSTS 256		/* client hosts with a remembered peak */
#define CH_PEAK_STEPS 16		/* 15 complete window steps + the current */
#define CH_RTT_NONE PG_UINT32_MAX	/* no reading (unix socket, failure) */

/* One backend's published network state; indexed by PGPROC number. */
typedef struct ChClientSlot
{
	pg_atomic_uint32 changecount;	/* odd while the owner writes */
	int			pid;			/* owner; readers check it is still alive */
	uint32		rtt_us;			/* tcpi_rtt, or CH_RTT_NONE */
	uint32		rttvar_us;		/* tcpi_rttvar, or CH_RTT_NONE */
	TimestampTz measured_at;	/* 0 = never */
	bool		listening;		/* holds a committed LISTEN */
} ChClientSlot;

/* Connection counts of one client host over the last window steps. */
typedef struct ChHostPeak
{
	bool		used;
	char		addr[CH_HOST_ADDR_LEN];
	int			current;		/* at the last collector cycle */
	uint64		step[CH_PEAK_STEPS];	/* step number each bucket holds */
	int32		peak[CH_PEAK_STEPS];
	TimestampTz named_at;		/* last cycle a backend of this host had a
								 * sqlc-named statement (0 = never) */
} ChHostPeak;

typedef struct ChClientsShared
{
	int			nslots;
	uint64		step;			/* step of the last collector cycle */
	pg_atomic_uint64 hosts_dropped; /* hosts not tracked: table full */
	ChHostPeak	hosts[CH_MAX_HOSTS];
} ChClientsShared;

/* A copy of one slot, read consistently. */
typedef struct ChClientReading
{
	bool		valid;			/* slot belongs to that pid */
	uint32		rtt_us;
	uint32		rttvar_us;
	TimestampTz measured_at;
	bool		listening;
} ChClientReading;

/* clients.c */
extern ChClientsShared *ch_clients;
extern ChClientSlot *ch_client_slots;
extern int	ch_rtt_interval_s;
extern double ch_max_rtt_ms;
extern int	ch_coder_pool_size;
extern void ch_client_read_slot(int procno, int pid, ChClientReading *out);

/* clients_collect.c */
extern bool ch_client_host_of(const PgBackendStatus *be, char *buf, size_t len);
extern int	ch_host_peak(const char *addr, uint64 *step_out);
extern void ch_clients_collect(TimestampTz now);
extern uint64 ch_peak_step(TimestampTz now);
extern bool ch_backend_sqlc_named(const PgBackendStatus *be);
extern TimestampTz ch_host_named_at(const char *addr);

/* clients_history.c: its series of the history (core/history.h) */
typedef enum ChClientsHistoryMetric
{
	CH_CLIENTS_HM_CONNECTIONS,	/* key: client host */
	CH_CLIENTS_HM_COUNT
} ChClientsHistoryMetric;
extern const ChHistoryMetric ch_clients_history_metrics[CH_CLIENTS_HM_COUNT];
extern void ch_clients_history_sample(TimestampTz now, ChHistorySink *sink);

/*
 * clients.c: its part in PostgreSQL's hooks and callbacks, which src/hooks.c
 * installs and calls in its order.  Called on every statement and
 * transaction: bound inside the library (a direct call, no PLT).
 */
struct Port;
struct PlannedStmt;
#ifdef __GNUC__
#pragma GCC visibility push(hidden)
#endif
extern void ch_clients_ExecutorStart(void);
extern void ch_clients_ClientAuthentication(struct Port *port, int status);
extern void ch_clients_ProcessUtility(struct PlannedStmt *pstmt);
extern void ch_clients_xact_callback(XactEvent event);
#ifdef __GNUC__
#pragma GCC visibility pop
#endif

/* this feature's entry in the module list (core/module.h, src/coder_health.c) */
extern const struct ChModule ch_clients_module;

#endif							/* CODER_HEALTH_CLIENTS_H */
