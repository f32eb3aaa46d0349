/*
 * miglab-workload: the program that runs as a "container" in miglab's container-host guests and
 * is checkpointed and restored by CRIU from one guest to another (issue 11). Its job is to make
 * a migration's correctness checkable from outside: it emits a numbered sequence whose values
 * and running hash the host can recompute, keeps a small process tree, a pipe, an open log file
 * and a UDP socket (the resources a restore has to bring back), and answers over UDP.
 *
 * Usage: miglab-workload MODE --port P [--bind ADDR] [--log FILE] [--period-ms N] [--rss-mib N]
 *                        [--wss-mib N --rate-mibps R]
 *   counter    v_i = i, one value a second (the reference report's Go program:
 *              `log.Print(i); i++; time.Sleep(time.Second)`)
 *   natural    v_i = i, every 10 ms
 *   fibonacci  v_0 = 0, v_1 = 1, v_i = v_{i-1} + v_{i-2} mod 2^64, every 10 ms
 *   prime      v_i = the i-th prime (v_0 = 2), by trial division, every 10 ms
 *   mem        a tick every 10 ms (v_i = i, like natural) that writes --rate-mibps MiB/s into a
 *              working set of --wss-mib MiB, page by page (rate 0: the set is written once)
 * --period-ms overrides the mode's period. --rss-mib N allocates and touches N MiB once (resident
 * padding, as a Go runtime has). Bad arguments: one line on stderr, exit 2. A failure to set up
 * (bind, log, memory, fork): one line on stderr, exit 1.
 *
 * UDP protocol (one datagram per request, the reply goes to the sender, no trailing newline):
 *   ping T   -> pong T <CLOCK_MONOTONIC ns> <n>
 *               n = the count of values emitted so far. This is the guest agent's pong
 *               (`pong %s %llu %llu`), so miglab-probe's downtime probe and the host's parsePong
 *               work on a container unchanged; n takes the place of the agent's heartbeat seq.
 *   state    -> state mode=M n=N i=I v=V h=H pid=P ppid=PP child=C child_alive=0|1 log_bytes=B
 *               rss_kib=R gen=G written=W
 *               i = n-1 (the last index, -1 before the first value), v = v_i (0 before the
 *               first), h = the chain hash after value i (16 lowercase hex digits), pid/ppid/child
 *               as this process sees them (inside its PID namespace), child_alive = a beat came
 *               from the child in the last 2 s, log_bytes = the log fd's offset (-1 without
 *               --log), rss_kib = VmRSS, gen/written = the mem working set's pass and the pages
 *               written since start (0 in other modes).
 *   verify   -> (mem) verify ok pages=N | verify bad page=K bad=M pages=N
 *   other    -> error unknown request
 *
 * Why it is built this way:
 * - One thread, one poll loop (ppoll on the UDP socket and the child's pipe, timeout = the time
 *   to the next value). A single-threaded process is the simplest thing for CRIU to freeze, dump
 *   and restore, and a request is still answered between two values, never behind a queue of
 *   them (emitting is one write(2)). No signal handlers: SIGPIPE is ignored, nothing else.
 * - The chain hash: h starts at the FNV-1a 64 offset basis and takes, for each value, the 16
 *   bytes le64(i) || le64(v_i). It lives in the process's memory and goes through the dump with
 *   it, so the host recomputing h_n for the reported n proves that this process emitted exactly
 *   the indices 0..n-1, in order, each once, each with its right value: a gap, a repeat or a
 *   wrong value anywhere in the history changes it.
 * - The log gets one write(2) per value (`i v\n`, O_APPEND): a line is written whole or not at
 *   all, so a torn line in the log is a real fault (e.g. the restored file offset pointing past
 *   what the source's NFS client had flushed), not an artefact of buffering.
 * - Pacing is an absolute schedule, not sleep(period) (which drifts by the loop's own time). But
 *   after a checkpoint/restore the process may have been frozen for seconds: it must not burst
 *   out the values it "missed" (a restored counter resumes at i+1 at its normal pace). So when
 *   the schedule is more than 2 periods behind, it restarts from now.
 * - The schedule runs on a "run clock": CLOCK_MONOTONIC with any step longer than 1 s between two
 *   turns of the loop (it turns at every beat, and at least every 500 ms) counted as 1 s, and a
 *   step backwards counted as 0. Each guest has its own CLOCK_MONOTONIC (its uptime), so after
 *   a restore on another guest the clock may be seconds behind where it was: on the raw clock
 *   the schedule would then stall until the new clock caught up. The child's liveness is timed
 *   on the same clock, so a freeze (or a clock jump) does not make a live child look dead on
 *   restore. (The pong's mono_ns stays the raw clock, the agent's meaning: the guest's own time.)
 * - A child process beats one byte into a pipe every 100 ms: every container is a tree of two
 *   processes joined by a pipe, and `child_alive` shows the tree came back whole. The child
 *   dies with its parent (PR_SET_PDEATHSIG, and getppid() checked after each beat). The parent
 *   reaps any child that exits (it may be PID 1 of the container's PID namespace).
 * - --bind ADDR sets IP_FREEBIND before bind(): the container's service address moves with it
 *   between guests, so the address may not be on the guest yet at restore (or ever, at start).
 *
 * Build: gcc -static -O2 -Wall -Wextra -Werror -pthread -o miglab-workload miglab-workload.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE_BYTES 4096u
#define MIB (1024u * 1024u)
#define PAGES_PER_MIB (MIB / PAGE_SIZE_BYTES)
#define PATTERN_MAGIC 0x5A5A5A5Au /* as the agent's dirty writer: an all-zero page never passes */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define MS 1000000ull
#define MAX_WAIT_NS (500 * MS) /* the loop turns at least this often (and at each beat) */
#define MAX_STEP_NS (1000 * MS) /* a longer step between two turns is a freeze: counted as this */
#define BEAT_NS (100 * MS)
#define ALIVE_NS (2000 * MS)
#define MAX_MIB (1u << 20)
#define USAGE "usage: miglab-workload counter|natural|fibonacci|prime|mem --port P [--bind ADDR] [--log FILE] [--period-ms N] [--rss-mib N] [--wss-mib N --rate-mibps R]"

