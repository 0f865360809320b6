/**
 * Key rotations (issue 13): `hepto-agent rotate-keys` makes a new overlay key
 * and a new k3s agent token and seals them, in one box per admitted member,
 * to that member's identity (seal.ts). Each box travels alone, signed by the
 * admin key for the purpose "rotation" over
 *
 *     { id, at, switch_at, grace_until, node, id_pub, box }
 *
 * so a member that gets only its own box (it was off, and catches up at its
 * first sync) knows the whole schedule: it switches to the new keys at
 * `switch_at` (every member at once, for wesher's single key), and until
 * `grace_until` its listener still takes the old overlay key from admitted
 * identities. Of two rotations, the greater `at` wins. docs/trust.md.
 */
import { NODE_NAME_RE as NODE_RE } from '../../shared/node-name';
import { randomBytes } from 'crypto';
import { HeptoError } from '../../shared/errors';
import { OVERLAY_KEY_LENGTH } from '../net/crypto';
import { adminSign, adminVerify, type AdminKey } from './key';
import { openSealed, sealTo } from './seal';

export interface RotationSchedule {
  /** 12 base64 characters, random: names the rotation in logs, status and sync hashes. */
  id: string;
  /** When the admin made it, ms: the newest rotation wins. */
  at: number;
  /** When every member moves to the new keys, ms. */
  switch_at: number;
  /** Until when listeners still take the old overlay key from admitted identities, ms. */
  grace_until: number;
}

export interface RotationBox extends RotationSchedule {
  node: string;
  /** The member's identity key (base64, as in records) the box is sealed to. */
  id_pub: string;
  /** base64 sealed box (seal.ts) holding RotatedKeys as JSON. */
  box: string;
  /** The admin key's signature over everything above. */
  sig: string;
}

/** What a box holds. */
export interface RotatedKeys {
  overlay_key: string;
  /** The new k3s agent token; null where the cluster has none. */
  agent_key: string | null;
}

const ID_RE = /^[A-Za-z0-9+/]{12}$/;
const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
/** A box of two 32-character keys in JSON is about 230 base64 characters; room for growth, not for abuse. */
export const MAX_BOX_CHARS = 600;

/** A new schedule: switch in `switchInMs`, old overlay key taken for `graceMs` after the switch. */
export function newSchedule(now: number, switchInMs: number, graceMs: number): RotationSchedule {
  const switchAt = now + switchInMs;
  return { id: randomBytes(9).toString('base64'), at: now, switch_at: switchAt, grace_until: switchAt + graceMs };
}

function body(b: Omit<RotationBox, 'sig'>): Omit<RotationBox, 'sig'> {
  return { id: b.id, at: b.at, switch_at: b.switch_at, grace_until: b.grace_until, node: b.node, id_pub: b.id_pub, box: b.box };
}

/** Seals `keys` to (node, idPub) and signs the box; null when idPub has no X25519 form (not a usable identity). */
export function signRotationBox(key: AdminKey, s: RotationSchedule, node: string, idPub: string, keys: RotatedKeys): RotationBox | null {
  const plain = new Uint8Array(Buffer.from(JSON.stringify({ overlay_key: keys.overlay_key, agent_key: keys.agent_key }), 'utf8'));
  const box = sealTo(idPub, plain);
  plain.fill(0);
  if (box === null) return null;
  const unsigned = body({ ...s, node, id_pub: idPub, box });
  return { ...unsigned, sig: adminSign(key, 'rotation', unsigned) };
}

/** True when adminPub (text form) signed this box; never throws. */
export function verifyRotationBox(adminPub: string, b: RotationBox): boolean {
  return adminVerify(adminPub, 'rotation', body(b), b.sig);
}

/** Opens a box with this identity's 64-byte secret key; null when it does not open or does not hold two keys. */
export function openRotationBox(edSecret: Uint8Array, b: RotationBox): RotatedKeys | null {
  const plain = openSealed(edSecret, b.box);
  if (!plain) return null;
  try {
    const v = JSON.parse(Buffer.from(plain).toString('utf8')) as Record<string, unknown>;
    const ok = (k: unknown): boolean => typeof k === 'string' && k.length === OVERLAY_KEY_LENGTH;
    if (!ok(v.overlay_key) || !(v.agent_key === null || ok(v.agent_key))) return null;
    return { overlay_key: v.overlay_key as string, agent_key: v.agent_key as string | null };
  } catch {
    return null;
  } finally {
    plain.fill(0);
  }
}

/** Why a schedule is unusable, or null: times in order, an id of the right shape. */
export function scheduleProblem(s: RotationSchedule): string | null {
  if (!ID_RE.test(s.id)) return 'its id is not 12 base64 characters';
  for (const f of ['at', 'switch_at', 'grace_until'] as const) if (!Number.isSafeInteger(s[f]) || s[f] < 0) return `its ${f} is not a time in ms`;
  if (s.switch_at < s.at || s.grace_until < s.switch_at) return 'its times are out of order (at ≤ switch_at ≤ grace_until)';
  return null;
}

/** Checks a box that came as JSON (the control socket); throws USAGE naming the field. */
export function rotationBoxFromJson(v: unknown): RotationBox {
  const bad = (field: string, why: string): never => {
    throw new HeptoError('USAGE', `rotation field "${field}" ${why}`, { hint: 'make rotations with hepto-agent rotate-keys' });
  };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad('(whole)', 'is not an object');
  const o = v as Record<string, unknown>;
  if (typeof o.id !== 'string' || !ID_RE.test(o.id)) bad('id', 'is not 12 base64 characters');
  for (const f of ['at', 'switch_at', 'grace_until'])
    if (typeof o[f] !== 'number' || !Number.isSafeInteger(o[f]) || (o[f] as number) < 0) bad(f, 'is not a time in ms');
  if (typeof o.node !== 'string' || !NODE_RE.test(o.node)) bad('node', 'is not a node name (a DNS label)');
  if (typeof o.id_pub !== 'string' || o.id_pub.length !== 44 || !B64_RE.test(o.id_pub)) bad('id_pub', 'is not a base64 ed25519 public key');
  if (typeof o.box !== 'string' || o.box.length > MAX_BOX_CHARS || !B64_RE.test(o.box)) bad('box', `is not base64 of at most ${MAX_BOX_CHARS} characters`);
  if (typeof o.sig !== 'string' || o.sig.length !== 88 || !B64_RE.test(o.sig)) bad('sig', 'is not a base64 ed25519 signature');
  const b = body(o as unknown as RotationBox);
  const problem = scheduleProblem(b);
  if (problem) bad('switch_at', `: the rotation is unusable: ${problem}`);
  return { ...b, sig: o.sig as string };
}
