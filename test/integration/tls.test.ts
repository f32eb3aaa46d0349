// TLS for the migration stream with real QEMU in a real lab, without the engine: the lab's
// certificates, a source QEMU in `src` (tls-creds-x509 endpoint=client) and a destination in `dst`
// (endpoint=server, -incoming on its lab address), the TLS parameters set through QMP, and a QMP
// `migrate`. What a user would notice if it broke: the guest carries on at the destination over
// TLS; a source that does not speak TLS is refused while the destination keeps waiting for a
// proper one; a source checks the name on the destination's certificate.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createDataDisk } from '../../src/image/disk.js';
import { ensureTlsCredentials, type TlsCredentialSet } from '../../src/lab/tls.js';
import { startLabGuest } from '../../src/machine/lab-guest.js';
import { parseMachineSpec } from '../../src/machine/spec.js';
import type { Vm } from '../../src/machine/vm.js';
import { fromQueryMigrate, isFinalMigrationStatus, type MigrationInfo } from '../../src/migration/info.js';
import { QmpMigrationDriver, tlsParameters } from '../../src/migrate/monitor.js';
import { pollUntil } from '../../src/util/deadline.js';
import { Teardown } from '../../src/util/teardown.js';
import { takeSlot, useSharedLab } from '../support/shared-lab.js';

const BOOT_MS = 60_000;
const MIGRATE_MS = 30_000;
const CALL = { timeoutMs: 10_000 };
const fx = useSharedLab('tls');

let creds: TlsCredentialSet;
beforeAll(async () => {
  creds = await ensureTlsCredentials(join(fx.lab.paths.labDir, 'tls'), { serverAddress: fx.lab.hosts.dst.ip, label: fx.lab.spec.prefix, timeoutMs: 20_000 });
}, 30_000);

interface Pair {
  readonly src: Vm;
  readonly dst: Vm;
  readonly uri: string;
}

/** A 256 MiB guest on `src` and its destination on `dst`, both with the lab's TLS credentials. */
async function bootPair(td: Teardown, port: number): Promise<Pair> {
  const { index, lab } = await takeSlot(fx.lab, td, `tls${port}`);
  const name = `tls${index}`;
  const runDir = join(fx.runDir, name);
  mkdirSync(runDir, { recursive: true });
  const spec = parseMachineSpec({ name, accel: 'tcg', memoryMiB: 256, mac: lab.guestMac(index), ip: `${lab.guestIp(index)}/${lab.prefixLength}` });
  const diskFile = `tls-${name}.qcow2`;
  await createDataDisk(lab.nfs.host, lab.nfs.path(diskFile), 16, { overwrite: true });
  td.defer(`remove data disk ${diskFile}`, () => lab.nfs.host.remove(lab.nfs.path(diskFile)));
  const uri = `tcp:${lab.hosts.dst.ip}:${port}`;
  const common = { lab, spec, accel: 'tcg' as const, media: { ...fx.image, diskUrl: lab.nfs.url(diskFile) }, runDir, teardown: td, timeoutMs: BOOT_MS };
  const [src, dst] = await Promise.all([
    startLabGuest({ ...common, side: 'src', role: 'source', tls: { dir: creds.dir, endpoint: 'client' } }),
    startLabGuest({ ...common, side: 'dst', role: 'destination', incomingUri: uri, tls: { dir: creds.dir, endpoint: 'server' } }),
  ]);
  return { src, dst, uri };
}

/** Start a migration and wait for QEMU's final MIGRATION event; then QEMU's own figures. */
async function migrate(driver: QmpMigrationDriver, vm: Vm, uri: string): Promise<MigrationInfo> {
  const events = vm.qmp.events('MIGRATION');
  try {
    await driver.start(uri);
    await events.next({ timeoutMs: MIGRATE_MS }, (e) => isFinalMigrationStatus(String(e.data.status)), `the migration to ${uri} to end`);
  } finally {
    events.close();
  }
  // QEMU 7.2 reports `completed` a moment before it computes total-time, downtime and mbps
  // (migration_calculate_complete runs after the migration thread's loop): until then they read 0.
  return pollUntil(
    'QEMU to finish the migration figures',
    async () => {
      const info = fromQueryMigrate(await vm.qmp.queryMigrate(CALL));
      return info.status !== 'completed' || (info.totalTimeMs ?? 0) > 0 ? info : undefined;
    },
    { timeoutMs: 5_000, intervalMs: 10 },
  );
}

