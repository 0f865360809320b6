/**
 * Field-by-field validation of decoded gossip messages. Builds fresh objects
 * holding only known fields, so nothing unexpected (extra keys, prototypes,
 * huge arrays) reaches the state machine.
 */
import { NODE_NAME_RE as NAME_RE } from '../../shared/node-name';
import { HeptoError } from '../../shared/errors';
import { UNSAFE_CHARS } from '../../shared/printable';
import type { AdmissionProof, HostFacts, InvitedProof, MemberRecord, NodeHealth, PathView, SignedRecord } from '../../shared/member';
import type { AdmissionUpdate, DigestEntry, GossipMessage, StateCode, SyncDigestMsg, SyncHashMsg, Update } from './messages';
import { MAX_BOX_CHARS } from '../admin/rotation';
import { LIMITS } from './messages';

const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

function reject(reason: string): never {
  throw new HeptoError('FRAME_REJECTED', `gossip message rejected: ${reason}`, {
    hint: 'the peer runs an incompatible or faulty agent; upgrade it to the same hepto-agent version',
  });
}

type Obj = Record<string, unknown>;

function obj(v: unknown, where: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) reject(`${where} must be an object`);
  return v as Obj;
}

function arr(v: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(v)) reject(`${where} must be an array`);
  if (v.length > max) reject(`${where} has ${v.length} entries (at most ${max})`);
  return v;
}

function str(v: unknown, where: string, max: number, min = 0): string {
  if (typeof v !== 'string') reject(`${where} must be a string`);
  if (v.length > max) reject(`${where} is longer than ${max} characters`);
  if (v.length < min) reject(`${where} is shorter than ${min} characters`);
  // Peer strings end up on root's terminal (status) and in the journal: no control characters.
  if (UNSAFE_CHARS.test(v)) reject(`${where} holds a control character`);
  return v;
}

function int(v: unknown, where: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) reject(`${where} must be an integer between 0 and ${max}`);
  return v;
}

export function name(v: unknown, where: string): string {
  const s = str(v, where, 63, 1);
  if (!NAME_RE.test(s)) reject(`${where} "${s}" is not a DNS label`);
  return s;
}

function b64(v: unknown, where: string, len: number): string {
  const s = str(v, where, len, len);
  if (!B64_RE.test(s)) reject(`${where} is not base64`);
  return s;
}

/** base64 of any length from 4 to `max` characters. */
function b64Up(v: unknown, where: string, max: number): string {
  const s = str(v, where, max, 4);
  if (!B64_RE.test(s)) reject(`${where} is not base64`);
  return s;
}

function strings(v: unknown, where: string, maxCount: number, maxLen: number): string[] {
  return arr(v, where, maxCount).map((x, i) => str(x, `${where}[${i}]`, maxLen, 1));
}

function facts(v: unknown): HostFacts {
  const o = obj(v, 'record.facts');
  return {
    cores: int(o.cores, 'record.facts.cores', 1_000_000),
    memory_mb: int(o.memory_mb, 'record.facts.memory_mb'),
    os: str(o.os, 'record.facts.os', LIMITS.longString),
    agent_version: str(o.agent_version, 'record.facts.agent_version', LIMITS.shortString),
  };
}

/** A map from member names to objects, at most `limit` entries; `each` reads one value (an object at `where.<name>`). */
function byName<T>(v: unknown, where: string, limit: number, each: (o: Record<string, unknown>, at: string) => T): Record<string, T> {
  const o = obj(v, where);
  const keys = Object.keys(o);
  if (keys.length > limit) reject(`${where} has ${keys.length} entries (at most ${limit})`);
  const out: Record<string, T> = Object.create(null) as Record<string, T>;
  for (const k of keys) {
    name(k, `${where} key`);
    out[k] = each(obj(o[k], `${where}.${k}`), `${where}.${k}`);
  }
  return { ...out };
}

function containers(v: unknown): Record<string, NodeHealth> {
  return byName(v, 'record.containers', LIMITS.containers, (h, at) => ({
    wesher: str(h.wesher, `${at}.wesher`, LIMITS.shortString),
    k3s: str(h.k3s, `${at}.k3s`, LIMITS.shortString),
  }));
}

