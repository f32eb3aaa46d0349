// The packages the lab checks for are the ones `make deps` installs, so a fresh machine that ran
// `make test` has every program the lab runs (nft for the firewall among them).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { REQUIRED_PACKAGES, REQUIRED_PROGRAMS } from '../../../src/lab/deps.js';

/** APT_PACKAGES from the Makefile (a make variable continued over lines with backslashes). */
function makefileAptPackages(): string[] {
  const text = readFileSync(new URL('../../../Makefile', import.meta.url), 'utf8');
  const m = /^APT_PACKAGES\s*:=((?:.*\\\n)*.*)$/m.exec(text);
  if (!m) throw new Error('no APT_PACKAGES in the Makefile');
  return m[1]!.replace(/\\\n/g, ' ').trim().split(/\s+/);
}

describe('the lab\'s packages', () => {
  it('are all installed by the Makefile', () => {
    expect(makefileAptPackages()).toEqual(expect.arrayContaining([...REQUIRED_PACKAGES]));
  });

  it('include nftables, for the firewall of src and dst', () => {
    expect(REQUIRED_PACKAGES).toContain('nftables');
    expect(REQUIRED_PROGRAMS).toContainEqual(['nft', 'nftables']);
  });
});
