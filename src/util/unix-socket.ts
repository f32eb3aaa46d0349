// A connection to a unix socket on this machine. Its errors keep node's `code` (ENOENT while the
// socket is not made yet, ECONNREFUSED while nobody accepts on it), which connect loops retry on.
import { connect, type Socket } from 'node:net';

export function connectUnixSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const onError = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.once('error', onError);
    s.once('connect', () => {
      s.off('error', onError);
      resolve(s);
    });
  });
}
