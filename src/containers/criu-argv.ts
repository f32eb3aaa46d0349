// criu 3.17.1 command lines, built by pure functions in the style of machine/argv.ts: every group
// of arguments carries the reason it is there, so a report can print each command explained.
// Options checked against v3.17.1's Documentation/criu.txt and criu/config.c (long_opts).
//
// What is dumped: a plain process tree whose root is PID 1 of its own pid namespace, started
// detached (the root calls setsid() itself) with stdio on /dev/null, sharing the guest's mount
// and network namespaces; inside it a child, a pipe between the two, a log file opened on the
// NFS export (/ckpt) and a UDP socket. criu handles all of that without options: the pipe is
// internal (both ends in the tree), /dev/null and the log are files it reopens by path (so /ckpt
// must be mounted at the same path on the destination), and the pid namespace goes with its
// init. What is left out on purpose, and why, is in CRIU_LEFT_OUT below.
import { UsageError } from '../errors.js';
import type { ArgGroup, ExplainedCommand } from '../util/explained-command.js';

/** Where the container-host image puts criu; absolute because the guest's control port execs with execv, which searches no PATH. */
export const CRIU_BINARY = '/usr/sbin/criu';

/** An address and port of a criu page server (or of a lazy dump serving pages). */
export interface CriuEndpoint {
  readonly address: string;
  readonly port: number;
}

/** Options of every criu command that reads or writes images. */
export interface CriuImages {
  /** -D: the images directory. */
  readonly imagesDir: string;
  /** -W: where criu chdirs and writes stats, logs and pidfiles; defaults to imagesDir. */
  readonly workDir?: string;
  /** -o: criu's log, relative to the work dir unless absolute. */
  readonly logFile: string;
}

export interface CriuDumpOptions extends CriuImages {
  /** The tree's root: the outer pid of its pid namespace's init. */
  readonly pid: number;
  /** pre-dump (memory only, the tree keeps running) or dump (everything, the tree is killed). */
  readonly preDump: boolean;
  /** The previous round's images dir, RELATIVE to imagesDir (e.g. ../r1): criu links `parent` to it. */
  readonly prevImagesDir?: string;
  /** Soft-dirty tracking; defaults to on for a pre-dump, a dump with a parent and a dump that leaves the tree running. */
  readonly trackMem?: boolean;
  /** pre-dump only: how the pages are read (criu's default is splice). */
  readonly preDumpMode?: 'splice' | 'read';
  /** Send the pages to a page server on the destination instead of the images dir. */
  readonly pageServer?: CriuEndpoint;
  /** Lazy migration (plan 1.1): write no pages; this dump then serves them on this endpoint. dump only. */
  readonly lazyPages?: CriuEndpoint;
  /** dump only: keep the tree running after the dump (a checkpoint, not a migration). */
  readonly leaveRunning?: boolean;
  /** Only when the root is not its own session leader; restore must pass it too. */
  readonly shellJob?: boolean;
  /** Dump established TCP connections; off: the workload holds none, and a connected socket should fail the dump. */
  readonly tcpEstablished?: boolean;
}

export interface CriuRestoreOptions extends CriuImages {
  /** The restored root's pid (the namespace init's new outer pid), relative to the work dir unless absolute. */
  readonly pidFile: string;
  readonly detach: true;
  readonly shellJob?: boolean;
  readonly tcpEstablished?: boolean;
  /** Lazy migration (plan 1.1): restore without memory; needs `criu lazy-pages` in the same work dir. */
  readonly lazyPages?: boolean;
}

export interface CriuPageServerOptions extends CriuImages {
  /** The destination's own address to listen on; never a wildcard. */
  readonly address: string;
  readonly port: number;
  /** The previous round's dir, RELATIVE to imagesDir: the page server needs the `parent` link too. */
  readonly prevImagesDir?: string;
  /** Fork into the background once listening: the command returning means the dump may connect. */
  readonly daemon?: { readonly pidFile: string };
  /** Punch the pages a round rewrites out of the earlier rounds' images, so the rounds together hold about one copy of the memory. */
  readonly autoDedup?: boolean;
}