enum mode { M_COUNTER, M_NATURAL, M_FIBONACCI, M_PRIME, M_MEM };
static const char *const mode_names[] = { "counter", "natural", "fibonacci", "prime", "mem" };
static const unsigned default_period_ms[] = { 1000, 10, 10, 10, 10 };

static struct {
	enum mode mode;
	unsigned port, period_ms, rss_mib, wss_mib, rate_mibps;
	int have_port, have_wss, have_rate, have_period, have_rss;
	const char *bind, *log;
} cfg;

/* The sequence: n values emitted, the last one v (index n-1), the chain hash h over them. */
static struct {
	uint64_t n, v, h;
	uint64_t fib_cur, fib_next; /* v_n and v_{n+1} of the Fibonacci sequence */
	uint64_t prime_last;
} seq = { .h = FNV_OFFSET, .fib_cur = 0, .fib_next = 1 };

/* The mem working set: pages [0, cursor) carry tag gen, pages [cursor, pages) gen-1. */
static struct {
	volatile uint64_t *mem;
	size_t pages, cursor;
	uint32_t gen;
	uint64_t written, credit;
} ws;

static int udp_fd = -1, log_fd = -1, beat_fd = -1;
static pid_t child_pid = -1;
static uint64_t last_beat_run_ns;
static int beat_seen;

/* ---- small helpers ------------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3), noreturn)) static void die(int status, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof line - 2)
		n = (int)(sizeof line - 2);
	line[n++] = '\n';
	/* One write: the line reaches stderr whole. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
	exit(status);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC with freezes and jumps cut down (see the header): what pacing and liveness use. */
