/**
 * Admissions: the admin key's statement that a node name belongs to one
 * identity. Signed body (purpose "admission", agent/admin/key.ts):
 *
 *     { "node": <name>, "id_pub": <base64 identity key, as in records>, "at": <ms> }
 *
 * Where admin_pub is configured, a member is only accepted under a name with
 * a valid admission for its identity; for one name the admission with the
 * greatest `at` wins, so re-admitting a reinstalled machine shuts the old
 * identity out. A member carries its own admission (`at` and `sig`) in its
 * record and in the handshake; `admit` spreads new ones by gossip.
 * docs/trust.md.
 */
import { NODE_NAME_RE as NODE_RE } from '../../shared/node-name';
import { HeptoError } from '../../shared/errors';
import { PUBLIC_KEY_PREFIX, formatPublicKey, parsePublicKey } from '../../shared/public-key';
import type { AdmissionProof, InvitedProof } from '../../shared/member';
import { canonicalJson } from '../../shared/canonical-json';
import { ed25519Sign, ed25519Verify } from '../net/curve';
import { useProblem } from './invitation';
import { adminSign, adminVerify, type AdminKey } from './key';

/** What a member shows of its own admission: the node name and identity are its own. */
export type { AdmissionProof };

export interface Admission extends AdmissionProof {
  node: string;
  /** base64 identity public key, the record's `id_pub` form. */
  id_pub: string;
}

/**
 * A removal has the very shape of an admission, signed for the purpose
 * "removal": the admin takes `id_pub`'s name away as of `at`. Members refuse
 * that identity from then on, unless a newer admission brings it back.
 */
export type Removal = Admission;
type Binding = 'admission' | 'removal';

function sign(key: AdminKey, purpose: Binding, node: string, idPub: string, at: number): Admission {
  return { node, id_pub: idPub, at, sig: adminSign(key, purpose, { node, id_pub: idPub, at }) };
}

export function signAdmission(key: AdminKey, node: string, idPub: string, at: number): Admission {
  return sign(key, 'admission', node, idPub, at);
}

export function signRemoval(key: AdminKey, node: string, idPub: string, at: number): Removal {
  return sign(key, 'removal', node, idPub, at);
}

// Verified bindings, keyed by signature, with what they bind: every member
// sees the same admissions in every record and handshake. Bounded; a hit
// needs the identical purpose and binding, so it cannot be abused.
const verified = new Map<string, string>();
const MAX_VERIFIED = 4096;

function verify(adminPub: string, purpose: Binding, a: Admission): boolean {
  const key = `${purpose}\0${adminPub}\0${a.node}\0${a.id_pub}\0${a.at}`;
  if (verified.get(a.sig) === key) return true;
  if (!Number.isSafeInteger(a.at) || a.at < 0) return false;
  const ok = adminVerify(adminPub, purpose, { node: a.node, id_pub: a.id_pub, at: a.at }, a.sig);
  if (ok) {
    if (verified.size >= MAX_VERIFIED) verified.clear();
    verified.set(a.sig, key);
  }
  return ok;
}

/** True when `adminPub` (text form) signed this admission; never throws. */
export function verifyAdmission(adminPub: string, a: Admission): boolean {
  return verify(adminPub, 'admission', a);
}

/** True when `adminPub` signed this removal; never throws. */
export function verifyRemoval(adminPub: string, r: Removal): boolean {
  return verify(adminPub, 'removal', r);
}

/** What the granting anchor signs for an admission by invitation. */
function grantBytes(inv: InvitedProof, node: string, idPub: string, at: number): Uint8Array {
  return new Uint8Array(Buffer.from(`hepto-invitation-grant-v1\0${canonicalJson({ id: inv.body.id, node, id_pub: idPub, at, use_sig: inv.use_sig })}`, 'utf8'));
}

/** The anchor's signature granting `inv` to (node, idPub) at `at`, with its identity's 64-byte secret key. */
export function signGrant(inv: InvitedProof, node: string, idPub: string, at: number, anchorSecretKey: Uint8Array): string {
  return Buffer.from(ed25519Sign(grantBytes(inv, node, idPub, at), anchorSecretKey)).toString('base64');
}

