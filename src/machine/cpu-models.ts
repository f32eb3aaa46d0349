// The CPU models the host's QEMU knows (`qemu-system-x86_64 -cpu help`), so that a misspelt --cpu
// is refused before a lab is brought up, not some 20 s later when QEMU refuses to start.
import { UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
import { oncePerHost } from '../host/once-per-host.js';
import { rememberedFact } from '../host/program-facts.js';

/** The model names in `-cpu help` output: lines `x86 NAME   description`. */
export function parseCpuModels(help: string): Set<string> {
  return new Set([...help.matchAll(/^x86\s+(\S+)/gm)].map((m) => m[1]!));
}

/** The models QEMU on `host` knows (one `-cpu help` per program file on this machine, per process on others). */
const cpuModels = oncePerHost(
  async (host) => new Set(await rememberedFact('qemu-cpu-models', host, 'qemu-system-x86_64', async () => [...parseCpuModels((await host.run(['qemu-system-x86_64', '-cpu', 'help'])).stdout)])),
);

/** Refuse a CPU model this QEMU does not know, naming a few it does (those sharing a prefix first). */
export async function checkCpuModels(host: Host, wanted: Iterable<string>, option = '--cpu'): Promise<void> {
  const known = await cpuModels(host);
  // An empty list means QEMU printed nothing we can read: QEMU itself will judge the model.
  if (known.size === 0) return;
  for (const model of wanted) {
    if (known.has(model)) continue;
    const stem = model.slice(0, 3).toLowerCase();
    const alike = [...known].filter((k) => k.toLowerCase().startsWith(stem)).slice(0, 4);
    const examples = alike.length > 0 ? alike : ['qemu64', 'max', 'host', 'Skylake-Client'].filter((k) => known.has(k));
    throw new UsageError(`${option} ${model}: QEMU knows no such CPU model`, `give one of qemu-system-x86_64 -cpu help, e.g. ${examples.join(', ')}`);
  }
}
