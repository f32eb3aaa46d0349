// Known bugs of the QEMU that runs here, each with the release that fixed it and what miglab
// does about it. Decided from `qemu-system-x86_64 --version`, read once per program file (program-facts.ts).
import { oncePerHost } from '../host/once-per-host.js';
import { rememberedFact } from '../host/program-facts.js';

export interface QemuRelease {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
  /** The first line of `--version`, e.g. "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)". */
  readonly line: string;
}

export function parseQemuVersion(output: string): QemuRelease | undefined {
  const line = output.split('\n')[0]?.trim() ?? '';
  const m = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(line);
  return m ? { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3] ?? 0), line } : undefined;
}

/** The QEMU release on `host` (one `--version` per host and process). */
export const qemuRelease = oncePerHost((host) =>
  rememberedFact('qemu-release', host, 'qemu-system-x86_64', async (): Promise<QemuRelease> => {
    const r = await host.run(['qemu-system-x86_64', '--version']);
    const parsed = parseQemuVersion(r.stdout);
    if (!parsed) throw new Error(`cannot read QEMU's version from "${r.stdout.split('\n')[0]}"`);
    return parsed;
  }),
);

/**
 * QEMU before 9.0 loses guest writes during pre-copy under TCG. The fast path of the dirty-bitmap
 * sync (taken when a RAM block's length is a multiple of 64 pages) clears the migration bits
 * without re-arming TCG's TLB, so later stores through the TLB mark nothing dirty and those pages
 * are never sent again (fixed upstream by "physmem: Fix migration dirty bitmap coherency with TCG
 * memory access", QEMU 9.0). Measured here on 7.2.22: an idle 256 MiB guest migrated at 4 MiB/s
 * arrived with 9-26 pages different from the paused source and its kernel crashed; with the RAM
 * 8 KiB larger (not a multiple of 256 KiB, so the slow path that does re-arm the TLB is taken)
 * 0 pages differed and the guest ran on.
 */
export const TCG_RAM_PAD_KIB = 8;

export function tcgLosesPrecopyWrites(v: QemuRelease): boolean {
  return v.major < 9;
}

/** The RAM pad a guest gets (both sides decide it the same way, from both builds, so their RAM sizes match). */
export function ramPadFor(accel: 'kvm' | 'tcg', releases: readonly QemuRelease[]): number | undefined {
  return accel === 'tcg' && releases.some(tcgLosesPrecopyWrites) ? TCG_RAM_PAD_KIB : undefined;
}
