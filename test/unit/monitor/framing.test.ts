// QMP framing: lines split across chunks, several per chunk, and bad lines kept raw.
import { describe, expect, it } from '@jest/globals';
import { LineDecoder, encodeMessage } from '../../../src/qmp/framing.js';

describe('LineDecoder', () => {
  it('reassembles messages split across chunks and splits several in one chunk', () => {
    const d = new LineDecoder();
    expect(d.push(Buffer.from('{"return": {}, "id"'))).toEqual([]);
    const frames = d.push(Buffer.from(': "a"}\r\n{"event": "STOP"}\r\n{"ret'));
    expect(frames.map((f) => f.ok && f.message)).toEqual([{ return: {}, id: 'a' }, { event: 'STOP' }]);
    expect(d.remainder.toString()).toBe('{"ret');
  });

  it('keeps the raw bytes of a line that is not a JSON object', () => {
    const d = new LineDecoder();
    const [bad, notObject] = d.push(Buffer.from('{"return": oops\n[1,2]\n'));
    expect(bad).toMatchObject({ ok: false });
    expect(!bad!.ok && bad!.raw.toString()).toBe('{"return": oops');
    expect(notObject).toMatchObject({ ok: false });
  });

  it('encodes one message per line', () => {
    expect(encodeMessage({ execute: 'query-status', id: 'x' })).toBe('{"execute":"query-status","id":"x"}\n');
  });
});
