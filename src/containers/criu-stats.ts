// CRIU's own statistics, read from the `stats-dump` / `stats-restore` files it writes into its
// work dir after every dump, pre-dump and restore. Decoded here rather than with `crit`, which is
// Python plus python3-protobuf and far too heavy for the guest (plan 1.2). Checked against criu
// v3.17.1: images/stats.proto (fields), criu/include/magic.h (magics), criu/image.c
// img_write_magic (two magics for a service image), criu/protobuf.c pb_write_one (u32le size, then
// the packed message) and criu/stats.c write_stats (times are microseconds, always filled).
import { MiglabError } from '../errors.js';

/** criu/include/magic.h: the head magic of service files (stats, irmap-cache). */
export const IMG_SERVICE_MAGIC = 0x55105940;
/** criu/include/magic.h: the magic of the stats image. */
export const STATS_MAGIC = 0x57093306;

/** One dump or pre-dump (images/stats.proto dump_stats_entry). Times in microseconds. */
export interface DumpStats {
  readonly freezingUs: number;
  /** From the end of freezing until the tree is released or killed; for a pre-dump it ends before the pages are written (plan 1.2). */
  readonly frozenUs: number;
  readonly memdumpUs: number;
  readonly memwriteUs: number;
  readonly pagesScanned: number;
  readonly pagesSkippedParent: number;
  readonly pagesWritten: number;
  readonly irmapResolveUs?: number;
  readonly pagesLazy: number;
  readonly pagePipes?: number;
  readonly pagePipeBufs?: number;
  readonly shpagesScanned?: number;
  readonly shpagesSkippedParent?: number;
  readonly shpagesWritten?: number;
}

/** One restore (images/stats.proto restore_stats_entry). Times in microseconds. */
export interface RestoreStats {
  readonly pagesCompared: number;
  readonly pagesSkippedCow: number;
  readonly forkingUs: number;
  readonly restoreUs: number;
  readonly pagesRestored?: number;
}

export interface CriuStats {
  readonly dump?: DumpStats;
  readonly restore?: RestoreStats;
}

type Scalar = 'uint32' | 'uint64';
/** field number -> [our name, proto type, proto2 `required`]. */
type Schema = Readonly<Record<number, readonly [name: string, type: Scalar, required: boolean]>>;

const DUMP_SCHEMA: Schema = {
  1: ['freezingUs', 'uint32', true],
  2: ['frozenUs', 'uint32', true],
  3: ['memdumpUs', 'uint32', true],
  4: ['memwriteUs', 'uint32', true],
  5: ['pagesScanned', 'uint64', true],
  6: ['pagesSkippedParent', 'uint64', true],
  7: ['pagesWritten', 'uint64', true],
  8: ['irmapResolveUs', 'uint32', false],
  9: ['pagesLazy', 'uint64', true],
  10: ['pagePipes', 'uint64', false],
  11: ['pagePipeBufs', 'uint64', false],
  12: ['shpagesScanned', 'uint64', false],
  13: ['shpagesSkippedParent', 'uint64', false],
  14: ['shpagesWritten', 'uint64', false],
};

const RESTORE_SCHEMA: Schema = {
  1: ['pagesCompared', 'uint64', true],
  2: ['pagesSkippedCow', 'uint64', true],
  3: ['forkingUs', 'uint32', true],
  4: ['restoreUs', 'uint32', true],
  5: ['pagesRestored', 'uint64', false],
};

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** One field as it sits on the wire: a varint's value, or the bytes of a length-delimited field. */
type WireValue = { readonly wire: typeof WIRE_VARINT; readonly value: bigint } | { readonly wire: typeof WIRE_LEN; readonly bytes: Uint8Array } | { readonly wire: 1 | 5 };

