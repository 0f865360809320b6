/**
 * The errors every Transport gives for a send it could not make, so that the
 * real and the in-memory transports speak the same contract.
 */
import { HeptoError } from '../../shared/errors';
import type { Destination } from './transport';

export function stoppedError(): HeptoError {
  return new HeptoError('TRANSPORT_STOPPED', 'transport is stopped', {
    hint: 'the agent is stopping and sends nothing more; seen while it runs, it is a bug',
  });
}

export function oversizedError(bytes: number, limit: number): HeptoError {
  return new HeptoError('FRAME_REJECTED', `payload of ${bytes} bytes exceeds the frame limit of ${limit} bytes`);
}

/**
 * `problems` holds one "address: what went wrong" entry per address tried; the
 * flags say whether any address refused us by name, by admission, or in the
 * handshake. The code follows the most telling of them: NOT_ADMITTED,
 * NAME_CONFLICT, PEER_AUTH_FAILED, else PEER_UNREACHABLE.
 */
export function unreachableError(
  to: Destination,
  problems: string[],
  why: { nameConflict?: boolean; notAdmitted?: boolean; authFailed?: boolean; selfLoop?: boolean } = {},
): HeptoError {
  const { nameConflict = false, notAdmitted = false, authFailed = false, selfLoop = false } = why;
  const who = to.name !== undefined ? `peer "${to.name}"` : 'anchor';
  const all = to.addresses.length === 0 ? [...problems, 'no address known'] : problems;
  if (notAdmitted) {
    return new HeptoError('NOT_ADMITTED', `cannot reach ${who}: ${all.join('; ')}`, {
      hint: "this node's identity is not admitted under its name: status shows the admit command an admin runs",
    });
  }
  if (nameConflict) {
    return new HeptoError('NAME_CONFLICT', `cannot reach ${who}: ${all.join('; ')}`, {
      hint: 'two machines use the same node name with different identities: rename one of them (config field "node")',
    });
  }
  if (authFailed) {
    return new HeptoError('PEER_AUTH_FAILED', `cannot reach ${who}: ${all.join('; ')}`, {
      hint: 'the peer answered but the handshake failed: check that both have the same overlay_key (during a key rotation, that both took it)',
    });
  }
  const e = new HeptoError('PEER_UNREACHABLE', `cannot reach ${who}: ${all.join('; ')}`, {
    hint: 'check that the peer runs, that the address and port are right, and that its gossip port is reachable from here (hepto-agent doctor)',
  });
  if (selfLoop) SELF_LOOPS.add(e);
  return e;
}

const SELF_LOOPS = new WeakSet<Error>();

/** A send whose every address led back to this agent: an anchor listed under one of this machine's own names. */
export function isSelfLoop(e: unknown): boolean {
  return e instanceof Error && SELF_LOOPS.has(e);
}

/** The answer at an address was somebody else than the peer we meant. */
export function wrongPeer(addr: string, to: Destination, got: string): string | null {
  return to.name !== undefined && got !== to.name ? `${addr}: answered as "${got}", not "${to.name}"` : null;
}

/** What a refused node says of the peer that refused it, by the word the peer gave. */
export function refusedByReason(why: string): string {
  if (why === 'removed') return 'it says the admin removed this identity from the cluster';
  if (why === 'superseded') return 'it says a newer admission gave this node name to another identity';
  return 'it does not admit our identity under our name';
}
