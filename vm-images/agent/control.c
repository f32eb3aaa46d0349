/*
 * The agent's control port: commands run in the guest on request of the host, over a virtio-serial
 * port (name org.miglab.ctl) that QEMU connects to a unix socket next to its monitors. Only a
 * container host (`miglab.ctl=1` on the kernel command line) serves it; the base guest never opens
 * it. Why a port and not the UDP service: a unix socket on the QEMU host can be opened only by that
 * host's root (as QMP), whereas the UDP service answers anything in the lab subnet; and a byte
 * stream carries an argv of any length and the output of a command, where a datagram carries 512
 * bytes.
 *
 * Framing: netstrings (`<len>:<bytes>,`). Every message is one netstring whose bytes are a sequence
 * of netstrings, its fields. Requests (host -> guest):
 *   ping  ID                                   -> pong ID
 *   exec  ID TIMEOUT_MS ARGV...                -> done ID EXIT SIGNAL WALL_US UTIME_US STIME_US MAXRSS_KIB TIMED_OUT STDOUT STDERR
 *   spawn ID NEWPID LOG ARGV...                -> started ID PID STARTTIME   (later: exited ID PID EXIT SIGNAL MAXRSS_KIB)
 *   kill  ID PID STARTTIME SIGNAL              -> killed ID
 *   softdirty ID PID                          -> dirty ID PAGES PROCESSES
 * and `error ID MESSAGE` when a request cannot be carried out. exec runs the program in its own
 * session, stdin /dev/null, and returns the first 64 KiB of stdout and of stderr; on the deadline
 * its process group is killed (TIMED_OUT=1). spawn starts a long-lived program with its output in
 * LOG (or /dev/null for `-`); NEWPID=1 starts it as PID 1 of a new PID namespace (a container's
 * init, so CRIU restores it without its PIDs clashing on another guest). kill signals a process
 * only if its start time (field 22 of /proc/PID/stat) is still STARTTIME, so a recycled PID is
 * never hit. softdirty counts the pages whose soft-dirty bit (bit 55 of /proc/PID/pagemap) is set,
 * over PID and every process under it: the pages written since CRIU last cleared the bits (a
 * pre-dump with --track-mem does), which is what the mem-rounds strategy watches. Argv[0] is looked
 * up in PATH.
 *
 * Processes: the agent becomes a child subreaper, so what a command leaves behind (a tree that
 * `criu restore -d` restored, a spawned container after its starter exited) is reparented to the
 * agent and reaped by its reaper thread rather than left a zombie of PID 1 (busybox sh does not
 * reap). The reaper records each exit with its rusage from wait4 for whoever waits on that pid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define PORT_NAME "org.miglab.ctl"
#define MAX_FRAME (1u << 20)
#define MAX_CAPTURE (64u * 1024u)
#define MAX_FIELDS 512
#define MAX_JOBS 1024
#define UNCLAIMED 256

static int port_fd = -1;
static void (*say)(const char *fmt, ...);
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- replies -------------------------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
};

static void out_put(struct out *o, const char *data, size_t n)
{
	if (o->len + n + 32 > o->cap) {
		size_t cap = (o->cap ? o->cap * 2 : 256);
		while (cap < o->len + n + 32)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (!b)
			return; /* the message goes out short; the host sees a framing error */
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, data, n);
	o->len += n;
}

/* One field: a netstring. */
static void field(struct out *o, const char *data, size_t n)
{
	char head[24];
	int h = snprintf(head, sizeof head, "%zu:", n);
	out_put(o, head, (size_t)h);
	out_put(o, data, n);
	out_put(o, ",", 1);
}

