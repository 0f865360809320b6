/**
 * Invitations (issue 13; design in docs/trust.md): the admin key signs, for
 * the purpose "invitation", a body naming a fresh invitation key; the token
 * carries that body, the admin's signature and the invitation key's private
 * seed. A new machine proves its use by signing {invitation id, node,
 * id_pub, at} with the invitation key, which any member checks with
 * admin_pub alone.
 *
 * Token text: `hepto1.<body>.<admin signature>.<seed>`, each part base64url
 * without padding; the body is the canonical JSON of InvitationBody. This
 * module is pure: parsing never throws anything but a HeptoError whose
 * message is one line naming what is wrong, and never repeats the seed.
 */
import { NODE_NAME_RE as NODE_RE } from '../../shared/node-name';
import { randomBytes } from 'crypto';
import { canonicalJson } from '../../shared/canonical-json';
import { HeptoError } from '../../shared/errors';
import { PUBLIC_KEY_PREFIX, parsePublicKey } from '../../shared/public-key';
import { ed25519KeyPair, ed25519PublicOf, ed25519Sign, ed25519Verify } from '../net/curve';
import { adminSign, adminVerify, type AdminKey } from './key';
import type { InvitedProof } from '../../shared/member';

export const TOKEN_PREFIX = 'hepto1';
/** Longest lifetime an invitation may have: a token is a secret until spent or expired. */
export const MAX_TTL_MS = 30 * 24 * 3600_000;
export const MAX_USES = 1000;

/**
 * The signed body: version, a random id (16 hex digits: what uses are counted
 * by), the anchors to enrol through, admin_pub, the expiry (ms), the number
 * of uses, the only node name it admits if given, and the invitation key's
 * public half (base64). Defined with the record types, which carry it.
 */
export type InvitationBody = InvitedProof['body'];

export interface Invitation {
  body: InvitationBody;
  /** The admin's signature over the body, base64. */
  sig: string;
  /** The invitation key: 64-byte ed25519 secret key (seed ‖ public). Never printed. */
  secretKey: Uint8Array;
}