static uint64_t run_clock(void)
{
	static uint64_t run_ns, last_mono;
	uint64_t m = mono_ns();
	if (last_mono == 0)
		last_mono = m;
	if (m > last_mono)
		run_ns += m - last_mono > MAX_STEP_NS ? MAX_STEP_NS : m - last_mono;
	last_mono = m;
	return run_ns;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* VmRSS of this process in KiB, -1 if /proc does not say. */
static long long rss_kib(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t got = 0, n;
	while (got < (ssize_t)sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got > 0 ? got : 0] = '\0';
	char *p = strstr(buf, "VmRSS:");
	return p ? strtoll(p + 6, NULL, 10) : -1;
}

static void *map_bytes(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* ---- arguments ---------------------------------------------------------------------------- */

static void parse_args(int argc, char **argv)
{
	if (argc < 2)
		die(2, "miglab-workload: no mode given; " USAGE);
	int found = 0;
	for (unsigned m = 0; m < sizeof mode_names / sizeof mode_names[0]; m++) {
		if (strcmp(argv[1], mode_names[m]) == 0) {
			cfg.mode = (enum mode)m;
			found = 1;
		}
	}
	if (!found)
		die(2, "miglab-workload: unknown mode \"%.64s\": the first argument is one of counter, natural, fibonacci, prime, mem", argv[1]);
	for (int a = 2; a < argc; a++) {
		const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
		unsigned *num = NULL, min = 0, max = MAX_MIB;
		int *have = NULL;
		const char *what = "";
		if (strcmp(opt, "--port") == 0)
			num = &cfg.port, have = &cfg.have_port, min = 1, max = 65535, what = "a UDP port, 1-65535";
		else if (strcmp(opt, "--period-ms") == 0)
			num = &cfg.period_ms, have = &cfg.have_period, min = 1, max = 3600000, what = "a period in ms, 1-3600000";
		else if (strcmp(opt, "--rss-mib") == 0)
			num = &cfg.rss_mib, have = &cfg.have_rss, what = "a size in MiB, 0-1048576";
		else if (strcmp(opt, "--wss-mib") == 0)
			num = &cfg.wss_mib, have = &cfg.have_wss, min = 1, what = "a size in MiB, 1-1048576";
		else if (strcmp(opt, "--rate-mibps") == 0)
			num = &cfg.rate_mibps, have = &cfg.have_rate, what = "a rate in MiB/s, 0-1048576";
		else if (strcmp(opt, "--bind") != 0 && strcmp(opt, "--log") != 0)
			die(2, "miglab-workload: unknown argument \"%.64s\"; " USAGE, opt);
		if (val == NULL)
			die(2, "miglab-workload: %s needs a value", opt);
		if (num) {
			if (*have)
				die(2, "miglab-workload: %s is given twice", opt);
			if (parse_uint(val, min, max, num) != 0)
				die(2, "miglab-workload: %s \"%.64s\" is not %s", opt, val, what);
			*have = 1;
		} else if (strcmp(opt, "--bind") == 0) {
			struct in_addr probe;
			if (cfg.bind)
				die(2, "miglab-workload: --bind is given twice");
			if (inet_pton(AF_INET, val, &probe) != 1)
				die(2, "miglab-workload: --bind \"%.64s\" is not an IPv4 address", val);
			cfg.bind = val;
		} else {
			if (cfg.log)
				die(2, "miglab-workload: --log is given twice");
			if (*val == '\0')
				die(2, "miglab-workload: --log needs a file name");
			cfg.log = val;
		}
		a++;
	}
	if (!cfg.have_port)
		die(2, "miglab-workload: --port is missing; " USAGE);
	if (cfg.mode == M_MEM && (!cfg.have_wss || !cfg.have_rate))
		die(2, "miglab-workload: mode mem needs --wss-mib N and --rate-mibps R (0: write the set once)");
	if (cfg.mode != M_MEM && (cfg.have_wss || cfg.have_rate))
		die(2, "miglab-workload: --wss-mib and --rate-mibps are for mode mem only, not %s", mode_names[cfg.mode]);
	if (!cfg.have_period)
		cfg.period_ms = default_period_ms[cfg.mode];
}

/* ---- the sequence ------------------------------------------------------------------------- */

static int is_prime(uint64_t c)
{
	if (c < 2)
		return 0;
	if (c % 2 == 0)
		return c == 2;
	for (uint64_t d = 3; d <= c / d; d += 2)
		if (c % d == 0)
			return 0;
	return 1;
}

/* v_n, the value of the next index, advancing the generator's own state. */
static uint64_t next_value(void)
{
	switch (cfg.mode) {
	case M_FIBONACCI: {
		uint64_t v = seq.fib_cur;
		seq.fib_cur = seq.fib_next;
		seq.fib_next = v + seq.fib_next; /* unsigned: wraps mod 2^64 */
		return v;
	}
	case M_PRIME: {
		uint64_t c = seq.n == 0 ? 2 : seq.prime_last == 2 ? 3 : seq.prime_last + 2;
		while (!is_prime(c))
			c += 2;
		seq.prime_last = c;
		return c;
	}
	default:
		return seq.n;
	}
}

static void fnv_u64(uint64_t *h, uint64_t x)
{
	for (int b = 0; b < 8; b++) {
		*h ^= (x >> (8 * b)) & 0xff; /* little-endian byte order, whatever the host's */
		*h *= FNV_PRIME;
	}
}

/* ---- the mem working set ------------------------------------------------------------------ */

static inline uint64_t page_tag(size_t idx, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (uint32_t)(idx ^ PATTERN_MAGIC);
}

static void ws_setup(void)
{
	ws.pages = (size_t)cfg.wss_mib * PAGES_PER_MIB;
	ws.mem = map_bytes(ws.pages * PAGE_SIZE_BYTES);
	if (!ws.mem)
		die(1, "miglab-workload: cannot map a working set of %u MiB: %s", cfg.wss_mib, strerror(errno));
	/* Pass 1 fills every page; the writer's first pass is 2 and starts at page 0. */
	for (size_t i = 0; i < ws.pages; i++)
		ws.mem[i * (PAGE_SIZE_BYTES / sizeof(uint64_t))] = page_tag(i, 1);
	ws.gen = 2;
	ws.cursor = 0;
}

/* One tick's share of --rate-mibps, the fraction carried over: no drift, and no catch-up after a
 * freeze (the ticks that were skipped write nothing). */
static void ws_tick(void)
{
	ws.credit += (uint64_t)cfg.rate_mibps * PAGES_PER_MIB * cfg.period_ms;
	uint64_t batch = ws.credit / 1000;
	ws.credit %= 1000;
	for (uint64_t k = 0; k < batch; k++) {
		ws.mem[ws.cursor * (PAGE_SIZE_BYTES / sizeof(uint64_t))] = page_tag(ws.cursor, ws.gen);
		if (++ws.cursor == ws.pages) {
			ws.cursor = 0;
			ws.gen++;
		}
	}
	ws.written += batch;
}

/* ---- emitting ----------------------------------------------------------------------------- */

static void emit(void)
{
	if (cfg.mode == M_MEM)
		ws_tick();
	uint64_t i = seq.n, v = next_value();
	fnv_u64(&seq.h, i);
	fnv_u64(&seq.h, v);
	seq.v = v;
	seq.n = i + 1;
	if (log_fd >= 0) {
		char line[64];
		int len = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 "\n", i, v);
		/* One write per line; a failed or short one leaves a gap or a torn line that the host's
		 * log check reports, which is the point of keeping the log. */
		ssize_t w;
		do
			w = write(log_fd, line, (size_t)len);
		while (w < 0 && errno == EINTR);
	}
}

/* ---- the child ---------------------------------------------------------------------------- */

static void start_child(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		die(1, "miglab-workload: pipe: %s", strerror(errno));
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		die(1, "miglab-workload: fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		if (udp_fd >= 0)
			close(udp_fd);
		if (log_fd >= 0)
			close(log_fd);
		/* A full pipe (a parent stopped for hours) drops beats instead of blocking the child. */
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* The parent may have died before PDEATHSIG was set. */
		while (getppid() == parent) {
			ssize_t w = write(p[1], "b", 1);
			if (w < 0 && errno != EINTR && errno != EAGAIN)
				_exit(0);
			struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)BEAT_NS };
			nanosleep(&ts, NULL);
		}
		_exit(0);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	beat_fd = p[0];
	child_pid = pid;
}

