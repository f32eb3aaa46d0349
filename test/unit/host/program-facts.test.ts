// A program's answers about itself are kept by the file's identity: asked once, asked again when
// the file changes, never kept for a host whose files are not this machine's, never kept failed.
import { mkdtempSync, rmSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host } from '../../../src/host/host.js';
import { LocalHost } from '../../../src/host/local.js';
import { rememberedFact } from '../../../src/host/program-facts.js';

let dir: string;
let program: string;
let facts: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'miglab-facts-'));
  program = join(dir, 'prog');
  facts = join(dir, 'facts.json');
  writeFileSync(program, 'v1', { mode: 0o755 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('rememberedFact', () => {
  const host = new LocalHost();

  it('asks once, then reads the answer from the file (a later process too)', async () => {
    let asked = 0;
    const ask = async () => ({ version: `v${++asked}` });
    expect(await rememberedFact('q', host, program, ask, facts)).toEqual({ version: 'v1' });
    expect(await rememberedFact('q', host, program, ask, facts)).toEqual({ version: 'v1' });
    expect(asked).toBe(1);
    expect(Object.keys(JSON.parse(readFileSync(facts, 'utf8')) as object)).toEqual([expect.stringMatching(/^q\|.*prog\|2\|/)]);
    // Another question about the same program is its own entry.
    expect(await rememberedFact('other', host, program, ask, facts)).toEqual({ version: 'v2' });
  });

  it('asks again once the program file changed (an upgrade keeps neither size nor times)', async () => {
    let asked = 0;
    const ask = async () => ++asked;
    await rememberedFact('q', host, program, ask, facts);
    writeFileSync(program, 'v2 longer');
    utimesSync(program, new Date(2020, 1, 1), new Date(2020, 1, 1));
    expect(await rememberedFact('q', host, program, ask, facts)).toBe(2);
  });

  it('keeps nothing for a host over SSH, or when the ask fails', async () => {
    const remote = { name: 'root@10.0.0.1' } as Host;
    let asked = 0;
    await rememberedFact('q', remote, program, async () => ++asked, facts);
    await rememberedFact('q', remote, program, async () => ++asked, facts);
    expect(asked).toBe(2);
    await expect(rememberedFact('q', host, program, async () => Promise.reject(new Error('no')), facts)).rejects.toThrow('no');
    expect(await rememberedFact('q', host, program, async () => 'now', facts)).toBe('now');
  });

  it('keeps every answer asked side by side (none written over by another)', async () => {
    const answers = await Promise.all(['a', 'b', 'c', 'd'].map((q) => rememberedFact(q, host, program, async () => `answer ${q}`, facts)));
    expect(answers).toEqual(['answer a', 'answer b', 'answer c', 'answer d']);
    expect(Object.keys(JSON.parse(readFileSync(facts, 'utf8')) as object).map((k) => k.split('|')[0]).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('asks when the program is not there, and survives an unreadable file', async () => {
    writeFileSync(facts, '{not json');
    expect(await rememberedFact('q', host, join(dir, 'absent'), async () => 'a', facts)).toBe('a');
    expect(await rememberedFact('q', host, program, async () => 'b', facts)).toBe('b');
    expect(await rememberedFact('q', host, program, async () => 'c', facts)).toBe('b');
  });
});
