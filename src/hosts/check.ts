// `miglab hosts check`: before anything starts on the machines of a hosts file, what a run needs
// of each of them, tried for real over SSH: login and root, QEMU (the same on both sides), KVM
// (or TCG said plainly) and the CPU flags a KVM guest sees, the bridge and a tap on it, the
// shared disk's NFS export opened by qemu-img from both sides, the migration port free on the
// destination and reachable from the source, and the clocks' offset. Each finding is a line of
// the doctor's shape (src/doctor/checks.ts) with the command that fixes it; everything made to
// try something (a tap, a probe disk, a listener) is removed before the check returns.
import { randomBytes } from 'node:crypto';
import { join, posix, resolve } from 'node:path';
import { checkNfsDriver, checkQemu, fail, ok, runChecks, warn, type CheckResult, type DoctorReport, type NamedCheck } from '../doctor/checks.js';
import { describeError } from '../errors.js';
import type { Host, RunResult } from '../host/host.js';
import { shellCommand } from '../host/shell-quote.js';
import { SshHost, type SshTarget } from '../host/ssh.js';
import { firstExisting, installLine, missingPrograms } from '../lab/deps.js';
import type { HostRole } from '../lab/spec.js';
import { qemuRelease } from '../machine/quirks.js';
import { parseMachineTypes } from '../qemu/machine-types.js';
import { listeningPorts, NFS_BLOCK_DRIVER_PATHS } from '../preflight.js';
import { pollUntil, type WaitOptions } from '../util/deadline.js';
import { measureClockOffset, offsetBetween, SYSTEM_CLOCK, type ControllerClock } from './clock.js';
import { bridgeMembers, tryBridgeMember } from './bridge.js';
import { hostsLabPrefix } from './lab.js';
import { distinctHosts, sshTarget, type HostSpec, type HostsSpec } from './file.js';
import { ensureServedExport, ganeshaPortHolders, GANESHA_PORTS, liveServer, READER_PROGRAMS, removeMadeDir, serveProblem, servedExportOf, takeDownServedExport, type ServedExport } from './nfs-export.js';

/** A host the check can end its connection to. */
export type ClosableHost = Host & { close(): void };

export interface HostsCheckOptions {
  /** The port the destination listens on for migrations. */
  readonly port: number;
  /** Limit of each SSH connection. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Readings of each clock (the best is kept). */
  readonly clockReadings?: number;
  readonly clock?: ControllerClock;
  /** How a host is reached: SshHost.connect (units give a fake). */
  readonly connect?: (target: SshTarget, opts: WaitOptions) => Promise<ClosableHost>;
}

/** Offsets between the clocks beyond this are worth fixing at the source (NTP), though runs correct them. */
const CLOCK_OFFSET_WARN_MS = 1000;
/** Downtimes of an idle guest are tens of ms: an offset known less well than this blurs them. */
const CLOCK_UNCERTAINTY_WARN_MS = 10;
/** Limit of each command the check runs on a host. */
const STEP_TIMEOUT_MS = 15_000;
/** Linux's CAP_NET_ADMIN (taps, bridge ports): bit 12 of CapEff. */
const CAP_NET_ADMIN = 12n;

const GUEST_ROLES = ['src', 'dst'] as const;

/** Connect to each machine of the spec, timing it; a machine that does not answer leaves its roles out. */
async function connectEach(spec: HostsSpec, opts: HostsCheckOptions): Promise<{ hosts: Partial<Record<HostRole, Host>>; checks: CheckResult[]; close(): void }> {
  const connect = opts.connect ?? ((t: SshTarget, o: WaitOptions) => SshHost.connect(t, o));
  const hosts: Partial<Record<HostRole, Host>> = {};
  const checks: CheckResult[] = [];
  const made: ClosableHost[] = [];
  for (const { host: h, roles } of distinctHosts(spec)) {
    const login = `${h.user}@${h.address}:${h.port}${h.proxy ? ` (through ${h.proxy.join(' ')})` : ''}`;
    const started = performance.now();
    try {
      const host = await connect(sshTarget(h), { timeoutMs: opts.timeoutMs, signal: opts.signal });
      made.push(host);
      const ms = Math.round(performance.now() - started);
      checks.push(ok(`${roles[0]} ssh`, `${login} answered in ${ms} ms`));
      for (const role of roles) hosts[role] = host;
      for (const role of roles.slice(1)) checks.push(ok(`${role} ssh`, `the same login on the same machine as ${roles[0]}: one connection`));
    } catch (err) {
      // The error names the login already when SshHost made it; the roles sharing it are one problem, one line.
      const why = describeError(err);
      const also = roles.length > 1 ? ` (the ${roles.slice(1).join(' and ')} host too)` : '';
      checks.push(fail(`${roles[0]} ssh`, `${why.includes(h.address) ? why : `cannot log in to ${login}: ${why}`}${also}`, sshFix(h, why, spec.source), 'COMMAND_FAILED'));
    }
  }
  return { hosts, checks, close: () => made.forEach((h) => h.close()) };
}

