/*-------------------------------------------------------------------------
 *
 * tcp_diag.c
 *	  The kernel's TCP round trip of other processes' connections, asked by
 *	  the collector through the sock_diag netlink interface (what `ss -ti`
 *	  uses): WAL senders and the WAL receiver are never touched.
 *
 * For each process asked about, the socket inodes it holds are read from
 * the links in /proc/PID/fd ("socket:[INODE]"); then one dump per address
 * family lists the established TCP sockets of this network namespace with
 * their struct tcp_info (INET_DIAG_INFO).  A socket is the process's
 * connection when its inode is one of the process's AND, where the caller
 * knows it, its remote address and port are the expected ones (a WAL
 * sender: the standby's address from the backend status; the WAL receiver:
 * the primary's port).  When /proc/PID/fd cannot be read, address and port
 * alone decide.  Several matches, or none: no value (NULL), never a guess.
 *
 * Limits: Linux only (elsewhere nothing is found); sockets of another
 * network namespace than the collector's are not seen; the dump costs
 * about a microsecond per established TCP socket of the host namespace.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#ifdef __linux__
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#endif

#include "tcp_diag.h"

/* struct tcp_info offsets (a stable kernel ABI, see clients.c) */
#define TCPI_RTT_OFFSET 68
#define TCPI_MIN_RTT_OFFSET 148

#ifdef __linux__

#define TCP_ESTABLISHED_STATE 1

/* Socket inodes held by pid; -1 when /proc/pid/fd cannot be read. */
static int
socket_inodes(int pid, uint64 *inodes, int max)
{
	char		path[64];
	DIR		   *dir;
	struct dirent *de;
	int			n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (dir == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL && n < max)
	{
		char		link[64];
		char		target[64];
		ssize_t		len;
		unsigned long long ino;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (strncmp(target, "socket:[", 8) == 0)
		{
			char	   *end;

			errno = 0;
			ino = strtoull(target + 8, &end, 10);
			if (errno == 0 && end != target + 8 && *end == ']')
				inodes[n++] = (uint64) ino;
		}
	}
	closedir(dir);
	return n;
}

static bool
remote_matches(const ChTcpRttQuery *q, int family, const struct inet_diag_msg *m)
{
	if (q->remote_port != 0 && ntohs(m->id.idiag_dport) != q->remote_port)
		return false;
	if (q->remote_family == 0)
		return true;
	if (q->remote_family == AF_INET && family == AF_INET)
		return memcmp(&m->id.idiag_dst[0], q->remote_addr, 4) == 0;
	if (q->remote_family == AF_INET6 && family == AF_INET6)
		return memcmp(m->id.idiag_dst, q->remote_addr, 16) == 0;
	/* an IPv4 peer seen through an IPv6 socket (::ffff:a.b.c.d) */
	if (q->remote_family == AF_INET && family == AF_INET6)
	{
		static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		return memcmp(m->id.idiag_dst, mapped, 12) == 0 &&
			memcmp((const uint8 *) m->id.idiag_dst + 12, q->remote_addr, 4) == 0;
	}
	return false;
}

/* Fold one socket of the dump into the queries it matches. */
static void
consider(ChTcpRttQuery *qs, int nq, int family, const struct inet_diag_msg *m,
		 const uint8 *info, int info_len)
{
	for (int i = 0; i < nq; i++)
	{
		ChTcpRttQuery *q = &qs[i];
		bool		inode_ok = false;

		if (q->ninodes < 0)
			inode_ok = true;	/* /proc unreadable: address alone */
		else
			for (int k = 0; k < q->ninodes && !inode_ok; k++)
				inode_ok = q->inodes[k] == (uint64) m->idiag_inode;
		if (!inode_ok || !remote_matches(q, family, m))
			continue;
		/* without the inode, the address must be known to decide */
		if (q->ninodes < 0 && q->remote_family == 0)
			continue;
		q->matches++;
		if (info_len >= TCPI_RTT_OFFSET + 4)
			memcpy(&q->rtt_us, info + TCPI_RTT_OFFSET, 4);
		if (info_len >= TCPI_MIN_RTT_OFFSET + 4)
			memcpy(&q->min_rtt_us, info + TCPI_MIN_RTT_OFFSET, 4);
	}
}

/* One dump of the established TCP sockets of a family; false on failure. */
static bool
dump_family(int fd, int family, ChTcpRttQuery *qs, int nq)
{
	struct
	{
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	}			msg;
	struct sockaddr_nl sa;
	static char buf[32768];
	bool		done = false;

	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	msg.nlh.nlmsg_seq = (uint32) family;
	msg.req.sdiag_family = (uint8) family;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	msg.req.idiag_states = 1U << TCP_ESTABLISHED_STATE;
	msg.req.idiag_ext = 1U << (INET_DIAG_INFO - 1);
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *) &sa, sizeof(sa)) < 0)
		return false;

	while (!done)
	{
		ssize_t		len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len <= 0)
			return false;
		for (h = (struct nlmsghdr *) buf; NLMSG_OK(h, (size_t) len);
			 h = NLMSG_NEXT(h, len))
		{
			struct inet_diag_msg *m;
			struct rtattr *attr;
			int			rest;

			if (h->nlmsg_type == NLMSG_DONE)
			{
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR)
				return false;
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			m = NLMSG_DATA(h);
			rest = (int) (h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
			for (attr = (struct rtattr *) (m + 1); RTA_OK(attr, rest);
				 attr = RTA_NEXT(attr, rest))
				if (attr->rta_type == INET_DIAG_INFO)
					consider(qs, nq, family, m, RTA_DATA(attr),
							 (int) RTA_PAYLOAD(attr));
		}
	}
	return true;
}

bool
ch_tcp_rtt_lookup(ChTcpRttQuery *qs, int nq)
{
	int			fd;
	bool		ok;
	struct timeval tv = {1, 0};

	for (int i = 0; i < nq; i++)
	{
		qs[i].matches = 0;
		qs[i].rtt_us = 0;
		qs[i].min_rtt_us = 0;
		qs[i].ninodes = socket_inodes(qs[i].pid, qs[i].inodes, CH_TCP_MAX_INODES);
	}
	if (nq == 0)
		return true;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return false;
	/* the kernel answers at once; never let the collector hang on it */
	(void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ok = dump_family(fd, AF_INET, qs, nq) && dump_family(fd, AF_INET6, qs, nq);
	close(fd);
	return ok;
}

#else							/* !__linux__ */

bool
ch_tcp_rtt_lookup(ChTcpRttQuery *qs, int nq)
{
	for (int i = 0; i < nq; i++)
		qs[i].matches = 0;
	return false;
}

#endif

/* The result of a query: true with the values when exactly one matched. */
bool
ch_tcp_rtt_result(const ChTcpRttQuery *q, uint32 *min_rtt_us, uint32 *rtt_us)
{
	if (q->matches != 1 || q->rtt_us == 0)
		return false;
	*rtt_us = q->rtt_us;
	/* min_rtt: Linux 4.10+; ~0 until the first sample */
	*min_rtt_us = (q->min_rtt_us > 0 && q->min_rtt_us != ~0U) ?
		q->min_rtt_us : q->rtt_us;
	return true;
}
