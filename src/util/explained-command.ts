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
