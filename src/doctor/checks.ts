// `miglab doctor`: what a run needs from this machine, checked one by one, each with how to fix
// it. Every look at the machine goes through a Host (a command, a file read with cat) or one of the
// few functions in DoctorProbes, so the checks run against a fake host in unit tests and against
// the real machine in `miglab doctor`. Nothing here starts a lab or changes the machine; the one
// thing started is what the project's KVM decision starts (a probe guest, when /dev/kvm exists and
// no verdict is cached).
import { QEMU_OVERHEAD_MIB } from '../batch/spec.js';
import { describeError, type ErrorCode } from '../errors.js';
import type { Host } from '../host/host.js';
import { firstExisting, HAND_PROGRAMS, installLine, missingLabDependencies, missingPrograms, REQUIRED_PROGRAMS } from '../lab/deps.js';
import { qemuRelease } from '../machine/quirks.js';
import { NFS_BLOCK_DRIVER_PATHS } from '../preflight.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Short name of what is checked ("qemu", "kvm"). */
  readonly name: string;
  /** ok: fine; warn: a run goes but something is off (say what); fail: a run cannot go. */
  readonly status: CheckStatus;
  /** What was found, in plain words. */
  readonly found: string;
  /** How to fix it (absent when ok). */
  readonly fix?: string;
  /** A failed check's kind, as an error of a run would have it (the CLI's exit status follows it). */
  readonly code?: ErrorCode;
}

export interface KvmVerdict {
  /** Undefined when it could not be decided (the guest image to probe with is not built). */
  readonly usable: boolean | undefined;
  readonly reason: string;
}

/** What the checks need besides a host: the parts of the machine a Host does not reach. */
export interface DoctorProbes {
  readonly host: Host;
  readonly isRoot: boolean;
  readonly cpus: number;
  /** The project's KVM decision (src/machine/accel.ts): a real boot under KVM, cached per boot. */
  kvm(): Promise<KvmVerdict>;
  /** The built guest image, described in a few words; undefined when none is built; throws when it is damaged. */
  guestImage(): Promise<string | undefined>;
  /** Where labs keep their state (/run/miglab). */
  readonly stateRoot: string;
  /** The lab a run uses by default, whose ports are checked. */
  readonly prefix: string;
  /** The migration port (on dst) and the HMP port of the homework by hand (on src). */
  readonly ports: { readonly migration: number; readonly hmp: number };
  /** The repository's Makefile, whose APT_PACKAGES is the one list of Debian packages `make deps` installs. */
  readonly makefile: string;
}

/** A default run: two QEMUs (source and destination) of a 256 MiB guest, plus the NFS server and miglab. */
const RUN_MEMORY_MIB = 2 * (256 + QEMU_OVERHEAD_MIB) + 200;
/** PSI cpu "some" avg10 (%) above which measurements are visibly slowed by other work. */
const BUSY_PSI_CPU = 20;

export const ok = (name: string, found: string): CheckResult => ({ name, status: 'ok', found });
export const warn = (name: string, found: string, fix: string): CheckResult => ({ name, status: 'warn', found, fix });
/** Most failures are something missing (a program, the image, memory); `code` says otherwise. */
export const fail = (name: string, found: string, fix: string, code: ErrorCode = 'MISSING_DEPENDENCY'): CheckResult => ({ name, status: 'fail', found, fix, code });

async function readText(host: Host, path: string): Promise<string | undefined> {
  const r = await host.run(['cat', path], { reject: false, timeoutMs: 5000 });
  return r.exitCode === 0 ? r.stdout : undefined;
}

export function checkRootUser(p: DoctorProbes): CheckResult {
  return p.isRoot ? ok('root', 'running as root') : fail('root', 'not root: the lab needs network namespaces, bridges, taps and an NFS server', 'run miglab with sudo', 'NOT_ROOT');
}

export async function checkQemu(p: Pick<DoctorProbes, 'host'>): Promise<CheckResult> {
  const missing = await missingPrograms(p.host, [
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['qemu-img', 'qemu-utils'],
  ]);
  if (missing.length > 0) return fail('qemu', `${missing.map(([what]) => what).join(' and ')} not installed`, installLine(missing));
  try {
    // The same reading of the version the runs make (and remember) to decide QEMU's known bugs.
    return ok('qemu', (await qemuRelease(p.host)).line);
  } catch (err) {
    return fail('qemu', `qemu-system-x86_64 --version did not answer with a version: ${describeError(err)}`, 'apt-get install --reinstall -y qemu-system-x86');
  }
}

