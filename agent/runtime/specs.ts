/**
 * Container specs as pure functions of the config and what gossip knows.
 * Each returns the Podman (Docker-compatible) create options plus the spec
 * hash label. Flags and variables used exist in the documented CLIs of the
 * pinned images (shared/config/images.ts):
 * - wesher is configured only through its WESHER_* variables (each documented
 *   flag has one), so the cluster key never shows in argv or `ps`.
 * - k3s gets `server` or `agent --server https://<master overlay IP>:6443`,
 *   `--node-name`, `--node-ip`, `--flannel-iface`, and the token through
 *   `--token-file` (a 0600 file, so it is not in `podman inspect`): the
 *   server token (cluster_key) on the master, on other nodes the agent token
 *   pinned to the server's CA (`K10<hash>::node:<agent_key>`) or, as before,
 *   cluster_key. The server may get `--agent-token-file` (another 0600 file);
 *   desired.ts decides what each gets (k3s-token.ts for the server's).
 *   Only the server gets `--cluster-cidr` and `--service-cidr`: they are
 *   server flags, and `k3s agent` refuses flags it does not know (agents
 *   learn the ranges from the server).
 */
import type Dockerode from 'dockerode';
import path from 'path';
import type { HeptoConfig, NodeConfig } from '../../shared/config/types';
import { byCodePoint } from '../../shared/order';
import type { NetworkPlan } from './network';
import { BASE_HASH_LABEL, HASH_LABEL, specHash } from './spec-hash';

/** The WireGuard interface wesher manages; flannel is pointed at it. */
export const WESHER_INTERFACE = 'wgoverlay';
/**
 * WireGuard's own overhead on the path: 40 (IPv6 header) + 8 (UDP) + 32
 * (WireGuard) bytes. The cluster `mtu` is the path MTU between nodes (seed
 * 002), so the wesher interface should get mtu - 80 (the IPv6 worst case).
 * wesher v0.2.6 has no MTU option (it sets 1420 itself): the agent sets the
 * interface MTU from outside, not through the spec.
 */
export const WIREGUARD_OVERHEAD = 80;
export const K3S_API_PORT = 6443;
/** Seconds wesher gets to leave the mesh when stopped: its leave waits up to 10 s. */
export const WESHER_STOP_TIMEOUT_S = 15;

export type Role = 'wesher' | 'k3s';

export interface ContainerSpec {
  name: string;
  node: string;
  role: Role;
  image: string;
  hash: string;
  /** Env names holding secrets (never logged, hashed in the label). */
  secretEnv: string[];
  /** wesher only: the join list baked into this spec. */
  join: string[];
  /** Host directories that must exist before the container is created. */
  dirs: string[];
  /** Secret files written (0600, atomically) before the container is created; hashed, never shown. */
  files: SecretFile[];
  /** The hash without the content of live files (BASE_HASH_LABEL); null when the spec has none. */
  baseHash: string | null;
  create: Dockerode.ContainerCreateOptions;
}

export interface SecretFile {
  path: string;
  content: string;
  /**
   * Read by the container only when it starts, and safe to change under a
   * running one: a change is written in place, and does not recreate the
   * container (its content is left out of the base hash). A k3s agent's
   * token: an agent that has joined keeps working on its kubelet client
   * certificate (docs/upstream.md K35), and takes the new token at its next start.
   */
  live?: boolean;
}

export function containerName(node: string, role: Role): string {
  return `hepto-${node}-${role}`;
}

export function nodeDir(config: HeptoConfig, node: string): string {
  return path.join(config.storage_base, node);
}

/** wesher's state file on the host (bound on /var/lib/wesher; docs/upstream.md W11). */
export function wesherStateFile(config: HeptoConfig, node: string): string {
  return path.join(nodeDir(config, node), 'wesher', 'state.json');
}

function ulimits(config: HeptoConfig): Array<{ Name: string; Soft: number; Hard: number }> {
  return Object.entries(config.ulimits)
    .sort(([a], [b]) => byCodePoint(a, b))
    .map(([name, u]) => ({ Name: name, Soft: u.soft, Hard: u.hard }));
}

function labels(node: string, role: Role, extra: Record<string, string> = {}): Record<string, string> {
  return { 'io.hepto.managed-by': 'hepto-agent', 'io.hepto.node': node, 'io.hepto.role': role, ...extra };
}

/** What stands for a live file's content in the base hash. */
const LIVE_CONTENT = 'hepto-live-file';

