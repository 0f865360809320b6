/**
 * How a node's containers reach the network, per `network_mode`:
 * - `host`: wesher (and k3s through wesher's namespace) use the host's network.
 * - `macvlan`: a Podman network `hepto-<node>` on `iface`, with the node's own
 *   addresses, gateways and the cluster MTU (seed 002); wesher gets the
 *   node's addresses on it.
 * - `ipvlan`: the same with the ipvlan driver, which needs netavark >= 1.5
 *   (older netavark cannot create it); refused with the reason otherwise.
 * Pure: the netavark version and the default-route interface are passed in.
 */
import type Dockerode from 'dockerode';
import { HeptoError } from '../../shared/errors';
import type { NodeConfig } from '../../shared/config/types';
import { bareAddress, formatIp, isV6, networkOf, parseCidr, parseIp } from './ip';

export const MIN_NETAVARK_FOR_IPVLAN = '1.5.0';

export interface NetworkPlan {
  /** HostConfig.NetworkMode of the wesher container. */
  mode: string;
  /** The Podman network to create first, when not host. */
  network: { name: string; create: Dockerode.NetworkCreateOptions } | null;
  /** NetworkingConfig of the wesher container, when not host. */
  endpoints: Dockerode.ContainerCreateOptions['NetworkingConfig'] | undefined;
}

export interface NetworkFacts {
  /** Interface of the default route, used when the node's iface is null. */
  defaultIface: string | null;
  /** netavark version reported by (or probed next to) Podman; null when unknown. */
  netavarkVersion: string | null;
}

export function networkName(node: string): string {
  return `hepto-${node}`;
}

/** Compares dotted versions numerically: <0, 0, >0. Non-numeric parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a
    .replace(/^v/, '')
    .split(/[.-]/)
    .map((x) => parseInt(x, 10) || 0);
  const pb = b
    .replace(/^v/, '')
    .split(/[.-]/)
    .map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length, 3); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function invalid(node: string, field: string, message: string, hint: string): HeptoError {
  return new HeptoError('CONFIG_INVALID', `node ${node}: ${field} ${message}`, { hint });
}

export function planNetwork(node: NodeConfig, mtu: number, facts: NetworkFacts): NetworkPlan {
  const mode = node.network_mode as string;
  if (mode === 'host') return { mode: 'host', network: null, endpoints: undefined };
  if (mode !== 'macvlan' && mode !== 'ipvlan') {
    throw invalid(node.node, 'network_mode', `"${mode}" is not supported`, 'use host, macvlan or ipvlan');
  }
  if (mode === 'ipvlan') {
    if (facts.netavarkVersion === null) {
      throw invalid(
        node.node,
        'network_mode',
        'ipvlan needs netavark >= 1.5 and its version could not be determined',
        'install netavark >= 1.5, or set network_mode to macvlan (Ethernet) or host',
      );
    }
    if (compareVersions(facts.netavarkVersion, MIN_NETAVARK_FOR_IPVLAN) < 0) {
      throw invalid(
        node.node,
        'network_mode',
        `ipvlan needs netavark >= ${MIN_NETAVARK_FOR_IPVLAN}, this machine has ${facts.netavarkVersion}`,
        'upgrade netavark (and Podman), or set network_mode to macvlan (Ethernet) or host',
      );
    }
  }
  const iface = node.iface ?? facts.defaultIface;
  if (!iface) throw invalid(node.node, 'iface', `is needed for ${mode} and no default route was found`, 'set iface to the host interface the node sits on');
  if (node.ip.length === 0) throw invalid(node.node, 'ip', `is empty; ${mode} needs the node's own address(es)`, 'set ip, e.g. ["2001:db8::10/64"]');

  const subnets: Array<{ Subnet: string; Gateway?: string }> = [];
  const ipam: { IPv4Address?: string; IPv6Address?: string } = {};
  for (const text of node.ip) {
    const cidr = parseCidr(text, `node ${node.node} ip`);
    const v6 = isV6(cidr.bytes);
    if ((v6 && ipam.IPv6Address) || (!v6 && ipam.IPv4Address)) {
      throw invalid(node.node, 'ip', `has more than one ${v6 ? 'IPv6' : 'IPv4'} address; a Podman network takes one per family`, 'keep one address per family');
    }
    const gw = node.gw.find((g) => isV6(parseIp(bareAddress(g), `node ${node.node} gw`)) === v6);
    subnets.push(gw ? { Subnet: networkOf(cidr), Gateway: formatIp(parseIp(bareAddress(gw))) } : { Subnet: networkOf(cidr) });
    if (v6) ipam.IPv6Address = formatIp(cidr.bytes);
    else ipam.IPv4Address = formatIp(cidr.bytes);
  }
  const name = networkName(node.node);
  const create: Dockerode.NetworkCreateOptions = {
    Name: name,
    Driver: mode,
    CheckDuplicate: true,
    EnableIPv6: ipam.IPv6Address !== undefined,
    IPAM: { Driver: 'default', Config: subnets },
    Options: { parent: iface, mtu: String(mtu) },
    Labels: { 'io.hepto.node': node.node, 'io.hepto.managed-by': 'hepto-agent' },
  };
  return {
    mode: name,
    network: { name, create },
    endpoints: { EndpointsConfig: { [name]: { IPAMConfig: ipam } } },
  };
}
