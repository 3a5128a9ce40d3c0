-- workload/pgbench/insert_workspace_agent_stats.sql: InsertWorkspaceAgentStats, a 10-row batch from parallel arrays.
-- pgbench -n -M prepared -s <n_workspaces> -f workload/pgbench/insert_workspace_agent_stats.sql coder
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
SELECT array_agg(gen_random_uuid())::text AS ids,
	   array_agg(now())::text AS created,
	   array_agg(w.owner_id)::text AS user_ids,
	   array_agg(w.id)::text AS workspace_ids,
	   array_agg(w.template_id)::text AS template_ids,
	   array_agg(a.id)::text AS agent_ids,
	   jsonb_agg('{"ssh": 1, "vscode": 0}'::jsonb)::text AS protos,
	   array_agg(1)::text AS ones,
	   array_agg(0)::text AS zeros,
	   array_agg((random() * 5000)::bigint)::text AS packets,
	   array_agg((random() * 5000000)::bigint)::text AS bytes,
	   array_agg(round((1 + random() * 40)::numeric, 3))::text AS latencies,
	   array_agg(true)::text AS usages
FROM workspace_agents a JOIN workspaces w ON w.seq = a.seq
WHERE a.seq BETWEEN :s AND :s + 9 \gset
-- name: InsertWorkspaceAgentStats :exec
/* name: InsertWorkspaceAgentStats */
INSERT INTO
	workspace_agent_stats (
		id, created_at, user_id, workspace_id, template_id, agent_id,
		connections_by_proto, connection_count, rx_packets, rx_bytes,
		tx_packets, tx_bytes, session_count_vscode, session_count_jetbrains,
		session_count_reconnecting_pty, session_count_ssh,
		connection_median_latency_ms, usage
	)
SELECT
	unnest(:ids :: uuid[]) AS id,
	unnest(:created :: timestamptz[]) AS created_at,
	unnest(:user_ids :: uuid[]) AS user_id,
	unnest(:workspace_ids :: uuid[]) AS workspace_id,
	unnest(:template_ids :: uuid[]) AS template_id,
	unnest(:agent_ids :: uuid[]) AS agent_id,
	jsonb_array_elements(:protos :: jsonb) AS connections_by_proto,
	unnest(:ones :: bigint[]) AS connection_count,
	unnest(:packets :: bigint[]) AS rx_packets,
	unnest(:bytes :: bigint[]) AS rx_bytes,
	unnest(:packets :: bigint[]) AS tx_packets,
	unnest(:bytes :: bigint[]) AS tx_bytes,
	unnest(:zeros :: bigint[]) AS session_count_vscode,
	unnest(:zeros :: bigint[]) AS session_count_jetbrains,
	unnest(:zeros :: bigint[]) AS session_count_reconnecting_pty,
	unnest(:ones :: bigint[]) AS session_count_ssh,
	unnest(:latencies :: double precision[]) AS connection_median_latency_ms,
	unnest(:usages :: boolean[]) AS usage;
