import { decodeCriuStats, IMG_SERVICE_MAGIC, STATS_MAGIC } from '../../../src/containers/criu-stats.js';
import { MiglabError } from '../../../src/errors.js';

// A tiny protobuf encoder, enough to write what criu's protobuf-c writes (and a few things it
// does not, to see them skipped or refused).
function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return out;
}
const key = (field: number, wire: number) => varint((field << 3) | wire);
const u = (field: number, value: number | bigint) => [...key(field, 0), ...varint(value)];
const msg = (field: number, body: number[]) => [...key(field, 2), ...varint(body.length), ...body];

function image(entry: number[], magics = [IMG_SERVICE_MAGIC, STATS_MAGIC], size = entry.length): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32LE(magics[0]!, 0);
  head.writeUInt32LE(magics[1]!, 4);
  head.writeUInt32LE(size, 8);
  return Buffer.concat([head, Buffer.from(entry)]);
}

// What criu/stats.c write_stats(DUMP_STATS) fills: every field, optional ones included.
const dumpBody = [
  ...u(1, 1_234), ...u(2, 56_789), ...u(3, 20_000), ...u(4, 30_000),
  ...u(5, 70_000), ...u(6, 65_000), ...u(7, 5_000), ...u(8, 0),
  ...u(9, 0), ...u(10, 3), ...u(11, 17), ...u(12, 0), ...u(13, 0), ...u(14, 0),
];

function failure(buf: Buffer): string {
  try {
    decodeCriuStats(buf, 'r2/stats-dump');
  } catch (err) {
    expect(err).toBeInstanceOf(MiglabError);
    expect((err as MiglabError).code).toBe('COMMAND_FAILED');
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('decodeCriuStats accepted a bad file');
}

describe('decodeCriuStats', () => {
  it('decodes a stats-dump as criu 3.17.1 writes it, times in microseconds', () => {
    const stats = decodeCriuStats(image(msg(1, dumpBody)));
    expect(stats.restore).toBeUndefined();
    expect(stats.dump).toEqual({
      freezingUs: 1_234, frozenUs: 56_789, memdumpUs: 20_000, memwriteUs: 30_000,
      pagesScanned: 70_000, pagesSkippedParent: 65_000, pagesWritten: 5_000, irmapResolveUs: 0,
      pagesLazy: 0, pagePipes: 3, pagePipeBufs: 17, shpagesScanned: 0, shpagesSkippedParent: 0, shpagesWritten: 0,
    });
  });

  it('reads bytes written out by hand from the protobuf wire format, not by the encoder above', () => {
    // "40 59 10 55" = IMG_SERVICE_MAGIC le, "06 33 09 57" = STATS_MAGIC le, size 0x13; then
    // 0a 11 (field 1, length 17) and dump_stats_entry: 08 96 01 is field 1 = 150 (the protobuf
    // docs' own example), then fields 2..7 = 1..6 and field 9 = 0.
    const hex = '40591055 06330957 13000000 0a11 089601 1001 1802 2003 2804 3005 3806 4800';
    const dump = decodeCriuStats(Buffer.from(hex.replaceAll(' ', ''), 'hex')).dump;
    expect(dump).toEqual({ freezingUs: 150, frozenUs: 1, memdumpUs: 2, memwriteUs: 3, pagesScanned: 4, pagesSkippedParent: 5, pagesWritten: 6, pagesLazy: 0 });
  });

  it('decodes a stats-restore, and leaves absent optional fields undefined', () => {
    const stats = decodeCriuStats(image(msg(2, [...u(1, 10), ...u(2, 4), ...u(3, 800), ...u(4, 120_000)])));
    expect(stats.dump).toBeUndefined();
    expect(stats.restore).toEqual({ pagesCompared: 10, pagesSkippedCow: 4, forkingUs: 800, restoreUs: 120_000 });
    const withRestored = decodeCriuStats(image(msg(2, [...u(1, 0), ...u(2, 0), ...u(3, 1), ...u(4, 2), ...u(5, 4096)])));
    expect(withRestored.restore?.pagesRestored).toBe(4096);
  });

  it('skips unknown fields of every wire type, in the entry and inside the messages', () => {
    const fixed64 = [...key(15, 1), 1, 2, 3, 4, 5, 6, 7, 8];
    const fixed32 = [...key(16, 5), 9, 9, 9, 9];
    const bytes = msg(17, [0xde, 0xad, 0xbe, 0xef]);
    const bigVarint = u(18, 2n ** 63n);
    const entry = [...u(9, 42), ...msg(1, [...fixed64, ...dumpBody, ...fixed32, ...bytes, ...bigVarint]), ...msg(3, [1, 2, 3])];
    expect(decodeCriuStats(image(entry)).dump?.pagesWritten).toBe(5_000);
  });

  it('keeps the last value of a repeated scalar and merges a repeated message, as protobuf does', () => {
    const entry = [...msg(1, dumpBody), ...msg(1, u(7, 77))];
    const dump = decodeCriuStats(image(entry)).dump!;
    expect(dump.pagesWritten).toBe(77);
    expect(dump.frozenUs).toBe(56_789);
  });

  it('keeps the low 32 bits of a uint32 and reads a multi-byte uint64', () => {
    const body = [...dumpBody, ...u(2, 2n ** 32n + 5n), ...u(5, 2n ** 40n)];
    const dump = decodeCriuStats(image(msg(1, body))).dump!;
    expect(dump.frozenUs).toBe(5);
    expect(dump.pagesScanned).toBe(2 ** 40);
  });

  it('names the problem of a truncated file in one line', () => {
    const whole = image(msg(1, dumpBody));
    expect(failure(whole.subarray(0, 7))).toBe('r2/stats-dump is not a readable criu stats image: it is truncated (7 bytes; the header alone is 12)');
    expect(failure(whole.subarray(0, whole.length - 3))).toMatch(/it is truncated \(the entry claims \d+ bytes, \d+ follow\)/);
    // A size that covers the bytes, but a field cut in the middle.
    const cut = msg(1, dumpBody).slice(0, 10);
    expect(failure(image(cut))).toMatch(/needs \d+ bytes but \d+ are left|varint runs past the end/);
  });

  it('refuses the wrong magics, naming the expected ones', () => {
    expect(failure(image(msg(1, dumpBody), [0x54564319, STATS_MAGIC]))).toMatch(/head magic 0x54564319, expected IMG_SERVICE_MAGIC 0x55105940/);
    expect(failure(image(msg(1, dumpBody), [IMG_SERVICE_MAGIC, 0x58313116]))).toMatch(/image magic 0x58313116, expected STATS_MAGIC 0x57093306/);
  });

  it('refuses a missing required field, a wrong wire type and trailing bytes', () => {
    // Every required field but 2 (frozen_time).
    const without2 = [...u(1, 1), ...u(3, 1), ...u(4, 1), ...u(5, 1), ...u(6, 1), ...u(7, 1), ...u(9, 1)];
    expect(failure(image(msg(1, without2)))).toMatch(/dump_stats_entry lacks the required field 2 \(frozenUs\)/);
    expect(failure(image(msg(1, [...dumpBody, ...msg(7, [1])])))).toMatch(/field 7 \(pagesWritten\) has wire type 2, expected a varint/);
    expect(failure(image([...u(1, 5)]))).toMatch(/stats_entry field 1 has wire type 0, expected an embedded message/);
    expect(failure(Buffer.concat([image(msg(1, dumpBody)), Buffer.from([0])]))).toMatch(/1 bytes follow the entry/);
  });

  it('decodes an empty entry as no stats at all', () => {
    expect(decodeCriuStats(image([]))).toEqual({});
  });
});
