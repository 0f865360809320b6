/**
 * What the supervisor reads about each hosted node beside Podman's view:
 * the overlay link in its running wesher's namespace, when wesher last
 * wrote its state file (a membership event, docs/upstream.md W12), and
 * whether a hosted master's k3s datastore still opens with cluster_key.
 */
import fs from 'fs';
import type { HeptoConfig } from '../../shared/config/types';
import { errorMessage, isHeptoError } from '../../shared/errors';
import { hostedNodes, type DesiredState } from './desired';
import { checkServerTokenFile } from './k3s-token';
import type { LinkState, OverlayLinks } from './overlay-link';
import type { History, Observed, ObservedContainer } from './planner';
import { k3sDataDir, wesherStateFile } from './specs';

/** Reads each running wesher's link (a read failure goes to history.links for status) and its state file's time. */
export async function observeLinks(
  links: OverlayLinks,
  config: HeptoConfig,
  desired: DesiredState,
  byName: Map<string, ObservedContainer>,
  history: History,
): Promise<Required<Pick<Observed, 'links' | 'wesherStateAt'>>> {
  const out: Record<string, LinkState> = {};
  const wesherStateAt: Record<string, number | null> = {};
  for (const l of desired.links) {
    const o = byName.get(l.container);
    if (!o || o.node === null || o.state !== 'running' || !o.pid) continue;
    try {
      out[l.node] = await links.inspect(o.pid, l.ifname);
    } catch (e) {
      const h = (history.links ??= {});
      h[l.node] = { failures: h[l.node]?.failures ?? 0, nextAt: h[l.node]?.nextAt ?? 0, lastError: isHeptoError(e) ? e.describe() : errorMessage(e) };
    }
    wesherStateAt[l.node] = await fs.promises
      .stat(wesherStateFile(config, l.node))
      .then((st) => st.mtimeMs)
      .catch(() => null);
  }
  return { links: out, wesherStateAt };
}

/** Per hosted master node, why its k3s server must not start with the current cluster_key (k3s-token.ts). */
export async function serverTokenProblems(config: HeptoConfig): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of hostedNodes(config)) {
    if (n.node !== config.master) continue;
    const c = await checkServerTokenFile(k3sDataDir(config, n.node), n.node, config.cluster_key);
    if (!c.ok) out[n.node] = c.problem;
  }
  return out;
}
