// The hand-replay scripts in qmp-scripts/ must stay valid and say what the driver really sends.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hmpParameterCommands, qmpParameters } from '../../../src/migrate/monitor.js';

const dir = join(process.cwd(), 'qmp-scripts');
const lines = (f: string) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l.trim());

describe('qmp-scripts', () => {
  it('QMP scripts are one JSON command per line, starting with capability negotiation', () => {
    for (const f of ['migrate.qmp.jsonl', 'cancel.qmp.jsonl']) {
      const msgs = lines(f).map((l) => JSON.parse(l) as { execute: string });
      expect(msgs[0]!.execute).toBe('qmp_capabilities');
      for (const m of msgs) expect(m.execute).toMatch(/^[a-z_-]+$/);
    }
  });

  it('the parameters in the scripts are the ones the driver sends for 1 GiB/s and 300 ms', () => {
    const setParams = lines('migrate.qmp.jsonl').map((l) => JSON.parse(l)).find((m) => m.execute === 'migrate-set-parameters');
    expect(setParams.arguments).toEqual(qmpParameters({ maxBandwidthMiBps: 1024, downtimeLimitMs: 300 }));
    for (const cmd of hmpParameterCommands({ maxBandwidthMiBps: 1024, downtimeLimitMs: 300 })) expect(lines('migrate.hmp')).toContain(cmd);
    expect(lines('migrate.hmp')).toContain('migrate -d tcp:10.77.0.2:4444');
  });
});
