-- workload/schema.sql
--
-- A small schema shaped like Coder's (coderd/database/dump.sql), just enough
-- for the hot statements that coderd_sim and the pgbench scripts run.  Column
-- names and types follow Coder's so that the statement texts look like the
-- real sqlc-generated ones.
--
-- Idempotent: everything is dropped first, so running it twice works.
-- Fill it with:   SELECT seed(1000);   -- 1000 workspaces
--
-- Every seeded table that the load generators pick rows from has a dense
-- "seq" bigint key (1..n, indexed), so pgbench can draw a random existing row
-- with "\set s random(1, :scale)" and run the pgbench scripts with
-- "-s <n_workspaces>".  Coder itself has no such column; it is the cheapest
-- way to pick a random existing uuid.

SET client_min_messages = warning;

DROP FUNCTION IF EXISTS seed(int);
DROP TABLE IF EXISTS
	tailnet_tunnels, tailnet_peers, tailnet_coordinators, replicas,
	api_keys, workspace_agent_stats, workspace_agents, workspace_resources,
	workspace_builds, provisioner_jobs, workspaces, templates,
	organization_members, organizations, users
	CASCADE;
DROP TYPE IF EXISTS
	login_type, user_status, provisioner_type, provisioner_job_type,
	provisioner_storage_method, provisioner_job_status, workspace_transition,
	build_reason, workspace_agent_lifecycle_state, tailnet_status,
	api_key_scope, automatic_updates, resource_type
	CASCADE;

CREATE TYPE login_type AS ENUM ('password', 'github', 'oidc', 'token', 'none');
CREATE TYPE user_status AS ENUM ('active', 'suspended', 'dormant');
CREATE TYPE provisioner_type AS ENUM ('echo', 'terraform');
CREATE TYPE provisioner_job_type AS ENUM
	('template_version_import', 'workspace_build', 'template_version_dry_run');
CREATE TYPE provisioner_storage_method AS ENUM ('file');
CREATE TYPE provisioner_job_status AS ENUM
	('pending', 'running', 'succeeded', 'canceling', 'canceled', 'failed', 'unknown');
CREATE TYPE workspace_transition AS ENUM ('start', 'stop', 'delete');
CREATE TYPE build_reason AS ENUM
	('initiator', 'autostart', 'autostop', 'dormancy', 'failedstop', 'autodelete');
CREATE TYPE workspace_agent_lifecycle_state AS ENUM
	('created', 'starting', 'start_timeout', 'start_error', 'ready',
	 'shutting_down', 'shutdown_timeout', 'shutdown_error', 'off');
CREATE TYPE tailnet_status AS ENUM ('ok', 'lost');
CREATE TYPE api_key_scope AS ENUM ('all', 'application_connect');
CREATE TYPE automatic_updates AS ENUM ('always', 'never');

CREATE TABLE organizations (
	id uuid PRIMARY KEY,
	name text NOT NULL,
	description text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	is_default boolean NOT NULL DEFAULT false
);

CREATE TABLE users (
	id uuid PRIMARY KEY,
	seq bigint NOT NULL UNIQUE,
	email text NOT NULL,
	username text NOT NULL DEFAULT '',
	hashed_password bytea NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	status user_status NOT NULL DEFAULT 'active',
	rbac_roles text[] NOT NULL DEFAULT '{}',
	login_type login_type NOT NULL DEFAULT 'password',
	avatar_url text NOT NULL DEFAULT '',
	deleted boolean NOT NULL DEFAULT false,
	last_seen_at timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);
CREATE UNIQUE INDEX idx_users_email ON users (email) WHERE deleted = false;
CREATE UNIQUE INDEX idx_users_username ON users (username) WHERE deleted = false;

CREATE TABLE organization_members (
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	roles text[] NOT NULL DEFAULT '{organization-member}',
	PRIMARY KEY (organization_id, user_id)
);

CREATE TABLE templates (
	id uuid PRIMARY KEY,
	seq bigint NOT NULL UNIQUE,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	deleted boolean NOT NULL DEFAULT false,
	name varchar(64) NOT NULL,
	provisioner provisioner_type NOT NULL,
	active_version_id uuid NOT NULL,
	description varchar(128) NOT NULL DEFAULT '',
	default_ttl bigint NOT NULL DEFAULT 604800000000000,
	created_by uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
	icon varchar(256) NOT NULL DEFAULT '',
	display_name varchar(64) NOT NULL DEFAULT ''
);