export async function checkNfsDriver(p: Pick<DoctorProbes, 'host'>): Promise<CheckResult> {
  const found = await firstExisting(p.host, NFS_BLOCK_DRIVER_PATHS);
  return found
    ? ok('qemu nfs', `QEMU's nfs:// block driver: ${found}`)
    : fail('qemu nfs', "QEMU's nfs:// block driver (block-nfs.so) is missing: the guest's shared disk cannot be opened", 'apt-get install -y qemu-block-extra');
}

/** What `lab up` and every run check first (checkLabDependencies), reported instead of thrown. */
export async function checkLabPrograms(p: DoctorProbes): Promise<CheckResult> {
  const missing = await missingLabDependencies(p.host);
  if (missing.length === 0) return ok('lab tools', `${REQUIRED_PROGRAMS.length} programs and nfs-ganesha's VFS backend found`);
  return fail('lab tools', `missing: ${missing.map(([what]) => what).join(', ')}`, installLine(missing));
}

/** APT_PACKAGES of the Makefile (a make variable continued over lines with backslashes). */
export function makefileAptPackages(text: string): string[] {
  const m = /^APT_PACKAGES\s*:=((?:.*\\\n)*.*)$/m.exec(text);
  return m ? m[1]!.replace(/\\\n/g, ' ').trim().split(/\s+/) : [];
}

/** Every package `make deps` installs, asked of dpkg in one call (the checks above name what each missing one breaks). */
export async function checkPackages(p: DoctorProbes): Promise<CheckResult> {
  const wanted = makefileAptPackages((await readText(p.host, p.makefile)) ?? '');
  if (wanted.length === 0) return warn('packages', `no APT_PACKAGES list in ${p.makefile}`, 'run miglab from its repository');
  const r = await p.host.run(['dpkg-query', '-W', '-f=${Package} ${db:Status-Abbrev}\n', ...wanted], { reject: false, timeoutMs: 10000 });
  const installed = new Set(r.stdout.split('\n').filter((l) => /^\S+ ii/.test(l)).map((l) => l.split(' ')[0]!.replace(/:.*$/, '')));
  const missing = wanted.filter((w) => !installed.has(w));
  if (missing.length === 0) return ok('packages', `the ${wanted.length} Debian packages make deps installs are installed`);
  return warn('packages', `${missing.length} of the ${wanted.length} Debian packages make deps installs are missing: ${missing.join(' ')}`, `make deps (or apt-get install -y ${missing.join(' ')})`);
}

export async function checkGuestImage(p: DoctorProbes): Promise<CheckResult> {
  let image: string | undefined;
  try {
    image = await p.guestImage();
  } catch (err) {
    // The cache is root's only (0700): another user cannot read it, which says nothing of its state.
    if (!p.isRoot) return fail('guest image', `no guest image this user can read (${describeError(err)})`, 'run miglab as root (sudo)', 'NOT_ROOT');
    return fail('guest image', `the guest image is damaged: ${err instanceof Error ? err.message : String(err)}`, 'miglab image build --force');
  }
  if (image) return ok('guest image', image);
  // The cache is its owner's only (0700): another user cannot tell "not built" from "not mine".
  if (!p.isRoot) return fail('guest image', 'no guest image this user can read', 'run miglab as root (sudo)', 'NOT_ROOT');
  return fail('guest image', 'the guest image is not built', 'miglab image build (or make image)');
}

/** The KVM probe's finding in plain words: what an errno on /dev/kvm means for this machine. */
function plainKvmReason(reason: string): string {
  if (/\/dev\/kvm is not available .*ENOENT/.test(reason)) return '/dev/kvm does not exist: this machine (or the VM it is) offers no KVM';
  if (/\/dev\/kvm is not available .*EACCES/.test(reason)) return '/dev/kvm exists but this user may not open it (run as root, or join the kvm group)';
  return reason;
}

export async function checkKvm(p: DoctorProbes): Promise<CheckResult> {
  const k = await p.kvm();
  const v = { ...k, reason: plainKvmReason(k.reason) };
  if (v.usable === true) return ok('kvm', `usable: ${v.reason}`);
  const fix = 'nothing needed: runs use TCG (guests are slower, migration works the same); KVM needs a machine whose /dev/kvm boots a guest';
  if (v.usable === undefined) return warn('kvm', `not decided: ${v.reason}`, 'build the guest image (miglab image build), then run miglab doctor again');
  return warn('kvm', `not usable: ${v.reason}`, fix);
}

