-- workload/pgbench/replicas.sql: the replica heartbeat: GetReplicasUpdatedAfter, then
-- UpdateReplica (InsertReplica the first time).  Each pgbench client is one
-- replica, hostname pgbench-<client_id>; delete them afterwards with
-- DELETE FROM replicas WHERE hostname LIKE 'pgbench-%'.
-- pgbench -n -M prepared -s <n_workspaces> -f workload/pgbench/replicas.sql coder
--
-- Needs -M prepared or -M extended: the uuid/text variables are bound as
-- parameters there, while -M simple pastes them into the SQL unquoted.  -s
-- must be the n given to seed(n) (the "seq" keys run 1..n); random rows are
-- picked by seq through an untagged lookup whose \gset results become the
-- parameters of the Coder statement, so that statement has the shape of the
-- one coderd_sim (and coderd) sends.  pgbench numbers every occurrence of a
-- variable as a new $n, so statements that use one parameter twice (the
-- upserts, AcquireProvisionerJob, GetWorkspaces' limit) read $5 where
-- coderd_sim reads $1.
--
-- Finding (PostgreSQL 15 pgbench, checked with log_statement = all): pgbench
-- strips a leading "-- name: X :one" comment in every -M mode, because its
-- script lexer (psqlscan) treats "--" comments before the first token as
-- whitespace, so the server never sees the sqlc marker.  A block comment is
-- kept, but pgbench rewrites any ":word" in the text (sqlc's ":one", ":exec",
-- ":many") into a $n parameter in extended/prepared mode, even inside
-- comments, which then fails with "bind message supplies 1 parameters, but
-- prepared statement requires 0".  So each Coder statement below carries
-- "/* name: X */" (no ":kind"), which reaches the server as the first thing
-- in its text; the "-- name:" line above it is for the reader only.
SELECT md5('pgbench-replica-' || :client_id)::uuid AS replica_id,
	   'pgbench-' || :client_id AS replica_host,
	   now() AS now_ts, now() - interval '15 seconds' AS since_ts,
	   EXISTS (SELECT 1 FROM replicas
			   WHERE id = md5('pgbench-replica-' || :client_id)::uuid)::int AS have_replica \gset
-- name: GetReplicasUpdatedAfter :many
/* name: GetReplicasUpdatedAfter */
SELECT id, created_at, started_at, stopped_at, updated_at, hostname, region_id, relay_address, database_latency, version, error, "primary" FROM replicas WHERE updated_at > :since_ts AND stopped_at IS NULL;
\if :have_replica
-- name: UpdateReplica :one
/* name: UpdateReplica */
UPDATE replicas SET
	updated_at = :now_ts,
	started_at = :now_ts,
	stopped_at = NULL,
	relay_address = 'http://127.0.0.1:8080',
	region_id = 1,
	hostname = :replica_host,
	version = 'v2.x-pgbench',
	error = '',
	database_latency = 100,
	"primary" = true
WHERE id = :replica_id RETURNING id, created_at, started_at, stopped_at, updated_at, hostname, region_id, relay_address, database_latency, version, error, "primary";
\else
-- name: InsertReplica :one
/* name: InsertReplica */
INSERT INTO replicas (
	id,
	created_at,
	started_at,
	updated_at,
	hostname,
	region_id,
	relay_address,
	version,
	database_latency,
	"primary"
) VALUES (:replica_id, :now_ts, :now_ts, :now_ts, :replica_host, 1, 'http://127.0.0.1:8080', 'v2.x-pgbench', 100, true) RETURNING id, created_at, started_at, stopped_at, updated_at, hostname, region_id, relay_address, database_latency, version, error, "primary";
\endif
