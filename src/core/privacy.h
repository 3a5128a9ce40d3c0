/*-------------------------------------------------------------------------
 *
 * privacy.h
 *	  Who may see another role's details: the rule of pg_stat_statements,
 *	  applied in the C functions themselves so that no SQL wrapper (and no
 *	  direct call of an *_internal function) can bypass it.
 *
 * A role sees every statement's numbers, but a statement's identity (query
 * id, sqlc name, text), a client's address and a listener's channels only
 * when the statement, session or listener is its own, or when it has the
 * privileges of pg_read_all_stats (superusers have them all; pg_monitor is
 * a member).  pg_stat_statements compares the statement's user with
 * GetUserId() and asks has_privs_of_role(GetUserId(), pg_read_all_stats);
 * so does this.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_PRIVACY_H
#define CODER_HEALTH_PRIVACY_H

#include "postgres.h"

#include "miscadmin.h"
#include "utils/acl.h"

#include "pg/compat.h"

/* Whether the current role sees every role's details (ask once per call). */
static inline bool
ch_sees_all_roles(void)
{
	return has_privs_of_role(GetUserId(), COMPAT_ROLE_READ_ALL_STATS);
}

/* Whether details of something owned by role owner may be shown. */
static inline bool
ch_may_see_role(bool sees_all, Oid owner)
{
	return sees_all || owner == GetUserId();
}

/*
 * A session's details (a listener's channels, a client's address) follow
 * pg_stat_activity's rule instead: its own role or one it has the
 * privileges of.  Fills pids with the sessions the current role may see in
 * detail and returns how many; returns -1 (all) when it sees every role's.
 * Call it before taking any lock: role membership may read the catalog.
 */
static inline int
ch_visible_session_pids(bool sees_all, int **pids)
{
	int			count;
	int			n = 0;

	*pids = NULL;
	if (sees_all)
		return -1;
	count = pgstat_fetch_stat_numbackends();
	*pids = palloc(sizeof(int) * Max(count, 1));
	for (int i = 1; i <= count; i++)
	{
		LocalPgBackendStatus *local = compat_local_beentry(i);

		if (local != NULL &&
			has_privs_of_role(GetUserId(), local->backendStatus.st_userid))
			(*pids)[n++] = local->backendStatus.st_procpid;
	}
	return n;
}

/* Whether pid is among those ch_visible_session_pids() returned. */
static inline bool
ch_session_visible(const int *pids, int n, int pid)
{
	if (n < 0)
		return true;
	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

#endif							/* CODER_HEALTH_PRIVACY_H */
