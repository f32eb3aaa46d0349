// Shell completion (`miglab completion` prints the script; the script asks miglab with the words
// typed so far): what it offers is what a user can type next.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { FAULT_KINDS } from '../../../src/fault/spec.js';
import { BATCH_MODES } from '../../../src/batch/spec.js';
import { parseModeArg } from '../../../src/batch/cli.js';
import { buildParser } from '../../../src/cli/parser.js';

/** What the completion script gets back for `line` (as bash passes it: the whole line, `miglab` first). */
async function offered(...line: string[]): Promise<string[]> {
  const out: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  await buildParser(['--get-yargs-completions', 'miglab', ...line]).exitProcess(false).parseAsync();
  // yargs answers a command's completion after re-running its builder, on a later turn.
  await new Promise((r) => setTimeout(r, 20));
  log.mockRestore();
  return out;
}

afterEach(() => {
  jest.restoreAllMocks();
});

describe('shell completion', () => {
  it('offers the commands, then their options, with -q and never --q', async () => {
    expect(await offered('')).toEqual(expect.arrayContaining(['migrate', 'batch', 'doctor', 'completion']));
    const options = await offered('migrate', '--');
    expect(options).toEqual(expect.arrayContaining(['--quiet', '--memory', '--nic']));
    expect(options).not.toContain('--q');
    expect(await offered('migrate', '-')).toContain('-q');
  });

  it('offers the choices of an option that has them', async () => {
    expect(await offered('migrate', '--nic', '')).toEqual(['virtio-net-pci', 'e1000', 'rtl8139']);
  });

  it("offers batch --mode's values, each one the option takes", async () => {
    const modes = await offered('batch', '--mode', '');
    expect(modes).toEqual(expect.arrayContaining([...BATCH_MODES]));
    for (const m of modes) expect(() => parseModeArg(m.replace(/\\:/g, ':'))).not.toThrow();
    expect(await offered('batch', '--mode', 's')).toEqual(['sequential', 'scheduled']);
  });

  it('offers the fault kinds after --fault', async () => {
    expect(await offered('migrate', '--fault', '')).toEqual([...FAULT_KINDS]);
    expect(await offered('migrate', '--fault', 'kill')).toEqual(['kill-dst', 'kill-src']);
  });

  it('leaves folders and files to the shell (plot, compare, sweep), options still offered after a dash', async () => {
    expect(await offered('plot', '')).toEqual([]);
    expect(await offered('compare', 'results/a', '')).toEqual([]);
    expect(await offered('sweep', 'exa')).toEqual([]);
    expect(await offered('plot', '--')).toContain('--help');
  });
});
