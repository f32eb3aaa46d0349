// lab status/down --hosts find miglab's processes by the runDir in their argv with pgrep -f; the
// shells that run pgrep over SSH carry the pattern too, and must not be counted.
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { selfExcludingPattern } from '../../../src/util/regex.js';

describe('selfExcludingPattern', () => {
  const dir = '/run/miglab-remote/h1a2b3c4/';
  const pattern = selfExcludingPattern(dir);

  it('matches a command line naming the directory, not one naming the pattern', () => {
    const re = new RegExp(pattern);
    expect(re.test(`qemu-system-x86_64 -qmp unix:${dir}g0/src.qmp`)).toBe(true);
    expect(re.test(`sh -c pgrep -a -f -- ${pattern}`)).toBe(false);
  });

  it('keeps pgrep from finding the shell that runs it', async () => {
    // A real shell whose argv names the pattern, running pgrep with it: nothing to find.
    const r = await execa('sh', ['-c', 'pgrep -a -f -- "$1"; exit 0', 'sh', pattern]);
    expect(r.stdout).toBe('');
    // A process naming the directory in its argv, as QEMU names its sockets.
    // (one process: the shell itself waits on its input, with no child to outlive it)
    const sleeper = execa('sh', ['-c', 'read line', 'miglab-test', dir], { stdin: 'pipe', stdout: 'ignore', stderr: 'ignore' });
    try {
      const found = await execa('sh', ['-c', 'pgrep -a -f -- "$1"', 'sh', pattern]);
      expect(found.stdout).toMatch(new RegExp(`^${sleeper.pid} sh -c read line miglab-test ${dir}$`));
    } finally {
      sleeper.kill();
      await sleeper.catch(() => undefined);
    }
  });
});
