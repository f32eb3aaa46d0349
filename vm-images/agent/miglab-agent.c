/*
 * miglab-agent: the guest side of miglab. PID 1's child in the miglab guest (see ../init).
 *
 * - A heartbeat on the console every miglab.hb_ms ms:
 *     MIGLAB-HB seq=<n> mono_ns=<CLOCK_MONOTONIC ns> boot=<boot id>
 *   The boot id is random per boot, so "same boot id, seq strictly increasing" proves the guest
 *   was never reset (a migration that silently rebooted the guest shows a new boot id).
 * - MIGLAB-READY ip=<addr> boot=<id> once the UDP service is up and the address is configured.
 * - A UDP text service (port 7777, one datagram per request, reply to the sender): ping, info,
 *   bench cpu|mem|disk, dirty start|status|stop|verify|corrupt, cpu start|status|stop,
 *   disk start|status|stop|verify|corrupt, connect (a TCP reachability check from the guest) and
 *   oom (the guest-oom fault: the agent eats memory until the guest's OOM killer kills it).
 *   See ../README.md for the protocol. The socket is bound to the configured address
 *   (miglab.ip), not to a wildcard, so the guest listens only where the lab means it to.
 *
 * Threads: the main thread only answers datagrams, so `ping` (the client's downtime probe) is
 * never queued behind a workload. The heartbeat, the workloads (dirty pages, cpu loop, disk
 * records) and slow requests (bench; start/stop/verify/corrupt of a workload) each run in their
 * own thread. Memory for workloads comes from mmap and is returned with munmap (except the oom
 * fault's, which is the point of it); nothing else allocates after start-up.
 *
 * Build: gcc -static -O2 -Wall -Wextra -pthread -o miglab-agent miglab-agent.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* control.c: commands on the host's request over a virtio-serial port. */
void control_start(void (*say)(const char *fmt, ...));

#define DEFAULT_PORT 7777
#define DEFAULT_HB_MS 100
#define PAGE_SIZE_BYTES 4096u
#define MIB (1024u * 1024u)
#define PATTERN_MAGIC 0x5A5A5A5Au /* so an all-zero page never passes as page 0 */
#define DIRTY_SLICE_NS 10000000ull /* pacing granularity of the dirty writer: 10 ms */
#define MAX_BENCH_MS 600000u
#define MAX_BENCH_MIB 8192u

static struct {
	unsigned hb_ms;
	unsigned port;
	char iface[IF_NAMESIZE + 1];
	char want_ip[64]; /* miglab.ip as given, e.g. 10.77.0.100/24; empty: no network */
} cfg;

static char boot_id[17];
static uint64_t boot_id_raw; /* the same id as a number, stamped into disk records */
static _Atomic uint64_t hb_seq;
static int udp_fd = -1;
static char ip_text[INET_ADDRSTRLEN] = "none";
static char bind_text[INET_ADDRSTRLEN] = "0.0.0.0"; /* the address the UDP socket is bound to */

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Time since the guest booted (CLOCK_BOOTTIME also counts suspend; none happens here). */
static uint64_t uptime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* the console is gone: nothing better to do than carry on */
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* One console line in one write(), so lines from different threads never interleave. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)(sizeof line - 2);
	line[n++] = '\n';
	write_all(STDOUT_FILENO, line, (size_t)n);
}

static ssize_t read_file(const char *path, char *buf, size_t cap)
{
	int fd;
	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < cap - 1) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	if (s == NULL || *s == '\0')
		return -1;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void read_cmdline(void)
{
	char buf[4096];
	cfg.hb_ms = DEFAULT_HB_MS;
	cfg.port = DEFAULT_PORT;
	if (read_file("/proc/cmdline", buf, sizeof buf) < 0)
		return;
	char *save = NULL;
	for (char *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		if (strncmp(tok, "miglab.", 7) != 0)
			continue;
		char *key = tok + 7, *val = strchr(key, '=');
		if (!val)
			continue;
		*val++ = '\0';
		unsigned u;
		if (strcmp(key, "hb_ms") == 0 && parse_uint(val, 3600000, &u) == 0 && u > 0)
			cfg.hb_ms = u;
		else if (strcmp(key, "port") == 0 && parse_uint(val, 65535, &u) == 0 && u > 0)
			cfg.port = u;
		else if (strcmp(key, "iface") == 0)
			snprintf(cfg.iface, sizeof cfg.iface, "%s", val);
		else if (strcmp(key, "ip") == 0)
			snprintf(cfg.want_ip, sizeof cfg.want_ip, "%s", val);
	}
}

static void make_boot_id(void)
{
	uint64_t r = 0;
	ssize_t n;
	do
		n = getrandom(&r, sizeof r, GRND_NONBLOCK);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof r) {
		/* The entropy pool may not be ready this early; a clock/pid mix is unique enough to tell
		 * one boot from the next. */
		r = mono_ns() * 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	}
	boot_id_raw = r;
	snprintf(boot_id, sizeof boot_id, "%016" PRIx64, r);
}

