import {
  CRIU_BINARY,
  CRIU_FEATURES,
  CRIU_LEFT_OUT,
  criuCheck,
  criuDump,
  criuLazyPages,
  criuPageServer,
  criuParentOf,
  criuRestore,
  criuRoundDir,
  criuRoundPort,
  type CriuFeature,
} from '../../../src/containers/criu-argv.js';
import { UsageError } from '../../../src/errors.js';
import type { ExplainedCommand } from '../../../src/util/explained-command.js';

function valueOf(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

/** Every argument sits in exactly one group, in order, and every group says why. */
function expectExplained(cmd: ExplainedCommand): void {
  expect(cmd.explained.flatMap((g) => g.args)).toEqual(cmd.argv);
  for (const g of cmd.explained) {
    expect(g.args.length).toBeGreaterThan(0);
    expect(g.why.trim().length).toBeGreaterThan(20);
  }
}

const round2 = { pid: 4242, imagesDir: '/ckpt/run1/c0/r2', logFile: 'dump.log', prevImagesDir: '../r1' };

describe('criuDump', () => {
  it('builds a pre-dump round with the parent relative, memory tracking and the mode', () => {
    const cmd = criuDump({ ...round2, preDump: true, preDumpMode: 'read' });
    expect(cmd.argv).toEqual([
      CRIU_BINARY, 'pre-dump', '-t', '4242', '-D', '/ckpt/run1/c0/r2', '-o', 'dump.log', '-v4', '--display-stats',
      '--track-mem', '--prev-images-dir', '../r1', '--pre-dump-mode', 'read',
    ]);
    expectExplained(cmd);
  });

  it('builds the final dump: kills the tree, keeps --track-mem with a parent, no pre-dump mode', () => {
    const cmd = criuDump({ ...round2, preDump: false, workDir: '/run/miglab/w' });
    expect(cmd.argv.slice(0, 2)).toEqual([CRIU_BINARY, 'dump']);
    expect(cmd.argv).toContain('--track-mem');
    expect(valueOf(cmd.argv, '-W')).toEqual(['/run/miglab/w']);
    expect(cmd.argv).not.toContain('--pre-dump-mode');
    expect(cmd.argv).not.toContain('--leave-running');
    expect(cmd.explained.find((g) => g.args[0] === '--track-mem')!.why).toMatch(/page_in_parent/);
    expect(cmd.explained.find((g) => g.args[0] === 'dump')!.why).toMatch(/then kill it/);
    expectExplained(cmd);
  });

  it('a stop-and-copy dump has no parent and no memory tracking', () => {
    const cmd = criuDump({ pid: 7, imagesDir: 'd', logFile: 'l', preDump: false });
    expect(cmd.argv).toEqual([CRIU_BINARY, 'dump', '-t', '7', '-D', 'd', '-o', 'l', '-v4', '--display-stats']);
    expectExplained(cmd);
  });

  it('leaves out shell-job, ext-unix-sk and tcp-established unless asked, and says why in CRIU_LEFT_OUT', () => {
    const argv = criuDump({ ...round2, preDump: false }).argv;
    for (const flag of ['--shell-job', '--ext-unix-sk', '--tcp-established', '--network-lock', '--leave-running']) expect(argv).not.toContain(flag);
    const left = CRIU_LEFT_OUT.map((l) => l.option);
    expect(left).toEqual(expect.arrayContaining(['--shell-job', '--ext-unix-sk', '--tcp-established', '--network-lock']));
    for (const l of CRIU_LEFT_OUT) expect(l.why.length).toBeGreaterThan(20);
    const asked = criuDump({ ...round2, preDump: false, shellJob: true, tcpEstablished: true, leaveRunning: true });
    expect(asked.argv).toEqual(expect.arrayContaining(['--shell-job', '--tcp-established', '--leave-running']));
    expectExplained(asked);
  });

  it('sends pages to this round\'s page server', () => {
    const cmd = criuDump({ ...round2, preDump: true, pageServer: { address: '10.77.0.101', port: criuRoundPort(27000, 2) } });
    expect(valueOf(cmd.argv, '--address')).toEqual(['10.77.0.101']);
    expect(valueOf(cmd.argv, '--port')).toEqual(['27001']);
    expect(cmd.argv).toContain('--page-server');
    expectExplained(cmd);
  });

  it('builds the lazy dump, flagged as lazy migration', () => {
    const cmd = criuDump({ pid: 9, imagesDir: 'd', logFile: 'l', preDump: false, lazyPages: { address: '10.77.0.100', port: 27100 } });
    expect(cmd.argv.slice(-5)).toEqual(['--lazy-pages', '--address', '10.77.0.100', '--port', '27100']);
    expect(cmd.argv).not.toContain('--page-server');
    expect(cmd.explained.find((g) => g.args[0] === '--lazy-pages')!.why).toMatch(/^lazy migration/);
    expectExplained(cmd);
  });

  it('refuses an absolute --prev-images-dir before anything starts, with the fix', () => {
    expect(() => criuDump({ ...round2, prevImagesDir: '/ckpt/run1/c0/r1', preDump: true })).toThrow(UsageError);
    expect(() => criuDump({ ...round2, prevImagesDir: '/ckpt/run1/c0/r1', preDump: true })).toThrow(
      "criu's --prev-images-dir must be relative to the images dir, got /ckpt/run1/c0/r1; give the previous round as ../r1",
    );
    expect(() => criuPageServer({ imagesDir: 'd', logFile: 'l', address: 'a', port: 1, prevImagesDir: '/abs' })).toThrow(/must be relative/);
  });

  it('refuses combinations criu would ignore or that make no sense', () => {
    expect(() => criuDump({ ...round2, preDump: false, preDumpMode: 'read' })).toThrow(/--pre-dump-mode is for pre-dump only/);
    expect(() => criuDump({ ...round2, preDump: true, leaveRunning: true })).toThrow(/pre-dump always leaves the tree running/);
    expect(() => criuDump({ ...round2, preDump: true, trackMem: false })).toThrow(/pre-dump needs memory tracking/);
    expect(() => criuDump({ ...round2, preDump: false, trackMem: false })).toThrow(/page_in_parent/);
    expect(() => criuDump({ ...round2, preDump: true, lazyPages: { address: 'a', port: 1 } })).toThrow(/--lazy-pages is for dump only/);
    const both = { pageServer: { address: 'a', port: 1 }, lazyPages: { address: 'a', port: 2 } };
    expect(() => criuDump({ ...round2, preDump: false, ...both })).toThrow(/not both/);
    expect(() => criuDump({ ...round2, pid: 0, preDump: true })).toThrow(/root pid/);
    expect(() => criuDump({ ...round2, preDump: true, pageServer: { address: '10.0.0.1', port: 70000 } })).toThrow(/port from 1 to 65535, got 70000/);
    expect(() => criuDump({ ...round2, imagesDir: ' ', preDump: true })).toThrow(/images dir must be a non-empty string/);
  });
});

describe('criuRestore', () => {
  it('restores detached with a pid file, and only the options the dump used', () => {
    const cmd = criuRestore({ imagesDir: '/ckpt/run1/c0/r3', logFile: 'restore.log', pidFile: 'restore.pid', detach: true });
    expect(cmd.argv).toEqual([CRIU_BINARY, 'restore', '-D', '/ckpt/run1/c0/r3', '-o', 'restore.log', '-v4', '--display-stats', '-d', '--pidfile', 'restore.pid']);
    expectExplained(cmd);
    const shell = criuRestore({ imagesDir: 'd', logFile: 'l', pidFile: 'p', detach: true, shellJob: true });
    expect(shell.argv).toContain('--shell-job');
  });

  it('has a lazy variant, flagged as lazy migration', () => {
    const cmd = criuRestore({ imagesDir: 'd', workDir: '/run/miglab/lazy', logFile: 'l', pidFile: 'p', detach: true, lazyPages: true });
    expect(cmd.argv.at(-1)).toBe('--lazy-pages');
    expect(cmd.explained.at(-1)!.why).toMatch(/^lazy migration.*same work dir/);
    expectExplained(cmd);
  });
});

describe('criuPageServer and criuLazyPages', () => {
  it('runs one page server per round on the destination\'s address and this round\'s port, with the parent link', () => {
    const ports = [1, 2, 3].map((k) => criuRoundPort(27000, k));
    expect(ports).toEqual([27000, 27001, 27002]);
    const r1 = criuPageServer({ imagesDir: '/run/miglab/ck/c0/r1', logFile: 'ps.log', address: '10.77.0.101', port: ports[0]! });
    expect(r1.argv).not.toContain('--prev-images-dir');
    const r3 = criuPageServer({ imagesDir: '/run/miglab/ck/c0/r3', logFile: 'ps.log', address: '10.77.0.101', port: ports[2]!, prevImagesDir: criuParentOf(3) });
    expect(r3.argv).toEqual([
      CRIU_BINARY, 'page-server', '-D', '/run/miglab/ck/c0/r3', '-o', 'ps.log', '-v4', '--address', '10.77.0.101', '--port', '27002', '--prev-images-dir', '../r2',
    ]);
    expect(r3.argv.join(' ')).not.toMatch(/0\.0\.0\.0/);
    expectExplained(r1);
    expectExplained(r3);
    const daemon = criuPageServer({ imagesDir: 'd', logFile: 'l', address: 'a', port: 1, daemon: { pidFile: 'ps.pid' } });
    expect(daemon.argv.slice(-3)).toEqual(['--daemon', '--pidfile', 'ps.pid']);
  });

  it('builds the lazy-pages daemon that fetches from the source\'s lazy dump', () => {
    const cmd = criuLazyPages({ imagesDir: '/ckpt/run1/c0/r1', workDir: '/run/miglab/lazy', logFile: 'lazy.log', source: { address: '10.77.0.100', port: 27100 }, daemon: { pidFile: 'lp.pid' } });
    expect(cmd.argv).toEqual([
      CRIU_BINARY, 'lazy-pages', '-D', '/ckpt/run1/c0/r1', '-W', '/run/miglab/lazy', '-o', 'lazy.log', '-v4',
      '--page-server', '--address', '10.77.0.100', '--port', '27100', '--daemon', '--pidfile', 'lp.pid',
    ]);
    expect(cmd.explained[1]!.why).toMatch(/^lazy migration/);
    expectExplained(cmd);
  });
});

describe('criuCheck', () => {
  it('checks category 1, or one feature per command', () => {
    expect(criuCheck().argv).toEqual([CRIU_BINARY, 'check']);
    expect(criuCheck('uffd-noncoop').argv).toEqual([CRIU_BINARY, 'check', '--feature', 'uffd-noncoop']);
    expectExplained(criuCheck());
    expectExplained(criuCheck('mem_dirty_track'));
    expect(CRIU_FEATURES).toEqual(expect.arrayContaining(['mem_dirty_track', 'uffd-noncoop']));
  });

  it('refuses a feature criu 3.17.1 does not know', () => {
    expect(() => criuCheck('dirty_track' as CriuFeature)).toThrow(/criu 3.17.1 has no feature "dirty_track" to check; use one of mnt_id, mem_dirty_track/);
  });
});

describe('rounds', () => {
  it('names round dirs, their parents and ports', () => {
    expect(criuRoundDir(1)).toBe('r1');
    expect(criuParentOf(1)).toBeUndefined();
    expect(criuParentOf(4)).toBe('../r3');
    expect(() => criuRoundDir(0)).toThrow(/round is a whole number >= 1, got 0/);
    expect(() => criuRoundPort(65535, 2)).toThrow(/round 2's page server port \(base 65535\) must be a TCP port from 1 to 65535, got 65536/);
  });
});
