// The miglab command line. It only parses (src/cli/parser.ts) and calls the API (src/api.ts);
// every error becomes one line on stderr and an exit code derived from the error's code.
import chalk from 'chalk';
import { describeError, MiglabError } from './errors.js';
import { COMMANDS } from './cli/commands.js';
import { ERROR_EXIT, signalExit } from './cli/exit.js';
import { allCommandNames, buildParser } from './cli/parser.js';
import { versionText } from './cli/version.js';
import { LocalHost } from './host/local.js';

export { glueNegativeValues } from './cli/parser.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
const progress = (phase: string, detail?: string) => process.stderr.write(`${chalk.dim(new Date().toISOString().slice(11, 23))} ${chalk.cyan(phase.padEnd(8))} ${detail ?? ''}\n`);

export async function main(argv: readonly string[]): Promise<number> {
  try {
    // Before the parser, which wants a command: `--version` is a question about miglab, not a run.
    if (argv.includes('--version')) {
      out(await versionText(new LocalHost()));
      return 0;
    }
    const a = (await buildParser(argv).parseAsync()) as Record<string, unknown> & { _: (string | number)[] };
    if (a.help) return 0;
    const name = String(a._[0]);
    const command = COMMANDS.find((c) => c.command.split(' ')[0] === name);
    if (!command) throw new MiglabError('BAD_INPUT', `unknown command "${name}"; the commands are ${allCommandNames().join(', ')} (miglab --help)`);
    return await command.run(a, { out, progress });
  } catch (err) {
    const c = err instanceof MiglabError ? err.code : 'INTERNAL';
    const text = describeError(err);
    process.stderr.write(`${chalk.red('miglab:')} ${text}\n`);
    if (process.env.MIGLAB_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    if (c === 'ABORTED') return signalExit(/\bSIGTERM\b/.test(text) ? 'SIGTERM' : 'SIGINT');
    return ERROR_EXIT[c] ?? 1;
  }
}
