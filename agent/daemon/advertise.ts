import * as os from 'os';
import { promises as dns } from 'dns';
import { isIP } from 'net';
import { cidrsOverlap, formatHostPort, parseCidr, parseHostPort } from '../../shared/config/address';
import type { HeptoConfig } from '../../shared/config/types';

const WILDCARD = new Set(['::', '0.0.0.0', '']);

/**
 * Addresses the cluster itself puts on this host (wesher's overlay, k3s's pod
 * and service ranges on flannel and CNI interfaces): never a way in for a peer.
 */
function clusterMade(address: string, config: Partial<Pick<HeptoConfig, 'overlay_net' | 'cluster_cidr' | 'service_cidr'>>): boolean {
  const a = parseCidr(`${address}/${address.includes(':') ? 128 : 32}`);
  if (!a) return false;
  return [config.overlay_net, config.cluster_cidr, config.service_cidr].some((r) => {
    const c = r ? parseCidr(r) : null;
    return !!c && cidrsOverlap(a, c);
  });
}

/**
 * host:port endpoints peers should dial. Explicit `advertise` wins; then any
 * specific `gossip_listen` address; else every global address of the host,
 * IPv6 first (hepto's normal case), then IPv4, leaving out those inside the
 * overlay and k3s's ranges (after a restart, wgoverlay and flannel carry some).
 */
export function advertiseAddresses(
  config: Pick<HeptoConfig, 'advertise' | 'gossip_listen' | 'gossip_port'> & Partial<Pick<HeptoConfig, 'overlay_net' | 'cluster_cidr' | 'service_cidr'>>,
  interfaces = os.networkInterfaces(),
): string[] {
  if (config.advertise.length > 0) {
    return config.advertise.map((a) => {
      const { host, port } = parseHostPort(a, config.gossip_port);
      return formatHostPort(host, port);
    });
  }
  const specific = config.gossip_listen.filter((h) => !WILDCARD.has(h));
  if (specific.length > 0) return specific.map((h) => formatHostPort(h, config.gossip_port));
  const v6: string[] = [];
  const v4: string[] = [];
  for (const addrs of Object.values(interfaces)) {
    for (const a of addrs ?? []) {
      if (a.internal || clusterMade(a.address, config)) continue;
      if (a.family === 'IPv6') {
        if (a.address.startsWith('fe80:') || a.scopeid) continue; // link-local needs a zone; useless to peers
        v6.push(formatHostPort(a.address, config.gossip_port));
      } else {
        v4.push(formatHostPort(a.address, config.gossip_port));
      }
    }
  }
  const all = [...v6, ...v4];
  return all.length > 0 ? all : [formatHostPort('127.0.0.1', config.gossip_port)];
}

type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;

const systemLookup: Lookup = (host) => dns.lookup(host, { all: true });

/**
 * The advertised endpoints with host names resolved to IP literals, once, at
 * start: peers take only IP literals from a record (agent/gossip/newnames.ts:
 * no DNS lookups on a peer's word). A name that does not resolve is left out;
 * if nothing is left, the addresses the host has (as with no `advertise`).
 */
export async function resolveAdvertised(
  addrs: string[],
  config: Pick<HeptoConfig, 'gossip_listen' | 'gossip_port'> & Partial<Pick<HeptoConfig, 'overlay_net' | 'cluster_cidr' | 'service_cidr'>>,
  lookup: Lookup = systemLookup,
  interfaces = os.networkInterfaces(),
): Promise<string[]> {
  const out: string[] = [];
  for (const a of addrs) {
    const { host, port } = parseHostPort(a, config.gossip_port);
    if (isIP(host) !== 0) {
      out.push(a);
      continue;
    }
    const found = await lookup(host).catch(() => []);
    for (const f of found) out.push(formatHostPort(f.address, port));
  }
  const unique = [...new Set(out)];
  return unique.length > 0 ? unique : advertiseAddresses({ ...config, advertise: [] }, interfaces);
}
