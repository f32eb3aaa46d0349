// A command line together with why each of its parts is there: QEMU's, the NFS server's,
// qemu-img's, openssl's. Reports print them so a reader can see, and retype, what ran. Every
// layer that starts a program builds one, so it lives here, below all of them.

/** Some consecutive arguments and the reason they are there. */
export interface ArgGroup {
  readonly args: readonly string[];
  readonly why: string;
}

/** An argv together with the purpose of each of its parts. */
export interface ExplainedCommand {
  readonly argv: readonly string[];
  readonly explained: readonly ArgGroup[];
}

/** Options of a dynamic loader run as a program (ld-linux-x86-64.so.2 --help) that take no value. */
const LOADER_FLAGS = new Set(['--list', '--verify', '--inhibit-cache', '--list-tunables', '--list-diagnostics', '--help', '--version']);

/**
 * The program's own argv when a command starts with `env NAME=VALUE ...` (a QEMU build that needs
 * QEMU_MODULE_DIR), or with a dynamic loader and its options (a build run with its own libraries:
 * its wrapper's exec leaves `ld-linux-x86-64.so.2 --library-path DIR ... PROGRAM ARGS` in
 * /proc/PID/cmdline): what runs once env has exec'd, as /proc and messages should name it.
 */
export function programArgv(argv: readonly string[]): readonly string[] {
  let i = 0;
  if (argv[0] === 'env') {
    i = 1;
    while (i < argv.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(argv[i]!)) i++;
  }
  if (/(^|\/)ld-linux[^/]*\.so(\.\d+)*$/.test(argv[i] ?? '')) {
    i++;
    while (i < argv.length && argv[i]!.startsWith('--')) i += LOADER_FLAGS.has(argv[i]!) ? 1 : 2;
  }
  return i === 0 ? argv : argv.slice(i);
}
