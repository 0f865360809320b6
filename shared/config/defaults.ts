/**
 * The single source of configuration defaults. Every default says why it was
 * chosen. `master`, `overlay_key` and `cluster_key` have none: a cluster cannot
 * guess them (`cluster_key` is required only on the master's machine, and is
 * null elsewhere when left out; validate.ts says which machine needs which key).
 */
import { hostname as osHostname } from 'os';
import type { HeptoConfig, NodeConfig } from './types';
import { DEFAULT_IMAGES, WESHER_VERSION } from './images';
import { parseCidr } from './address';

/** The overlay_net default (why: at its entry in `defaults`); the ranges below depend on it. */
const DEFAULT_OVERLAY_NET = '10.0.0.0/8';

/**
 * k3s pod (cluster_cidr) and service (service_cidr) ranges, one pair per IP
 * family, because k3s node IPs are overlay addresses and k3s needs its ranges
 * in their family. k3s's own 10.42.0.0/16 and 10.43.0.0/16 lie inside the
 * default overlay 10.0.0.0/8, where wesher would route them into the mesh.
 */
export const KUBE_CIDR_DEFAULTS = Object.freeze({
  4: Object.freeze({
    // Outside 10/8 and the 192.168/16 of home routers; above Docker's bridge
    // 172.17/16 and the first networks Docker hands out upwards from 172.18.
    // A /16 holds 256 of the /24s k3s gives each node.
    cluster_cidr: '172.28.0.0/16',
    // The next /16, for the same reasons: 65,536 service IPs, well inside
    // kube-apiserver's limit of 2^20 (a /12).
    service_cidr: '172.29.0.0/16',
  }),
  6: Object.freeze({
    // A ULA range (fd42 then "Hepto" in hex), routed nowhere on the internet;
    // a /56 holds 256 of the /64s k3s gives each node.
    cluster_cidr: 'fd42:4865:7074:6f00::/56',
    // The same ULA /48, just after the pod /56 (fd42:4865:7074:6f43:: would lie
    // inside it); a /112 is 65,536 addresses, and kube-apiserver refuses an
    // IPv6 service range wider than /108 (2^20 addresses).
    service_cidr: 'fd42:4865:7074:7000::/112',
  }),
});

/**
 * The pod and service ranges for an overlay network: its family's pair. An
 * overlay_net that does not parse gets the IPv4 pair; validation reports it.
 * validate.ts applies this when the config leaves the fields out, so the
 * default always follows the configured overlay_net.
 */
export function kubeCidrDefaults(overlayNet: string): Pick<HeptoConfig, 'cluster_cidr' | 'service_cidr'> {
  return { ...KUBE_CIDR_DEFAULTS[parseCidr(overlayNet)?.family === 6 ? 6 : 4] };
}

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
  // wesher's own default, so existing wesher meshes keep their addresses.
  overlay_net: DEFAULT_OVERLAY_NET,
  // The pair for the default overlay_net; a config that sets overlay_net gets
  // kubeCidrDefaults(its overlay_net) instead (see KUBE_CIDR_DEFAULTS for why).
  ...kubeCidrDefaults(DEFAULT_OVERLAY_NET),
  // The upstream release assets of the wesher version images.wesher names;
  // GitHub serves them over HTTPS. A mirror holding the same two files can replace it.
  wesher_download: `https://github.com/costela/wesher/releases/download/${WESHER_VERSION}`,
  // No pin: the binary is checked against the wesher.sha256sums published next
  // to it. Pinning also guards against a replaced release, at the cost of
  // editing the config on every upgrade.
  wesher_sha256: null,
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
  // Pinned versions owned by the runtime work; the agent builds the wesher one itself.
  images: { ...DEFAULT_IMAGES },
  // Podman's own ulimits are kept unless the operator sets some.
  ulimits: {},
  // Most machines host exactly one node, the top-level one.
  nodes: [],
  // No admin key until someone runs `hepto-agent admin init` (the installer does on a
  // new cluster's first machine); a cluster cannot guess one, and status says it is missing.
  admin_pub: null,
  // No k3s agent token until the master's owner makes one (hepto-agent keygen); the
  // other machines then need it, or the server token cluster_key, to join k3s, and
  // status says which (issue 13, docs/trust.md).
  agent_key: null,
  // Only a machine installed with HEPTO_INVITE has one, until it enrols.
  invite: null,
  // info is what an operator reads in journald; debug is opt-in.
  log_level: 'info',
  // Loopback only (contract "Metrics on loopback by default"): a local Prometheus or node
  // exporter's textfile scrapes it, and nothing is exposed to the network unless the operator
  // chooses an address. 9947 echoes gossip's 7947 (docs/metrics.md); Prometheus' exporter
  // port range 9100-9999 is fully handed out, so a clash with another exporter is possible.
  metrics_listen: '127.0.0.1:9947',
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
