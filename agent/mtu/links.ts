/**
 * Per-peer link facts for the `paths` record field (issue 15), from what the
 * gossip shell sees go by: the gossip probes (pings) it sends, their acks,
 * and the connections. Pure bookkeeping; the caller gives the times.
 * - rtt_ms: the last direct probe's round trip (ping sent → ack from that
 *   very peer), in whole ms;
 * - up: a gossip connection to the peer is open (it sent us something and
 *   no disconnection since), or its last probe was answered (an ack after
 *   the last ping, or the last ping is younger than ANSWER_WAIT_MS).
 */
export const ANSWER_WAIT_MS = 5_000;
/** Pings kept waiting for their ack: older or more are forgotten. */
const MAX_PENDING = 256;
const PENDING_MS = 30_000;
/** Peers tracked at most: a sender that is not a member yet gets an entry only below this (membersChanged() drops non-members). */
const MAX_LINKS = 4096;

interface Link {
  connected: boolean;
  /** It sent us something over an authenticated connection at least once. */
  met: boolean;
  rtt: number | null;
  lastAck: number | null;
  /** The first ping sent since the last ack; null: none outstanding. */
  unansweredSince: number | null;
}

export interface LinkView {
  up: boolean;
  rtt_ms: number | null;
  /** It talked to this agent directly at least once (see met()). */
  met: boolean;
}

export class PeerLinks {
  private readonly links = new Map<string, Link>();
  private readonly pending = new Map<number, { name: string; at: number }>();

  private link(name: string): Link {
    let l = this.links.get(name);
    if (!l) {
      l = { connected: false, met: false, rtt: null, lastAck: null, unansweredSince: null };
      this.links.set(name, l);
    }
    return l;
  }

  /** A gossip ping (seq) went to `name`. */
  pingSent(name: string, seq: number, now: number): void {
    const l = this.link(name);
    if (l.unansweredSince === null) l.unansweredSince = now;
    this.pending.set(seq, { name, at: now });
    if (this.pending.size > MAX_PENDING) {
      for (const [s, p] of this.pending) if (p.at < now - PENDING_MS || this.pending.size > MAX_PENDING) this.pending.delete(s);
    }
  }

  /** An ack (seq) arrived from `from`: a round trip when it answers our ping to that same peer. */
  ackReceived(from: string, seq: number, now: number): void {
    const p = this.pending.get(seq);
    if (!p || p.name !== from) return;
    this.pending.delete(seq);
    const l = this.link(from);
    l.rtt = Math.max(0, Math.round(now - p.at));
    l.lastAck = now;
    l.unansweredSince = null;
  }

  /** Something arrived from `name` over an authenticated connection. */
  heard(name: string): void {
    if (this.links.size >= MAX_LINKS && !this.links.has(name)) return;
    const l = this.link(name);
    l.connected = l.met = true;
  }

  /** Whether `name` ever talked to this agent directly (over an authenticated connection of its own). */
  met(name: string): boolean {
    return this.links.get(name)?.met === true;
  }

  disconnected(name: string): void {
    const l = this.links.get(name);
    if (l) l.connected = false;
  }

  view(name: string, now: number): LinkView {
    const l = this.links.get(name);
    if (!l) return { up: false, rtt_ms: null, met: false };
    const answered = l.lastAck !== null && (l.unansweredSince === null || now - l.unansweredSince < ANSWER_WAIT_MS);
    return { up: l.connected || answered, rtt_ms: l.rtt, met: l.met };
  }

  /** Drops what is known of peers not in `names` (gone members). */
  retain(names: Set<string>): void {
    for (const name of [...this.links.keys()]) if (!names.has(name)) this.links.delete(name);
  }
}
