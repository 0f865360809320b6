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
  /** Sockets not yet authenticated, per source IP, before new ones are closed at once. */
  maxPendingPerSource: number;
  /** Sockets not yet authenticated, in total, before new ones are closed at once. */
  maxPendingTotal: number;
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
  // Honest peers open one connection each (two for a moment when both sides
  // dial at once); 8 leaves room for several agents behind one NAT.
  maxPendingPerSource: 8,
  // Bounds file descriptors and memory a flood from many sources can take
  // while still admitting a whole cluster reconnecting after a restart.
  maxPendingTotal: 256,
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