/* One field of /proc/meminfo in KiB ("MemTotal:", "MemAvailable:"), 0 if absent. */
static unsigned long long meminfo_kib(const char *key)
{
	char buf[4096];
	if (read_file("/proc/meminfo", buf, sizeof buf) < 0)
		return 0;
	char *p = strstr(buf, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* The IPv4 address on cfg.iface, or on the first non-loopback interface. */
static int read_back_ip(char *out, size_t cap)
{
	struct ifaddrs *list, *it;
	int found = 0;
	if (getifaddrs(&list) != 0)
		return 0;
	for (it = list; it && !found; it = it->ifa_next) {
		if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET)
			continue;
		if (cfg.iface[0] ? strcmp(it->ifa_name, cfg.iface) != 0 : (it->ifa_flags & IFF_LOOPBACK) != 0)
			continue;
		found = inet_ntop(AF_INET, &((struct sockaddr_in *)it->ifa_addr)->sin_addr, out, (socklen_t)cap) != NULL;
	}
	freeifaddrs(list);
	return found;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *map_bytes(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * A worker thread (bench, dirty control) holds its reply until it has marked itself idle, then
 * sends it (finish_job): a client that sends its next request the moment it has the answer must
 * not be told "busy" by a worker that is still releasing its buffers.
 */
static _Thread_local struct {
	int on, len;
	struct sockaddr_in peer;
	char text[512];
} deferred;

static void send_text(const struct sockaddr_in *peer, const char *buf, size_t n)
{
	while (sendto(udp_fd, buf, n, 0, (const struct sockaddr *)peer, sizeof *peer) < 0 && errno == EINTR)
		;
}

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
	if (deferred.on) {
		memcpy(deferred.text, buf, (size_t)n);
		deferred.len = n;
		deferred.peer = *peer;
		return;
	}
	send_text(peer, buf, (size_t)n);
}

/* End of a worker's job: mark it idle, then send the reply it held. */
static void finish_job(atomic_int *busy)
{
	int len = deferred.len;
	deferred.on = 0;
	deferred.len = 0;
	atomic_store(busy, 0);
	if (len > 0)
		send_text(&deferred.peer, deferred.text, (size_t)len);
}

static void start_detached(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		say("MIGLAB-AGENT-ERROR pthread_create: %s", strerror(rc));
		exit(1);
	}
}

/* ---- heartbeat ---------------------------------------------------------------------------- */

static void *heartbeat(void *arg)
{
	(void)arg;
	const uint64_t period = (uint64_t)cfg.hb_ms * 1000000ull;
	uint64_t next = mono_ns();
	for (uint64_t seq = 1;; seq++) {
		uint64_t now = mono_ns();
		say("MIGLAB-HB seq=%" PRIu64 " mono_ns=%" PRIu64 " boot=%s", seq, now, boot_id);
		atomic_store(&hb_seq, seq);
		next += period;
		now = mono_ns();
		/* After a stall (a paused VM, a migration's downtime) print once at once, then resume
		 * the cadence from now rather than bursting out the missed beats. */
		if (next < now)
			next = now;
		struct timespec ts = { .tv_sec = (time_t)(next / 1000000000ull), .tv_nsec = (long)(next % 1000000000ull) };
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	return NULL;
}

/* ---- bench -------------------------------------------------------------------------------- */

static atomic_int bench_busy;
static struct {
	enum { B_CPU, B_MEM, B_DISK } kind;
	unsigned mib, ms;
	struct sockaddr_in peer;
} bench_job;
static volatile uint64_t bench_sink;

#define DISK_BLOCK_BYTES MIB /* one O_DIRECT request per MiB */
#define DISK_SECTOR_BYTES 512u

/* The word at the start of each 512-byte sector of the disk bench: block, sector and a run nonce,
 * so a read that returns stale or misplaced data is counted as bad. */
static inline uint64_t disk_word(uint64_t nonce, uint64_t block, uint64_t sector)
{
	return nonce ^ (block << 20) ^ sector ^ 0xD15CB0A7D15CB0A7ull;
}

/*
 * The guest's data disk: the first of vda (virtio-blk) and sda (IDE/SCSI) that the kernel knows.
 * devtmpfs normally has the node; if not, make it from /sys/block/<dev>/dev. The device's size in
 * bytes goes to *size_bytes.
 */
static int open_data_disk(char *name, size_t cap, uint64_t *size_bytes, char *why, size_t why_cap)
{
	static const char *const cands[] = { "vda", "sda" };
	for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
		char path[96], buf[64];
		snprintf(path, sizeof path, "/sys/block/%s/dev", cands[i]);
		if (read_file(path, buf, sizeof buf) <= 0)
			continue;
		unsigned maj, min;
		if (sscanf(buf, "%u:%u", &maj, &min) != 2) {
			snprintf(why, why_cap, "bad %s", path);
			return -1;
		}
		snprintf(path, sizeof path, "/sys/block/%s/size", cands[i]);
		*size_bytes = read_file(path, buf, sizeof buf) > 0 ? strtoull(buf, NULL, 10) * 512ull : 0;
		snprintf(name, cap, "%s", cands[i]);
		char node[64];
		snprintf(node, sizeof node, "/dev/%s", cands[i]);
		struct stat st;
		if (stat(node, &st) != 0 && mknod(node, S_IFBLK | 0600, makedev(maj, min)) != 0 && errno != EEXIST) {
			snprintf(why, why_cap, "mknod %s: %s", node, strerror(errno));
			return -1;
		}
		int fd = open(node, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (fd < 0)
			snprintf(why, why_cap, "open %s: %s", node, strerror(errno));
		return fd;
	}
	snprintf(why, why_cap, "no data disk (neither /sys/block/vda nor /sys/block/sda)");
	return -1;
}

/* Sequential O_DIRECT write of bench_job.mib MiB (then fsync), then a read back; both timed. */
static void bench_disk(void)
{
	char dev[16], why[160];
	uint64_t size_bytes = 0;
	int fd = open_data_disk(dev, sizeof dev, &size_bytes, why, sizeof why);
	if (fd < 0) {
		reply(&bench_job.peer, "error disk %s", why);
		return;
	}
	const uint64_t blocks = bench_job.mib, bytes = blocks * DISK_BLOCK_BYTES;
	char *buf = bytes > size_bytes ? NULL : map_bytes(DISK_BLOCK_BYTES); /* page-aligned, as O_DIRECT needs */
	if (bytes > size_bytes) {
		reply(&bench_job.peer, "error disk %s holds %" PRIu64 " MiB, asked for %u MiB", dev, size_bytes / MIB, bench_job.mib);
	} else if (!buf) {
		reply(&bench_job.peer, "error nomem 1 MiB");
	} else {
		const uint64_t nonce = mono_ns();
		const size_t words = DISK_SECTOR_BYTES / sizeof(uint64_t);
		uint64_t *w = (uint64_t *)(void *)buf;
		const char *fail = NULL;
		int err = 0;
		uint64_t bad = 0;
		const uint64_t t0 = mono_ns();
		for (uint64_t b = 0; b < blocks && !fail; b++) {
			for (uint64_t s = 0; s < DISK_BLOCK_BYTES / DISK_SECTOR_BYTES; s++)
				for (size_t k = 0; k < words; k++)
					w[s * words + k] = disk_word(nonce, b, s) + k;
			ssize_t n = pwrite(fd, buf, DISK_BLOCK_BYTES, (off_t)(b * DISK_BLOCK_BYTES));
			if (n != (ssize_t)DISK_BLOCK_BYTES) {
				fail = "write";
				err = n < 0 ? errno : EIO;
			}
		}
		if (!fail && fsync(fd) != 0) {
			fail = "fsync";
			err = errno;
		}
		const uint64_t t1 = mono_ns();
		for (uint64_t b = 0; b < blocks && !fail; b++) {
			ssize_t n = pread(fd, buf, DISK_BLOCK_BYTES, (off_t)(b * DISK_BLOCK_BYTES));
			if (n != (ssize_t)DISK_BLOCK_BYTES) {
				fail = "read";
				err = n < 0 ? errno : EIO;
			}
			for (uint64_t s = 0; !fail && s < DISK_BLOCK_BYTES / DISK_SECTOR_BYTES; s++)
				bad += w[s * words] != disk_word(nonce, b, s);
		}
		const uint64_t t2 = mono_ns();
		if (fail) {
			reply(&bench_job.peer, "error disk %s %s: %s", dev, fail, strerror(err));
		} else {
			/* Filling the pattern is counted in the write time: it is a small part of a MiB's I/O. */
			double ws = (double)(t1 - t0) / 1e9, rs = (double)(t2 - t1) / 1e9;
			reply(&bench_job.peer, "bench disk dev=%s write_MiBps=%.1f read_MiBps=%.1f bytes=%" PRIu64 " write_ms=%.1f read_ms=%.1f bad_sectors=%" PRIu64,
			      dev, (double)blocks / ws, (double)blocks / rs, bytes, ws * 1e3, rs * 1e3, bad);
		}
	}
	if (buf)
		munmap(buf, DISK_BLOCK_BYTES);
	close(fd);
}

static void *bench_run(void *arg)
{
	(void)arg;
	deferred.on = 1;
	const uint64_t t0 = mono_ns(), limit = (uint64_t)bench_job.ms * 1000000ull;
	uint64_t now = t0;
	if (bench_job.kind == B_DISK) {
		bench_disk();
	} else if (bench_job.kind == B_CPU) {
		/* xorshift64* steps: integer only, deterministic, no memory traffic. */
		uint64_t x = 0x9E3779B97F4A7C15ull, ops = 0;
		do {
			for (int i = 0; i < 65536; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				x *= 0x2545F4914F6CDD1Dull;
			}
			ops += 65536;
			now = mono_ns();
		} while (now - t0 < limit);
		bench_sink = x;
		double s = (double)(now - t0) / 1e9;
		reply(&bench_job.peer, "bench cpu ops=%" PRIu64 " ms=%.1f ops_per_s=%.0f", ops, s * 1e3, (double)ops / s);
	} else {
		size_t len = (size_t)bench_job.mib * MIB;
		char *src = map_bytes(len), *dst = map_bytes(len);
		if (!src || !dst) {
			reply(&bench_job.peer, "error nomem %u MiB", bench_job.mib);
		} else {
			uint64_t bytes = 0;
			unsigned char fill = 1;
			do {
				memset(src, fill++, len);
				memcpy(dst, src, len);
				bytes += 2 * (uint64_t)len; /* bytes written: the memset and the copy */
				now = mono_ns();
			} while (now - t0 < limit);
			bench_sink = (uint64_t)dst[len - 1];
			double s = (double)(now - t0) / 1e9;
			reply(&bench_job.peer, "bench mem bytes=%" PRIu64 " ms=%.1f MiBps=%.1f", bytes, s * 1e3,
			      (double)bytes / MIB / s);
		}
		if (src)
			munmap(src, len);
		if (dst)
			munmap(dst, len);
	}
	finish_job(&bench_busy);
	return NULL;
}

/* ---- dirty-page workload ------------------------------------------------------------------ */

/*
 * Each page's first word is ((uint64)generation << 32) | (page index ^ PATTERN_MAGIC), and
 * gen_of[page] holds the generation last written there. `verify` compares the two for every page:
 * a page that lost a write (or got another page's content) during migration shows up as bad.
 */
static struct {
	pthread_mutex_t lock; /* held by the writer for one slice, and by verify for the whole check */
	volatile uint64_t *mem;
	uint32_t *gen_of;
	size_t pages, mem_len, gen_len;
	uint32_t gen;
	unsigned wss_mib, rate_mibps;
	int random;
	pthread_t writer;
	int have_writer;
	atomic_int running, stop;
	_Atomic uint64_t pages_written;
	_Atomic uint64_t t_start, t_stop;
} dirty = { .lock = PTHREAD_MUTEX_INITIALIZER };

static atomic_int dirty_busy; /* a start/stop/verify in progress */
static struct {
	enum { D_START, D_STOP, D_VERIFY, D_CORRUPT } op;
	unsigned wss_mib, rate_mibps, page;
	int random;
	struct sockaddr_in peer;
} dirty_job;

static inline void write_page(size_t idx, uint32_t gen)
{
	dirty.mem[idx * (PAGE_SIZE_BYTES / sizeof(uint64_t))] = ((uint64_t)gen << 32) | (uint32_t)(idx ^ PATTERN_MAGIC);
	dirty.gen_of[idx] = gen;
}

static void *dirty_writer(void *arg)
{
	(void)arg;
	const double pages_per_ns = (double)dirty.rate_mibps * (MIB / PAGE_SIZE_BYTES) / 1e9;
	const uint64_t max_batch = dirty.rate_mibps ? (uint64_t)(pages_per_ns * 2 * DIRTY_SLICE_NS) + 1 : 4096;
	uint64_t credit_t0 = mono_ns(), credit_done = 0, cursor = 0, rng = 0x853C49E6748FEA9Bull ^ mono_ns();
	while (!atomic_load(&dirty.stop)) {
		uint64_t batch = max_batch;
		if (dirty.rate_mibps) {
			uint64_t due = (uint64_t)((double)(mono_ns() - credit_t0) * pages_per_ns);
			batch = due > credit_done ? due - credit_done : 0;
			if (batch > max_batch) {
				/* Behind by more than two slices (the VM was paused): drop the backlog
				 * instead of bursting above the target rate. */
				credit_t0 = mono_ns();
				credit_done = 0;
				batch = max_batch / 2;
			}
			credit_done += batch;
		}
		if (batch > 0) {
			pthread_mutex_lock(&dirty.lock);
			uint32_t gen = ++dirty.gen;
			for (uint64_t i = 0; i < batch; i++) {
				size_t idx;
				if (dirty.random) {
					rng ^= rng << 13;
					rng ^= rng >> 7;
					rng ^= rng << 17;
					idx = (size_t)(rng % dirty.pages);
				} else {
					idx = (size_t)cursor;
					cursor = cursor + 1 == dirty.pages ? 0 : cursor + 1;
				}
				write_page(idx, gen);
			}
			pthread_mutex_unlock(&dirty.lock);
			atomic_fetch_add(&dirty.pages_written, batch);
		}
		if (dirty.rate_mibps)
			sleep_ns(DIRTY_SLICE_NS);
	}
	return NULL;
}

static void dirty_stop_writer(void)
{
	if (!dirty.have_writer)
		return;
	atomic_store(&dirty.stop, 1);
	pthread_join(dirty.writer, NULL);
	dirty.have_writer = 0;
	atomic_store(&dirty.t_stop, mono_ns());
	atomic_store(&dirty.running, 0);
}

static void *dirty_control(void *arg)
{
	(void)arg;
	deferred.on = 1;
	const struct sockaddr_in *peer = &dirty_job.peer;
	if (dirty_job.op == D_STOP) {
		dirty_stop_writer();
		reply(peer, "ok");
	} else if (dirty_job.op == D_CORRUPT) {
		/* For tests of the checks themselves: change one page's tag without its generation, as a
		 * lost or misplaced page would. A running writer may repair it by rewriting that page. */
		pthread_mutex_lock(&dirty.lock);
		size_t pages = dirty.pages;
		if (dirty_job.page < pages)
			dirty.mem[(size_t)dirty_job.page * (PAGE_SIZE_BYTES / sizeof(uint64_t))] ^= 0xFFFFFFFFull;
		pthread_mutex_unlock(&dirty.lock);
		if (dirty_job.page < pages)
			reply(peer, "ok");
		else
			reply(peer, "error page %u is outside the working set of %zu pages", dirty_job.page, pages);
	} else if (dirty_job.op == D_VERIFY) {
		uint64_t bad = 0;
		long long first_bad = -1;
		pthread_mutex_lock(&dirty.lock);
		for (size_t i = 0; i < dirty.pages; i++) {
			uint64_t want = ((uint64_t)dirty.gen_of[i] << 32) | (uint32_t)(i ^ PATTERN_MAGIC);
			if (dirty.mem[i * (PAGE_SIZE_BYTES / sizeof(uint64_t))] != want) {
				if (first_bad < 0)
					first_bad = (long long)i;
				bad++;
			}
		}
		size_t pages = dirty.pages;
		pthread_mutex_unlock(&dirty.lock);
		reply(peer, "verify pages=%zu bad=%" PRIu64 " first_bad=%lld", pages, bad, first_bad);
	} else {
		dirty_stop_writer();
		if (dirty.mem)
			munmap((void *)dirty.mem, dirty.mem_len);
		if (dirty.gen_of)
			munmap(dirty.gen_of, dirty.gen_len);
		dirty.mem = NULL;
		dirty.gen_of = NULL;
		dirty.pages = 0;
		dirty.wss_mib = 0;
		size_t pages = (size_t)dirty_job.wss_mib * (MIB / PAGE_SIZE_BYTES);
		size_t mem_len = pages * PAGE_SIZE_BYTES, gen_len = pages * sizeof(uint32_t);
		void *mem = map_bytes(mem_len), *gen_of = map_bytes(gen_len);
		if (!mem || !gen_of) {
			if (mem)
				munmap(mem, mem_len);
			if (gen_of)
				munmap(gen_of, gen_len);
			reply(peer, "error nomem %u MiB", dirty_job.wss_mib);
		} else {
			dirty.mem = mem;
			dirty.gen_of = gen_of;
			dirty.pages = pages;
			dirty.mem_len = mem_len;
			dirty.gen_len = gen_len;
			dirty.gen = 1;
			for (size_t i = 0; i < pages; i++)
				write_page(i, 1);
			dirty.wss_mib = dirty_job.wss_mib;
			dirty.rate_mibps = dirty_job.rate_mibps;
			dirty.random = dirty_job.random;
			atomic_store(&dirty.pages_written, 0);
			atomic_store(&dirty.stop, 0);
			atomic_store(&dirty.t_start, mono_ns());
			atomic_store(&dirty.t_stop, 0);
			int rc = pthread_create(&dirty.writer, NULL, dirty_writer, NULL);
			if (rc != 0) {
				reply(peer, "error pthread_create %s", strerror(rc));
			} else {
				dirty.have_writer = 1;
				atomic_store(&dirty.running, 1);
				reply(peer, "ok");
			}
		}
	}
	finish_job(&dirty_busy);
	return NULL;
}

static void dirty_status(const struct sockaddr_in *peer)
{
	uint64_t t0 = atomic_load(&dirty.t_start), t1 = atomic_load(&dirty.t_stop);
	int running = atomic_load(&dirty.running);
	uint64_t written = atomic_load(&dirty.pages_written);
	if (t1 == 0)
		t1 = mono_ns();
	double s = t0 && t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
	double achieved = s > 0 ? (double)written * PAGE_SIZE_BYTES / MIB / s : 0;
	reply(peer, "dirty wss_mib=%u target_mibps=%u achieved_mibps=%.1f pages_written=%" PRIu64 " running=%d",
	      dirty.wss_mib, dirty.rate_mibps, achieved, written, running);
}

/* ---- continuous cpu workload -------------------------------------------------------------- */

/*
 * The bench's xorshift64* loop, run until `cpu stop`, publishing its count after every chunk so
 * `cpu status` shows the throughput the guest gets (it drops while a migration throttles or
 * pauses the vCPU). Start/stop join the thread in a control thread, never in the main one.
 */
static struct {
	pthread_t thread;
	int have_thread;
	atomic_int running, stop;
	_Atomic uint64_t ops, t_start, t_stop;
} cpu = { 0 };
static atomic_int cpu_busy;
static struct {
	int start;
	struct sockaddr_in peer;
} cpu_job;

static void *cpu_worker(void *arg)
{
	(void)arg;
	uint64_t x = 0x9E3779B97F4A7C15ull ^ mono_ns();
	while (!atomic_load(&cpu.stop)) {
		for (int i = 0; i < 65536; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			x *= 0x2545F4914F6CDD1Dull;
		}
		atomic_fetch_add(&cpu.ops, 65536);
	}
	bench_sink = x;
	return NULL;
}

static void cpu_stop_worker(void)
{
	if (!cpu.have_thread)
		return;
	atomic_store(&cpu.stop, 1);
	pthread_join(cpu.thread, NULL);
	cpu.have_thread = 0;
	atomic_store(&cpu.t_stop, mono_ns());
	atomic_store(&cpu.running, 0);
}

static void *cpu_control(void *arg)
{
	(void)arg;
	deferred.on = 1;
	cpu_stop_worker();
	if (cpu_job.start) {
		atomic_store(&cpu.ops, 0);
		atomic_store(&cpu.stop, 0);
		atomic_store(&cpu.t_start, mono_ns());
		atomic_store(&cpu.t_stop, 0);
		int rc = pthread_create(&cpu.thread, NULL, cpu_worker, NULL);
		if (rc != 0) {
			reply(&cpu_job.peer, "error pthread_create %s", strerror(rc));
		} else {
			cpu.have_thread = 1;
			atomic_store(&cpu.running, 1);
			reply(&cpu_job.peer, "ok");
		}
	} else {
		reply(&cpu_job.peer, "ok");
	}
	finish_job(&cpu_busy);
	return NULL;
}

static void cpu_status(const struct sockaddr_in *peer)
{
	uint64_t t0 = atomic_load(&cpu.t_start), t1 = atomic_load(&cpu.t_stop), ops = atomic_load(&cpu.ops);
	int running = atomic_load(&cpu.running);
	if (t1 == 0)
		t1 = mono_ns();
	double s = t0 && t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
	reply(peer, "cpu ops=%" PRIu64 " ms=%.1f ops_per_s=%.0f running=%d", ops, s * 1e3, s > 0 ? (double)ops / s : 0, running);
}

/* ---- disk record workload ----------------------------------------------------------------- */

/*
 * Sequence-numbered, checksummed records appended to the data disk from offset 0, record i
 * holding seq i, paced to a rate in KiB/s. A batch is one O_DIRECT pwrite followed by fdatasync,
 * and a record counts as written only after its fdatasync, so what `status` reports is on the
 * disk image. The writer's position lives in guest memory, which migrates: records written on
 * the destination continue the source's sequence, and `verify` reads them all back.
 *
 * Record layout (64-bit little-endian words): magic, boot id, run id (set by `start`), seq,
 * guest CLOCK_MONOTONIC ns, record size, checksum, then a payload derived from (run, seq, word).
 * The checksum is FNV-1a over the record's 64-bit words with the checksum word as zero.
 */
#define DREC_MAGIC 0x3152434552444C4Dull /* "MLDRECR1" */
#define DREC_HDR_WORDS 7u
#define DREC_BUF_BYTES MIB
#define DISK_SLICE_NS 10000000ull

static struct {
	pthread_mutex_t lock; /* the writer holds it per batch; corrupt holds it too */
	int fd;
	char dev[16];
	uint64_t size_bytes, run_id;
	unsigned rate_kibps, rec_bytes;
	pthread_t writer;
	int have_writer;
	char *buf;
	atomic_int running, stop, full, failed;
	int err;
	_Atomic uint64_t records, t_start, t_stop;
} disk = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };
static atomic_int disk_busy;
static struct {
	enum { K_START, K_STOP, K_VERIFY, K_CORRUPT } op;
	unsigned rate_kibps, rec_bytes;
	uint64_t seq;
	struct sockaddr_in peer;
} disk_job;

static uint64_t drec_checksum(const uint64_t *w, size_t words)
{
	uint64_t h = 0xCBF29CE484222325ull;
	for (size_t i = 0; i < words; i++) {
		h ^= i == 6 ? 0 : w[i];
		h *= 0x100000001B3ull;
	}
	return h;
}

static inline uint64_t drec_payload(uint64_t run, uint64_t seq, uint64_t k)
{
	return run ^ (seq * 0x9E3779B97F4A7C15ull) ^ (k * 0xC2B2AE3D27D4EB4Full);
}

static void drec_fill(uint64_t *w, uint64_t seq)
{
	const size_t words = disk.rec_bytes / sizeof(uint64_t);
	w[0] = DREC_MAGIC;
	w[1] = boot_id_raw;
	w[2] = disk.run_id;
	w[3] = seq;
	w[4] = mono_ns();
	w[5] = disk.rec_bytes;
	for (size_t k = DREC_HDR_WORDS; k < words; k++)
		w[k] = drec_payload(disk.run_id, seq, k);
	w[6] = drec_checksum(w, words);
}

static void *disk_writer(void *arg)
{
	(void)arg;
	const uint64_t rec = disk.rec_bytes, cap_recs = DREC_BUF_BYTES / rec, disk_recs = disk.size_bytes / rec;
	const double recs_per_ns = (double)disk.rate_kibps * 1024.0 / (double)rec / 1e9;
	/* Up to 50 ms of records per batch, so a slow fdatasync is caught up without a burst. */
	uint64_t max_batch = disk.rate_kibps ? (uint64_t)(recs_per_ns * 5 * DISK_SLICE_NS) + 1 : cap_recs;
	if (max_batch > cap_recs)
		max_batch = cap_recs;
	uint64_t credit_t0 = mono_ns(), credit_done = 0;
	while (!atomic_load(&disk.stop)) {
		uint64_t batch = max_batch;
		if (disk.rate_kibps) {
			uint64_t due = (uint64_t)((double)(mono_ns() - credit_t0) * recs_per_ns);
			batch = due > credit_done ? due - credit_done : 0;
			if (batch > 20 * max_batch) {
				/* Far behind (the VM was paused): drop the backlog rather than burst. */
				credit_t0 = mono_ns();
				credit_done = 0;
				batch = 1;
			} else if (batch > max_batch) {
				batch = max_batch;
			}
		}
		uint64_t done = atomic_load(&disk.records);
		if (done + batch > disk_recs)
			batch = disk_recs - done;
		if (done >= disk_recs) {
			atomic_store(&disk.full, 1);
			break;
		}
		if (batch > 0) {
			pthread_mutex_lock(&disk.lock);
			for (uint64_t i = 0; i < batch; i++)
				drec_fill((uint64_t *)(void *)(disk.buf + i * rec), done + i);
			ssize_t n = pwrite(disk.fd, disk.buf, batch * rec, (off_t)(done * rec));
			int bad = n != (ssize_t)(batch * rec) ? (n < 0 ? errno : EIO) : fdatasync(disk.fd) != 0 ? errno : 0;
			pthread_mutex_unlock(&disk.lock);
			if (bad) {
				disk.err = bad;
				atomic_store(&disk.failed, 1);
				break;
			}
			credit_done += batch;
			atomic_store(&disk.records, done + batch);
		}
		if (disk.rate_kibps)
			sleep_ns(DISK_SLICE_NS);
	}
	atomic_store(&disk.t_stop, mono_ns());
	atomic_store(&disk.running, 0);
	return NULL;
}

static void disk_stop_writer(void)
{
	if (!disk.have_writer)
		return;
	atomic_store(&disk.stop, 1);
	pthread_join(disk.writer, NULL);
	disk.have_writer = 0;
}

/* Read back records 0..records-1 (in 1 MiB O_DIRECT reads) and classify each. */
static void disk_verify(const struct sockaddr_in *peer)
{
	const uint64_t total = atomic_load(&disk.records), rec = disk.rec_bytes;
	if (disk.fd < 0 || total == 0) {
		reply(peer, "disk verify records=0 bad=0 first_bad=-1 gaps=0 last_seq=-1 backwards=0");
		return;
	}
	char *buf = map_bytes(DREC_BUF_BYTES);
	if (!buf) {
		reply(peer, "error nomem 1 MiB");
		return;
	}
	const size_t words = rec / sizeof(uint64_t);
	const uint64_t per_read = DREC_BUF_BYTES / rec;
	uint64_t bad = 0, gaps = 0, backwards = 0, prev_ns = 0;
	long long first_bad = -1, last_seq = -1;
	int err = 0;
	for (uint64_t at = 0; at < total && !err; at += per_read) {
		uint64_t n = total - at < per_read ? total - at : per_read;
		ssize_t got = pread(disk.fd, buf, n * rec, (off_t)(at * rec));
		if (got != (ssize_t)(n * rec)) {
			err = got < 0 ? errno : EIO;
			break;
		}
		for (uint64_t i = 0; i < n; i++) {
			const uint64_t *w = (const uint64_t *)(const void *)(buf + i * rec), slot = at + i;
			if (w[0] != DREC_MAGIC || w[1] != boot_id_raw || w[2] != disk.run_id || w[5] != rec || w[6] != drec_checksum(w, words)) {
				if (first_bad < 0)
					first_bad = (long long)slot;
				bad++;
				continue;
			}
			/* A well-formed record in the wrong place: the sequence is broken there. */
			if (w[3] != slot)
				gaps++;
			if (w[4] < prev_ns)
				backwards++;
			prev_ns = w[4];
			if ((long long)w[3] > last_seq)
				last_seq = (long long)w[3];
		}
	}
	munmap(buf, DREC_BUF_BYTES);
	if (err)
		reply(peer, "error disk %s read: %s", disk.dev, strerror(err));
	else
		reply(peer, "disk verify records=%" PRIu64 " bad=%" PRIu64 " first_bad=%lld gaps=%" PRIu64 " last_seq=%lld backwards=%" PRIu64, total, bad,
		      first_bad, gaps, last_seq, backwards);
}

static void *disk_control(void *arg)
{
	(void)arg;
	deferred.on = 1;
	const struct sockaddr_in *peer = &disk_job.peer;
	if (disk_job.op == K_STOP) {
		disk_stop_writer();
		reply(peer, "ok");
	} else if (disk_job.op == K_VERIFY) {
		disk_verify(peer);
	} else if (disk_job.op == K_CORRUPT) {
		/* For tests of the checks themselves: flip one record's payload on the disk. */
		const uint64_t rec = disk.rec_bytes;
		if (disk.fd < 0 || disk_job.seq >= atomic_load(&disk.records)) {
			reply(peer, "error record %" PRIu64 " has not been written (records=%" PRIu64 ")", disk_job.seq, atomic_load(&disk.records));
		} else {
			char *buf = map_bytes(rec);
			int err = 0;
			if (!buf) {
				err = ENOMEM;
			} else {
				pthread_mutex_lock(&disk.lock);
				errno = 0;
				if (pread(disk.fd, buf, rec, (off_t)(disk_job.seq * rec)) != (ssize_t)rec)
					err = errno ? errno : EIO;
				((uint64_t *)(void *)buf)[DREC_HDR_WORDS] ^= 0xFFFFFFFFFFFFFFFFull;
				if (!err && (pwrite(disk.fd, buf, rec, (off_t)(disk_job.seq * rec)) != (ssize_t)rec || fdatasync(disk.fd) != 0))
					err = errno ? errno : EIO;
				pthread_mutex_unlock(&disk.lock);
				munmap(buf, rec);
			}
			if (err)
				reply(peer, "error disk %s corrupt: %s", disk.dev, strerror(err));
			else
				reply(peer, "ok");
		}
	} else {
		disk_stop_writer();
		if (disk.fd >= 0)
			close(disk.fd);
		disk.fd = -1;
		if (!disk.buf)
			disk.buf = map_bytes(DREC_BUF_BYTES);
		char why[160];
		uint64_t size_bytes = 0;
		int fd = disk.buf ? open_data_disk(disk.dev, sizeof disk.dev, &size_bytes, why, sizeof why) : -1;
		if (!disk.buf) {
			reply(peer, "error nomem 1 MiB");
		} else if (fd < 0) {
			reply(peer, "error disk %s", why);
		} else if (size_bytes < disk_job.rec_bytes) {
			close(fd);
			reply(peer, "error disk %s holds %" PRIu64 " bytes, less than one record", disk.dev, size_bytes);
		} else {
			disk.fd = fd;
			disk.size_bytes = size_bytes;
			disk.rate_kibps = disk_job.rate_kibps;
			disk.rec_bytes = disk_job.rec_bytes;
			disk.run_id = mono_ns() * 0x9E3779B97F4A7C15ull ^ boot_id_raw;
			disk.err = 0;
			atomic_store(&disk.records, 0);
			atomic_store(&disk.full, 0);
			atomic_store(&disk.failed, 0);
			atomic_store(&disk.stop, 0);
			atomic_store(&disk.t_start, mono_ns());
			atomic_store(&disk.t_stop, 0);
			atomic_store(&disk.running, 1);
			int rc = pthread_create(&disk.writer, NULL, disk_writer, NULL);
			if (rc != 0) {
				atomic_store(&disk.running, 0);
				reply(peer, "error pthread_create %s", strerror(rc));
			} else {
				disk.have_writer = 1;
				reply(peer, "ok");
			}
		}
	}
	finish_job(&disk_busy);
	return NULL;
}

static void disk_status(const struct sockaddr_in *peer)
{
	uint64_t t0 = atomic_load(&disk.t_start), t1 = atomic_load(&disk.t_stop), n = atomic_load(&disk.records);
	if (t1 == 0)
		t1 = mono_ns();
	double s = t0 && t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
	uint64_t bytes = n * disk.rec_bytes;
	reply(peer,
	      "disk seq=%lld records=%" PRIu64 " bytes=%" PRIu64 " running=%d full=%d failed=%d error=%s dev=%s record_bytes=%u target_kibps=%u "
	      "achieved_kibps=%.1f ms=%.1f disk_bytes=%" PRIu64,
	      n ? (long long)n - 1 : -1LL, n, bytes, atomic_load(&disk.running), atomic_load(&disk.full), atomic_load(&disk.failed),
	      disk.err ? strerrorname_np(disk.err) : "none", disk.dev[0] ? disk.dev : "none", disk.rec_bytes, disk.rate_kibps,
	      s > 0 ? (double)bytes / 1024.0 / s : 0, s * 1e3, disk.size_bytes);
}

/* ---- connect: TCP reachability from inside the guest ------------------------------------- */

/*
 * One non-blocking TCP connect with a deadline, for proving what the guest can and cannot reach
 * (e.g. that it cannot open the destination host's migration port). The answer is one word:
 *   open         the handshake completed (the connection is closed again at once)
 *   refused      a RST came back (ECONNREFUSED): the host is there, nothing listens
 *   timeout      no answer before the deadline (or the kernel gave up: ETIMEDOUT), e.g. dropped
 *   unreachable  no route, or ARP/ICMP said the host cannot be reached (ENETUNREACH, EHOSTUNREACH,
 *                EHOSTDOWN); a firewall's icmp-*-prohibited rejects land here too
 * Anything else is an error reply naming the errno. Runs in its own thread (it may take up to
 * the timeout), one at a time.
 */
#define DEFAULT_CONNECT_MS 3000u
#define MAX_CONNECT_MS 600000u

static atomic_int connect_busy;
static struct {
	struct sockaddr_in to;
	unsigned timeout_ms;
	struct sockaddr_in peer;
} connect_job;

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

/* The connect's outcome as an errno (0: connected); ETIMEDOUT also when the deadline passed. */
static int tcp_connect_errno(const struct sockaddr_in *to, unsigned timeout_ms)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int err = 0;
	if (connect(fd, (const struct sockaddr *)to, sizeof *to) != 0)
		err = errno;
	if (err == EINPROGRESS) {
		const uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
		for (;;) {
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
			break;
		}
	}
	close(fd);
	return err;
}