function record(v: unknown): MemberRecord {
  const o = obj(v, 'record');
  const role = o.role;
  if (role !== 'master' && role !== 'node') reject('record.role must be "master" or "node"');
  const overlay = o.overlay_ip === null ? null : str(o.overlay_ip, 'record.overlay_ip', LIMITS.shortString);
  return {
    name: name(o.name, 'record.name'),
    role,
    addresses: strings(o.addresses, 'record.addresses', LIMITS.addresses, LIMITS.addressLength),
    node_ips: strings(o.node_ips, 'record.node_ips', LIMITS.nodeIps, LIMITS.shortString),
    overlay_ip: overlay,
    facts: facts(o.facts),
    containers: containers(o.containers),
    id_pub: b64(o.id_pub, 'record.id_pub', 44),
    created_at: int(o.created_at, 'record.created_at'),
    ...(o.admission === undefined ? {} : { admission: admission(o.admission) }),
    ...(o.k3s_ca === undefined ? {} : { k3s_ca: hex64(o.k3s_ca, 'record.k3s_ca') }),
    ...(o.keys === undefined ? {} : { keys: b64(o.keys, 'record.keys', 12) }),
    ...(o.paths === undefined ? {} : { paths: paths(o.paths) }),
  };
}

/** A record's `paths` (issue 15): member names to {up, rtt_ms, mtu}, bounded. */
function paths(v: unknown): Record<string, PathView> {
  return byName(v, 'record.paths', LIMITS.paths, (p, at) => {
    if (typeof p.up !== 'boolean') reject(`${at}.up must be true or false`);
    return {
      up: p.up,
      rtt_ms: p.rtt_ms === null ? null : int(p.rtt_ms, `${at}.rtt_ms`, 600_000),
      mtu: p.mtu === null ? null : int(p.mtu, `${at}.mtu`, 65_535),
    };
  });
}

function hex64(v: unknown, where: string): string {
  const s = str(v, where, 64, 64);
  if (!/^[0-9a-f]{64}$/.test(s)) reject(`${where} is not 64 lowercase hex digits`);
  return s;
}

/** An admission proof, plain or by invitation (shared/member.ts), as records, `m` updates and handshakes carry it. */
export function admission(v: unknown, where = 'record.admission'): AdmissionProof {
  const o = obj(v, where);
  const out: AdmissionProof = { at: int(o.at, `${where}.at`), sig: b64(o.sig, `${where}.sig`, 88) };
  if (o.inv !== undefined) out.inv = invited(o.inv, `${where}.inv`);
  return out;
}

function invited(v: unknown, where: string): InvitedProof {
  const o = obj(v, where);
  const b = obj(o.body, `${where}.body`);
  if (b.v !== 1) reject(`${where}.body.v must be 1`);
  const id = str(b.id, `${where}.body.id`, 16, 16);
  if (!/^[0-9a-f]{16}$/.test(id)) reject(`${where}.body.id is not 16 hex digits`);
  const body: InvitedProof['body'] = {
    v: 1,
    id,
    anchors: strings(b.anchors, `${where}.body.anchors`, LIMITS.addresses, LIMITS.addressLength),
    admin_pub: str(b.admin_pub, `${where}.body.admin_pub`, LIMITS.shortString),
    exp: int(b.exp, `${where}.body.exp`),
    uses: int(b.uses, `${where}.body.uses`, 1000),
    inv_pub: b64(b.inv_pub, `${where}.body.inv_pub`, 44),
  };
  if (b.node !== undefined) body.node = name(b.node, `${where}.body.node`);
  const adm = obj(o.anchor_adm, `${where}.anchor_adm`);
  return {
    body,
    body_sig: b64(o.body_sig, `${where}.body_sig`, 88),
    use_at: int(o.use_at, `${where}.use_at`),
    use_sig: b64(o.use_sig, `${where}.use_sig`, 88),
    anchor: name(o.anchor, `${where}.anchor`),
    anchor_id: b64(o.anchor_id, `${where}.anchor_id`, 44),
    anchor_adm: { at: int(adm.at, `${where}.anchor_adm.at`), sig: b64(adm.sig, `${where}.anchor_adm.sig`, 88) },
  };
}

export function signedRecord(v: unknown): SignedRecord {
  const o = obj(v, 'signed record');
  return { record: record(o.record), incarnation: int(o.incarnation, 'incarnation'), sig: b64(o.sig, 'sig', 88) };
}