export interface CriuLazyPagesOptions extends CriuImages {
  /** The source's `dump --lazy-pages` endpoint. */
  readonly source: CriuEndpoint;
  /** Fork into the background once lazy-pages.socket listens: the command returning means restore may start. */
  readonly daemon?: { readonly pidFile: string };
}

/** The kernel features `criu check --feature` knows in 3.17.1 (criu/cr-check.c feature_list). */
export const CRIU_FEATURES = [
  'mnt_id', 'mem_dirty_track', 'aio_remap', 'timerfd', 'tun', 'tun_ns', 'userns', 'fdinfo_lock',
  'seccomp_suspend', 'seccomp_filters', 'loginuid', 'cgroupns', 'autofs', 'tcp_half_closed',
  'compat_cr', 'uffd', 'uffd-noncoop', 'can_map_vdso', 'sk_ns', 'sk_unix_file', 'net_diag_raw',
  'nsid', 'link_nsid', 'kcmp_epoll', 'timens', 'external_net_ns', 'clone3_set_tid', 'newifindex',
  'nftables', 'has_ipt_legacy', 'pidfd_store', 'ns_pid', 'apparmor_stacking',
  'network_lock_nftables', 'sockopt_buf_lock', 'memfd_hugetlb', 'move_mount_set_group', 'openat2',
  'get_rseq_conf',
] as const;
export type CriuFeature = (typeof CRIU_FEATURES)[number];

/** Options criu has that these commands leave out on purpose, and why (for the report). */
export const CRIU_LEFT_OUT: readonly { readonly option: string; readonly why: string }[] = [
  {
    option: '--shell-job',
    why: 'the root is its own session leader (the spawn calls setsid() in the namespace init, after the fork into the new pid namespace, not before) and its stdio is /dev/null, so there is no tty to carry; criu refuses a root that is not a session leader ("The root process N is not a session leader. Consider using --shell-job")',
  },
  { option: '--ext-unix-sk', why: 'the tree has no unix socket to anything outside it (stdio is /dev/null, the heartbeat pipe has both ends inside); an external one should fail the dump, not be cut' },
  { option: '--tcp-established', why: 'the workload speaks UDP only; criu refuses a connected TCP socket without it ("Connected TCP socket"), which is the right failure' },
  {
    option: '--network-lock',
    why: 'the tree shares the guest\'s network namespace and holds no TCP connection, so criu locks nothing (criu/net.c network_lock returns early without a dumped net namespace); /etc/criu/default.conf in the image (plan 2) picks nftables for when it would',
  },
  { option: '--external, --enable-fs', why: 'the mount namespace is not dumped (the tree shares the guest\'s), so files are reopened by path: /ckpt must be mounted at the same path on the destination' },
  { option: '--file-locks, --link-remap', why: 'the workload takes no file locks and keeps no deleted file open' },
  { option: '--cpu-cap', why: 'the defaults (fpu and ins checked on dump, fpu on restore) hold: both container hosts run the same CPU model and the same image' },
  { option: '--manage-cgroups, --freeze-cgroup', why: 'the tree lives in the root cgroup; criu freezes it with ptrace, its default' },
  {
    option: 'IP_FREEBIND',
    why: 'criu 3.17.1 binds a restored IPv4 socket before it restores IP_FREEBIND (criu/sk-inet.c open_inet_sk), so a UDP socket bound to an IPv4 address the destination lacks fails to restore ("Can\'t bind inet socket"); the workload binds 0.0.0.0',
  },
];

function bad(problem: string, hint?: string): never {
  throw new UsageError(problem, hint);
}

function checkPort(what: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) bad(`${what} must be a TCP port from 1 to 65535, got ${port}`);
}

function checkText(what: string, value: string): void {
  if (value.trim() === '' || value.includes('\0')) bad(`${what} must be a non-empty string, got ${JSON.stringify(value)}`);
}

function checkEndpoint(what: string, e: CriuEndpoint): void {
  checkText(`${what} address`, e.address);
  checkPort(`${what} port`, e.port);
}

function checkPrev(prev: string | undefined): void {
  if (prev === undefined) return;
  checkText('the previous images dir', prev);
  if (prev.startsWith('/')) bad(`criu's --prev-images-dir must be relative to the images dir, got ${prev}`, 'give the previous round as ../r1 (criu links `parent` to it, and an absolute link may not resolve on the destination)');
}

