// What still keeps the process alive once a command has returned. Everything a command starts is
// stopped and awaited inside main(); anything left is a leak, named here so it can be found and
// mended rather than waited on.

/** One line per open handle or request: its kind and whatever identifies it. */
export function describeOpenHandles(): string[] {
  // process._getActiveHandles is undocumented but long-standing; getActiveResourcesInfo (public)
  // gives kinds only, which is the fallback.
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.();
  if (!handles) return process.getActiveResourcesInfo();
  return handles.flatMap((h) => {
    const o = h as Record<string, unknown> & { constructor?: { name?: string } };
    const kind = o.constructor?.name ?? typeof h;
    // The standard streams are open for the whole life of any process.
    if ([process.stdin, process.stdout, process.stderr].includes(h as never)) return [];
    if (Array.isArray(o.spawnargs)) return [`${kind} pid ${String(o.pid)}: ${(o.spawnargs as string[]).join(' ').slice(0, 120)}`];
    if (typeof o.remoteAddress === 'string') return [`${kind} to ${o.remoteAddress}:${String(o.remotePort)}`];
    const fd = (o._handle as { fd?: number } | undefined)?.fd;
    return [`${kind}${fd !== undefined && fd >= 0 ? ` fd ${fd}` : ''}`];
  });
}

/**
 * After `graceMs`, if the process is still alive (the timer is unref'd, so it fires only then),
 * say what keeps it open on stderr and exit. A finished command never hangs on a leak, and the
 * leak is reported, not hidden.
 */
export function exitDespiteOpenHandles(graceMs: number): void {
  setTimeout(() => {
    const open = describeOpenHandles();
    process.stderr.write(`miglab: internal: still open after the command ended (a leak, please report it): ${open.join('; ') || 'nothing named'}\n`);
    process.exit();
  }, graceMs).unref();
}
