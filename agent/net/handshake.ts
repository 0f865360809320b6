/**
 * The connection handshake, as pure functions over byte messages (no sockets,
 * no clock), so it runs the same in unit tests, in the WebSocket transport and
 * in tests that play a raw client.
 *
 *   M1 client→server  [v][1] nonce24 secretbox_hello([v][1] eC)
 *   M2 server→client  [v][2] nonce24 secretbox_hello([v][2] eS) ‖ secretbox_hsS2C(idS)
 *   M3 client→server  [v][3] secretbox_hsC2S(idC)
 *   id = [len][name] idPub32 sig64 [admission], sig = ed25519 over (label ‖ transcript ‖ [len][name] idPub)
 *        the optional tail is the sender's admission (agent/admin/admission.ts): `at` as a
 *        big-endian u64 and the admin's signature over (name, idPub, at), 72 bytes; or, for
 *        an admission by invitation, its JSON (more than 72 bytes, at most 3000). Signed by
 *        the admin key (and anchor), it needs no cover from the identity signature; the
 *        receiver checks it.
 *   M4 server→client  the first data frame (frames.ts), empty: "your identity is accepted"
 *                     (sent by ws-connection.ts once the server has registered the peer)
 *
 * The hello boxes use a key derived from the overlay key: a stranger can
 * neither read nor forge them. Ephemeral X25519 keys give a fresh secret per
 * connection; every later key is HKDF(secret, salt = overlay auth key,
 * info = label ‖ transcript hash), so it needs both the overlay key and this
 * connection's ephemeral secrets. Identities sign the transcript, binding
 * name + idPub to this very session. No timestamps: clocks may disagree.
 */
import { NODE_NAME_RE as NAME } from '../../shared/node-name';
import nacl from 'tweetnacl';
import { HeptoError } from '../../shared/errors';
import { concatBytes, deriveSessionKey, isAllZero, OverlayKeys, sha256, utf8, wipe } from './crypto';
import { ed25519Sign, ed25519Verify, x25519, x25519KeyPair } from './curve';
import type { Identity } from './identity';
import type { AdmissionProof } from '../../shared/member';
import { admission } from '../gossip/validate';

/** 2: data frames are ChaCha20-Poly1305 (frames.ts); 1 sealed them with secretbox. The handshake is the same in both. */
export const PROTOCOL_VERSION = 2;
export const MSG_CLIENT_HELLO = 1;
export const MSG_SERVER_HELLO = 2;
export const MSG_CLIENT_FINISH = 3;

const NONCE = nacl.secretbox.nonceLength; // 24
const MAC = nacl.secretbox.overheadLength; // 16
const EPH = nacl.box.publicKeyLength; // 32
const HELLO_LEN = 2 + NONCE + MAC + 2 + EPH; // 76
const ZERO_NONCE = new Uint8Array(NONCE); // hs keys are used for exactly one message each

export interface HandshakeLocal {
  name: string;
  identity: Identity;
  /** This node's admission, if it has one: shown to the peer. */
  admission?: AdmissionProof;
}

const ADMISSION_LEN = 8 + 64;

/** What a completed handshake yields: the authenticated peer and the data keys of this connection. */
export interface SessionKeys {
  peerName: string;
  peerIdPub: string;
  /** The admission the peer showed (unchecked: the membership vets it). */
  peerAdmission?: AdmissionProof;
  /** Key for frames this side sends. */
  sendKey: Uint8Array;
  /** Key for frames this side receives. */
  recvKey: Uint8Array;
}

function fail(reason: string): HeptoError {
  return new HeptoError('PEER_AUTH_FAILED', reason);
}

export function checkName(name: string): string {
  if (!NAME.test(name)) {
    throw new HeptoError('CONFIG_INVALID', `node name ${JSON.stringify(name.slice(0, 64))} cannot be used on the wire`, {
      hint: 'use a lowercase name of letters, digits and "-", at most 63 characters (a DNS label), as the config requires',
    });
  }
  return name;
}

