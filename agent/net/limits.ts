/**
 * Resource limits of the authenticated transport. Each one bounds what a
 * stranger (or a broken peer) can make the agent spend before it is refused.
 * Every limit can be overridden through the transport options (tests use
 * short timeouts); the defaults are what the daemon runs with.
 */
export interface Limits {
  /** Largest payload an authenticated peer may send in one frame, in bytes. */
  maxFrameBytes: number;
  /** Largest handshake message accepted from a socket that has not authenticated yet. */
  maxPreAuthFrameBytes: number;
  /** Time from TCP accept (or dial) until the handshake must be complete. */
  handshakeTimeoutMs: number;
  /** Time from TCP accept until the first byte arrives, else the socket is closed (an idle socket holds a slot for nothing). */
  firstBytesMs: number;
  /**
   * Sockets not yet authenticated per source before new ones from it are closed
   * at once. A source is an IPv4 address or an IPv6 /64 (whoever has one address
   * of a /64 usually has all of them); a known member's address is a source of its own.
   */
  maxPendingPerSource: number;
  /**
   * Sockets not yet authenticated from strangers (addresses no member records), in
   * total. A new one over it evicts the oldest socket of the source that holds the
   * most, rather than being refused: idle sockets cannot keep a newcomer out.
   */
  maxPendingTotal: number;
  /**
   * Sockets not yet authenticated from known members' addresses
   * (`WsTransportOptions.knownHost`): a pool of their own, on top of
   * maxPendingTotal, that strangers cannot use. Full, it evicts like the other.
   */
  maxPendingKnown: number;
  /** Authenticated connections in total, both directions; a new one over it is refused (close 4004). */
  maxAuthTotal: number;
  /**
   * Authenticated connections accepted from strangers (addresses no member
   * records), at most; the rest of maxAuthTotal is left to known members and to
   * our own dials, so a flood of fresh identities cannot cut this agent off.
   */
  maxAuthStrangers: number;
  /** Authenticated connections accepted per source (IPv4 address or IPv6 /64; a known member's address on its own). */
  maxAuthPerSource: number;
  /** Authenticated connections per identity key (under any names), both directions. */
  maxAuthPerIdentity: number;
  /** Interval of WebSocket pings on authenticated connections; a peer silent for two whole intervals is dropped. */
  keepaliveMs: number;
  /** Bytes queued towards one peer (not yet taken by TCP) beyond which sends to it fail. */
  maxBufferedBytes: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  // Gossip messages are a few KiB; a full membership sync of a few hundred
  // signed records stays well under this. 1 MiB bounds the memory one peer
  // can pin per frame (ws refuses larger frames from the header, unbuffered).
  maxFrameBytes: 1024 * 1024,
  // Handshake messages are under 600 bytes (keys, a DNS name, a signature).
  // 4 KiB leaves room for the future while keeping strangers cheap.
  maxPreAuthFrameBytes: 4 * 1024,
  // Three small messages over one round trip and a half; 5 s covers a slow
  // intercontinental link, and idle sockets do not linger.
  handshakeTimeoutMs: 5_000,
  // An honest dialer sends its HTTP upgrade in the same round trip as the
  // TCP handshake completes; 1 s covers a 500 ms RTT twice over, and an idle
  // socket (attack: hold slots without sending) lasts a fifth of the handshake
  // timeout.
  firstBytesMs: 1_000,
  // Honest peers open one connection each (two for a moment when both sides
  // dial at once); 8 leaves room for several agents behind one NAT or in one
  // /64. An IPv6 attacker has 2^64 addresses in its /64, so counting per
  // address would give it every slot.
  maxPendingPerSource: 8,
  // Bounds file descriptors and memory a flood from many sources can take
  // while still admitting a whole cluster reconnecting after a restart (a
  // handshake holds a slot for one round trip and a half). When it is full,
  // eviction of the busiest source's oldest socket lets a newcomer in.
  maxPendingTotal: 256,
  // Known members reconnecting all at once after this agent restarted: a
  // handshake holds a slot for milliseconds, so 64 at the same moment is more
  // than a 1,000-member cluster produces; strangers never touch these.
  maxPendingKnown: 64,
  // A 1,000-member full mesh is 999 connections per agent (one per pair, used
  // both ways), briefly up to twice that while pairs dial each other at once
  // or replace a stale connection. 2,048 fits that; each idle connection costs
  // about 25 KiB and one fd (measured: 1,500 cost 37 MiB and 1,521 fds), so
  // at most ~50 MiB and 2,048 fds.
  maxAuthTotal: 2_048,
  // Members behind NAT connect from addresses their records do not hold, so
  // strangers must fit a whole cluster too: 1,536 holds the 999 of a 1,000-member
  // mesh with room, and leaves 512 to known members and our own dials.
  maxAuthStrangers: 1_536,
  // One IPv4 address or /64 is one home, office or hosting subnet: 64 members
  // behind one of them is already a lot; a member whose record holds its own
  // address is counted on that address alone.
  maxAuthPerSource: 64,
  // One agent has one identity and one connection to us (two for a moment
  // when both sides dial at once); 4 leaves room for a restart while the old
  // connection is being replaced, and stops one key from holding many names.
  maxAuthPerIdentity: 4,
  // Detects a peer that vanished without closing TCP (cable cut, firewall
  // DROP) within two to three intervals (10-15 s, under SWIM's dead timeout);
  // costs a few bytes per interval.
  keepaliveMs: 5_000,
  // A member that stops reading must not make us queue without bound; 8 MiB
  // is several full-size frames, far above what gossip keeps in flight.
  maxBufferedBytes: 8 * 1024 * 1024,
});

/** Overhead a data frame adds to the payload on the wire: type byte, 8-byte counter, 16-byte MAC. */
export const FRAME_OVERHEAD = 1 + 8 + 16;

/** Default time a send waits for a connection to be dialed and authenticated. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5_000;

export function resolveLimits(over: Partial<Limits> | undefined): Limits {
  const out: Limits = { ...DEFAULT_LIMITS, ...(over ?? {}) };
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new RangeError(`transport limit ${k} must be a positive number, got ${String(v)}`);
    }
  }
  return out;
}