static void fieldf(struct out *o, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	field(o, text, n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* the host went away: the message is lost with the connection */
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Send the fields in `o` as one message, and free them. */
static void send_msg(struct out *o)
{
	struct out frame = { 0 };
	field(&frame, o->buf ? o->buf : "", o->len);
	pthread_mutex_lock(&write_lock);
	if (port_fd >= 0 && frame.buf)
		write_all(port_fd, frame.buf, frame.len);
	pthread_mutex_unlock(&write_lock);
	free(frame.buf);
	free(o->buf);
	o->buf = NULL;
	o->len = o->cap = 0;
}

static void send_error(const char *id, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	struct out o = { 0 };
	field(&o, "error", 5);
	field(&o, id, strlen(id));
	field(&o, text, strlen(text));
	send_msg(&o);
}

/* ---- children and the reaper ------------------------------------------------------------------ */

struct job {
	pid_t pid;
	int done;
	int status;
	struct rusage ru;
	int detached; /* spawn: report `exited` and free the slot ourselves */
	char id[64];
};

static struct job jobs[MAX_JOBS];
static struct {
	pid_t pid;
	int status;
	struct rusage ru;
} unclaimed[UNCLAIMED];
static unsigned unclaimed_next;
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;

static int64_t tv_us(struct timeval tv)
{
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void send_exited(const struct job *j)
{
	struct out o = { 0 };
	field(&o, "exited", 6);
	field(&o, j->id, strlen(j->id));
	fieldf(&o, "%d", (int)j->pid);
	fieldf(&o, "%d", WIFEXITED(j->status) ? WEXITSTATUS(j->status) : -1);
	fieldf(&o, "%d", WIFSIGNALED(j->status) ? WTERMSIG(j->status) : 0);
	fieldf(&o, "%ld", j->ru.ru_maxrss);
	send_msg(&o);
}

/* Called with jobs_lock held: a slot for pid, with an exit the reaper already saw filled in. */
static struct job *claim(pid_t pid, const char *id, int detached)
{
	for (int i = 0; i < MAX_JOBS; i++) {
		if (jobs[i].pid != 0)
			continue;
		struct job *j = &jobs[i];
		memset(j, 0, sizeof *j);
		j->pid = pid;
		j->detached = detached;
		snprintf(j->id, sizeof j->id, "%s", id);
		for (unsigned k = 0; k < UNCLAIMED; k++) {
			if (unclaimed[k].pid == pid) {
				j->done = 1;
				j->status = unclaimed[k].status;
				j->ru = unclaimed[k].ru;
				unclaimed[k].pid = 0;
				break;
			}
		}
		return j;
	}
	return NULL;
}

static void *reaper(void *arg)
{
	(void)arg;
	for (;;) {
		int status;
		struct rusage ru;
		pid_t pid = wait4(-1, &status, 0, &ru);
		if (pid < 0) {
			struct timespec ts = { 0, 50000000 }; /* no children yet (ECHILD) */
			nanosleep(&ts, NULL);
			continue;
		}
		struct job done = { 0 };
		int report = 0;
		pthread_mutex_lock(&jobs_lock);
		struct job *j = NULL;
		for (int i = 0; i < MAX_JOBS && !j; i++)
			if (jobs[i].pid == pid)
				j = &jobs[i];
		if (j) {
			j->done = 1;
			j->status = status;
			j->ru = ru;
			if (j->detached) {
				done = *j;
				report = 1;
				j->pid = 0;
			}
			pthread_cond_broadcast(&jobs_cond);
		} else {
			/* Not (yet) claimed: a spawned init whose pid the starter has not passed on yet, or an
			 * orphan (reaped and forgotten when the ring wraps). */
			unclaimed[unclaimed_next % UNCLAIMED].pid = pid;
			unclaimed[unclaimed_next % UNCLAIMED].status = status;
			unclaimed[unclaimed_next % UNCLAIMED].ru = ru;
			unclaimed_next++;
		}
		pthread_mutex_unlock(&jobs_lock);
		if (report)
			send_exited(&done);
	}
	return NULL;
}

/* A small text file (/proc) into buf, NUL-terminated: its length, or -1. */
static ssize_t read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Field 22 of /proc/PID/stat (clock ticks since boot), or 0 when the process is gone. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_text(path, buf, sizeof buf) < 0)
		return 0;
	char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	if (!p)
		return 0;
	unsigned long long v = 0;
	int fieldno = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
		if (++fieldno == 22) {
			v = strtoull(tok, NULL, 10);
			break;
		}
	}
	return v;
}

