// The miglab command line. It only parses (src/cli/parser.ts) and calls the API (src/api.ts);
// every error becomes one line on stderr and an exit code derived from the error's code.
import { chalkStderr } from 'chalk';
import { describeError, MiglabError, UsageError } from './errors.js';
import { COMMANDS, commandName } from './cli/commands.js';
import { ERROR_EXIT, signalExit } from './cli/exit.js';
import { cliOutput, type CliOutput } from './cli/output.js';
import { allCommandNames, buildParser } from './cli/parser.js';
import { versionText } from './cli/version.js';
import { LocalHost } from './host/local.js';

export { glueNegativeValues } from './cli/parser.js';
export { dropWritesOnClosedPipe } from './cli/closed-pipe.js';
export { exitDespiteOpenHandles } from './cli/open-handles.js';

export async function main(argv: readonly string[]): Promise<number> {
  let output: CliOutput | undefined;
  try {
    // Before the parser, which wants a command: `--version` is a question about miglab, not a run.
    if (argv.includes('--version')) {
      process.stdout.write(`${await versionText(new LocalHost())}\n`);
      return 0;
    }
    const a = (await buildParser(argv).parseAsync()) as Record<string, unknown> & { _: (string | number)[] };
    if (a.help) return 0;
    const name = String(a._[0]);
    const command = COMMANDS.find((c) => commandName(c) === name);
    if (!command) throw new MiglabError('BAD_INPUT', `unknown command "${name}"; the commands are ${allCommandNames().join(', ')} (miglab --help)`);
    if (a.json === true && !command.json) throw new UsageError(`miglab ${name} has no JSON summary`, `drop --json (it is for ${COMMANDS.filter((c) => c.json).map(commandName).join(', ')})`);
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
