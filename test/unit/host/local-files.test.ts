// The file and socket operations of the local machine's Host (the same for each of its network
// namespaces): what the lab's monitor directories, disks, /proc reads and QMP connections use.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost } from '../../../src/host/local.js';

const host = new LocalHost();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'miglab-localhost-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('LocalHost files', () => {
  it('makes a private temp dir inside a parent it creates', async () => {
    const d = await host.makeTempDir(join(dir, 'a', 'sock'), 'g0-src-');
    expect(d.startsWith(join(dir, 'a', 'sock', 'g0-src-'))).toBe(true);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'a', 'sock')).mode & 0o777).toBe(0o700);
    expect(await host.makeTempDir(join(dir, 'a', 'sock'), 'g0-src-')).not.toBe(d);
  });

  it('reads text exactly, undefined for a missing file', async () => {
    writeFileSync(join(dir, 't.txt'), 'one\ntwo\n');
    expect(await host.readText(join(dir, 't.txt'))).toBe('one\ntwo\n');
    expect(await host.readText(join(dir, 'missing.txt'))).toBeUndefined();
    expect(await host.readText(`/proc/${process.pid}/comm`)).toMatch(/\S/);
  });

  it('removes a tree, and nothing when it is absent', async () => {
    const d = await host.makeTempDir(dir, 'rm-');
    writeFileSync(join(d, 'f'), 'x');
    await host.remove(d);
    expect(existsSync(d)).toBe(false);
    await expect(host.remove(d)).resolves.toBeUndefined();
  });

  it('puts a file with its mode, and skips it when the same bytes are there', async () => {
    const src = join(dir, 'tool');
    writeFileSync(src, '#!/bin/sh\necho hi\n');
    chmodSync(src, 0o750);
    const dst = join(dir, 'deep', 'er', 'tool');
    expect(await host.putFile(src, dst)).toBe(true);
    expect(readFileSync(dst, 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(statSync(dst).mode & 0o777).toBe(0o750);
    expect(await host.putFile(src, dst)).toBe(false);
    writeFileSync(src, '#!/bin/sh\necho changed\n');
    expect(await host.putFile(src, dst)).toBe(true);
    expect(readFileSync(dst, 'utf8')).toContain('changed');
  });
});

describe('LocalHost.connectUnix', () => {
  let server: Server;
  let path: string;
  beforeAll(async () => {
    path = join(dir, 'echo.sock');
    server = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => server.listen(path, resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('gives a stream to a listening socket', async () => {
    const s = await host.connectUnix(path);
    const echoed = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
    s.write('ping');
    expect(await echoed).toBe('ping');
    s.destroy();
  });

  it('says ENOENT for a socket not made yet and ECONNREFUSED for one nobody listens on', async () => {
    await expect(host.connectUnix(join(dir, 'not-yet.sock'))).rejects.toMatchObject({ code: 'ENOENT' });
    // What a QEMU that died leaves behind: the path is there, nobody accepts on it.
    const stale = join(dir, 'stale.sock');
    writeFileSync(stale, '');
    await expect(host.connectUnix(stale)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('LocalHost.converse', () => {
  it('answers each line with one line, in order, and the program ends with close()', async () => {
    const s = await new LocalHost().converse(['sh', '-c', 'n=0; while read -r l; do n=$((n+1)); echo "$n:$l"; done']);
    expect(await s.ask('a')).toBe('1:a');
    expect(await s.ask('b c')).toBe('2:b c');
    await s.close();
    await expect(s.ask('d')).rejects.toThrow(/has ended/);
  });

  it('says so when the program ends without answering', async () => {
    const s = await new LocalHost().converse(['true']);
    await expect(s.ask('x')).rejects.toThrow(/ended without answering|has ended/);
    await s.close();
  });
});