/** sch_netem, tried for real: a netem qdisc on the loopback of a private, empty network namespace. */
export async function checkNetem(p: DoctorProbes): Promise<CheckResult> {
  const instead = 'miglab shapes bandwidth with tbf and drops packets for link-loss faults with nftables';
  if (!p.isRoot) return warn('sch_netem', 'not checked (needs root)', 'run miglab doctor as root');
  const r = await p.host.run(['unshare', '--net', 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], { reject: false, timeoutMs: 10000 });
  if (r.exitCode === 0) return ok('sch_netem', 'this kernel has netem: --delay and --loss work');
  const why = (r.stderr || r.stdout).trim().split('\n')[0] ?? '';
  return warn('sch_netem', `this kernel has no netem qdisc (tc: ${why || `exit ${r.exitCode}`}), so --delay and --loss cannot work; ${instead}`, 'nothing needed for a run; for --delay/--loss use a kernel with sch_netem (modprobe sch_netem)');
}

/** What `guests up` checks first (checkHandTools), reported instead of thrown: only the homework by hand needs them. */
export async function checkHandTools(p: DoctorProbes): Promise<CheckResult> {
  const name = HAND_PROGRAMS.map(([program]) => program).join(', ');
  const missing = await missingPrograms(p.host, HAND_PROGRAMS);
  if (missing.length === 0) return ok(name, 'found (the homework by hand: HMP over telnet, QMP over socat)');
  return warn(name, `${missing.map(([program]) => program).join(' and ')} not installed: needed only to type the homework's monitor commands by hand`, installLine(missing));
}

/** Whether the default lab is up, and if so, whether the ports a run listens on are free in it. */
export async function checkPorts(p: DoctorProbes): Promise<CheckResult> {
  const name = 'lab ports';
  // Labs' state and namespaces are root's: another user would find no lab at all.
  if (!p.isRoot) return warn(name, 'not checked (needs root)', 'run miglab doctor as root');
  if ((await readText(p.host, `${p.stateRoot}/${p.prefix}/lab.json`)) === undefined) return ok(name, `lab ${p.prefix} is not up: a run brings it up, its ports ${p.ports.migration} (dst) and ${p.ports.hmp} (src) free`);
  const taken: string[] = [];
  for (const [role, port] of [['dst', p.ports.migration], ['src', p.ports.hmp]] as const) {
    const r = await p.host.run(['ip', 'netns', 'exec', `${p.prefix}-${role}`, 'ss', '-Htln'], { reject: false, timeoutMs: 5000 });
    const listening = r.stdout.split('\n').some((line) => line.trim().split(/\s+/)[3]?.endsWith(`:${port}`));
    if (listening) taken.push(`${port} on ${role}`);
  }
  if (taken.length === 0) return ok(name, `lab ${p.prefix} is up; ports ${p.ports.migration} (dst) and ${p.ports.hmp} (src) are free`);
  return warn(name, `lab ${p.prefix} is up and something listens on ${taken.join(' and ')} (a run in progress, or one left behind)`, `miglab lab status --prefix ${p.prefix} names it; a new run takes the next guest slot and port`);
}

export async function checkMemory(p: DoctorProbes): Promise<CheckResult> {
  const meminfo = await readText(p.host, '/proc/meminfo');
  const kib = Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo ?? '')?.[1]);
  if (!Number.isFinite(kib)) return warn('memory', 'cannot read MemAvailable from /proc/meminfo', 'check free -m by hand');
  const mib = Math.floor(kib / 1024);
  const need = `a default run needs about ${RUN_MEMORY_MIB} MiB (two QEMUs of a 256 MiB guest and the NFS server)`;
  if (mib < RUN_MEMORY_MIB) return fail('memory', `${mib} MiB available; ${need}`, 'stop other programs or labs (miglab lab down --prefix P), or run smaller guests (--memory 128M)');
  if (mib < 2 * RUN_MEMORY_MIB) return warn('memory', `${mib} MiB available; ${need}, a batch N times that`, 'keep batches small (batch --steps 1,2) or free memory');
  return ok('memory', `${mib} MiB available (a default run needs about ${RUN_MEMORY_MIB} MiB)`);
}

export async function checkOtherLabs(p: DoctorProbes): Promise<CheckResult> {
  if (!p.isRoot) return warn('other labs', 'not checked (needs root)', 'run miglab doctor as root');
  const r = await p.host.run(['ls', '-1', p.stateRoot], { reject: false, timeoutMs: 5000 });
  const labs: string[] = [];
  for (const entry of r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean) : []) {
    if ((await readText(p.host, `${p.stateRoot}/${entry}/lab.json`)) !== undefined) labs.push(entry);
  }
  const others = labs.filter((l) => l !== p.prefix);
  if (others.length === 0) return ok('other labs', labs.length ? `only lab ${p.prefix} is up` : `no lab is up (${p.stateRoot})`);
  return warn(
    'other labs',
    `${others.length === 1 ? 'lab' : 'labs'} ${others.join(', ')} up beside yours: their guests share the CPU and memory, so your timings will be slower`,
    `when they are done: ${others.map((l) => `miglab lab down --prefix ${l}`).join('; ')}`,
  );
}

