// Ending a tool that writes its results when interrupted: SIGINT through its host, its exit
// awaited; stopped when it does not end in time, and stopped too when it could not be signalled
// (a Ctrl-C kills the `kill` child as well), so the tool never outlives the run.
import { interruptAndWait } from '../../../src/host/interrupt.js';
import { FakeHost, FakeProcess } from '../../support/fake-host.js';

describe('interruptAndWait', () => {
  it('sends SIGINT through the host and waits for the tool to exit', async () => {
    const proc = new FakeProcess(4242, ['tcpdump']);
    const host = new FakeHost('sw', { run: (argv) => (argv[0] === 'kill' ? (setTimeout(() => proc.exit(), 10), {}) : undefined) });
    await expect(interruptAndWait(host, proc, 'tcpdump')).resolves.toBeUndefined();
    expect(host.ran).toEqual([['kill', '-INT', '4242']]);
    await expect(proc.exited).resolves.toEqual({ exitCode: 0, signal: null });
  });

  it('stops the tool and says why when it could not be signalled', async () => {
    const proc = new FakeProcess(4243, ['tcpdump']);
    const host = new FakeHost('sw', { run: () => ({ exitCode: 128, stderr: '' }) });
    await expect(interruptAndWait(host, proc, 'tcpdump')).resolves.toBe('kill exited 128');
    expect(proc.hasExited).toBe(true);
    await expect(proc.exited).resolves.toEqual({ exitCode: null, signal: 'SIGTERM' });
  });

  it('stops the tool and rethrows when it does not end in time; signals nothing that has exited', async () => {
    const stuck = new FakeProcess(4244, ['miglab-probe']);
    const host = new FakeHost('cli');
    await expect(interruptAndWait(host, stuck, 'the probe', { timeoutMs: 20 })).rejects.toThrow(/waiting for the probe \(pid 4244\) to write its results/);
    expect(stuck.hasExited).toBe(true);
    const gone = new FakeProcess(4245, ['tcpdump']);
    gone.exit();
    await expect(interruptAndWait(host, gone, 'tcpdump')).resolves.toBeUndefined();
    expect(host.ran).toEqual([['kill', '-INT', '4244']]);
  });
});
