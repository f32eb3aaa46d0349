// The guest side of fault injection, on a real lab with one real 128 MiB TCG guest. What a user
// would notice if it broke: the agent and iperf3 listen on the guest's lab address only; a TCP
// check from the guest and from the client says "refused" for a closed port and "open" for an
// open one; and the guest-oom fault really ends with the guest kernel's OOM killer killing the
// agent, visible on the serial console, followed by init's MIGLAB-AGENT-EXIT line.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TimeoutError } from '../../src/errors.js';
import { AgentClient } from '../../src/guest/agent-client.js';
import { tcpConnectFrom } from '../../src/guest/tcp-connect.js';
import { consoleTrouble, type ConsoleTrouble } from '../../src/machine/console-trouble.js';
import { startSingleGuest } from '../../src/machine/lab-guest.js';
import { parseMachineSpec } from '../../src/machine/spec.js';
import { pollUntil } from '../../src/util/deadline.js';
import { Teardown } from '../../src/util/teardown.js';
import { takeSlot, useSharedLab } from '../support/shared-lab.js';

const fx = useSharedLab('guest-faults');
/** A port nothing in the lab listens on (discard): a connect to a live host is refused. */
const CLOSED_PORT = 9;

function troubles(serialLog: string): ConsoleTrouble[] {
  return readFileSync(serialLog, 'utf8')
    .split(/\r?\n/)
    .map(consoleTrouble)
    .filter((t): t is ConsoleTrouble => t !== undefined);
}

describe('guest faults', () => {
  it('binds to the lab address, tells refused from open, and dies by the OOM killer on `oom`', async () => {
    const td = new Teardown();
    try {
      const { index, lab: l } = await takeSlot(fx.lab, td, 'gf');
      const ip = l.guestIp(index);
      const spec = parseMachineSpec({ name: `gf${index}`, accel: 'tcg', memoryMiB: 128, mac: l.guestMac(index), ip: `${ip}/${l.prefixLength}`, iperfServer: true });
      const vm = await startSingleGuest({ lab: l, media: fx.image, spec, accel: 'tcg', runDir: fx.runDir, teardown: td, diskFile: `guest-faults-gf${index}.qcow2`, diskSizeMiB: 16, timeoutMs: 60_000 });
      const agent = new AgentClient({ host: l.hosts.client.host, guestIp: ip, toolPath: fx.toolPath });
      await agent.waitReachable({ timeoutMs: 20_000 });

      const info = await agent.info();
      expect(info.udpBind).toBe(ip); // not 0.0.0.0
      expect(info.memAvailableKiB).toBeGreaterThan(0);
      expect(info.memAvailableKiB).toBeLessThan(info.memTotalKiB);

      // From the guest to the src host: the host is there, the port is closed.
      const fromGuest = await agent.tcpConnect(l.hosts.src.ip, CLOSED_PORT, { timeoutMs: 3000 });
      expect(fromGuest.result).toBe('refused');
      expect(fromGuest.elapsedMs).toBeLessThan(3000);
      // From the client namespace: the same closed port, and the guest's iperf3 on its lab address.
      expect((await tcpConnectFrom(l.hosts.client.host, fx.toolPath, l.hosts.src.ip, CLOSED_PORT, { timeoutMs: 3000 })).result).toBe('refused');
      expect((await tcpConnectFrom(l.hosts.client.host, fx.toolPath, ip, 5201, { timeoutMs: 3000 })).result).toBe('open');

      const serialLog = join(fx.runDir, `${vm.label}.serial.log`);
      const sentAt = Date.now();
      await agent.startOom();
      const seen = await pollUntil(
        'the OOM kill of miglab-agent and MIGLAB-AGENT-EXIT on the serial console',
        () => {
          const t = troubles(serialLog);
          return t.some((x) => x.kind === 'agent-exit') ? t : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      console.log(`guest-oom: agent gone ${Date.now() - sentAt} ms after the request; console: ${seen.map((t) => t.line).join(' | ')}`);
      expect(seen).toEqual([
        expect.objectContaining({ kind: 'oom', process: 'miglab-agent', pid: expect.any(Number) }),
        expect.objectContaining({ kind: 'agent-exit', status: 137 }), // 128 + SIGKILL
      ]);
      expect(readFileSync(serialLog, 'utf8')).toMatch(/Out of memory: Killed process \d+ \(miglab-agent\)/);
      // The agent is gone for good: nothing answers any more.
      await expect(agent.ping({ timeoutMs: 500 })).rejects.toThrow(TimeoutError);
    } finally {
      expect(await td.run()).toEqual([]);
    }
  }, 90_000);
});
