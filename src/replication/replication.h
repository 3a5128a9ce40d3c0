/*-------------------------------------------------------------------------
 *
 * replication.h
 *	  Replication lag on the primary (per WAL sender), on a standby (its WAL
 *	  receiver and replay), and replication slots: what the collector samples
 *	  and what the SQL functions read.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_REPLICATION_H
#define CODER_HEALTH_REPLICATION_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "utils/timestamp.h"
#include "core/history.h"

/*
 * The kernel's round trip of a replication connection, as the collector
 * last read it (tcp_diag.c): the windowed minimum (tcpi_min_rtt) and the
 * smoothed value (tcpi_rtt), in microseconds.
 */
typedef struct ChReplRtt
{
	int			pid;			/* WAL sender or receiver it belongs to; 0: none */
	uint32		min_rtt_us;
	uint32		rtt_us;
	TimestampTz read_at;
} ChReplRtt;

/* What the SQL function shows of a connection's round trip. */
typedef struct ChReplRttRow
{
	bool		is_standby;		/* this server's WAL receiver */
	int			pid;
	bool		has_rtt;
	double		rtt_ms;			/* min_rtt */
	double		rtt_recent_ms;	/* smoothed */
	double		rtt_max_ms;		/* highest rtt_ms over 15 minutes; <0: none */
} ChReplRttRow;

/* A WAL sender as read from WalSndCtl, with lags computed. */
typedef struct ChSenderRow
{
	int			walsnd_index;
	int			pid;
	int			state;			/* WalSndState */
	char		slot_name[NAMEDATALEN]; /* "" when it uses no slot */
	bool		has_bytes[4];	/* sent, write, flush, replay known */
	int64		lag_bytes[4];
	bool		has_s[3];		/* write, flush, replay known */
	double		lag_s[3];
	TimestampTz reply_time;		/* 0: never replied */
	/* inputs of the seconds (see ch_repl_sender_seconds) */
	XLogRecPtr	end;			/* this server's end of WAL when read */
	XLogRecPtr	ptr[4];			/* sent, write, flush, replay positions */
	int64		core_lag_us[3]; /* PostgreSQL's measured lags, -1: none */
} ChSenderRow;

#define CH_LAG_SENT 0
#define CH_LAG_WRITE 1
#define CH_LAG_FLUSH 2
#define CH_LAG_REPLAY 3

/* This server as a standby. */
typedef struct ChStandbyRow
{
	const char *receiver_status;
	int			receiver_pid;	/* 0: no WAL receiver */
	char		sender_host[256];
	int			sender_port;
	char		slot_name[NAMEDATALEN];
	bool		has_receive_lag;
	int64		receive_lag_bytes;
	bool		has_replay_lag;
	int64		replay_lag_bytes;
	bool		streaming;
	bool		has_last_msg;
	TimestampTz last_msg_time;
	bool		replay_paused;
	/* inputs of the delay (see ch_repl_standby_delay) */
	XLogRecPtr	received;		/* InvalidXLogRecPtr: nothing yet */
	XLogRecPtr	replayed;
	TimestampTz latest_xact_time;	/* last replayed commit (primary clock) */
} ChStandbyRow;

/* A replication slot as read from ReplicationSlotCtl. */
typedef struct ChSlotRow
{
	char		name[NAMEDATALEN];
	bool		logical;
	Oid			database;
	bool		active;
	int			active_pid;
	bool		has_retained;
	int64		retained_wal_bytes;
	const char *wal_status;		/* NULL: unknown */
	bool		has_safe;
	int64		safe_wal_bytes;
	TimestampTz core_inactive_since;	/* from PostgreSQL 17+, else 0 */
} ChSlotRow;

/* replication.c: reading PostgreSQL's state (no lock of ours held) */
extern XLogRecPtr ch_repl_wal_end(bool in_recovery);
extern int	ch_repl_read_senders(ChSenderRow *rows, int max_rows, XLogRecPtr end);
extern void ch_repl_read_standby(ChStandbyRow *row);
extern int	ch_repl_read_slots(ChSlotRow *rows, int max_rows, bool in_recovery);
extern void ch_repl_match_slots(ChSenderRow *senders, int nsenders,
								const ChSlotRow *slots, int nslots);
extern const char *ch_repl_sender_state_name(int state);

/* replication.c: our shared state; the caller holds CH_LOCK_REPLICATION */
extern void ch_repl_sender_seconds(ChSenderRow *row, TimestampTz now);
extern double ch_repl_standby_delay(const ChStandbyRow *row, TimestampTz now);
extern bool ch_repl_sender_peak(const ChSenderRow *row, TimestampTz now,
								int64 *bytes, double *seconds);
extern bool ch_repl_standby_peak(TimestampTz now, int64 *bytes, double *seconds);
extern bool ch_repl_slot_inactive_since(const ChSlotRow *row,
										TimestampTz *since);
extern int	ch_repl_max_senders(void);
extern int	ch_repl_rtt_rows(const ChSenderRow *senders, int nsenders,
							 const ChStandbyRow *standby, TimestampTz now,
							 ChReplRttRow *out);
extern int	ch_repl_max_slots(void);

/* replication_read.c: where a replication connection's peer is, for
 * tcp_diag.c (false: no round trip, e.g. a unix socket) */
struct ChTcpRttQuery;
extern bool ch_repl_sender_query(int pid, struct ChTcpRttQuery *q);
extern bool ch_repl_receiver_query(const ChStandbyRow *standby,
								   struct ChTcpRttQuery *q);

/* replication_history.c: its series of the history (core/history.h) */
typedef enum ChReplHistoryMetric
{
	CH_REPL_HM_LAG_BYTES,		/* key: standby (slot, else walsender pid) */
	CH_REPL_HM_LAG_S,
	CH_REPL_HM_RTT_MS,			/* key as the lag's; kernel min_rtt */
	CH_REPL_HM_COUNT
} ChReplHistoryMetric;
extern const ChHistoryMetric ch_repl_history_metrics[CH_REPL_HM_COUNT];
extern void ch_repl_history_sample(TimestampTz now, ChHistorySink *sink);

/* this feature's entry in the module list (core/module.h, src/coder_health.c) */
extern const struct ChModule ch_replication_module;

#endif							/* CODER_HEALTH_REPLICATION_H */
