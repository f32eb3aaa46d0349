// The source held for a person gets a QMP socket of their own besides miglab's: QEMU's QMP socket
// serves one client at a time, so socat on miglab's would wait forever. Unix sockets only.
import { describe, expect, it } from '@jest/globals';
import { buildQemuCommand, type LaunchPlan } from '../../../src/machine/argv.js';
import { parseMachineSpec } from '../../../src/machine/spec.js';

const spec = parseMachineSpec({ name: 'g0', memoryMiB: 256, mac: '52:54:00:77:00:00', ip: '10.77.0.100/24' });
const plan: LaunchPlan = {
  role: 'source',
  accel: 'tcg',
  qmpSocket: '/run/x/src.qmp',
  hmpSocket: '/run/x/src.hmp',
  hmpTelnetPort: 4445,
  media: { kernelPath: '/img/vmlinuz', initrdPath: '/img/initrd' },
};

const qmpArgs = (p: LaunchPlan) => {
  const { argv } = buildQemuCommand(spec, p);
  return argv.flatMap((a, i) => (a === '-qmp' ? [argv[i + 1]!] : []));
};

describe("the person's QMP socket", () => {
  it('is a second -qmp on a unix socket, explained', () => {
    expect(qmpArgs({ ...plan, personQmpSocket: '/run/x/hand.qmp' })).toEqual(['unix:/run/x/src.qmp,server=on,wait=off', 'unix:/run/x/hand.qmp,server=on,wait=off']);
    const why = buildQemuCommand(spec, { ...plan, personQmpSocket: '/run/x/hand.qmp' }).explained.find((g) => g.args.includes('unix:/run/x/hand.qmp,server=on,wait=off'))!.why;
    expect(why).toMatch(/one client at a time/);
  });

  it('is absent unless asked for', () => {
    expect(qmpArgs(plan)).toEqual(['unix:/run/x/src.qmp,server=on,wait=off']);
  });
});
