// QMP framing: one JSON object per line in each direction. Pure and synchronous so it can be
// tested without a socket; the session (client.ts) feeds it bytes and acts on the frames.
export type QmpMessage = Record<string, unknown>;

export type Frame =
  | { readonly ok: true; readonly message: QmpMessage; readonly raw: string }
  | { readonly ok: false; readonly raw: Buffer; readonly error: Error };

/** Splits a byte stream into lines and decodes each; a bad line keeps its raw bytes. */
export class LineDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const nl = this.pending.indexOf(0x0a);
      if (nl < 0) break;
      const line = this.pending.subarray(0, nl);
      this.pending = this.pending.subarray(nl + 1);
      const frame = decodeLine(line);
      if (frame) frames.push(frame);
    }
    return frames;
  }

  /** Bytes received after the last newline (a partial message). */
  get remainder(): Buffer {
    return this.pending;
  }
}

function decodeLine(line: Buffer): Frame | undefined {
  const text = line.toString('utf8').trim();
  if (text === '') return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { ok: false, raw: Buffer.from(line), error: new Error('message is not a JSON object') };
    }
    return { ok: true, message: value as QmpMessage, raw: text };
  } catch (err) {
    return { ok: false, raw: Buffer.from(line), error: err instanceof Error ? err : new Error(String(err)) };
  }
}

export function encodeMessage(message: QmpMessage): string {
  return `${JSON.stringify(message)}\n`;
}
