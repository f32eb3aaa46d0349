// What a person sees when the command line is wrong: every option of `migrate` and `batch` given a
// bad value is refused by the real parser and the command's own checks, before anything starts,
// with a message that begins with the option as typed; yargs' complaints come out in the same terms.
import { describe, expect, it } from '@jest/globals';
import { COMMANDS, commandName } from '../../../src/cli/commands.js';
import { BATCH_OPTIONS, batchSpecFromArgsChecked } from '../../../src/batch/cli.js';
import { MIGRATE_OPTIONS, scenarioFromArgsChecked, shapingFromArgs } from '../../../src/cli/options.js';
import { buildParser, closestCommand, explainParseFailure } from '../../../src/cli/parser.js';
import { MiglabError } from '../../../src/errors.js';

type Args = Record<string, unknown>;

/** `guests up` as the CLI runs it: its option checks throw before it boots anything. */
const guestsCheck = (a: Args) => COMMANDS.find((c) => commandName(c) === 'guests')!.run(a, { out: () => undefined });

/** Parse with the real parser, then run the checks the command runs before it starts anything. */
async function refusal(argv: string[], check: (a: Args) => unknown): Promise<MiglabError> {
  try {
    await check((await buildParser(argv).parseAsync()) as Args);
  } catch (err) {
    if (err instanceof MiglabError) return err;
    throw err;
  }
  throw new Error(`miglab ${argv.join(' ')} was accepted`);
}

/** Options that take any text: checked where they are used, with their own message. */
const FREE_TEXT: Record<string, string> = {
  cpu: "QEMU's CPU model: QEMU itself names a model it does not know",
  results: 'a folder: the results guard checks it is writable and has room before anything starts',
};

const BAD_MIGRATE: Record<string, string> = {
  memory: '-5G',
  vcpus: '0',
  accel: 'kvm2',
  nic: 'virtio',
  disk: 'scsi',
  start: 'hot',
  'disk-size': '1G/s',
  workload: 'spin',
  monitor: 'telnet',
  port: '80',
  'hmp-port': 'x',
  'max-bandwidth': '100mbit',
  'downtime-limit': '-1ms',
  'multifd-channels': '0',
  capability: 'fast',
  'postcopy-after': 'soon',
  'postcopy-stall': '100ms',
  'postcopy-recover-within': 'soon',
  'max-postcopy-bandwidth': '10mbit',
  'sample-interval': '5ms',
  timeout: '5',
  'stall-after': '500ms',
  fault: 'kill-dst',
  bandwidth: '100M/s',
  delay: '2h',
  loss: '101',
  prefix: 'BAD',
  qemu: 'newest',
  'qemu-dst': '10',
  'machine-type': 'PC',
  switchover: 'fastest',
};

const BAD_BATCH: Record<string, string> = {
  steps: '0',
  mode: 'fast',
  memory: '32M',
  'dirty-rate': '50mbit',
  timeout: '5',
  deadline: 'soon',
  reserve: '-1G',
  'psi-cpu': '150',
  'psi-memory': '-1',
  'load-per-cpu': '0',
  sustain: '0',
  'sample-interval': '20s',
  'max-bandwidth': '100mbit',
  bandwidth: '100M/s',
  fault: 'kill-dst@soon',
  prefix: 'BAD',
};

const valued = (options: Record<string, object>) => Object.keys(options).filter((k) => (options[k] as { type?: string }).type !== 'boolean' && !(k in FREE_TEXT));

describe('every option given a bad value', () => {
  it('has a bad value in this test (a new option must add one)', () => {
    expect(valued({ ...MIGRATE_OPTIONS, prefix: { type: 'string' } }).sort()).toEqual(Object.keys(BAD_MIGRATE).sort());
    expect(valued(BATCH_OPTIONS).sort()).toEqual(Object.keys(BAD_BATCH).sort());
  });

  it.each(Object.entries(BAD_MIGRATE))('migrate --%s %s: one line naming the option, with the fix', async (flag, value) => {
    const err = await refusal(['migrate', `--${flag}`, value], (a) => [scenarioFromArgsChecked(a), shapingFromArgs(a)]);
    expect(err.code).toBe('BAD_INPUT');
    expect(err.message).toMatch(new RegExp(`^--${flag}[ :]`));
    expect(err.message).toMatch(/; (give|add|use|write|choose)/);
    expect(err.message).not.toMatch(/\n|[a-z][A-Z]\w*(Ms|MiB|Mbps)\b|Too small|Too big|Invalid input/);
  });

  it.each(Object.entries(BAD_BATCH))('batch --%s %s: one line naming the option, with the fix', async (flag, value) => {
    const err = await refusal(['batch', `--${flag}`, value], (a) => batchSpecFromArgsChecked(a));
    expect(err.code).toBe('BAD_INPUT');
    expect(err.message).toMatch(new RegExp(`^--${flag}[ :]`));
    expect(err.message).not.toMatch(/\n|[a-z][A-Z]\w*(Ms|MiB|Mbps|Avg10|Samples)\b|steps\.0|Too small|Too big/);
  });
});

