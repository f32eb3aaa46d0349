// Following what a command prints as it runs (`guests up` prints its instructions, then waits).

/**
 * Wait until the output so far matches `re`; fail at once, with the output, if the command ended
 * first, or after `timeoutMs`.
 */
export async function waitPrinted(
  what: string,
  output: () => string,
  command: () => { readonly exitCode?: number | null } | undefined,
  re: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(output());
    if (m) return m;
    const code = command()?.exitCode;
    if (code !== null && code !== undefined) throw new Error(`${what} ended (${code}) before printing ${re}:\n${output()}`);
    if (Date.now() > end) throw new Error(`${what} did not print ${re} within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** After a test that failed before ending it: end the command it started, by its pid, and wait. */
export async function endIfRunning(command: (PromiseLike<unknown> & { readonly pid?: number; readonly exitCode?: number | null }) | undefined): Promise<void> {
  if (!command?.pid || command.exitCode !== null) return;
  process.kill(command.pid, 'SIGTERM');
  await command;
}
