-- workload/pgbench/update_workspace_agent_connection.sql: UpdateWorkspaceAgentConnectionByID, the agent heartbeat.
-- pgbench -n -M prepared -s <n_workspaces> -f workload/pgbench/update_workspace_agent_connection.sql coder
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
SELECT id AS agent_id, now() - interval '1 hour' AS first_ts, now() AS now_ts,
	   md5('pgbench-replica-' || :client_id)::uuid AS replica_id
FROM workspace_agents WHERE seq = :s \gset
-- name: UpdateWorkspaceAgentConnectionByID :exec
/* name: UpdateWorkspaceAgentConnectionByID */
UPDATE
	workspace_agents
SET
	first_connected_at = :first_ts,
	last_connected_at = :now_ts,
	last_connected_replica_id = :replica_id,
	disconnected_at = NULL,
	updated_at = :now_ts
WHERE
	id = :agent_id;
