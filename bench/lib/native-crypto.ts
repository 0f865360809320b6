/**
 * EXPERIMENT ONLY (bench --native-crypto): swaps tweetnacl's pure-JavaScript
 * ed25519 and X25519 for Node's built-in (OpenSSL) ones, inside this bench
 * process, to show how much of the in-process figures is curve arithmetic.
 * The results are byte-identical (ed25519 signatures are deterministic, X25519
 * is a pure function), which `checkNativeCrypto` verifies before use. The
 * agent itself is not changed by this.
 */
import * as crypto from 'crypto';
import nacl from 'tweetnacl';

const ED_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const X_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

// Key objects are cached as a native implementation in the agent would keep them:
// the identity key once, peers' public keys by value, ephemeral keys by their array.
const edPrivCache = new WeakMap<Uint8Array, crypto.KeyObject>();
const edPubCache = new Map<string, crypto.KeyObject>();
const xPrivCache = new WeakMap<Uint8Array, crypto.KeyObject>();

function edPrivate(secretKey: Uint8Array): crypto.KeyObject {
  let k = edPrivCache.get(secretKey);
  if (!k) {
    k = crypto.createPrivateKey({ key: Buffer.concat([ED_PKCS8, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
    edPrivCache.set(secretKey, k);
  }
  return k;
}

function edPublic(pub: Uint8Array): crypto.KeyObject {
  const id = Buffer.from(pub).toString('base64');
  let k = edPubCache.get(id);
  if (!k) {
    k = crypto.createPublicKey({ key: Buffer.concat([ED_SPKI, pub]), format: 'der', type: 'spki' });
    if (edPubCache.size > 10_000) edPubCache.clear();
    edPubCache.set(id, k);
  }
  return k;
}

function xPrivate(sk: Uint8Array): crypto.KeyObject {
  return xPrivCache.get(sk) ?? crypto.createPrivateKey({ key: Buffer.concat([X_PKCS8, sk]), format: 'der', type: 'pkcs8' });
}

function xPublicRaw(key: crypto.KeyObject): Uint8Array {
  return new Uint8Array(crypto.createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(X_SPKI.length));
}

/** Throws unless the native functions give exactly tweetnacl's results. */
function checkNativeCrypto(sign: typeof nacl.sign.detached, verify: typeof nacl.sign.detached.verify, mult: typeof nacl.scalarMult): void {
  const kp = nacl.sign.keyPair();
  const msg = nacl.randomBytes(100);
  const ref = nacl.sign.detached(msg, kp.secretKey);
  const got = sign(msg, kp.secretKey);
  if (Buffer.compare(Buffer.from(ref), Buffer.from(got)) !== 0 || !verify(msg, ref, kp.publicKey) || verify(msg, ref.map((b, i) => (i === 0 ? b ^ 1 : b)), kp.publicKey)) {
    throw new Error('native ed25519 does not match tweetnacl');
  }
  const a = nacl.box.keyPair();
  const b = nacl.box.keyPair();
  if (Buffer.compare(Buffer.from(nacl.scalarMult(a.secretKey, b.publicKey)), Buffer.from(mult(a.secretKey, b.publicKey))) !== 0) {
    throw new Error('native X25519 does not match tweetnacl');
  }
}

/** Patches the shared tweetnacl module object in this process. Returns a function that restores it. */
export function useNativeCurveCrypto(): () => void {
  const orig = { detached: nacl.sign.detached, scalarMult: nacl.scalarMult, boxKeyPair: nacl.box.keyPair };
  const detached = ((msg: Uint8Array, secretKey: Uint8Array) => new Uint8Array(crypto.sign(null, msg, edPrivate(secretKey)))) as typeof nacl.sign.detached;
  detached.verify = (msg: Uint8Array, sig: Uint8Array, pub: Uint8Array): boolean => {
    if (sig.length !== 64 || pub.length !== 32) return false;
    try {
      return crypto.verify(null, msg, edPublic(pub), sig);
    } catch {
      return false;
    }
  };
  const scalarMult = ((n: Uint8Array, p: Uint8Array) =>
    new Uint8Array(crypto.diffieHellman({ privateKey: xPrivate(n), publicKey: crypto.createPublicKey({ key: Buffer.concat([X_SPKI, p]), format: 'der', type: 'spki' }) }))) as typeof nacl.scalarMult;
  scalarMult.base = (n: Uint8Array) => xPublicRaw(xPrivate(n));
  Object.defineProperty(scalarMult, 'scalarLength', { value: orig.scalarMult.scalarLength });
  Object.defineProperty(scalarMult, 'groupElementLength', { value: orig.scalarMult.groupElementLength });
  checkNativeCrypto(detached, detached.verify, scalarMult);
  const boxKeyPair = (() => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
    const secretKey = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(X_PKCS8.length));
    xPrivCache.set(secretKey, privateKey);
    return { publicKey: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(X_SPKI.length)), secretKey };
  }) as typeof nacl.box.keyPair;
  boxKeyPair.fromSecretKey = orig.boxKeyPair.fromSecretKey;
  const mutable = nacl as unknown as { scalarMult: typeof nacl.scalarMult; sign: { detached: typeof nacl.sign.detached }; box: { keyPair: typeof nacl.box.keyPair } };
  mutable.sign.detached = detached;
  mutable.scalarMult = scalarMult;
  mutable.box.keyPair = boxKeyPair;
  return () => {
    mutable.sign.detached = orig.detached;
    mutable.scalarMult = orig.scalarMult;
    mutable.box.keyPair = orig.boxKeyPair;
  };
}
