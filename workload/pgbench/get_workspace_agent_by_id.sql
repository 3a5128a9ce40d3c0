-- workload/pgbench/get_workspace_agent_by_id.sql: GetWorkspaceAgentByID, coderd's most frequent read.
-- pgbench -n -M prepared -s <n_workspaces> -f workload/pgbench/get_workspace_agent_by_id.sql coder
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
SELECT id AS agent_id FROM workspace_agents WHERE seq = :s \gset
-- name: GetWorkspaceAgentByID :one
/* name: GetWorkspaceAgentByID */
SELECT
	id, created_at, updated_at, name, first_connected_at, last_connected_at, disconnected_at, resource_id, auth_token, auth_instance_id, architecture, environment_variables, operating_system, instance_metadata, resource_metadata, directory, version, last_connected_replica_id, connection_timeout_seconds, troubleshooting_url, motd_file, lifecycle_state, expanded_directory, logs_length, logs_overflowed, started_at, ready_at, subsystems, display_apps, api_version, display_order
FROM
	workspace_agents
WHERE
	id = :agent_id
	AND deleted = FALSE;
