// The lab's TLS certificates for an encrypted migration stream: a CA, a server certificate for
// the destination host and a client certificate for the source, made with openssl into the
// directory layout QEMU's tls-creds-x509 object reads (`-object tls-creds-x509,dir=...`). A lab
// makes one set, in `<labDir>/tls`, and every run on that lab shares it; labDown removes it with
// the lab directory. Sits in lab/ because the set belongs to a lab, below machine/ (which only
// passes the directory to QEMU) and migrate/ (which names the credentials to the monitors).
import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isIP } from 'node:net';
import { describeError, MiglabError, MissingDependencyError, UsageError } from '../errors.js';
import type { Host } from '../host/host.js';
import { THIS_MACHINE } from './machine.js';
import type { ArgGroup, ExplainedCommand } from '../util/explained-command.js';

/** The file names QEMU's tls-creds-x509 looks for in its `dir` (docs/system/tls.rst). */
export const TLS_FILES = {
  caCert: 'ca-cert.pem',
  serverCert: 'server-cert.pem',
  serverKey: 'server-key.pem',
  clientCert: 'client-cert.pem',
  clientKey: 'client-key.pem',
} as const;

/** The CA's key: used while the set is made, then deleted (QEMU needs only the CA certificate). */
const CA_KEY = 'ca-key.pem';

export const DEFAULT_TLS_VALIDITY_DAYS = 30;
/** A set that would expire within this long is made anew rather than handed to a run. */
const RENEW_BEFORE_MS = 24 * 3600 * 1000;
const DEFAULT_TIMEOUT_MS = 30_000;

export interface TlsCertificateSpec {
  /** What the source connects to and names as `tls-hostname`: the destination's address (IP SAN) or DNS name. */
  readonly serverAddress: string;
  /** Goes into the subjects, so a certificate says which lab made it (e.g. the lab prefix). */
  readonly label: string;
  readonly validityDays: number;
}

export interface TlsCredentialOptions {
  readonly serverAddress: string;
  readonly label?: string;
  readonly validityDays?: number;
  /** Deadline for making a set (openssl takes tens of milliseconds here). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Runs openssl; it must see `dir` where this process does (default: this machine). */
  readonly host?: Host;
}

export interface TlsCredentialSet {
  /** The directory to give QEMU's tls-creds-x509 (`dir=`), holding the TLS_FILES. */
  readonly dir: string;
  readonly serverAddress: string;
  /** When the certificates stop being valid (ISO 8601; the earliest of the three). */
  readonly validUntil: string;
  /** Whether this call made the set (false: an existing one was returned). */
  readonly created: boolean;
}

const SUBJECT_RE = /^[A-Za-z0-9 ._-]{1,40}$/;

/**
 * The openssl commands that make a set in `dir`, each argument with its reason. Pure: the
 * directory is the caller's private temporary one. EC P-256 keys: openssl makes them in
 * milliseconds (RSA-2048 takes a noticeable fraction of a second each), and GnuTLS, which QEMU
 * uses, has accepted them for many years.
 */
