-- workload/pgbench/notify.sql: pubsub publishes, as coderd sends them.
--
-- pgbench -n -M prepared -f workload/pgbench/notify.sql coder
--
-- Coder's pubsub publishes "select pg_notify('<channel>', $1)" with the
-- channel inlined as a literal and the JSON payload as a parameter, and it
-- has no sqlc marker.  The channel here is workspace_owner:<uuid of one of
-- the first 16 users by seq>, the same ones coderd_sim's listeners listen
-- to, so running this next to workload/run.sh feeds their LISTEN
-- connections.  Works in every -M mode (only the integer :u is substituted).
--
-- Finding about sqlc markers in pgbench: a leading "-- name: X :one" line is
-- stripped by pgbench before sending; see get_workspace_agent_by_id.sql.
\set u random(1, 16)
select pg_notify('workspace_owner:' || (select id from users where seq = :u), repeat('x', 200));