/** Work that other programs keep the CPU busy with: PSI cpu "some" (share of time a task waited) and load. */
export async function checkCpuLoad(p: DoctorProbes): Promise<CheckResult> {
  const psi = await readText(p.host, '/proc/pressure/cpu');
  const load = await readText(p.host, '/proc/loadavg');
  const some10 = Number(/^some avg10=([\d.]+)/m.exec(psi ?? '')?.[1]);
  const load1 = Number(load?.split(/\s+/)[0]);
  const parts: string[] = [];
  if (Number.isFinite(some10)) parts.push(`PSI cpu some ${some10.toFixed(0)} % over 10 s`);
  if (Number.isFinite(load1)) parts.push(`load ${load1.toFixed(1)} on ${p.cpus} CPU${p.cpus === 1 ? '' : 's'}`);
  if (parts.length === 0) return warn('cpu load', 'cannot read /proc/pressure/cpu or /proc/loadavg', 'check top by hand');
  const busy = (Number.isFinite(some10) && some10 > BUSY_PSI_CPU) || (Number.isFinite(load1) && load1 / p.cpus > 1);
  if (!busy) return ok('cpu load', `${parts.join(', ')}: quiet`);
  return warn('cpu load', `${parts.join(', ')}: other work keeps the CPU busy, so boots, migrations and their timings will be slower and noisier`, 'wait for it or stop it (top shows what)');
}

/** Every check, in the order a person fixes them. */
export const CHECKS: ReadonlyArray<(p: DoctorProbes) => CheckResult | Promise<CheckResult>> = [
  checkRootUser,
  checkQemu,
  checkNfsDriver,
  checkLabPrograms,
  checkPackages,
  checkGuestImage,
  checkKvm,
  checkNetem,
  checkHandTools,
  checkPorts,
  checkMemory,
  checkOtherLabs,
  checkCpuLoad,
];

export interface DoctorReport {
  readonly checks: readonly CheckResult[];
  /** No check failed: a run can go (warnings say what will be slower or unavailable). */
  readonly canRun: boolean;
  /** The first failed check's kind (checks run in the order a person fixes them): not root before anything missing. */
  readonly failure?: ErrorCode;
}

/** A check to run, under the name its line takes if the check itself throws. */
export interface NamedCheck {
  readonly name: string;
  /** One finding, or several (a check of a thing on each host). */
  run(): CheckResult | readonly CheckResult[] | Promise<CheckResult | readonly CheckResult[]>;
}

/** Run each check in order; one that throws is reported as failed with what it threw, and the rest go on. */
export async function runChecks(list: readonly NamedCheck[]): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  for (const check of list) {
    try {
      checks.push(...[await check.run()].flat());
    } catch (err) {
      checks.push(fail(check.name, `the check itself failed: ${err instanceof Error ? err.message : String(err)}`, 'run it with MIGLAB_DEBUG=1 and report it', 'INTERNAL'));
    }
  }
  return { checks, canRun: checks.every((c) => c.status !== 'fail'), failure: checks.find((c) => c.status === 'fail')?.code };
}

/** Every check of this machine. */
export function runDoctor(p: DoctorProbes): Promise<DoctorReport> {
  return runChecks(CHECKS.map((check, i) => ({ name: check.name.replace(/^check/, '').toLowerCase() || `check ${i + 1}`, run: () => check(p) })));
}

/** One line per check: status, what, what was found, and the fix. */
export function formatDoctor(r: DoctorReport, paint: Readonly<Record<CheckStatus, (s: string) => string>> = { ok: (s) => s, warn: (s) => s, fail: (s) => s }): string {
  const width = Math.max(...r.checks.map((c) => c.name.length));
  const lines = r.checks.map((c) => `${paint[c.status](c.status.padEnd(4))}  ${c.name.padEnd(width)}  ${c.found}${c.fix ? `; fix: ${c.fix}` : ''}`);
  const failed = r.checks.filter((c) => c.status === 'fail').length;
  const warned = r.checks.filter((c) => c.status === 'warn').length;
  lines.push(r.canRun ? `a run can go${warned ? ` (${warned} warning${warned === 1 ? '' : 's'} above)` : ''}` : `a run cannot go: ${failed} check${failed === 1 ? '' : 's'} failed (the fix is on each line)`);
  return lines.join('\n');
}