type Add = (why: string, ...args: string[]) => void;

/** The group list and the `add(why, ...args)` that fills it, as machine/argv.ts does. */
function groups(): { add: Add; done: () => ExplainedCommand } {
  const g: ArgGroup[] = [];
  return {
    add: (why, ...args) => g.push({ args, why }),
    done: () => ({ argv: g.flatMap((x) => x.args), explained: g }),
  };
}

/** --address A --port P, as dump, page-server and lazy-pages all spell an endpoint. */
function endpointArgs(e: CriuEndpoint): string[] {
  return ['--address', e.address, '--port', String(e.port)];
}

/** --daemon --pidfile: the command returns once `ready` holds, which is how the caller knows it may go on. */
function addDaemon(add: Add, daemon: { readonly pidFile: string } | undefined, ready: string, next: string): void {
  if (!daemon) return;
  checkText('the daemon\'s pid file', daemon.pidFile);
  add(`fork into the background once ${ready}, write the daemon's pid, and exit: when this command returns, ${next}`, '--daemon', '--pidfile', daemon.pidFile);
}

/** -D, -W, -o, -v4: the part every image-handling command shares. */
function imageArgs(add: Add, o: CriuImages, imagesWhy: string): void {
  checkText('the images dir', o.imagesDir);
  checkText('the log file', o.logFile);
  add(imagesWhy, '-D', o.imagesDir);
  if (o.workDir !== undefined) {
    checkText('the work dir', o.workDir);
    add('the work dir: criu chdirs here and writes its stats file, log and pidfile here (the default is the images dir)', '-W', o.workDir);
  }
  add('criu\'s log (relative to the work dir unless absolute); the host reads it afterwards, so a failure is explained in criu\'s own words', '-o', o.logFile);
  add('log level 4 (debug): every step criu takes, and every error, goes into that log', '-v4');
}

