/*-------------------------------------------------------------------------
 *
 * coderd_sim.c
 *		Simulate one Coder Server (a coderd replica) against PostgreSQL.
 *
 * What coderd does to its database, at a chosen rate:
 *
 *	- a pool of connections (CODER_PG_CONN_MAX_OPEN, default 10) running
 *	  Coder's hot sqlc statements, each text starting with sqlc's
 *	  "-- name: X :kind" marker and sent with the extended protocol as named
 *	  prepared statements, as pgx does (-M extended: unnamed statements, as
 *	  lib/pq does);
 *	- pubsub publishes from that pool, "select pg_notify('<channel>', $1)",
 *	  with JSON payloads of 100..7900 bytes;
 *	- one long-lived LISTEN connection (lib/pq's pq.Listener) that consumes
 *	  notifications as they arrive;
 *	- its own row in "replicas", heartbeated every 5 s with the database
 *	  latency it measured, and stopped_at set when it exits.
 *
 * One thread drives everything with non-blocking libpq and poll(): each
 * pool connection carries at most one statement at a time, like a
 * database/sql connection, and an idle connection picks up the next due
 * piece of work.  Statement errors are counted, never fatal; only failing
 * to connect at all is.
 *
 * Output: one summary line on stdout at the end.  Progress and errors go to
 * stderr (-q silences progress).
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static const Stmt stmts[N_STMTS] = {
	[S_GET_WORKSPACE_AGENT_BY_ID] = {"GetWorkspaceAgentByID",
		"-- name: GetWorkspaceAgentByID :one\n"
		"SELECT\n"
		"\tid, created_at, updated_at, name, first_connected_at, last_connected_at, "
		"disconnected_at, resource_id, auth_token, auth_instance_id, architecture, "
		"environment_variables, operating_system, instance_metadata, resource_metadata, "
		"directory, version, last_connected_replica_id, connection_timeout_seconds, "
		"troubleshooting_url, motd_file, lifecycle_state, expanded_directory, "
		"logs_length, logs_overflowed, started_at, ready_at, subsystems, display_apps, "
		"api_version, display_order\n"
		"FROM\n"
		"\tworkspace_agents\n"
		"WHERE\n"
		"\tid = $1\n"
		"\tAND deleted = FALSE\n"},
	[S_GET_API_KEY_BY_ID] = {"GetAPIKeyByID",
		"-- name: GetAPIKeyByID :one\n"
		"SELECT\n"
		"\tid, hashed_secret, user_id, last_used, expires_at, created_at, updated_at, "
		"login_type, lifetime_seconds, ip_address, scope, token_name\n"
		"FROM\n"
		"\tapi_keys\n"
		"WHERE\n"
		"\tid = $1\n"
		"LIMIT\n"
		"\t1\n"},
	[S_UPDATE_API_KEY_BY_ID] = {"UpdateAPIKeyByID",
		"-- name: UpdateAPIKeyByID :exec\n"
		"UPDATE\n"
		"\tapi_keys\n"
		"SET\n"
		"\tlast_used = $2,\n"
		"\texpires_at = $3,\n"
		"\tip_address = $4\n"
		"WHERE\n"
		"\tid = $1\n"},
	[S_INSERT_WORKSPACE_AGENT_STATS] = {"InsertWorkspaceAgentStats",
		"-- name: InsertWorkspaceAgentStats :exec\n"
		"INSERT INTO\n"
		"\tworkspace_agent_stats (\n"
		"\t\tid, created_at, user_id, workspace_id, template_id, agent_id,\n"
		"\t\tconnections_by_proto, connection_count, rx_packets, rx_bytes,\n"
		"\t\ttx_packets, tx_bytes, session_count_vscode, session_count_jetbrains,\n"
		"\t\tsession_count_reconnecting_pty, session_count_ssh,\n"
		"\t\tconnection_median_latency_ms, usage\n"
		"\t)\n"
		"SELECT\n"
		"\tunnest($1 :: uuid[]) AS id,\n"
		"\tunnest($2 :: timestamptz[]) AS created_at,\n"
		"\tunnest($3 :: uuid[]) AS user_id,\n"
		"\tunnest($4 :: uuid[]) AS workspace_id,\n"
		"\tunnest($5 :: uuid[]) AS template_id,\n"
		"\tunnest($6 :: uuid[]) AS agent_id,\n"
		"\tjsonb_array_elements($7 :: jsonb) AS connections_by_proto,\n"
		"\tunnest($8 :: bigint[]) AS connection_count,\n"
		"\tunnest($9 :: bigint[]) AS rx_packets,\n"
		"\tunnest($10 :: bigint[]) AS rx_bytes,\n"
		"\tunnest($11 :: bigint[]) AS tx_packets,\n"
		"\tunnest($12 :: bigint[]) AS tx_bytes,\n"
		"\tunnest($13 :: bigint[]) AS session_count_vscode,\n"
		"\tunnest($14 :: bigint[]) AS session_count_jetbrains,\n"
		"\tunnest($15 :: bigint[]) AS session_count_reconnecting_pty,\n"
		"\tunnest($16 :: bigint[]) AS session_count_ssh,\n"
		"\tunnest($17 :: double precision[]) AS connection_median_latency_ms,\n"
		"\tunnest($18 :: boolean[]) AS usage\n"},
	[S_UPDATE_WORKSPACE_AGENT_CONNECTION_BY_ID] = {"UpdateWorkspaceAgentConnectionByID",
		"-- name: UpdateWorkspaceAgentConnectionByID :exec\n"
		"UPDATE\n"
		"\tworkspace_agents\n"
		"SET\n"
		"\tfirst_connected_at = $2,\n"
		"\tlast_connected_at = $3,\n"
		"\tlast_connected_replica_id = $4,\n"
		"\tdisconnected_at = $5,\n"
		"\tupdated_at = $6\n"
		"WHERE\n"
		"\tid = $1\n"},
	[S_ACQUIRE_PROVISIONER_JOB] = {"AcquireProvisionerJob",
		"-- name: AcquireProvisionerJob :one\n"
		"UPDATE\n"
		"\tprovisioner_jobs\n"
		"SET\n"
		"\tstarted_at = $1,\n"
		"\tupdated_at = $1,\n"
		"\tworker_id = $2\n"
		"WHERE\n"
		"\tid = (\n"
		"\t\tSELECT\n"
		"\t\t\tid\n"
		"\t\tFROM\n"
		"\t\t\tprovisioner_jobs AS potential_job\n"
		"\t\tWHERE\n"
		"\t\t\tpotential_job.started_at IS NULL\n"
		"\t\t\tAND potential_job.organization_id = $3\n"
		"\t\t\tAND potential_job.provisioner = ANY($4 :: provisioner_type[])\n"
		"\t\tORDER BY\n"
		"\t\t\tpotential_job.created_at\n"
		"\t\tFOR UPDATE\n"
		"\t\tSKIP LOCKED\n"
		"\t\tLIMIT\n"
		"\t\t\t1\n"
		"\t) RETURNING id, created_at, updated_at, started_at, canceled_at, "
		"completed_at, error, organization_id, initiator_id, provisioner, "
		"storage_method, type, input, worker_id, file_id, tags, error_code, "
		"trace_metadata, job_status\n"},
	[S_UPDATE_PROVISIONER_JOB_WITH_COMPLETE_BY_ID] = {"UpdateProvisionerJobWithCompleteByID",
		"-- name: UpdateProvisionerJobWithCompleteByID :exec\n"
		"UPDATE\n"
		"\tprovisioner_jobs\n"
		"SET\n"
		"\tupdated_at = $2,\n"
		"\tcompleted_at = $3,\n"
		"\terror = $4,\n"
		"\terror_code = $5\n"
		"WHERE\n"
		"\tid = $1\n"},
	[S_INSERT_PROVISIONER_JOB] = {"InsertProvisionerJob",
		"-- name: InsertProvisionerJob :one\n"
		"INSERT INTO\n"
		"\tprovisioner_jobs (\n"
		"\t\tid, created_at, updated_at, organization_id, initiator_id,\n"
		"\t\tprovisioner, storage_method, file_id, \"type\", \"input\", tags,\n"
		"\t\ttrace_metadata\n"
		"\t)\n"
		"VALUES\n"
		"\t($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id, "
		"created_at, updated_at, started_at, canceled_at, completed_at, error, "
		"organization_id, initiator_id, provisioner, storage_method, type, input, "
		"worker_id, file_id, tags, error_code, trace_metadata, job_status\n"},
	[S_UPSERT_TAILNET_PEER] = {"UpsertTailnetPeer",
		"-- name: UpsertTailnetPeer :one\n"
		"INSERT INTO\n"
		"\ttailnet_peers (\n"
		"\t\tid,\n"
		"\t\tcoordinator_id,\n"
		"\t\tnode,\n"
		"\t\tstatus,\n"
		"\t\tupdated_at\n"
		"\t)\n"
		"VALUES\n"
		"\t($1, $2, $3, $4, now())\n"
		"ON CONFLICT (id, coordinator_id)\n"
		"DO UPDATE SET\n"
		"\tid = $1,\n"
		"\tcoordinator_id = $2,\n"
		"\tnode = $3,\n"
		"\tstatus = $4,\n"
		"\tupdated_at = now()\n"
		"RETURNING id, coordinator_id, updated_at, node, status\n"},
	[S_UPSERT_TAILNET_TUNNEL] = {"UpsertTailnetTunnel",
		"-- name: UpsertTailnetTunnel :one\n"
		"INSERT INTO\n"
		"\ttailnet_tunnels (\n"
		"\t\tcoordinator_id,\n"
		"\t\tsrc_id,\n"
		"\t\tdst_id,\n"
		"\t\tupdated_at\n"
		"\t)\n"
		"VALUES\n"
		"\t($1, $2, $3, now())\n"
		"ON CONFLICT (coordinator_id, src_id, dst_id)\n"
		"DO UPDATE SET\n"
		"\tcoordinator_id = $1,\n"
		"\tsrc_id = $2,\n"
		"\tdst_id = $3,\n"
		"\tupdated_at = now()\n"
		"RETURNING coordinator_id, src_id, dst_id, updated_at\n"},
	[S_GET_WORKSPACES] = {"GetWorkspaces",
		"-- name: GetWorkspaces :many\n"
		"SELECT\n"
		"\tworkspaces.id, workspaces.created_at, workspaces.updated_at, "
		"workspaces.owner_id, workspaces.organization_id, workspaces.template_id, "
		"workspaces.deleted, workspaces.name, workspaces.autostart_schedule, "
		"workspaces.ttl, workspaces.last_used_at, workspaces.dormant_at, "
		"workspaces.deleting_at, workspaces.automatic_updates, workspaces.favorite,\n"
		"\tusers.username AS owner_username,\n"
		"\ttemplates.name AS template_name,\n"
		"\tlatest_build.template_version_id,\n"
		"\tlatest_build.transition AS latest_build_transition,\n"
		"\tlatest_build.job_status AS latest_build_status,\n"
		"\tlatest_build.completed_at AS latest_build_completed_at,\n"
		"\tCOUNT(*) OVER () AS count\n"
		"FROM\n"
		"\tworkspaces\n"
		"JOIN\n"
		"\tusers ON workspaces.owner_id = users.id\n"
		"JOIN\n"
		"\ttemplates ON workspaces.template_id = templates.id\n"
		"LEFT JOIN LATERAL (\n"
		"\tSELECT\n"
		"\t\tworkspace_builds.template_version_id, workspace_builds.transition,\n"
		"\t\tprovisioner_jobs.job_status, provisioner_jobs.completed_at\n"
		"\tFROM\n"
		"\t\tworkspace_builds\n"
		"\tJOIN\n"
		"\t\tprovisioner_jobs ON provisioner_jobs.id = workspace_builds.job_id\n"
		"\tWHERE\n"
		"\t\tworkspace_builds.workspace_id = workspaces.id\n"
		"\tORDER BY\n"
		"\t\tbuild_number DESC\n"
		"\tLIMIT\n"
		"\t\t1\n"
		") latest_build ON TRUE\n"
		"WHERE\n"
		"\tworkspaces.deleted = $1\n"
		"\tAND workspaces.owner_id = $2\n"
		"ORDER BY\n"
		"\tworkspaces.favorite DESC,\n"
		"\tworkspaces.last_used_at DESC,\n"
		"\tLOWER(workspaces.name) ASC\n"
		"LIMIT\n"
		"\tCASE WHEN $3 :: integer > 0 THEN $3 END\n"
		"OFFSET\n"
		"\t$4\n"},
	[S_INSERT_REPLICA] = {"InsertReplica",
		"-- name: InsertReplica :one\n"
		"INSERT INTO replicas (\n"
		"\tid,\n"
		"\tcreated_at,\n"
		"\tstarted_at,\n"
		"\tupdated_at,\n"
		"\thostname,\n"
		"\tregion_id,\n"
		"\trelay_address,\n"
		"\tversion,\n"
		"\tdatabase_latency,\n"
		"\t\"primary\"\n"
		") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id, created_at, "
		"started_at, stopped_at, updated_at, hostname, region_id, relay_address, "
		"database_latency, version, error, \"primary\"\n"},
	[S_UPDATE_REPLICA] = {"UpdateReplica",
		"-- name: UpdateReplica :one\n"
		"UPDATE replicas SET\n"
		"\tupdated_at = $2,\n"
		"\tstarted_at = $3,\n"
		"\tstopped_at = $4,\n"
		"\trelay_address = $5,\n"
		"\tregion_id = $6,\n"
		"\thostname = $7,\n"
		"\tversion = $8,\n"
		"\terror = $9,\n"
		"\tdatabase_latency = $10,\n"
		"\t\"primary\" = $11\n"
		"WHERE id = $1 RETURNING id, created_at, started_at, stopped_at, updated_at, "
		"hostname, region_id, relay_address, database_latency, version, error, "
		"\"primary\"\n"},
	[S_GET_REPLICAS_UPDATED_AFTER] = {"GetReplicasUpdatedAfter",
		"-- name: GetReplicasUpdatedAfter :many\n"
		"SELECT id, created_at, started_at, stopped_at, updated_at, hostname, "
		"region_id, relay_address, database_latency, version, error, \"primary\" "
		"FROM replicas WHERE updated_at > $1 AND stopped_at IS NULL\n"},
	[S_UPSERT_TAILNET_COORDINATOR] = {"UpsertTailnetCoordinator",
		"-- name: UpsertTailnetCoordinator :one\n"
		"INSERT INTO\n"
		"\ttailnet_coordinators (\n"
		"\tid,\n"
		"\theartbeat_at\n"
		")\n"
		"VALUES\n"
		"\t($1, now())\n"
		"ON CONFLICT (id)\n"
		"DO UPDATE SET\n"
		"\tid = $1,\n"
		"\theartbeat_at = now()\n"
		"RETURNING id, heartbeat_at\n"},
	[S_PING] = {"Ping", "SELECT 1"},
	[S_NOTIFY] = {"pg_notify", NULL},
};

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

/* Relative weights of the rate-limited work; see pick_op(). */
static const struct
{
	OpKind		op;
	int			weight;
}			op_mix[] = {
	{OP_API_REQUEST, 30},
	{OP_GET_AGENT, 25},
	{OP_AGENT_CONNECTION, 15},
	{OP_TAILNET_PEER, 8},
	{OP_AGENT_STATS, 5},
	{OP_TAILNET_TUNNEL, 5},
	{OP_LIST_WORKSPACES, 5},
	{OP_ACQUIRE_JOB, 3},
	{OP_INSERT_JOB, 3},
};

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