static void *connect_run(void *arg)
{
	(void)arg;
	deferred.on = 1;
	const uint64_t t0 = mono_ns();
	int err = tcp_connect_errno(&connect_job.to, connect_job.timeout_ms);
	double ms = (double)(mono_ns() - t0) / 1e6;
	const char *word = connect_word(err);
	if (word)
		reply(&connect_job.peer, "ok connect %s %.1f", word, ms);
	else
		reply(&connect_job.peer, "error connect %s: %s", strerrorname_np(err) ? strerrorname_np(err) : "?", strerror(err));
	finish_job(&connect_busy);
	return NULL;
}

/* ---- oom: the guest-oom fault --------------------------------------------------------------- */

/*
 * The agent makes itself the OOM killer's first choice (oom_score_adj 1000, so neither iperf3 nor
 * a shell is picked; PID 1 never is), then maps and touches memory in steps until the kernel kills
 * it. Touching every page is what commits it: MAP_NORESERVE keeps the overcommit heuristic from
 * refusing a mapping first, which would leave the agent alive and the guest merely busy. The
 * console then shows the kernel's "Out of memory: Killed process N (miglab-agent)" line (pr_err,
 * so it passes `quiet`), and init prints MIGLAB-AGENT-EXIT status=137 (SIGKILL). If the kernel has
 * not killed the agent after OOM_GIVE_UP_S, the agent says so on the console and exits with
 * status 3: the fault did not happen, and the host must not be told it did.
 */
