/**
 * What should run on this machine, from the config and the cluster view:
 * one wesher and one k3s container per hosted node, the overlay link each
 * wesher's namespace must hold, or the reason each must wait. Pure. Rules:
 * - wesher binds in one family, IPv6 wherever the node has one
 *   (wesher-bind.ts); a node or member that can only offer the other family
 *   is a problem;
 * - its join list holds only members that run wesher and are alive in
 *   gossip, in that family, most recently seen first, capped: a dead address
 *   or a gossip-only anchor would stall wesher's join (it tries them one by
 *   one, seconds each; docs/upstream.md);
 * - a node that has anchors waits to start wesher until gossip has found
 *   another member: started with an empty join list it would form a mesh of
 *   its own;
 * - a k3s agent waits until the master node is seen alive in the view;
 * - a k3s agent joining with agent_key waits until the master's record
 *   carries its k3s CA hash (k3s_ca), pinned in its token; the master's
 *   server gets the agent token its datastore allows (k3s-token.ts); status
 *   says where a machine holds the k3s server token it should not need;
 * - on an overlay-IP collision the node this agent saw later does not start
 *   wesher (nor k3s); a node that has its overlay IP keeps it (collisions.ts);
 * - at most one hosted node can use the host network (wesher's ports and
 *   interface are per network namespace).
 */
import type Dockerode from 'dockerode';
import type { HeptoConfig, NodeConfig } from '../../shared/config/types';
import type { MemberRecord, MemberState } from '../../shared/member';
import { errorMessage } from '../../shared/errors';
import { DEFAULT_WESHER_IMAGE } from '../../shared/config/images';
import { bareAddress } from './ip';
import { planNetwork, type NetworkFacts } from './network';
import { overlayIp } from './overlay-ip';
import { collisionProblem, overlayCollisions, safeOverlayIp } from './collisions';
import type { DesiredLink } from './overlay-link';
import { containerName, k3sSpec, WESHER_INTERFACE, WIREGUARD_OVERHEAD, wesherSpec, type ContainerSpec, type Role } from './specs';
import { secureAgentToken, type AgentTokenPlan } from './k3s-token';
import { inFamily, wesherBindAddress, type BindChoice, type Family } from './wesher-bind';
import { byCodePoint } from '../../shared/order';

export interface ClusterView {
  /** lastSeen: when gossip last heard from the member (ms), for the join list's order. */
  members: Array<{ name: string; state: MemberState; record: MemberRecord; lastSeen?: number }>;
  /**
   * The name ledger's sequence number of each node name, in the order this
   * agent first saw them; a hosted node is in it once pinned
   * (collisions.ts, daemon/name-ledger.ts). Absent: none seen yet.
   */
  firstSeen?: Record<string, number>;
  /**
   * Node names the admin removed (`hepto-agent remove NODE`) and has not
   * re-admitted since. The agent hosting the master deletes each from
   * Kubernetes once (node-removal.ts); absent means none.
   */
  removed?: string[];
}

export interface DesiredContainer {
  name: string;
  node: string;
  role: Role;
  /** null: must not be started now (see `waiting`). */
  spec: ContainerSpec | null;
  /** Why it waits, one sentence with what to do; null when it may run. */
  waiting: string | null;
}

export interface DesiredNetwork {
  name: string;
  node: string;
  create: Dockerode.NetworkCreateOptions;
}

export interface DesiredState {
  containers: DesiredContainer[];
  networks: DesiredNetwork[];
  /** The overlay link of each node whose wesher may run. */
  links: DesiredLink[];
  /** Images the agent builds itself when missing (the default wesher image), with where the binary comes from. */
  builds: Record<string, { baseUrl: string; sha256: string | null }>;
  problems: string[];
  /** Overlay IP of each hosted node (null if overlay_net is unusable). */
  overlayIps: Record<string, string | null>;
}

export function hostedNodes(config: HeptoConfig): NodeConfig[] {
  const top: NodeConfig = { node: config.node, iface: config.iface, ip: config.ip, gw: config.gw, network_mode: config.network_mode };
  return [top, ...config.nodes];
}

/** Whether gossip has found the cluster: no anchors (the first machine), or another member alive. */
export function meshFound(config: HeptoConfig, view: ClusterView): boolean {
  return config.anchors.length === 0 || view.members.some((m) => m.name !== config.node && m.state === 'alive');
}

