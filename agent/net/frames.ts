/**
 * Authenticated data frames of an established connection:
 *
 *   [0x10] counter(8, big-endian) secretbox(payload, nonce = 16 zero bytes ‖ counter, key)
 *
 * Each direction of each connection has its own key (handshake.ts), so the
 * counter alone makes every nonce unique. The receiver accepts only counters
 * greater than the last one it accepted: a replayed, duplicated or reordered
 * frame is refused. A frame from another connection does not open at all.
 */
import nacl from 'tweetnacl';
import { HeptoError } from '../../shared/errors';

export const MSG_DATA = 0x10;
const HEADER = 1 + 8;
const MAC = nacl.secretbox.overheadLength;

function nonceFor(counter: bigint): Uint8Array {
  const n = new Uint8Array(nacl.secretbox.nonceLength);
  new DataView(n.buffer).setBigUint64(16, counter, false);
  return n;
}

/** Raised for any frame that must end the connection; the message is the reason (no key material). */
export function frameRejected(reason: string): HeptoError {
  return new HeptoError('FRAME_REJECTED', reason);
}

export class FrameSealer {
  private counter = 0n;
  constructor(private readonly key: Uint8Array) {}

  seal(payload: Uint8Array): Uint8Array {
    this.counter += 1n;
    if (this.counter >= 0xffff_ffff_ffff_ffffn) throw frameRejected('frame counter exhausted; reconnect');
    const out = new Uint8Array(HEADER + MAC + payload.length);
    out[0] = MSG_DATA;
    new DataView(out.buffer).setBigUint64(1, this.counter, false);
    out.set(nacl.secretbox(payload, nonceFor(this.counter), this.key), HEADER);
    return out;
  }

  /** Number of frames sealed so far (the last counter used). */
  get sent(): bigint {
    return this.counter;
  }
}

export class FrameOpener {
  private last = 0n;
  constructor(private readonly key: Uint8Array) {}

  /** Returns the payload, or throws FRAME_REJECTED with the reason. */
  open(frame: Uint8Array): Uint8Array {
    if (frame.length < HEADER + MAC) throw frameRejected('frame too short');
    if (frame[0] !== MSG_DATA) throw frameRejected('unexpected frame type');
    const counter = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getBigUint64(1, false);
    // Stable reason text (no numbers): status groups refusals by reason.
    if (counter <= this.last) throw frameRejected('replayed or reordered frame');
    const plain = nacl.secretbox.open(frame.subarray(HEADER), nonceFor(counter), this.key);
    if (!plain) throw frameRejected('frame does not authenticate (tampered, or from another connection)');
    this.last = counter;
    return plain;
  }
}