/* ---- requests ------------------------------------------------------------------------------------ */

struct request {
	int argc;
	char *argv[MAX_FIELDS + 1];
	char *storage;
};

static void free_request(struct request *r)
{
	free(r->storage);
	free(r);
}

/* The open-file limit the agent started with: restored in what it runs. */
static struct rlimit child_nofile = { 1024, 4096 };

/*
 * Each exec in flight holds three pipes (stdout, stderr, the exec error): a batch of 400 CRIU dumps
 * at once needs 2,400 descriptors, and at the default 1,024 the agent's own pipe() failed with
 * "Too many open files" for 178 of them (a limit of the harness, not of CRIU or the guest).
 */
static void raise_nofile(void)
{
	struct rlimit now;
	if (getrlimit(RLIMIT_NOFILE, &now) != 0)
		return;
	child_nofile = now;
	struct rlimit want = { 65536, 65536 };
	if (setrlimit(RLIMIT_NOFILE, &want) != 0)
		say("MIGLAB-CTL warning=nofile errno=%d", errno);
}

/* In a forked child: redirect stdio and exec argv, or report the errno on `errfd` and exit 127. */
static void exec_child(char **argv, int out, int err, int errfd)
{
	/* What we run gets the limit the guest gives any program, not the one the agent raised. */
	setrlimit(RLIMIT_NOFILE, &child_nofile);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0)
		dup2(null, 0);
	dup2(out, 1);
	dup2(err, 2);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	int e = errno;
	if (write(errfd, &e, sizeof e) < 0) {
		/* nothing more to tell */
	}
	_exit(127);
}

