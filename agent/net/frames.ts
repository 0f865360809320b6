/**
 * Authenticated data frames of an established connection (protocol version 2):
 *
 *   [0x10] counter(8, big-endian) ciphertext tag(16)
 *
 * ChaCha20-Poly1305 (RFC 8439, OpenSSL through node:crypto) under this
 * direction's key, nonce = 4 zero bytes ‖ counter, and the 9-byte header as
 * associated data. Each direction of each connection has its own key
 * (handshake.ts), so the counter alone makes every nonce unique. The receiver
 * accepts only counters greater than the last one it accepted: a replayed,
 * duplicated or reordered frame is refused. A frame from another connection
 * does not open at all.
 *
 * Native, not tweetnacl's secretbox (version 1): the agent runs with V8's
 * optimising compiler off (agent/node-flags.ts), where secretbox costs about
 * 0.2 s per MB each way (docs/upstream.md, N2), which a member holding the
 * key could make every agent pay for each large message it sends.
 */
import { createCipheriv, createDecipheriv } from 'crypto';
import { HeptoError } from '../../shared/errors';

export const MSG_DATA = 0x10;
const HEADER = 1 + 8;
const TAG = 16;
const KEY = 32;

function nonceFor(counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(counter, 4);
  return n;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY) throw new HeptoError('INTERNAL', `a frame key is ${KEY} bytes, not ${key.length}`);
}

/** Raised for any frame that must end the connection; the message is the reason (no key material). */
export function frameRejected(reason: string): HeptoError {
  return new HeptoError('FRAME_REJECTED', reason);
}

export class FrameSealer {
  private counter = 0n;
  constructor(private readonly key: Uint8Array) {
    checkKey(key);
  }

  seal(payload: Uint8Array): Uint8Array {
    this.counter += 1n;
    if (this.counter >= 0xffff_ffff_ffff_ffffn) throw frameRejected('frame counter exhausted; reconnect');
    const out = Buffer.allocUnsafe(HEADER + payload.length + TAG);
    out[0] = MSG_DATA;
    out.writeBigUInt64BE(this.counter, 1);
    const c = createCipheriv('chacha20-poly1305', this.key, nonceFor(this.counter), { authTagLength: TAG });
    c.setAAD(out.subarray(0, HEADER), { plaintextLength: payload.length });
    const body = c.update(payload);
    body.copy(out, HEADER);
    // A stream cipher: final() adds nothing, update() gave the whole ciphertext.
    c.final();
    c.getAuthTag().copy(out, HEADER + payload.length);
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }

  /** Number of frames sealed so far (the last counter used). */
  get sent(): bigint {
    return this.counter;
  }
}

export class FrameOpener {
  private last = 0n;
  constructor(private readonly key: Uint8Array) {
    checkKey(key);
  }

  /** Returns the payload, or throws FRAME_REJECTED with the reason. */
  open(frame: Uint8Array): Uint8Array {
    if (frame.length < HEADER + TAG) throw frameRejected('frame too short');
    if (frame[0] !== MSG_DATA) throw frameRejected('unexpected frame type');
    const f = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const counter = f.readBigUInt64BE(1);
    // Stable reason text (no numbers): status groups refusals by reason.
    if (counter <= this.last) throw frameRejected('replayed or reordered frame');
    const d = createDecipheriv('chacha20-poly1305', this.key, nonceFor(counter), { authTagLength: TAG });
    d.setAAD(f.subarray(0, HEADER), { plaintextLength: f.length - HEADER - TAG });
    d.setAuthTag(f.subarray(f.length - TAG));
    const plain = d.update(f.subarray(HEADER, f.length - TAG));
    try {
      d.final();
    } catch {
      throw frameRejected('frame does not authenticate (tampered, or from another connection)');
    }
    this.last = counter;
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.length);
  }
}