function sealHello(keys: OverlayKeys, type: number, eph: Uint8Array): Uint8Array {
  const nonce = nacl.randomBytes(NONCE);
  const box = nacl.secretbox(concatBytes(Uint8Array.of(PROTOCOL_VERSION, type), eph), nonce, keys.hello);
  return concatBytes(Uint8Array.of(PROTOCOL_VERSION, type), nonce, box);
}

function openHello(keys: OverlayKeys, type: number, msg: Uint8Array, who: string): Uint8Array {
  if (msg.length < HELLO_LEN) throw fail(`${who} hello is too short`);
  // A plausible newer version is worth naming; any other first byte is just garbage (reason below).
  if (msg[0] > PROTOCOL_VERSION && msg[0] < 16) {
    throw fail(`${who} speaks protocol version ${msg[0]}, this agent speaks ${PROTOCOL_VERSION}: upgrade this agent`);
  }
  if (msg[0] >= 1 && msg[0] < PROTOCOL_VERSION) {
    throw fail(`${who} speaks protocol version ${msg[0]}, older than this agent's ${PROTOCOL_VERSION}: upgrade the agent on that machine`);
  }
  if (msg[0] === PROTOCOL_VERSION && msg[1] !== type) throw fail(`${who} sent a message of the wrong type where a hello was expected`);
  const plain = nacl.secretbox.open(msg.subarray(2 + NONCE, HELLO_LEN), msg.subarray(2, 2 + NONCE), keys.hello);
  if (!plain) throw fail(`${who} hello does not open: probably a different overlay key`);
  if (plain.length !== 2 + EPH || plain[0] !== PROTOCOL_VERSION || plain[1] !== type) {
    throw fail(`${who} hello has an unexpected layout`);
  }
  return plain.subarray(2);
}

function sharedSecret(ownSecret: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  const s = x25519(ownSecret, peerPublic);
  if (!s || isAllZero(s)) throw fail('peer sent a degenerate ephemeral key');
  return s;
}

function idBody(local: HandshakeLocal): Uint8Array {
  const name = utf8(local.name);
  return concatBytes(Uint8Array.of(name.length), name, local.identity.publicKey);
}

/** Longest admission tail: one by invitation is JSON of about a kilobyte; the pre-auth frame limit is 4 KiB. */
const MAX_ADMISSION_TAIL = 3000;

function admissionBytes(a: AdmissionProof | undefined): Uint8Array {
  if (!a) return new Uint8Array(0);
  if (a.inv) {
    const json = new Uint8Array(Buffer.from(JSON.stringify({ at: a.at, sig: a.sig, inv: a.inv }), 'utf8'));
    return json.length > ADMISSION_LEN && json.length <= MAX_ADMISSION_TAIL ? json : new Uint8Array(0);
  }
  const sig = Buffer.from(a.sig, 'base64');
  if (sig.length !== 64 || !Number.isSafeInteger(a.at) || a.at < 0) return new Uint8Array(0);
  const out = new Uint8Array(ADMISSION_LEN);
  new DataView(out.buffer).setBigUint64(0, BigInt(a.at));
  out.set(sig, 8);
  return out;
}

