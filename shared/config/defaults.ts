/**
 * The single source of configuration defaults. Every default says why it was
 * chosen. `master`, `overlay_key` and `cluster_key` have none: a cluster cannot
 * guess them.
 */
import { hostname as osHostname } from 'os';
import type { HeptoConfig, NodeConfig } from './types';
import { DEFAULT_IMAGES } from './images';

export type DefaultedField = Exclude<keyof HeptoConfig, 'master' | 'overlay_key' | 'cluster_key' | 'node'>;

export const defaults: Readonly<Pick<HeptoConfig, DefaultedField>> = Object.freeze({
  // No anchors means this node starts a new cluster (contract).
  anchors: [],
  // null lets the agent use the default route's interface; only ipvlan/macvlan need one named.
  iface: null,
  // No addresses of its own: in host mode the node uses the machine's.
  ip: [],
  // No gateways of its own: in host mode the node uses the machine's routes.
  gw: [],
  // host is the one mode that works on every machine without extra addresses (contract).
  network_mode: 'host',
  // Seed 002 assumes every pair of nodes has a path MTU above 1400.
  mtu: 1400,
  // Seed 002 keeps node data under /srv/<node>/.
  storage_base: '/srv',
  // wesher's own default overlay network, so existing wesher meshes keep their addresses.
  overlay_net: '10.0.0.0/8',
  // Next to wesher's 7946, easy to remember and to open in one firewall rule (contract).
  gossip_port: 7947,
  // All addresses, IPv6 and (dual stack) IPv4, because most members reach us over IPv6.
  gossip_listen: ['::'],
  // Empty: detected from the interfaces at start.
  advertise: [],
  // A full node runs wesher and k3s under Podman; `none` is opt-in for dedicated anchors.
  runtime: 'podman',
  // Under /run/hepto, root only, so only root can ask the agent for status (contract).
  control_socket: '/run/hepto/agent.sock',
  // Where the rootful podman.socket unit listens on Debian.
  podman_socket: '/run/podman/podman.sock',
  // Pinned, documented versions owned by the runtime work.
  images: { ...DEFAULT_IMAGES },
  // Podman's own ulimits are kept unless the operator sets some.
  ulimits: {},
  // Most machines host exactly one node, the top-level one.
  nodes: [],
  // info is what an operator reads in journald; debug is opt-in.
  log_level: 'info',
});

/**
 * The default node name: the machine's short host name, lowercased, because
 * node names are DNS labels and most host names already are one.
 */
export function defaultNodeName(hostname: string = osHostname()): string {
  return hostname.split('.')[0].toLowerCase();
}

/**
 * Defaults of an extra hosted node (`nodes[]`): same machine, so the same
 * interface, mode and gateways as the top-level node; addresses are its own.
 */
export function nodeDefaults(top: NodeConfig): Omit<NodeConfig, 'node'> {
  return { iface: top.iface, ip: [], gw: [...top.gw], network_mode: top.network_mode };
}
