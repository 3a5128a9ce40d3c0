/*-------------------------------------------------------------------------
 *
 * reference_data.c
 *		The ids the simulated traffic picks from (agents, API keys, users
 *		whose channels are shared by all simulated servers, the default
 *		organization), read once at start from the rows that
 *		workload/schema.sql's seed() made.
 *
 * Apart because it runs once, before any traffic, with blocking libpq.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>

#include "coderd_sim.h"

char		org_id[UUID_LEN];
Agent	   *agents;
int			n_agents;
char		(*api_keys)[API_KEY_LEN];
int			n_api_keys;
char		channel_owners[N_CHANNEL_IDS][UUID_LEN];
int			n_channel_owners;
char		channel_agents[N_CHANNEL_IDS][UUID_LEN];
int			n_channel_agents;
char		client_peers[N_CLIENT_PEERS][UUID_LEN];

PGresult *
exec_checked(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		fatal("%s\nfailed: %s(has workload/schema.sql been loaded and seeded?)",
			  sql, PQresultErrorMessage(res));
	return res;
}

/* Load the ids the simulated traffic picks from. */
void
load_reference_data(PGconn *conn)
{
	PGresult   *res;
	int			i;
	char		limit[16];
	const char *v[1] = {limit};

	snprintf(limit, sizeof(limit), "%d", MAX_REF_ROWS);

	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT a.id, w.id, w.owner_id, w.template_id "
					   "FROM workspace_agents a JOIN workspaces w ON w.seq = a.seq "
					   "WHERE NOT a.deleted ORDER BY a.seq LIMIT $1", 1, v);
	n_agents = PQntuples(res);
	agents = xmalloc(sizeof(Agent) * (n_agents > 0 ? n_agents : 1));
	for (i = 0; i < n_agents; i++)
	{
		snprintf(agents[i].id, UUID_LEN, "%s", PQgetvalue(res, i, 0));
		snprintf(agents[i].workspace_id, UUID_LEN, "%s", PQgetvalue(res, i, 1));
		snprintf(agents[i].owner_id, UUID_LEN, "%s", PQgetvalue(res, i, 2));
		snprintf(agents[i].template_id, UUID_LEN, "%s", PQgetvalue(res, i, 3));
		if (i < N_CHANNEL_IDS)
			snprintf(channel_agents[n_channel_agents++], UUID_LEN, "%s",
					 agents[i].id);
	}
	PQclear(res);

	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT id FROM api_keys ORDER BY seq LIMIT $1",
					   1, v);
	n_api_keys = PQntuples(res);
	api_keys = xmalloc(API_KEY_LEN * (n_api_keys > 0 ? n_api_keys : 1));
	for (i = 0; i < n_api_keys; i++)
		snprintf(api_keys[i], API_KEY_LEN, "%s", PQgetvalue(res, i, 0));
	PQclear(res);

	/*
	 * Every simulated server draws workspace_owner channels from the same
	 * first users, so publishes of one are heard by the listeners of others.
	 */
	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT id FROM users ORDER BY seq LIMIT 16",
					   0, NULL);
	for (i = 0; i < PQntuples(res) && i < N_CHANNEL_IDS; i++)
		snprintf(channel_owners[n_channel_owners++], UUID_LEN, "%s",
				 PQgetvalue(res, i, 0));
	PQclear(res);

	res = exec_checked(conn,
					   "/* coderd_sim setup */ SELECT id FROM organizations "
					   "ORDER BY is_default DESC, created_at LIMIT 1", 0, NULL);
	if (PQntuples(res) > 0)
		snprintf(org_id, UUID_LEN, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);

	if (n_agents == 0 || n_api_keys == 0 || org_id[0] == '\0')
		fatal("no seeded rows found; load workload/schema.sql and SELECT seed(n) first");

	for (i = 0; i < N_CLIENT_PEERS; i++)
		gen_uuid(client_peers[i]);
}
