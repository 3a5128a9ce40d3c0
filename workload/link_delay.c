/*
 * link_delay: a two-port Ethernet bridge in user space that holds every
 * frame for a given time before passing it on -- a delay line for tests,
 * where tc netem is not available (its kernel module is missing).
 *
 *   link_delay IFACE1 IFACE2 DELAY_FILE
 *
 * Frames received on one interface are sent out of the other after the
 * one-way delay in DELAY_FILE (microseconds, a decimal number; re-read on
 * SIGHUP), so a round trip through it grows by twice that.  Packet sockets
 * with virtio-net headers carry offloaded (GSO, partial checksum) frames
 * as they are.  It exits when its standard input reaches end of file (the
 * test that started it is gone) or on SIGTERM.  Needs CAP_NET_RAW in the
 * network namespace of the interfaces.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_LEN 8192
#define FRAME_MAX (sizeof(struct virtio_net_hdr) + 65536 + 64)

typedef struct Frame
{
	int64_t		due_us;
	size_t		len;
	unsigned char *data;
} Frame;

typedef struct Queue
{
	Frame		f[QUEUE_LEN];
	int			head;
	int			count;
	long		dropped;
} Queue;

static volatile sig_atomic_t reload = 1;
static volatile sig_atomic_t stop = 0;

static void
on_hup(int sig)
{
	(void) sig;
	reload = 1;
}

static void
on_term(int sig)
{
	(void) sig;
	stop = 1;
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
open_port(const char *ifname)
{
	int			fd;
	int			on = 1;
	struct sockaddr_ll sll;
	unsigned	idx = if_nametoindex(ifname);

	if (idx == 0)
	{
		fprintf(stderr, "link_delay: no interface %s\n", ifname);
		exit(1);
	}
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
	{
		perror("link_delay: socket(AF_PACKET)");
		exit(1);
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof(on)) < 0)
	{
		perror("link_delay: PACKET_VNET_HDR");
		exit(1);
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int) idx;
	if (bind(fd, (struct sockaddr *) &sll, sizeof(sll)) < 0)
	{
		perror("link_delay: bind");
		exit(1);
	}
	return fd;
}

static int64_t
read_delay(const char *path)
{
	FILE	   *f = fopen(path, "r");
	long long	v = 0;

	if (f == NULL || fscanf(f, "%lld", &v) != 1 || v < 0)
		v = 0;
	if (f)
		fclose(f);
	return (int64_t) v;
}

/* Read every waiting frame of fd into q, due after delay. */
static void
receive(int fd, Queue *q, int64_t delay_us)
{
	static unsigned char buf[FRAME_MAX];

	for (;;)
	{
		struct sockaddr_ll from;
		socklen_t	fromlen = sizeof(from);
		ssize_t		n = recvfrom(fd, buf, sizeof(buf), 0,
								 (struct sockaddr *) &from, &fromlen);
		Frame	   *f;

		if (n < 0)
			return;				/* EAGAIN: all read */
		/* what we sent out of this port ourselves shows up as outgoing */
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (q->count == QUEUE_LEN)
		{
			q->dropped++;
			continue;
		}
		f = &q->f[(q->head + q->count) % QUEUE_LEN];
		f->data = malloc((size_t) n);
		if (f->data == NULL)
		{
			q->dropped++;
			continue;
		}
		memcpy(f->data, buf, (size_t) n);
		f->len = (size_t) n;
		f->due_us = now_us() + delay_us;
		q->count++;
	}
}

/* Send the frames of q that are due out of fd; the next due time, or -1. */
static int64_t
transmit(int fd, Queue *q)
{
	int64_t		now = now_us();

	while (q->count > 0)
	{
		Frame	   *f = &q->f[q->head];

		if (f->due_us > now)
			return f->due_us;
		if (send(fd, f->data, f->len, 0) < 0 && errno == EAGAIN)
			return now + 100;	/* try again shortly */
		free(f->data);
		q->head = (q->head + 1) % QUEUE_LEN;
		q->count--;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	int			port[2];
	static Queue queue[2];		/* queue[i]: frames received on port i */
	int64_t		delay_us = 0;

	if (argc != 4)
	{
		fprintf(stderr, "usage: link_delay IFACE1 IFACE2 DELAY_FILE\n");
		return 2;
	}
	signal(SIGHUP, on_hup);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	port[0] = open_port(argv[1]);
	port[1] = open_port(argv[2]);

	while (!stop)
	{
		struct pollfd pfd[3];
		int64_t		next = -1;
		int			timeout;

		if (reload)
		{
			reload = 0;
			delay_us = read_delay(argv[3]);
			fprintf(stderr, "link_delay: %s <-> %s, one-way delay %lld us\n",
					argv[1], argv[2], (long long) delay_us);
		}
		for (int i = 0; i < 2; i++)
		{
			int64_t		due = transmit(port[1 - i], &queue[i]);

			if (due >= 0 && (next < 0 || due < next))
				next = due;
		}
		timeout = next < 0 ? 1000 : (int) ((next - now_us() + 999) / 1000);
		if (timeout < 0)
			timeout = 0;
		pfd[0].fd = port[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = port[1];
		pfd[1].events = POLLIN;
		pfd[2].fd = 0;
		pfd[2].events = POLLIN;
		if (poll(pfd, 3, timeout) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("link_delay: poll");
			return 1;
		}
		if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR))
		{
			char		c;

			if (read(0, &c, 1) <= 0)
				break;			/* whoever started us is gone */
		}
		for (int i = 0; i < 2; i++)
			if (pfd[i].revents & POLLIN)
				receive(port[i], &queue[i], delay_us);
	}
	fprintf(stderr, "link_delay: stopped (dropped %ld + %ld frames)\n",
			queue[0].dropped, queue[1].dropped);
	return 0;
}
