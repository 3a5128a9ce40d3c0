/*-------------------------------------------------------------------------
 *
 * coderd_sim.h
 *		What the files of the simulated Coder Server share: its limits, the
 *		statements and units of work, the pool connection's state, the
 *		options and the state each file owns (each variable is defined in the
 *		file named next to it).
 *
 * The simulator is split by concern into layers, top to bottom; a file
 * uses only files below it, never one above:
 *	main.c            options, start-up, the main loop, the summary line
 *	event_loop.c      handing due work to idle connections, stepping each
 *	                  unit of work through its statements, poll()
 *	pubsub.c          publishing with pg_notify, the LISTEN connection
 *	heartbeat.c       the replicas row: register, heartbeat, mark stopped
 *	statements.c      the request traffic as statement sequences; sending
 *	                  any statement, reading its results, timing it
 *	connections.c     the pool: connect, prepare, break, reconnect, cancel
 *	reference_data.c  the seeded ids the traffic picks from
 *	util.c            clocks, random numbers and uuids, string buffers
 *	state.c           what more than one file reads or writes: options,
 *	                  identity, pacing, counters; counting an error
 *	queries.c         the texts of Coder's sqlc queries
 *
 * workload/Makefile builds them into one program, with _POSIX_C_SOURCE set
 * on the command line so that every file sees the same system headers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODERD_SIM_H
#define CODERD_SIM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#define UUID_LEN		37		/* 36 characters and the terminator */
#define API_KEY_LEN		32
#define TS_LEN			80		/* ISO 8601 timestamp, with room to spare */
#define CHANNEL_LEN		64		/* NAMEDATALEN */
#define MAX_REF_ROWS	20000	/* rows of each table kept for picking ids */
#define N_CHANNEL_IDS	16		/* uuids that workspace_owner / agent-logs
								 * channels are drawn from, shared by all
								 * simulated servers of one database */
#define N_CLIENT_PEERS	64		/* tailnet client peers per server */
#define HEARTBEAT_SEC	5.0		/* coderd's replicasync interval */
#define DRAIN_SEC		3.0		/* how long to wait for in-flight work */
#define RECONNECT_SEC	1.0
#define MAX_PRINTED_ERRORS 10
#define MIN_PAYLOAD		100
#define MAX_PAYLOAD		7900	/* pg_notify's limit is < 8000 bytes */
#define SIM_VERSION		"v2.x-sim"

/*
 * The statements.  Texts follow Coder's queries (coderd/database/queries),
 * trimmed to this schema, with sqlc's marker comment first.
 */
typedef enum StmtId
{
	S_GET_WORKSPACE_AGENT_BY_ID,
	S_GET_API_KEY_BY_ID,
	S_UPDATE_API_KEY_BY_ID,
	S_INSERT_WORKSPACE_AGENT_STATS,
	S_UPDATE_WORKSPACE_AGENT_CONNECTION_BY_ID,
	S_ACQUIRE_PROVISIONER_JOB,
	S_UPDATE_PROVISIONER_JOB_WITH_COMPLETE_BY_ID,
	S_INSERT_PROVISIONER_JOB,
	S_UPSERT_TAILNET_PEER,
	S_UPSERT_TAILNET_TUNNEL,
	S_GET_WORKSPACES,
	S_INSERT_REPLICA,
	S_UPDATE_REPLICA,
	S_GET_REPLICAS_UPDATED_AFTER,
	S_UPSERT_TAILNET_COORDINATOR,
	S_PING,						/* not sqlc: the driver's ping, simple query */
	S_NOTIFY,					/* not sqlc: pubsub publish, text varies */
	N_STMTS
} StmtId;

typedef struct Stmt
{
	const char *name;			/* sqlc name; also the prepared statement's */
	const char *sql;
} Stmt;

/* queries.c: every statement's name and text, indexed by StmtId */
extern const Stmt stmts[N_STMTS];

/*
 * Units of work an idle pool connection can pick up.  Some take more than
 * one statement, run back to back on the same connection the way one Go
 * request handler would.
 */
typedef enum OpKind
{
	OP_NONE,
	OP_API_REQUEST,				/* GetAPIKeyByID [+ UpdateAPIKeyByID] */
	OP_GET_AGENT,				/* GetWorkspaceAgentByID */
	OP_AGENT_CONNECTION,		/* UpdateWorkspaceAgentConnectionByID */
	OP_AGENT_STATS,				/* InsertWorkspaceAgentStats, batched */
	OP_ACQUIRE_JOB,				/* AcquireProvisionerJob [+ complete it] */
	OP_INSERT_JOB,				/* InsertProvisionerJob */
	OP_TAILNET_PEER,			/* UpsertTailnetPeer */
	OP_TAILNET_TUNNEL,			/* UpsertTailnetTunnel */
	OP_LIST_WORKSPACES,			/* GetWorkspaces */
	OP_NOTIFY,					/* pg_notify */
	OP_REPLICA_SYNC				/* GetReplicasUpdatedAfter, ping,
								 * UpdateReplica, UpsertTailnetCoordinator */
} OpKind;

