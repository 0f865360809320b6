/**
 * Which address wesher binds to, and so which address peers join it on.
 * Left to itself, wesher v0.2.6 picks a public IPv4 address (go-sockaddr),
 * falls back to 0.0.0.0 and then exits on an IPv6-only host, for lack of a
 * private IPv4 to advertise (docs/upstream.md). And two weshers bound in
 * different families join over TCP but exchange no UDP gossip. So the agent
 * always names the address, in one family for the whole cluster: IPv6
 * wherever the node has one (seed 002 puts IPv6 first), else IPv4.
 *
 * Candidates: the node's own `ip` entries; for the top-level node without
 * any, the agent's advertised gossip addresses (what peers already reach).
 */
import { isIP } from 'net';
import { bareAddress, hostOf } from './ip';

export type Family = 4 | 6;

export interface BindChoice {
  addr: string | null;
  family: Family | null;
}

export function familyOf(addr: string): Family {
  return bareAddress(addr).includes(':') ? 6 : 4;
}

/**
 * IP literals only (a peer's record is its own word: a host name would make
 * wesher resolve it, a comma would split WESHER_JOIN); loopback and
 * link-local addresses are useless to peers.
 */
function usable(addr: string): boolean {
  const a = addr.toLowerCase();
  if (isIP(a) === 0) return false;
  return !(a.startsWith('127.') || a === '::1' || a.startsWith('fe80:') || a === '::' || a === '0.0.0.0');
}

/** Node addresses (`ip`, with or without prefix), else advertised `host:port`s: the first IPv6 one, else the first IPv4 one. */
export function wesherBindAddress(nodeIps: string[], advertised: string[] = []): BindChoice {
  const own = nodeIps.map(bareAddress).filter(usable);
  const candidates = own.length > 0 ? own : advertised.map(hostOf).filter(usable);
  const pick = candidates.find((a) => familyOf(a) === 6) ?? candidates.find((a) => familyOf(a) === 4) ?? null;
  return { addr: pick, family: pick ? familyOf(pick) : null };
}

/** The addresses a member offers wesher peers, in one family. */
export function inFamily(addrs: string[], family: Family | null): string[] {
  const bare = addrs.map(bareAddress).filter(usable);
  return family === null ? bare : bare.filter((a) => familyOf(a) === family);
}
