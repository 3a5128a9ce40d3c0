-- workload/pgbench/tailnet.sql: UpsertTailnetCoordinator, UpsertTailnetPeer and UpsertTailnetTunnel
-- (INSERT ... ON CONFLICT DO UPDATE).  Each pgbench client is one
-- coordinator, its id derived from :client_id.
-- pgbench -n -M prepared -s <n_workspaces> -f workload/pgbench/tailnet.sql coder
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

\set s random(1, :scale)
\set t random(1, :scale)
SELECT md5('pgbench-coordinator-' || :client_id)::uuid AS coordinator_id,
	   a.id AS peer_id,
	   md5('pgbench-client-' || (:t % 64))::uuid AS client_id_uuid,
	   '\x' || repeat(md5(random()::text), 8) AS node,
	   CASE WHEN random() < 0.05 THEN 'lost' ELSE 'ok' END AS peer_status
FROM workspace_agents a WHERE a.seq = :s \gset
-- name: UpsertTailnetCoordinator :one
/* name: UpsertTailnetCoordinator */
INSERT INTO
	tailnet_coordinators (
	id,
	heartbeat_at
)
VALUES
	(:coordinator_id, now())
ON CONFLICT (id)
DO UPDATE SET
	id = :coordinator_id,
	heartbeat_at = now()
RETURNING id, heartbeat_at;
-- name: UpsertTailnetPeer :one
/* name: UpsertTailnetPeer */
INSERT INTO
	tailnet_peers (
		id,
		coordinator_id,
		node,
		status,
		updated_at
	)
VALUES
	(:peer_id, :coordinator_id, :node, :peer_status, now())
ON CONFLICT (id, coordinator_id)
DO UPDATE SET
	id = :peer_id,
	coordinator_id = :coordinator_id,
	node = :node,
	status = :peer_status,
	updated_at = now()
RETURNING id, coordinator_id, updated_at, node, status;
-- name: UpsertTailnetTunnel :one
/* name: UpsertTailnetTunnel */
INSERT INTO
	tailnet_tunnels (
		coordinator_id,
		src_id,
		dst_id,
		updated_at
	)
VALUES
	(:coordinator_id, :client_id_uuid, :peer_id, now())
ON CONFLICT (coordinator_id, src_id, dst_id)
DO UPDATE SET
	coordinator_id = :coordinator_id,
	src_id = :client_id_uuid,
	dst_id = :peer_id,
	updated_at = now()
RETURNING coordinator_id, src_id, dst_id, updated_at;
