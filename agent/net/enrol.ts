/**
 * Enrolment (issue 13; docs/protocol.md "Enrolment", docs/trust.md): a new
 * machine that holds only an invitation token, and so no overlay key, proves
 * to an anchor that it holds the invitation and receives the cluster's
 * secrets, boxed so that only it can read them. This module is pure: the
 * messages, their checks, the transcript, the keys and the boxes, with no
 * sockets and no clock (callers pass `now`), so both ends are unit-tested
 * without a network. enrol-server.ts and enrol-client.ts run it over a
 * WebSocket on the gossip port, path ENROL_PATH.
 *
 *   hello    client→anchor  {t:'hello', v:1, eph}
 *   anchor   anchor→client  {t:'anchor', eph, name, id_pub, admission:{at,sig}, sig}
 *   use      client→anchor  {t:'use', box: secretbox(K_c2s, {use, id_sig})}
 *   welcome  anchor→client  {t:'welcome', box: secretbox(K_s2c, {secrets, grant})}
 *   refused  anchor→client  {t:'refused', reason}
 *
 *   th1    = SHA-256(eC ‖ eA)
 *   sig    = ed25519(anchor identity, "hepto-enrol-v1 anchor" ‖ th1 ‖ canonical {name, id_pub})
 *   th2    = SHA-256(th1 ‖ sig)                          ("the transcript hash")
 *   K_x    = HKDF-SHA256(ikm = X25519(eC, eA), salt = "hepto-enrol-v1", info = "hepto-enrol-v1 c2s"|"s2c" ‖ th2)
 *   id_sig = ed25519(client identity, "hepto-enrol-v1 client" ‖ th2 ‖ canonical {node, id_pub})
 *
 * Each K_x seals exactly one message, so its nonce is 24 zero bytes.
 * Every failure is a HeptoError('PEER_AUTH_FAILED') whose message is one line
 * and never holds a key, a token or a secret.
 */
import { NODE_NAME_RE as NAME } from '../../shared/node-name';
import nacl from 'tweetnacl';
import { canonicalJson } from '../../shared/canonical-json';
import { HeptoError } from '../../shared/errors';
import type { AdmissionProof } from '../../shared/member';
import { parsePublicKey } from '../../shared/public-key';
import { verifyAdmission } from '../admin/admission';
import { useProblem, type Invitation, type InvitationUse } from '../admin/invitation';
import { concatBytes, deriveSessionKey, isAllZero, sha256, utf8, wipe } from './crypto';
import { ed25519Sign, ed25519Verify, x25519, x25519KeyPair } from './curve';
import type { Identity } from './identity';

/** The WebSocket path of enrolment on the gossip port (gossip itself is `/`). */
export const ENROL_PATH = '/enrol';
export const ENROL_VERSION = 1;
/** Largest enrolment message, either way, in bytes (the WebSocket payload). */
export const ENROL_MAX_MESSAGE = 8 * 1024;
/** Longest reason carried in a `refused` message or an error. */
export const ENROL_MAX_REASON = 300;

/** What a welcome hands the new machine. The anchor's policy fills it in. */
export interface EnrolSecrets {
  overlay_key: string;
  agent_key: string | null;
  cluster_key: string | null;
  admin_pub: string;
  master: string;
  anchors: string[];
}
/** The anchor's countersignature of the use it granted: produced by the policy, opaque here. */
export interface EnrolGrant {
  anchor: string;
  at: number;
  sig: string;
}
export type EnrolDecision = { ok: true; secrets: EnrolSecrets; grant: EnrolGrant } | { ok: false; reason: string };
/** What an anchor shows a new machine: who it is and the admin's admission of it. */
export interface EnrolAnchorSelf {
  name: string;
  identity: Identity;
  admission: AdmissionProof;
}

