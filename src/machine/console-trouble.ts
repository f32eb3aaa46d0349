// Recognises, on one line of a guest's serial console, the guest in trouble: its OOM killer
// killing a process, a kernel panic, a kernel crash (oops, GPF, bad page fault, BUG), or the
// miglab agent exiting (init's MIGLAB-AGENT-EXIT line). A pure function of the line, so it can
// run on a live console (machine/heartbeat.ts) or on a saved <run>/src.serial.log alike.
//
// What reaches the console: miglab boots the guest with `quiet` (console loglevel 4), so only
// KERN_ERR and more severe messages appear. The lines recognised here all pass: the OOM kill line
// is pr_err, a panic pr_emerg, oopses and BUGs pr_alert or KERN_EMERG; the OOM report before the
// kill line (pr_warn: "... invoked oom-killer", the memory dump) does not reach the console.

export type ConsoleTrouble =
  /** The OOM killer killed `process` (its comm, at most 15 characters) with this pid. */
  | { readonly kind: 'oom'; readonly process: string; readonly pid: number; readonly line: string }
  /** `Kernel panic - not syncing: <reason>`; with panic=-1 and -no-reboot QEMU exits right after. */
  | { readonly kind: 'panic'; readonly reason: string; readonly line: string }
  /** A kernel oops of some sort; `what` names which (CRASH_SIGNS). The guest may limp on. */
  | { readonly kind: 'crash'; readonly what: CrashSign; readonly line: string }
  /** The agent exited and init reported its status (137: SIGKILL, e.g. by the OOM killer). */
  | { readonly kind: 'agent-exit'; readonly status: number; readonly line: string }
  /**
   * The kernel could not unpack the initramfs (a truncated or corrupt file). With half an initrd
   * the guest still boots, without what the lost half held: caught here rather than as a timeout.
   */
  | { readonly kind: 'initramfs'; readonly line: string };

/** The kernel's ways of announcing a crash, as printed, and how each is recognised. */
const CRASH_PATTERNS = [
  ['general protection fault', /\bgeneral protection fault\b/],
  ['BUG: unable to handle', /\bBUG: unable to handle\b/],
  // Since Linux 5.x a NULL dereference says this instead of "unable to handle".
  ['BUG: kernel NULL pointer dereference', /\bBUG: kernel NULL pointer dereference\b/],
  ['kernel BUG at', /\bkernel BUG at \S+/],
  ['Oops', /\bOops: /],
] as const;

export type CrashSign = (typeof CRASH_PATTERNS)[number][0];
export const CRASH_SIGNS: readonly CrashSign[] = CRASH_PATTERNS.map(([sign]) => sign);

// ESC sequences (a terminal reset "ESC c", colours, "ESC [?7l") that SeaBIOS and the like print.
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_a-z]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g;
/** printk's time stamp, `[    1.411639]`, optionally followed by its caller id (`[    T1]`). */
const STAMP = /\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])?\s?/;

const PANIC = /Kernel panic - not syncing:?\s*(.*?)\s*(?:\]---)?$/;
// 6.x: "Out of memory: Killed process 245 (miglab-agent) total-vm:..."; also the memory cgroup
// variant and oom_kill_allocating_task. Before 5.0 the kill had a line of its own that started
// with "Killed process".
const OOM = /^(?:.*\bout of memory\b.*?: )?Killed process (\d+) \((.+?)\)(?= total-vm:|[\s,]|$)/i;
const AGENT_EXIT = /MIGLAB-AGENT-EXIT status=(\d+)/;
const INITRAMFS = /^Initramfs unpacking failed\b/;

/**
 * The line as a person should read it: without terminal escapes and control characters, and
 * without what came before the kernel's time stamp on the same line (SeaBIOS leaves "Booting from
 * ROM.." with no newline, so the first kernel message shares its line) or the stamp itself.
 */
export function cleanConsoleLine(raw: string): string {
  const text = raw.replace(ESCAPES, '').replace(CONTROLS, '');
  const m = STAMP.exec(text);
  return (m ? text.slice(m.index + m[0].length) : text).trim();
}

/** The trouble this console line reports, if any. */
export function consoleTrouble(raw: string): ConsoleTrouble | undefined {
  const line = cleanConsoleLine(raw);
  if (line === '') return undefined;
  const panic = PANIC.exec(line);
  if (panic) return { kind: 'panic', reason: panic[1] ?? '', line: line.replace(/^---\[ end /, '').replace(/ \]---$/, '') };
  const oom = OOM.exec(line);
  if (oom) return { kind: 'oom', pid: Number(oom[1]), process: oom[2]!, line };
  const crash = CRASH_PATTERNS.find(([, re]) => re.test(line));
  if (crash) return { kind: 'crash', what: crash[0], line };
  if (INITRAMFS.test(line)) return { kind: 'initramfs', line };
  // init's line may follow output that ended without a newline: quote it from its tag.
  const exit = AGENT_EXIT.exec(line);
  return exit ? { kind: 'agent-exit', status: Number(exit[1]), line: line.slice(exit.index) } : undefined;
}
