// What a build offers for migration, read from its own QMP answers (-machine none, QMP on stdio):
// the lines below are what QEMU 10.0.2 printed, shortened.
import { describe, expect, it } from '@jest/globals';
import { missingOffers, parseOffers } from '../../../src/qemu/offers.js';

const OUT = [
  '{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"}, "capabilities": ["oob"]}}',
  '{"return": {}}',
  '{"return": [{"state": false, "capability": "xbzrle"}, {"state": false, "capability": "postcopy-ram"}, {"state": false, "capability": "mapped-ram"}], "id": "caps"}',
  '{"return": {"max-bandwidth": 134217728, "downtime-limit": 300, "zero-page-detection": "multifd"}, "id": "params"}',
  '{"return": [{"name": "vmstate_downtime_checkpoint", "state": "disabled"}, {"name": "vmstate_downtime_load", "state": "disabled"}, {"name": "vmstate_downtime_save", "state": "unavailable"}], "id": "trace"}',
  '{"return": {}}',
  '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}',
].join('\n');

describe('parseOffers', () => {
  it('reads the capabilities and parameters QEMU answered', () => {
    expect(parseOffers(OUT)).toEqual({
      capabilities: ['xbzrle', 'postcopy-ram', 'mapped-ram'],
      parameters: ['max-bandwidth', 'downtime-limit', 'zero-page-detection'],
      // An unavailable point (a nop trace backend) cannot be enabled: left out.
      downtimeTracePoints: ['vmstate_downtime_checkpoint', 'vmstate_downtime_load'],
    });
  });

  it('has no trace points where QEMU answers none (7.2: trace-event-get-state matches nothing)', () => {
    const seven = OUT.replace(/\[\{"name".*"id": "trace"\}/, '[], "id": "trace"}');
    expect(parseOffers(seven)?.downtimeTracePoints).toEqual([]);
  });

  it('is undefined when QEMU did not answer both', () => {
    expect(parseOffers(OUT.split('\n').slice(0, 3).join('\n'))).toBeUndefined();
    expect(parseOffers('qemu-system-x86_64: -machine none: unsupported\n')).toBeUndefined();
  });
});

describe('missingOffers', () => {
  it('names what a run asks for that the build lacks', () => {
    const offers = parseOffers(OUT)!;
    expect(missingOffers(offers, { capabilities: ['xbzrle', 'compress'], parameters: ['max-bandwidth', 'compress-level'] })).toEqual({ capabilities: ['compress'], parameters: ['compress-level'] });
  });
});