export interface EnrolHello {
  t: 'hello';
  v: number;
  /** base64 X25519 ephemeral public key. */
  eph: string;
}
export interface EnrolAnchorMessage {
  t: 'anchor';
  eph: string;
  name: string;
  /** base64 ed25519 identity key. */
  id_pub: string;
  /** Always sent; a message without one decodes, and the client refuses that anchor as not admitted. */
  admission?: AdmissionProof;
  /** base64 identity signature over the transcript (see above). */
  sig: string;
}
export interface EnrolUseMessage {
  t: 'use';
  box: string;
}
export interface EnrolWelcomeMessage {
  t: 'welcome';
  box: string;
}
export interface EnrolRefusedMessage {
  t: 'refused';
  reason: string;
}
export type EnrolMessage = EnrolHello | EnrolAnchorMessage | EnrolUseMessage | EnrolWelcomeMessage | EnrolRefusedMessage;
export type EnrolMessageType = EnrolMessage['t'];
const TYPES: readonly EnrolMessageType[] = ['hello', 'anchor', 'use', 'welcome', 'refused'];

const SALT = utf8('hepto-enrol-v1');
const LABEL_ANCHOR = 'hepto-enrol-v1 anchor';
const LABEL_CLIENT = 'hepto-enrol-v1 client';
const LABEL_C2S = 'hepto-enrol-v1 c2s';
const LABEL_S2C = 'hepto-enrol-v1 s2c';
/** Each box key seals exactly one message. */
const ZERO_NONCE = new Uint8Array(nacl.secretbox.nonceLength);
const MAC = nacl.secretbox.overheadLength;
/** Names as on the gossip wire (handshake.ts). */
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A one-line, bounded text: control characters become spaces. */
export function oneLine(text: string, max = ENROL_MAX_REASON): string {
  const flat = text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function enrolFailure(reason: string): HeptoError {
  return new HeptoError('PEER_AUTH_FAILED', oneLine(reason));
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Strict base64 of exactly `len` bytes (any length when undefined), or undefined. */
function fromB64(v: unknown, len?: number): Uint8Array | undefined {
  if (typeof v !== 'string' || v.length % 4 !== 0 || !B64.test(v)) return undefined;
  const bytes = new Uint8Array(Buffer.from(v, 'base64'));
  if (len !== undefined && bytes.length !== len) return undefined;
  if (b64(bytes) !== v) return undefined;
  return bytes;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isSafeTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

// ---------------------------------------------------------------- messages

/** The bytes of one message (JSON, for a binary frame). Throws if it exceeds ENROL_MAX_MESSAGE. */
export function encodeEnrolMessage(m: EnrolMessage): Uint8Array {
  const bytes = utf8(JSON.stringify(m));
  if (bytes.length > ENROL_MAX_MESSAGE)
    throw enrolFailure(`the ${m.t} message has ${bytes.length} bytes, more than the enrolment limit of ${ENROL_MAX_MESSAGE}`);
  return bytes;
}

function checkAdmission(v: unknown): AdmissionProof | undefined | null {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || !isSafeTime(v.at) || !fromB64(v.sig, 64)) return null;
  return { at: v.at, sig: v.sig as string };
}

/**
 * Parses one received message and checks its form. `expected` lists the
 * types that may come now; anything else is out of order. Throws
 * PEER_AUTH_FAILED with a one-line reason that never echoes the content.
 */
export function decodeEnrolMessage(data: Uint8Array, expected: readonly EnrolMessageType[], isBinary = true): EnrolMessage {
  if (!isBinary) throw enrolFailure('text frame where only binary frames are allowed');
  if (data.length > ENROL_MAX_MESSAGE) throw enrolFailure(`message of ${data.length} bytes exceeds the enrolment limit of ${ENROL_MAX_MESSAGE}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    throw enrolFailure('message is not JSON');
  }
  if (!isObject(raw)) throw enrolFailure('message is not a JSON object');
  const t = raw.t;
  if (typeof t !== 'string' || !(TYPES as readonly string[]).includes(t)) throw enrolFailure('message has no known type');
  const type = t as EnrolMessageType;
  if (!expected.includes(type)) {
    throw enrolFailure(`a "${type}" message arrived out of order (expected ${expected.map((e) => `"${e}"`).join(' or ')})`);
  }
  const bad = (field: string, why: string): never => {
    throw enrolFailure(`the ${type} message's ${field} ${why}`);
  };
  switch (type) {
    case 'hello': {
      if (typeof raw.v !== 'number' || !Number.isSafeInteger(raw.v)) bad('version', 'is missing');
      const v = raw.v as number;
      if (v !== ENROL_VERSION) {
        throw enrolFailure(
          `the client speaks enrolment version ${v}, this anchor speaks ${ENROL_VERSION}: upgrade ${v > ENROL_VERSION ? 'the anchor' : 'the client'}`,
        );
      }
      if (!fromB64(raw.eph, 32)) bad('eph', 'is not a base64 X25519 key');
      return { t: 'hello', v, eph: raw.eph as string };
    }
    case 'anchor': {
      if (!fromB64(raw.eph, 32)) bad('eph', 'is not a base64 X25519 key');
      if (typeof raw.name !== 'string' || !NAME.test(raw.name)) bad('name', 'is not a node name');
      if (!fromB64(raw.id_pub, 32)) bad('id_pub', 'is not a base64 ed25519 key');
      const admission = checkAdmission(raw.admission);
      if (admission === null) bad('admission', 'is malformed');
      if (!fromB64(raw.sig, 64)) bad('sig', 'is not a base64 ed25519 signature');
      const m: EnrolAnchorMessage = { t: 'anchor', eph: raw.eph as string, name: raw.name as string, id_pub: raw.id_pub as string, sig: raw.sig as string };
      if (admission) m.admission = admission;
      return m;
    }
    case 'use':
    case 'welcome': {
      const box = fromB64(raw.box);
      if (!box || box.length < MAC) bad('box', 'is not a base64 secretbox');
      return { t: type, box: raw.box as string };
    }
    case 'refused': {
      if (typeof raw.reason !== 'string') bad('reason', 'is not text');
      return { t: 'refused', reason: oneLine(raw.reason as string) || 'no reason given' };
    }
  }
}

// ---------------------------------------------------------------- transcript, keys, boxes

/** th1 = SHA-256(client eph ‖ anchor eph): what the anchor's identity signs. */
export function enrolTranscript(clientEph: Uint8Array, anchorEph: Uint8Array): Uint8Array {
  return sha256(clientEph, anchorEph);
}

/** The bytes the anchor's identity signs. */
export function anchorSignedBytes(th1: Uint8Array, name: string, idPub: string): Uint8Array {
  return concatBytes(utf8(LABEL_ANCHOR), th1, utf8(canonicalJson({ name, id_pub: idPub })));
}

/** th2 = SHA-256(th1 ‖ anchor signature): the transcript hash the keys and the client's signature bind. */
export function sessionTranscript(th1: Uint8Array, anchorSig: Uint8Array): Uint8Array {
  return sha256(th1, anchorSig);
}

/** The bytes the new machine's identity signs. */
export function clientSignedBytes(th2: Uint8Array, node: string, idPub: string): Uint8Array {
  return concatBytes(utf8(LABEL_CLIENT), th2, utf8(canonicalJson({ node, id_pub: idPub })));
}

/** Forgets one end's ephemeral secret and session keys. */
function wipeSession(eph: Uint8Array, keys: EnrolKeys | undefined): void {
  wipe(eph);
  wipe(keys?.c2s);
  wipe(keys?.s2c);
}

export interface EnrolKeys {
  /** Seals the use (client→anchor). */
  c2s: Uint8Array;
  /** Seals the welcome (anchor→client). */
  s2c: Uint8Array;
}

export function enrolKeys(secret: Uint8Array, th2: Uint8Array): EnrolKeys {
  return { c2s: deriveSessionKey(secret, SALT, LABEL_C2S, th2), s2c: deriveSessionKey(secret, SALT, LABEL_S2C, th2) };
}

/** base64 secretbox of `value`'s JSON under `key` (zero nonce: each key seals one message). */
export function sealEnrolBox(key: Uint8Array, value: unknown): string {
  return b64(nacl.secretbox(utf8(JSON.stringify(value)), ZERO_NONCE, key));
}

/** Opens a box sealed by sealEnrolBox; throws a one-line reason naming `what`. */
export function openEnrolBox(key: Uint8Array, box: string, what: string): unknown {
  const bytes = fromB64(box);
  const plain = bytes && bytes.length >= MAC ? nacl.secretbox.open(bytes, ZERO_NONCE, key) : null;
  if (!plain) throw enrolFailure(`the ${what} does not open: tampered with, or sealed for another connection`);
  try {
    return JSON.parse(Buffer.from(plain).toString('utf8'));
  } catch {
    throw enrolFailure(`the ${what} is not JSON`);
  } finally {
    wipe(plain);
  }
}

function sharedSecret(own: Uint8Array, peer: Uint8Array, who: string): Uint8Array {
  const s = x25519(own, peer);
  if (!s || isAllZero(s)) throw enrolFailure(`the ${who} sent a degenerate ephemeral key`);
  return s;
}

// ---------------------------------------------------------------- checks of the boxed contents

/** The shape of a use as it came out of a box; its signatures are useProblem's to check. Throws a one-line reason. */
export function checkUseShape(v: unknown): InvitationUse {
  const bad = (field: string): never => {
    throw enrolFailure(`the use's ${field} is malformed`);
  };
  if (!isObject(v)) return bad('(whole)');
  const body = v.body;
  if (!isObject(body)) bad('body');
  const b = body as Record<string, unknown>;
  if (typeof b.id !== 'string' || !/^[0-9a-f]{16}$/.test(b.id) || !isSafeTime(b.exp) || typeof b.admin_pub !== 'string' || typeof b.inv_pub !== 'string')
    bad('body');
  if (!fromB64(v.sig, 64)) bad('sig');
  if (typeof v.node !== 'string' || !NAME.test(v.node)) bad('node');
  if (!fromB64(v.id_pub, 32)) bad('id_pub');
  if (!isSafeTime(v.at)) bad('at');
  if (!fromB64(v.use_sig, 64)) bad('use_sig');
  return {
    body: body as unknown as InvitationUse['body'],
    sig: v.sig as string,
    node: v.node as string,
    id_pub: v.id_pub as string,
    at: v.at as number,
    use_sig: v.use_sig as string,
  };
}

const MAX_SECRET = 1024;
function isShortText(v: unknown, max = 300): v is string {
  return typeof v === 'string' && v.length <= max && !/[\u0000-\u001f\u007f]/.test(v);
}

/**
 * Checks a welcome's contents: the secrets' and grant's shapes, and that its
 * admin_pub is the invitation's. Reasons name fields, never their values.
 */
export function checkWelcome(v: unknown, adminPub: string): { secrets: EnrolSecrets; grant: EnrolGrant } {
  const bad = (field: string, why = 'is malformed'): never => {
    throw enrolFailure(`the welcome's ${field} ${why}`);
  };
  if (!isObject(v)) return bad('(whole)');
  const s = v.secrets;
  const g = v.grant;
  if (!isObject(s)) return bad('secrets');
  if (!isObject(g)) return bad('grant');
  if (typeof s.overlay_key !== 'string' || s.overlay_key.length !== 32) bad('overlay_key');
  for (const k of ['agent_key', 'cluster_key'] as const) {
    if (s[k] !== null && !(typeof s[k] === 'string' && (s[k] as string).length > 0 && (s[k] as string).length <= MAX_SECRET)) bad(k);
  }
  if (typeof s.admin_pub !== 'string' || !parsePublicKey(s.admin_pub).ok) bad('admin_pub');
  if (s.admin_pub !== adminPub) bad('admin_pub', "is not the invitation's");
  if (!isShortText(s.master, 253)) bad('master');
  if (!Array.isArray(s.anchors) || s.anchors.length > 64 || !s.anchors.every((a) => isShortText(a) && a.length > 0)) bad('anchors');
  if (!isShortText(g.anchor, 253) || !isSafeTime(g.at) || !isShortText(g.sig, 512)) bad('grant');
  return {
    secrets: {
      overlay_key: s.overlay_key as string,
      agent_key: s.agent_key as string | null,
      cluster_key: s.cluster_key as string | null,
      admin_pub: s.admin_pub as string,
      master: s.master as string,
      anchors: [...(s.anchors as string[])],
    },
    grant: { anchor: g.anchor as string, at: g.at as number, sig: g.sig as string },
  };
}

// ---------------------------------------------------------------- the two ends

/**
 * The new machine's side of one enrolment attempt, with one anchor:
 * hello() → send; onAnchor(reply) → send the use; onWelcome(reply) → secrets.
 * `anchor` is the address dialed, for reasons.
 */
export class EnrolClient {
  private readonly eph = x25519KeyPair();
  private keys: EnrolKeys | undefined;
  private stage: 'new' | 'hello' | 'use' | 'done' = 'new';
  /** The anchor's name and identity, once it proved both. */
  anchorName: string | undefined;
  anchorIdPub: string | undefined;
  /** The anchor's own admission, checked: the new machine's admission by invitation names it. */
  anchorAdmission: AdmissionProof | undefined;

  constructor(private readonly o: { invitation: Invitation; identity: Identity; use: InvitationUse; anchor: string }) {}

  hello(): EnrolHello {
    if (this.stage !== 'new') throw new Error('EnrolClient.hello() called twice');
    this.stage = 'hello';
    return { t: 'hello', v: ENROL_VERSION, eph: b64(this.eph.publicKey) };
  }

  /**
   * Checks that the anchor signed this very transcript with its identity, and
   * that the invitation's admin key admitted that identity under its name.
   * Only then does the use leave this machine.
   */
  onAnchor(m: EnrolAnchorMessage): EnrolUseMessage {
    if (this.stage !== 'hello') throw enrolFailure('an anchor message arrived out of order');
    this.stage = 'use';
    const where = `anchor ${this.o.anchor}`;
    try {
      const aEph = fromB64(m.eph, 32);
      const aId = fromB64(m.id_pub, 32);
      const sig = fromB64(m.sig, 64);
      if (!aEph || !aId || !sig) throw enrolFailure(`${where} sent a malformed anchor message`);
      const th1 = enrolTranscript(this.eph.publicKey, aEph);
      if (!ed25519Verify(anchorSignedBytes(th1, m.name, m.id_pub), sig, aId)) {
        throw enrolFailure(`${where} did not prove its identity (bad signature over the transcript: a man in the middle, or not a hepto agent)`);
      }
      const adm = m.admission;
      if (!adm || !verifyAdmission(this.o.invitation.body.admin_pub, { node: m.name, id_pub: m.id_pub, at: adm.at, sig: adm.sig })) {
        throw enrolFailure(`${where} is not an admitted member of the invitation's cluster`);
      }
      const secret = sharedSecret(this.eph.secretKey, aEph, 'anchor');
      const th2 = sessionTranscript(th1, sig);
      this.keys = enrolKeys(secret, th2);
      wipe(secret);
      this.anchorName = m.name;
      this.anchorIdPub = m.id_pub;
      this.anchorAdmission = { at: adm.at, sig: adm.sig };
      const use = this.o.use;
      const idSig = ed25519Sign(clientSignedBytes(th2, use.node, use.id_pub), this.o.identity.secretKey);
      return { t: 'use', box: sealEnrolBox(this.keys.c2s, { use, id_sig: b64(idSig) }) };
    } finally {
      wipe(this.eph.secretKey);
    }
  }

  /** Opens and checks the welcome. */
  onWelcome(m: EnrolWelcomeMessage): { secrets: EnrolSecrets; grant: EnrolGrant } {
    if (this.stage !== 'use' || !this.keys) throw enrolFailure('a welcome arrived out of order');
    this.stage = 'done';
    try {
      return checkWelcome(openEnrolBox(this.keys.s2c, m.box, 'welcome'), this.o.invitation.body.admin_pub);
    } finally {
      this.wipe();
    }
  }

  wipe(): void {
    wipeSession(this.eph.secretKey, this.keys);
  }
}

/**
 * The anchor's side of one enrolment: onHello(hello) → send the anchor
 * message; openUse(use, now) → the checked, authenticated use for the
 * policy; welcome(secrets, grant) → send.
 */
export class EnrolAnchor {
  private readonly eph = x25519KeyPair();
  private keys: EnrolKeys | undefined;
  private th2: Uint8Array | undefined;
  private stage: 'new' | 'use' | 'decided' | 'done' = 'new';

  constructor(
    private readonly self: EnrolAnchorSelf,
    private readonly adminPub: string,
  ) {}

  onHello(m: EnrolHello): EnrolAnchorMessage {
    if (this.stage !== 'new') throw enrolFailure('a second hello arrived');
    this.stage = 'use';
    try {
      const cEph = fromB64(m.eph, 32);
      if (!cEph) throw enrolFailure("the hello message's eph is not a base64 X25519 key");
      const secret = sharedSecret(this.eph.secretKey, cEph, 'client');
      const th1 = enrolTranscript(cEph, this.eph.publicKey);
      const { name, identity, admission } = this.self;
      const sig = ed25519Sign(anchorSignedBytes(th1, name, identity.idPub), identity.secretKey);
      this.th2 = sessionTranscript(th1, sig);
      this.keys = enrolKeys(secret, this.th2);
      wipe(secret);
      return { t: 'anchor', eph: b64(this.eph.publicKey), name, id_pub: identity.idPub, admission: { at: admission.at, sig: admission.sig }, sig: b64(sig) };
    } finally {
      wipe(this.eph.secretKey);
    }
  }

  /**
   * Opens the use and checks, in order: its form; the client's identity
   * signature over the transcript, by the very id_pub and node of the use
   * (it holds the identity it enrols); useProblem (admin signature,
   * invitation key's signature, name, use time); and the expiry by this
   * anchor's clock (`now`), since the use's `at` is the client's word.
   */
  openUse(m: EnrolUseMessage, now: number): InvitationUse {
    if (this.stage !== 'use' || !this.keys || !this.th2) throw enrolFailure('a use arrived out of order');
    this.stage = 'decided';
    const inner = openEnrolBox(this.keys.c2s, m.box, 'use');
    wipe(this.keys.c2s);
    if (!isObject(inner)) throw enrolFailure('the use is not a JSON object');
    const use = checkUseShape(inner.use);
    const idSig = fromB64(inner.id_sig, 64);
    if (!idSig) throw enrolFailure("the use's id_sig is not a base64 ed25519 signature");
    if (!ed25519Verify(clientSignedBytes(this.th2, use.node, use.id_pub), idSig, new Uint8Array(Buffer.from(use.id_pub, 'base64')))) {
      throw enrolFailure('the client did not prove it holds the identity key it enrols (bad identity signature)');
    }
    let problem: string | null;
    try {
      problem = useProblem(this.adminPub, use);
    } catch {
      problem = 'its invitation is malformed';
    }
    if (problem !== null) throw enrolFailure(`the invitation use is not valid: ${problem}`);
    if (now >= use.body.exp) throw enrolFailure(`the invitation expired on ${new Date(use.body.exp).toISOString()} (by the anchor's clock)`);
    return use;
  }

  /** The sealed welcome. */
  welcome(secrets: EnrolSecrets, grant: EnrolGrant): EnrolWelcomeMessage {
    if (this.stage !== 'decided' || !this.keys) throw enrolFailure('a welcome was made out of order');
    this.stage = 'done';
    try {
      return { t: 'welcome', box: sealEnrolBox(this.keys.s2c, { secrets, grant }) };
    } finally {
      this.wipe();
    }
  }

  wipe(): void {
    wipeSession(this.eph.secretKey, this.keys);
  }
}
