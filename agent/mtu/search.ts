/**
 * Path MTU search (issue 15), pure: the probe is injected. A probe sends one
 * packet of `size` bytes (IP header included) with the don't-fragment bit
 * and says what came of it: it got through ('ok'), a router (or the local
 * kernel, from its cache) said it is too big and gave the next hop's MTU
 * ({ tooBig }), or nothing came back ('lost').
 *
 * - Packet too big comes back: the reported MTU is probed next, at once, so
 *   a path with a cooperating router costs two or three probes.
 * - It is filtered (a PMTU black hole): the floor is probed (1280 for IPv6,
 *   576 for IPv4); if it gets through, a binary search between the floor
 *   and the first lost size finds the largest size that gets through.
 * - Even the floor is lost (the peer does not answer ping at all): the
 *   result is unknown (null), never 0.
 * A lost probe is sent once more before it counts as lost, so a single
 * dropped packet does not halve the estimate.
 */
export type ProbeOutcome = 'ok' | 'lost' | { tooBig: number };
export type SizeProbe = (size: number) => Promise<ProbeOutcome>;
export type Family = 4 | 6;

/** The smallest path MTU each family must carry (RFC 8200; RFC 791's 576 for hosts). */
export const MTU_FLOOR: Record<Family, number> = { 6: 1280, 4: 576 };
/** The smallest MTU a "too big" answer may report and be believed (RFC 8201 ignores less than 1280 for IPv6; RFC 791's 68 for IPv4). */
const MIN_REPORTED: Record<Family, number> = { 6: 1280, 4: 68 };
/** The IP and ICMP header bytes of a ping of `size` bytes: its payload is size minus these. */
export const PING_HEADERS: Record<Family, number> = { 6: 48, 4: 28 };
/** The largest size probed when the local route's MTU is unknown. */
export const DEFAULT_MAX = 1500;

export interface SearchOptions {
  family: Family;
  /** The local route's MTU: the search starts there (DEFAULT_MAX when unknown). */
  max?: number;
  /** Defaults to MTU_FLOOR[family]. */
  floor?: number;
  /** How many times a lost probe is sent again before it counts as lost (default 1). */
  retries?: number;
}

export interface SearchResult {
  /** The path MTU in bytes; null: not even the floor got through. */
  mtu: number | null;
  /** How it was found: the first size got through, a "too big" answer, a search past a black hole, or not at all. */
  how: 'first' | 'too-big' | 'search' | 'unreachable';
  /** Probe packets sent, and their bytes (IP headers included): the cost. */
  probes: number;
  bytes: number;
}

/** Upper bound on probes in one search: a bug or a lying probe never loops forever. */
const MAX_STEPS = 64;

export async function searchPathMtu(probe: SizeProbe, opts: SearchOptions): Promise<SearchResult> {
  const floor = opts.floor ?? MTU_FLOOR[opts.family];
  const retries = opts.retries ?? 1;
  const max = Math.max(floor, Math.floor(opts.max ?? DEFAULT_MAX));
  let probes = 0;
  let bytes = 0;
  let sawTooBig = false;
  let sawLost = false;
  const send = async (size: number): Promise<ProbeOutcome> => {
    for (let attempt = 0; ; attempt++) {
      probes++;
      bytes += size;
      const r = await probe(size);
      if (r !== 'lost' || attempt >= retries) return r;
    }
  };
  const done = (mtu: number | null): SearchResult => ({
    mtu,
    how: mtu === null ? 'unreachable' : sawLost ? 'search' : sawTooBig ? 'too-big' : 'first',
    probes,
    bytes,
  });

  /** The largest size known to get through; null: none yet. */
  let lo: number | null = null;
  /** No size above hi gets through. */
  let hi = max;
  let size = max;
  for (let step = 0; step < MAX_STEPS; step++) {
    const r = await send(size);
    let reported = false;
    if (r === 'ok') {
      lo = size;
    } else if (r !== 'lost' && Number.isInteger(r.tooBig) && r.tooBig < size && r.tooBig >= MIN_REPORTED[opts.family]) {
      sawTooBig = true;
      hi = Math.min(hi, r.tooBig);
      reported = true;
    } else {
      // Lost, or a "too big" answer that makes no sense (not smaller than what was sent): a black hole at this size.
      sawLost = true;
      hi = size - 1;
    }
    if (lo !== null && lo >= hi) return done(lo);
    if (lo === null) {
      // Nothing got through yet: the reported MTU as is, else the floor (or less, after a report below it).
      if (!reported && size <= floor) return done(null);
      size = reported ? hi : Math.min(floor, hi);
      if (hi < MIN_REPORTED[opts.family]) return done(null);
      continue;
    }
    size = reported ? hi : lo + Math.ceil((hi - lo) / 2);
  }
  return done(lo);
}
