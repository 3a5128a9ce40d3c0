-- workload/pgbench/provisioner_jobs.sql: InsertProvisionerJob, AcquireProvisionerJob (FOR UPDATE SKIP LOCKED) and UpdateProvisionerJobWithCompleteByID.
-- Each transaction queues one job and takes the oldest one, so the queue
-- never runs dry.  acq_id is reset to the nil uuid first: when nothing was
-- acquired (\aset assigns nothing on zero rows) the completion updates no row.
-- pgbench -n -M prepared -s <n_workspaces> -f workload/pgbench/provisioner_jobs.sql coder
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
SELECT gen_random_uuid() AS new_job_id, now() AS now_ts,
	   (SELECT id FROM organizations ORDER BY is_default DESC, created_at LIMIT 1) AS org_id,
	   w.owner_id AS initiator_id, gen_random_uuid() AS file_id,
	   jsonb_build_object('workspace_build_id', gen_random_uuid())::text AS job_input,
	   md5('pgbench-provisioner-' || :client_id)::uuid AS worker_id,
	   'terraform' AS provisioner, 'file' AS storage_method,
	   'workspace_build' AS job_type,
	   '{"scope":"organization","owner":""}' AS tags, '{}' AS trace_metadata,
	   '{terraform,echo}' AS provisioner_types,
	   '00000000-0000-0000-0000-000000000000' AS acq_id
FROM workspaces w WHERE w.seq = :s \gset
-- name: InsertProvisionerJob :one
/* name: InsertProvisionerJob */
INSERT INTO
	provisioner_jobs (
		id, created_at, updated_at, organization_id, initiator_id,
		provisioner, storage_method, file_id, "type", "input", tags,
		trace_metadata
	)
VALUES
	(:new_job_id, :now_ts, :now_ts, :org_id, :initiator_id, :provisioner, :storage_method, :file_id, :job_type, :job_input, :tags, :trace_metadata) RETURNING id, created_at, updated_at, started_at, canceled_at, completed_at, error, organization_id, initiator_id, provisioner, storage_method, type, input, worker_id, file_id, tags, error_code, trace_metadata, job_status;
-- name: AcquireProvisionerJob :one
/* name: AcquireProvisionerJob */
UPDATE
	provisioner_jobs
SET
	started_at = :now_ts,
	updated_at = :now_ts,
	worker_id = :worker_id
WHERE
	id = (
		SELECT
			id
		FROM
			provisioner_jobs AS potential_job
		WHERE
			potential_job.started_at IS NULL
			AND potential_job.organization_id = :org_id
			AND potential_job.provisioner = ANY(:provisioner_types :: provisioner_type[])
		ORDER BY
			potential_job.created_at
		FOR UPDATE
		SKIP LOCKED
		LIMIT
			1
	) RETURNING id, created_at, updated_at, started_at, canceled_at, completed_at, error, organization_id, initiator_id, provisioner, storage_method, type, input, worker_id, file_id, tags, error_code, trace_metadata, job_status \aset acq_
-- name: UpdateProvisionerJobWithCompleteByID :exec
/* name: UpdateProvisionerJobWithCompleteByID */
UPDATE
	provisioner_jobs
SET
	updated_at = :now_ts,
	completed_at = :now_ts,
	error = NULL,
	error_code = NULL
WHERE
	id = :acq_id;