/** What to do about a failed login, from what ssh2 said. */
function sshFix(h: HostSpec, why: string, source: string): string {
  const at = `${h.user}@${h.address}`;
  if (/authentication methods failed/i.test(why)) return h.key ? `put ${h.key}.pub in ~${h.user}/.ssh/authorized_keys on ${h.address} (ssh-copy-id -i ${h.key}.pub -p ${h.port} ${at})` : `add your key to the agent (ssh-add) and its public half to ~${h.user}/.ssh/authorized_keys on ${h.address}`;
  if (/verification failed|host denied/i.test(why)) return `the host key is not the one hostKey in ${source} names: compare with ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on ${h.address}`;
  // Through a proxy, a connection that never got to SSH is the proxy's doing: point at it, and at the ssh line that uses it.
  if (h.proxy && /ENOENT|EPIPE|before handshake|proxy said/i.test(why)) {
    return `check the proxy command: it must carry the connection to sshd on its stdin/stdout; try it: ssh -o ProxyCommand=${shellCommand([shellCommand(h.proxy)])} -p ${h.port} ${at} true`;
  }
  return `check the address and that sshd runs there and lets you in: ssh -p ${h.port} ${at} true`;
}

const runOpts = (signal?: AbortSignal) => ({ reject: false, timeoutMs: STEP_TIMEOUT_MS, signal });

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

async function checkRoot(role: HostRole, host: Host, signal?: AbortSignal): Promise<CheckResult> {
  const name = `${role} root`;
  const uid = (await host.run(['id', '-u'], runOpts(signal))).stdout.trim();
  if (uid === '0') return ok(name, 'logged in as root');
  const user = (await host.run(['id', '-un'], runOpts(signal))).stdout.trim() || `uid ${uid}`;
  const status = (await host.run(['cat', '/proc/self/status'], runOpts(signal))).stdout;
  const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
  const fix = `log in as root: user: root for ${role} in the hosts file, with your public key in /root/.ssh/authorized_keys there`;
  if ((capEff >> CAP_NET_ADMIN) & 1n) return warn(name, `logged in as ${user} (uid ${uid}), not root, with CAP_NET_ADMIN: taps can be made, but the run directory and the export must be writable by ${user}`, fix);
  return fail(name, `logged in as ${user} (uid ${uid}): not root and without CAP_NET_ADMIN, so no tap can join the bridge and QEMU cannot open one`, fix, 'NOT_ROOT');
}

/** QEMU started under KVM with no machine at all: it opens /dev/kvm and makes a VM, then quits when asked over QMP. */
const KVM_INIT_ARGV = ['qemu-system-x86_64', '-accel', 'kvm', '-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-qmp', 'stdio'];
const KVM_INIT_QMP = '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n';

/**
 * /dev/kvm opened read-write, then QEMU started under KVM: a /dev/kvm that opens is not yet a KVM
 * QEMU can use (on some machines its ioctls fail). Whether a guest kernel then boots under it is
 * decided by the run's own probe (src/machine/accel.ts).
 */
