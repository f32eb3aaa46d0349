// One way to validate input against a zod schema: the first problem becomes one UsageError line
// that names the field, so bad input is reported the same way everywhere, before anything starts.
import type { z } from 'zod';
import { UsageError } from '../errors.js';

export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new UsageError(`invalid ${what}: ${issue.path.join('.') || what}: ${issue.message}`);
  }
  return r.data;
}
