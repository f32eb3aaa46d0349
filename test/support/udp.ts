// Talking UDP to a program on this machine's loopback (the guest agent behind QEMU's user
// network, the container workload run on the host): a free port to give it, and one request
// answered by one reply.
import { createSocket } from 'node:dgram';

/** A UDP port free on 127.0.0.1 right now (bound and released: the caller binds it next). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** One request to 127.0.0.1:port, one reply (or a timeout). */
export async function askUdp(port: number, request: string, timeoutMs = 5000): Promise<string> {
  const s = createSocket('udp4');
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to "${request}" within ${timeoutMs} ms`)), timeoutMs);
      s.on('message', (msg) => {
        clearTimeout(timer);
        resolve(msg.toString());
      });
      s.on('error', reject);
      s.send(request, port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}