/** `criu dump` or `criu pre-dump` of the workload's tree. */
export function criuDump(o: CriuDumpOptions): ExplainedCommand {
  if (!Number.isInteger(o.pid) || o.pid < 1) bad(`the tree's root pid must be a whole number >= 1, got ${o.pid}`);
  checkPrev(o.prevImagesDir);
  if (o.preDump && o.leaveRunning) bad('--leave-running is for dump only', 'a pre-dump always leaves the tree running');
  if (o.preDump && o.lazyPages) bad('--lazy-pages is for dump only', 'a lazy migration has no pre-dump rounds');
  if (!o.preDump && o.preDumpMode) bad('--pre-dump-mode is for pre-dump only');
  if (o.pageServer && o.lazyPages) bad('pages go either to a page server or lazily to the destination, not both');
  if (o.pageServer) checkEndpoint('the page server', o.pageServer);
  if (o.lazyPages) checkEndpoint('the lazy pages endpoint', o.lazyPages);
  const trackMem = o.trackMem ?? (o.preDump || o.prevImagesDir !== undefined || o.leaveRunning === true);
  if (!trackMem && o.preDump) bad('a pre-dump needs memory tracking', 'leave trackMem unset (criu turns it on for a pre-dump anyway)');
  if (!trackMem && o.prevImagesDir !== undefined) bad('a dump with a previous images dir needs memory tracking', 'without --track-mem criu writes every page again (criu/mem.c page_in_parent)');

  const { add, done } = groups();
  add('criu 3.17.1 from Debian 12, in the container-host image', CRIU_BINARY);
  if (o.preDump) {
    add('pre-dump: freeze the tree briefly, copy its memory, let it run on; the next round and the final dump then write only the pages dirtied since', 'pre-dump');
  } else {
    add(
      o.leaveRunning
        ? 'dump: write every image of the tree (memory, files, sockets, pids)'
        : 'dump: write every image of the tree (memory, files, sockets, pids), then kill it, so its UDP port and log are free for the restore on the destination',
      'dump',
    );
  }
  add(
    'the tree\'s root: the outer pid of the workload\'s pid-namespace init; criu takes the pid namespace with it (the root is its init), so the restored tree keeps its inner pids and cannot collide with the destination\'s',
    '-t',
    String(o.pid),
  );
  imageArgs(add, o, o.pageServer ? 'this round\'s images dir: every image but the pages, which go to the page server' : 'this round\'s images dir (one directory per round)');
  add('also print the stats (Frozen time: N us, pages written, ...) on stdout at the end; the stats-dump file holds them either way', '--display-stats');
  if (trackMem) {
    add(
      o.preDump
        ? 'soft-dirty memory tracking: criu clears the bits, so the next round writes only pages written since (a pre-dump turns it on anyway; passed so the command says so)'
        : o.prevImagesDir !== undefined
          ? 'soft-dirty memory tracking: with a parent, criu skips the pages unchanged since the last round only when it is on (criu/mem.c page_in_parent); without it every page is written again'
          : 'soft-dirty memory tracking: clears the bits, so a later dump of the tree that is left running writes only what changed',
      '--track-mem',
    );
  }
  if (o.prevImagesDir !== undefined) {
    add(
      `the previous round's images, relative to this images dir as criu requires (it links \`parent\` to it): pages unchanged since are not written again`,
      '--prev-images-dir',
      o.prevImagesDir,
    );
  }
  if (o.preDumpMode === 'read') {
    add('read mode: criu copies the pages with process_vm_readv instead of the parasite\'s vmsplice, which criu.txt says cuts frozen time and memory pressure', '--pre-dump-mode', 'read');
  } else if (o.preDumpMode === 'splice') {
    add('splice mode (criu\'s default, passed so the report says which): the parasite splices the pages into pipes while the tree is frozen', '--pre-dump-mode', 'splice');
  }
  if (o.pageServer) {
    add(
      `send the pages to \`criu page-server\` on the destination at ${o.pageServer.address}:${o.pageServer.port} (this round's port) instead of the images dir; only the pages cross the network this way`,
      '--page-server',
      ...endpointArgs(o.pageServer),
    );
  }
  if (o.lazyPages) {
    add(
      `lazy migration (plan 1.1): write no pages; after the dump this criu stays and serves them on ${o.lazyPages.address}:${o.lazyPages.port} to the destination's lazy-pages daemon until every page is fetched. If this guest dies before that, the container is lost`,
      '--lazy-pages',
      ...endpointArgs(o.lazyPages),
    );
  }
  if (o.leaveRunning) add('leave the tree running after the dump (criu.txt calls it dangerous: the tree may change what the images point at); a checkpoint, not a migration', '--leave-running');
  if (o.shellJob) add('the root is not its own session leader: criu refuses to dump it otherwise, and the restore must pass --shell-job too', '--shell-job');
  if (o.tcpEstablished) add('dump established TCP connections (criu locks them until the restore)', '--tcp-established');
  return done();
}

/** `criu restore -d` on the destination. */
export function criuRestore(o: CriuRestoreOptions): ExplainedCommand {
  checkText('the pid file', o.pidFile);
  const { add, done } = groups();
  add('criu 3.17.1 from Debian 12, in the container-host image', CRIU_BINARY);
  add('restore the tree from the images: its pid namespace, processes, pipe, files and socket', 'restore');
  imageArgs(add, o, 'the final dump\'s images dir (criu follows its `parent` links to the pre-dump rounds)');
  add('also print the stats (Restore time: N us, pages restored, ...) on stdout at the end; the stats-restore file holds them either way', '--display-stats');
  add('detach: criu exits once the tree runs; the tree is reparented to the guest agent (the subreaper), which reaps it', '-d');
  add('write the restored root\'s pid (the namespace init\'s new outer pid; relative to the work dir unless absolute): the host needs it to kill, dump or sample the tree', '--pidfile', o.pidFile);
  if (o.shellJob) add('the dump was taken with --shell-job, so the restore must pass it too', '--shell-job');
  if (o.tcpEstablished) add('restore the established TCP connections the dump saved', '--tcp-established');
  if (o.lazyPages) {
    add(
      'lazy migration (plan 1.1): restore without the memory; the lazy-pages daemon, listening on lazy-pages.socket in this same work dir, fills each page on first touch and the rest in the background',
      '--lazy-pages',
    );
  }
  return done();
}