function seal(spec: Omit<ContainerSpec, 'hash' | 'files' | 'baseHash'> & { files?: SecretFile[] }): ContainerSpec {
  const files = spec.files ?? [];
  const hash = specHash(spec.create as never, spec.secretEnv, Object.fromEntries(files.map((f) => [f.path, f.content])));
  // The base hash is computed before either label is set, like the hash (both labels are left out of it).
  const baseHash = files.some((f) => f.live)
    ? specHash(spec.create as never, spec.secretEnv, Object.fromEntries(files.map((f) => [f.path, f.live ? LIVE_CONTENT : f.content])))
    : null;
  spec.create.Labels = { ...(spec.create.Labels ?? {}), [HASH_LABEL]: hash, ...(baseHash ? { [BASE_HASH_LABEL]: baseHash } : {}) };
  return { ...spec, files, hash, baseHash };
}

export interface WesherInput {
  config: HeptoConfig;
  node: NodeConfig;
  net: NetworkPlan;
  /** Hosts to join, anchors first (already de-duplicated). */
  join: string[];
  /**
   * The address wesher binds and announces (WESHER_BIND_ADDR); null lets
   * wesher pick, which finds public IPv4 addresses only.
   */
  bindAddr: string | null;
}

export function wesherSpec({ config, node, net, join, bindAddr }: WesherInput): ContainerSpec {
  const name = containerName(node.node, 'wesher');
  const stateDir = path.join(nodeDir(config, node.node), 'wesher');
  const env = [
    // base64 of the 32 bytes of the overlay key: wesher wants exactly 32 bytes.
    `WESHER_CLUSTER_KEY=${Buffer.from(config.overlay_key, 'utf8').toString('base64')}`,
    `WESHER_OVERLAY_NET=${config.overlay_net}`,
    `WESHER_INTERFACE=${WESHER_INTERFACE}`,
    // /etc/hosts inside the container is Podman's, private to wesher: the
    // entries would help nobody, and k3s does not share it.
    'WESHER_NO_ETC_HOSTS=true',
    `WESHER_LOG_LEVEL=${config.log_level === 'debug' ? 'debug' : 'info'}`,
  ];
  if (bindAddr !== null) env.push(`WESHER_BIND_ADDR=${bindAddr}`);
  if (join.length > 0) env.push(`WESHER_JOIN=${join.join(',')}`);
  const create: Dockerode.ContainerCreateOptions = {
    name,
    Image: config.images.wesher,
    // wesher hashes the hostname into the overlay IP: it must be the node name.
    Hostname: node.node,
    // On SIGTERM wesher leaves the mesh (up to 10 s while others are alive) and deletes its
    // interface (docs/upstream.md W10); the compat API's default would kill it at once.
    StopTimeout: WESHER_STOP_TIMEOUT_S,
    Env: env,
    Labels: labels(node.node, 'wesher', { 'io.hepto.join': join.join(',') }),
    HostConfig: {
      NetworkMode: net.mode,
      CapAdd: ['NET_ADMIN'],
      Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
      Binds: [`${stateDir}:/var/lib/wesher:Z`],
      RestartPolicy: { Name: 'no' },
      Ulimits: ulimits(config),
    },
  };
  if (net.endpoints) create.NetworkingConfig = net.endpoints;
  return seal({ name, node: node.node, role: 'wesher', image: config.images.wesher, secretEnv: ['WESHER_CLUSTER_KEY'], join, dirs: [stateDir], create });
}

export interface K3sInput {
  config: HeptoConfig;
  node: NodeConfig;
  /** This node's overlay IP (its k3s node IP). */
  overlayIp: string;
  /** The master's overlay IP; unused on the master itself. */
  masterOverlayIp: string | null;
  /**
   * What k3s reads from `--token-file`: the server token on the master, the
   * agent's token elsewhere (desired.ts). Default: cluster_key.
   */
  token?: string;
  /** The master only: the content of `--agent-token-file`; null or absent: no such flag. */
  agentToken?: string | null;
}

/** k3s's data dir on the host (/var/lib/rancher/k3s inside); holds server/token on the master. */
export function k3sDataDir(config: HeptoConfig, node: string): string {
  return path.join(nodeDir(config, node), 'k3s');
}

/**
 * Host directory (under the node dir) -> container path. The first three are
 * k3s's state: persistent, so a recreated agent keeps its node password and
 * is not refused as a duplicate node. The last three are the VOLUMEs the
 * rancher/k3s image declares besides /var/lib/rancher/k3s: bound here so
 * Podman creates no anonymous volume (one more per recreate) and the
 * kubelet's state survives a recreate.
 */
/** Where k3s reads its join token, inside the bound /etc/rancher/k3s. */
export const K3S_TOKEN_FILE = '/etc/rancher/k3s/hepto-token';
/** Where the k3s server reads its agent token (`--agent-token-file`), next to it. */
export const K3S_AGENT_TOKEN_FILE = '/etc/rancher/k3s/hepto-agent-token';