describe('the messages the issue quoted', () => {
  it('say what is wrong in the terms typed', async () => {
    expect((await refusal(['migrate', '--timeout', '5'], scenarioFromArgsChecked)).message).toBe(
      '--timeout 5: too short (a bare number is milliseconds); give at least 1s (a duration like 500ms, 90s or 2m)',
    );
    expect((await refusal(['batch', '--steps', '0'], batchSpecFromArgsChecked)).message).toBe(
      '--steps 0: too small; give values of N from 1 to 64, as a list like 1,2,4 or a rule like 1..8*2 (START <= MAX, factor above 1)',
    );
    expect((await refusal(['migrate', '--max-bandwidth', '100mbit'], scenarioFromArgsChecked)).message).toBe(
      '--max-bandwidth 100mbit: that is a link rate in bits per second; give a rate in bytes per second like 128M/s or 1G/s (100mbit is 11.9M/s)',
    );
  });

  it('read a negative value as the option\'s value, not as flags', async () => {
    expect((await refusal(['migrate', '--memory', '-5G'], scenarioFromArgsChecked)).message).toMatch(/^--memory -5G: cannot be negative/);
    expect((await refusal(['migrate', '--vcpus', '-2'], scenarioFromArgsChecked)).message).toMatch(/^--vcpus -2: too small/);
    expect((await refusal(['migrate', '--timeout', '-1m'], scenarioFromArgsChecked)).message).toMatch(/^--timeout -1m: cannot be negative/);
    expect((await refusal(['guests', 'up', '--hold', '-1m'], guestsCheck)).message).toMatch(/^--hold -1m: cannot be negative/);
  });

  it('refuse options that cannot work together, naming both and the fix', async () => {
    expect((await refusal(['migrate', '--postcopy-after', '2s'], scenarioFromArgsChecked)).message).toBe('--postcopy-after 2s: post-copy is not enabled; add --capability postcopy-ram');
    expect((await refusal(['migrate', '--multifd-channels', '4'], scenarioFromArgsChecked)).message).toBe('--multifd-channels 4: multifd is not enabled; add --capability multifd');
    expect((await refusal(['migrate', '--postcopy-stall', '5s'], scenarioFromArgsChecked)).message).toBe('--postcopy-stall 5s: post-copy is not enabled; add --capability postcopy-ram');
    expect((await refusal(['migrate', '--capability', 'postcopy-ram', '--postcopy-stall', '100ms'], scenarioFromArgsChecked)).message).toMatch(/^--postcopy-stall 100ms: .*; give at least 200ms/);
    // A policy that may start post-copy enables it as well as the capability does.
    const pc = (await buildParser(['migrate', '--switchover', 'postcopy-after:2', '--postcopy-stall', '5s', '--max-postcopy-bandwidth', '32M/s']).parseAsync()) as Args;
    expect(scenarioFromArgsChecked(pc)).toMatchObject({ postcopyStallMs: 5000, postcopyRecoverWithinMs: 60000, parameters: { maxPostcopyBandwidthMiBps: 32 } });
    expect((await refusal(['migrate', '--timeout', '2s', '--stall-after', '15s'], scenarioFromArgsChecked)).message).toBe(
      '--stall-after 15s: not shorter than --timeout 2s, so a stall could never be caught; give a --stall-after shorter than --timeout, or a longer --timeout',
    );
    const ok = (await buildParser(['migrate', '--capability', 'multifd', '--multifd-channels', '4', '--timeout', '20s', '--stall-after', '5s']).parseAsync()) as Args;
    expect(scenarioFromArgsChecked(ok)).toMatchObject({ parameters: { multifdChannels: 4 }, timeoutMs: 20000, stallAfterMs: 5000 });
    // The default stall window (15s) does not make a short --timeout alone a contradiction.
    const short = (await buildParser(['migrate', '--timeout', '10s']).parseAsync()) as Args;
    expect(scenarioFromArgsChecked(short)).toMatchObject({ timeoutMs: 10000, stallAfterMs: 15000 });
  });

  it('read MB as MiB, the binary prefix every size and byte rate uses', async () => {
    const a = (await buildParser(['migrate', '--memory', '256MB', '--max-bandwidth', '100MB/s']).parseAsync()) as Args;
    expect(scenarioFromArgsChecked(a)).toMatchObject({ guest: { memoryMiB: 256 }, parameters: { maxBandwidthMiBps: 100 } });
  });

  it('name --hold when it is below its minimum, before anything starts', async () => {
    expect((await refusal(['guests', 'up', '--hold', '5'], guestsCheck)).message).toBe('--hold 5: shorter than 10 s; give 10s or more, e.g. 2m (a bare number is milliseconds)');
  });

  it('refuse an option left without its value instead of running with the default', async () => {
    expect((await refusal(['migrate', '--memory'], scenarioFromArgsChecked)).message).toMatch(/^--memory needs a value; /);
    expect((await refusal(['migrate', '--memory=', '--tls'], scenarioFromArgsChecked)).message).toMatch(/^--memory needs a value; /);
    expect((await refusal(['migrate', '--fault', '--tls'], scenarioFromArgsChecked)).message).toMatch(/^--fault needs a value; /);
    expect((await refusal(['bench', '--repetitions', 'abc'], () => undefined)).message).toBe('--repetitions abc: not a number; give a number, e.g. 2');
  });

  it('refuse an option the chosen containers action does not read, instead of ignoring it', async () => {
    expect((await refusal(['containers', 'migrate', '--counts', '5'], () => undefined)).message).toBe('--counts is for miglab containers batch, not containers migrate; drop it (miglab containers --help lists which action reads which option)');
    expect((await refusal(['containers', 'check', '--transfer=nfs'], () => undefined)).message).toMatch(/^--transfer is for miglab containers migrate or sweep, not containers check; /);
    // Options every action reads, and an action's own, pass.
    const a = (await buildParser(['containers', 'batch', '--counts', '1,3', '--files', 'export', '--memory', '512', '--period-ms', '200']).parseAsync()) as Args;
    expect([a.counts, a.files, a.memory, a['period-ms']]).toEqual(['1,3', 'export', 512, 200]);
  });

  it("refuse a strategy's stop rule given with another strategy, instead of ignoring it", async () => {
    expect((await refusal(['containers', 'migrate', '--strategy', 'iterative', '--plateau-pct', '5'], () => undefined)).message).toBe('--plateau-pct is for --strategy mem-rounds, not --strategy iterative; drop it, or choose --strategy mem-rounds');
    // the default strategy is stop-and-copy, which reads no stop rule
    expect((await refusal(['containers', 'migrate', '--max-rounds=4'], () => undefined)).message).toBe('--max-rounds is for --strategy iterative or mem-rounds, not --strategy stop-and-copy; drop it, or choose --strategy iterative');
    // the action is checked first: these are migrate's options
    expect((await refusal(['containers', 'sweep', '--min-pages', '3'], () => undefined)).message).toMatch(/^--min-pages is for miglab containers migrate, not containers sweep; /);
    const a = (await buildParser(['containers', 'migrate', '--strategy', 'mem-rounds', '--max-rounds', '4', '--budget-pages', '512', '--plateau-pct', '20']).parseAsync()) as Args;
    expect([a['max-rounds'], a['budget-pages'], a['plateau-pct']]).toEqual([4, 512, 20]);
  });

  it('accept what is well written', async () => {
    const a = (await buildParser(['migrate', '--memory', '512M', '--timeout', '90s', '--max-bandwidth', '1G/s', '--bandwidth', '200mbit']).parseAsync()) as Args;
    expect(scenarioFromArgsChecked(a)).toMatchObject({ guest: { memoryMiB: 512 }, timeoutMs: 90000, parameters: { maxBandwidthMiBps: 1024 } });
    expect(shapingFromArgs(a)).toMatchObject({ bandwidthMbit: 200 });
  });
});

