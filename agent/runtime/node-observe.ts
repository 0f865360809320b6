/**
 * What the supervisor reads about each hosted node beside Podman's view:
 * the overlay link in its running wesher's namespace, when wesher last
 * wrote its state file (a membership event, docs/upstream.md W12),
 * whether a hosted master's k3s datastore still opens with cluster_key,
 * which agent token its server may get, and the hash of its CA.
 */
import fs from 'fs';
import type { HeptoConfig } from '../../shared/config/types';
import { errorMessage, isHeptoError } from '../../shared/errors';
import { hostedNodes, type DesiredState } from './desired';
import { checkServerTokenFile, planAgentTokenFile, readServerCaHash, type AgentTokenPlan, type AgentTokenRotation } from './k3s-token';
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
    // Validation requires cluster_key where the master is hosted.
    if (n.node !== config.master || config.cluster_key === null) continue;
    const c = await checkServerTokenFile(k3sDataDir(config, n.node), n.node, config.cluster_key);
    if (!c.ok) out[n.node] = c.problem;
  }
  return out;
}

/** Per hosted master node, the agent token its k3s server gets, as its datastore allows (k3s-token.ts). */
export async function serverAgentTokens(config: HeptoConfig, rotation: AgentTokenRotation | null = null): Promise<Record<string, AgentTokenPlan>> {
  const out: Record<string, AgentTokenPlan> = {};
  for (const n of hostedNodes(config)) {
    if (n.node !== config.master) continue;
    out[n.node] = await planAgentTokenFile(k3sDataDir(config, n.node), n.node, config.agent_key, undefined, rotation);
  }
  return out;
}

/** The sha256 of the hosted master's k3s server CA, or null (not hosted here, or no CA yet). */
export async function serverCaHash(config: HeptoConfig): Promise<string | null> {
  if (!hostedNodes(config).some((n) => n.node === config.master)) return null;
  return readServerCaHash(k3sDataDir(config, config.master));
}
