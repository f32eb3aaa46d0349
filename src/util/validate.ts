// One way to validate input against a zod schema: the first problem becomes one UsageError line
// that names the field, so bad input is reported the same way everywhere, before anything starts.
import { z } from 'zod';
import { UsageError } from '../errors.js';

type Issue = z.core.$ZodIssue;

/**
 * The issue a person should read. A union (a workload or fault given as text or as an object)
 * fails as "Invalid input" with one list of issues per alternative: the alternative that got past
 * the type check (its issues are not about the value's type) says what is really wrong.
 */
export function explainIssue(issue: Issue): { path: PropertyKey[]; message: string } {
  if (issue.code === 'invalid_union' && 'errors' in issue && Array.isArray(issue.errors)) {
    const branches = issue.errors as Issue[][];
    const telling = branches.find((b) => b.length > 0 && b.every((i) => i.code !== 'invalid_type'));
    if (telling) {
      const inner = explainIssue(telling[0]!);
      return { path: [...issue.path, ...inner.path], message: inner.message };
    }
  }
  return { path: [...issue.path], message: issue.message };
}

/**
 * Data given either as an object or in its compact text form (`dirty:512M@200M/s`,
 * `kill-dst@2s`), as specs and YAML take workloads and faults: the text goes through `parse`, whose
 * one-line error becomes the issue's message.
 */
export function objectOrCompact<S extends z.ZodType, T>(object: S, parse: (text: string) => T) {
  return z.union([
    object,
    z.string().transform((text, ctx): T => {
      try {
        return parse(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
        return z.NEVER;
      }
    }),
  ]);
}

export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const { path, message } = explainIssue(r.error.issues[0]!);
    throw new UsageError(`invalid ${what}: ${path.map(String).join('.') || what}: ${message}`);
  }
  return r.data;
}

/** A field's path as a person writes it: `grid.workload[1]`, `hosts.src.address`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('');
}

/** An issue of a file's schema on one line: the field, then what is wrong with it. */
export function describeIssue(issue: Issue): string {
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => formatPath([...issue.path, k]));
    return `unknown key${keys.length > 1 ? 's' : ''} ${keys.join(', ')}`;
  }
  return `${formatPath(issue.path) || '(top level)'}: ${issue.message}`;
}