/* options */
static const char *opt_conninfo = "";
static const char *opt_name = "coderd-sim";
static const char *opt_relay = "http://127.0.0.1:8080";
static int	opt_pool = 10;
static double opt_duration = 20.0;
static double opt_rate = 200.0;
static double opt_notify_rate = 20.0;
static bool opt_listen = true;
static bool opt_quiet = false;
static bool opt_verbose = false;
static bool opt_prepared = true;
static bool opt_param_channel = false;

/* identity */
static char replica_id[UUID_LEN];
static char worker_id[UUID_LEN];
static char org_id[UUID_LEN];
static char started_at_ts[TS_LEN];
static char first_connected_ts[TS_LEN];

/* rows picked from, loaded at start */
static Agent *agents;
static int	n_agents;
static char (*api_keys)[API_KEY_LEN];
static int	n_api_keys;
static char channel_owners[N_CHANNEL_IDS][UUID_LEN];
static int	n_channel_owners;
static char channel_agents[N_CHANNEL_IDS][UUID_LEN];
static int	n_channel_agents;
static char client_peers[N_CLIENT_PEERS][UUID_LEN];

/* connections */
static PoolConn *pool;
static PGconn *listener;
static double listener_reconnect_at;
static char listen_channels[N_CHANNEL_IDS + 8][CHANNEL_LEN];
static int	n_listen_channels;