/** A use of an invitation: what the new machine signs with the invitation key. */
export interface InvitationUse {
  body: InvitationBody;
  /** The admin's signature over the body. */
  sig: string;
  node: string;
  id_pub: string;
  at: number;
  /** The invitation key's signature over {id, node, id_pub, at}, base64. */
  use_sig: string;
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function fromB64url(text: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw bad(`its ${what} is not base64url`);
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

/** Why an invitation cannot be used: a config problem (it comes from the field "invite"), never worth a retry. */
export function invalidInvitation(why: string): HeptoError {
  return new HeptoError('CONFIG_INVALID', `the invitation is not valid: ${why}`, { hint: 'ask the cluster admin for a new one (hepto-agent invite)' });
}

const bad = invalidInvitation;

export interface InviteOptions {
  anchors: string[];
  ttlMs: number;
  uses: number;
  node?: string;
}

/** A fresh invitation signed by the admin key. Checks the options, naming the flag that is wrong. */
export function makeInvitation(admin: AdminKey, o: InviteOptions, now: number): Invitation {
  if (!Number.isSafeInteger(o.ttlMs) || o.ttlMs <= 0 || o.ttlMs > MAX_TTL_MS)
    throw new HeptoError('USAGE', `--ttl must be more than 0 and at most ${MAX_TTL_MS / 86_400_000} days`);
  if (!Number.isSafeInteger(o.uses) || o.uses < 1 || o.uses > MAX_USES) throw new HeptoError('USAGE', `--uses must be a whole number from 1 to ${MAX_USES}`);
  if (o.node !== undefined && !NODE_RE.test(o.node))
    throw new HeptoError('USAGE', `--node "${o.node.slice(0, 64)}" is not a node name (lowercase letters, digits and dashes)`);
  if (o.anchors.length === 0) throw new HeptoError('USAGE', 'an invitation needs at least one anchor the new machine can reach');
  const kp = ed25519KeyPair();
  const body: InvitationBody = {
    v: 1,
    id: randomBytes(8).toString('hex'),
    anchors: [...o.anchors],
    admin_pub: admin.pub,
    exp: now + o.ttlMs,
    uses: o.uses,
    ...(o.node !== undefined ? { node: o.node } : {}),
    inv_pub: Buffer.from(kp.publicKey).toString('base64'),
  };
  return { body, sig: adminSign(admin, 'invitation', body), secretKey: kp.secretKey };
}

/** The one-string token: prefix, body, admin signature and the invitation key's seed. */
export function encodeInvitation(inv: Invitation): string {
  const body = new Uint8Array(Buffer.from(canonicalJson(inv.body), 'utf8'));
  return [TOKEN_PREFIX, b64url(body), b64url(new Uint8Array(Buffer.from(inv.sig, 'base64'))), b64url(inv.secretKey.subarray(0, 32))].join('.');
}

function checkBody(raw: unknown): InvitationBody {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('its body is not an object');
  const o = raw as Record<string, unknown>;
  if (o.v !== 1) throw bad(`it is of version ${JSON.stringify(o.v)}, this agent reads version 1: upgrade hepto-agent`);
  if (typeof o.id !== 'string' || !/^[0-9a-f]{16}$/.test(o.id)) throw bad('its id is malformed');
  if (
    !Array.isArray(o.anchors) ||
    o.anchors.length === 0 ||
    o.anchors.length > 16 ||
    !o.anchors.every((a) => typeof a === 'string' && a.length > 0 && a.length <= 300)
  ) {
    throw bad('its anchors are malformed');
  }
  if (typeof o.admin_pub !== 'string' || !parsePublicKey(o.admin_pub).ok) throw bad('its admin_pub is malformed');
  if (!Number.isSafeInteger(o.exp) || (o.exp as number) < 0) throw bad('its expiry is malformed');
  if (!Number.isSafeInteger(o.uses) || (o.uses as number) < 1 || (o.uses as number) > MAX_USES) throw bad('its number of uses is malformed');
  if (o.node !== undefined && (typeof o.node !== 'string' || !NODE_RE.test(o.node))) throw bad('its node name is malformed');
  if (typeof o.inv_pub !== 'string' || !parsePublicKey(PUBLIC_KEY_PREFIX + o.inv_pub).ok) throw bad('its invitation key is malformed');
  const body: InvitationBody = {
    v: 1,
    id: o.id,
    anchors: o.anchors as string[],
    admin_pub: o.admin_pub,
    exp: o.exp as number,
    uses: o.uses as number,
    inv_pub: o.inv_pub,
  };
  if (o.node !== undefined) body.node = o.node as string;
  return body;
}

/**
 * Parses a token and checks it: its form, the admin's signature (against
 * `adminPub` when the caller knows it, else against the body's own), that
 * the seed is the invitation key's, and the expiry. Throws a one-line reason.
 */
export function decodeInvitation(token: string, now: number, adminPub?: string): Invitation {
  const text = token.trim();
  const parts = text.split('.');
  if (parts[0] !== TOKEN_PREFIX || parts.length !== 4) throw bad(`it does not look like a hepto invitation (${TOKEN_PREFIX}.<body>.<signature>.<key>)`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(fromB64url(parts[1] as string, 'body')).toString('utf8'));
  } catch (e) {
    if (e instanceof HeptoError) throw e;
    throw bad('its body is not JSON');
  }
  const body = checkBody(raw);
  const sigBytes = fromB64url(parts[2] as string, 'signature');
  const seed = fromB64url(parts[3] as string, 'key');
  if (sigBytes.length !== 64) throw bad('its signature has the wrong length');
  if (seed.length !== 32) throw bad('its key has the wrong length');
  if (adminPub !== undefined && body.admin_pub !== adminPub) throw bad("it was made for another cluster (its admin_pub is not this cluster's)");
  const sig = Buffer.from(sigBytes).toString('base64');
  if (!adminVerify(body.admin_pub, 'invitation', body, sig)) throw bad('its signature does not verify: it was forged or changed');
  const secretKey = new Uint8Array(64);
  secretKey.set(seed, 0);
  const pub = ed25519PublicOf(secretKey);
  secretKey.set(pub, 32);
  if (Buffer.from(pub).toString('base64') !== body.inv_pub) throw bad('its key does not match the signed invitation key');
  if (now >= body.exp) throw bad(`it expired on ${new Date(body.exp).toISOString()}`);
  return { body, sig, secretKey };
}

function useBytes(id: string, node: string, idPub: string, at: number): Uint8Array {
  return new Uint8Array(Buffer.from(`hepto-invitation-use-v1\0${canonicalJson({ id, node, id_pub: idPub, at })}`, 'utf8'));
}

/** The new machine's use of the invitation for its name and identity. Throws if the invitation names another node. */
export function useInvitation(inv: Invitation, node: string, idPub: string, at: number): InvitationUse {
  if (inv.body.node !== undefined && inv.body.node !== node) {
    throw bad(`it is for node "${inv.body.node}", and this machine is "${node}": set node to "${inv.body.node}" or ask for an invitation without a name`);
  }
  const use_sig = Buffer.from(ed25519Sign(useBytes(inv.body.id, node, idPub, at), inv.secretKey)).toString('base64');
  return { body: inv.body, sig: inv.sig, node, id_pub: idPub, at, use_sig };
}

/**
 * Why a use is not valid for `adminPub`, or null. Checks the admin's
 * signature, the invitation key's signature, the name, and that `at` is
 * before the expiry. `at` is the new machine's word, so it cannot stop a
 * holder of an expired token from backdating it: the anchor checks the
 * expiry against its own clock when it grants the use (docs/trust.md).
 * Counting uses is the membership's.
 */
export function useProblem(adminPub: string, u: InvitationUse): string | null {
  if (u.body.admin_pub !== adminPub) return "it was made for another cluster (its admin_pub is not this cluster's)";
  if (!adminVerify(adminPub, 'invitation', u.body, u.sig)) return 'the invitation signature does not verify';
  if (u.body.node !== undefined && u.body.node !== u.node) return `the invitation is for node "${u.body.node}", not "${u.node}"`;
  if (!Number.isSafeInteger(u.at) || u.at >= u.body.exp) return `it was used after its expiry (${new Date(u.body.exp).toISOString()})`;
  const pub = new Uint8Array(Buffer.from(u.body.inv_pub, 'base64'));
  const sig = new Uint8Array(Buffer.from(u.use_sig, 'base64'));
  if (pub.length !== 32 || sig.length !== 64 || !ed25519Verify(useBytes(u.body.id, u.node, u.id_pub, u.at), sig, pub))
    return 'the use is not signed by the invitation key';
  return null;
}
