/**
 * `hepto-agent kubeconfig` (issue 15): on the master's machine, prints the
 * cluster admin's kubeconfig, the one the k3s server writes for itself
 * (docs/upstream.md K36-K38), with its server set to an address that works
 * from this machine. Elsewhere, one line saying where to run it.
 *
 * The file is only read: it stays as k3s made it (0600, root's), and is
 * copied nowhere. A wider mode is reported, never changed.
 *
 * Which address works from this machine, by the master node's network_mode:
 * - host: wesher, and k3s in its network namespace, share the host's, and
 *   k3s's listener on 6443 takes every address, the loopback included, which
 *   its serving certificate names (K38). So the loopback k3s writes itself
 *   (of the service range's family) works: `https://127.0.0.1:6443`.
 * - macvlan, ipvlan: k3s lives in wesher's own namespace, on a child of the
 *   host's interface, and Linux does not let a host reach its own macvlan or
 *   ipvlan children through the parent. No address works from this machine:
 *   it says so in one line, with what works instead (kubectl inside the k3s
 *   container, which reads the same file; K20).
 */
import { promises as fs } from 'fs';
import { loadConfig } from '../../shared/config/load';
import type { HeptoConfig, NodeConfig } from '../../shared/config/types';
import { errnoCode } from '../../shared/errors';
import { printable } from '../../shared/printable';
import { containerName, K3S_API_PORT, k3sKubeconfigFile } from '../runtime/specs';
import { configPath, type Command } from './types';

/** The loopback k3s puts in its kubeconfig: that of the first service range's family (K37). */
export function kubeconfigServer(config: Pick<HeptoConfig, 'service_cidr'>): string {
  const first = config.service_cidr.split(',')[0] ?? '';
  return `https://${first.includes(':') ? '[::1]' : '127.0.0.1'}:${K3S_API_PORT}`;
}

/** `text` with the URL of every cluster's `server:` line set to `server`; null when it has none. */
export function withServer(text: string, server: string): string | null {
  let found = false;
  const out = text.replace(/^(\s*server:[ \t]*)(\S+)[ \t]*$/gm, (_, head: string) => {
    found = true;
    return head + server;
  });
  return found ? out : null;
}

export interface KubeconfigOutput {
  stdout: (text: string) => void;
  stderr: (line: string) => void;
}

/** The command's work, for a loaded config; resolves to the exit code. */
export async function printKubeconfig(config: HeptoConfig, out: KubeconfigOutput): Promise<number> {
  const fail = (line: string): number => {
    out.stderr(`hepto-agent: ${printable(line)}`);
    return 1;
  };
  const master = config.master;
  if (!master) return fail('this machine has not joined a cluster yet (its invitation is pending): no master to take a kubeconfig from');
  const hosted: NodeConfig[] = [config, ...config.nodes];
  const node = hosted.find((n) => n.node === master);
  if (!node) {
    return fail(
      `the kubeconfig is on the master's machine: run "hepto-agent kubeconfig" on the machine that hosts node ${master} (this one hosts ${hosted.map((n) => n.node).join(', ')})`,
    );
  }
  if (config.runtime === 'none') return fail(`this agent runs no containers (runtime none), so no k3s server for node ${master} runs here`);
  if (node.network_mode !== 'host') {
    return fail(
      `node ${master} uses network_mode ${node.network_mode}: this machine cannot reach its own k3s (Linux keeps a host from its ${node.network_mode} containers); ` +
        `run kubectl in the k3s container instead: podman exec -it ${containerName(master, 'k3s')} kubectl get nodes`,
    );
  }
  const file = k3sKubeconfigFile(config, master);
  let text: string;
  let mode: number;
  try {
    const h = await fs.open(file, 'r');
    try {
      mode = (await h.stat()).mode & 0o777;
      text = await h.readFile('utf8');
    } finally {
      await h.close();
    }
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT')
      return fail(`no kubeconfig at ${file} yet: the k3s server of node ${master} writes it when it starts (hepto-agent status shows its state)`);
    if (code === 'EACCES' || code === 'EPERM') return fail(`cannot read ${file} (permission denied): it is root's, mode 0600; run as root`);
    return fail(`cannot read ${file} (${code ?? 'I/O error'})`);
  }
  const result = withServer(text, kubeconfigServer(config));
  if (result === null)
    return fail(
      `${file} has no server line: it is not the kubeconfig k3s writes; restart the k3s container (${containerName(master, 'k3s')}) to have it written again`,
    );
  if ((mode & 0o077) !== 0) {
    out.stderr(`hepto-agent: warning: ${file} is mode 0${mode.toString(8)}, readable by others than root (k3s writes it 0600): chmod 600 ${file}`);
  }
  out.stdout(result.endsWith('\n') ? result.slice(0, -1) : result);
  return 0;
}

/** `hepto-agent kubeconfig [--config PATH]`. */
export const kubeconfig: Command = async (ctx) => {
  const { config } = await loadConfig(configPath(ctx));
  return printKubeconfig(config, { stdout: ctx.stdout, stderr: ctx.stderr });
};