static void *do_exec(void *arg)
{
	struct request *r = arg;
	const char *id = r->argv[1];
	long timeout_ms = strtol(r->argv[2], NULL, 10);
	char **argv = &r->argv[3];
	int outp[2], errp[2], failp[2];
	if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(failp, O_CLOEXEC)) {
		send_error(id, "pipe: %s", strerror(errno));
		free_request(r);
		return NULL;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&jobs_lock);
	pid_t pid = fork();
	struct job *j = NULL;
	if (pid == 0) {
		setsid();
		exec_child(argv, outp[1], errp[1], failp[1]);
	}
	if (pid > 0)
		j = claim(pid, id, 0);
	pthread_mutex_unlock(&jobs_lock);
	close(outp[1]);
	close(errp[1]);
	close(failp[1]);
	if (pid < 0) {
		send_error(id, "fork: %s", strerror(errno));
		close(outp[0]);
		close(errp[0]);
		close(failp[0]);
		free_request(r);
		return NULL;
	}
	char *cap[2] = { malloc(MAX_CAPTURE), malloc(MAX_CAPTURE) };
	size_t got[2] = { 0, 0 };
	int fds[2] = { outp[0], errp[0] };
	int open_fds = 2, timed_out = 0;
	long long reaped_at_ms = -1;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long long el_ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (!timed_out && timeout_ms > 0 && el_ms >= timeout_ms) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
		pthread_mutex_lock(&jobs_lock);
		int done = j ? j->done : 1;
		pthread_mutex_unlock(&jobs_lock);
		if (done && reaped_at_ms < 0)
			reaped_at_ms = el_ms;
		/* Output is read until both pipes close, or a moment after the program exited (something it
		 * started may hold them open: a daemon it forked). */
		if (open_fds == 0 || (reaped_at_ms >= 0 && el_ms - reaped_at_ms > 200))
			break;
		struct pollfd p[2];
		int np = 0;
		for (int k = 0; k < 2; k++)
			if (fds[k] >= 0)
				p[np++] = (struct pollfd){ .fd = fds[k], .events = POLLIN };
		if (poll(p, (nfds_t)np, 50) <= 0)
			continue;
		for (int q = 0; q < np; q++) {
			if (!(p[q].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int k = p[q].fd == fds[0] ? 0 : 1;
			char tmp[4096];
			ssize_t n = read(fds[k], tmp, sizeof tmp);
			if (n <= 0) {
				close(fds[k]);
				fds[k] = -1;
				open_fds--;
				continue;
			}
			size_t keep = (size_t)n;
			if (got[k] + keep > MAX_CAPTURE)
				keep = MAX_CAPTURE - got[k];
			if (cap[k] && keep > 0) {
				memcpy(cap[k] + got[k], tmp, keep);
				got[k] += keep;
			}
		}
	}
	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	/* The exit status: the reaper fills it in. */
	pthread_mutex_lock(&jobs_lock);
	while (j && !j->done)
		pthread_cond_wait(&jobs_cond, &jobs_lock);
	struct job fin = j ? *j : (struct job){ 0 };
	if (j)
		j->pid = 0;
	pthread_mutex_unlock(&jobs_lock);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int exec_errno = 0;
	if (read(failp[0], &exec_errno, sizeof exec_errno) != (ssize_t)sizeof exec_errno)
		exec_errno = 0;
	close(failp[0]);
	if (exec_errno && cap[1]) {
		int n = snprintf(cap[1], MAX_CAPTURE, "cannot run %s: %s\n", argv[0], strerror(exec_errno));
		got[1] = n > 0 ? (size_t)n : 0;
	}
	struct out o = { 0 };
	field(&o, "done", 4);
	field(&o, id, strlen(id));
	fieldf(&o, "%d", WIFEXITED(fin.status) ? WEXITSTATUS(fin.status) : -1);
	fieldf(&o, "%d", WIFSIGNALED(fin.status) ? WTERMSIG(fin.status) : 0);
	fieldf(&o, "%lld", (long long)((t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000));
	fieldf(&o, "%lld", (long long)tv_us(fin.ru.ru_utime));
	fieldf(&o, "%lld", (long long)tv_us(fin.ru.ru_stime));
	fieldf(&o, "%ld", fin.ru.ru_maxrss);
	fieldf(&o, "%d", timed_out);
	field(&o, cap[0] ? cap[0] : "", cap[0] ? got[0] : 0);
	field(&o, cap[1] ? cap[1] : "", cap[1] ? got[1] : 0);
	send_msg(&o);
	free(cap[0]);
	free(cap[1]);
	free_request(r);
	return NULL;
}

static void do_spawn(struct request *r)
{
	const char *id = r->argv[1];
	int newpid = strcmp(r->argv[2], "1") == 0;
	const char *log = r->argv[3];
	char **argv = &r->argv[4];
	int logfd = strcmp(log, "-") == 0 ? open("/dev/null", O_WRONLY | O_CLOEXEC)
					  : open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0) {
		send_error(id, "cannot open %s: %s", log, strerror(errno));
		return;
	}
	int pidp[2], failp[2];
	if (pipe2(pidp, O_CLOEXEC) || pipe2(failp, O_CLOEXEC)) {
		send_error(id, "pipe: %s", strerror(errno));
		close(logfd);
		return;
	}
	pid_t starter = fork();
	if (starter == 0) {
		setsid();
		if (!newpid) {
			pid_t me = getpid();
			if (write(pidp[1], &me, sizeof me) < 0) {
				/* the agent sees no pid and reports the failure */
			}
			exec_child(argv, logfd, logfd, failp[1]);
		}
		if (unshare(CLONE_NEWPID) != 0) {
			int e = errno;
			if (write(failp[1], &e, sizeof e) < 0) {
				/* nothing more to tell */
			}
			_exit(127);
		}
		/* The next child is PID 1 of the new namespace; this starter exits at once, so that child
		 * is reparented to the agent, the subreaper. */
		pid_t c = fork();
		if (c == 0) {
			/* Its own session too: CRIU refuses a tree whose session leader is outside its
			 * PID namespace (the starter's session is). */
			setsid();
			exec_child(argv, logfd, logfd, failp[1]);
		}
		if (c > 0 && write(pidp[1], &c, sizeof c) < 0) {
			/* the agent sees no pid and reports the failure */
		}
		_exit(c > 0 ? 0 : 127);
	}
	close(logfd);
	close(pidp[1]);
	close(failp[1]);
	pid_t pid = -1;
	if (starter < 0 || read(pidp[0], &pid, sizeof pid) != (ssize_t)sizeof pid)
		pid = -1;
	close(pidp[0]);
	/* failp is close-on-exec: it reads EOF once the program runs, or the errno that stopped it. */
	int e = 0;
	if (starter > 0 && read(failp[0], &e, sizeof e) == (ssize_t)sizeof e) {
		close(failp[0]);
		send_error(id, "cannot run %s: %s", argv[0], strerror(e));
		return;
	}
	if (pid < 0) {
		send_error(id, starter < 0 ? "fork: %s" : "the starter gave no pid%s", starter < 0 ? strerror(errno) : "");
		close(failp[0]);
		return;
	}
	close(failp[0]);
	unsigned long long st = start_time(pid);
	pthread_mutex_lock(&jobs_lock);
	struct job *j = claim(pid, id, 1);
	struct job fin = { 0 };
	int already = 0;
	if (j && j->done) {
		fin = *j;
		j->pid = 0;
		already = 1;
	}
	pthread_mutex_unlock(&jobs_lock);
	struct out o = { 0 };
	field(&o, "started", 7);
	field(&o, id, strlen(id));
	fieldf(&o, "%d", (int)pid);
	fieldf(&o, "%llu", st);
	send_msg(&o);
	if (already)
		send_exited(&fin);
}

