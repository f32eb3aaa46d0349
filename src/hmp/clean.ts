// Turning what QEMU's readline writes into plain command output: terminal escape codes out, the
// echoed command line out, the prompt out. Pure, shared by every HMP transport.

export const HMP_PROMPT = '(qemu) ';

// CSI sequences (ESC [ ... final byte), other two-byte ESC sequences, and bare control bytes
// other than newline and tab. Matching control characters is the point here.
/* eslint-disable no-control-regex */
const CSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
const ESC2 = /\x1b[@-Z\\-_]/g;
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;
/* eslint-enable no-control-regex */

export function stripTerminalCodes(text: string): string {
  return text.replace(CSI, '').replace(ESC2, '').replace(/\r\n/g, '\n').replace(/\r/g, '').replace(CONTROL, '');
}

/**
 * The output of `commandLine` from the raw text QEMU sent after it was typed (up to, not
 * including, the next prompt). QEMU's readline echoes the line as it redraws it character by
 * character, so after stripping escapes the first line ends with the command: drop that line.
 */
export function cleanOutput(raw: string, commandLine: string): string {
  let text = stripTerminalCodes(raw);
  if (text.endsWith(HMP_PROMPT)) text = text.slice(0, -HMP_PROMPT.length);
  const lines = text.split('\n');
  const first = lines[0]?.trimEnd() ?? '';
  const cmd = commandLine.trim();
  if (cmd !== '' && first.endsWith(cmd)) lines.shift();
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines.join('\n');
}

/** QEMU's HMP error messages: "Error: ...", "unknown command: ...", parameter complaints. */
const ERROR_LINE = /^(Error: |unknown command: |Invalid parameter |Parameter '|invalid char in expression|Unknown )/m;

export function looksLikeHmpError(output: string): boolean {
  return ERROR_LINE.test(output);
}
