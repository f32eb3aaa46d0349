// withTeardown: what was deferred always runs, and its signal ends the body on Ctrl-C or on the
// caller's own signal (the one place that joins them, for every command and bench).
import { withTeardown } from '../../../src/util/teardown.js';

describe('withTeardown', () => {
  it("runs what was deferred, last in first out, after the body, even when it throws", async () => {
    const ran: string[] = [];
    await expect(
      withTeardown(async (td) => {
        td.defer('first', async () => void ran.push('first'));
        td.defer('second', async () => void ran.push('second'));
        throw new Error('the body failed');
      }),
    ).rejects.toThrow('the body failed');
    expect(ran).toEqual(['second', 'first']);
  });

  it("gives the body a signal that a caller's own signal aborts, with its reason", async () => {
    const outer = new AbortController();
    const seen = await withTeardown(async (_td, signal) => {
      expect(signal.aborted).toBe(false);
      outer.abort(new Error('the caller stopped'));
      return signal;
    }, outer.signal);
    expect(seen.aborted).toBe(true);
    expect((seen.reason as Error).message).toBe('the caller stopped');
  });

  it('aborts the body on SIGINT, and stops listening afterwards', async () => {
    const before = process.listenerCount('SIGINT');
    const seen = await withTeardown(async (_td, signal) => {
      expect(process.listenerCount('SIGINT')).toBe(before + 1);
      process.emit('SIGINT', 'SIGINT');
      return signal;
    });
    expect((seen.reason as Error).message).toBe('received SIGINT');
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