static void do_kill(struct request *r)
{
	const char *id = r->argv[1];
	pid_t pid = (pid_t)strtol(r->argv[2], NULL, 10);
	unsigned long long want = strtoull(r->argv[3], NULL, 10);
	int sig = (int)strtol(r->argv[4], NULL, 10);
	if (pid <= 1) {
		send_error(id, "refusing to signal pid %d", (int)pid);
		return;
	}
	unsigned long long st = start_time(pid);
	if (st == 0 || st != want) {
		send_error(id, "no process %d started at %llu (gone or another process now)", (int)pid, want);
		return;
	}
	if (kill(pid, sig) != 0) {
		send_error(id, "kill %d: %s", (int)pid, strerror(errno));
		return;
	}
	struct out o = { 0 };
	field(&o, "killed", 6);
	field(&o, id, strlen(id));
	send_msg(&o);
}

/* Soft-dirty pages of one process: every mapping of /proc/PID/maps, one pagemap entry per page. */
static long long softdirty_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	FILE *maps = fopen(path, "re");
	if (!maps)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	int pm = open(path, O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		fclose(maps);
		return -1;
	}
	long long dirty = 0;
	char line[512];
	uint64_t buf[512];
	while (fgets(line, sizeof line, maps)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx", &start, &end) != 2 || strstr(line, "[vsyscall]"))
			continue;
		for (unsigned long page = start / 4096; page < end / 4096;) {
			size_t want = end / 4096 - page;
			if (want > 512)
				want = 512;
			ssize_t n = pread(pm, buf, want * 8, (off_t)(page * 8));
			if (n <= 0)
				break;
			for (ssize_t k = 0; k < n / 8; k++)
				if (buf[k] & (1ull << 55))
					dirty++;
			page += (unsigned long)(n / 8);
		}
	}
	close(pm);
	fclose(maps);
	return dirty;
}

