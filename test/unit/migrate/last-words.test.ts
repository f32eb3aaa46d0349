// What a QEMU that exits on its own said last: its own error lines, which for a failed incoming
// migration carry the reason on the line before "load of migration failed".
import { describe, expect, it } from '@jest/globals';
import { lastWords } from '../../../src/migrate/watch.js';

describe('lastWords', () => {
  it("keeps QEMU's last two error lines (as a 7.2 destination printed them for a 10.0 source's pc)", () => {
    const tail = "MIGLAB-HB seq=3\nqemu-system-x86_64: Machine type received is 'pc-i440fx-10.0' and local is 'pc-i440fx-7.2'\nqemu-system-x86_64: load of migration failed: Invalid argument\n";
    expect(lastWords(tail)).toBe("qemu-system-x86_64: Machine type received is 'pc-i440fx-10.0' and local is 'pc-i440fx-7.2' / qemu-system-x86_64: load of migration failed: Invalid argument");
  });

  it('reads past the time stamps -msg timestamp=on puts before each line (a run tracing its downtime)', () => {
    const tail = '2026-12-03T17:40:43.709528Z qemu-system-x86_64: error while loading state section id 2(ram)\n2026-12-03T17:40:43.709600Z qemu-system-x86_64: load of migration failed: Input/output error\n';
    expect(lastWords(tail)).toBe('qemu-system-x86_64: error while loading state section id 2(ram) / qemu-system-x86_64: load of migration failed: Input/output error');
  });

  it('falls back to the last line that is not a heartbeat, and to nothing', () => {
    expect(lastWords('booting\nKernel panic - not syncing\nMIGLAB-HB seq=9\n')).toBe('Kernel panic - not syncing');
    expect(lastWords('MIGLAB-HB seq=1\n\n')).toBeUndefined();
  });
});
