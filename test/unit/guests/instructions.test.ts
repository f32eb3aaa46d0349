// What `miglab guests up` prints for a person: each command alone on its line, pasteable as it is,
// and the same lines the homework report and the README give.
import { describe, expect, it } from '@jest/globals';
import { byHandSteps, embeddedPlace, formatByHand, hmpMigrateLines, qmpMigrateLines } from '../../../src/guests/instructions.js';
import { parseHostsText, sshLoginArgv } from '../../../src/hosts/file.js';

const place = { ...embeddedPlace('mlab-src', 'mlab'), hmpPort: 4445, uri: 'tcp:10.77.0.2:4444', personQmpSocket: '/run/miglab/mlab/sock/g0-src-Ab12/hand.qmp' };

describe('the by-hand instructions', () => {
  it('open the source HMP inside its namespace and migrate to the waiting destination', () => {
    const s = byHandSteps(place);
    expect(s.hmp.open).toEqual(['ip', 'netns', 'exec', 'mlab-src', 'telnet', '127.0.0.1', '4445']);
    expect(s.hmp.type).toEqual(['migrate -d tcp:10.77.0.2:4444', 'info migrate']);
    // A unix socket is reached from any namespace: no `ip netns exec` in front of socat.
    expect(s.qmp?.open).toEqual(['socat', '-', 'UNIX-CONNECT:/run/miglab/mlab/sock/g0-src-Ab12/hand.qmp']);
    expect(s.end).toEqual(['miglab', 'guests', 'down', '--prefix', 'mlab']);
  });

  it('give QMP lines that are each one JSON object, capabilities first', () => {
    const lines = qmpMigrateLines('tcp:10.77.0.2:4444');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { execute: 'qmp_capabilities' },
      { execute: 'migrate', arguments: { uri: 'tcp:10.77.0.2:4444' } },
      { execute: 'query-migrate' },
    ]);
  });

  it('print every command alone on its line, with nothing around it', () => {
    const text = formatByHand(place, 10 * 60_000).split('\n');
    for (const line of [
      'ip netns exec mlab-src telnet 127.0.0.1 4445',
      ...hmpMigrateLines(place.uri),
      'socat - UNIX-CONNECT:/run/miglab/mlab/sock/g0-src-Ab12/hand.qmp',
      ...qmpMigrateLines(place.uri),
      'miglab guests down --prefix mlab',
    ]) {
      expect(text).toContain(line);
    }
    // The HMP commands come after the telnet line, in the order they are typed.
    const at = (l: string) => text.indexOf(l);
    expect(at('ip netns exec mlab-src telnet 127.0.0.1 4445')).toBeLessThan(at('migrate -d tcp:10.77.0.2:4444'));
    expect(at('migrate -d tcp:10.77.0.2:4444')).toBeLessThan(at('info migrate'));
    expect(text.join('\n')).toContain('10 min');
  });

  it('quote a socket path a shell would split', () => {
    const s = byHandSteps({ ...place, personQmpSocket: '/tmp/a dir/hand.qmp' });
    expect(formatByHand({ ...place, personQmpSocket: '/tmp/a dir/hand.qmp' }, 60_000)).toContain("socat - 'UNIX-CONNECT:/tmp/a dir/hand.qmp'");
    expect(s.qmp?.open[2]).toBe('UNIX-CONNECT:/tmp/a dir/hand.qmp');
  });

  it('on hosts of a hosts file, log in to the source host as the file says, for HMP and QMP alike', () => {
    const hostsYaml = [
      'hosts:',
      '  src: { address: 192.168.122.11, port: 2222, user: root, key: /etc/hostname, proxy: [ssh, -W, "%h:22", jump] }',
      '  dst: { address: 192.168.122.12, key: /etc/hostname }',
      'guests: { addresses: 192.168.122.200-192.168.122.201 }',
      'storage: { nfs: "nfs://192.168.122.11/srv/miglab", server: src }',
    ].join('\n');
    const spec = parseHostsText(hostsYaml, 'hosts.yaml', { env: {}, homeDir: '/root' });
    const login = sshLoginArgv(spec.hosts.src);
    // OpenSSH would expand %h in ProxyCommand: the proxy's own % is doubled.
    expect(login).toEqual(['ssh', '-t', '-p', '2222', '-i', '/etc/hostname', '-o', "ProxyCommand=ssh -W %%h:22 jump", 'root@192.168.122.11']);
    expect(sshLoginArgv(spec.hosts.dst)).toEqual(['ssh', '-t', '-i', '/etc/hostname', 'root@192.168.122.12']);
    const onHosts = { atSource: login, onThisMachine: false, lab: ['--hosts', 'my hosts.yaml'], hmpPort: 4445, uri: 'tcp:192.168.122.12:4444', personQmpSocket: '/run/miglab-remote/habc/g0-src-Ab12/hand.qmp' };
    const s = byHandSteps(onHosts);
    expect(s.hmp.open).toEqual([...login, 'telnet', '127.0.0.1', '4445']);
    expect(s.qmp?.open).toEqual([...login, 'socat', '-', 'UNIX-CONNECT:/run/miglab-remote/habc/g0-src-Ab12/hand.qmp']);
    const text = formatByHand(onHosts, 60_000).split('\n');
    expect(text).toContain("ssh -t -p 2222 -i /etc/hostname -o 'ProxyCommand=ssh -W %%h:22 jump' root@192.168.122.11 telnet 127.0.0.1 4445");
    expect(text).toContain("miglab guests down --hosts 'my hosts.yaml'");
    expect(text.join('\n')).not.toMatch(/root terminal|ip netns/);
  });

  it('leave QMP out when there is no socket for a person', () => {
    const { personQmpSocket: _none, ...noQmp } = place;
    expect(byHandSteps(noQmp).qmp).toBeUndefined();
    expect(formatByHand(noQmp, 60_000)).not.toContain('socat');
  });
});
