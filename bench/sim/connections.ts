/**
 * Connection costs of the simulated transport: the connections each member
 * holds open and the handshakes it made. Kept apart from the network model so
 * that a change bounding the connections (an active view) is measured with the
 * same counting.
 *
 * The real transport (agent/net/ws-transport.ts) keeps one connection per
 * peer, opened by whichever side sends first and reused both ways, and never
 * closes an idle one; a connection closes when either end stops, crashes or
 * leaves (or its keepalive gives up). Every new connection costs one handshake.
 */

/**
 * Bytes of one handshake on the wire, from the message layout in
 * agent/net/handshake.ts (TCP/IP headers not counted, as elsewhere):
 * - HTTP upgrade request from the dialer: `GET / HTTP/1.1`, Host (a global
 *   IPv6 address and port), Connection, Upgrade, Sec-WebSocket-Version and
 *   Sec-WebSocket-Key (no extensions: perMessageDeflate is off): about 185 B;
 *   the answer `101 Switching Protocols` with Sec-WebSocket-Accept: 129 B;
 * - M1 (dialer): [v][1] nonce24 secretbox([v][1] eC32) = 76 B (HELLO_LEN);
 * - identity block: [len][name] idPub32 sig64, sealed (+16 B MAC), plus 72 B
 *   when the member shows an admission (`at` + the admin's signature);
 * - M2 (listener): a hello like M1 plus its sealed identity block;
 * - M3 (dialer): [v][3] plus its sealed identity block;
 * - M4 (listener): the first data frame, empty: 25 B of sealed-frame overhead;
 * - each message is one WebSocket binary frame: 2 B header, +2 over 125 B,
 *   +4 mask from the dialing side.
 * With a 12-character name and no admission: 402 B from the dialer and 361 B
 * from the listener, 763 B in all (907 B with admissions).
 */
export function handshakeBytes(o: { nameLength?: number; admission?: boolean } = {}): { dialer: number; listener: number } {
  const name = o.nameLength ?? 12;
  const ws = (len: number, masked: boolean): number => len + 2 + (len > 125 ? 2 : 0) + (masked ? 4 : 0);
  const hello = 2 + 24 + 16 + 2 + 32; // 76
  const idBox = 16 + 1 + name + 32 + 64 + (o.admission ? 72 : 0);
  const upgradeRequest = 185;
  const upgradeResponse = 129;
  const frameOverhead = 25; // agent/net/limits.ts FRAME_OVERHEAD
  return {
    dialer: upgradeRequest + ws(hello, true) + ws(2 + idBox, true),
    listener: upgradeResponse + ws(hello + idBox, false) + ws(frameOverhead, false),
  };
}

/** What the simulator counts for each handshake. */
export const HANDSHAKE_BYTES = handshakeBytes();

/** Totals of one member (cumulative since its slot was first used). */
export interface MemberConnections {
  /** Connections open now. */
  open: number;
  /** Handshakes made as the dialing side and as the listening side. */
  dialed: number;
  answered: number;
  /** Handshake bytes sent by this member. */
  handshakeBytesSent: number;
}

export interface OpenStats {
  members: number;
  mean: number;
  max: number;
}

/**
 * Per-member counters of open connections and handshakes. The network calls
 * `opened` when a new connection completes its handshake and `closed` when one
 * goes away; the counters never hold the pairs themselves (the network does),
 * so they cost nothing at 10,000 members.
 */
export class ConnectionLedger {
  private readonly open: number[] = [];
  private readonly dialed: number[] = [];
  private readonly answered: number[] = [];
  private readonly hsBytes: number[] = [];
  /** Connections ever opened (= handshakes) and closed, over all members. */
  readonly totals = { opened: 0, closed: 0 };

  constructor(readonly bytes: { dialer: number; listener: number } = HANDSHAKE_BYTES) {}

  /** A new connection from `dialer` to `listener`: one handshake. */
  opened(dialer: number, listener: number): void {
    this.bump(this.open, dialer, 1);
    this.bump(this.open, listener, 1);
    this.bump(this.dialed, dialer, 1);
    this.bump(this.answered, listener, 1);
    this.bump(this.hsBytes, dialer, this.bytes.dialer);
    this.bump(this.hsBytes, listener, this.bytes.listener);
    this.totals.opened++;
  }

  /** The connection between a and b closed (on both ends). */
  closed(a: number, b: number): void {
    this.bump(this.open, a, -1);
    this.bump(this.open, b, -1);
    this.totals.closed++;
  }

  openCount(i: number): number {
    return this.open[i] ?? 0;
  }

  member(i: number): MemberConnections {
    return { open: this.open[i] ?? 0, dialed: this.dialed[i] ?? 0, answered: this.answered[i] ?? 0, handshakeBytesSent: this.hsBytes[i] ?? 0 };
  }

  /** Handshake bytes sent so far by each member, for a later difference (see `since`). */
  snapshot(): number[] {
    return [...this.hsBytes];
  }

  /** Handshake bytes member i sent since `snap` was taken. */
  since(snap: number[], i: number): number {
    return (this.hsBytes[i] ?? 0) - (snap[i] ?? 0);
  }

  /** Open connections over the given members: mean and max. */
  openStats(members: Iterable<number>): OpenStats {
    let n = 0;
    let sum = 0;
    let max = 0;
    for (const i of members) {
      const c = this.open[i] ?? 0;
      n++;
      sum += c;
      if (c > max) max = c;
    }
    return { members: n, mean: n > 0 ? sum / n : 0, max };
  }

  private bump(a: number[], i: number, by: number): void {
    a[i] = (a[i] ?? 0) + by;
  }
}