#define OOM_STEP_BYTES (8u * MIB)
#define OOM_GIVE_UP_S 120u

static atomic_int oom_started;

static void *oom_eater(void *arg)
{
	(void)arg;
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1000", 4) != 4)
		say("MIGLAB-OOM error=oom_score_adj:%s", strerror(errno));
	if (fd >= 0)
		close(fd);
	say("MIGLAB-OOM eating step_mib=%u mem_available_kib=%llu", OOM_STEP_BYTES / MIB, meminfo_kib("MemAvailable:"));
	const uint64_t t0 = mono_ns();
	uint64_t eaten = 0;
	for (;;) {
		volatile char *p = mmap(NULL, OOM_STEP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			sleep_ns(10000000ull); /* address space or map count exhausted: the touching so far must do */
		} else {
			for (size_t off = 0; off < OOM_STEP_BYTES; off += PAGE_SIZE_BYTES)
				p[off] = (char)(off >> 12 | 1);
			eaten += OOM_STEP_BYTES;
		}
		if (mono_ns() - t0 > (uint64_t)OOM_GIVE_UP_S * 1000000000ull) {
			say("MIGLAB-OOM error=not-killed eaten_mib=%" PRIu64 " after_s=%u", eaten / MIB, OOM_GIVE_UP_S);
			_exit(3);
		}
	}
	return NULL;
}

