// A hosts file's text that must be refused: the one-line message it was refused with.
import { parseHostsText, type HostsContext } from '../../src/hosts/file.js';

export function refusedHostsText(text: string, ctx: HostsContext): string {
  try {
    parseHostsText(text, 'h.yaml', ctx);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the file was accepted');
}
