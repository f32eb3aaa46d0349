// The lab's NFS server has two exports: the disks of the VM runs (src and dst only, NFSv3+4) and,
// for container hosts, the checkpoint export (guests, NFSv4 only, Pseudo /ckpt). A guest must
// never be a client of the disks' export, and the checkpoint export is there only when asked.
import { join } from 'node:path';
import { CKPT_EXPORT_ID, CKPT_PSEUDO_PATH, EXPORT_ID, ganeshaConfig, PSEUDO_PATH } from '../../../src/lab/ganesha.js';
import { labNfsParams } from '../../../src/lab/nfs.js';
import { guestIp, labPaths, parseLabSpec, roleIp } from '../../../src/lab/spec.js';

/** The EXPORT blocks of a config, each as its text (the blocks nest one level: FSAL, CLIENT). */
function exportBlocks(conf: string): string[] {
  const blocks: string[] = [];
  for (let at = conf.indexOf('EXPORT {'); at >= 0; at = conf.indexOf('EXPORT {', at + 1)) {
    let depth = 0;
    let end = at;
    for (let i = conf.indexOf('{', at); i < conf.length; i++) {
      if (conf[i] === '{') depth++;
      if (conf[i] === '}' && --depth === 0) {
        end = i + 1;
        break;
      }
    }
    blocks.push(conf.slice(at, end));
  }
  return blocks;
}

const setting = (block: string, key: string) => new RegExp(`^\\s*${key} = ([^;]*);`, 'm').exec(block)?.[1];
const clientsOf = (block: string) => /CLIENT \{ Clients = ([^;]*);/.exec(block)?.[1];

describe('the lab\'s ganesha exports', () => {
  const spec = parseLabSpec({ prefix: 'mlab' });
  const paths = labPaths(spec);
  const server = roleIp(spec, 'src');
  const params = labNfsParams(spec, paths, server);
  // As startNfsServer writes it.
  const withCkpt = ganeshaConfig({
    serverIp: params.serverIp,
    clients: params.diskClients.join(', '),
    exportDir: params.exportDir,
    recoveryRoot: join(params.nfsDir, 'recov'),
    checkpoints: { dir: params.ckptDir, clients: params.subnet },
  });

  it('gives the disks\' export to src and dst only: no guest, no client host', () => {
    expect(params.diskClients).toEqual([roleIp(spec, 'src'), roleIp(spec, 'dst')]);
    expect(params.diskClients).not.toContain(roleIp(spec, 'client'));
    expect(params.diskClients).not.toContain(guestIp(spec, 0));
    const disks = exportBlocks(withCkpt).find((b) => setting(b, 'Export_Id') === String(EXPORT_ID))!;
    expect(clientsOf(disks)).toBe('10.77.0.1, 10.77.0.2');
    expect(setting(disks, 'Path')).toBe(paths.exportDir);
    expect(setting(disks, 'Pseudo')).toBe(PSEUDO_PATH);
  });

  it('adds the checkpoint export when asked: id 78, Pseudo /ckpt, NFSv4 only, its own directory, the lab subnet', () => {
    const blocks = exportBlocks(withCkpt);
    expect(blocks).toHaveLength(2);
    const ckpt = blocks.find((b) => setting(b, 'Export_Id') === String(CKPT_EXPORT_ID))!;
    expect(CKPT_EXPORT_ID).toBe(78);
    expect(CKPT_PSEUDO_PATH).toBe('/ckpt');
    expect(setting(ckpt, 'Pseudo')).toBe('/ckpt');
    // NFSv4 alone: guests reach port 2049 only (the firewall), so no mountd path is offered.
    expect(setting(ckpt, 'Protocols')).toBe('4');
    expect(setting(ckpt, 'Path')).toBe(paths.ckptDir);
    expect(paths.ckptDir).not.toBe(paths.exportDir);
    expect(clientsOf(ckpt)).toBe(spec.subnet);
    expect(setting(ckpt, 'Squash')).toBe('No_Root_Squash');
    expect(setting(ckpt, 'Access_Type')).toBe('RW');
    expect((withCkpt.match(/\{/g) ?? []).length).toBe((withCkpt.match(/\}/g) ?? []).length);
  });

  it('has no checkpoint export when none is asked for', () => {
    const plain = ganeshaConfig({ serverIp: server, clients: params.diskClients.join(', '), exportDir: paths.exportDir, recoveryRoot: '/run/miglab/mlab/nfs/recov' });
    expect(exportBlocks(plain)).toHaveLength(1);
    expect(plain).not.toContain(`Export_Id = ${CKPT_EXPORT_ID}`);
    expect(plain).not.toContain('/ckpt');
    expect(plain).not.toContain(paths.ckptDir);
  });
});
