// A series of commands in one round trip (SshHost.runSeries): the script it sends, run here with the
// local sh as sshd would run it, and its output split back into one result per command; and the
// same series through LocalHost, which runs each command in turn: both give the same results.
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { constants } from 'node:os';
import { commandText, LocalHost } from '../../../src/host/local.js';
import { seriesArgv, seriesMarker, splitSeries } from '../../../src/host/ssh.js';
import type { RunResult } from '../../../src/host/host.js';

/** What SshHost.runSeries makes of a series, with a local shell standing in for the remote one. */
async function overShell(argvs: string[][], keepGoing = false): Promise<RunResult[]> {
  const marker = seriesMarker();
  const argv = seriesArgv(argvs, marker, keepGoing);
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, stripFinalNewline: false });
  // As SshHost reports a shell killed by a signal: 128 + its number.
  const exitCode = r.exitCode ?? 128 + (constants.signals[r.signal as NodeJS.Signals] ?? 127);
  return splitSeries(argvs, { argv, exitCode, stdout: String(r.stdout), stderr: String(r.stderr), durationMs: 0 }, marker, keepGoing);
}

const pick = (rs: RunResult[]) => rs.map((r) => ({ argv: r.argv, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }));

const TRICKY = ['sh', '-c', 'printf "%s|" "$@"; printf "no newline at the end" >&2', 'x', "it's", 'a b', '$HOME', '`id`', 'tab\there', ''];

describe('a series of commands in one shell', () => {
  it('gives each command its own argv, output and exit status, as running them one by one does', async () => {
    const argvs = [TRICKY, ['sh', '-c', 'printf "two\\n\\n"; echo err >&2'], ['true']];
    const series = await overShell(argvs);
    expect(pick(series)).toEqual([
      { argv: TRICKY, exitCode: 0, stdout: "it's|a b|$HOME|`id`|tab\there||", stderr: 'no newline at the end' },
      // One final newline goes, as Host.run strips it; the one before it stays.
      { argv: argvs[1], exitCode: 0, stdout: 'two\n', stderr: 'err' },
      { argv: ['true'], exitCode: 0, stdout: '', stderr: '' },
    ]);
    expect(pick(series)).toEqual(pick(await new LocalHost().runSeries(argvs)));
  });

  it('stops after the first command that fails, unless told to keep going', async () => {
    const argvs = [['echo', 'a'], ['sh', '-c', 'echo no >&2; exit 3'], ['echo', 'c']];
    expect(pick(await overShell(argvs)).map((r) => [r.exitCode, r.stdout, r.stderr])).toEqual([
      [0, 'a', ''],
      [3, '', 'no'],
    ]);
    expect(pick(await overShell(argvs, true)).map((r) => r.exitCode)).toEqual([0, 3, 0]);
    expect(pick(await new LocalHost().runSeries(argvs, { reject: false })).map((r) => r.exitCode)).toEqual([0, 3]);
  });

  it('runs programs, not shell builtins or functions of the same name', async () => {
    const [r] = await overShell([['miglab_step', 'x']]);
    expect(r!.exitCode).toBe(127);
  });

  it('gives a command the series ended in the series exit status, and no later command a result', async () => {
    const argvs = [['echo', 'a'], ['sh', '-c', 'echo half; kill -KILL $PPID'], ['echo', 'c']];
    const rs = await overShell(argvs);
    expect(rs.map((r) => r.exitCode)).toEqual([0, 137]);
    expect(rs[1]!.stdout).toBe('half');
  });

  it('throws the failed command as Host.run would, naming it and the host', async () => {
    await expect(new LocalHost('here').runSeries([['true'], ['sh', '-c', 'echo gone >&2; exit 2']])).rejects.toThrow("on here: `sh -c echo gone >&2; exit 2` exited 2: gone");
  });
});

describe('commandText', () => {
  it('shows a long command by its first arguments and how many more, a short one whole', () => {
    expect(commandText(['wc', '-l', '--', 'a'])).toBe('wc -l -- a');
    const paths = Array.from({ length: 200 }, (_, i) => `/ckpt/b/n100/c${i}/seq.log`);
    expect(commandText(['wc', '-l', '--', ...paths])).toBe('wc -l -- /ckpt/b/n100/c0/seq.log /ckpt/b/n100/c1/seq.log /ckpt/b/n100/c2/seq.log /ckpt/b/n100/c3/seq.log /ckpt/b/n100/c4/seq.log ... (195 more arguments)');
  });
});
