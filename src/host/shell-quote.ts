// POSIX shell quoting, in one place: SSH runs a command line through the remote shell, and the
// reports show commands a person can paste. Apart from src/host/ssh.ts so that quoting a command
// does not load the SSH client.
import { MiglabError } from '../errors.js';

/** POSIX shell quoting of one argument: safe for any byte string. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new MiglabError('INTERNAL', 'empty command');
  return argv.map(shellQuote).join(' ');
}