/* PID and every process under it (by the ppid field of /proc/N/stat), up to `max`. */
static int tree_of(pid_t root, pid_t *out, int max)
{
	int n = 0;
	out[n++] = root;
	for (int added = 1; added && n < max;) {
		added = 0;
		DIR *d = opendir("/proc");
		if (!d)
			break;
		for (struct dirent *e; (e = readdir(d)) && n < max;) {
			pid_t p = (pid_t)atoi(e->d_name);
			if (p <= 0)
				continue;
			int known = 0;
			for (int i = 0; i < n && !known; i++)
				known = out[i] == p;
			if (known)
				continue;
			char path[64], buf[512];
			snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
			if (read_text(path, buf, sizeof buf) < 0)
				continue;
			char *q = strrchr(buf, ')');
			int ppid = 0;
			if (!q || sscanf(q + 1, " %*c %d", &ppid) != 1)
				continue;
			for (int i = 0; i < n; i++) {
				if (out[i] == ppid) {
					out[n++] = p;
					added = 1;
					break;
				}
			}
		}
		closedir(d);
	}
	return n;
}

static void do_softdirty(struct request *r)
{
	const char *id = r->argv[1];
	pid_t root = (pid_t)strtol(r->argv[2], NULL, 10);
	pid_t tree[256];
	int n = tree_of(root, tree, 256);
	long long total = 0;
	int counted = 0;
	for (int i = 0; i < n; i++) {
		long long d = softdirty_of(tree[i]);
		if (d >= 0) {
			total += d;
			counted++;
		}
	}
	if (counted == 0) {
		send_error(id, "no process %d (or its pagemap cannot be read)", (int)root);
		return;
	}
	struct out o = { 0 };
	field(&o, "dirty", 5);
	field(&o, id, strlen(id));
	fieldf(&o, "%lld", total);
	fieldf(&o, "%d", counted);
	send_msg(&o);
}

static void *detached_thread_start(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return rc == 0 ? arg : NULL;
}

/* One message's bytes -> fields; the request takes ownership of `data`. */
static struct request *parse_fields(char *data, size_t len)
{
	struct request *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->storage = data;
	size_t i = 0;
	while (i < len && r->argc < MAX_FIELDS) {
		size_t n = 0, j = i;
		while (j < len && data[j] >= '0' && data[j] <= '9' && j - i < 9)
			n = n * 10 + (size_t)(data[j++] - '0');
		if (j == i || j >= len || data[j] != ':' || j + 1 + n >= len || data[j + 1 + n] != ',')
			break;
		data[j + 1 + n] = '\0'; /* the ',' becomes the terminator: fields are C strings */
		r->argv[r->argc++] = &data[j + 1];
		i = j + 2 + n;
	}
	r->argv[r->argc] = NULL;
	if (i != len) {
		free(r);
		return NULL;
	}
	return r;
}

static void handle(char *data, size_t len)
{
	struct request *r = parse_fields(data, len);
	if (!r) {
		free(data);
		send_error("-", "malformed message (fields are netstrings)");
		return;
	}
	const char *op = r->argc > 0 ? r->argv[0] : "";
	const char *id = r->argc > 1 ? r->argv[1] : "-";
	if (strcmp(op, "ping") == 0 && r->argc == 2) {
		struct out o = { 0 };
		field(&o, "pong", 4);
		field(&o, id, strlen(id));
		send_msg(&o);
	} else if (strcmp(op, "exec") == 0 && r->argc >= 4) {
		if (detached_thread_start(do_exec, r))
			return; /* do_exec frees r */
		send_error(id, "pthread_create failed");
	} else if (strcmp(op, "spawn") == 0 && r->argc >= 5) {
		do_spawn(r);
	} else if (strcmp(op, "kill") == 0 && r->argc == 5) {
		do_kill(r);
	} else if (strcmp(op, "softdirty") == 0 && r->argc == 3) {
		do_softdirty(r);
	} else {
		send_error(id, "unknown request %s with %d fields", op, r->argc);
	}
	free_request(r);
}

