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

/**
 * The program's own argv when a command starts with `env NAME=VALUE ...` (a QEMU build that needs
 * QEMU_MODULE_DIR): what runs once env has exec'd, as /proc and messages should name it.
 */
export function programArgv(argv: readonly string[]): readonly string[] {
  if (argv[0] !== 'env') return argv;
  let i = 1;
  while (i < argv.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(argv[i]!)) i++;
  return argv.slice(i);
}
