// The lab's SSH hosts (src/lab/ssh-hosts.ts) for one integration test file: an embedded lab
// with sshd in its namespaces, up before the file's tests and stopped after them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hostProcesses, SSH_HOSTS_PARENT, startSshHosts, type LabSshHost, type LabSshHosts } from '../../src/lab/ssh-hosts.js';
import { useTestLab, type LabFixture } from './lab-fixture.js';

export interface SshHostsFixture extends LabFixture {
  readonly ssh: LabSshHosts;
}

/**
 * An embedded lab (useTestLab) with SSH hosts in it, for one test file: up before its tests, and
 * after them the hosts stopped (with all they ran), the lab taken down and the keys removed. The
 * lab's NFS export lives in the fixture's directory: its default place, under /run/miglab, is
 * hidden from the hosts by their own /run.
 */
export function useSshHosts(prefix: string): SshHostsFixture {
  const dir = mkdtempSync(join(SSH_HOSTS_PARENT, `miglab-hosts-${prefix}-`));
  let ssh: LabSshHosts | undefined;
  // jest runs afterAll hooks in the order they are declared: the hosts stop before the lab goes
  // down (QEMU they ran holds taps on its bridges), and the directory goes after both.
  afterAll(() => ssh?.stop({ timeoutMs: 20_000 }), 30_000);
  const lab = useTestLab(prefix, { exportDir: join(dir, 'export') });
  beforeAll(async () => {
    ssh = await startSshHosts(lab.lab, dir, { timeoutMs: 30_000 });
  }, 40_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const get = (): LabSshHosts => {
    if (!ssh) throw new Error(`the SSH test hosts of lab ${prefix} are not up`);
    return ssh;
  };
  return {
    get lab() {
      return lab.lab;
    },
    get image() {
      return lab.image;
    },
    get toolPath() {
      return lab.toolPath;
    },
    get runDir() {
      return lab.runDir;
    },
    get ssh() {
      return get();
    },
  };
}

/** The QEMUs running on one of these hosts (its sessions' descendants), by pid. */
export function qemusOnHost(host: Pick<LabSshHost, 'mountNs'>): number[] {
  return hostProcesses(host)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim().startsWith('qemu-system');
      } catch {
        return false;
      }
    })
    .map((p) => p.pid);
}
