// The wrapper every remote long-lived process runs under (SshHost.spawn), run here with the local
// sh the same way sshd runs it: stdin is the SSH channel, whose EOF means the session ended.
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { sessionBoundArgv } from '../../../src/host/ssh.js';
import { pollUntil } from '../../../src/util/deadline.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the session-bound wrapper', () => {
  it('reports the program pid first, passes argv intact and keeps the exit code', async () => {
    const argv = sessionBoundArgv(['sh', '-c', 'printf "%s|" "$@"; exit 7', 'x', "it's", 'a b', '$HOME']);
    const r = await execa(argv[0]!, argv.slice(1), { reject: false, input: '' });
    expect(r.stderr).toMatch(/^miglab-pid \d+$/m);
    expect(r.stdout).toBe("it's|a b|$HOME|");
    expect(r.exitCode).toBe(7);
  });

  it('dies of the signal that killed the program, so the channel reports a signal', async () => {
    const argv = sessionBoundArgv(['sh', '-c', 'kill -KILL $$']);
    const r = await execa(argv[0]!, argv.slice(1), { reject: false, input: '' });
    expect(r.signal).toBe('SIGKILL');
  });

  it('ends the program when its stdin (the session) reaches EOF', async () => {
    const argv = sessionBoundArgv(['sleep', '1000']);
    const child = execa(argv[0]!, argv.slice(1), { reject: false, stdin: 'pipe' });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const pid = await pollUntil('the wrapper to report a pid', async () => Number(/miglab-pid (\d+)/.exec(stderr)?.[1]) || undefined, { timeoutMs: 5000, intervalMs: 20 });
    expect(alive(pid)).toBe(true);
    child.stdin!.end();
    const r = await child;
    expect(r.signal).toBe('SIGTERM');
    expect(alive(pid)).toBe(false);
  });
});