/* pacing */
static double next_stmt_at;
static double next_notify_at;
static double next_sync_at;
static bool sync_pending;
static int	db_latency_us;

/* counters */
static long n_statements;
static long n_errors;
static long n_notify_sent;
static long n_notify_received;
static long n_notify_timed;
static double notify_lat_sum_ms;
static double notify_lat_max_ms;
static StmtStats stats[N_STMTS];
static int	n_printed_errors;

static volatile sig_atomic_t stop_requested = 0;

static uint64_t rng_state;


/* ---------------------------------------------------------------- utils */

static void fatal(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));
static void note(const char *fmt,...) __attribute__((format(printf, 1, 2)));
static void sb_printf(StrBuf *sb, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
fatal(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", opt_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
note(const char *fmt,...)
{
	va_list		ap;

	if (opt_quiet)
		return;
	fprintf(stderr, "%s: ", opt_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t
wall_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wall-clock timestamp offset_sec from now, as ISO 8601 UTC. */
static void
format_ts(char *buf, size_t len, long offset_sec)
{
	struct timespec ts;
	struct tm	tm;
	time_t		t;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = ts.tv_sec + offset_sec;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

/* xorshift64*: cheap, and good enough to pick rows and sizes. */
static uint64_t
rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* Uniform integer in [lo, hi]. */
static int
rng_range(int lo, int hi)
{
	if (hi <= lo)
		return lo;
	return lo + (int) (rng_next() % (uint64_t) (hi - lo + 1));
}

static double
rng_unit(void)
{
	return (rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* A random (version 4) uuid; Coder makes its ids client-side too. */
static void
gen_uuid(char *out)
{
	unsigned char b[16];
	uint64_t	r1 = rng_next(),
				r2 = rng_next();

	memcpy(b, &r1, 8);
	memcpy(b + 8, &r2, 8);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, UUID_LEN,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
			 b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n);

	if (p == NULL)
		fatal("out of memory");
	return p;
}

static void
sb_init(StrBuf *sb, size_t cap)
{
	sb->cap = cap;
	sb->len = 0;
	sb->data = xmalloc(cap);
	sb->data[0] = '\0';
}

static void
sb_reserve(StrBuf *sb, size_t extra)
{
	if (sb->len + extra + 1 > sb->cap)
	{
		char	   *p;

		while (sb->len + extra + 1 > sb->cap)
			sb->cap *= 2;
		p = realloc(sb->data, sb->cap);
		if (p == NULL)
			fatal("out of memory");
		sb->data = p;
	}
}

static void
sb_printf(StrBuf *sb, const char *fmt,...)
{
	for (;;)
	{
		va_list		ap;
		int			n;
		size_t		room = sb->cap - sb->len;

		va_start(ap, fmt);
		n = vsnprintf(sb->data + sb->len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			fatal("vsnprintf failed");
		if ((size_t) n < room)
		{
			sb->len += n;
			return;
		}
		sb_reserve(sb, (size_t) n);
	}
}

static void
sb_fill(StrBuf *sb, char c, size_t n)
{
	sb_reserve(sb, n);
	memset(sb->data + sb->len, c, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

static void
sb_free(StrBuf *sb)
{
	free(sb->data);
	sb->data = NULL;
}

static void
handle_signal(int signo)
{
	(void) signo;
	stop_requested = 1;
}


/* ---------------------------------------------------------- connections */

/*
 * Server notices, and errors that arrive while no statement is running (a
 * terminated backend), go to stderr with our name, or nowhere with -q.
 */
static void
notice_processor(void *arg, const char *message)
{
	(void) arg;
	if (!opt_quiet)
		fprintf(stderr, "%s: %s", opt_name, message);
}

/* Connect one pool connection and prepare every statement on it. */
static PGconn *
open_pool_conn(void)
{
	PGconn	   *conn = PQconnectdb(opt_conninfo);
	int			i;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		note("connection failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_processor, NULL);

	/*
	 * pgx prepares each statement once per connection under a name and then
	 * only sends Bind/Execute; do the same up front.
	 */
	for (i = 0; opt_prepared && i < N_STMTS; i++)
	{
		PGresult   *res;

		if (stmts[i].sql == NULL || i == S_PING)
			continue;
		res = PQprepare(conn, stmts[i].name, stmts[i].sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			note("preparing %s failed: %s", stmts[i].name,
				 PQresultErrorMessage(res));
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}

	if (PQsetnonblocking(conn, 1) != 0)
	{
		note("PQsetnonblocking failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static void
count_error(StmtId id, const char *msg)
{
	n_errors++;
	stats[id].errors++;
	if (n_printed_errors < MAX_PRINTED_ERRORS && !stop_requested)
	{
		n_printed_errors++;
		fprintf(stderr, "%s: %s: %s", opt_name, stmts[id].name,
				msg && msg[0] ? msg : "(no message)\n");
		if (n_printed_errors == MAX_PRINTED_ERRORS)
			fprintf(stderr, "%s: further errors are only counted\n", opt_name);
	}
}

/* The connection is gone: count the statement lost with it, retry later. */
static void
pool_conn_broken(PoolConn *pc)
{
	/* an error result for it may already have been counted */
	if (pc->busy && !pc->failed)
		count_error(pc->cur, PQerrorMessage(pc->conn));
	PQfinish(pc->conn);
	pc->conn = NULL;
	pc->busy = false;
	pc->flushing = false;
	pc->op = OP_NONE;
	pc->reconnect_at = now_sec() + RECONNECT_SEC;
}

/* lib/pq's pq.Listener issues LISTEN "<channel>" as simple queries. */
static PGconn *
open_listener(void)
{
	PGconn	   *conn = PQconnectdb(opt_conninfo);
	int			i;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		note("listener connection failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_processor, NULL);
	for (i = 0; i < n_listen_channels; i++)
	{
		char		sql[CHANNEL_LEN + 16];
		PGresult   *res;

		snprintf(sql, sizeof(sql), "LISTEN \"%s\"", listen_channels[i]);
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			note("%s failed: %s", sql, PQresultErrorMessage(res));
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}
	if (PQsetnonblocking(conn, 1) != 0)
	{
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static void
listener_read(void)
{
	PGnotify   *n;

	if (!PQconsumeInput(listener))
	{
		note("listener connection lost: %s", PQerrorMessage(listener));
		n_errors++;
		PQfinish(listener);
		listener = NULL;
		listener_reconnect_at = now_sec() + RECONNECT_SEC;
		return;
	}
	while ((n = PQnotifies(listener)) != NULL)
	{
		const char *p = strstr(n->extra, "\"sent_us\":");

		n_notify_received++;
		/* Every simulated server stamps its payloads; all share one clock. */
		if (p != NULL)
		{
			long long	sent = strtoll(p + 10, NULL, 10);
			double		ms = (wall_usec() - sent) / 1000.0;

			if (sent > 0 && ms >= 0)
			{
				n_notify_timed++;
				notify_lat_sum_ms += ms;
				if (ms > notify_lat_max_ms)
					notify_lat_max_ms = ms;
			}
		}
		PQfreemem(n);
	}
}


/* ------------------------------------------------------------ statements */

static bool
after_send(PoolConn *pc, StmtId id, int ok)
{
	int			r;

	if (!ok)
	{
		if (PQstatus(pc->conn) == CONNECTION_BAD)
		{
			pc->cur = id;
			pc->busy = true;
			pc->failed = false;
			pool_conn_broken(pc);
		}
		else
			count_error(id, PQerrorMessage(pc->conn));
		return false;
	}
	pc->cur = id;
	pc->busy = true;
	pc->failed = false;
	pc->sent_at = now_sec();
	/* -r paces every statement sent, follow-ups and heartbeats included */
	if (id != S_NOTIFY && opt_rate > 0)
		next_stmt_at += 1.0 / opt_rate;
	r = PQflush(pc->conn);
	if (r < 0)
	{
		pool_conn_broken(pc);
		return false;
	}
	pc->flushing = (r == 1);
	return true;
}

/* Send statement id with text-format parameters. */
static bool
send_stmt(PoolConn *pc, StmtId id, int nparams, const char *const *values)
{
	int			ok;

	if (id == S_PING)

		/*
		 * database/sql's Ping through lib/pq is a simple-protocol query, not
		 * a prepared statement.
		 */
		ok = PQsendQuery(pc->conn, stmts[id].sql);
	else if (opt_prepared)
		ok = PQsendQueryPrepared(pc->conn, stmts[id].name, nparams, values,
								 NULL, NULL, 0);
	else
		ok = PQsendQueryParams(pc->conn, stmts[id].sql, nparams, NULL, values,
							   NULL, NULL, 0);
	return after_send(pc, id, ok);
}

static void
random_ip(char *buf, size_t len)
{
	snprintf(buf, len, "10.%d.%d.%d", rng_range(0, 255), rng_range(0, 255),
			 rng_range(1, 254));
}

static void
random_hex(StrBuf *sb, int nbytes)
{
	static const char hex[] = "0123456789abcdef";
	int			i;

	sb_reserve(sb, (size_t) nbytes * 2);
	for (i = 0; i < nbytes; i++)
	{
		unsigned	v = (unsigned) (rng_next() & 0xff);

		sb->data[sb->len++] = hex[v >> 4];
		sb->data[sb->len++] = hex[v & 0xf];
	}
	sb->data[sb->len] = '\0';
}

/*
 * InsertWorkspaceAgentStats: coderd batches agent stats reports and flushes
 * them as one multi-row insert built from parallel arrays.
 */
static bool
send_agent_stats(PoolConn *pc)
{
	enum
	{
		NCOL = 18
	};
	StrBuf		col[NCOL];
	const char *values[NCOL];
	char		ts[TS_LEN];
	int			nrows = rng_range(5, 20);
	int			r,
				c;
	bool		ok;

	format_ts(ts, sizeof(ts), 0);
	for (c = 0; c < NCOL; c++)
	{
		sb_init(&col[c], 1024);
		sb_printf(&col[c], "%s", c == 6 ? "[" : "{");
	}
	for (r = 0; r < nrows; r++)
	{
		const Agent *a = &agents[rng_range(0, n_agents - 1)];
		const char *sep = r ? "," : "";
		char		id[UUID_LEN];
		int			conns = rng_range(0, 3);

		gen_uuid(id);
		sb_printf(&col[0], "%s%s", sep, id);
		sb_printf(&col[1], "%s\"%s\"", sep, ts);
		sb_printf(&col[2], "%s%s", sep, a->owner_id);
		sb_printf(&col[3], "%s%s", sep, a->workspace_id);
		sb_printf(&col[4], "%s%s", sep, a->template_id);
		sb_printf(&col[5], "%s%s", sep, a->id);
		sb_printf(&col[6], "%s{\"ssh\": %d, \"vscode\": %d}", sep,
				  conns > 0, conns > 1);
		sb_printf(&col[7], "%s%d", sep, conns);
		sb_printf(&col[8], "%s%d", sep, rng_range(0, 5000));
		sb_printf(&col[9], "%s%d", sep, rng_range(0, 5000000));
		sb_printf(&col[10], "%s%d", sep, rng_range(0, 5000));
		sb_printf(&col[11], "%s%d", sep, rng_range(0, 5000000));
		sb_printf(&col[12], "%s%d", sep, conns > 1);
		sb_printf(&col[13], "%s%d", sep, 0);
		sb_printf(&col[14], "%s%d", sep, rng_range(0, 1));
		sb_printf(&col[15], "%s%d", sep, conns > 0);
		sb_printf(&col[16], "%s%.3f", sep, conns ? 1.0 + rng_unit() * 40 : -1.0);
		sb_printf(&col[17], "%s%s", sep, conns ? "t" : "f");
	}
	for (c = 0; c < NCOL; c++)
	{
		sb_printf(&col[c], "%s", c == 6 ? "]" : "}");
		values[c] = col[c].data;
	}
	/* libpq copies the parameters into its output buffer right away. */
	ok = send_stmt(pc, S_INSERT_WORKSPACE_AGENT_STATS, NCOL, values);
	for (c = 0; c < NCOL; c++)
		sb_free(&col[c]);
	return ok;
}

/*
 * Publish one notification.  Coder's pubsub inlines the channel as a quoted
 * literal, "select pg_notify('<channel>', $1)", and sends it through
 * database/sql with an unnamed statement; -p sends pg_notify($1, $2)
 * instead.
 */
static bool
send_notify(PoolConn *pc)
{
	char		channel[CHANNEL_LEN];
	const char *event;
	const char *values[2];
	StrBuf		payload;
	int			target = rng_range(MIN_PAYLOAD, MAX_PAYLOAD);
	int			dice = rng_range(1, 100);
	int			ok;

	if (dice <= 50 && n_channel_owners > 0)
	{
		snprintf(channel, sizeof(channel), "workspace_owner:%.36s",
				 channel_owners[rng_range(0, n_channel_owners - 1)]);
		event = "workspace_updated";
	}
	else if (dice <= 75 && n_channel_agents > 0)
	{
		snprintf(channel, sizeof(channel), "agent-logs:%.36s",
				 channel_agents[rng_range(0, n_channel_agents - 1)]);
		event = "logs_added";
	}
	else if (dice <= 90)
	{
		snprintf(channel, sizeof(channel), "tailnet_peer_update");
		event = "peer_update";
	}
	else
	{
		snprintf(channel, sizeof(channel), "latency-measure:%.36s", replica_id);
		event = "ping";
	}

	sb_init(&payload, MAX_PAYLOAD + 256);
	sb_printf(&payload, "{\"sent_us\":%lld,\"replica\":\"%s\",\"kind\":\"%s\",\"data\":\"",
			  (long long) wall_usec(), replica_id, event);
	if ((int) payload.len + 2 < target)
		sb_fill(&payload, 'x', target - payload.len - 2);
	sb_printf(&payload, "\"}");

	if (opt_param_channel)
	{
		values[0] = channel;
		values[1] = payload.data;
		ok = PQsendQueryParams(pc->conn, "select pg_notify($1, $2)", 2, NULL,
							   values, NULL, NULL, 0);
	}
	else
	{
		char		sql[CHANNEL_LEN + 64];

		/* The channel holds only [a-z0-9:_-], so it needs no escaping. */
		snprintf(sql, sizeof(sql), "select pg_notify('%s', $1)", channel);
		values[0] = payload.data;
		ok = PQsendQueryParams(pc->conn, sql, 1, NULL, values, NULL, NULL, 0);
	}
	sb_free(&payload);
	return after_send(pc, S_NOTIFY, ok);
}

/*
 * Send the statement for the current step of pc's op.  Returns false when
 * the op has nothing more to send (or sending failed), leaving pc idle.
 */
static bool
op_step(PoolConn *pc)
{
	char		now_ts[TS_LEN];
	char		later_ts[TS_LEN];
	char		buf[64];

	if (pc->conn == NULL)
		return false;
	format_ts(now_ts, sizeof(now_ts), 0);

	switch (pc->op)
	{
		case OP_NONE:
			return false;

		case OP_API_REQUEST:
			{
				const char *key = api_keys[pc->pick];

				/*
				 * Every authenticated request looks its API key up; coderd
				 * writes last_used back only now and then.
				 */
				if (pc->step == 0)
				{
					const char *v[1] = {key};

					return send_stmt(pc, S_GET_API_KEY_BY_ID, 1, v);
				}
				if (pc->step == 1 && pc->extra)
				{
					const char *v[4] = {key, now_ts, later_ts, buf};

					format_ts(later_ts, sizeof(later_ts), 86400);
					random_ip(buf, sizeof(buf));
					return send_stmt(pc, S_UPDATE_API_KEY_BY_ID, 4, v);
				}
				return false;
			}

		case OP_GET_AGENT:
			if (pc->step == 0)
			{
				const char *v[1] = {agents[pc->pick].id};

				return send_stmt(pc, S_GET_WORKSPACE_AGENT_BY_ID, 1, v);
			}
			return false;

		case OP_AGENT_CONNECTION:
			if (pc->step == 0)
			{
				const char *v[6] = {agents[pc->pick].id, first_connected_ts,
				now_ts, replica_id, NULL, now_ts};

				return send_stmt(pc, S_UPDATE_WORKSPACE_AGENT_CONNECTION_BY_ID,
								 6, v);
			}
			return false;

		case OP_AGENT_STATS:
			if (pc->step == 0)
				return send_agent_stats(pc);
			return false;

		case OP_ACQUIRE_JOB:
			if (pc->step == 0)
			{
				const char *v[4] = {now_ts, worker_id, org_id, "{terraform,echo}"};

				pc->got_job = false;
				return send_stmt(pc, S_ACQUIRE_PROVISIONER_JOB, 4, v);
			}
			if (pc->step == 1 && pc->got_job)
			{
				/* The provisioner finished the build at once; mark it done. */
				const char *v[5] = {pc->job_id, now_ts, now_ts, NULL, NULL};

				return send_stmt(pc, S_UPDATE_PROVISIONER_JOB_WITH_COMPLETE_BY_ID,
								 5, v);
			}
			return false;

		case OP_INSERT_JOB:
			if (pc->step == 0)
			{
				char		id[UUID_LEN];
				char		file_id[UUID_LEN];
				char		build_id[UUID_LEN];
				char		input[96];
				const char *v[12];

				gen_uuid(id);
				gen_uuid(file_id);
				gen_uuid(build_id);
				snprintf(input, sizeof(input), "{\"workspace_build_id\":\"%s\"}",
						 build_id);
				v[0] = id;
				v[1] = now_ts;
				v[2] = now_ts;
				v[3] = org_id;
				v[4] = agents[pc->pick].owner_id;
				v[5] = "terraform";
				v[6] = "file";
				v[7] = file_id;
				v[8] = "workspace_build";
				v[9] = input;
				v[10] = "{\"scope\":\"organization\",\"owner\":\"\"}";
				v[11] = "{}";
				return send_stmt(pc, S_INSERT_PROVISIONER_JOB, 12, v);
			}
			return false;

		case OP_TAILNET_PEER:
			if (pc->step == 0)
			{
				StrBuf		node;
				const char *v[4];
				bool		ok;

				/* node is a serialized protobuf of a few hundred bytes */
				sb_init(&node, 1024);
				sb_printf(&node, "\\x");
				random_hex(&node, rng_range(150, 400));
				v[0] = agents[pc->pick].id;
				v[1] = replica_id;
				v[2] = node.data;
				v[3] = rng_range(1, 20) == 1 ? "lost" : "ok";
				ok = send_stmt(pc, S_UPSERT_TAILNET_PEER, 4, v);
				sb_free(&node);
				return ok;
			}
			return false;

		case OP_TAILNET_TUNNEL:
			if (pc->step == 0)
			{
				const char *v[3] = {replica_id,
					client_peers[rng_range(0, N_CLIENT_PEERS - 1)],
				agents[pc->pick].id};

				return send_stmt(pc, S_UPSERT_TAILNET_TUNNEL, 3, v);
			}
			return false;

		case OP_LIST_WORKSPACES:
			if (pc->step == 0)
			{
				const char *v[4] = {"false", agents[pc->pick].owner_id, "25", "0"};

				return send_stmt(pc, S_GET_WORKSPACES, 4, v);
			}
			return false;

		case OP_NOTIFY:
			if (pc->step == 0)
				return send_notify(pc);
			return false;

		case OP_REPLICA_SYNC:
			switch (pc->step)
			{
				case 0:
					{
						/* peers heartbeating within 3 intervals are alive */
						const char *v[1] = {later_ts};

						format_ts(later_ts, sizeof(later_ts),
								  -(long) (3 * HEARTBEAT_SEC));
						return send_stmt(pc, S_GET_REPLICAS_UPDATED_AFTER, 1, v);
					}
				case 1:
					return send_stmt(pc, S_PING, 0, NULL);
				case 2:
					{
						const char *v[11] = {replica_id, now_ts, started_at_ts,
							NULL, opt_relay, "1", opt_name, SIM_VERSION, "",
						buf, "true"};

						snprintf(buf, sizeof(buf), "%d", db_latency_us);
						return send_stmt(pc, S_UPDATE_REPLICA, 11, v);
					}
				case 3:
					{
						const char *v[1] = {replica_id};

						return send_stmt(pc, S_UPSERT_TAILNET_COORDINATOR, 1, v);
					}
				default:
					return false;
			}
	}
	return false;
}

static OpKind
pick_op(void)
{
	static int	total = 0;
	int			i,
				r;

	if (total == 0)
		for (i = 0; i < (int) (sizeof(op_mix) / sizeof(op_mix[0])); i++)
			total += op_mix[i].weight;
	r = rng_range(1, total);
	for (i = 0; i < (int) (sizeof(op_mix) / sizeof(op_mix[0])); i++)
	{
		r -= op_mix[i].weight;
		if (r <= 0)
			return op_mix[i].op;
	}
	return OP_GET_AGENT;
}

/* Start op on idle pc. */
static void
start_op(PoolConn *pc, OpKind op)
{
	pc->op = op;
	pc->step = 0;
	pc->got_job = false;
	pc->extra = false;
	if (op == OP_API_REQUEST)
	{
		pc->pick = rng_range(0, n_api_keys - 1);
		/* coderd only writes last_used back once it is a minute old */
		pc->extra = rng_range(1, 5) == 1;
	}
	else
		pc->pick = rng_range(0, n_agents - 1);
	if (!op_step(pc))
		pc->op = OP_NONE;
}

/* A statement's results are all in: book it and move the op along. */
static void
statement_done(PoolConn *pc)
{
	double		ms = (now_sec() - pc->sent_at) * 1000.0;
	StmtStats  *st = &stats[pc->cur];

	pc->busy = false;
	st->count++;
	st->total_ms += ms;
	if (ms > st->max_ms)
		st->max_ms = ms;
	if (pc->cur == S_NOTIFY)
	{
		if (!pc->failed)
			n_notify_sent++;
	}
	else
		n_statements++;
	if (pc->cur == S_PING && !pc->failed)
		db_latency_us = (int) (ms * 1000.0);

	pc->step++;
	if (!op_step(pc))
		pc->op = OP_NONE;
}

static void
handle_result(PoolConn *pc, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
	{
		pc->failed = true;
		count_error(pc->cur, PQresultErrorMessage(res));
		return;
	}
	if (pc->cur == S_ACQUIRE_PROVISIONER_JOB && PQntuples(res) > 0)
	{
		snprintf(pc->job_id, sizeof(pc->job_id), "%s", PQgetvalue(res, 0, 0));
		pc->got_job = true;
	}
}

/* Collect whatever results have arrived on pc without blocking. */
static void
drain_results(PoolConn *pc)
{
	while (pc->conn != NULL && pc->busy && !pc->flushing &&
		   !PQisBusy(pc->conn))
	{
		PGresult   *res = PQgetResult(pc->conn);

		if (res == NULL)
		{
			statement_done(pc);
			continue;
		}
		handle_result(pc, res);
		PQclear(res);
	}
}


/* ---------------------------------------------------------------- driver */

/* Hand due work to idle connections. */
static void
dispatch(double now)
{
	static int	rr = 0;
	int			i;

	/*
	 * Start at a different connection each time so that work spreads over
	 * the whole pool, as it does over coderd's many concurrent goroutines,
	 * instead of piling onto the first few connections.
	 */
	rr = (rr + 1) % opt_pool;
	for (i = 0; i < opt_pool; i++)
	{
		PoolConn   *pc = &pool[(rr + i) % opt_pool];

		if (pc->conn == NULL || pc->busy)
			continue;

		if (sync_pending)
		{
			sync_pending = false;
			start_op(pc, OP_REPLICA_SYNC);
			continue;
		}
		if (opt_notify_rate > 0 && now >= next_notify_at)
		{
			next_notify_at += 1.0 / opt_notify_rate;
			if (next_notify_at < now - 1.0)
				next_notify_at = now - 1.0;
			start_op(pc, OP_NOTIFY);
			continue;
		}
		if (opt_rate <= 0)
		{
			start_op(pc, pick_op());
			continue;
		}
		if (now >= next_stmt_at)
		{
			/* after a stall, do not try to make up for more than a second */
			if (next_stmt_at < now - 1.0)
				next_stmt_at = now - 1.0;
			start_op(pc, pick_op());
			continue;
		}
		break;
	}
}

/*
 * Wait up to timeout_ms for any busy pool connection or the listener, and
 * process what arrived.
 */
static void
poll_once(int timeout_ms)
{
	static struct pollfd *pfd = NULL;
	static int *who = NULL;
	int			n = 0;
	int			i;
	int			rc;

	/* one slot per pool connection and one for the listener */
	if (pfd == NULL)
	{
		pfd = xmalloc(sizeof(struct pollfd) * (opt_pool + 1));
		who = xmalloc(sizeof(int) * (opt_pool + 1));
	}

	for (i = 0; i < opt_pool; i++)
	{
		PoolConn   *pc = &pool[i];

		if (pc->conn == NULL || !pc->busy)
			continue;
		pfd[n].fd = PQsocket(pc->conn);
		pfd[n].events = POLLIN | (pc->flushing ? POLLOUT : 0);
		pfd[n].revents = 0;
		who[n++] = i;
	}
	if (listener != NULL)
	{
		pfd[n].fd = PQsocket(listener);
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		who[n++] = -1;
	}

	rc = poll(pfd, n, timeout_ms);
	if (rc < 0 && errno != EINTR)
	{
		perror("poll");
		stop_requested = 1;
	}

	for (i = 0; rc > 0 && i < n; i++)
	{
		PoolConn   *pc;

		if (pfd[i].revents == 0)
			continue;
		if (who[i] < 0)
		{
			listener_read();
			continue;
		}
		pc = &pool[who[i]];
		if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
		{
			if (!PQconsumeInput(pc->conn))
			{
				pool_conn_broken(pc);
				continue;
			}
		}
		if (pc->flushing)
		{
			int			r = PQflush(pc->conn);

			if (r < 0)
			{
				pool_conn_broken(pc);
				continue;
			}
			pc->flushing = (r == 1);
		}
		drain_results(pc);
	}
}

static void
reconnect_due(double now)
{
	int			i;

	for (i = 0; i < opt_pool; i++)
	{
		if (pool[i].conn == NULL && now >= pool[i].reconnect_at)
		{
			pool[i].conn = open_pool_conn();
			if (pool[i].conn == NULL)
				pool[i].reconnect_at = now_sec() + RECONNECT_SEC;
		}
	}
	if (opt_listen && listener == NULL && now >= listener_reconnect_at)
	{
		listener = open_listener();
		if (listener == NULL)
			listener_reconnect_at = now_sec() + RECONNECT_SEC;
	}
}

static int
busy_count(void)
{
	int			i,
				n = 0;

	for (i = 0; i < opt_pool; i++)
		if (pool[i].conn != NULL && pool[i].busy)
			n++;
	return n;
}


/* ------------------------------------------------------------- start/stop */

static PGresult *
exec_checked(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		fatal("%s\nfailed: %s(has workload/schema.sql been loaded and seeded?)",
			  sql, PQresultErrorMessage(res));
	return res;
}

/* Load the ids the simulated traffic picks from. */
static void
load_reference_data(PGconn *conn)
{
	PGresult   *res;
	int			i;
	char		limit[16];
	const char *v[1] = {limit};

	snprintf(limit, sizeof(limit), "%d", MAX_REF_ROWS);

	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT a.id, w.id, w.owner_id, w.template_id "
					   "FROM workspace_agents a JOIN workspaces w ON w.seq = a.seq "
					   "WHERE NOT a.deleted ORDER BY a.seq LIMIT $1", 1, v);
	n_agents = PQntuples(res);
	agents = xmalloc(sizeof(Agent) * (n_agents > 0 ? n_agents : 1));
	for (i = 0; i < n_agents; i++)
	{
		snprintf(agents[i].id, UUID_LEN, "%s", PQgetvalue(res, i, 0));
		snprintf(agents[i].workspace_id, UUID_LEN, "%s", PQgetvalue(res, i, 1));
		snprintf(agents[i].owner_id, UUID_LEN, "%s", PQgetvalue(res, i, 2));
		snprintf(agents[i].template_id, UUID_LEN, "%s", PQgetvalue(res, i, 3));
		if (i < N_CHANNEL_IDS)
			snprintf(channel_agents[n_channel_agents++], UUID_LEN, "%s",
					 agents[i].id);
	}
	PQclear(res);

	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT id FROM api_keys ORDER BY seq LIMIT $1",
					   1, v);
	n_api_keys = PQntuples(res);
	api_keys = xmalloc(API_KEY_LEN * (n_api_keys > 0 ? n_api_keys : 1));
	for (i = 0; i < n_api_keys; i++)
		snprintf(api_keys[i], API_KEY_LEN, "%s", PQgetvalue(res, i, 0));
	PQclear(res);

	/*
	 * Every simulated server draws workspace_owner channels from the same
	 * first users, so publishes of one are heard by the listeners of others.
	 */
	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT id FROM users ORDER BY seq LIMIT 16",
					   0, NULL);
	for (i = 0; i < PQntuples(res) && i < N_CHANNEL_IDS; i++)
		snprintf(channel_owners[n_channel_owners++], UUID_LEN, "%s",
				 PQgetvalue(res, i, 0));
	PQclear(res);

	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT id FROM organizations "
					   "ORDER BY is_default DESC, created_at LIMIT 1", 0, NULL);
	if (PQntuples(res) > 0)
		snprintf(org_id, UUID_LEN, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);

	if (n_agents == 0 || n_api_keys == 0 || org_id[0] == '\0')
		fatal("no seeded rows found; load workload/schema.sql and SELECT seed(n) first");

	for (i = 0; i < N_CLIENT_PEERS; i++)
		gen_uuid(client_peers[i]);
}

static int
measure_latency_us(PGconn *conn)
{
	double		t0 = now_sec();
	PGresult   *res = PQexec(conn, "SELECT 1");
	int			us = (int) ((now_sec() - t0) * 1e6);

	PQclear(res);
	return us;
}

/*
 * Register this server in "replicas".  coderd inserts a fresh row per
 * start; the simulator reuses the row of its hostname so that repeated runs
 * do not pile up dead replicas.
 */
static void
register_replica(PGconn *conn)
{
	PGresult   *res;
	char		lat[16];
	const char *vh[1] = {opt_name};

	snprintf(lat, sizeof(lat), "%d", db_latency_us);
	format_ts(started_at_ts, sizeof(started_at_ts), 0);

	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT id FROM replicas WHERE hostname = $1 "
					   "ORDER BY updated_at DESC LIMIT 1", 1, vh);
	if (PQntuples(res) > 0)
	{
		const char *v[11] = {replica_id, started_at_ts, started_at_ts, NULL,
			opt_relay, "1", opt_name, SIM_VERSION, "", lat, "true"};

		snprintf(replica_id, UUID_LEN, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		res = exec_checked(conn, stmts[S_UPDATE_REPLICA].sql, 11, v);
	}
	else
	{
		const char *v[10] = {replica_id, started_at_ts, started_at_ts,
			started_at_ts, opt_name, "1", opt_relay, SIM_VERSION, lat, "true"};

		PQclear(res);
		gen_uuid(replica_id);
		res = exec_checked(conn, stmts[S_INSERT_REPLICA].sql, 10, v);
	}
	PQclear(res);

	/* The tailnet coordinator must exist before peers point at it. */
	{
		const char *v[1] = {replica_id};

		res = exec_checked(conn, stmts[S_UPSERT_TAILNET_COORDINATOR].sql, 1, v);
		PQclear(res);
	}
}

static void
mark_replica_stopped(void)
{
	PGconn	   *conn = NULL;
	bool		own = false;
	char		now_ts[TS_LEN];
	char		lat[16];
	const char *v[11] = {replica_id, now_ts, started_at_ts, now_ts, opt_relay,
		"1", opt_name, SIM_VERSION, "", lat, "true"};
	PGresult   *res;
	int			i;

	for (i = 0; i < opt_pool && conn == NULL; i++)
		if (pool[i].conn != NULL && !pool[i].busy)
			conn = pool[i].conn;
	if (conn == NULL)
	{
		conn = PQconnectdb(opt_conninfo);
		own = true;
		if (PQstatus(conn) != CONNECTION_OK)
		{
			note("could not mark replica stopped: %s", PQerrorMessage(conn));
			PQfinish(conn);
			return;
		}
	}
	format_ts(now_ts, sizeof(now_ts), 0);
	snprintf(lat, sizeof(lat), "%d", db_latency_us);
	res = PQexecParams(conn, stmts[S_UPDATE_REPLICA].sql, 11, NULL, v, NULL,
					   NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		note("could not mark replica stopped: %s", PQresultErrorMessage(res));
	PQclear(res);
	if (own)
		PQfinish(conn);
}

/* Cancel whatever is still running and wait for it to end. */
static void
cancel_busy(void)
{
	int			i;

	for (i = 0; i < opt_pool; i++)
	{
		PoolConn   *pc = &pool[i];
		PGcancel   *cancel;
		PGresult   *res;

		if (pc->conn == NULL || !pc->busy)
			continue;
		cancel = PQgetCancel(pc->conn);
		if (cancel != NULL)
		{
			char		errbuf[256];

			(void) PQcancel(cancel, errbuf, sizeof(errbuf));
			PQfreeCancel(cancel);
		}
		PQsetnonblocking(pc->conn, 0);
		while ((res = PQgetResult(pc->conn)) != NULL)
			PQclear(res);
		pc->busy = false;
		pc->op = OP_NONE;
	}
}

static void
usage(const char *prog)
{
	fprintf(stderr,
			"Usage: %s [options]\n"
			"Simulate one Coder Server (coderd) against PostgreSQL.\n\n"
			"  -d CONNINFO   libpq connection string (\"host=127.0.0.1 port=5432 dbname=coder\")\n"
			"  -n NAME       replica hostname (default coderd-sim)\n"
			"  -c N          pool size (default 10, like CODER_PG_CONN_MAX_OPEN)\n"
			"  -t SECONDS    duration (default 20; 0 = until SIGINT/SIGTERM)\n"
			"  -r RATE       statements per second over the pool (default 200; 0 = flat out)\n"
			"  -N RATE       notifications per second (default 20; 0 = none)\n"
			"  -L / -l       hold a LISTEN connection (default) / do not\n"
			"  -a URL        relay_address to record (default http://127.0.0.1:8080)\n"
			"  -M MODE       prepared (named statements, like pgx; default) or\n"
			"                extended (unnamed statements, like lib/pq)\n"
			"  -p            publish with pg_notify($1, $2) instead of Coder's\n"
			"                pg_notify('<channel>', $1)\n"
			"  -q            quiet: only the summary line\n"
			"  -v            per-statement breakdown at the end (stderr)\n",
			prog);
}

static double
parse_num(const char *s, char opt)
{
	char	   *end;
	double		v = strtod(s, &end);

	if (end == s || *end != '\0' || v < 0)
		fatal("invalid value for -%c: %s", opt, s);
	return v;
}

int
main(int argc, char **argv)
{
	int			c;
	int			i;
	int			connected = 0;
	double		start,
				end_at,
				drain_until,
				elapsed;
	struct sigaction sa;

	while ((c = getopt(argc, argv, "d:n:c:t:r:N:Lla:M:pqvh")) != -1)
	{
		switch (c)
		{
			case 'd':
				opt_conninfo = optarg;
				break;
			case 'n':
				opt_name = optarg;
				break;
			case 'c':
				opt_pool = (int) parse_num(optarg, 'c');
				break;
			case 't':
				opt_duration = parse_num(optarg, 't');
				break;
			case 'r':
				opt_rate = parse_num(optarg, 'r');
				break;
			case 'N':
				opt_notify_rate = parse_num(optarg, 'N');
				break;
			case 'L':
				opt_listen = true;
				break;
			case 'l':
				opt_listen = false;
				break;
			case 'a':
				opt_relay = optarg;
				break;
			case 'M':
				if (strcmp(optarg, "prepared") == 0)
					opt_prepared = true;
				else if (strcmp(optarg, "extended") == 0)
					opt_prepared = false;
				else
					fatal("-M must be prepared or extended");
				break;
			case 'p':
				opt_param_channel = true;
				break;
			case 'q':
				opt_quiet = true;
				break;
			case 'v':
				opt_verbose = true;
				break;
			case 'h':
				usage(argv[0]);
				return 0;
			default:
				usage(argv[0]);
				return 2;
		}
	}
	if (optind < argc)
	{
		usage(argv[0]);
		return 2;
	}
	if (opt_pool < 1 || opt_pool > 1000)
		fatal("-c must be between 1 and 1000");

	rng_state = (uint64_t) wall_usec() ^ ((uint64_t) getpid() << 32) ^
		UINT64_C(0x9e3779b97f4a7c15);
	if (rng_state == 0)
		rng_state = 1;
	gen_uuid(worker_id);
	format_ts(first_connected_ts, sizeof(first_connected_ts), -3600);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: poll() must return so the loop sees the request */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pool = calloc(opt_pool, sizeof(PoolConn));
	if (pool == NULL)
		fatal("out of memory");

	/* The first connection also does the setup work. */
	pool[0].conn = open_pool_conn();
	if (pool[0].conn == NULL)
	{
		fprintf(stderr, "%s: could not connect to the database\n", opt_name);
		printf("%s statements=0 errors=1 notifications_sent=0 "
			   "notifications_received=0 elapsed=0.00s connect_failed=1\n",
			   opt_name);
		return 1;
	}
	load_reference_data(pool[0].conn);
	db_latency_us = measure_latency_us(pool[0].conn);
	register_replica(pool[0].conn);
	connected = 1;
	for (i = 1; i < opt_pool; i++)
	{
		pool[i].conn = open_pool_conn();
		if (pool[i].conn != NULL)
			connected++;
		else
			pool[i].reconnect_at = now_sec() + RECONNECT_SEC;
	}

	if (opt_listen)
	{
		int			k,
					j;

		/*
		 * Listen to half of the shared workspace_owner channels and a
		 * quarter of the agent-logs ones (a random subset per server, like
		 * the browsers that happen to be connected to it), the coordinator
		 * channel and this server's own latency probe.
		 */
		for (k = 0; k < n_channel_owners; k++)
			if (rng_range(0, 1) == 0 && n_listen_channels < N_CHANNEL_IDS / 2)
				snprintf(listen_channels[n_listen_channels++], CHANNEL_LEN,
						 "workspace_owner:%.36s", channel_owners[k]);
		for (j = 0, k = 0; k < n_channel_agents && j < N_CHANNEL_IDS / 4; k++)
			if (rng_range(0, 3) == 0)
			{
				snprintf(listen_channels[n_listen_channels++], CHANNEL_LEN,
						 "agent-logs:%.36s", channel_agents[k]);
				j++;
			}
		snprintf(listen_channels[n_listen_channels++], CHANNEL_LEN,
				 "tailnet_peer_update");
		snprintf(listen_channels[n_listen_channels++], CHANNEL_LEN,
				 "latency-measure:%.36s", replica_id);
		listener = open_listener();
		if (listener == NULL)
			listener_reconnect_at = now_sec() + RECONNECT_SEC;
	}

	note("replica %s, %d/%d pool connections, %s, %d channels, rate %.0f/s, "
		 "notify %.0f/s, db latency %d us",
		 replica_id, connected, opt_pool,
		 listener ? "listening" : "not listening", n_listen_channels,
		 opt_rate, opt_notify_rate, db_latency_us);

	start = now_sec();
	end_at = opt_duration > 0 ? start + opt_duration : 1e300;
	next_stmt_at = start;
	next_notify_at = start;
	next_sync_at = start + HEARTBEAT_SEC;

	while (!stop_requested)
	{
		double		now = now_sec();
		double		wake;
		int			timeout_ms;
		bool		idle = false;

		if (now >= end_at)
			break;
		if (now >= next_sync_at)
		{
			sync_pending = true;
			next_sync_at += HEARTBEAT_SEC;
		}
		reconnect_due(now);
		dispatch(now);

		for (i = 0; i < opt_pool; i++)
			if (pool[i].conn != NULL && !pool[i].busy)
				idle = true;
		wake = next_sync_at < end_at ? next_sync_at : end_at;
		if (idle)
		{
			if (opt_rate > 0 && next_stmt_at < wake)
				wake = next_stmt_at;
			if (opt_notify_rate > 0 && next_notify_at < wake)
				wake = next_notify_at;
		}
		timeout_ms = (int) ((wake - now) * 1000.0 + 0.999);
		if (timeout_ms < 0)
			timeout_ms = 0;
		if (timeout_ms > 100)
			timeout_ms = 100;
		poll_once(timeout_ms);
	}

	/* Let in-flight statements finish (a second signal cuts this short). */
	stop_requested = 0;
	drain_until = now_sec() + DRAIN_SEC;
	while (busy_count() > 0 && now_sec() < drain_until && !stop_requested)
		poll_once(50);
	cancel_busy();
	elapsed = now_sec() - start;
	/* Notifications already queued to us may still be on their way. */
	if (listener != NULL)
	{
		double		until = now_sec() + 0.2;

		while (listener != NULL && now_sec() < until)
			poll_once(50);
	}

	mark_replica_stopped();

	for (i = 0; i < opt_pool; i++)
		if (pool[i].conn != NULL)
			PQfinish(pool[i].conn);
	if (listener != NULL)
		PQfinish(listener);

	printf("%s statements=%ld errors=%ld notifications_sent=%ld "
		   "notifications_received=%ld elapsed=%.2fs stmt_per_s=%.1f "
		   "notify_per_s=%.1f notify_latency_avg_ms=%.2f notify_latency_max_ms=%.2f\n",
		   opt_name, n_statements, n_errors, n_notify_sent, n_notify_received,
		   elapsed, elapsed > 0 ? n_statements / elapsed : 0.0,
		   elapsed > 0 ? n_notify_sent / elapsed : 0.0,
		   n_notify_timed ? notify_lat_sum_ms / n_notify_timed : 0.0,
		   notify_lat_max_ms);
	fflush(stdout);

	if (opt_verbose)
	{
		fprintf(stderr, "%-40s %9s %7s %9s %9s\n", "statement", "calls",
				"errors", "avg_ms", "max_ms");
		for (i = 0; i < N_STMTS; i++)
			if (stats[i].count > 0 || stats[i].errors > 0)
				fprintf(stderr, "%-40s %9ld %7ld %9.3f %9.3f\n", stmts[i].name,
						stats[i].count, stats[i].errors,
						stats[i].count ? stats[i].total_ms / stats[i].count : 0.0,
						stats[i].max_ms);
	}

	free(agents);
	free(api_keys);
	free(pool);
	return 0;
}