const K3S_MOUNTS: ReadonlyArray<[string, string]> = [
  ['k3s', '/var/lib/rancher/k3s'],
  ['rancher-node', '/etc/rancher/node'],
  ['rancher-k3s', '/etc/rancher/k3s'],
  ['kubelet', '/var/lib/kubelet'],
  ['cni', '/var/lib/cni'],
  ['k3s-log', '/var/log'],
];

/**
 * Where the k3s server writes the cluster admin's kubeconfig in its container:
 * k3s's default for a privileged, non-rootless server, mode 0600, server
 * `https://127.0.0.1:6443` (`[::1]` for an IPv6 service range); the spec
 * passes no --write-kubeconfig(-mode), so these hold (docs/upstream.md K36-K38).
 */
export const K3S_KUBECONFIG = '/etc/rancher/k3s/k3s.yaml';

/** The host path of a file in a bound k3s directory (`inside` is a path in the container). */
export function k3sHostPath(config: HeptoConfig, node: string, inside: string): string {
  const m = K3S_MOUNTS.find(([, dir]) => inside.startsWith(dir + '/'));
  if (!m) throw new Error(`k3sHostPath: ${inside} is on no host mount`);
  return path.join(nodeDir(config, node), m[0], inside.slice(m[1].length + 1));
}

/** The master's admin kubeconfig on the host: `<storage_base>/<node>/rancher-k3s/k3s.yaml`. */
export function k3sKubeconfigFile(config: HeptoConfig, node: string): string {
  return k3sHostPath(config, node, K3S_KUBECONFIG);
}

export function k3sSpec({ config, node, overlayIp, masterOverlayIp, token, agentToken }: K3sInput): ContainerSpec {
  const name = containerName(node.node, 'k3s');
  const base = nodeDir(config, node.node);
  const dirs = K3S_MOUNTS.map(([dir]) => path.join(base, dir));
  const isMaster = node.node === config.master;
  if (!isMaster && !masterOverlayIp) throw new Error('k3sSpec: an agent needs the master overlay IP');
  const serverHost = masterOverlayIp && masterOverlayIp.includes(':') ? `[${masterOverlayIp}]` : masterOverlayIp;
  const cmd = isMaster
    ? ['server', '--cluster-cidr', config.cluster_cidr, '--service-cidr', config.service_cidr]
    : ['agent', '--server', `https://${serverHost}:${K3S_API_PORT}`];
  // The token through a file (k3s --token-file, docs/upstream.md K14), not K3S_TOKEN: an
  // environment shows in `podman inspect`. It lives in the bound /etc/rancher/k3s.
  cmd.push('--node-name', node.node, '--node-ip', overlayIp, '--flannel-iface', WESHER_INTERFACE, '--token-file', K3S_TOKEN_FILE);
  // The agent token, the same way (docs/upstream.md K15, K25); a server flag only.
  const withAgentToken = isMaster && typeof agentToken === 'string';
  if (withAgentToken) cmd.push('--agent-token-file', K3S_AGENT_TOKEN_FILE);
  const tokenText = token ?? config.cluster_key;
  if (tokenText === null) throw new Error('k3sSpec: no token for k3s (cluster_key is not set and no agent token was given)');
  const create: Dockerode.ContainerCreateOptions = {
    name,
    Image: config.images.k3s,
    Cmd: cmd,
    Labels: labels(node.node, 'k3s'),
    HostConfig: {
      // Shares wesher's network namespace, so it sees the overlay interface.
      NetworkMode: `container:${containerName(node.node, 'wesher')}`,
      Privileged: true,
      // As k3s documents for running in a container.
      Tmpfs: { '/run': '', '/var/run': '' },
      Binds: K3S_MOUNTS.map(([, inside], i) => `${dirs[i]}:${inside}:Z`),
      RestartPolicy: { Name: 'no' },
      Ulimits: ulimits(config),
    },
  };
  const etc = dirs[K3S_MOUNTS.findIndex(([, inside]) => inside === '/etc/rancher/k3s')];
  // An agent's token is live: a new agent_key is written in place (key rotation), not a recreate.
  const files: SecretFile[] = [{ path: path.join(etc, path.basename(K3S_TOKEN_FILE)), content: tokenText, ...(isMaster ? {} : { live: true }) }];
  if (withAgentToken) files.push({ path: path.join(etc, path.basename(K3S_AGENT_TOKEN_FILE)), content: agentToken });
  return seal({ name, node: node.node, role: 'k3s', image: config.images.k3s, secretEnv: [], join: [], dirs, files, create });
}
