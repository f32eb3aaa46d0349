// The console lines here were captured from miglab's own guest (Debian 6.1.0-57-amd64 under QEMU
// 7.2 TCG): the OOM kill from the guest-oom fault on a 128 MiB guest (its <run>/src.serial.log),
// and the panic from the image's kernel booted with its initrd truncated to a tenth.
import { CRASH_SIGNS, cleanConsoleLine, consoleTrouble } from '../../../src/machine/console-trouble.js';

const OOM_KILL =
  '[   13.721292] Out of memory: Killed process 131 (miglab-agent) total-vm:58540kB, anon-rss:37756kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:124kB oom_score_adj:1000';
const PANIC = '[    1.800066] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)';
// With `quiet`, SeaBIOS's "Booting from ROM.." has no newline, so the first kernel message that
// passes the log level shares its line (captured with the initrd truncated to half).
const AFTER_BIOS = 'Booting from ROM..[    1.411639] Initramfs unpacking failed: read error';

describe('consoleTrouble', () => {
  it('recognises the OOM killer killing the agent, with its pid and name', () => {
    expect(consoleTrouble(OOM_KILL)).toEqual({
      kind: 'oom',
      pid: 131,
      process: 'miglab-agent',
      line: OOM_KILL.replace('[   13.721292] ', ''),
    });
    // The memory cgroup variant and the pre-5.0 form say the same thing.
    expect(consoleTrouble('[  99.1] Memory cgroup out of memory: Killed process 77 (stress-ng) total-vm:1kB, anon-rss:1kB')).toMatchObject({ kind: 'oom', pid: 77, process: 'stress-ng' });
    expect(consoleTrouble('[  5.0] Killed process 12 (iperf3) total-vm:8000kB, anon-rss:100kB, file-rss:0kB')).toMatchObject({ kind: 'oom', pid: 12, process: 'iperf3' });
    // The reaper's line after the kill is not a second kill.
    expect(consoleTrouble('[   13.8] oom_reaper: reaped process 131 (miglab-agent), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB')).toBeUndefined();
  });

  it('recognises a kernel panic and keeps its reason', () => {
    expect(consoleTrouble(PANIC)).toEqual({
      kind: 'panic',
      reason: 'VFS: Unable to mount root fs on unknown-block(0,0)',
      line: 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)',
    });
    // The closing marker (printed when the kernel does not reboot at once) gives the same reason.
    expect(consoleTrouble('[    1.9] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---')).toMatchObject({
      kind: 'panic',
      reason: 'VFS: Unable to mount root fs on unknown-block(0,0)',
    });
    expect(consoleTrouble('[   20.1] Kernel panic - not syncing: System is deadlocked on memory')).toMatchObject({ kind: 'panic', reason: 'System is deadlocked on memory' });
  });

  it('recognises the kernel crashing', () => {
    const lines: Record<(typeof CRASH_SIGNS)[number], string> = {
      'general protection fault': '[   7.2] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP NOPTI',
      'BUG: unable to handle': '[   7.2] BUG: unable to handle page fault for address: ffffffffc0a01000',
      'BUG: kernel NULL pointer dereference': '[   7.2] BUG: kernel NULL pointer dereference, address: 0000000000000008',
      'kernel BUG at': '[   7.2] kernel BUG at mm/slub.c:379!',
      Oops: '[   7.2] Oops: 0002 [#1] PREEMPT SMP NOPTI',
    };
    for (const [what, line] of Object.entries(lines)) expect(consoleTrouble(line)).toEqual({ kind: 'crash', what, line: line.replace('[   7.2] ', '') });
  });

  it('recognises the agent exiting, also after output without a newline', () => {
    expect(consoleTrouble('MIGLAB-AGENT-EXIT status=137')).toEqual({ kind: 'agent-exit', status: 137, line: 'MIGLAB-AGENT-EXIT status=137' });
    expect(consoleTrouble('KilledMIGLAB-AGENT-EXIT status=3\r')).toEqual({ kind: 'agent-exit', status: 3, line: 'MIGLAB-AGENT-EXIT status=3' });
  });

  it('leaves a healthy guest alone', () => {
    for (const line of [
      'MIGLAB-HB seq=12 mono_ns=3506941979 boot=ab6bdb4af1204e1a',
      'MIGLAB-READY ip=10.77.0.100 boot=b4c4bc806f299392',
      'MIGLAB-OOM eating step_mib=8 mem_available_kib=45164',
      'Killed',
      '[    0.092196] Kernel command line: console=ttyS0 quiet panic=-1 miglab.ip=10.77.0.100/24',
      '',
    ]) {
      expect(consoleTrouble(line)).toBeUndefined();
    }
  });
});

describe('a broken initramfs', () => {
  it('is trouble (half an initrd boots, without what the lost half held)', () => {
    expect(consoleTrouble(AFTER_BIOS)).toEqual({ kind: 'initramfs', line: 'Initramfs unpacking failed: read error' });
  });
});

describe('cleanConsoleLine', () => {
  it('drops escapes, what came before the time stamp, and the stamp', () => {
    expect(cleanConsoleLine(AFTER_BIOS)).toBe('Initramfs unpacking failed: read error');
    expect(cleanConsoleLine('\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r')).toBe('SeaBIOS (version 1.16.2-debian-1.16.2-1)');
    expect(cleanConsoleLine('[    1.5][    T1] Run /init as init process')).toBe('Run /init as init process');
  });
});
