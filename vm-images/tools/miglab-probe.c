/*
 * miglab-probe: the host side of miglab's conversation with the guest agent (../agent).
 *
 * miglab's Node process lives in the root network namespace, but guests are reachable only from
 * inside the lab's namespaces, and a process cannot enter a namespace per socket. So miglab runs
 * this small program under `ip netns exec <client ns>` (the lab's `client` host) for every
 * datagram it needs there:
 *
 *   miglab-probe cmd IP PORT TIMEOUT_MS TEXT...
 *       Send TEXT (the words joined by spaces) in one datagram, print the first reply from IP:PORT
 *       on stdout, exit 0. No reply within TIMEOUT_MS: a message on stderr, exit 2. There are no
 *       retries: bench requests are slow and not idempotent, so retrying is the caller's choice.
 *
 *   miglab-probe serve IP PORT
 *       cmd for each line `TIMEOUT_MS TEXT` of stdin, answered by one line on stdout: `reply
 *       TEXT`, `timeout MESSAGE` or `error MESSAGE`; ends at EOF. One process for a run's requests.
 *
 *   miglab-probe ping IP PORT INTERVAL_US DURATION_MS
 *       The client-side downtime probe. Sends `ping <seq>` every INTERVAL_US (default 1000; "-"
 *       or 0 for the default) on an absolute CLOCK_MONOTONIC schedule, receives the agent's
 *       `pong <seq> <mono_ns> <hb_seq>` replies in a second thread, and ends after DURATION_MS or
 *       on SIGINT/SIGTERM. It then waits up to DRAIN_MS for replies still in flight and writes:
 *         # miglab-probe ping target=IP:PORT interval_us=N realtime_minus_monotonic_ns=N ...
 *         seq,sent_ns,recv_ns,guest_mono_ns
 *         0,1718000000000000000,1718000000000312000,5123456789
 *         1,1718000000001000000,,                       <- lost: no reply
 *       sent_ns/recv_ns are CLOCK_REALTIME ns (epoch), taken as CLOCK_MONOTONIC plus one offset
 *       measured at start, so intervals are immune to clock steps and still line up with other
 *       timelines. guest_mono_ns is the guest's CLOCK_MONOTONIC when it answered (its own view of
 *       a stall). A duplicate reply is ignored (the first one counts).
 *
 *   miglab-probe connect IP PORT TIMEOUT_MS
 *       One TCP connect from this host (namespace) to IP:PORT, and one line on stdout:
 *         RESULT MS
 *       RESULT is open (handshake done; closed again at once), refused (RST: nothing listens),
 *       timeout (no answer within TIMEOUT_MS, or the kernel's ETIMEDOUT) or unreachable (no route,
 *       ARP or ICMP said unreachable: ENETUNREACH, EHOSTUNREACH, EHOSTDOWN); MS is the time the
 *       attempt took. The same words as the guest agent's `connect` request. Any other error:
 *       a message on stderr, exit 1.
 *
 * The UDP socket of cmd and ping is bound to the source address the route to IP gives, not left
 * to the kernel's autobind (which takes the wildcard 0.0.0.0): nothing of miglab's listens on a
 * wildcard address, even for the few ms a request takes.
 *
 * Exit status: 0 done, 1 bad usage or a socket error, 2 timeout (cmd).
 *
 * Build: gcc -O2 -Wall -Wextra -Werror -pthread -o miglab-probe miglab-probe.c
 * (src/guest/probe-tool.ts builds it on demand into the image cache, keyed by this file's hash.)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_INTERVAL_US 1000u
#define MAX_PROBES 20000000u /* 5.5 h at 1 kHz; 480 MB of tables: more is a mistake */
#define DRAIN_MS 100u /* after the last ping, how long replies in flight may still arrive */
#define RCVBUF_BYTES (4 << 20) /* a resumed guest answers its queued pings in one burst */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (s == NULL || *s == '\0')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: miglab-probe cmd IP PORT TIMEOUT_MS TEXT...\n"
			"       miglab-probe serve IP PORT   (lines TIMEOUT_MS TEXT on stdin)\n"
			"       miglab-probe ping IP PORT INTERVAL_US DURATION_MS\n"
			"       miglab-probe connect IP PORT TIMEOUT_MS\n");
	return 1;
}

