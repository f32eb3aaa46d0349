import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureProbeTool, PROBE_TOOL_CFLAGS, probeToolKey, probeToolPath, probeToolSourcePath } from '../../../src/guest/probe-tool.js';

describe('probe tool cache key', () => {
  it('follows the source and the flags, 16 hex digits', () => {
    const k = probeToolKey('int main(void){return 0;}');
    expect(k).toMatch(/^[0-9a-f]{16}$/);
    expect(probeToolKey('int main(void){return 0;}')).toBe(k);
    expect(probeToolKey('int main(void){return 1;}')).not.toBe(k);
    expect(probeToolKey('int main(void){return 0;}', [...PROBE_TOOL_CFLAGS, '-g'])).not.toBe(k);
    expect(probeToolPath('/c', k)).toBe(`/c/tools/miglab-probe-${k}`);
  });
});

describe('ensureProbeTool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'miglab-probe-tool-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('builds the real tool once into the cache, then returns it without building', async () => {
    const path = await ensureProbeTool({ cacheDir: dir, timeoutMs: 60_000 });
    expect(path).toBe(probeToolPath(dir, probeToolKey(readFileSync(probeToolSourcePath()))));
    const built = statSync(path);
    expect(built.mode & 0o111).not.toBe(0);
    const t = Date.now();
    expect(await ensureProbeTool({ cacheDir: dir })).toBe(path);
    expect(Date.now() - t).toBeLessThan(200);
    expect(statSync(path).mtimeMs).toBe(built.mtimeMs);
  }, 60_000);

  it('reports a compile error with the compiler\'s words and leaves no temp directory', async () => {
    const src = join(dir, 'broken.c');
    writeFileSync(src, 'int main(void) { return undefined_thing; }\n');
    await expect(ensureProbeTool({ cacheDir: dir, sourcePath: src })).rejects.toThrow(/building miglab-probe .*undefined_thing/);
    expect(existsSync(probeToolPath(dir, probeToolKey(readFileSync(src))))).toBe(false);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(dir, 'tools')).filter((f) => f.startsWith('.build'))).toEqual([]);
  }, 60_000);
});
