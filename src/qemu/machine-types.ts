// What `qemu-system-x86_64 -machine help` says: the machine types a QEMU knows, and which
// unversioned names (pc, q35) are aliases of which versioned type on that QEMU.

export interface Machines {
  readonly names: readonly string[];
  /** pc -> pc-i440fx-7.2 */
  readonly aliases: ReadonlyMap<string, string>;
}

export function parseMachineTypes(help: string): Machines {
  const names: string[] = [];
  const aliases = new Map<string, string>();
  for (const line of help.split('\n').slice(1)) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    names.push(m[1]!);
    const alias = /\(alias of (\S+)\)/.exec(m[2]!);
    if (alias) aliases.set(m[1]!, alias[1]!);
  }
  return { names, aliases };
}