async function checkKvm(role: HostRole, host: Host, signal?: AbortSignal): Promise<{ usable: boolean; result: CheckResult }> {
  const name = `${role} kvm`;
  const tcg = (why: string) => ({
    usable: false,
    result: warn(name, `${why}: guests run under TCG here (slower; migration works the same)`, 'nothing needed for a run; for KVM, enable (nested) virtualisation on this machine, or log in as root'),
  });
  const r = await host.run(['sh', '-c', 'exec 3<>/dev/kvm'], runOpts(signal));
  if (r.exitCode !== 0) {
    if (/No such file/i.test(r.stderr)) return tcg('there is no /dev/kvm (no KVM on this machine, or a VM without nested virtualisation)');
    if (/Permission denied/i.test(r.stderr)) return tcg('/dev/kvm exists but this login may not open it');
    return tcg(`/dev/kvm does not open (${firstLine(r.stderr) || `exit ${r.exitCode}`})`);
  }
  const q = await host.run(KVM_INIT_ARGV, { ...runOpts(signal), input: KVM_INIT_QMP });
  if (q.exitCode !== 0) return tcg(`/dev/kvm opens, but QEMU cannot use it (${q.stderr.trim().split('\n').at(-1)?.replace(/^qemu-system-x86_64: /, '') || `exit ${q.exitCode}`})`);
  return { usable: true, result: ok(name, '/dev/kvm opens and QEMU starts under KVM: guests run under KVM (the run still boots its probe guest to be sure)') };
}

