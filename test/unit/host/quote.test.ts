import { shellCommand, shellQuote } from '../../../src/host/shell-quote.js';

describe('shell quoting for SSH', () => {
  it('leaves plain words alone and quotes the rest', () => {
    expect(shellQuote('qemu-system-x86_64')).toBe('qemu-system-x86_64');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
    expect(shellCommand(['echo', '$(reboot)', 'x;y'])).toBe("echo '$(reboot)' 'x;y'");
  });
});