/** `criu page-server` on the destination: one per dump or pre-dump round. */
export function criuPageServer(o: CriuPageServerOptions): ExplainedCommand {
  checkEndpoint('the page server', o);
  checkPrev(o.prevImagesDir);
  const { add, done } = groups();
  add('criu 3.17.1 from Debian 12, in the container-host image', CRIU_BINARY);
  add('receive one dump\'s or pre-dump\'s pages and write them into this images dir; it exits when that dump disconnects, so each round gets its own (as criu\'s zdtm.py does)', 'page-server');
  imageArgs(add, o, 'this round\'s images dir on the destination: the pages land here');
  add('listen on the destination\'s own lab address only (never a wildcard), on this round\'s port (one server per round)', ...endpointArgs(o));
  if (o.prevImagesDir !== undefined) {
    add(
      'the previous round\'s dir, relative to this images dir: the page server needs its own `parent` link to tell which pages the dump skipped (criu/page-xfer.c open_parent)',
      '--prev-images-dir',
      o.prevImagesDir,
    );
  }
  if (o.autoDedup) {
    add(
      'punch each page this round receives out of the earlier rounds\' images (criu/page-xfer.c write_pagemap_loc: dedup_one_iovec on the parent): the rounds, kept in the destination\'s memory, then hold about one copy of the tree\'s memory instead of one per round',
      '--auto-dedup',
    );
  }
  addDaemon(add, o.daemon, 'its socket listens', 'the dump may connect');
  return done();
}

/** `criu lazy-pages` on the destination (lazy migration, plan 1.1). */
export function criuLazyPages(o: CriuLazyPagesOptions): ExplainedCommand {
  checkEndpoint('the lazy dump', o.source);
  const { add, done } = groups();
  add('criu 3.17.1 from Debian 12, in the container-host image', CRIU_BINARY);
  add(
    'lazy migration (plan 1.1): the userfaultfd daemon on the destination; it takes the restored tree\'s page faults and fetches the pages from the source. It and `restore --lazy-pages` must share the work dir (they meet on lazy-pages.socket there), best a local one',
    'lazy-pages',
  );
  imageArgs(add, o, 'the lazy dump\'s images dir (every image but the pages), as the restore reads it');
  add(`fetch the pages from the source's \`dump --lazy-pages\` at ${o.source.address}:${o.source.port}`, '--page-server', ...endpointArgs(o.source));
  addDaemon(add, o.daemon, 'lazy-pages.socket listens', 'the restore may start');
  return done();
}

/**
 * `criu check` (category 1), or `criu check --feature NAME` for one feature. One feature per
 * command: criu 3.17.1 checks only the last --feature it is given (check_add_feature keeps one).
 */
export function criuCheck(feature?: CriuFeature): ExplainedCommand {
  if (feature !== undefined && !(CRIU_FEATURES as readonly string[]).includes(feature)) {
    bad(`criu 3.17.1 has no feature "${feature}" to check`, `use one of ${CRIU_FEATURES.join(', ')}`);
  }
  const { add, done } = groups();
  add('criu 3.17.1 from Debian 12, in the container-host image', CRIU_BINARY);
  if (feature === undefined) {
    add('check the kernel features every dump and restore needs (category 1): "Looks good.", or "Does not look good." after the reason', 'check');
  } else {
    add(`check the one feature "${feature}": "${feature} is supported", or criu's reason and exit code 1`, 'check', '--feature', feature);
  }
  return done();
}

/** Round k (1-based) of a migration: its images dir name. */
export function criuRoundDir(round: number): string {
  if (!Number.isInteger(round) || round < 1) bad(`a round is a whole number >= 1, got ${round}`);
  return `r${round}`;
}

/** The --prev-images-dir of round k: the round before it, as seen from its images dir; none for round 1. */
export function criuParentOf(round: number): string | undefined {
  criuRoundDir(round);
  return round === 1 ? undefined : `../${criuRoundDir(round - 1)}`;
}

/** The page server's port in round k: one server, and one port, per round, from basePort up. */
export function criuRoundPort(basePort: number, round: number): number {
  criuRoundDir(round);
  const port = basePort + round - 1;
  checkPort(`round ${round}'s page server port (base ${basePort})`, port);
  return port;
}
