// TLS for the migration stream, without QEMU: the credentials object on QEMU's command line, the
// parameters that name it on both monitors (against the fake monitors on real sockets), and the
// scenario and CLI switch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scenarioFromArgs } from '../../../src/cli/options.js';
import { HmpClient } from '../../../src/hmp/index.js';
import { buildQemuCommand, TLS_CREDS_ID, type LaunchPlan } from '../../../src/machine/argv.js';
import { parseMachineSpec } from '../../../src/machine/spec.js';
import { HmpMigrationDriver, hmpTlsParameterCommands, QmpMigrationDriver, qmpTlsParameters, tlsParameters } from '../../../src/migrate/monitor.js';
import { parseScenario, scenarioName } from '../../../src/migrate/scenario.js';
import { QmpClient } from '../../../src/qmp/index.js';
import { FakeHmpServer } from '../../support/fake-hmp.js';
import { FakeQmpServer } from '../../support/fake-qmp.js';

const spec = parseMachineSpec({ name: 'g0', memoryMiB: 256, mac: '52:54:00:77:00:00', ip: '10.77.0.100/24' });
const plan: LaunchPlan = {
  role: 'destination',
  accel: 'tcg',
  qmpSocket: '/run/x/dst.qmp',
  incomingUri: 'tcp:10.77.0.2:4444',
  media: { kernelPath: '/img/vmlinuz', initrdPath: '/img/initrd' },
};
const valueOf = (argv: readonly string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));

describe('TLS on the QEMU command line', () => {
  it('loads the credentials as server on the destination and client on the source, both verifying the peer', () => {
    const dst = buildQemuCommand(spec, { ...plan, tls: { dir: '/run/miglab/htl/tls', endpoint: 'server' } });
    expect(valueOf(dst.argv, '-object')).toEqual([`tls-creds-x509,id=${TLS_CREDS_ID},dir=/run/miglab/htl/tls,endpoint=server,verify-peer=on`]);
    const src = buildQemuCommand(spec, { ...plan, role: 'source', incomingUri: undefined, tls: { dir: '/run/miglab/htl/tls', endpoint: 'client' } });
    expect(valueOf(src.argv, '-object')).toEqual([`tls-creds-x509,id=${TLS_CREDS_ID},dir=/run/miglab/htl/tls,endpoint=client,verify-peer=on`]);
    // The report's command explanation covers it.
    expect(dst.explained.flatMap((g) => g.args)).toEqual(dst.argv);
    expect(dst.explained.find((g) => g.args[0] === '-object')!.why).toMatch(/verify-peer=on: each side checks the other's certificate/);
  });

  it('leaves TLS out unless asked, and keeps a comma in the directory inside the option', () => {
    expect(buildQemuCommand(spec, plan).argv).not.toContain('-object');
    const odd = buildQemuCommand(spec, { ...plan, tls: { dir: '/tmp/a,b', endpoint: 'server' } }).argv;
    expect(valueOf(odd, '-object')[0]).toContain('dir=/tmp/a,,b,endpoint=server');
  });
});

describe('TLS migration parameters', () => {
  it('names the credentials object on both sides and the destination address on the source', () => {
    expect(tlsParameters('source', '10.77.0.2')).toEqual({ tlsCreds: TLS_CREDS_ID, tlsHostname: '10.77.0.2' });
    expect(tlsParameters('destination', '10.77.0.2')).toEqual({ tlsCreds: TLS_CREDS_ID });
    expect(qmpTlsParameters(tlsParameters('source', '10.77.0.2'))).toEqual({ 'tls-creds': 'miglab-tls', 'tls-hostname': '10.77.0.2' });
    expect(hmpTlsParameterCommands(tlsParameters('source', '10.77.0.2'))).toEqual([
      'migrate_set_parameter tls-creds miglab-tls',
      'migrate_set_parameter tls-hostname 10.77.0.2',
    ]);
    expect(hmpTlsParameterCommands(tlsParameters('destination', '10.77.0.2'))).toEqual(['migrate_set_parameter tls-creds miglab-tls']);
  });

  describe('through the monitors', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'miglab-tls-mon-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('QMP: one migrate-set-parameters, kept for the report', async () => {
      const fake = await FakeQmpServer.start(join(dir, 'q.sock'), { handlers: { 'migrate-set-parameters': () => ({ return: {} }) } });
      const qmp = await QmpClient.connect(fake.path, { timeoutMs: 5000 });
      try {
        const driver = new QmpMigrationDriver(qmp);
        await driver.setTls(tlsParameters('source', '10.77.0.2'));
        expect(fake.received.filter((r) => r.execute === 'migrate-set-parameters').map((r) => r.arguments)).toEqual([
          { 'tls-creds': 'miglab-tls', 'tls-hostname': '10.77.0.2' },
        ]);
        expect(driver.sent).toEqual(['{"execute":"migrate-set-parameters","arguments":{"tls-creds":"miglab-tls","tls-hostname":"10.77.0.2"}}']);
      } finally {
        await qmp.close();
        await fake.close();
      }
    });

    it('HMP: one migrate_set_parameter per parameter', async () => {
      const fake = await FakeHmpServer.start(join(dir, 'h.sock'), () => ({ output: '' }));
      const hmp = await HmpClient.connectUnix(fake.path, { timeoutMs: 5000 });
      try {
        const driver = new HmpMigrationDriver(hmp);
        await driver.setTls(tlsParameters('destination', '10.77.0.2'));
        expect(fake.received).toEqual(['migrate_set_parameter tls-creds miglab-tls']);
        expect(driver.sent).toEqual(['migrate_set_parameter tls-creds miglab-tls']);
      } finally {
        await hmp.close();
        await fake.close();
      }
    });
  });
});

describe('the tls switch of a scenario', () => {
  const args = { memory: '256M', vcpus: 1, accel: 'tcg', cpu: 'qemu64', nic: 'virtio-net-pci', disk: 'virtio', 'disk-size': '64M', monitor: 'qmp', port: '4444', 'sample-interval': '100ms', timeout: '30s' };
  it('is off by default, on with --tls, and named in the run', () => {
    expect(parseScenario({}).tls).toBe(false);
    expect(scenarioName(parseScenario(scenarioFromArgs(args)))).toBe('256m-idle-virtio-virtio-qmp');
    const on = parseScenario(scenarioFromArgs({ ...args, tls: true, capability: ['multifd'] }));
    expect(on.tls).toBe(true);
    expect(scenarioName(on)).toBe('256m-idle-virtio-virtio-qmp-multifd-tls');
  });
});
