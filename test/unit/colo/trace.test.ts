// COLO's checkpoints read from QEMU's trace: lines as QEMU 11.1.3 wrote them in a real run here
// (the ISO stamp of -msg timestamp=on) and as 7.2-10.x write them (thread@seconds.µs:).
import { describe, expect, it } from '@jest/globals';
import { readPrimaryTrace, readSecondaryTrace } from '../../../src/colo/trace.js';
import { parseTraceLogLine } from '../../../src/qemu/trace-log.js';
import { checkpointFigures } from '../../../src/colo/record.js';

// A miscompare forcing a checkpoint, then a periodic one; from a real 11.1.3 primary (times shifted).
const PRIMARY_11 = `2026-12-04T17:28:06.278519Z colo_receive_message Receive 'checkpoint-ready' message
2026-12-04T17:28:06.279547Z colo_vm_state_change Change 'stop' => 'run'
2026-12-04T17:28:06.344560Z colo_compare_main : primary: unsupported packet in
2026-12-04T17:28:06.398626Z colo_compare_main : compare udp
2026-12-04T17:28:06.398674Z colo_compare_udp_miscompare : primary pkt size = 62
2026-12-04T17:28:06.398678Z colo_compare_udp_miscompare : Secondary pkt size = 62
2026-12-04T17:28:06.398681Z colo_compare_main : packet different
2026-12-04T17:28:06.398763Z colo_send_message Send 'checkpoint-request' message
2026-12-04T17:28:06.400879Z colo_receive_message Receive 'checkpoint-reply' message
2026-12-04T17:28:06.402822Z colo_vm_state_change Change 'run' => 'stop'
2026-12-04T17:28:06.402848Z colo_send_message Send 'vmstate-send' message
2026-12-04T17:28:06.463642Z colo_receive_message Receive 'vmstate-loaded' message
2026-12-04T17:28:06.464835Z colo_vm_state_change Change 'stop' => 'run'
2026-12-04T17:28:07.464900Z colo_send_message Send 'checkpoint-request' message
2026-12-04T17:28:07.470000Z colo_vm_state_change Change 'run' => 'stop'
2026-12-04T17:28:07.520000Z colo_vm_state_change Change 'stop' => 'run'
2026-12-04T17:28:08.520100Z colo_send_message Send 'checkpoint-request' message
2026-12-04T17:28:08.525000Z colo_vm_state_change Change 'run' => 'stop'
`;

const ms = (iso: string) => Date.parse(iso);

describe('parseTraceLogLine', () => {
  it('reads both stamps QEMU writes, to the µs', () => {
    expect(parseTraceLogLine("2026-12-04T17:28:06.398763Z colo_send_message Send 'checkpoint-request' message")).toEqual({ atMs: ms('2026-12-04T17:28:06.398Z') + 0.763, event: 'colo_send_message', args: "Send 'checkpoint-request' message" });
    expect(parseTraceLogLine('1234@1796386747.367432:colo_flush_ram_cache_begin dirty_pages 189')).toEqual({ atMs: 1796386747367.432, event: 'colo_flush_ram_cache_begin', args: 'dirty_pages 189' });
    expect(parseTraceLogLine('2026-12-04T17:28:06.448778Z colo_flush_ram_cache_end ')?.args).toBe('');
  });

  it('skips what is not a stamped event: QEMU\'s other messages, an unstamped line', () => {
    expect(parseTraceLogLine('qemu-system-x86_64: Can\'t receive COLO message: Input/output error')).toBeUndefined();
    expect(parseTraceLogLine("colo_send_message Send 'checkpoint-request' message")).toBeUndefined();
  });
});

describe('readPrimaryTrace', () => {
  it('finds lock-step, each checkpoint with the pause it cost and whether a miscompare forced it', () => {
    const t = readPrimaryTrace(PRIMARY_11);
    expect(t.readyAtMs).toBeCloseTo(ms('2026-12-04T17:28:06.278Z') + 0.519, 3);
    expect(t.checkpoints).toHaveLength(3);
    // The UDP miscompare: two per-side lines, one "packet different": one miscompare.
    expect(t.miscompares).toHaveLength(1);
    expect(t.checkpoints.map((c) => c.forced)).toEqual([true, false, false]);
    expect(t.checkpoints[0]!.pauseMs).toBeCloseTo(62.013, 3);
    expect(t.checkpoints[1]!.pauseMs).toBeCloseTo(50, 3);
    // The trace ends with the guest paused (the primary was killed mid-checkpoint): no pause figure.
    expect(t.checkpoints[2]!.pauseMs).toBeUndefined();
  });

  it('reads the older stamp the same way', () => {
    const old = `99@1796386746.367000:colo_receive_message Receive 'checkpoint-ready' message
99@1796386747.367432:colo_send_message Send 'checkpoint-request' message
99@1796386747.371564:colo_vm_state_change Change 'run' => 'stop'
99@1796386747.420000:colo_vm_state_change Change 'stop' => 'run'`;
    const t = readPrimaryTrace(old);
    expect(t.checkpoints).toEqual([{ atMs: 1796386747367.432, pauseMs: 48.436, forced: false }]);
  });
});

describe('checkpointFigures', () => {
  it('sums up the lock-step up to the primary\'s loss', () => {
    const p = readPrimaryTrace(PRIMARY_11);
    const s = readSecondaryTrace("2026-12-04T17:28:06.443025Z colo_flush_ram_cache_begin dirty_pages 14708\n2026-12-04T17:28:06.448778Z colo_flush_ram_cache_end \n2026-12-04T17:28:07.500000Z colo_flush_ram_cache_begin dirty_pages 14702\n");
    const killed = ms('2026-12-04T17:28:09.278Z') + 0.519;
    const f = checkpointFigures(p, s, killed)!;
    expect(f.count).toBe(3);
    expect(f.lockStepMs).toBe(3000);
    expect(f.forced).toBe(1);
    expect(f.miscompares).toBe(1);
    expect(f.intervalMs.median).toBeCloseTo(1060.7, 1);
    expect(f.pauseMs).toMatchObject({ count: 2, max: 62 });
    expect(f.pausedShare).toBeCloseTo(0.037, 3);
    expect(f.dirtyPages).toMatchObject({ count: 2, median: 14705 });
  });

  it('has nothing to say when the pair never reached lock-step', () => {
    expect(checkpointFigures(readPrimaryTrace(''), readSecondaryTrace(''), Date.now())).toBeUndefined();
  });
});
