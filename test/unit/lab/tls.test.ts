// The lab's TLS certificates made by the real openssl into a scratch directory: the set QEMU's
// tls-creds-x509 reads, with the properties QEMU checks (CA flags, key usages, purposes, the
// destination's address), private files, made once, and never half-visible to a concurrent run.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTlsCredentials, TLS_FILES, tlsCertificateCommands } from '../../../src/lab/tls.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'miglab-tls-unit-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const cert = (dir: string, name: string) => new X509Certificate(readFileSync(join(dir, name)));
const mode = (path: string) => statSync(path).mode & 0o777;

describe('tlsCertificateCommands', () => {
  it('builds argv arrays whose every argument is explained, with the address as subject alternative name', () => {
    const cmds = tlsCertificateCommands('/t', { serverAddress: '10.77.0.2', label: 'htl', validityDays: 30 });
    expect(cmds).toHaveLength(3);
    for (const c of cmds) {
      expect(c.explained.flatMap((g) => g.args)).toEqual(c.argv);
      for (const g of c.explained) expect(g.why.length).toBeGreaterThan(10);
      expect(c.argv.slice(0, 4)).toEqual(['openssl', 'req', '-config', '/dev/null']);
    }
    expect(cmds[1]!.argv).toContain('subjectAltName=IP:10.77.0.2');
    expect(tlsCertificateCommands('/t', { serverAddress: 'dst.lab', label: 'htl', validityDays: 30 })[1]!.argv).toContain('subjectAltName=DNS:dst.lab');
    expect(() => tlsCertificateCommands('/t', { serverAddress: '10.77.0.2', label: 'a/b', validityDays: 30 })).toThrow(/label/);
    expect(() => tlsCertificateCommands('/t', { serverAddress: 'a b', label: 'x', validityDays: 30 })).toThrow(/server address/);
  });
});

describe('ensureTlsCredentials', () => {
  it('makes the five files QEMU reads, private, signed by a CA whose key is gone', async () => {
    const dir = join(root, 'one', 'tls');
    mkdirSync(join(root, 'one'));
    const set = await ensureTlsCredentials(dir, { serverAddress: '10.77.0.2', label: 'htl', timeoutMs: 20_000 });
    expect(set).toMatchObject({ dir, serverAddress: '10.77.0.2', created: true });
    expect(readdirSync(dir).sort()).toEqual(Object.values(TLS_FILES).sort());
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, TLS_FILES.serverKey))).toBe(0o600);
    expect(mode(join(dir, TLS_FILES.clientKey))).toBe(0o600);
    // Nothing left beside it: the temporary directory was renamed into place.
    expect(readdirSync(join(root, 'one'))).toEqual(['tls']);

    const ca = cert(dir, TLS_FILES.caCert);
    const server = cert(dir, TLS_FILES.serverCert);
    const client = cert(dir, TLS_FILES.clientCert);
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(client.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(client.verify(ca.publicKey)).toBe(true);
    // What the source checks with tls-hostname, and the purposes QEMU checks on each side.
    expect(server.checkIP('10.77.0.2')).toBe('10.77.0.2');
    expect(server.checkIP('10.77.0.1')).toBeUndefined();
    expect(server.keyUsage).toEqual([SERVER_AUTH]);
    expect(client.keyUsage).toEqual([CLIENT_AUTH]);
    expect(Date.parse(set.validUntil) - Date.now()).toBeGreaterThan(29 * 24 * 3600 * 1000);

    // A second call returns the same set at once.
    const t = Date.now();
    const again = await ensureTlsCredentials(dir, { serverAddress: '10.77.0.2' });
    expect(Date.now() - t).toBeLessThan(200);
    expect(again).toEqual({ ...set, created: false });
    expect(cert(dir, TLS_FILES.serverCert).fingerprint256).toBe(server.fingerprint256);
  }, 30_000);

  it('gives concurrent callers one and the same set', async () => {
    const parent = join(root, 'race');
    mkdirSync(parent);
    const dir = join(parent, 'tls');
    const sets = await Promise.all([1, 2, 3, 4].map(() => ensureTlsCredentials(dir, { serverAddress: '10.77.0.2', timeoutMs: 20_000 })));
    expect(sets.filter((s) => s.created)).toHaveLength(1);
    expect(new Set(sets.map((s) => s.validUntil)).size).toBe(1);
    expect(readdirSync(parent)).toEqual(['tls']);
    const server = cert(dir, TLS_FILES.serverCert);
    expect(server.verify(cert(dir, TLS_FILES.caCert).publicKey)).toBe(true);
  }, 30_000);

  it('replaces a set that is about to expire', async () => {
    const parent = join(root, 'renew');
    mkdirSync(parent);
    const dir = join(parent, 'tls');
    const first = await ensureTlsCredentials(dir, { serverAddress: '10.77.0.2', validityDays: 1, timeoutMs: 20_000 });
    const fp = cert(dir, TLS_FILES.caCert).fingerprint256;
    const second = await ensureTlsCredentials(dir, { serverAddress: '10.77.0.2', timeoutMs: 20_000 });
    expect(second.created).toBe(true);
    expect(Date.parse(second.validUntil)).toBeGreaterThan(Date.parse(first.validUntil));
    expect(cert(dir, TLS_FILES.caCert).fingerprint256).not.toBe(fp);
    expect(readdirSync(parent)).toEqual(['tls']);
  }, 30_000);

  it('refuses what it cannot use, naming the fix', async () => {
    await expect(ensureTlsCredentials(join(root, 'no-such-lab', 'tls'), { serverAddress: '10.77.0.2' })).rejects.toThrow(
      /no-such-lab does not exist; bring the lab up first/,
    );
    const partial = join(root, 'partial');
    mkdirSync(partial);
    writeFileSync(join(partial, TLS_FILES.caCert), 'x');
    await expect(ensureTlsCredentials(partial, { serverAddress: '10.77.0.2' })).rejects.toThrow(/lacks server-cert\.pem.*remove .*partial and run again/);
    const other = join(root, 'other');
    mkdirSync(other);
    const dir = join(other, 'tls');
    await ensureTlsCredentials(dir, { serverAddress: '10.77.0.2', timeoutMs: 20_000 });
    await expect(ensureTlsCredentials(dir, { serverAddress: '10.88.0.2' })).rejects.toThrow(/not for 10\.88\.0\.2 \(it is for IP Address:10\.77\.0\.2\); remove/);
  }, 30_000);
});