function parseAdmission(tail: Uint8Array): AdmissionProof | undefined {
  if (tail.length > ADMISSION_LEN) {
    // An admission by invitation, as JSON; a malformed one counts as none (the peer is then not admitted).
    try {
      return admission(JSON.parse(Buffer.from(tail).toString('utf8')), 'handshake admission');
    } catch {
      return undefined;
    }
  }
  if (tail.length !== ADMISSION_LEN) return undefined;
  const at = new DataView(tail.buffer, tail.byteOffset, 8).getBigUint64(0);
  if (at > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { at: Number(at), sig: Buffer.from(tail.subarray(8)).toString('base64') };
}

function signedId(local: HandshakeLocal, label: string, transcript: Uint8Array): Uint8Array {
  const body = idBody(local);
  const sig = ed25519Sign(concatBytes(utf8(label), transcript, body), local.identity.secretKey);
  return concatBytes(body, sig, admissionBytes(local.admission));
}

function verifyId(plain: Uint8Array, label: string, transcript: Uint8Array, who: string): { name: string; idPub: string; admission?: AdmissionProof } {
  const len = plain[0] ?? 0;
  const base = 1 + len + 32 + 64;
  if (plain.length !== base && plain.length < base + ADMISSION_LEN) throw fail(`${who} identity block has an unexpected length`);
  if (plain.length > base + MAX_ADMISSION_TAIL) throw fail(`${who} identity block is too long`);
  const name = Buffer.from(plain.subarray(1, 1 + len)).toString('utf8');
  if (!NAME.test(name)) throw fail(`${who} claims a name that is not allowed on the wire`);
  const body = plain.subarray(0, 1 + len + 32);
  const idPub = plain.subarray(1 + len, 1 + len + 32);
  const sig = plain.subarray(1 + len + 32, base);
  if (!ed25519Verify(concatBytes(utf8(label), transcript, body), sig, idPub)) {
    throw fail(`${who} ${JSON.stringify(name)} did not prove its identity (bad signature)`);
  }
  const admission = parseAdmission(plain.subarray(base));
  return admission ? { name, idPub: Buffer.from(idPub).toString('base64'), admission } : { name, idPub: Buffer.from(idPub).toString('base64') };
}

function dataKeys(secret: Uint8Array, keys: OverlayKeys, th3: Uint8Array): { c2s: Uint8Array; s2c: Uint8Array } {
  return {
    c2s: deriveSessionKey(secret, keys.auth, 'hepto/v1/data c2s', th3),
    s2c: deriveSessionKey(secret, keys.auth, 'hepto/v1/data s2c', th3),
  };
}

/** The dialing side. Call hello(), send it, then finish(M2) and send the returned message. */
export class ClientHandshake {
  private readonly eph = x25519KeyPair();
  private m1: Uint8Array | undefined;
  private done = false;

  constructor(
    private readonly keys: OverlayKeys,
    private readonly local: HandshakeLocal,
  ) {
    checkName(local.name);
  }

  hello(): Uint8Array {
    if (this.m1) throw new Error('ClientHandshake.hello() called twice');
    this.m1 = sealHello(this.keys, MSG_CLIENT_HELLO, this.eph.publicKey);
    return this.m1;
  }

  /** Checks the server's M2; returns M3 to send and the session. Throws PEER_AUTH_FAILED. */
  finish(m2: Uint8Array): { message: Uint8Array; session: SessionKeys } {
    if (!this.m1 || this.done) throw new Error('ClientHandshake.finish() out of order');
    this.done = true;
    try {
      const ePeer = openHello(this.keys, MSG_SERVER_HELLO, m2, 'server');
      const secret = sharedSecret(this.eph.secretKey, ePeer);
      const th1 = sha256(utf8('hepto/v1/th1'), this.m1, m2.subarray(0, HELLO_LEN));
      const s2c = deriveSessionKey(secret, this.keys.auth, 'hepto/v1/hs s2c', th1);
      const c2s = deriveSessionKey(secret, this.keys.auth, 'hepto/v1/hs c2s', th1);
      const idBox = m2.subarray(HELLO_LEN);
      const idPlain = nacl.secretbox.open(idBox, ZERO_NONCE, s2c);
      if (!idPlain) throw fail('server identity does not open: it does not share this overlay key');
      const peer = verifyId(idPlain, 'hepto/v1/sig server', th1, 'server');
      const th2 = sha256(th1, idBox);
      const m3 = concatBytes(
        Uint8Array.of(PROTOCOL_VERSION, MSG_CLIENT_FINISH),
        nacl.secretbox(signedId(this.local, 'hepto/v1/sig client', th2), ZERO_NONCE, c2s),
      );
      const k = dataKeys(secret, this.keys, sha256(th2, m3));
      wipe(secret);
      wipe(s2c);
      wipe(c2s);
      return {
        message: m3,
        session: { peerName: peer.name, peerIdPub: peer.idPub, ...(peer.admission ? { peerAdmission: peer.admission } : {}), sendKey: k.c2s, recvKey: k.s2c },
      };
    } finally {
      wipe(this.eph.secretKey);
    }
  }
}

/**
 * The accepting side. respond(M1) → M2, then complete(M3) → session.
 * `keys` is the ring of overlay keys taken, the current one first: during a
 * key rotation's grace the previous key opens hellos too (docs/trust.md), and
 * the whole handshake then runs under the key that opened the hello.
 */
export class ServerHandshake {
  private readonly eph = x25519KeyPair();
  private state: { secret: Uint8Array; c2s: Uint8Array; th2: Uint8Array } | undefined;
  private stage = 0;
  private readonly ring: OverlayKeys[];
  private keys: OverlayKeys;
  /** Which key of the ring opened the client's hello (0: the current one). */
  keyIndex = 0;

  constructor(
    keys: OverlayKeys | OverlayKeys[],
    private readonly local: HandshakeLocal,
  ) {
    checkName(local.name);
    this.ring = Array.isArray(keys) ? keys : [keys];
    if (this.ring.length === 0) throw new Error('ServerHandshake needs at least one overlay key');
    this.keys = this.ring[0] as OverlayKeys;
  }

  /** Opens the hello with the first key of the ring that opens it; the error of the current key otherwise. */
  private openWithRing(m1: Uint8Array): Uint8Array {
    let first: unknown;
    for (let i = 0; i < this.ring.length; i++) {
      try {
        const e = openHello(this.ring[i] as OverlayKeys, MSG_CLIENT_HELLO, m1, 'client');
        this.keyIndex = i;
        this.keys = this.ring[i] as OverlayKeys;
        return e;
      } catch (err) {
        first ??= err;
      }
    }
    throw first;
  }

  respond(m1: Uint8Array): Uint8Array {
    if (this.stage !== 0) throw fail('client sent a second hello');
    this.stage = 1;
    try {
      if (m1.length !== HELLO_LEN) throw fail(`client hello has the wrong length (expected ${HELLO_LEN} bytes)`);
      const ePeer = this.openWithRing(m1);
      const secret = sharedSecret(this.eph.secretKey, ePeer);
      const m2a = sealHello(this.keys, MSG_SERVER_HELLO, this.eph.publicKey);
      const th1 = sha256(utf8('hepto/v1/th1'), m1, m2a);
      const s2c = deriveSessionKey(secret, this.keys.auth, 'hepto/v1/hs s2c', th1);
      const c2s = deriveSessionKey(secret, this.keys.auth, 'hepto/v1/hs c2s', th1);
      const idBox = nacl.secretbox(signedId(this.local, 'hepto/v1/sig server', th1), ZERO_NONCE, s2c);
      wipe(s2c);
      this.state = { secret, c2s, th2: sha256(th1, idBox) };
      return concatBytes(m2a, idBox);
    } finally {
      wipe(this.eph.secretKey);
    }
  }

  complete(m3: Uint8Array): SessionKeys {
    if (this.stage !== 1 || !this.state) throw fail('client finish arrived out of order');
    this.stage = 2;
    const { secret, c2s, th2 } = this.state;
    this.state = undefined;
    try {
      if (m3.length < 2 + MAC || m3[0] !== PROTOCOL_VERSION || m3[1] !== MSG_CLIENT_FINISH) {
        throw fail('client finish is malformed');
      }
      const idPlain = nacl.secretbox.open(m3.subarray(2), ZERO_NONCE, c2s);
      if (!idPlain) throw fail('client identity does not open: it does not share this overlay key');
      const peer = verifyId(idPlain, 'hepto/v1/sig client', th2, 'client');
      const k = dataKeys(secret, this.keys, sha256(th2, m3));
      return { peerName: peer.name, peerIdPub: peer.idPub, ...(peer.admission ? { peerAdmission: peer.admission } : {}), sendKey: k.s2c, recvKey: k.c2s };
    } finally {
      wipe(secret);
      wipe(c2s);
    }
  }
}
