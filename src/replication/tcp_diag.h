/*-------------------------------------------------------------------------
 *
 * tcp_diag.h
 *	  The kernel's TCP round trip of another process's connection, from
 *	  sock_diag netlink (see tcp_diag.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CODER_HEALTH_TCP_DIAG_H
#define CODER_HEALTH_TCP_DIAG_H

#include "postgres.h"

#define CH_TCP_MAX_INODES 32

typedef struct ChTcpRttQuery
{
	/* asked */
	int			pid;
	int			remote_family;	/* AF_INET, AF_INET6, or 0: any address */
	uint8		remote_addr[16];	/* network order */
	int			remote_port;	/* host order, 0: any */
	/* answered */
	int			ninodes;		/* -1: /proc/pid/fd unreadable */
	uint64		inodes[CH_TCP_MAX_INODES];
	int			matches;
	uint32		rtt_us;			/* smoothed (tcpi_rtt) */
	uint32		min_rtt_us;		/* windowed minimum (tcpi_min_rtt) */
} ChTcpRttQuery;

/* Answer the queries in one pass; false when the kernel could not be asked. */
extern bool ch_tcp_rtt_lookup(ChTcpRttQuery *qs, int nq);
extern bool ch_tcp_rtt_result(const ChTcpRttQuery *q, uint32 *min_rtt_us,
							  uint32 *rtt_us);

#endif							/* CODER_HEALTH_TCP_DIAG_H */