describe('a TLS migration stream', () => {
  it('migrates a guest over TLS, both sides verified, and the guest carries on at the destination', async () => {
    const td = new Teardown();
    try {
      const { src, dst, uri } = await bootPair(td, 4444);
      const dstIp = fx.lab.hosts.dst.ip;
      expect(src.command.argv).toContain(`tls-creds-x509,id=miglab-tls,dir=${creds.dir},endpoint=client,verify-peer=on`);
      expect(dst.command.argv).toContain(`tls-creds-x509,id=miglab-tls,dir=${creds.dir},endpoint=server,verify-peer=on`);
      await src.console.waitReady({ timeoutMs: BOOT_MS });

      const out = new QmpMigrationDriver(src.qmp);
      await new QmpMigrationDriver(dst.qmp).setTls(tlsParameters('destination', dstIp));
      await out.setTls(tlsParameters('source', dstIp));
      await out.setCapabilities({ events: true });
      expect(await src.qmp.queryMigrateParameters(CALL)).toMatchObject({ 'tls-creds': 'miglab-tls', 'tls-hostname': dstIp });
      expect(await dst.qmp.queryMigrateParameters(CALL)).toMatchObject({ 'tls-creds': 'miglab-tls' });

      const info = await migrate(out, src, uri);
      expect(info).toMatchObject({ status: 'completed' });
      expect(info.ram!.transferredBytes).toBeGreaterThan(1024 * 1024);
      console.log(`TLS migration: ${info.totalTimeMs} ms, ${info.ram!.transferredBytes} bytes, ${info.ram!.mbps?.toFixed(0)} Mbit/s, downtime ${info.downtimeMs} ms`);

      const status = await pollUntil(
        'the destination to resume the guest',
        async () => {
          const s = await dst.qmp.queryStatus(CALL);
          return s.status === 'inmigrate' ? undefined : s;
        },
        { timeoutMs: 20_000, intervalMs: 20 },
      );
      expect(status).toMatchObject({ status: 'running', running: true });
      const last = src.console.last!;
      const beat = await dst.console.waitBeat((hb) => hb.seq > last.seq, { timeoutMs: 15_000 });
      expect(beat.bootId).toBe(last.bootId);
    } finally {
      expect(await td.run()).toEqual([]);
    }
  }, 90_000);

  it('refuses a source without tls-creds, and the destination still takes a TLS one afterwards', async () => {
    const td = new Teardown();
    try {
      const { src, dst, uri } = await bootPair(td, 4446);
      const dstIp = fx.lab.hosts.dst.ip;
      await new QmpMigrationDriver(dst.qmp).setTls(tlsParameters('destination', dstIp));
      const out = new QmpMigrationDriver(src.qmp);
      await out.setCapabilities({ events: true });

      // Plain TCP to a TLS destination: the destination finds no TLS handshake and drops the
      // connection; the source fails writing to it.
      const plain = await migrate(out, src, uri);
      expect(plain.status).toBe('failed');
      expect(plain.errorDesc).toMatch(/socket|connection|pipe/i);
      const refusal = await pollUntil(
        'the destination to report the refused handshake',
        () => dst.process.tail().split('\n').find((l) => l.includes('TLS handshake failed')),
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      console.log(`plain source -> TLS destination: source "${plain.errorDesc}"; destination "${refusal.trim()}"`);
      // It stays waiting for a proper source (QEMU keeps listening until a stream gets through).
      expect(await dst.qmp.queryStatus(CALL)).toMatchObject({ status: 'inmigrate' });

      await out.setTls(tlsParameters('source', dstIp));
      expect(await migrate(out, src, uri)).toMatchObject({ status: 'completed' });
    } finally {
      expect(await td.run()).toEqual([]);
    }
  }, 90_000);

  it('fails on the source when the destination\'s certificate is not for the expected name', async () => {
    const td = new Teardown();
    try {
      const { src, dst, uri } = await bootPair(td, 4448);
      const dstIp = fx.lab.hosts.dst.ip;
      await new QmpMigrationDriver(dst.qmp).setTls(tlsParameters('destination', dstIp));
      const out = new QmpMigrationDriver(src.qmp);
      await out.setCapabilities({ events: true });
      await out.setTls({ ...tlsParameters('source', dstIp), tlsHostname: '10.77.0.99' });
      const wrongName = await migrate(out, src, uri);
      expect(wrongName).toMatchObject({ status: 'failed', errorDesc: 'Certificate does not match the hostname 10.77.0.99' });
      // Under TLS 1.3 the destination has finished its side of the handshake (it accepted the
      // source's certificate) when the source gives up, so it reads a broken stream and QEMU exits.
      const exit = await pollUntil('the destination to give up', () => (dst.process.hasExited ? dst.process.exited : undefined), { timeoutMs: 10_000, intervalMs: 50 });
      console.log(`TLS source expecting 10.77.0.99: source "${wrongName.errorDesc}"; destination exited ${exit.exitCode}: ${dst.process.tail(2).replace(/\n/g, ' | ')}`);
      expect(exit.exitCode).not.toBe(0);
    } finally {
      expect(await td.run()).toEqual([]);
    }
  }, 90_000);
});