async function checkBridge(role: HostRole, host: Host, bridge: string, signal?: AbortSignal): Promise<CheckResult> {
  const name = `${role} bridge`;
  const r = await host.run(['ip', '-j', 'link', 'show', 'type', 'bridge'], runOpts(signal));
  const links = (r.exitCode === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : []) as Array<{ ifname: string; flags?: string[] }>;
  const link = links.find((l) => l.ifname === bridge);
  if (!link) {
    const others = links.map((l) => l.ifname).join(', ');
    return fail(name, `no bridge ${bridge} (bridges here: ${others || 'none'})`, `make it: ip link add ${bridge} type bridge && ip link set ${bridge} up, and move the host's address onto it; or name an existing bridge in the hosts file`, 'LAB_STATE');
  }
  // A tap is what each guest's network is: try one, named so nothing else has it, removed at once.
  const tap = `mlchk${randomBytes(4).toString('hex')}`;
  const add = await host.run(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap'], runOpts(signal));
  let removed: RunResult | undefined;
  if (add.exitCode !== 0) return fail(name, `${bridge} exists, but no tap can be made: ${firstLine(add.stderr)}`, 'modprobe tun (and check that /dev/net/tun exists), as root', 'LAB_STATE');
  const joined = await host.run(['ip', 'link', 'set', 'dev', tap, 'master', bridge], runOpts(signal)).finally(async () => {
    removed = await host.run(['ip', 'link', 'del', 'dev', tap], runOpts(signal));
  });
  if (removed && removed.exitCode !== 0) return fail(name, `the trial tap ${tap} could not be removed: ${firstLine(removed.stderr)}`, `ip link del ${tap} on ${host.name}`, 'LAB_STATE');
  if (joined.exitCode !== 0) return fail(name, `a tap cannot join ${bridge}: ${firstLine(joined.stderr)}`, `check ${bridge} on ${host.name}: ip -d link show ${bridge}`, 'LAB_STATE');
  if (!link.flags?.includes('UP')) return warn(name, `${bridge} exists but is down; a tap joined it and was removed`, `ip link set ${bridge} up`);
  return ok(name, `${bridge} is up; a tap joined it and was removed`);
}

/** Runs give QEMU `-machine pc` when both sides run the same QEMU, else the older one's versioned type (src/qemu/pair.ts). */
const RUN_MACHINE = 'pc';

function listSome(items: readonly string[], max = 6): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

async function compareQemu(src: Host, dst: Host, signal?: AbortSignal): Promise<CheckResult> {
  const name = 'qemu src/dst';
  let versions: string[];
  try {
    versions = [(await qemuRelease(src)).line, (await qemuRelease(dst)).line];
  } catch (err) {
    return warn(name, `not compared: ${describeError(err)}`, 'install QEMU on both first (the lines above)');
  }
  // Asked here rather than through machineTypesOf (src/qemu/pair.ts), so that Ctrl-C stops the check.
  const [a, b] = [
    parseMachineTypes((await src.run(['qemu-system-x86_64', '-machine', 'help'], runOpts(signal))).stdout),
    parseMachineTypes((await dst.run(['qemu-system-x86_64', '-machine', 'help'], runOpts(signal))).stdout),
  ];
  const [pcSrc, pcDst] = [a.aliases.get(RUN_MACHINE) ?? RUN_MACHINE, b.aliases.get(RUN_MACHINE) ?? RUN_MACHINE];
  const sameRelease = versions[0] === versions[1];
  const fix = `install the same QEMU release on both (src: ${versions[0]}; dst: ${versions[1]})`;
  if (pcSrc !== pcDst) {
    const both = [pcSrc, pcDst].filter((t) => a.names.includes(t) && b.names.includes(t));
    if (both.length === 0) return fail(name, `-machine ${RUN_MACHINE} is ${pcSrc} on src and ${pcDst} on dst, and neither QEMU knows the other's: no machine type both can run`, fix, 'MISSING_DEPENDENCY');
    return warn(name, `different releases (src: ${versions[0]}; dst: ${versions[1]}): -machine ${RUN_MACHINE} is ${pcSrc} on src and ${pcDst} on dst, so runs pin the older one's (--machine-type auto: ${both.join(' or ')}, which both know)`, fix);
  }
  const onlySrc = a.names.filter((n) => !b.names.includes(n));
  const onlyDst = b.names.filter((n) => !a.names.includes(n));
  const differ = [onlySrc.length ? `only src has ${listSome(onlySrc)}` : '', onlyDst.length ? `only dst has ${listSome(onlyDst)}` : ''].filter(Boolean).join('; ');
  if (!sameRelease) return warn(name, `different releases (src: ${versions[0]}; dst: ${versions[1]}); -machine ${RUN_MACHINE} is ${pcSrc} on both${differ ? `; ${differ}` : ''}`, fix);
  if (differ) return warn(name, `the same release (${versions[0]}) with different machine types: ${differ}`, fix);
  return ok(name, `the same QEMU on both (${versions[0]}), the same ${a.names.length} machine types (-machine ${RUN_MACHINE} is ${pcSrc})`);
}

async function cpuFlags(host: Host, signal?: AbortSignal): Promise<Set<string>> {
  const info = (await host.run(['cat', '/proc/cpuinfo'], runOpts(signal))).stdout;
  return new Set(/^flags\s*:\s*(.*)$/m.exec(info)?.[1]?.trim().split(/\s+/) ?? []);
}

async function compareCpuFlags(src: Host, dst: Host, kvm: Readonly<Record<'src' | 'dst', boolean>>, signal?: AbortSignal): Promise<CheckResult> {
  const name = 'cpu flags';
  if (!kvm.src || !kvm.dst) return ok(name, `not compared: with ${kvm.src || kvm.dst ? `KVM on ${kvm.src ? 'src' : 'dst'} only` : 'no KVM'}, guests run under TCG, which emulates the same CPU on both sides`);
  const [a, b] = [await cpuFlags(src, signal), await cpuFlags(dst, signal)];
  const onlySrc = [...a].filter((f) => !b.has(f)).sort();
  const onlyDst = [...b].filter((f) => !a.has(f)).sort();
  if (onlySrc.length === 0 && onlyDst.length === 0) return ok(name, `the same ${a.size} CPU flags on both: a KVM guest sees the same CPU after migrating`);
  const differ = [onlySrc.length ? `only src has ${listSome(onlySrc, 10)}` : '', onlyDst.length ? `only dst has ${listSome(onlyDst, 10)}` : ''].filter(Boolean).join('; ');
  return warn(name, `the CPUs differ: ${differ}; a guest given -cpu host may use what dst lacks`, 'give guests a CPU model both hosts have (migrate --cpu MODEL), not host');
}

/** A probe disk made in the export on the server host, opened by qemu-img through nfs:// from src and dst, then removed. */
async function checkStorage(spec: HostsSpec, hosts: Partial<Record<HostRole, Host>>, signal?: AbortSignal): Promise<CheckResult[]> {
  const { storage } = spec;
  const server = hosts[storage.server];
  if (!server) return [];
  const file = `miglab-check-${randomBytes(4).toString('hex')}.qcow2`;
  const path = join(storage.dir, file);
  const url = `${storage.nfs.replace(/\/+$/, '')}/${file}`;
  const made = await server.run(['qemu-img', 'create', '-q', '-f', 'qcow2', path, '1M'], runOpts(signal));
  if (made.exitCode !== 0) {
    return [fail(`${storage.server} storage`, `cannot make a disk in ${storage.dir} on ${storage.server}: ${firstLine(made.stderr)}`, `mkdir -p ${storage.dir} there and export it (/etc/exports: ${storage.dir} *(rw,no_root_squash,insecure), then exportfs -ra)`, 'LAB_STATE')];
  }
  const results: CheckResult[] = [];
  try {
    for (const role of GUEST_ROLES) {
      const host = hosts[role];
      if (!host) continue;
      const info = await host.run(['qemu-img', 'info', url], runOpts(signal));
      if (info.exitCode === 0) {
        results.push(ok(`${role} storage`, `qemu-img opened ${url} (made in ${storage.dir} on ${storage.server})`));
        continue;
      }
      const driver = await firstExisting(host, NFS_BLOCK_DRIVER_PATHS);
      const fix = !driver
        ? 'apt-get install -y qemu-block-extra'
        : storage.serve
          ? `let NFS (TCP ${GANESHA_PORTS.join(', ')}) from ${role} in through the firewall of ${storage.server} (${storage.serverAddress})`
          : `on ${storage.server} (${storage.serverAddress}): export ${storage.dir} to ${role}'s address with rw,no_root_squash,insecure (/etc/exports, then exportfs -ra) and let NFS (2049, 111) through its firewall`;
      results.push(fail(`${role} storage`, `qemu-img cannot open ${url}: ${firstLine(info.stderr)}`, fix, 'LAB_STATE'));
    }
  } finally {
    const rm = await server.run(['rm', '-f', '--', path], runOpts(signal));
    if (rm.exitCode !== 0) results.push(fail(`${storage.server} storage`, `the probe disk ${path} could not be removed: ${firstLine(rm.stderr)}`, `rm -f ${path} on ${server.name}`, 'LAB_STATE'));
  }
  return results;
}

/** How long serving the export for the check may take to start and answer. */
const SERVE_LIMIT_MS = 60_000;

/**
 * An export miglab serves: what serving needs on the server host (its programs, or a kernel NFS
 * server; ganesha's ports free on the address), then the probe disk opened through it from src
 * and dst. Through the lab's own server when one serves already (`lab up`); else through one
 * started for the check in a runDir of its own, stopped and removed (with the directory, when it
 * made it) before the check returns: the check leaves no server running.
 */
async function checkServedStorage(spec: HostsSpec, hosts: Partial<Record<HostRole, Host>>, signal?: AbortSignal): Promise<CheckResult[]> {
  const { storage } = spec;
  const { src, dst } = hosts;
  const server = hosts[storage.server];
  if (!server || !src || !dst) return [];
  const name = `${storage.server} nfs serve`;
  const x = servedExportOf(spec, { src, dst, client: hosts.client ?? server, [storage.server]: server }, posix.join(spec.runDir, hostsLabPrefix(resolve(spec.source))))!;
  const problem = await serveProblem(x);
  if (problem) return [fail(name, problem.problem, problem.fix, 'MISSING_DEPENDENCY')];
  const results: CheckResult[] = [];
  for (const { role, host } of x.readers) {
    const missing = await missingPrograms(host, READER_PROGRAMS);
    if (missing.length) results.push(fail(`${role} nfs-ls`, 'nfs-ls is missing: miglab waits with it until the export it serves answers here', installLine(missing), 'MISSING_DEPENDENCY'));
  }
  if (results.length) return results;
  const live = await liveServer(x);
  if (live) return [ok(name, `this lab serves ${live.dir} already (${live.kind}${live.pid ? `, pid ${live.pid}` : ''}): the check opens the probe disk through it`), ...(await checkStorage(spec, hosts, signal))];
  if (x.kind === 'ganesha') {
    const held = await ganeshaPortHolders(x, { timeoutMs: STEP_TIMEOUT_MS, signal });
    if (held.length) return [fail(name, `the NFS ports on ${x.address} are taken: ${held.join('; ')}`, `stop what holds them on ${storage.server} (a system rpcbind: systemctl stop rpcbind.socket rpcbind), or use serve: kernel if it is the kernel's NFS server`, 'LAB_STATE')];
  }
  const trial: ServedExport = { ...x, runDir: posix.join(spec.runDir, `check-${randomBytes(4).toString('hex')}`) };
  try {
    try {
      const started = await ensureServedExport(trial, { timeoutMs: SERVE_LIMIT_MS, signal });
      results.push(ok(name, `${started.line.replace(/^\w+: /, '')}: started for the check, stopped after it`));
    } catch (err) {
      return [fail(name, `cannot serve ${storage.dir} from ${storage.server}: ${describeError(err)}`, `fix what it says on ${server.name}`, 'LAB_STATE')];
    }
    return [...results, ...(await checkStorage(spec, hosts, signal))];
  } finally {
    const down = await takeDownServedExport(trial);
    if (down.madeDir) await removeMadeDir(trial, down.dir);
    await server.remove(trial.runDir);
  }
}

/** Bash connects to /dev/tcp/HOST/PORT itself: no program beyond bash and coreutils' timeout is needed on src. */
const CONNECT_SCRIPT = 'exec 3<>"/dev/tcp/$1/$2"';
/** How long src tries to connect: a firewall that drops (rather than refuses) makes it wait this long. */
const CONNECT_LIMIT_S = 5;

/** The port free on dst, then a QEMU listening there as a migration's destination does, and src connecting to it. */
async function checkMigrationPort(spec: HostsSpec, src: Host, dst: Host, port: number, signal?: AbortSignal): Promise<CheckResult[]> {
  const address = spec.migration.address;
  if ((await listeningPorts(dst)).has(port)) {
    return [fail('dst port', `something listens on port ${port} on dst already`, `ss -tlnp 'sport = :${port}' on ${dst.name} names it: stop it, or give another --port`, 'LAB_STATE')];
  }
  const results = [ok('dst port', `port ${port} is free`)];
  const name = 'src->dst port';
  const listener = dst.spawn(['qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none', '-incoming', `tcp:${address}:${port}`]);
  try {
    const state = await pollUntil('the trial listener on dst', async () => (listener.hasExited ? 'exited' : (await listeningPorts(dst)).has(port) ? 'listening' : undefined), { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 100, signal });
    if (state === 'exited') {
      results.push(fail(name, `QEMU on dst cannot listen on ${address}:${port}: ${firstLine(listener.tail(3)) || 'it exited'}`, `give migration.address an address dst has (ip -br addr on ${dst.name})`, 'LAB_STATE'));
      return results;
    }
    const c = await src.run(['timeout', String(CONNECT_LIMIT_S), 'bash', '-c', CONNECT_SCRIPT, 'miglab-port-check', address, String(port)], { ...runOpts(signal), timeoutMs: (CONNECT_LIMIT_S + 5) * 1000 });
    const fix = `let TCP port ${port} from src in on dst's firewall (e.g. nft add rule inet filter input tcp dport ${port} accept, or ufw allow ${port}/tcp)`;
    if (c.exitCode === 0) results.push(ok(name, `src connected to ${address}:${port}, where a QEMU on dst listened as a migration's destination does`));
    else if (c.exitCode === 124) results.push(fail(name, `src's connection to ${address}:${port} got no answer in ${CONNECT_LIMIT_S} s (a firewall drops it, or no route)`, fix, 'LAB_STATE'));
    else results.push(fail(name, `src cannot connect to ${address}:${port}: ${firstLine(c.stderr).replace(/^.*: /, '') || `exit ${c.exitCode}`}`, fix, 'LAB_STATE'));
    return results;
  } finally {
    await listener.stop(2000);
  }
}

async function checkClocks(src: Host, dst: Host, opts: HostsCheckOptions): Promise<CheckResult> {
  const n = opts.clockReadings ?? 5;
  const d = offsetBetween(await measureClockOffset(src, n, opts.clock ?? SYSTEM_CLOCK), await measureClockOffset(dst, n, opts.clock ?? SYSTEM_CLOCK));
  const found = `dst's clock is ${Math.abs(d.offsetMs).toFixed(1)} ms ${d.offsetMs >= 0 ? 'ahead of' : 'behind'} src's (± ${d.uncertaintyMs.toFixed(1)} ms, best of ${n} readings each); runs correct STOP->RESUME downtimes by it`;
  if (Math.abs(d.offsetMs) > CLOCK_OFFSET_WARN_MS) return warn('clock', found, 'keep both clocks on NTP: timedatectl set-ntp true on each (or chronyc makestep once)');
  if (d.uncertaintyMs > CLOCK_UNCERTAINTY_WARN_MS) return warn('clock', `${found}: known too loosely for downtimes of a few ms`, 'run miglab from a machine nearer the hosts (a shorter SSH round trip)');
  return ok('clock', found);
}

/**
 * For a bridge miglab makes: on each host that takes part (the client too), that the names are
 * free (or miglab's), the tunnel's endpoint is the host's, and a bridge, a tap on it and a VXLAN
 * device can be made (tried and removed).
 */
function madeBridgeChecks(spec: HostsSpec, hosts: Partial<Record<HostRole, Host>>, signal?: AbortSignal): NamedCheck[] {
  const made = spec.bridgeMade;
  const { src, dst, client } = hosts;
  if (!made || !src || !dst || !client) return [];
  const lab = { prefix: hostsLabPrefix(resolve(spec.source)), spec, made, hosts: { src, dst, client }, runDir: '' };
  return bridgeMembers(spec, made, lab.hosts).map((m) => {
    const name = `${m.roles.join('+')} bridge`;
    return {
      name,
      run: async () => {
        const f = await tryBridgeMember(lab, m, `mlchk${randomBytes(3).toString('hex')}`, signal);
        return f.ok ? ok(name, f.detail) : fail(name, f.detail, f.fix ?? '', 'LAB_STATE');
      },
    };
  });
}

/** Every check on hosts already connected (a role whose host did not answer is left out). */
export function hostChecks(spec: HostsSpec, hosts: Partial<Record<HostRole, Host>>, opts: HostsCheckOptions): NamedCheck[] {
  const { signal } = opts;
  const kvm = { src: false, dst: false };
  const checks: NamedCheck[] = [];
  for (const role of GUEST_ROLES) {
    const host = hosts[role];
    if (!host) continue;
    const named = (r: CheckResult) => ({ ...r, name: `${role} ${r.name}` });
    checks.push(
      { name: `${role} root`, run: () => checkRoot(role, host, signal) },
      { name: `${role} qemu`, run: async () => named(await checkQemu({ host })) },
      { name: `${role} qemu nfs`, run: async () => named(await checkNfsDriver({ host })) },
      {
        name: `${role} kvm`,
        run: async () => {
          const k = await checkKvm(role, host, signal);
          kvm[role] = k.usable;
          return k.result;
        },
      },
    );
    if (!spec.bridgeMade) checks.push({ name: `${role} bridge`, run: () => checkBridge(role, host, spec.bridge, signal) });
  }
  checks.push(...madeBridgeChecks(spec, hosts, signal));
  const { src, dst } = hosts;
  if (src && dst) {
    checks.push({ name: 'qemu src/dst', run: () => compareQemu(src, dst, signal) }, { name: 'cpu flags', run: () => compareCpuFlags(src, dst, kvm, signal) });
  }
  checks.push({ name: 'storage', run: () => (spec.storage.serve ? checkServedStorage(spec, hosts, signal) : checkStorage(spec, hosts, signal)) });
  if (src && dst) checks.push({ name: 'migration port', run: () => checkMigrationPort(spec, src, dst, opts.port, signal) }, { name: 'clock', run: () => checkClocks(src, dst, opts) });
  return checks;
}

/** Log in to every host of the spec and check it; every connection is closed before it returns. */
export async function checkHosts(spec: HostsSpec, opts: HostsCheckOptions): Promise<DoctorReport> {
  const connected = await connectEach(spec, opts);
  try {
    return await runChecks([...connected.checks.map((c) => ({ name: c.name, run: () => c })), ...hostChecks(spec, connected.hosts, opts)]);
  } finally {
    connected.close();
  }
}
