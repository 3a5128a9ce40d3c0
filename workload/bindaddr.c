/*-------------------------------------------------------------------------
 *
 * bindaddr.c
 *		LD_PRELOAD shim: give outgoing loopback TCP connections a chosen
 *		source address.
 *
 * coder_health tells Coder Servers apart by their client address.  To run
 * several simulated Coder Servers on one machine and still have PostgreSQL
 * see them as different clients, each coderd_sim runs with
 *
 *		LD_PRELOAD=.../bindaddr.so CODER_SIM_SOURCE_ADDR=127.0.0.12
 *
 * and this library binds every not-yet-bound AF_INET stream socket to that
 * address (port 0, so the kernel still picks the port) just before connect().
 * All of 127.0.0.0/8 is on the loopback interface on Linux, so no setup is
 * needed.  Only connections to a loopback destination are touched: a loopback
 * source cannot reach anything else, and we never want to break a connect.
 * Any failure here falls through to the real connect() unchanged.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*connect_fn) (int, const struct sockaddr *, socklen_t);

static connect_fn real_connect = NULL;

static int
is_loopback(struct in_addr a)
{
	return (ntohl(a.s_addr) >> 24) == 127;
}

/*
 * Bind fd to the source address from the environment if fd is an unbound
 * AF_INET stream socket heading for a loopback address.  Never fails: the
 * caller's connect() goes ahead whatever happens here.
 */
static void
maybe_bind(int fd, const struct sockaddr_in *dst)
{
	const char *src = getenv("CODER_SIM_SOURCE_ADDR");
	struct sockaddr_in local;
	socklen_t	llen = sizeof(local);
	int			type = 0;
	socklen_t	tlen = sizeof(type);

	if (src == NULL || src[0] == '\0' || !is_loopback(dst->sin_addr))
		return;

	memset(&local, 0, sizeof(local));
	local.sin_family = AF_INET;
	if (inet_pton(AF_INET, src, &local.sin_addr) != 1 ||
		!is_loopback(local.sin_addr))
		return;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
		type != SOCK_STREAM)
		return;

	/* Leave sockets the application bound itself alone. */
	{
		struct sockaddr_in cur;

		memset(&cur, 0, sizeof(cur));
		if (getsockname(fd, (struct sockaddr *) &cur, &llen) != 0 ||
			cur.sin_family != AF_INET ||
			cur.sin_port != 0 || cur.sin_addr.s_addr != htonl(INADDR_ANY))
			return;
	}

	local.sin_port = 0;
	(void) bind(fd, (struct sockaddr *) &local, sizeof(local));
}

int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (real_connect == NULL)
	{
		/* POSIX blesses this cast for dlsym() results. */
		*(void **) (&real_connect) = dlsym(RTLD_NEXT, "connect");
		if (real_connect == NULL)
		{
			errno = ENOSYS;
			return -1;
		}
	}

	if (addr != NULL && len >= (socklen_t) sizeof(struct sockaddr_in) &&
		addr->sa_family == AF_INET)
	{
		int			saved_errno = errno;
		struct sockaddr_in dst;

		/* Copy: addr need not be aligned for sockaddr_in. */
		memcpy(&dst, addr, sizeof(dst));
		maybe_bind(fd, &dst);
		errno = saved_errno;
	}

	return real_connect(fd, addr, len);
}