/** The fields of one protobuf message, in order. Unknown fields are returned too; the caller skips them. */
function readFields(buf: Uint8Array, bad: (problem: string) => MiglabError): Array<{ field: number; value: WireValue }> {
  let at = 0;
  const varint = (): bigint => {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (at >= buf.length) throw bad('a varint runs past the end of the entry');
      const b = buf[at++]!;
      value |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return value;
    }
    throw bad('a varint is longer than 10 bytes');
  };
  const take = (n: number): Uint8Array => {
    if (at + n > buf.length) throw bad(`a field needs ${n} bytes but ${buf.length - at} are left`);
    const bytes = buf.subarray(at, at + n);
    at += n;
    return bytes;
  };
  const out: Array<{ field: number; value: WireValue }> = [];
  while (at < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw bad('field number 0 is not valid protobuf');
    if (wire === WIRE_VARINT) out.push({ field, value: { wire: WIRE_VARINT, value: varint() } });
    else if (wire === WIRE_LEN) out.push({ field, value: { wire: WIRE_LEN, bytes: take(Number(varint())) } });
    else if (wire === WIRE_FIXED64 || wire === WIRE_FIXED32) {
      take(wire === WIRE_FIXED64 ? 8 : 4);
      out.push({ field, value: { wire } });
    } else throw bad(`field ${field} has wire type ${wire}, which criu never writes (groups are not used)`);
  }
  return out;
}

function decodeMessage(buf: Uint8Array, schema: Schema, what: string, bad: (problem: string) => MiglabError): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { field, value } of readFields(buf, bad)) {
    const known = schema[field];
    if (!known) continue; // a newer criu's field: skipped, as protobuf readers do
    const [name, type] = known;
    if (value.wire !== WIRE_VARINT) throw bad(`${what} field ${field} (${name}) has wire type ${value.wire}, expected a varint`);
    // proto semantics: a uint32 keeps the low 32 bits; the last occurrence of a scalar wins.
    const v = type === 'uint32' ? value.value & 0xffffffffn : value.value;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} field ${field} (${name}) is ${v}, beyond what a JS number holds exactly`);
    out[name] = Number(v);
  }
  for (const [field, [name, , required]] of Object.entries(schema)) {
    if (required && out[name] === undefined) throw bad(`${what} lacks the required field ${field} (${name})`);
  }
  return out;
}

/**
 * Decodes a `stats-dump` or `stats-restore` file. `fileName` names it in errors. Throws a
 * MiglabError with a one-line message when the file is not criu's stats image or is cut short.
 */
export function decodeCriuStats(buf: Uint8Array, fileName = 'criu stats file'): CriuStats {
  const bad = (problem: string) => new MiglabError('COMMAND_FAILED', `${fileName} is not a readable criu stats image: ${problem}`, { context: { file: fileName } });
  const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
  if (buf.length < 12) throw bad(`it is truncated (${buf.length} bytes; the header alone is 12)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const head = view.getUint32(0, true);
  if (head !== IMG_SERVICE_MAGIC) throw bad(`head magic ${hex(head)}, expected IMG_SERVICE_MAGIC ${hex(IMG_SERVICE_MAGIC)}`);
  const magic = view.getUint32(4, true);
  if (magic !== STATS_MAGIC) throw bad(`image magic ${hex(magic)}, expected STATS_MAGIC ${hex(STATS_MAGIC)} (another criu image?)`);
  const size = view.getUint32(8, true);
  if (12 + size > buf.length) throw bad(`it is truncated (the entry claims ${size} bytes, ${buf.length - 12} follow)`);
  if (12 + size < buf.length) throw bad(`${buf.length - 12 - size} bytes follow the entry (criu writes exactly one)`);

  // stats_entry { optional dump_stats_entry dump = 1; optional restore_stats_entry restore = 2; }.
  // Repeated embedded messages merge in protobuf; concatenating their bytes does exactly that.
  const parts: Record<1 | 2, Uint8Array[]> = { 1: [], 2: [] };
  for (const { field, value } of readFields(buf.subarray(12, 12 + size), bad)) {
    if (field !== 1 && field !== 2) continue;
    if (value.wire !== WIRE_LEN) throw bad(`stats_entry field ${field} has wire type ${value.wire}, expected an embedded message`);
    parts[field].push(value.bytes);
  }
  const joined = (chunks: Uint8Array[]) => Buffer.concat(chunks);
  const stats: { dump?: DumpStats; restore?: RestoreStats } = {};
  if (parts[1].length > 0) stats.dump = decodeMessage(joined(parts[1]), DUMP_SCHEMA, 'dump_stats_entry', bad) as unknown as DumpStats;
  if (parts[2].length > 0) stats.restore = decodeMessage(joined(parts[2]), RESTORE_SCHEMA, 'restore_stats_entry', bad) as unknown as RestoreStats;
  return stats;
}
