// The host-side helper `miglab-probe` (vm-images/tools/miglab-probe.c), built on demand into the
// image cache. miglab runs it under `ip netns exec` to talk to the guest agent from inside the
// lab, since Node cannot put one socket into another namespace. The binary's name carries the
// sha256 of its source and flags, so an edited source builds anew and a built one costs a stat.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MiglabError, MissingDependencyError } from '../errors.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/local.js';
import { defaultCacheDir } from '../image/inputs.js';
import { findRepoDir } from '../util/repo.js';

export const PROBE_TOOL_NAME = 'miglab-probe';
export const PROBE_TOOL_CFLAGS: readonly string[] = ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread'];

export interface ProbeToolOptions {
  /** Default: <repo>/vm-images/cache. The binary goes to `<cacheDir>/tools/`. */
  readonly cacheDir?: string;
  /** Default: vm-images/tools/miglab-probe.c of this repository. */
  readonly sourcePath?: string;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Where gcc runs: the tool runs on this machine, so the default is the local host. */
  readonly host?: Host;
}

export function probeToolSourcePath(repoDir = findRepoDir()): string {
  return join(repoDir, 'vm-images', 'tools', `${PROBE_TOOL_NAME}.c`);
}

/** The cache key: 16 hex digits of sha256 over the source and the compiler flags. */
export function probeToolKey(source: string | Buffer, cflags: readonly string[] = PROBE_TOOL_CFLAGS): string {
  return createHash('sha256').update(source).update('\0').update(cflags.join(' ')).digest('hex').slice(0, 16);
}

/** The binary's path for a key, under `<cacheDir>/tools/`. */
export function probeToolPath(cacheDir: string, key: string): string {
  return join(cacheDir, 'tools', `${PROBE_TOOL_NAME}-${key}`);
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * The path of a built `miglab-probe` for the current source, building it first if needed. The
 * build goes to a temporary directory and is renamed into place, so a concurrent or interrupted
 * build never leaves a half-written binary under the final name.
 */
export async function ensureProbeTool(opts: ProbeToolOptions = {}): Promise<string> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const sourcePath = opts.sourcePath ?? probeToolSourcePath();
  const source = await readFile(sourcePath);
  const target = probeToolPath(cacheDir, probeToolKey(source));
  if (await isExecutable(target)) return target;

  const host = opts.host ?? new LocalHost();
  if (!(await host.which('gcc'))) throw new MissingDependencyError('gcc (to build miglab-probe)', 'apt-get install -y gcc libc6-dev');
  const toolsDir = join(cacheDir, 'tools');
  await mkdir(toolsDir, { recursive: true });
  const tmp = await mkdtemp(join(toolsDir, `.build-${process.pid}-`));
  try {
    const out = join(tmp, PROBE_TOOL_NAME);
    const r = await host.run(['gcc', ...PROBE_TOOL_CFLAGS, '-o', out, sourcePath], {
      reject: false,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
    if (r.exitCode !== 0) {
      throw new MiglabError('IMAGE_BUILD', `building ${PROBE_TOOL_NAME} from ${sourcePath} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`, {
        context: { argv: r.argv, exitCode: r.exitCode, stderr: r.stderr },
      });
    }
    await rename(out, target);
    return target;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