/** Whether the master node is hosted here or seen alive, hosted by a live member. */
export function masterKnown(config: HeptoConfig, view: ClusterView): boolean {
  if (hostedNodes(config).some((n) => n.node === config.master)) return true;
  return view.members.some((m) => m.state === 'alive' && (m.name === config.master || config.master in m.record.containers));
}

/** Most addresses wesher is given to join: each dead one costs it seconds before the next. */
export const JOIN_CAP = 8;

function runsWesher(record: MemberRecord, node?: string): boolean {
  return Object.entries(record.containers).some(([n, h]) => (node === undefined || n === node) && h.wesher === 'running');
}

/** Where a hosted node's wesher binds: its own ip, else (top-level node) the agent's advertised addresses. */
export function bindFor(config: HeptoConfig, view: ClusterView, node: NodeConfig): BindChoice {
  const self = view.members.find((m) => m.name === config.node);
  return wesherBindAddress(node.ip, node.node === config.node ? (self?.record.addresses ?? []) : []);
}

/**
 * wesher's join list: this machine's other nodes whose wesher runs, then
 * members alive in gossip whose wesher runs, most recently seen first; only
 * addresses of `family`; never the node's own; at most JOIN_CAP.
 */
export function joinList(config: HeptoConfig, view: ClusterView, node: NodeConfig, family: Family | null = bindFor(config, view, node).family): string[] {
  const own = new Set(node.ip.map(bareAddress));
  const out: string[] = [];
  const add = (h: string): void => {
    if (h && !own.has(h) && !out.includes(h) && out.length < JOIN_CAP) out.push(h);
  };
  const self = view.members.find((m) => m.name === config.node);
  for (const other of hostedNodes(config)) {
    if (other.node !== node.node && self && runsWesher(self.record, other.node)) inFamily(other.ip, family).forEach(add);
  }
  const live = view.members.filter((m) => m.name !== config.node && m.state === 'alive' && runsWesher(m.record));
  live.sort((a, b) => (b.lastSeen ?? 0) - (a.lastSeen ?? 0) || byCodePoint(a.name, b.name));
  for (const m of live) inFamily(m.record.node_ips, family).forEach(add);
  return out;
}

/** One sentence per node or member that cannot gossip with the others' weshers for its address family. */
function familyProblems(config: HeptoConfig, view: ClusterView, node: NodeConfig, bind: BindChoice): string[] {
  const others = view.members.filter((m) => m.name !== config.node && m.state === 'alive' && runsWesher(m.record) && m.record.node_ips.length > 0);
  if (bind.family === null) {
    return [`node ${node.node} has no address to give wesher: set ip in the config, or advertise, so that peers can join its wesher`];
  }
  if (bind.family === 4) {
    const v6 = others.filter((m) => inFamily(m.record.node_ips, 6).length > 0 && inFamily(m.record.node_ips, 4).length === 0).map((m) => m.name);
    if (v6.length === 0) return [];
    return [
      `node ${node.node} can only offer wesher IPv4 (${bind.addr}) while ${v6.join(', ')} use IPv6, and wesher does not gossip across address families; give ${node.node} an IPv6 address (ip or advertise)`,
    ];
  }
  return others
    .filter((m) => inFamily(m.record.node_ips, 6).length === 0)
    .map(
      (m) =>
        `member ${m.name} offers wesher only IPv4 (${m.record.node_ips.join(', ')}) while this cluster's weshers use IPv6, so it is left out of the join list; give ${m.name} an IPv6 address (ip or advertise)`,
    );
}

/** wesher's address on its interface: the overlay IP as a host address (docs/upstream.md). */
export function overlayAddress(ip: string): string {
  return `${ip}/${ip.includes(':') ? 128 : 32}`;
}

/** The master's k3s CA hash as its record publishes it (k3s_ca), or null while it does not. */
export function masterCaHash(config: HeptoConfig, view: ClusterView): string | null {
  // The master's own record (signed by its identity) first; else a member hosting it as an extra node.
  const named = view.members.find((m) => m.name === config.master);
  if (named) return named.record.k3s_ca ?? null;
  const hosting = view.members.filter((m) => config.master in m.record.containers && m.record.k3s_ca !== undefined);
  hosting.sort((a, b) => (a.state === 'alive' ? 0 : 1) - (b.state === 'alive' ? 0 : 1));
  return hosting[0]?.record.k3s_ca ?? null;
}