/* ---- request dispatch --------------------------------------------------------------------- */

static void handle(char *req, const struct sockaddr_in *peer)
{
	char *argv[8];
	int argc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(req, " \t\r\n", &save); tok && argc < 8; tok = strtok_r(NULL, " \t\r\n", &save))
		argv[argc++] = tok;
	if (argc == 0)
		return;
	unsigned a = 0, b = 0;
	if (strcmp(argv[0], "ping") == 0) {
		reply(peer, "pong %s %" PRIu64 " %" PRIu64, argc > 1 ? argv[1] : "-", mono_ns(), atomic_load(&hb_seq));
	} else if (strcmp(argv[0], "info") == 0) {
		/* mem_available_kib: what the guest could still give a workload without swapping or
		 * killing (the kernel's estimate), so a host can refuse a working set that cannot fit. */
		reply(peer, "info boot=%s seq=%" PRIu64 " ip=%s uptime_ms=%" PRIu64 " mem_total_kib=%llu mem_available_kib=%llu udp_bind=%s", boot_id,
		      atomic_load(&hb_seq), ip_text, uptime_ms(), meminfo_kib("MemTotal:"), meminfo_kib("MemAvailable:"), bind_text);
	} else if (strcmp(argv[0], "bench") == 0 && argc >= 2) {
		int mem = strcmp(argv[1], "mem") == 0, disk = strcmp(argv[1], "disk") == 0;
		if (!mem && !disk && strcmp(argv[1], "cpu") != 0) {
			reply(peer, "error usage: bench cpu <ms> | bench mem <MiB> <ms> | bench disk <MiB>");
			return;
		}
		if (mem ? argc != 4 || parse_uint(argv[2], MAX_BENCH_MIB, &a) || a == 0 || parse_uint(argv[3], MAX_BENCH_MS, &b) || b == 0
		    : disk ? argc != 3 || parse_uint(argv[2], MAX_BENCH_MIB, &a) || a == 0
			   : argc != 3 || parse_uint(argv[2], MAX_BENCH_MS, &b) || b == 0) {
			reply(peer, "error usage: bench cpu <ms> | bench mem <MiB> <ms> | bench disk <MiB> (ms 1..%u, MiB 1..%u)", MAX_BENCH_MS,
			      MAX_BENCH_MIB);
			return;
		}
		int idle = 0;
		if (!atomic_compare_exchange_strong(&bench_busy, &idle, 1)) {
			reply(peer, "error busy");
			return;
		}
		bench_job.kind = mem ? B_MEM : disk ? B_DISK : B_CPU;
		bench_job.mib = mem || disk ? a : 0;
		bench_job.ms = disk ? 0 : b;
		bench_job.peer = *peer;
		start_detached(bench_run, NULL);
	} else if (strcmp(argv[0], "dirty") == 0 && argc >= 2) {
		if (strcmp(argv[1], "status") == 0) {
			dirty_status(peer);
			return;
		}
		int op;
		if (strcmp(argv[1], "start") == 0) {
			if (argc != 5 || parse_uint(argv[2], 1u << 20, &a) || a == 0 || parse_uint(argv[3], 1u << 20, &b) ||
			    (strcmp(argv[4], "seq") != 0 && strcmp(argv[4], "random") != 0)) {
				reply(peer, "error usage: dirty start <wssMiB> <rateMiBps> <seq|random>");
				return;
			}
			op = D_START;
		} else if (strcmp(argv[1], "stop") == 0) {
			op = D_STOP;
		} else if (strcmp(argv[1], "verify") == 0) {
			op = D_VERIFY;
		} else if (strcmp(argv[1], "corrupt") == 0) {
			if (argc != 3 || parse_uint(argv[2], UINT32_MAX - 1, &a)) {
				reply(peer, "error usage: dirty corrupt <pageIndex>");
				return;
			}
			op = D_CORRUPT;
		} else {
			reply(peer, "error usage: dirty start|status|stop|verify|corrupt");
			return;
		}
		int idle = 0;
		if (!atomic_compare_exchange_strong(&dirty_busy, &idle, 1)) {
			reply(peer, "error busy");
			return;
		}
		dirty_job.op = op;
		if (op == D_START) {
			dirty_job.wss_mib = a;
			dirty_job.rate_mibps = b;
			dirty_job.random = strcmp(argv[4], "random") == 0;
		}
		if (op == D_CORRUPT)
			dirty_job.page = a;
		dirty_job.peer = *peer;
		start_detached(dirty_control, NULL);
	} else if (strcmp(argv[0], "cpu") == 0 && argc == 2 && strcmp(argv[1], "status") == 0) {
		cpu_status(peer);
	} else if (strcmp(argv[0], "cpu") == 0) {
		if (argc != 2 || (strcmp(argv[1], "start") != 0 && strcmp(argv[1], "stop") != 0)) {
			reply(peer, "error usage: cpu start|status|stop");
			return;
		}
		int idle = 0;
		if (!atomic_compare_exchange_strong(&cpu_busy, &idle, 1)) {
			reply(peer, "error busy");
			return;
		}
		cpu_job.start = strcmp(argv[1], "start") == 0;
		cpu_job.peer = *peer;
		start_detached(cpu_control, NULL);
	} else if (strcmp(argv[0], "disk") == 0 && argc == 2 && strcmp(argv[1], "status") == 0) {
		disk_status(peer);
	} else if (strcmp(argv[0], "disk") == 0) {
		int op = -1;
		unsigned rec = 4096;
		unsigned long long seq = 0;
		if (argc >= 2 && strcmp(argv[1], "start") == 0) {
			if ((argc == 3 || argc == 4) && parse_uint(argv[2], 1u << 22, &a) == 0 &&
			    (argc == 3 || (parse_uint(argv[3], DREC_BUF_BYTES, &rec) == 0 && rec >= 512 && rec % 512 == 0)))
				op = K_START;
		} else if (argc == 2 && strcmp(argv[1], "stop") == 0) {
			op = K_STOP;
		} else if (argc == 2 && strcmp(argv[1], "verify") == 0) {
			op = K_VERIFY;
		} else if (argc == 3 && strcmp(argv[1], "corrupt") == 0) {
			char *end;
			errno = 0;
			seq = strtoull(argv[2], &end, 10);
			if (errno == 0 && *end == '\0' && argv[2][0] >= '0' && argv[2][0] <= '9')
				op = K_CORRUPT;
		}
		if (op < 0) {
			reply(peer, "error usage: disk start <rateKiBps> [recordBytes] | disk status|stop|verify | disk corrupt <seq> "
				    "(rate 0 = as fast as possible, recordBytes a multiple of 512 up to 1 MiB)");
			return;
		}
		int idle = 0;
		if (!atomic_compare_exchange_strong(&disk_busy, &idle, 1)) {
			reply(peer, "error busy");
			return;
		}
		disk_job.op = op;
		disk_job.rate_kibps = a;
		disk_job.rec_bytes = rec;
		disk_job.seq = seq;
		disk_job.peer = *peer;
		start_detached(disk_control, NULL);
	} else if (strcmp(argv[0], "connect") == 0) {
		struct sockaddr_in to = { .sin_family = AF_INET };
		a = DEFAULT_CONNECT_MS;
		if ((argc != 3 && argc != 4) || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 || parse_uint(argv[2], 65535, &b) || b == 0 ||
		    (argc == 4 && (parse_uint(argv[3], MAX_CONNECT_MS, &a) || a == 0))) {
			reply(peer, "error usage: connect <IPv4> <port> [timeoutMs] (port 1..65535, timeout 1..%u ms, default %u)", MAX_CONNECT_MS,
			      DEFAULT_CONNECT_MS);
			return;
		}
		int idle = 0;
		if (!atomic_compare_exchange_strong(&connect_busy, &idle, 1)) {
			reply(peer, "error busy");
			return;
		}
		to.sin_port = htons((uint16_t)b);
		connect_job.to = to;
		connect_job.timeout_ms = a;
		connect_job.peer = *peer;
		start_detached(connect_run, NULL);
	} else if (strcmp(argv[0], "oom") == 0) {
		if (argc != 1) {
			reply(peer, "error usage: oom");
			return;
		}
		/* Answer first: once the eater runs, the agent may be gone before a reply could leave. A
		 * second `oom` while it runs is answered the same and starts nothing more. */
		reply(peer, "ok oom");
		int idle = 0;
		if (atomic_compare_exchange_strong(&oom_started, &idle, 1))
			start_detached(oom_eater, NULL);
	} else {
		reply(peer, "error unknown request: %.64s", argv[0]);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	read_cmdline();
	make_boot_id();

	udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (udp_fd < 0) {
		say("MIGLAB-AGENT-ERROR socket: %s", strerror(errno));
		return 1;
	}
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port), .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (cfg.want_ip[0]) {
		/* Listen on the lab address only, never on a wildcard. Without miglab.ip there is no
		 * network but lo, and the wildcard is all there is to bind. */
		char want[sizeof cfg.want_ip];
		snprintf(want, sizeof want, "%s", cfg.want_ip);
		char *slash = strchr(want, '/');
		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, want, &addr.sin_addr) != 1) {
			say("MIGLAB-AGENT-ERROR miglab.ip=%s is not an IPv4 address", cfg.want_ip);
			return 1;
		}
		/* init adds the address before it starts us, but the bind must not depend on that (a NIC
		 * that came up late): IP_FREEBIND takes the address before any interface has it. */
		int one = 1;
		if (setsockopt(udp_fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) != 0)
			say("MIGLAB-AGENT-ERROR setsockopt IP_FREEBIND: %s", strerror(errno));
	}
	inet_ntop(AF_INET, &addr.sin_addr, bind_text, sizeof bind_text);
	if (bind(udp_fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		say("MIGLAB-AGENT-ERROR bind udp %s:%u: %s", bind_text, cfg.port, strerror(errno));
		return 1;
	}

	start_detached(heartbeat, NULL);

	if (cfg.want_ip[0]) {
		/* init configured the address before starting us; wait briefly in case it is still
		 * settling, and report what is really there. */
		for (int i = 0; i < 50 && !read_back_ip(ip_text, sizeof ip_text); i++)
			sleep_ns(100000000ull);
		if (!read_back_ip(ip_text, sizeof ip_text))
			snprintf(ip_text, sizeof ip_text, "none");
	}
	/* The control port (control.c): only when the kernel command line asks (a container host). */
	control_start(say);
	say("MIGLAB-READY ip=%s boot=%s", ip_text, boot_id);

	char buf[1024];
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		ssize_t n = recvfrom(udp_fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &plen);
		if (n < 0) {
			if (errno != EINTR)
				sleep_ns(10000000ull); /* e.g. ENOMEM: do not spin */
			continue;
		}
		if (plen != sizeof peer || peer.sin_family != AF_INET)
			continue;
		buf[n] = '\0';
		handle(buf, &peer);
	}
}
