-- workload/pgbench/get_workspaces.sql: GetWorkspaces for one owner, the dashboard's workspace list.
-- pgbench -n -M prepared -s <n_workspaces> -f workload/pgbench/get_workspaces.sql coder
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
\set lim 25
\set off 0
SELECT owner_id, false AS deleted FROM workspaces WHERE seq = :s \gset
-- name: GetWorkspaces :many
/* name: GetWorkspaces */
SELECT
	workspaces.id, workspaces.created_at, workspaces.updated_at, workspaces.owner_id, workspaces.organization_id, workspaces.template_id, workspaces.deleted, workspaces.name, workspaces.autostart_schedule, workspaces.ttl, workspaces.last_used_at, workspaces.dormant_at, workspaces.deleting_at, workspaces.automatic_updates, workspaces.favorite,
	users.username AS owner_username,
	templates.name AS template_name,
	latest_build.template_version_id,
	latest_build.transition AS latest_build_transition,
	latest_build.job_status AS latest_build_status,
	latest_build.completed_at AS latest_build_completed_at,
	COUNT(*) OVER () AS count
FROM
	workspaces
JOIN
	users ON workspaces.owner_id = users.id
JOIN
	templates ON workspaces.template_id = templates.id
LEFT JOIN LATERAL (
	SELECT
		workspace_builds.template_version_id, workspace_builds.transition,
		provisioner_jobs.job_status, provisioner_jobs.completed_at
	FROM
		workspace_builds
	JOIN
		provisioner_jobs ON provisioner_jobs.id = workspace_builds.job_id
	WHERE
		workspace_builds.workspace_id = workspaces.id
	ORDER BY
		build_number DESC
	LIMIT
		1
) latest_build ON TRUE
WHERE
	workspaces.deleted = :deleted
	AND workspaces.owner_id = :owner_id
ORDER BY
	workspaces.favorite DESC,
	workspaces.last_used_at DESC,
	LOWER(workspaces.name) ASC
LIMIT
	CASE WHEN :lim :: integer > 0 THEN :lim :: integer END
OFFSET
	:off;