function update(v: unknown, i: number): Update {
  const o = obj(v, `update[${i}]`);
  switch (o.k) {
    case 'a': {
      const u: Update = { k: 'a', r: signedRecord(o.r) };
      if (o.o !== undefined) {
        if (o.o !== 's' && o.o !== 'd' && o.o !== 'l') reject(`update[${i}].o must be "s", "d" or "l"`);
        u.o = o.o;
      }
      if (o.f !== undefined) u.f = name(o.f, `update[${i}].f`);
      if (o.g !== undefined) u.g = b64(o.g, `update[${i}].g`, 88);
      if (u.o === 'l' && u.g === undefined) reject(`update[${i}] is a left overlay without signature`);
      return u;
    }
    case 's':
    case 'd':
      return { k: o.k, n: name(o.n, `update[${i}].n`), i: int(o.i, `update[${i}].i`), f: name(o.f, `update[${i}].f`) };
    case 'l':
      return { k: 'l', n: name(o.n, `update[${i}].n`), i: int(o.i, `update[${i}].i`), g: b64(o.g, `update[${i}].g`, 88) };
    case 'm':
    case 'x': {
      const u: Update = {
        k: o.k,
        n: name(o.n, `update[${i}].n`),
        p: b64(o.p, `update[${i}].p`, 44),
        t: int(o.t, `update[${i}].t`),
        g: b64(o.g, `update[${i}].g`, 88),
      };
      if (o.k === 'm' && o.i !== undefined) (u as AdmissionUpdate).i = invited(o.i, `update[${i}].i`);
      return u;
    }
    case 'r':
      return {
        k: 'r',
        i: b64(o.i, `update[${i}].i`, 12),
        t: int(o.t, `update[${i}].t`),
        w: int(o.w, `update[${i}].w`),
        e: int(o.e, `update[${i}].e`),
        n: name(o.n, `update[${i}].n`),
        p: b64(o.p, `update[${i}].p`, 44),
        b: b64Up(o.b, `update[${i}].b`, MAX_BOX_CHARS),
        g: b64(o.g, `update[${i}].g`, 88),
      };
    default:
      return reject(`update[${i}] has unknown kind ${JSON.stringify(String(o.k).slice(0, 16))}`);
  }
}

function updates(v: unknown): Update[] {
  return arr(v, 'u', LIMITS.updates).map(update);
}

function digest(v: unknown): DigestEntry[] {
  return arr(v, 'd', LIMITS.digest).map((e, i) => {
    const a = arr(e, `d[${i}]`, 3);
    if (a.length !== 3) reject(`d[${i}] must be [name, incarnation, state]`);
    const st = a[2];
    if (st !== 0 && st !== 1 && st !== 2 && st !== 3) reject(`d[${i}] state must be 0..3`);
    return [name(a[0], `d[${i}] name`), int(a[1], `d[${i}] incarnation`), st as StateCode];
  });
}

const dec = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates a message off the wire; throws HeptoError('FRAME_REJECTED', reason) on anything malformed, never any other exception. */
export function decodeMessage(bytes: Uint8Array): GossipMessage {
  if (!(bytes instanceof Uint8Array)) reject('payload is not bytes');
  if (bytes.byteLength > LIMITS.messageBytes) reject(`${bytes.byteLength} bytes (at most ${LIMITS.messageBytes})`);
  let text: string;
  let raw: unknown;
  try {
    text = dec.decode(bytes);
    raw = JSON.parse(text);
  } catch {
    return reject('not UTF-8 JSON');
  }
  const o = obj(raw, 'message');
  switch (o.t) {
    case 'p':
    case 'k': {
      const s = int(o.s, 's');
      return o.u === undefined ? { t: o.t, s } : { t: o.t, s, u: updates(o.u) };
    }
    case 'n':
      return { t: 'n', s: int(o.s, 's') };
    case 'r':
      return { t: 'r', s: int(o.s, 's'), n: name(o.n, 'n'), a: strings(o.a, 'a', LIMITS.addresses, LIMITS.addressLength) };
    case 'g':
      return { t: 'g', u: updates(o.u) };
    case 'h': {
      const m: SyncHashMsg = { t: 'h', h: b64(o.h, 'h', 16) };
      if (o.x !== undefined) m.x = b64(o.x, 'x', 12);
      if (o.r !== undefined) m.r = b64(o.r, 'r', 12);
      return m;
    }
    case 'd': {
      const d = digest(o.d);
      const m: SyncDigestMsg = o.u === undefined ? { t: 'd', d } : { t: 'd', d, u: updates(o.u) };
      if (o.b !== undefined) {
        const b = arr(o.b, 'b', 2);
        if (b.length !== 2) reject('b must be [after, through]');
        m.b = [b[0] === '' ? '' : name(b[0], 'b[0]'), b[1] === '' ? '' : name(b[1], 'b[1]')];
      }
      return m;
    }
    case 'y':
      return { t: 'y', u: updates(o.u), w: arr(o.w, 'w', LIMITS.wanted).map((x, i) => name(x, `w[${i}]`)) };
    default:
      return reject(`unknown message type ${JSON.stringify(String(o.t).slice(0, 16))}`);
  }
}
