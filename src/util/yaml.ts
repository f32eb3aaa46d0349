// One way to read a YAML input file (sweeps, hosts): unreadable files and YAML syntax errors
// become one UsageError line naming the file, the line and column, and what to give instead.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { UsageError } from '../errors.js';

/** The text of an input file; `what` names it in the error ("sweep file"), `hint` says what to give. */
export async function readInputFile(file: string, what: string, hint: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, hint);
  }
}

/** YAML text as plain data (duplicate keys refused); `where` names the source in errors. */
export function parseYaml(text: string, where: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const firstLine = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new UsageError(`${where}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${firstLine}`);
  }
  return doc.toJS();
}
