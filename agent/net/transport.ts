/**
 * The seam between membership and the network. The membership logic never
 * touches sockets; it asks a Transport to deliver opaque payloads to a named
 * peer. Two implementations honour the same contract and run the same
 * contract tests: the real WebSocket one (ws-transport.ts) and an in-memory
 * one (test/helpers/memory-transport.ts) for deterministic tests.
 */

import type { AdmissionProof } from '../../shared/member';
import { unreachableError, wrongPeer } from './send-errors';

/** Why the vet hook refuses a peer: a sentence for this side, and the word the peer is told (close reason of 4003). */
export interface VetRefusal {
  reason: string;
  tell: 'not admitted' | 'removed' | 'superseded';
}

/** Who is at the other end of an authenticated connection. */
export interface PeerInfo {
  /** Name the peer claimed in the handshake (bound to idPub by its signature). */
  name: string;
  /** base64 ed25519 identity public key the peer proved possession of. */
  idPub: string;
  /** Remote address as seen by the socket, e.g. "127.0.0.2:41234" (for logs). */
  remote: string;
  /** The admin's admission of name and idPub that the peer showed in the handshake, if any (not checked by the transport). */
  admission?: AdmissionProof;
}

export interface Destination {
  /** Expected peer name; undefined when dialing an anchor whose name is not known yet. */
  name?: string;
  /** host:port endpoints to try, in order. */
  addresses: string[];
}

export interface TransportEvents {
  /** An authenticated, decrypted payload from a peer. */
  message(from: PeerInfo, payload: Uint8Array): void;
  /**
   * An authenticated connection to/from a peer went away (peer crashed,
   * network cut...). `trimmed`: the peer closed it on purpose, its active view
   * being full (Transport.disconnect with trimmed): no sign of a failure.
   */
  disconnected(peer: PeerInfo, trimmed?: boolean): void;
  /**
   * Something was refused: wrong overlay key, replay, malformed or oversized frame,
   * handshake timeout, too many pending sockets. For logs and status; never contains key material.
   */
  rejected(info: { remote: string; reason: string; peer?: string }): void;
  /**
   * Asked once per authenticated connection, both ways: undefined to accept
   * the peer, or why it is refused (pinned names, agent/gossip/admissions.ts).
   * The transport then closes it with CLOSE_NOT_ADMITTED.
   */
  vet?(peer: PeerInfo): VetRefusal | undefined;
  /** This node's own admission, shown in every handshake; read at each one. */
  ownAdmission?(): AdmissionProof | undefined;
  /** A peer refused us as not admitted; `reason` is this side's sentence for it. */
  refusedBy?(info: { remote: string; reason: string; peer?: string }): void;
}

export interface Transport {
  /**
   * Delivers `payload` to the destination. Reuses an open authenticated
   * connection to `to.name` in either direction when there is one; otherwise
   * dials `to.addresses` in order until one completes the handshake.
   * Resolves once the frame is handed to the socket (not an end-to-end ack);
   * rejects when no address could be reached or authenticated within the
   * dial timeout. Payloads over the frame limit are rejected without sending.
   * Resolves with the PeerInfo of whoever received it.
   */
  send(to: Destination, payload: Uint8Array): Promise<PeerInfo>;
  /** Starts listening. Idempotent. */
  start(): Promise<void>;
  /** Closes the listener and every connection. Idempotent. */
  stop(): Promise<void>;
  /**
   * Drops the connection to a peer, if any (e.g. after it was declared dead).
   * `trimmed`: this node's active view is full (gossip/active-view.ts); the
   * peer is told so, and does not take it for a failure.
   */
  disconnect(name: string, trimmed?: boolean): void;
  /**
   * After a key rotation: dial with `primary`, take hellos under `primary` or
   * `accepted` (the previous key, during the grace). Transports without
   * overlay keys (test/helpers/memory-transport.ts) ignore it.
   */
  setKeys?(keys: { primary: string; accepted: string[] }): void;
  /** Bytes of frames sent and received (after encryption), for benchmarks. */
  stats(): { bytesSent: number; bytesReceived: number; connections: number };
}

/**
 * How dialling one address went: a connection and the name its peer proved, or why not.
 * `authFailed`: the address answered, but the handshake failed (another overlay key, a bad identity proof).
 * `self`: the address is this agent itself (one of this machine's names).
 */
export type Dialled<C> = { conn: C; peer: string } | { problem: string; nameConflict?: boolean; notAdmitted?: boolean; authFailed?: boolean; self?: boolean };

/**
 * The address-trying part of Transport.send, one for both transports: dials
 * `to.addresses` in order and delivers on the first connection whose peer is
 * `to.name` (anyone, when it is undefined); otherwise throws the unreachable
 * error with one problem per address. A `dial` that answers synchronously
 * keeps the whole send synchronous (the in-memory transport's ordering).
 */
export async function sendToAddresses<C>(
  to: Destination,
  dial: (addr: string) => Dialled<C> | Promise<Dialled<C>>,
  deliver: (conn: C) => PeerInfo,
): Promise<PeerInfo> {
  const problems: string[] = [];
  let conflict = false;
  let notAdmitted = false;
  let authFailed = false;
  let selfOnly = to.addresses.length > 0;
  for (const addr of to.addresses) {
    const pending = dial(addr);
    const d = pending instanceof Promise ? await pending : pending;
    if ('problem' in d) {
      problems.push(`${addr}: ${d.problem}`);
      conflict ||= d.nameConflict === true;
      notAdmitted ||= d.notAdmitted === true;
      authFailed ||= d.authFailed === true;
      selfOnly &&= d.self === true;
      continue;
    }
    const wrong = wrongPeer(addr, to, d.peer);
    if (wrong) {
      problems.push(wrong);
      selfOnly = false;
      continue;
    }
    return deliver(d.conn);
  }
  throw unreachableError(to, problems, { nameConflict: conflict, notAdmitted, authFailed, selfLoop: selfOnly });
}