typedef struct PoolConn
{
	PGconn	   *conn;			/* NULL while disconnected */
	bool		busy;			/* a statement is in flight */
	bool		flushing;		/* libpq still has output to send */
	bool		failed;			/* current statement got an error result */
	double		reconnect_at;
	OpKind		op;
	int			step;
	StmtId		cur;
	double		sent_at;
	/* per-op scratch */
	int			pick;			/* index into agents / api_keys */
	bool		extra;			/* op has an optional second statement */
	bool		got_job;
	char		job_id[UUID_LEN];
} PoolConn;

typedef struct Agent
{
	char		id[UUID_LEN];
	char		workspace_id[UUID_LEN];
	char		owner_id[UUID_LEN];
	char		template_id[UUID_LEN];
} Agent;

typedef struct StmtStats
{
	long		count;
	long		errors;
	double		total_ms;
	double		max_ms;
} StmtStats;

typedef struct StrBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} StrBuf;

/* options (state.c; main.c sets them) */
extern const char *opt_conninfo;
extern const char *opt_name;
extern const char *opt_relay;
extern int	opt_pool;
extern double opt_rate;
extern double opt_notify_rate;
extern bool opt_listen;
extern bool opt_quiet;
extern bool opt_prepared;
extern bool opt_param_channel;

/*
 * identity (state.c): set by main.c (worker, first connection), heartbeat.c
 * (replica); the database latency measured by main.c, then by statements.c
 * from the heartbeat's ping
 */
extern char replica_id[UUID_LEN];
extern char worker_id[UUID_LEN];
extern char first_connected_ts[TS_LEN];
extern int	db_latency_us;

/* rows picked from, loaded at start (reference_data.c) */
extern char org_id[UUID_LEN];
extern Agent *agents;
extern int	n_agents;
extern char (*api_keys)[API_KEY_LEN];
extern int	n_api_keys;
extern char channel_owners[N_CHANNEL_IDS][UUID_LEN];
extern int	n_channel_owners;
extern char channel_agents[N_CHANNEL_IDS][UUID_LEN];
extern int	n_channel_agents;
extern char client_peers[N_CLIENT_PEERS][UUID_LEN];

/* connections: the pool (connections.c), the listener (pubsub.c) */
extern PoolConn *pool;
extern PGconn *listener;
extern double listener_reconnect_at;
extern char listen_channels[N_CHANNEL_IDS + 8][CHANNEL_LEN];
extern int	n_listen_channels;

/* pacing (state.c): main.c, event_loop.c, statements.c */
extern double next_stmt_at;
extern double next_notify_at;
extern double next_sync_at;
extern bool sync_pending;

/* counters (state.c): statements.c, connections.c, pubsub.c */
extern long n_statements;
extern long n_errors;
extern StmtStats stats[N_STMTS];
extern long n_notify_sent;
extern long n_notify_received;
extern long n_notify_timed;
extern double notify_lat_sum_ms;
extern double notify_lat_max_ms;

/* state.c: set by SIGINT/SIGTERM (main.c) or a failed poll() */
extern volatile sig_atomic_t stop_requested;
extern void count_error(StmtId id, const char *msg);

/* util.c */
extern uint64_t rng_state;
extern void fatal(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));
extern void note(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern double now_sec(void);
extern int64_t wall_usec(void);
extern void format_ts(char *buf, size_t len, long offset_sec);
extern uint64_t rng_next(void);
extern int	rng_range(int lo, int hi);
extern double rng_unit(void);
extern void gen_uuid(char *out);
extern void *xmalloc(size_t n);
extern void sb_init(StrBuf *sb, size_t cap);
extern void sb_reserve(StrBuf *sb, size_t extra);
extern void sb_printf(StrBuf *sb, const char *fmt,...) __attribute__((format(printf, 2, 3)));
extern void sb_fill(StrBuf *sb, char c, size_t n);
extern void sb_free(StrBuf *sb);

/* connections.c */
extern void notice_processor(void *arg, const char *message);
extern PGconn *open_pool_conn(void);
extern void pool_conn_broken(PoolConn *pc);
extern void reconnect_due(double now);
extern int	busy_count(void);
extern void cancel_busy(void);

/* statements.c */
extern bool after_send(PoolConn *pc, StmtId id, int ok);
extern bool send_stmt(PoolConn *pc, StmtId id, int nparams, const char *const *values);
extern OpKind pick_op(void);
extern void begin_op(PoolConn *pc, OpKind op);
extern bool traffic_step(PoolConn *pc);
extern bool collect_results(PoolConn *pc);

/* pubsub.c */
extern bool send_notify(PoolConn *pc);
extern void choose_listen_channels(void);
extern PGconn *open_listener(void);
extern void listener_reconnect_due(double now);
extern void listener_read(void);

/* heartbeat.c */
extern bool replica_sync_step(PoolConn *pc);
extern int	measure_latency_us(PGconn *conn);
extern void register_replica(PGconn *conn);
extern void mark_replica_stopped(void);

/* reference_data.c */
extern PGresult *exec_checked(PGconn *conn, const char *sql, int nparams,
							  const char *const *values);
extern void load_reference_data(PGconn *conn);

/* event_loop.c */
extern void dispatch(double now);
extern void poll_once(int timeout_ms);

#endif							/* CODERD_SIM_H */