/**
 * Why an admission by invitation does not bind (node, idPub) for adminPub,
 * or null: the admin signed the invitation, its key signed the use, an
 * anchor the admin admitted granted it before the expiry. Counting uses is
 * the membership's (agent/gossip/invitations.ts).
 */
export function invitedProblem(adminPub: string, a: Admission & { inv: InvitedProof }): string | null {
  const inv = a.inv;
  const use = useProblem(adminPub, { body: inv.body, sig: inv.body_sig, node: a.node, id_pub: a.id_pub, at: inv.use_at, use_sig: inv.use_sig });
  if (use) return use;
  if (!Number.isSafeInteger(a.at) || a.at >= inv.body.exp) return `it was granted after the invitation's expiry (${new Date(inv.body.exp).toISOString()})`;
  if (!verifyAdmission(adminPub, { node: inv.anchor, id_pub: inv.anchor_id, at: inv.anchor_adm.at, sig: inv.anchor_adm.sig })) {
    return `the anchor "${inv.anchor}" that granted it is not admitted by this cluster's admin key`;
  }
  const pub = new Uint8Array(Buffer.from(inv.anchor_id, 'base64'));
  const sig = new Uint8Array(Buffer.from(a.sig, 'base64'));
  if (pub.length !== 32 || sig.length !== 64 || !ed25519Verify(grantBytes(inv, a.node, a.id_pub, a.at), sig, pub))
    return `the grant is not signed by the anchor "${inv.anchor}"`;
  return null;
}

/** True when the proof binds (node, idPub) for adminPub: an admin admission, or a granted invitation (uses not counted here). */
export function verifyProof(adminPub: string, node: string, idPub: string, proof: AdmissionProof): boolean {
  const a: Admission = { node, id_pub: idPub, ...proof };
  if (!proof.inv) return verifyAdmission(adminPub, a);
  const key = `invited\0${adminPub}\0${node}\0${idPub}\0${proof.at}`;
  if (verified.get(proof.sig) === key) return true;
  const ok = invitedProblem(adminPub, a as Admission & { inv: InvitedProof }) === null;
  if (ok) {
    if (verified.size >= MAX_VERIFIED) verified.clear();
    verified.set(proof.sig, key);
  }
  return ok;
}

/** The identity key as people type it: `ed25519:<base64>` (same text form as admin_pub). */
export function identityText(idPub: string): string {
  return PUBLIC_KEY_PREFIX + idPub;
}

/** Parses `--identity`: the text form above; returns the record's base64 form. */
export function parseIdentityText(text: string, where = '--identity'): string {
  const p = parsePublicKey(text.trim());
  if (!p.ok) {
    throw new HeptoError('USAGE', `${where} ${p.why}`, {
      hint: 'give the full identity key as status --json shows it ("id_pub") or as the refused machine prints it, e.g. ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=',
    });
  }
  return formatPublicKey(p.key).slice(PUBLIC_KEY_PREFIX.length);
}

/** The command an admin runs to admit this name and identity. */
export function admitCommand(node: string, idPub: string): string {
  return `hepto-agent admit ${node} --identity ${identityText(idPub)}`;
}

const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** Checks an admission (or removal: `what`) that came as JSON (the control socket); throws USAGE naming the field. */
export function admissionFromJson(v: unknown, what: Binding = 'admission'): Admission {
  const bad = (field: string, why: string): never => {
    throw new HeptoError('USAGE', `${what} field "${field}" ${why}`, { hint: `make ${what}s with hepto-agent ${what === 'admission' ? 'admit' : 'remove'}` });
  };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad('(whole)', 'is not an object');
  const o = v as Record<string, unknown>;
  if (typeof o.node !== 'string' || !NODE_RE.test(o.node)) bad('node', 'is not a node name (a DNS label)');
  if (typeof o.id_pub !== 'string' || o.id_pub.length !== 44 || !B64_RE.test(o.id_pub)) bad('id_pub', 'is not a base64 ed25519 public key');
  if (typeof o.at !== 'number' || !Number.isSafeInteger(o.at) || o.at < 0) bad('at', 'is not a time in ms');
  if (typeof o.sig !== 'string' || o.sig.length !== 88 || !B64_RE.test(o.sig)) bad('sig', 'is not a base64 ed25519 signature');
  return { node: o.node as string, id_pub: o.id_pub as string, at: o.at as number, sig: o.sig as string };
}