/*
 * Bind `fd` to the source address the kernel's route to `peer` gives (port 0: any free one).
 * A connect()ed UDP socket would get that address too, but it would also report an ICMP "port
 * unreachable" (the agent not up yet) as an error on the next send, which drops that probe; so a
 * throwaway socket is connected to learn the address, and this one stays unconnected.
 */
static int bind_route_source(int fd, const struct sockaddr_in *peer)
{
	int t = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (t < 0)
		return -1;
	struct sockaddr_in src;
	socklen_t slen = sizeof src;
	int rc = connect(t, (const struct sockaddr *)peer, sizeof *peer) == 0 && getsockname(t, (struct sockaddr *)&src, &slen) == 0 ? 0 : -1;
	int saved = errno;
	close(t);
	if (rc != 0) {
		errno = saved;
		return -1;
	}
	src.sin_port = 0;
	return bind(fd, (const struct sockaddr *)&src, sizeof src);
}

static int open_socket(const char *ip, const char *port_s, struct sockaddr_in *peer)
{
	uint64_t port;
	memset(peer, 0, sizeof *peer);
	peer->sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &peer->sin_addr) != 1 || parse_u64(port_s, 65535, &port) != 0 || port == 0) {
		fprintf(stderr, "miglab-probe: bad address %s:%s\n", ip, port_s);
		return -1;
	}
	peer->sin_port = htons((uint16_t)port);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "miglab-probe: socket: %s\n", strerror(errno));
		return -1;
	}
	int rcvbuf = RCVBUF_BYTES;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); /* best effort */
	if (bind_route_source(fd, peer) != 0) {
		fprintf(stderr, "miglab-probe: no source address for %s:%s: %s\n", ip, port_s, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A datagram from `peer` only (not connect()ed, so an ICMP "port unreachable" while the agent is
 * not yet up does not surface as a recv error): >= 0 bytes, or -1 with errno. */
static ssize_t recv_from_peer(int fd, char *buf, size_t cap, int flags, const struct sockaddr_in *peer)
{
	for (;;) {
		struct sockaddr_in from;
		socklen_t flen = sizeof from;
		ssize_t n = recvfrom(fd, buf, cap - 1, flags, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return -1;
		if (flen == sizeof from && from.sin_addr.s_addr == peer->sin_addr.s_addr && from.sin_port == peer->sin_port) {
			buf[n] = '\0';
			return n;
		}
	}
}

/* ---- cmd and serve ------------------------------------------------------------------------ */

/*
 * One request: TEXT in one datagram to IP:PORT from a socket of its own (so a late reply to an
 * earlier request can never be taken for this one's), the first reply into `out`. Returns 0 with
 * the reply, 2 when none came within `timeout_ms`, 1 on an error (its message in `out`).
 */
static int request(const char *ip, const char *port_s, uint64_t timeout_ms, const char *text, size_t len, char *out, size_t cap)
{
	struct sockaddr_in peer;
	int fd = open_socket(ip, port_s, &peer);
	if (fd < 0) {
		snprintf(out, cap, "no socket for %s:%s", ip, port_s);
		return 1;
	}
	if (sendto(fd, text, len, 0, (struct sockaddr *)&peer, sizeof peer) < 0) {
		snprintf(out, cap, "send to %s:%s: %s", ip, port_s, strerror(errno));
		close(fd);
		return 1;
	}
	const uint64_t deadline = mono_ns() + timeout_ms * 1000000ull;
	for (;;) {
		uint64_t now = mono_ns();
		if (now >= deadline)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left_ms = (int)((deadline - now + 999999ull) / 1000000ull);
		int r = poll(&p, 1, left_ms);
		if (r < 0 && errno != EINTR) {
			snprintf(out, cap, "poll: %s", strerror(errno));
			close(fd);
			return 1;
		}
		if (r <= 0)
			continue;
		ssize_t n = recv_from_peer(fd, out, cap, MSG_DONTWAIT, &peer);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNREFUSED)
				continue;
			snprintf(out, cap, "recv: %s", strerror(errno));
			close(fd);
			return 1;
		}
		while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
			out[--n] = '\0';
		close(fd);
		return 0;
	}
	close(fd);
	snprintf(out, cap, "no reply from %s:%s to \"%s\" within %" PRIu64 " ms", ip, port_s, text, timeout_ms);
	return 2;
}

static int run_cmd(int argc, char **argv)
{
	if (argc < 6)
		return usage();
	uint64_t timeout_ms;
	if (parse_u64(argv[4], 86400000ull, &timeout_ms) != 0) {
		fprintf(stderr, "miglab-probe: bad TIMEOUT_MS %s\n", argv[4]);
		return 1;
	}
	char text[1024];
	size_t len = 0;
	for (int i = 5; i < argc; i++) {
		int n = snprintf(text + len, sizeof text - len, "%s%s", i > 5 ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof text - len) {
			fprintf(stderr, "miglab-probe: request longer than %zu bytes\n", sizeof text - 1);
			return 1;
		}
		len += (size_t)n;
	}
	char buf[2048];
	int rc = request(argv[2], argv[3], timeout_ms, text, len, buf, sizeof buf);
	if (rc != 0) {
		fprintf(stderr, "miglab-probe: %s\n", buf);
		return rc;
	}
	printf("%s\n", buf);
	return fflush(stdout) == 0 ? 0 : 1;
}

/*
 * serve IP PORT: cmd for one line of stdin at a time, `TIMEOUT_MS TEXT`, answered by one line on
 * stdout: `reply TEXT`, `timeout MESSAGE` or `error MESSAGE`. miglab keeps one running for a run's
 * agent requests, so each costs a line over an open channel instead of a program started (over
 * SSH, a round trip). Ends at EOF.
 */
static int run_serve(int argc, char **argv)
{
	if (argc != 4)
		return usage();
	char line[1100];
	while (fgets(line, sizeof line, stdin) != NULL) {
		size_t len = strlen(line);
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char buf[2048];
		char *space = strchr(line, ' ');
		uint64_t timeout_ms;
		int rc;
		if (space == NULL || space[1] == '\0') {
			snprintf(buf, sizeof buf, "a line is TIMEOUT_MS TEXT, not \"%.64s\"", line);
			rc = 1;
		} else {
			*space = '\0';
			if (parse_u64(line, 86400000ull, &timeout_ms) != 0) {
				snprintf(buf, sizeof buf, "bad TIMEOUT_MS %.32s", line);
				rc = 1;
			} else {
				const char *text = space + 1;
				rc = request(argv[2], argv[3], timeout_ms, text, strlen(text), buf, sizeof buf);
			}
		}
		/* A reply is one line: the agent never sends a newline inside one (stripped above at its end). */
		for (char *c = buf; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
		printf("%s %s\n", rc == 0 ? "reply" : rc == 2 ? "timeout" : "error", buf);
		if (fflush(stdout) != 0)
			return 1;
	}
	return 0;
}

/* ---- ping --------------------------------------------------------------------------------- */

static struct {
	int fd;
	struct sockaddr_in peer;
	uint64_t *sent_mono, *recv_mono, *guest_mono; /* per seq; recv_mono 0: no reply yet */
	uint64_t max_probes;
	_Atomic uint64_t sent; /* probes sent so far (seq 0 .. sent-1) */
	_Atomic uint64_t received;
	atomic_int receiver_stop;
	uint64_t duplicates, strays;
} P;

static void *receiver(void *arg)
{
	(void)arg;
	char buf[256];
	while (!atomic_load(&P.receiver_stop)) {
		struct pollfd p = { .fd = P.fd, .events = POLLIN };
		int r = poll(&p, 1, 20); /* wakes to see receiver_stop */
		if (r <= 0)
			continue;
		for (;;) {
			ssize_t n = recv_from_peer(P.fd, buf, sizeof buf, MSG_DONTWAIT, &P.peer);
			if (n < 0)
				break; /* EAGAIN: drained; ECONNREFUSED and the like: keep probing */
			const uint64_t now = mono_ns();
			char *end;
			if (strncmp(buf, "pong ", 5) != 0) {
				P.strays++;
				continue;
			}
			errno = 0;
			unsigned long long seq = strtoull(buf + 5, &end, 10);
			unsigned long long gmono = *end == ' ' ? strtoull(end + 1, NULL, 10) : 0;
			if (errno != 0 || end == buf + 5 || seq >= atomic_load(&P.sent)) {
				P.strays++;
				continue;
			}
			if (P.recv_mono[seq] != 0) {
				P.duplicates++;
				continue;
			}
			P.recv_mono[seq] = now;
			P.guest_mono[seq] = gmono;
			atomic_fetch_add(&P.received, 1);
		}
	}
	return NULL;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull) };
	/* EINTR from SIGINT/SIGTERM: return, the caller looks at stop_requested. */
	(void)clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static int run_ping(int argc, char **argv)
{
	if (argc != 6)
		return usage();
	uint64_t interval_us = DEFAULT_INTERVAL_US, duration_ms;
	if (strcmp(argv[4], "-") != 0 && (parse_u64(argv[4], 60000000ull, &interval_us) != 0)) {
		fprintf(stderr, "miglab-probe: bad INTERVAL_US %s\n", argv[4]);
		return 1;
	}
	if (interval_us == 0)
		interval_us = DEFAULT_INTERVAL_US;
	if (parse_u64(argv[5], 86400000ull, &duration_ms) != 0 || duration_ms == 0) {
		fprintf(stderr, "miglab-probe: bad DURATION_MS %s\n", argv[5]);
		return 1;
	}
	uint64_t max_probes = duration_ms * 1000ull / interval_us + 1;
	if (max_probes > MAX_PROBES) {
		fprintf(stderr, "miglab-probe: %" PRIu64 " probes is more than %u: lengthen the interval or shorten the run\n", max_probes,
			MAX_PROBES);
		return 1;
	}
	P.fd = open_socket(argv[2], argv[3], &P.peer);
	if (P.fd < 0)
		return 1;
	P.max_probes = max_probes;
	P.sent_mono = calloc(max_probes, sizeof(uint64_t));
	P.recv_mono = calloc(max_probes, sizeof(uint64_t));
	P.guest_mono = calloc(max_probes, sizeof(uint64_t));
	if (!P.sent_mono || !P.recv_mono || !P.guest_mono) {
		fprintf(stderr, "miglab-probe: out of memory for %" PRIu64 " probes\n", max_probes);
		return 1;
	}

	/* Signals go to this (the sending) thread only: the receiver is started with them blocked. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: clock_nanosleep returns at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	pthread_t rx;
	int rc = pthread_create(&rx, NULL, receiver, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		fprintf(stderr, "miglab-probe: pthread_create: %s\n", strerror(rc));
		return 1;
	}

	/* One offset for the whole run: realtime = monotonic + offset (taken between two monotonic
	 * reads, so it is good to a microsecond or so). */
	const uint64_t m0 = mono_ns(), r0 = clock_ns(CLOCK_REALTIME), m1 = mono_ns();
	const int64_t offset = (int64_t)r0 - (int64_t)(m0 / 2 + m1 / 2);

	const uint64_t interval_ns = interval_us * 1000ull, start = mono_ns(), end = start + duration_ms * 1000000ull;
	uint64_t slot = 0, skipped_slots = 0, send_errors = 0;
	while (!stop_requested) {
		uint64_t due = start + slot * interval_ns;
		if (due >= end)
			break;
		sleep_until(due);
		if (stop_requested)
			break;
		uint64_t seq = atomic_load(&P.sent);
		if (seq >= P.max_probes)
			break;
		char msg[40];
		int len = snprintf(msg, sizeof msg, "ping %" PRIu64, seq);
		P.sent_mono[seq] = mono_ns();
		atomic_store(&P.sent, seq + 1); /* before sending: the reply may beat sendto's return */
		if (sendto(P.fd, msg, (size_t)len, 0, (struct sockaddr *)&P.peer, sizeof P.peer) < 0)
			send_errors++; /* e.g. ENOBUFS: the probe counts as lost, which it is */
		/* Keep the absolute schedule; if this process was descheduled past whole slots, skip
		 * them instead of bursting (each probe records its own send time). */
		uint64_t now = mono_ns(), next = slot + 1;
		if (now > start + next * interval_ns + interval_ns) {
			uint64_t to = (now - start) / interval_ns + 1;
			skipped_slots += to - next;
			next = to;
		}
		slot = next;
	}
	const uint64_t stopped = mono_ns(), sent = atomic_load(&P.sent);
	/* Let replies in flight arrive, but stop as soon as every probe is answered. */
	while (mono_ns() - stopped < DRAIN_MS * 1000000ull && atomic_load(&P.received) < sent) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&P.receiver_stop, 1);
	pthread_join(rx, NULL);

	printf("# miglab-probe ping target=%s:%s interval_us=%" PRIu64 " duration_ms=%" PRIu64 " realtime_minus_monotonic_ns=%" PRId64
	       " sent=%" PRIu64 " received=%" PRIu64 " duplicates=%" PRIu64 " strays=%" PRIu64 " skipped_slots=%" PRIu64
	       " send_errors=%" PRIu64 " stopped_by=%s\n",
	       argv[2], argv[3], interval_us, duration_ms, offset, sent, atomic_load(&P.received), P.duplicates, P.strays, skipped_slots,
	       send_errors, stop_requested ? "signal" : "duration");
	printf("seq,sent_ns,recv_ns,guest_mono_ns\n");
	for (uint64_t i = 0; i < sent; i++) {
		uint64_t s = (uint64_t)((int64_t)P.sent_mono[i] + offset);
		if (P.recv_mono[i])
			printf("%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", i, s, (uint64_t)((int64_t)P.recv_mono[i] + offset), P.guest_mono[i]);
		else
			printf("%" PRIu64 ",%" PRIu64 ",,\n", i, s);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- connect ------------------------------------------------------------------------------ */

static const char *connect_word(int err)
{
	switch (err) {
	case 0:
		return "open";
	case ECONNREFUSED:
		return "refused";
	case ETIMEDOUT:
		return "timeout";
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EHOSTDOWN:
		return "unreachable";
	default:
		return NULL;
	}
}

static int run_connect(int argc, char **argv)
{
	if (argc != 5)
		return usage();
	struct sockaddr_in to;
	uint64_t port, timeout_ms;
	memset(&to, 0, sizeof to);
	to.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[2], &to.sin_addr) != 1 || parse_u64(argv[3], 65535, &port) != 0 || port == 0) {
		fprintf(stderr, "miglab-probe: bad address %s:%s\n", argv[2], argv[3]);
		return 1;
	}
	if (parse_u64(argv[4], 600000ull, &timeout_ms) != 0 || timeout_ms == 0) {
		fprintf(stderr, "miglab-probe: bad TIMEOUT_MS %s (1..600000)\n", argv[4]);
		return 1;
	}
	to.sin_port = htons((uint16_t)port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "miglab-probe: socket: %s\n", strerror(errno));
		return 1;
	}
	const uint64_t t0 = mono_ns(), deadline = t0 + timeout_ms * 1000000ull;
	int err = connect(fd, (struct sockaddr *)&to, sizeof to) == 0 ? 0 : errno;
	while (err == EINPROGRESS) {
		uint64_t now = mono_ns();
		if (now >= deadline) {
			err = ETIMEDOUT;
			break;
		}
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int r = poll(&p, 1, (int)((deadline - now + 999999ull) / 1000000ull));
		if (r < 0 && errno != EINTR) {
			err = errno;
			break;
		}
		if (r <= 0)
			continue; /* EINTR or poll's own timeout: the deadline check decides */
		socklen_t len = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
	}
	const double ms = (double)(mono_ns() - t0) / 1e6;
	close(fd);
	const char *word = connect_word(err);
	if (!word) {
		fprintf(stderr, "miglab-probe: connect to %s:%s: %s\n", argv[2], argv[3], strerror(err));
		return 1;
	}
	printf("%s %.1f\n", word, ms);
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && strcmp(argv[1], "cmd") == 0)
		return run_cmd(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return run_serve(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "ping") == 0)
		return run_ping(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "connect") == 0)
		return run_connect(argc, argv);
	return usage();
}
