// Reading a guest's signals from one program's output: every file after its separator line.
import { execFileSync } from 'node:child_process';
import { guestSignalsArgv, parseGuestSignals } from '../../../../src/containers/batch/signals.js';

const at = { atMs: 1000, guest: 'chost-src' as const, rttMs: 12 };

describe('guest signals', () => {
  it('parses what the program prints on a real Linux (this machine\'s /proc)', () => {
    const [cmd, ...args] = guestSignalsArgv();
    const out = execFileSync(cmd!, args, { encoding: 'utf8' });
    const s = parseGuestSignals(out, at);
    expect(s.memTotalMiB).toBeGreaterThan(100);
    expect(s.memAvailableMiB).toBeGreaterThan(0);
    expect(s.memAvailableMiB!).toBeLessThanOrEqual(s.memTotalMiB!);
    expect(s.load1).toBeGreaterThanOrEqual(0);
    expect(s.tasks).toBeGreaterThan(0);
    expect(s.psiMemSome10).toBeGreaterThanOrEqual(0);
  });

  it('takes each figure from its own file and leaves out what a file lacks', () => {
    const file = (name: string, body: string) => body.split('\n').filter(Boolean).map((l) => `${name}:${l}`).join('\n');
    const text = [
      file('/proc/meminfo', 'MemTotal:        2014000 kB\nMemFree: 10 kB\nMemAvailable:     102400 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n'),
      file('/proc/pressure/memory', 'some avg10=42.50 avg60=10.00 avg300=1.00 total=100\nfull avg10=30.25 avg60=1.00 avg300=0.00 total=50\n'),
      file('/proc/pressure/cpu', 'some avg10=88.00 avg60=1.00 avg300=0.00 total=9\n'),
      // grep's complaint about a missing file goes to stderr: /proc/pressure/io has no lines.
      file('/proc/loadavg', '7.50 2.00 1.00 3/812 999\n'),
    ].join('\n');
    const s = parseGuestSignals(text, at);
    expect(s).toEqual({ ...at, memAvailableMiB: 100, memTotalMiB: 1966.8, swapTotalMiB: 0, swapFreeMiB: 0, psiMemSome10: 42.5, psiMemFull10: 30.25, psiCpuSome10: 88, load1: 7.5, tasks: 812 });
    expect(s.psiIoSome10).toBeUndefined();
  });

  it('gives only the time and the round trip for a reply with nothing in it', () => {
    expect(parseGuestSignals('', at)).toEqual(at);
  });
});