/** In status on a master without agent_key (issue 13). */
export const NO_AGENT_KEY_PROBLEM =
  'the master has no agent_key, so the other machines need cluster_key, the k3s server token, to join k3s, which makes their owners Kubernetes admins: ' +
  'set agent_key ("hepto-agent keygen") in the master\'s config and give it to the others instead of cluster_key (k3s takes an agent token only on a new datastore: docs/upstream.md K28)';

/** In status on a machine that does not host the master and joins k3s with cluster_key. */
export const CLUSTER_KEY_JOIN_PROBLEM =
  "this machine joins k3s with cluster_key, the k3s server token, which makes its owner Kubernetes admin: put the master's agent_key in its config as agent_key and remove cluster_key";

/** In status on a machine that does not host the master, joins with agent_key and still holds cluster_key. */
export const CLUSTER_KEY_HELD_PROBLEM =
  'this machine joins k3s with agent_key, but its config still holds cluster_key, the k3s server token, which makes its owner Kubernetes admin: remove cluster_key from its config';

/**
 * What a k3s agent reads from its token file: the agent token pinned to the
 * master's CA (`K10<k3s_ca>::node:<key>`, docs/upstream.md K26), or the
 * server token where the machine has no agent key; or why it must wait.
 */
function agentJoinToken(
  config: HeptoConfig,
  view: ClusterView,
  node: string,
  agentTokens: Record<string, AgentTokenPlan>,
): { token: string } | { waiting: string } {
  const hostsMaster = hostedNodes(config).some((n) => n.node === config.master);
  // On the master's machine its own nodes join the way its server lets agents in.
  const key = hostsMaster ? (agentTokens[config.master] ?? { token: config.agent_key }).token : config.agent_key;
  if (key === null) {
    if (config.cluster_key !== null) return { token: config.cluster_key };
    return { waiting: `k3s on ${node} has no key to join with: put the master's agent_key in this machine's config as agent_key` };
  }
  const ca = masterCaHash(config, view);
  if (ca === null) {
    return {
      waiting:
        `k3s on ${node} is waiting for the master "${config.master}" to publish its k3s CA hash in gossip; its agent token is pinned to that CA, ` +
        "which the master's agent publishes once its k3s server has made it: check that the master's k3s runs and that its hepto-agent is this version or newer",
    };
  }
  return { token: secureAgentToken(ca, key) };
}

/**
 * `serverToken`: per hosted master node, why its k3s server must not start
 * with the current cluster_key (k3s-token.ts reads the datastore's token;
 * the supervisor passes the result in, so this stays pure). `agentTokens`:
 * per hosted master node, the agent token its datastore allows (absent: as
 * for a new datastore, agent_key).
 */
