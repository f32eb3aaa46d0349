// The miglab command line. It only parses and calls the API (src/api.ts); every error becomes
// one line on stderr and an exit code derived from the error's code.
import { chalkStderr } from 'chalk';
import yargs from 'yargs';
import { describeError, MiglabError, UsageError } from './errors.js';
import { COMMANDS, commandNames } from './cli/commands.js';
import { ERROR_EXIT, signalExit } from './cli/exit.js';
import { cliOutput, type CliOutput } from './cli/output.js';

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

/** Options every command takes: how much it says, and in what form (src/cli/output.ts). */
const OUTPUT_OPTIONS = {
  quiet: { alias: 'q', type: 'boolean', default: false, global: true, describe: 'no progress on stderr: only the result lines and errors' },
  json: { type: 'boolean', default: false, global: true, describe: "the command's summary as JSON on stdout, nothing else there (result lines go to stderr)" },
} as const;

export async function main(argv: readonly string[]): Promise<number> {
  let parser = yargs(glueNegativeValues(argv))
    .scriptName('miglab')
    .usage('$0 <command> [options]\n\nQEMU live migration on a two-host lab: real QEMU, real networks, real numbers.');
  for (const c of COMMANDS) parser = parser.command(c.command, c.describe, c.builder);
  parser = parser
    .options(OUTPUT_OPTIONS)
    .demandCommand(1, `name a command: ${commandNames().join(', ')}`)
    .strict()
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err ?? new MiglabError('BAD_INPUT', `${msg}; see miglab --help`);
    });

  let output: CliOutput | undefined;
  try {
    const a = (await parser.parseAsync()) as Record<string, unknown> & { _: (string | number)[] };
    if (a.help) return 0;
    const name = String(a._[0]);
    const command = COMMANDS.find((c) => c.command.split(' ')[0] === name);
    if (!command) throw new MiglabError('BAD_INPUT', `unknown command "${name}"; the commands are ${commandNames().join(', ')} (miglab --help)`);
    if (a.json === true && !command.json) throw new UsageError(`miglab ${name} has no JSON summary`, `drop --json (it is for ${COMMANDS.filter((c) => c.json).map((c) => c.command.split(' ')[0]).join(', ')})`);
    output = cliOutput({ quiet: a.quiet === true, json: a.json === true });
    return await command.run(a, output.io);
  } catch (err) {
    // The live progress line goes before the error line does.
    output?.stop();
    const c = err instanceof MiglabError ? err.code : 'INTERNAL';
    const text = describeError(err);
    process.stderr.write(`${chalkStderr.red('miglab:')} ${text}\n`);
    if (process.env.MIGLAB_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    if (c === 'ABORTED') return signalExit(/\bSIGTERM\b/.test(text) ? 'SIGTERM' : 'SIGINT');
    return ERROR_EXIT[c] ?? 1;
  } finally {
    output?.stop();
  }
}