export function tlsCertificateCommands(dir: string, spec: TlsCertificateSpec): ExplainedCommand[] {
  if (!SUBJECT_RE.test(spec.label)) throw new UsageError(`invalid TLS certificate label "${spec.label}"`, 'use up to 40 letters, digits, spaces, dots, dashes or underscores');
  checkServerAddress(spec.serverAddress);
  const san = isIP(spec.serverAddress) ? `IP:${spec.serverAddress}` : `DNS:${spec.serverAddress}`;
  const file = (name: string) => join(dir, name);

  const request = (add: (why: string, ...args: string[]) => void, keyOut: string, certOut: string) => {
    add('openssl\'s certificate request tool; with -x509 or -CA it writes a signed certificate, not a request', 'openssl', 'req');
    add('read no openssl.cnf: the system file (Debian\'s adds v3_ca/usr_cert extensions) must not change what is made; every extension is given below', '-config', '/dev/null');
    add('a new EC key on the P-256 curve, made together with the certificate', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256');
    add('the key is not encrypted: QEMU reads it at start without a passphrase (the directory is root-only instead)', '-noenc');
    add('where the private key goes', '-keyout', keyOut);
    add('where the certificate goes', '-out', certOut);
    add(`valid for ${spec.validityDays} days from now: a lab is short-lived, and an expired set is made anew`, '-days', String(spec.validityDays));
  };
  const build = (fill: (add: (why: string, ...args: string[]) => void) => void): ExplainedCommand => {
    const g: ArgGroup[] = [];
    fill((why, ...args) => g.push({ args, why }));
    return { argv: g.flatMap((x) => x.args), explained: g };
  };
  const leaf = (add: (why: string, ...args: string[]) => void) => {
    add('signed by the lab\'s CA (openssl 3 signs in one step: no request file, random serial)', '-CA', file(TLS_FILES.caCert), '-CAkey', file(CA_KEY));
    add('not a CA: QEMU refuses a peer certificate that claims CA:TRUE', '-addext', 'basicConstraints=critical,CA:FALSE');
    add('QEMU requires both usages when keyUsage is critical (crypto/tlscredsx509.c)', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment');
  };

  return [
    build((add) => {
      request(add, file(CA_KEY), file(TLS_FILES.caCert));
      add('self-signed: the CA certificate is the trust anchor both sides load as ca-cert.pem', '-x509');
      add('the CA\'s name', '-subj', `/CN=miglab ${spec.label} CA`);
      add('a CA: QEMU refuses a ca-cert.pem without CA:TRUE', '-addext', 'basicConstraints=critical,CA:TRUE');
      add('allowed to sign certificates (QEMU checks keyCertSign) and revocation lists', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    }),
    build((add) => {
      request(add, file(TLS_FILES.serverKey), file(TLS_FILES.serverCert));
      add('the destination\'s name', '-subj', `/CN=${spec.serverAddress}`);
      leaf(add);
      add('a TLS server certificate: QEMU checks the purpose of the destination\'s certificate', '-addext', 'extendedKeyUsage=serverAuth');
      add(
        `the destination's address as the source connects to it: QEMU on the source checks the certificate against tls-hostname, and an address matches only an ${san.split(':')[0]} subject alternative name`,
        '-addext',
        `subjectAltName=${san}`,
      );
    }),
    build((add) => {
      request(add, file(TLS_FILES.clientKey), file(TLS_FILES.clientCert));
      add('the source\'s name (the destination checks only that the CA signed it)', '-subj', `/CN=miglab ${spec.label} source`);
      leaf(add);
      add('a TLS client certificate: the destination, with verify-peer=on, demands one for this purpose', '-addext', 'extendedKeyUsage=clientAuth');
    }),
  ];
}

function checkServerAddress(address: string): void {
  if (!isIP(address) && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(address)) {
    throw new UsageError(`invalid TLS server address "${address}"`, 'give the destination\'s IP address or DNS name');
  }
}

/**
 * The lab's TLS set in `dir` (QEMU's tls-creds-x509 layout), made if it is not there. The set is
 * made in a private temporary directory beside `dir` and renamed into place in one step, so a
 * concurrent or interrupted run never sees half a set; whoever renames first wins and the others
 * use its set. A second call returns the existing set after reading its certificates. The parent
 * of `dir` must exist (for a lab: its directory, so a lab that is down is not half re-created).
 */
export async function ensureTlsCredentials(dir: string, opts: TlsCredentialOptions): Promise<TlsCredentialSet> {
  checkServerAddress(opts.serverAddress);
  const existing = await readSet(dir, opts.serverAddress);
  if (existing && Date.parse(existing.validUntil) - Date.now() > RENEW_BEFORE_MS) return existing;

  const parent = dirname(dir);
  if (!(await stat(parent).then((s) => s.isDirectory(), () => false))) {
    throw new MiglabError('LAB_STATE', `cannot make TLS certificates in ${dir}: ${parent} does not exist; bring the lab up first (miglab lab up)`);
  }
  const host = opts.host ?? THIS_MACHINE.host;
  if (!(await host.which('openssl'))) throw new MissingDependencyError('openssl (to make the lab\'s TLS certificates)', 'apt-get install -y openssl');

  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  // mkdtemp makes it 0700: the keys are never readable by others, not even before the chmod below.
  const tmp = await mkdtemp(join(parent, `.${basename(dir)}.tmp-`));
  let old: string | undefined;
  try {
    const spec: TlsCertificateSpec = { serverAddress: opts.serverAddress, label: opts.label ?? 'lab', validityDays: opts.validityDays ?? DEFAULT_TLS_VALIDITY_DAYS };
    for (const cmd of tlsCertificateCommands(tmp, spec)) {
      const timeoutMs = deadline - Date.now();
      if (timeoutMs <= 0) throw new MiglabError('TIMEOUT', `making the TLS certificates in ${dir} took longer than ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`);
      await host.run(cmd.argv, { timeoutMs, signal: opts.signal }).catch((err: unknown) => {
        throw new MiglabError('COMMAND_FAILED', `could not make the TLS certificates for ${dir}: ${describeError(err)}`, { cause: err });
      });
    }
    // Nothing else may sign certificates the lab's QEMUs trust.
    await rm(join(tmp, CA_KEY));
    for (const name of [TLS_FILES.serverKey, TLS_FILES.clientKey]) await chmod(join(tmp, name), 0o600);
    for (const name of [TLS_FILES.caCert, TLS_FILES.serverCert, TLS_FILES.clientCert]) await chmod(join(tmp, name), 0o644);
    await chmod(tmp, 0o700);

    if (existing) {
      // An expiring set is moved aside first (rename cannot replace a non-empty directory); a
      // concurrent renewer that moved it already makes this fail with ENOENT, which is fine.
      old = `${tmp}.old`;
      await rename(dir, old).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        old = undefined;
      });
    }
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another run renamed its set into place first: use that one.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      const theirs = await readSet(dir, opts.serverAddress);
      if (!theirs) throw new MiglabError('INTERNAL', `${dir} appeared while making TLS certificates but is incomplete; remove it and run again`, { cause: err });
      return theirs;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
    if (old) await rm(old, { recursive: true, force: true });
  }
  const made = await readSet(dir, opts.serverAddress);
  if (!made) throw new MiglabError('INTERNAL', `the TLS certificates just made in ${dir} are gone; run again`);
  return { ...made, created: true };
}

/**
 * The set in `dir`, or undefined when there is none. A directory that is there but incomplete, or
 * made for another address, is an error that names the fix: it was not made by this module.
 */
async function readSet(dir: string, serverAddress: string): Promise<TlsCredentialSet | undefined> {
  if (!(await stat(dir).then(() => true, () => false))) return undefined;
  const texts = new Map<string, string>();
  for (const name of Object.values(TLS_FILES)) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => undefined);
    if (text === undefined) throw new MiglabError('LAB_STATE', `${dir} lacks ${name}, so it is not a complete TLS set; remove ${dir} and run again`);
    texts.set(name, text);
  }
  const certs = new Map<string, X509Certificate>();
  for (const name of [TLS_FILES.caCert, TLS_FILES.serverCert, TLS_FILES.clientCert]) {
    try {
      certs.set(name, new X509Certificate(texts.get(name)!));
    } catch (err) {
      throw new MiglabError('LAB_STATE', `${name} in ${dir} is not a certificate (${describeError(err)}); remove ${dir} and run again`, { cause: err });
    }
  }
  const server = certs.get(TLS_FILES.serverCert)!;
  const matches = isIP(serverAddress) ? server.checkIP(serverAddress) : server.checkHost(serverAddress);
  if (!matches) {
    throw new MiglabError('LAB_STATE', `the TLS server certificate in ${dir} is not for ${serverAddress} (it is for ${server.subjectAltName ?? server.subject}); remove ${dir} and run again`);
  }
  const validUntilMs = Math.min(...[...certs.values()].map((c) => Date.parse(c.validTo)));
  return { dir, serverAddress, validUntil: new Date(validUntilMs).toISOString(), created: false };
}