CREATE TABLE workspaces (
	id uuid PRIMARY KEY,
	seq bigint NOT NULL UNIQUE,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	owner_id uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
	template_id uuid NOT NULL REFERENCES templates (id) ON DELETE RESTRICT,
	deleted boolean NOT NULL DEFAULT false,
	name varchar(64) NOT NULL,
	autostart_schedule text,
	ttl bigint,
	last_used_at timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
	dormant_at timestamptz,
	deleting_at timestamptz,
	automatic_updates automatic_updates NOT NULL DEFAULT 'never',
	favorite boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX workspaces_owner_id_lower_idx ON workspaces
	(owner_id, lower(name)) WHERE deleted = false;
CREATE INDEX workspaces_template_id_idx ON workspaces (template_id) WHERE deleted = false;

CREATE TABLE provisioner_jobs (
	id uuid PRIMARY KEY,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	started_at timestamptz,
	canceled_at timestamptz,
	completed_at timestamptz,
	error text,
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	initiator_id uuid NOT NULL,
	provisioner provisioner_type NOT NULL,
	storage_method provisioner_storage_method NOT NULL,
	type provisioner_job_type NOT NULL,
	input jsonb NOT NULL,
	worker_id uuid,
	file_id uuid NOT NULL,
	tags jsonb NOT NULL DEFAULT '{"scope": "organization"}',
	error_code text,
	trace_metadata jsonb,
	job_status provisioner_job_status GENERATED ALWAYS AS (
		CASE
			WHEN completed_at IS NOT NULL THEN
				CASE
					WHEN error <> '' THEN 'failed'::provisioner_job_status
					WHEN canceled_at IS NOT NULL THEN 'canceled'::provisioner_job_status
					ELSE 'succeeded'::provisioner_job_status
				END
			WHEN canceled_at IS NOT NULL THEN 'canceling'::provisioner_job_status
			WHEN started_at IS NULL THEN 'pending'::provisioner_job_status
			ELSE 'running'::provisioner_job_status
		END) STORED NOT NULL
);
-- Coder's index for the job queue: only pending jobs are in it, so
-- AcquireProvisionerJob stays cheap however many finished jobs pile up.
CREATE INDEX provisioner_jobs_started_at_idx ON provisioner_jobs (started_at)
	WHERE started_at IS NULL;

CREATE TABLE workspace_builds (
	id uuid PRIMARY KEY,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
	template_version_id uuid NOT NULL,
	build_number integer NOT NULL,
	transition workspace_transition NOT NULL,
	initiator_id uuid NOT NULL,
	provisioner_state bytea,
	job_id uuid NOT NULL UNIQUE REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
	deadline timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
	reason build_reason NOT NULL DEFAULT 'initiator',
	daily_cost integer NOT NULL DEFAULT 0,
	max_deadline timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
	UNIQUE (workspace_id, build_number)
);

CREATE TABLE workspace_resources (
	id uuid PRIMARY KEY,
	created_at timestamptz NOT NULL,
	job_id uuid NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
	transition workspace_transition NOT NULL,
	type varchar(192) NOT NULL,
	name varchar(64) NOT NULL,
	hide boolean NOT NULL DEFAULT false,
	icon varchar(256) NOT NULL DEFAULT '',
	instance_type varchar(256),
	daily_cost integer NOT NULL DEFAULT 0
);
CREATE INDEX workspace_resources_job_id_idx ON workspace_resources (job_id);

CREATE TABLE workspace_agents (
	id uuid PRIMARY KEY,
	seq bigint NOT NULL UNIQUE,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	name varchar(64) NOT NULL,
	first_connected_at timestamptz,
	last_connected_at timestamptz,
	disconnected_at timestamptz,
	resource_id uuid NOT NULL REFERENCES workspace_resources (id) ON DELETE CASCADE,
	auth_token uuid NOT NULL,
	auth_instance_id varchar,
	architecture varchar(64) NOT NULL,
	environment_variables jsonb,
	operating_system varchar(64) NOT NULL,
	instance_metadata jsonb,
	resource_metadata jsonb,
	directory varchar(4096) NOT NULL DEFAULT '',
	version text NOT NULL DEFAULT '',
	last_connected_replica_id uuid,
	connection_timeout_seconds integer NOT NULL DEFAULT 0,
	troubleshooting_url text NOT NULL DEFAULT '',
	motd_file text NOT NULL DEFAULT '',
	lifecycle_state workspace_agent_lifecycle_state NOT NULL DEFAULT 'created',
	expanded_directory varchar(4096) NOT NULL DEFAULT '',
	logs_length integer NOT NULL DEFAULT 0,
	logs_overflowed boolean NOT NULL DEFAULT false,
	started_at timestamptz,
	ready_at timestamptz,
	subsystems text[] DEFAULT '{}',
	display_apps text[] DEFAULT '{vscode,vscode_insiders,web_terminal,ssh_helper,port_forwarding_helper}',
	api_version text NOT NULL DEFAULT '',
	display_order integer NOT NULL DEFAULT 0,
	deleted boolean NOT NULL DEFAULT false
);
CREATE INDEX workspace_agents_auth_token_idx ON workspace_agents (auth_token);
CREATE INDEX workspace_agents_resource_id_idx ON workspace_agents (resource_id);

CREATE TABLE workspace_agent_stats (
	id uuid NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	user_id uuid NOT NULL,
	agent_id uuid NOT NULL,
	workspace_id uuid NOT NULL,
	template_id uuid NOT NULL,
	connections_by_proto jsonb NOT NULL DEFAULT '{}',
	connection_count bigint NOT NULL DEFAULT 0,
	rx_packets bigint NOT NULL DEFAULT 0,
	rx_bytes bigint NOT NULL DEFAULT 0,
	tx_packets bigint NOT NULL DEFAULT 0,
	tx_bytes bigint NOT NULL DEFAULT 0,
	connection_median_latency_ms double precision NOT NULL DEFAULT -1,
	session_count_vscode bigint NOT NULL DEFAULT 0,
	session_count_jetbrains bigint NOT NULL DEFAULT 0,
	session_count_reconnecting_pty bigint NOT NULL DEFAULT 0,
	session_count_ssh bigint NOT NULL DEFAULT 0,
	usage boolean NOT NULL DEFAULT false
);
ALTER TABLE workspace_agent_stats ADD CONSTRAINT agent_stats_pkey PRIMARY KEY (id);
CREATE INDEX idx_agent_stats_created_at ON workspace_agent_stats (created_at);
CREATE INDEX idx_agent_stats_user_id ON workspace_agent_stats (user_id);
CREATE INDEX workspace_agent_stats_template_id_created_at_user_id_idx
	ON workspace_agent_stats (template_id, created_at, user_id) INCLUDE (session_count_vscode, session_count_jetbrains, session_count_reconnecting_pty, session_count_ssh, connection_median_latency_ms)
	WHERE connection_count > 0;

CREATE TABLE api_keys (
	id text PRIMARY KEY,
	seq bigint NOT NULL UNIQUE,
	hashed_secret bytea NOT NULL,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	last_used timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	login_type login_type NOT NULL,
	lifetime_seconds bigint NOT NULL DEFAULT 86400,
	ip_address inet NOT NULL DEFAULT '0.0.0.0',
	scope api_key_scope NOT NULL DEFAULT 'all',
	token_name text NOT NULL DEFAULT ''
);
CREATE INDEX idx_api_key_user_id ON api_keys (user_id);

-- One row per Coder Server (coderd replica).  updated_at is the heartbeat
-- (every 5 s, stale after 15 s); database_latency is in microseconds, as
-- measured by coderd itself.
CREATE TABLE replicas (
	id uuid NOT NULL,
	created_at timestamptz NOT NULL,
	started_at timestamptz NOT NULL,
	stopped_at timestamptz,
	updated_at timestamptz NOT NULL,
	hostname text NOT NULL,
	region_id integer NOT NULL,
	relay_address text NOT NULL,
	database_latency integer NOT NULL,
	version text NOT NULL,
	error text NOT NULL DEFAULT '',
	"primary" boolean NOT NULL DEFAULT true
);

CREATE TABLE tailnet_coordinators (
	id uuid PRIMARY KEY,
	heartbeat_at timestamptz NOT NULL
);

CREATE TABLE tailnet_peers (
	id uuid NOT NULL,
	coordinator_id uuid NOT NULL REFERENCES tailnet_coordinators (id) ON DELETE CASCADE,
	updated_at timestamptz NOT NULL,
	node bytea NOT NULL,
	status tailnet_status NOT NULL DEFAULT 'ok',
	PRIMARY KEY (id, coordinator_id)
);
CREATE INDEX idx_tailnet_peers_coordinator ON tailnet_peers (coordinator_id);

CREATE TABLE tailnet_tunnels (
	coordinator_id uuid NOT NULL REFERENCES tailnet_coordinators (id) ON DELETE CASCADE,
	src_id uuid NOT NULL,
	dst_id uuid NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (coordinator_id, src_id, dst_id)
);
CREATE INDEX idx_tailnet_tunnels_src_id ON tailnet_tunnels (src_id);
CREATE INDEX idx_tailnet_tunnels_dst_id ON tailnet_tunnels (dst_id);

-- seed(n_workspaces): empty every table, then fill them.
--
-- Shape: one default organization, 10 templates, ceil(n/4) users (so about 4
-- workspaces each), n workspaces each with 2 builds (a stop and the latest
-- start, each with its succeeded provisioner job), one resource and one agent
-- per latest build, n API keys (key k belongs to the owner of workspace k),
-- 2 agent stats rows per agent and n/20 + 10 pending provisioner jobs.
-- workspaces.seq, workspace_agents.seq and api_keys.seq are all 1..n, and
-- agent k belongs to workspace k.
CREATE FUNCTION seed(n_workspaces int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	n_users int := greatest(1, (n_workspaces + 3) / 4);
	org uuid := gen_random_uuid();
BEGIN
	IF n_workspaces < 1 THEN
		RAISE EXCEPTION 'seed: n_workspaces must be at least 1';
	END IF;

	TRUNCATE tailnet_tunnels, tailnet_peers, tailnet_coordinators, replicas,
		api_keys, workspace_agent_stats, workspace_agents, workspace_resources,
		workspace_builds, provisioner_jobs, workspaces, templates,
		organization_members, organizations, users;

	INSERT INTO organizations (id, name, description, created_at, updated_at, is_default)
	VALUES (org, 'coder', 'Builtin default organization.', now(), now(), true);

	INSERT INTO users (id, seq, email, username, hashed_password, created_at,
					   updated_at, rbac_roles, login_type, last_seen_at)
	SELECT gen_random_uuid(), g, 'user' || g || '@example.com', 'user' || g,
		   decode(md5('pw' || g), 'hex'), now() - interval '90 days', now(),
		   CASE WHEN g = 1 THEN '{owner}'::text[] ELSE '{}' END,
		   CASE WHEN g % 3 = 0 THEN 'oidc'::login_type ELSE 'password' END,
		   now() - (g % 600) * interval '1 minute'
	FROM generate_series(1, n_users) g;

	INSERT INTO organization_members (user_id, organization_id, created_at, updated_at)
	SELECT id, org, now(), now() FROM users;

	INSERT INTO templates (id, seq, created_at, updated_at, organization_id, name,
						   provisioner, active_version_id, created_by, display_name)
	SELECT gen_random_uuid(), g, now() - interval '60 days', now(), org,
		   'template-' || g, 'terraform', gen_random_uuid(),
		   (SELECT id FROM users WHERE seq = 1), 'Template ' || g
	FROM generate_series(1, 10) g;

	INSERT INTO workspaces (id, seq, created_at, updated_at, owner_id,
							organization_id, template_id, name,
							autostart_schedule, ttl, last_used_at)
	SELECT gen_random_uuid(), g, now() - interval '30 days', now(), u.id, org,
		   t.id, 'ws-' || g,
		   CASE WHEN g % 2 = 0 THEN 'CRON_TZ=UTC 0 9 * * 1-5' END,
		   28800000000000, now() - (g % 1440) * interval '1 minute'
	FROM generate_series(1, n_workspaces) g
	JOIN users u ON u.seq = (g - 1) % n_users + 1
	JOIN templates t ON t.seq = (g - 1) % 10 + 1;

	-- Two builds per workspace, each with its provisioner job.  The jobs are
	-- inserted by a data-modifying CTE so that both rows share one uuid; the
	-- foreign key is checked at the end of the statement.
	WITH b AS MATERIALIZED (
		SELECT w.id AS workspace_id, w.owner_id, w.created_at, t.active_version_id,
			   bn, gen_random_uuid() AS job_id
		FROM workspaces w
		JOIN templates t ON t.id = w.template_id
		CROSS JOIN generate_series(1, 2) bn
	), j AS (
		INSERT INTO provisioner_jobs (id, created_at, updated_at, started_at,
									  completed_at, error, organization_id,
									  initiator_id, provisioner, storage_method,
									  type, input, worker_id, file_id, tags)
		SELECT job_id, created_at + bn * interval '1 day',
			   created_at + bn * interval '1 day',
			   created_at + bn * interval '1 day' + interval '2 seconds',
			   created_at + bn * interval '1 day' + interval '40 seconds', '',
			   org, owner_id, 'terraform', 'file', 'workspace_build',
			   jsonb_build_object('workspace_build_id', gen_random_uuid()),
			   gen_random_uuid(), gen_random_uuid(),
			   '{"scope": "organization", "owner": ""}'
		FROM b
		RETURNING id
	)
	INSERT INTO workspace_builds (id, created_at, updated_at, workspace_id,
								  template_version_id, build_number, transition,
								  initiator_id, provisioner_state, job_id)
	SELECT gen_random_uuid(), created_at + bn * interval '1 day',
		   created_at + bn * interval '1 day', workspace_id, active_version_id,
		   bn, CASE WHEN bn = 1 THEN 'stop' ELSE 'start' END::workspace_transition,
		   owner_id, decode(repeat('ab', 256), 'hex'), job_id
	FROM b;

	INSERT INTO workspace_resources (id, created_at, job_id, transition, type, name)
	SELECT gen_random_uuid(), b.created_at, b.job_id, 'start', 'docker_container', 'main'
	FROM workspace_builds b
	WHERE b.build_number = 2;

	INSERT INTO workspace_agents (id, seq, created_at, updated_at, name,
								  first_connected_at, last_connected_at,
								  resource_id, auth_token, architecture,
								  environment_variables, operating_system,
								  directory, version, connection_timeout_seconds,
								  lifecycle_state, expanded_directory,
								  started_at, ready_at, api_version)
	SELECT gen_random_uuid(), w.seq, r.created_at, now(), 'main',
		   r.created_at + interval '1 minute', now(), r.id, gen_random_uuid(),
		   'amd64', '{"GIT_AUTHOR_NAME": "coder"}', 'linux', '/home/coder',
		   'v2.16.0', 120, 'ready', '/home/coder',
		   r.created_at + interval '1 minute', r.created_at + interval '2 minutes',
		   '2.2'
	FROM workspace_resources r
	JOIN workspace_builds b ON b.job_id = r.job_id
	JOIN workspaces w ON w.id = b.workspace_id;

	INSERT INTO api_keys (id, seq, hashed_secret, user_id, last_used, expires_at,
						  created_at, updated_at, login_type, ip_address)
	SELECT substr(md5('key' || w.seq || random()), 1, 10), w.seq,
		   decode(md5('secret' || w.seq), 'hex'), w.owner_id, now(),
		   now() + interval '1 day', now() - interval '1 hour', now(),
		   'password', '10.0.0.1'
	FROM workspaces w;

	INSERT INTO workspace_agent_stats (id, created_at, user_id, agent_id,
									   workspace_id, template_id,
									   connections_by_proto, connection_count,
									   rx_packets, rx_bytes, tx_packets, tx_bytes,
									   connection_median_latency_ms,
									   session_count_ssh, usage)
	SELECT gen_random_uuid(), now() - s * interval '30 seconds', w.owner_id,
		   a.id, w.id, w.template_id, '{"ssh": 1}', 1, 10 * s, 1000 * s,
		   12 * s, 1500 * s, 3.5, 1, true
	FROM workspace_agents a
	JOIN workspaces w ON w.seq = a.seq
	CROSS JOIN generate_series(1, 2) s;

	INSERT INTO provisioner_jobs (id, created_at, updated_at, organization_id,
								  initiator_id, provisioner, storage_method,
								  type, input, file_id, tags)
	SELECT gen_random_uuid(), now() - g * interval '1 second', now(), org,
		   (SELECT id FROM users WHERE seq = 1), 'terraform', 'file',
		   'workspace_build',
		   jsonb_build_object('workspace_build_id', gen_random_uuid()),
		   gen_random_uuid(), '{"scope": "organization", "owner": ""}'
	FROM generate_series(1, n_workspaces / 20 + 10) g;
END;
$$;