describe("yargs' complaints", () => {
  const failure = async (argv: string[]) => refusal(argv, () => undefined);

  it('name an unknown command as one, with the closest', async () => {
    expect((await failure(['zzzz'])).message).toMatch(/^unknown command "zzzz"; the commands are image, qemu, lab, migrate, .*doctor.*completion \(miglab --help\)$/);
    expect((await failure(['migrat'])).message).toMatch(/^unknown command "migrat"; did you mean migrate\? /);
    expect(closestCommand('doctr')).toBe('doctor');
    expect(closestCommand('zzzzzz')).toBeUndefined();
  });

  it('name an unknown option, an extra argument, a missing positional and a bad choice', async () => {
    expect((await failure(['migrate', '--foo-bar'])).message).toBe('unknown option --foo-bar for miglab migrate; miglab migrate --help lists its options');
    expect((await failure(['migrate', 'extra'])).message).toBe('unexpected argument "extra" after miglab migrate; it takes no more; miglab migrate --help shows its form');
    expect((await failure(['lab'])).message).toBe('miglab lab needs <action>; miglab lab --help shows what to give');
    expect((await failure(['lab', 'upp'])).message).toBe('miglab lab upp: not a known action; give one of up, down, status');
    expect((await failure(['migrate', '--nic', 'foo'])).message).toBe('--nic foo: not a choice; give one of virtio-net-pci, e1000, rtl8139');
    expect((await failure([])).message).toMatch(/^name a command: image, qemu, lab, /);
  });

  it('fall back to the message itself, on one line, with where to look', () => {
    expect(explainParseFailure('Something new\n  happened', ['migrate']).message).toBe('Something new happened; see miglab migrate --help');
  });
});
