// The link reader: its answer line parsed, and the real reader (perl reading sysfs) asked for this
// machine's loopback and for a link that does not exist, a line each over one process.
import { LocalHost, NetnsHost } from '../../../src/host/local.js';
import { linkReaderArgv, openLinkReader, parseLinkReaderLine } from '../../../src/measure/link-reader.js';

describe('parseLinkReaderLine', () => {
  test('each link\'s counters in the order of the files read, a gone link said so', () => {
    const m = parseLinkReaderLine('sw-src=up,10,20,1,2,0,3,0,4 sw-dst=-', ['sw-src', 'sw-dst', 'sw-cli']);
    expect(m.get('sw-src')).toEqual({ dev: 'sw-src', operstate: 'UP', rxBytes: 10, txBytes: 20, rxPackets: 1, txPackets: 2, rxDropped: 0, txDropped: 3, rxErrors: 0, txErrors: 4 });
    expect(m.get('sw-dst')).toBe('no such link');
    expect(m.get('sw-cli')).toMatch(/not in the reader's answer/);
  });

  test('a field that is not a number makes the link unreadable, not a zero', () => {
    expect(parseLinkReaderLine('a=up,1,2,x,4,5,6,7,8', ['a']).get('a')).toMatch(/unreadable counters/);
    expect(parseLinkReaderLine('a=up,1,,3,4,5,6,7,8', ['a']).get('a')).toMatch(/unreadable counters/);
  });

  test('link names go into argv only as names', () => {
    expect(() => linkReaderArgv(['eth0; rm -rf /'])).toThrow(/not a link name/);
    expect(linkReaderArgv(['sw-dst']).slice(0, 2)).toEqual(['perl', '-e']);
  });
});

describe('openLinkReader', () => {
  test('a reader that cannot start says so in one short line', async () => {
    const reader = await openLinkReader(new NetnsHost('switch', 'miglab-no-such-ns'), ['lo']);
    try {
      const err = await reader.read({ timeoutMs: 5000 }).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^the link reader for lo on switch did not answer \(.*\): is its namespace still there\?$/);
      expect((err as Error).message.length).toBeLessThan(300);
    } finally {
      await reader.close();
    }
  });

  test('answers each read with the counters of now, over one process', async () => {
    const reader = await openLinkReader(new LocalHost('local'), ['lo', 'nosuchlink0']);
    try {
      const first = await reader.read({ timeoutMs: 5000 });
      const lo = first.get('lo');
      if (typeof lo !== 'object') throw new Error(`lo not read: ${lo}`);
      expect(lo.rxBytes).toBeGreaterThanOrEqual(0);
      expect(first.get('nosuchlink0')).toBe('no such link');
      const second = await reader.read({ timeoutMs: 5000 });
      expect((second.get('lo') as { rxBytes: number }).rxBytes).toBeGreaterThanOrEqual(lo.rxBytes);
    } finally {
      await reader.close();
    }
  });
});
