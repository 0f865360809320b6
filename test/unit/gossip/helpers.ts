/**
 * Builders for gossip unit tests: deterministic identities, records and
 * members wired into a SimRouter.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { ed25519PrivateKeyOfSeed } from '../../../agent/net/curve';
import type { AdmissionProof, MemberRecord } from '../../../shared/member';
import { Membership } from '../../../agent/gossip/membership';
import { signRecord } from '../../../agent/gossip/records';
import type { GossipTiming } from '../../../agent/gossip/timing';
import { TEST } from '../../../agent/gossip/timing';
import { SimRouter, seededRng } from '../../helpers/sim-router';
import type { SimNode } from '../../helpers/sim-router';
import { signAdmission } from '../../../agent/admin/admission';
import type { AdminKey } from '../../../agent/admin/key';

export interface Identity {
  secretKey: Uint8Array;
  idPub: string;
}

/** A deterministic identity derived from a label (tests only). */
const identities = new Map<string, Identity>();

export function identity(label: string): Identity {
  const cached = identities.get(label);
  if (cached) return cached;
  const id = makeIdentity(label);
  identities.set(label, id);
  return id;
}

function makeIdentity(label: string): Identity {
  const seed = createHash('sha256').update(`hepto-test-identity:${label}`).digest();
  // Node's native ed25519 (tweetnacl's fromSeed is ~10 ms; tests make hundreds).
  const priv = ed25519PrivateKeyOfSeed(seed);
  const pub = createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(-32);
  const secretKey = new Uint8Array(64);
  secretKey.set(seed, 0);
  secretKey.set(pub, 32);
  return { secretKey, idPub: Buffer.from(pub).toString('base64') };
}

export function addressOf(i: number): string {
  return `127.0.0.${(i % 250) + 1}:${7947 + Math.floor(i / 250)}`;
}

export function recordFor(name: string, address: string, id: Identity): MemberRecord {
  return {
    name,
    role: name === 'n0' ? 'master' : 'node',
    addresses: [address],
    node_ips: ['192.0.2.1'],
    overlay_ip: null,
    facts: { cores: 2, memory_mb: 2048, os: 'Debian 12', agent_version: '0.1.0' },
    containers: {},
    id_pub: id.idPub,
    created_at: 1_700_000_000_000,
  };
}

/** A peer as a test hands it to Membership.receive. */
export interface TestPeer {
  name: string;
  idPub: string;
  remote: string;
}

/** Member a at T0, having learnt b and c from c's gossip (b has never talked to a), and the two as peers. */
export function aLearnsBC(T0: number, label: string): { a: Membership; b: TestPeer; c: TestPeer } {
  const a = makeMember('a', '127.0.0.1:7947', T0);
  const [B, C] = [identity(`${label}-b`), identity(`${label}-c`)];
  const b = { name: 'b', idPub: B.idPub, remote: '127.0.0.2:40000' };
  const c = { name: 'c', idPub: C.idPub, remote: '127.0.0.3:40000' };
  a.receive(
    c,
    {
      t: 'g',
      u: [
        { k: 'a', r: signRecord(recordFor('b', '127.0.0.2:7947', B), 1, B.secretKey) },
        { k: 'a', r: signRecord(recordFor('c', '127.0.0.3:7947', C), 1, C.secretKey) },
      ],
    },
    T0,
  );
  return { a, b, c };
}

export interface MemberOpts {
  /** admin_pub: names are pinned to admitted identities. */
  adminPub?: string;
  /** This member's own admission, as its record carries it. */
  admission?: AdmissionProof;
  timing?: GossipTiming;
  incarnation?: number;
  idLabel?: string;
  seed?: number;
}

export function makeMember(name: string, address: string, now: number, o: MemberOpts = {}): Membership {
  const id = identity(o.idLabel ?? name);
  const record = recordFor(name, address, id);
  if (o.admission) record.admission = o.admission;
  return new Membership({
    ...(o.adminPub ? { adminPub: o.adminPub } : {}),
    record,
    secretKey: id.secretKey,
    incarnation: o.incarnation ?? 1,
    timing: o.timing ?? TEST,
    now,
    rng: seededRng(o.seed ?? hashSeed(name)),
  });
}

function hashSeed(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export interface ClusterOpts {
  seed?: number;
  loss?: number;
  timing?: GossipTiming;
  notifyDisconnect?: boolean;
  partitionMode?: 'fail' | 'drop';
  latency?: { min: number; max: number };
}

/** n members n0..n(n-1); n0 is the anchor, the others bootstrap through it at the same instant. */
export function bootCluster(n: number, o: ClusterOpts = {}): { router: SimRouter; nodes: SimNode[]; names: string[] } {
  const router = new SimRouter({
    rng: seededRng(o.seed ?? 42),
    loss: o.loss ?? 0,
    notifyDisconnect: o.notifyDisconnect ?? true,
    partitionMode: o.partitionMode ?? 'fail',
    ...(o.latency ? { latency: o.latency } : {}),
  });
  const nodes: SimNode[] = [];
  for (let i = 0; i < n; i++) {
    const name = `n${i}`;
    const mo: MemberOpts = o.timing ? { timing: o.timing } : {};
    nodes.push(router.add(makeMember(name, addressOf(i), router.now, mo), addressOf(i)));
  }
  const anchor = addressOf(0);
  for (const node of nodes) router.handle(node, node.m.bootstrap(node.name === 'n0' ? [] : [anchor], router.now));
  return { router, nodes, names: nodes.map((x) => x.name) };
}

/** The admin's admission of `name` (its test identity) at `at`, as a record carries it. */
export function admittedProof(admin: AdminKey, name: string, at: number, idLabel = name): AdmissionProof {
  const a = signAdmission(admin, name, identity(idLabel).idPub, at);
  return { at: a.at, sig: a.sig };
}

/** Members `names` with admin_pub, each admitted at `at`; the first is the anchor. Runs until all see all alive. */
export function bootAdmitted(admin: AdminKey, names: string[], at: number, seed: number): SimRouter {
  const router = new SimRouter({ rng: seededRng(seed), notifyDisconnect: true });
  names.forEach((n, i) => {
    const m = makeMember(n, addressOf(i), router.now, { adminPub: admin.pub, admission: admittedProof(admin, n, at) });
    router.handle(router.add(m, addressOf(i)), m.bootstrap(i === 0 ? [] : [addressOf(0)], router.now));
  });
  router.runUntilTrue(() => router.allSee(names, 'alive'), 5000, 'all alive');
  return router;
}