export function computeDesired(
  config: HeptoConfig,
  view: ClusterView,
  facts: NetworkFacts,
  serverToken: Record<string, string> = {},
  agentTokens: Record<string, AgentTokenPlan> = {},
): DesiredState {
  const problems: string[] = [];
  // Which k3s key this machine holds that it should not (issue 13, docs/trust.md).
  if (!hostedNodes(config).some((n) => n.node === config.master) && config.cluster_key !== null) {
    problems.push(config.agent_key === null ? CLUSTER_KEY_JOIN_PROBLEM : CLUSTER_KEY_HELD_PROBLEM);
  }
  const containers: DesiredContainer[] = [];
  const networks: DesiredNetwork[] = [];
  const links: DesiredLink[] = [];
  const overlayIps: Record<string, string | null> = {};
  const waitBoth = (node: string, reason: string): void => {
    for (const role of ['wesher', 'k3s'] as Role[]) containers.push({ name: containerName(node, role), node, role, spec: null, waiting: reason });
  };

  let overlayOk = true;
  try {
    overlayIp('x', config.overlay_net);
  } catch (e) {
    overlayOk = false;
    problems.push(`${errorMessage(e)}; fix overlay_net in the config`);
  }

  const collided = new Map<string, string>();
  for (const c of overlayCollisions(config, view)) {
    const [winner, ...losers] = c.nodes;
    for (const l of losers) {
      const msg = collisionProblem(c.ip, winner, l);
      problems.push(msg);
      if (l.hosted) collided.set(l.node, msg);
    }
  }

  const master = masterKnown(config, view);
  const masterIp = safeOverlayIp(config.master, config.overlay_net);
  let hostTaken: string | null = null;

  for (const node of hostedNodes(config)) {
    const ip = overlayOk ? safeOverlayIp(node.node, config.overlay_net) : null;
    overlayIps[node.node] = ip;
    if (!ip) {
      waitBoth(node.node, 'overlay_net is unusable; fix it in the config');
      continue;
    }
    const collision = collided.get(node.node);
    if (collision) {
      waitBoth(node.node, collision);
      continue;
    }
    if (node.network_mode === 'host') {
      if (hostTaken) {
        const msg = `node ${node.node} cannot use network_mode host: node ${hostTaken} on this machine already uses the host network; give ${node.node} network_mode macvlan (or ipvlan) with its own ip`;
        problems.push(msg);
        waitBoth(node.node, msg);
        continue;
      }
      hostTaken = node.node;
    }
    let net;
    try {
      net = planNetwork(node, config.mtu, facts);
    } catch (e) {
      const msg = `${errorMessage(e)}`;
      problems.push(msg);
      waitBoth(node.node, msg);
      continue;
    }
    const bind = bindFor(config, view, node);
    problems.push(...familyProblems(config, view, node, bind));
    const join = joinList(config, view, node, bind.family);
    if (view.firstSeen !== undefined && !Object.prototype.hasOwnProperty.call(view.firstSeen, node.node)) {
      const msg = `wesher on ${node.node} waits until this agent has the cluster's node names (a sync interval after gossip found another member), so that it does not take the overlay IP of a node it has not heard of yet`;
      waitBoth(node.node, msg);
      continue;
    }
    if (join.length === 0 && !meshFound(config, view)) {
      const msg = `wesher on ${node.node} waits for gossip to find another member through the anchors (${config.anchors.join(', ')}): started alone it would make a mesh of its own; check that an anchor's agent runs and is reachable`;
      problems.push(msg);
      waitBoth(node.node, msg);
      continue;
    }
    if (net.network) networks.push({ name: net.network.name, node: node.node, create: net.network.create });
    const w = wesherSpec({ config, node, net, join, bindAddr: bind.addr });
    containers.push({ name: w.name, node: node.node, role: 'wesher', spec: w, waiting: null });
    links.push({ node: node.node, container: w.name, ifname: WESHER_INTERFACE, address: overlayAddress(ip), mtu: config.mtu - WIREGUARD_OVERHEAD });
    const k3sName = containerName(node.node, 'k3s');
    if (node.node !== config.master && !master) {
      const msg = `k3s on ${node.node} waits for the master node ${config.master} to be seen alive in the mesh (its overlay IP ${masterIp} is the API server); check that the master's agent runs and is reachable`;
      problems.push(msg);
      containers.push({ name: k3sName, node: node.node, role: 'k3s', spec: null, waiting: msg });
      continue;
    }
    const tokenProblem = serverToken[node.node];
    if (tokenProblem) {
      // A recreated server with a token its data cannot open would never start; the running one is left as it is.
      problems.push(tokenProblem);
      containers.push({ name: k3sName, node: node.node, role: 'k3s', spec: null, waiting: tokenProblem });
      continue;
    }
    if (node.node === config.master) {
      const plan = agentTokens[node.node] ?? { token: config.agent_key, problem: null };
      if (plan.problem) problems.push(plan.problem);
      else if (plan.token === null) problems.push(NO_AGENT_KEY_PROBLEM);
      const k = k3sSpec({ config, node, overlayIp: ip, masterOverlayIp: masterIp, agentToken: plan.token });
      containers.push({ name: k3sName, node: node.node, role: 'k3s', spec: k, waiting: null });
      continue;
    }
    const joinToken = agentJoinToken(config, view, node.node, agentTokens);
    if ('waiting' in joinToken) {
      problems.push(joinToken.waiting);
      containers.push({ name: k3sName, node: node.node, role: 'k3s', spec: null, waiting: joinToken.waiting });
      continue;
    }
    const k = k3sSpec({ config, node, overlayIp: ip, masterOverlayIp: masterIp, token: joinToken.token });
    containers.push({ name: k3sName, node: node.node, role: 'k3s', spec: k, waiting: null });
  }
  // wesher publishes no image: the default reference is built here from the release binary (wesher-image.ts).
  const builds: DesiredState['builds'] =
    config.images.wesher === DEFAULT_WESHER_IMAGE ? { [config.images.wesher]: { baseUrl: config.wesher_download, sha256: config.wesher_sha256 } } : {};
  return { containers, networks, links, builds, problems, overlayIps };
}
