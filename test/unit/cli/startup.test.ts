// Every miglab command starts by loading src/cli.ts and what it imports. The plotting stack (vega,
// vega-lite, resvg) takes about 0.4 s to load, so only the commands that draw load it, when they
// run (`await import`): `--help`, `doctor` and `migrate` start without it. This walks the imports
// of the source, the ones loaded at startup and those loaded later, and holds that line.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const SRC = resolve('src');
const PLOTTING = ['vega', 'vega-lite', '@resvg/resvg-js'];
/** The SSH client and the hosts file's parser (~0.15 s to load), needed only with --hosts. */
const HOSTS = ['ssh2', 'yaml'];

/** The packages reached from `entry`: through static imports only, or through `await import()` too. */
function packagesReached(entry: string, withDynamic: boolean): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>([entry]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const text = readFileSync(file, 'utf8');
    const specifiers = [...text.matchAll(/^(?:import|export)(?!\s+type\b)[^;'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
    if (withDynamic) specifiers.push(...[...text.matchAll(/\bimport\('([^']+)'\)/g)].map((m) => m[1]!));
    for (const s of specifiers) {
      if (!s.startsWith('.')) {
        packages.add(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
        continue;
      }
      const next = join(dirname(file), s.replace(/\.js$/, '.ts'));
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return packages;
}

describe('startup', () => {
  const entry = join(SRC, 'cli.ts');
  it('loads no plotting package before a command runs', () => {
    const atStartup = packagesReached(entry, false);
    expect(atStartup.has('yargs')).toBe(true);
    expect(PLOTTING.filter((p) => atStartup.has(p))).toEqual([]);
  });
  it('loads no SSH client or YAML parser before a command on hosts runs', () => {
    const atStartup = packagesReached(entry, false);
    expect(HOSTS.filter((p) => atStartup.has(p))).toEqual([]);
    expect(HOSTS.filter((p) => packagesReached(entry, true).has(p))).toEqual(HOSTS);
  });
  it('still reaches the plotting packages from the commands that draw', () => {
    const eventually = packagesReached(entry, true);
    expect(PLOTTING.filter((p) => eventually.has(p))).toEqual(PLOTTING);
  });
});
