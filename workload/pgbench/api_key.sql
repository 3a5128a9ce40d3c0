-- workload/pgbench/api_key.sql: GetAPIKeyByID on every request, UpdateAPIKeyByID (last_used) on one in five.
-- pgbench -n -M prepared -s <n_workspaces> -f workload/pgbench/api_key.sql coder
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
\set touch random(1, 5)
SELECT id AS key_id, now() AS now_ts, now() + interval '1 day' AS expires_ts,
	   '10.' || (:s % 250) || '.0.' || (1 + :s % 250) AS ip
FROM api_keys WHERE seq = :s \gset
-- name: GetAPIKeyByID :one
/* name: GetAPIKeyByID */
SELECT
	id, hashed_secret, user_id, last_used, expires_at, created_at, updated_at, login_type, lifetime_seconds, ip_address, scope, token_name
FROM
	api_keys
WHERE
	id = :key_id
LIMIT
	1;
\if :touch = 1
-- name: UpdateAPIKeyByID :exec
/* name: UpdateAPIKeyByID */
UPDATE
	api_keys
SET
	last_used = :now_ts,
	expires_at = :expires_ts,
	ip_address = :ip
WHERE
	id = :key_id;
\endif
