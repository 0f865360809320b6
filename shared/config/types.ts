/**
 * The validated, defaulted configuration. Field names follow seed 002's
 * inventory and ../shared/design/contract.md. The JSON schema in
 * shared/schema/config.schema.json is the single source of validation;
 * shared/config/defaults.ts is the single source of defaults.
 */
export type NetworkMode = 'host' | 'ipvlan' | 'macvlan';
export type Runtime = 'podman' | 'none';

export interface Ulimit {
  soft: number;
  hard: number;
}

/** One hepto node hosted on this machine. */
export interface NodeConfig {
  /** Node name, a DNS label, unique in the cluster. */
  node: string;
  /** Host interface (for ipvlan/macvlan); null lets the agent pick the default route's. */
  iface: string | null;
  /** Node addresses with prefix length, e.g. ["2001:db8::1/64", "192.0.2.10/24"]. */
  ip: string[];
  /** Gateways, e.g. ["2001:db8::ffff", "192.0.2.254"]. */
  gw: string[];
  network_mode: NetworkMode;
}

export interface HeptoConfig extends NodeConfig {
  master: string;
  /** host, host:port or [v6]:port of stable agents; [] starts a new cluster. */
  anchors: string[];
  overlay_key: string;
  /**
   * The k3s server token (k3s's docs: whoever holds it is in effect cluster
   * admin). Required on the machine that hosts the master; elsewhere null,
   * or kept by an older config (status then says how to remove it).
   */
  cluster_key: string | null;
  /**
   * The k3s agent token (issue 13): the master's k3s server gets it through
   * `--agent-token-file`, and the other machines join k3s with it, pinned to
   * the server's CA (`K10<hash>::node:<agent_key>`), so their owners are not
   * Kubernetes admins. Same form as the other keys; null when not set.
   */
  agent_key: string | null;
  mtu: number;
  storage_base: string;
  overlay_net: string;
  /** k3s pod range (server `--cluster-cidr`): same family as overlay_net, overlapping no other range. */
  cluster_cidr: string;
  /** k3s service range (server `--service-cidr`): same family as overlay_net, overlapping no other range. */
  service_cidr: string;
  /** http(s) base URL of `wesher-<arch>` and `wesher.sha256sums`, without a trailing slash. */
  wesher_download: string;
  /** Pinned sha256 of this machine's `wesher-<arch>`, 64 lowercase hex digits; null trusts the sums file. */
  wesher_sha256: string | null;
  gossip_port: number;
  gossip_listen: string[];
  /** host:port (or bare host, gossip_port implied) that peers should dial; [] = detected. */
  advertise: string[];
  runtime: Runtime;
  control_socket: string;
  podman_socket: string;
  images: { wesher: string; k3s: string };
  /** ulimits given to every container (the sandbox may refuse Podman's defaults). */
  ulimits: Record<string, Ulimit>;
  /**
   * Extra nodes hosted by the same agent (issue 3). The top-level node is always
   * hosted; each entry here adds one more, supervised on its own.
   */
  nodes: NodeConfig[];
  /**
   * The cluster admin's public key, `ed25519:<base64 of 32 bytes>` as
   * `hepto-agent admin init` / `admin pub` print it; null when the cluster has
   * no admin key yet (status then lists a problem). With it, names are pinned
   * to admitted identities (docs/trust.md).
   */
  admin_pub: string | null;
  /**
   * An invitation token (`hepto-agent invite`), until the agent has enrolled
   * with it: the agent then writes the keys, admin_pub, master and anchors it
   * received into this file and drops the field. While it is set and
   * overlay_key is not, `overlay_key` and `master` are empty strings: the
   * config is waiting to enrol (`pendingEnrolment`). A secret; never logged.
   */
  invite: string | null;
  log_level: 'debug' | 'info' | 'warn' | 'error';
  /**
   * Where the Prometheus endpoint listens (issue 15, docs/metrics.md):
   * `host:port` with an IP address (`[v6]:port` for IPv6), or a bare IP (port
   * 9947); "" turns the endpoint off.
   */
  metrics_listen: string;
}