/* /dev/<vportNpM> of the port named PORT_NAME, from /sys/class/virtio-ports/<dev>/name. */
static int find_port(char *dev, size_t n)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return 0;
	int found = 0;
	for (struct dirent *e; !found && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], name[64] = "";
		snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, name, sizeof name - 1);
		close(fd);
		if (r > 0 && name[r - 1] == '\n')
			r--;
		name[r > 0 ? r : 0] = '\0';
		if (strcmp(name, PORT_NAME) == 0) {
			snprintf(dev, n, "/dev/%s", e->d_name);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void *serve(void *arg)
{
	(void)arg;
	char dev[300];
	int tries = 0;
	/* virtio_console binds the port a moment after init loaded it. */
	while (!find_port(dev, sizeof dev)) {
		if (++tries == 100) {
			say("MIGLAB-CTL error=no-port name=%s", PORT_NAME);
			return NULL;
		}
		sleep_ms(100);
	}
	port_fd = open(dev, O_RDWR | O_CLOEXEC);
	if (port_fd < 0) {
		say("MIGLAB-CTL error=open dev=%s errno=%d", dev, errno);
		return NULL;
	}
	say("MIGLAB-CTL ready dev=%s", dev);
	char *buf = malloc(MAX_FRAME + 32);
	size_t have = 0;
	for (;;) {
		ssize_t n = read(port_fd, buf + have, MAX_FRAME + 32 - have);
		if (n <= 0) {
			/* No host connected (the read returns 0 until one is): drop any partial message, as
			 * the next host starts afresh. */
			have = 0;
			sleep_ms(n < 0 && errno == EINTR ? 0 : 50);
			continue;
		}
		have += (size_t)n;
		for (;;) {
			size_t len = 0, j = 0;
			while (j < have && buf[j] >= '0' && buf[j] <= '9' && j < 9)
				len = len * 10 + (size_t)(buf[j++] - '0');
			if (j == have)
				break; /* the length is still arriving */
			if (j == 0 || buf[j] != ':' || len > MAX_FRAME) {
				have = 0; /* not a netstring: resynchronise on the next write */
				send_error("-", "framing error: expected <len>:<bytes>,");
				break;
			}
			if (have < j + 1 + len + 1)
				break;
			if (buf[j + 1 + len] != ',') {
				have = 0;
				send_error("-", "framing error: message not ended by ','");
				break;
			}
			char *msg = malloc(len + 1);
			if (msg) {
				memcpy(msg, buf + j + 1, len);
				msg[len] = '\0';
				handle(msg, len);
			}
			size_t used = j + 2 + len;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
	}
	return NULL;
}

static int ctl_wanted(void)
{
	char buf[4096];
	if (read_text("/proc/cmdline", buf, sizeof buf) < 0)
		return 0;
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
		if (strcmp(tok, "miglab.ctl=1") == 0)
			return 1;
	return 0;
}

/* Called by the agent's main() (which declares it) once the agent is up. */
void control_start(void (*say_fn)(const char *fmt, ...));
void control_start(void (*say_fn)(const char *fmt, ...))
{
	say = say_fn;
	if (!ctl_wanted())
		return;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		say("MIGLAB-CTL warning=subreaper errno=%d", errno);
	raise_nofile();
	pthread_t t;
	if (pthread_create(&t, NULL, reaper, NULL) != 0 || pthread_detach(t) != 0) {
		say("MIGLAB-CTL error=reaper-thread");
		return;
	}
	if (pthread_create(&t, NULL, serve, NULL) != 0 || pthread_detach(t) != 0)
		say("MIGLAB-CTL error=serve-thread");
}
