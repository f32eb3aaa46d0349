// The command line's grammar: yargs set up from the command table (commands.ts), with shell
// completion, the exit statuses as the help's epilogue, and every complaint of the parser turned
// into one line in the user's terms (the command or option as typed, and what to do), so nothing
// starts on input the parser did not understand.
import yargs, { type Argv, type FallbackCompletionFunction } from 'yargs';
import { MiglabError, UsageError } from '../errors.js';
import { subject } from '../util/units.js';
import { COMMANDS, commandName, commandNames, type MiglabCommand } from './commands.js';
import { exitEpilogue } from './exit.js';
import { prefixFromArgs } from './options.js';

/**
 * yargs reads `--memory -5G` as the option without a value followed by flags -5 and -G. A value
 * that starts with a minus and a digit is glued to its option (`--memory=-5G`), so the option's
 * own check says what is wrong with it.
 */
export function glueNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (/^--[a-z][a-z-]*$/.test(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The name of the completion command (yargs answers it itself). */
const COMPLETION_COMMAND = 'completion';
/** The option the completion script calls miglab with, followed by the words typed so far. */
const COMPLETIONS_KEY = '--get-yargs-completions';

/** Every command a user can type, the table's and yargs' own. */
export function allCommandNames(): string[] {
  return [...commandNames(), COMPLETION_COMMAND];
}

/**
 * What shell completion offers for the words typed so far (`typed`: the script passes the whole
 * line, `miglab` first; the last word is the one being completed), given yargs' own offer: after an option whose values yargs cannot list (a command's `values`),
 * those values; and never `--q`, which yargs makes of a one-letter alias (`-q`) when the word
 * being completed starts with two dashes.
 */
export function completions(typed: readonly string[], offered: readonly string[]): string[] {
  const current = typed.at(-1) ?? '';
  const option = /^--([a-z][a-z0-9-]*)$/.exec(typed.at(-2) ?? '')?.[1];
  const command = COMMANDS.find((c) => typed.slice(0, -1).includes(commandName(c)));
  const values = option === undefined ? undefined : command?.values?.[option];
  // yargs escapes a colon the same way in the values it lists (`choices`).
  if (values) return values.filter((v) => v.startsWith(current)).map((v) => v.replace(/:/g, '\\:'));
  // A folder or file argument: offer nothing, and bash's `-o default` completes paths instead.
  if (command?.paths && !current.startsWith('-') && option === undefined) return [];
  return offered.filter((o) => !/^--[^-]$/.test(o));
}

/** yargs' completion hook: its own offer for the words after COMPLETIONS_KEY, mended by `completions`. */
function offerCompletions(words: readonly string[]): FallbackCompletionFunction {
  const typed = words.slice(words.indexOf(COMPLETIONS_KEY) + 1);
  return (_current, _argv, offer, done) => offer((err, offered) => done(err ? [] : completions(typed, offered ?? [])));
}

/** The command word as typed: the first argument that is not an option. */
function commandWord(argv: readonly string[]): string | undefined {
  return argv.find((a) => !a.startsWith('-'));
}

/** Edit distance, for "did you mean" (commands are short; the quadratic table is nothing). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** The command the user probably meant, if one is close. */
export function closestCommand(word: string): string | undefined {
  const scored = allCommandNames()
    .map((c) => ({ c, d: c.startsWith(word) && word.length >= 2 ? 0 : distance(word, c) }))
    .sort((x, y) => x.d - y.d);
  return scored[0] && scored[0].d <= 2 ? scored[0].c : undefined;
}

/**
 * yargs' complaint as one line in the user's terms. yargs words these in English with the bare
 * key (`Unknown argument: foo`, `Invalid values: Argument: nic, ...`); a unit test feeds real yargs
 * failures through this, so a change of wording in yargs shows there.
 */
export function explainParseFailure(msg: string, argv: readonly string[]): UsageError {
  const word = commandWord(argv);
  const known = word !== undefined && allCommandNames().includes(word);
  const where = known ? `miglab ${word}` : 'miglab';
  const help = known ? `miglab ${word} --help` : 'miglab --help';
  const commands = allCommandNames().join(', ');

  const unknown = /^Unknown arguments?: (.*)$/s.exec(msg);
  if (unknown) {
    if (!known) {
      const guess = word === undefined ? undefined : closestCommand(word);
      return new UsageError(`unknown command "${word ?? argv[0]}"`, `${guess ? `did you mean ${guess}? ` : ''}the commands are ${commands} (miglab --help)`);
    }
    // yargs lists a dashed key twice (foo-bar, fooBar): the form typed is the one in argv.
    const names = unknown[1]!.split(', ').map((n) => n.trim());
    const typed = names.find((n) => argv.some((a) => a === `--${n}` || a.startsWith(`--${n}=`) || a === `-${n}`));
    if (typed !== undefined) return new UsageError(`unknown option ${typed.length === 1 ? '-' : '--'}${typed} for ${where}`, `${help} lists its options`);
    return new UsageError(`unexpected argument "${names[0]}" after ${where}`, `it takes no more; ${help} shows its form`);
  }
  const invalid = /^Invalid values:\s*Argument: (\S+), Given: (.*?), Choices: (.*)$/s.exec(msg);
  if (invalid) {
    const [, key, given, choices] = invalid;
    const value = given!.replace(/^"|"$/g, '');
    const list = choices!.replace(/"/g, '').trim();
    const positional = argv.some((a) => a === value) && !argv.some((a) => a === `--${key}` || a.startsWith(`--${key}=`));
    return positional ? new UsageError(`${where} ${value}: not a known ${key}`, `give one of ${list}`) : new UsageError(`${subject(`--${key}`, value)}: not a choice`, `give one of ${list}`);
  }
  if (/^Not enough non-option arguments/.test(msg)) {
    const positional = COMMANDS.find((c) => commandName(c) === word)?.command.split(' ').slice(1).join(' ');
    return new UsageError(`${where} needs ${positional || 'more arguments'}`, `${help} shows what to give`);
  }
  const missing = /^Missing required arguments?: (.*)$/s.exec(msg);
  if (missing) return new UsageError(`${where} needs ${missing[1]!.trim()}`, `${help} shows what to give`);
  return new UsageError(msg.replace(/\s*\n\s*/g, ' ').trim(), `see ${help}`);
}

/** yargs' own record of a command's options (yargs 18 has it; @types/yargs 17 does not declare it). */
interface DeclaredOptions {
  readonly string: string[];
  readonly number: string[];
  readonly array: string[];
  readonly boolean: string[];
}

/**
 * Checks yargs does not make: an option that takes a value given none (`--memory` at the end,
 * `--memory=`, `--fault` followed by another option), or a number option given something else
 * (yargs turns `--vcpus x` into NaN and `--vcpus` alone into nothing at all).
 */

function valuesGiven(y: Argv, argv: readonly string[]): Argv {
  const o = (y as unknown as { getOptions(): DeclaredOptions }).getOptions();
  const valued = new Set([...o.string, ...o.number, ...o.array].filter((k) => !o.boolean.includes(k)));
  const numbers = new Set(o.number);
  return y.middleware((a: Record<string, unknown>) => {
    for (let i = 0; i < argv.length; i++) {
      const m = /^--([a-z][a-z0-9-]*)(=(.*))?$/.exec(argv[i]!);
      if (!m || !valued.has(m[1]!)) continue;
      const flag = `--${m[1]}`;
      const value = m[2] !== undefined ? m[3]! : argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') ? argv[i + 1]! : undefined;
      if (value === undefined || value === '') throw new UsageError(`${flag} needs a value`, `give one after it (${commandWord(argv) ? `miglab ${commandWord(argv)} --help` : 'miglab --help'} says what it takes)`);
      if (numbers.has(m[1]!) && !Number.isFinite(Number(value))) throw new UsageError(`${subject(flag, value)}: not a number`, 'give a number, e.g. 2');
    }
    for (const k of numbers) if (a[k] !== undefined && !Number.isFinite(a[k])) throw new UsageError(`--${k}: not a number`, 'give a number, e.g. 2');
  });
}

/** The long options the user typed, by name, in order. */
const typedOptions = (argv: readonly string[]): string[] => argv.map((w) => /^--([a-z][a-z0-9-]*)/.exec(w)?.[1]).filter((n): n is string => n !== undefined);

/**
 * For a command whose actions read different options (MiglabCommand.actionOptions), or whose
 * options serve only some values of one choice (choiceOptions: --strategy's stop rules): an option
 * the user typed that the chosen action or value does not read is refused, rather than silently
 * ignored. The action first: its message names the action that does read it.
 */
function optionsOfTheAction(y: Argv, c: MiglabCommand, argv: readonly string[]): Argv {
  const { actionOptions: table, choiceOptions: by } = c;
  if (!table && !by) return y;
  const cmd = commandName(c);
  return y.middleware((a: Record<string, unknown>) => {
    const action = String(a.action);
    for (const name of typedOptions(argv)) {
      const readers = table?.[name];
      if (readers && !readers.includes(action)) {
        throw new UsageError(`--${name} is for miglab ${cmd} ${readers.join(' or ')}, not ${cmd} ${action}`, `drop it (miglab ${cmd} --help lists which action reads which option)`);
      }
    }
    if (!by) return;
    const chosen = String(a[by.choice]);
    for (const name of typedOptions(argv)) {
      const readers = by.table[name];
      if (readers && !readers.includes(chosen)) {
        throw new UsageError(`--${name} is for --${by.choice} ${readers.join(' or ')}, not --${by.choice} ${chosen}`, `drop it, or choose --${by.choice} ${readers[0]}`);
      }
    }
  });
}

/** Options every command takes: how much it says, and in what form (src/cli/output.ts). */
const OUTPUT_OPTIONS = {
  quiet: { alias: 'q', type: 'boolean', default: false, global: true, describe: 'no progress on stderr: only the result lines and errors' },
  json: { type: 'boolean', default: false, global: true, describe: "the command's summary as JSON on stdout, nothing else there (result lines go to stderr)" },
} as const;

/**
 * yargs builds a command's whole help text as the command starts, in case it is to be shown after
 * the command failed (usage.cacheHelpMessage): for `migrate` about 0.1 s of wrapping its options'
 * text, on the way to every run. miglab never shows help once a command runs (its errors are one
 * line naming the fix; --help and parse errors build their own), so that text is not built. Where a
 * yargs version has no such method, nothing changes.
 */
function skipHelpAfterTheCommand(parser: Argv): void {
  type Internals = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = (parser as unknown as Internals).getInternalMethods?.().getUsageInstance?.();
  if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => undefined;
}

/** The whole parser for `argv` (already split into words by the shell). */
export function buildParser(argv: readonly string[]): Argv {
  const words = glueNegativeValues(argv);
  const columns = Math.min(110, process.stdout.columns || 100);
  let parser = yargs(words)
    .scriptName('miglab')
    // miglab speaks English: yargs' own words too, whatever LANG says (and the bundle, which does
    // not carry yargs' locale files, says what dist/ says).
    .locale('en')
    .usage('$0 <command> [options]\n\nQEMU live migration on a two-host lab: real QEMU, real networks, real numbers.');
  for (const c of COMMANDS) parser = parser.command(c.command, c.describe, (y) => optionsOfTheAction(valuesGiven(c.builder(y), words), c, words));
  skipHelpAfterTheCommand(parser);
  return parser
    .completion(COMPLETION_COMMAND, 'print a bash completion script (miglab completion >> ~/.bashrc)', offerCompletions(words))
    // yargs' own --version knows only a fixed string; main() answers it with QEMU's version too.
    .version(false)
    .option('version', { type: 'boolean', describe: "show miglab's version and the QEMU it finds" })
    .options(OUTPUT_OPTIONS)
    // Every command that takes a lab names it by prefix: checked here, once, before anything starts.
    .middleware((a: Record<string, unknown>) => {
      if (a.prefix !== undefined) prefixFromArgs(a);
    })
    .demandCommand(1, `name a command: ${allCommandNames().join(', ')}`)
    .strict()
    .help()
    .epilogue(exitEpilogue(columns - 1))
    .wrap(columns)
    .fail((msg, err) => {
      if (err instanceof MiglabError) throw err;
      // demandCommand's message is ours already; a bare `miglab` gets it with the fix.
      if (msg?.startsWith('name a command')) throw new UsageError(msg, 'see miglab --help');
      throw explainParseFailure(msg ?? err?.message ?? 'the command line could not be read', words);
    });
}
