// The wrapper every remote long-lived process runs under (SshHost.spawn), run here with the local
// sh the same way sshd runs it: stdin is the SSH channel, whose EOF means the session ended.
import { pidRuns } from '../../../src/lab/proc.js';
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { sessionBoundArgv, shellExitCode } from '../../../src/host/ssh.js';
import { pollUntil } from '../../../src/util/deadline.js';

const alive = pidRuns;

/** Run `argv` under the wrapper with its stdin left open, as a live SSH session's is. */
function wrapped(argv: string[]) {
  const w = sessionBoundArgv(argv);
  return execa(w[0]!, w.slice(1), { reject: false, stdin: 'pipe' });
}

describe('the session-bound wrapper', () => {
  it('reports the program pid first, passes argv intact and keeps the exit code', async () => {
    const r = await wrapped(['sh', '-c', 'printf "%s|" "$@"; exit 7', 'x', "it's", 'a b', '$HOME']);
    expect(r.stderr).toMatch(/^miglab-pid \d+$/m);
    expect(r.stdout).toBe("it's|a b|$HOME|");
    expect(r.exitCode).toBe(7);
  });

  it('dies of the signal that killed the program, so the channel reports a signal', async () => {
    const r = await wrapped(['sh', '-c', 'kill -KILL $$']);
    expect(r.signal).toBe('SIGKILL');
  });

  it('gives one exit status for both channel kinds, as a shell does: the code, 128+N for signal N, 255 for neither', () => {
    expect(shellExitCode(7, null)).toBe(7);
    expect(shellExitCode(null, 'SIGKILL')).toBe(128 + 9);
    expect(shellExitCode(null, 'TERM')).toBe(128 + 15); // the protocol's own name
    expect(shellExitCode(null, null)).toBe(255);
  });

  it('ends the program when its stdin (the session) reaches EOF', async () => {
    const child = wrapped(['sleep', '1000']);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const pid = await pollUntil('the wrapper to report a pid', async () => Number(/miglab-pid (\d+)/.exec(stderr)?.[1]) || undefined, { timeoutMs: 5000, intervalMs: 20 });
    expect(alive(pid)).toBe(true);
    child.stdin!.end();
    const r = await child;
    expect(r.signal).toBe('SIGTERM');
    expect(alive(pid)).toBe(false);
  });

  it('ends what the program started too (its process group), so nothing holds the channel open', async () => {
    // A shell that waits on a child: before the wrapper made a group, the child outlived the shell.
    const child = wrapped(['sh', '-c', 'sleep 1000 & echo "child $!" >&2; wait']);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const grandchild = await pollUntil('the program to report its child', async () => Number(/child (\d+)/.exec(stderr)?.[1]) || undefined, { timeoutMs: 5000, intervalMs: 20 });
    expect(alive(grandchild)).toBe(true);
    child.stdin!.end();
    await child;
    await pollUntil('the child to end', async () => (alive(grandchild) ? undefined : true), { timeoutMs: 5000, intervalMs: 20 });
    expect(alive(grandchild)).toBe(false);
  });
});