static void drain_beats(void)
{
	char buf[256];
	for (;;) {
		ssize_t r = read(beat_fd, buf, sizeof buf);
		if (r > 0) {
			last_beat_run_ns = run_clock();
			beat_seen = 1;
			continue;
		}
		if (r == 0) {
			/* The child is gone (EOF): stop polling a pipe that would report HUP forever. */
			close(beat_fd);
			beat_fd = -1;
		}
		return; /* EAGAIN: drained; EINTR: the next turn reads on */
	}
}

static int child_alive(void)
{
	if (beat_fd >= 0)
		drain_beats();
	return beat_seen && run_clock() - last_beat_run_ns < ALIVE_NS;
}

static void reap(void)
{
	/* Any child: this process may be PID 1 of a PID namespace and inherit orphans. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* ---- requests ----------------------------------------------------------------------------- */

static void reply(const struct sockaddr_in *peer, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(const struct sockaddr_in *peer, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = (int)sizeof buf - 1;
	while (sendto(udp_fd, buf, (size_t)n, 0, (const struct sockaddr *)peer, sizeof *peer) < 0 && errno == EINTR)
		;
}

static void verify(const struct sockaddr_in *peer)
{
	/* Exact, not just "current or previous pass": a page before the cursor must carry this
	 * pass's tag and every other the previous pass's, so one lost write anywhere shows. */
	uint64_t bad = 0;
	long long first_bad = -1;
	for (size_t i = 0; i < ws.pages; i++) {
		uint64_t want = page_tag(i, i < ws.cursor ? ws.gen : ws.gen - 1);
		if (ws.mem[i * (PAGE_SIZE_BYTES / sizeof(uint64_t))] != want) {
			if (first_bad < 0)
				first_bad = (long long)i;
			bad++;
		}
	}
	if (bad == 0)
		reply(peer, "verify ok pages=%zu", ws.pages);
	else
		reply(peer, "verify bad page=%lld bad=%" PRIu64 " pages=%zu", first_bad, bad, ws.pages);
}

static void handle(char *req, const struct sockaddr_in *peer)
{
	char *save = NULL;
	char *verb = strtok_r(req, " \t\r\n", &save);
	char *arg = verb ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	if (verb == NULL)
		return;
	if (strcmp(verb, "ping") == 0) {
		reply(peer, "pong %s %" PRIu64 " %" PRIu64, arg ? arg : "-", mono_ns(), seq.n);
	} else if (strcmp(verb, "state") == 0) {
		long long log_bytes = log_fd >= 0 ? (long long)lseek(log_fd, 0, SEEK_CUR) : -1;
		int alive = child_alive();
		reply(peer,
		      "state mode=%s n=%" PRIu64 " i=%lld v=%" PRIu64 " h=%016" PRIx64 " pid=%d ppid=%d child=%d child_alive=%d log_bytes=%lld rss_kib=%lld gen=%u written=%" PRIu64,
		      mode_names[cfg.mode], seq.n, (long long)seq.n - 1, seq.v, seq.h, (int)getpid(), (int)getppid(), (int)child_pid, alive,
		      log_bytes, rss_kib(), cfg.mode == M_MEM ? ws.gen : 0u, ws.written);
	} else if (strcmp(verb, "verify") == 0 && cfg.mode == M_MEM) {
		verify(peer);
	} else if (strcmp(verb, "verify") == 0) {
		reply(peer, "error verify is for mode mem, this is %s", mode_names[cfg.mode]);
	} else {
		reply(peer, "error unknown request");
	}
}

static void serve_requests(void)
{
	char buf[1024];
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		ssize_t n = recvfrom(udp_fd, buf, sizeof buf - 1, MSG_DONTWAIT, (struct sockaddr *)&peer, &plen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN: drained; anything else: the next turn tries again */
		}
		if (plen != sizeof peer || peer.sin_family != AF_INET)
			continue;
		buf[n] = '\0';
		handle(buf, &peer);
	}
}

/* ---- main --------------------------------------------------------------------------------- */

static void open_udp(void)
{
	udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (udp_fd < 0)
		die(1, "miglab-workload: socket: %s", strerror(errno));
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port) };
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	if (cfg.bind) {
		inet_pton(AF_INET, cfg.bind, &addr.sin_addr);
		int one = 1;
		if (setsockopt(udp_fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) != 0)
			die(1, "miglab-workload: setsockopt IP_FREEBIND: %s", strerror(errno));
	}
	if (bind(udp_fd, (struct sockaddr *)&addr, sizeof addr) != 0)
		die(1, "miglab-workload: bind udp %s:%u: %s", cfg.bind ? cfg.bind : "0.0.0.0", cfg.port, strerror(errno));
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);

	if (cfg.rss_mib > 0) {
		size_t len = (size_t)cfg.rss_mib * MIB;
		volatile char *pad = map_bytes(len);
		if (!pad)
			die(1, "miglab-workload: cannot map --rss-mib %u: %s", cfg.rss_mib, strerror(errno));
		for (size_t off = 0; off < len; off += PAGE_SIZE_BYTES)
			pad[off] = 1; /* a write, so each page is this process's own, not the shared zero page */
	}
	if (cfg.mode == M_MEM)
		ws_setup();
	open_udp();
	if (cfg.log) {
		log_fd = open(cfg.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log_fd < 0)
			die(1, "miglab-workload: cannot open the log %s: %s", cfg.log, strerror(errno));
	}
	start_child();

	const uint64_t period_ns = (uint64_t)cfg.period_ms * MS;
	uint64_t next_due = run_clock();
	for (;;) {
		uint64_t now = run_clock();
		reap();
		if (now >= next_due) {
			/* Frozen (a checkpoint), stopped or starved: resume from now, no burst. */
			if (now - next_due > 2 * period_ns)
				next_due = now;
			emit();
			next_due += period_ns;
		}
		uint64_t wait = next_due > now ? next_due - now : 0;
		if (wait > MAX_WAIT_NS)
			wait = MAX_WAIT_NS;
		struct pollfd fds[2] = { { .fd = udp_fd, .events = POLLIN }, { .fd = beat_fd, .events = POLLIN } };
		struct timespec ts = { .tv_sec = (time_t)(wait / 1000000000ull), .tv_nsec = (long)(wait % 1000000000ull) };
		if (ppoll(fds, beat_fd >= 0 ? 2 : 1, &ts, NULL) > 0) {
			if (fds[0].revents)
				serve_requests();
			if (beat_fd >= 0 && fds[1].revents)
				drain_beats();
		}
	}
}
