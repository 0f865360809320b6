/**
 * The status document (`hepto-agent status --json`), as the contract fixes it.
 * Built by a pure function from what the membership and the supervisor report.
 */
import type { MemberRecord, MemberState, NodeHealth, Role } from './member';
import { PUBLIC_KEY_PREFIX } from './public-key';
import { printable } from './printable';
import { buildMesh, formatMesh, minMtuText, type MeshDoc } from './mesh';
import { byCodePoint } from './order';

export interface MemberStatus {
  name: string;
  state: MemberState;
  role: Role;
  /**
   * The member's identity fingerprint: the first 12 hex digits of the SHA-256
   * of its id_pub text (base64 of its ed25519 identity public key), the same
   * form logs and name-conflict refusals use (agent/net/identity.ts fingerprint).
   */
  identity: string;
  /** The full identity public key in the `ed25519:` text form (what `hepto-agent admit --identity` takes). */
  identity_key: string;
  /** When the admin admitted this name for this identity (ISO time), or null: it shows no admission. */
  admitted_at: string | null;
  /** The key rotation whose keys the member uses (its id), null: the keys it was set up with. */
  keys: string | null;
  addresses: string[];
  overlay_ip: string | null;
  last_seen: string;
  incarnation: number;
  containers: NodeHealth | Record<string, never>;
  /** Other hosted nodes' health when the member hosts several. */
  hosted?: Record<string, NodeHealth>;
  facts: MemberRecord['facts'];
  self?: true;
}

export interface ContainerStatusDoc {
  name: string;
  node: string;
  role: 'wesher' | 'k3s';
  state: string;
  restarts: number;
  last_error: string | null;
  last_exit_code?: number | null;
  last_log?: string[];
  /** wesher: its overlay interface as last read (null: not there yet), with the MTU in force. */
  overlay?: { interface: string; addresses: string[]; mtu: number | null; up: boolean } | null;
}

export interface StatusDoc {
  node: string;
  version: string;
  runtime: 'podman' | 'none';
  started_at: string;
  members: MemberStatus[];
  containers: ContainerStatusDoc[];
  problems: string[];
  /** This node's key rotation (docs/trust.md), or null: it uses the keys it was set up with. */
  keys: KeysStatus | null;
  /**
   * The pair matrix from the members' records (shared/mesh.ts documents its
   * shape), with the smallest path MTU over all pairs (`mesh.min_mtu`, null
   * when none is measured). An agent older than issue 15 sends none.
   */
  mesh?: MeshDoc;
}

export interface KeysStatus {
  rotation: string;
  made_at: string;
  switch_at: string;
  /** Until when the previous overlay key is still taken. */
  grace_until: string;
  /** pending: not switched yet; grace: switched, the old overlay key still taken; done. */
  phase: 'pending' | 'grace' | 'done';
}

export interface StatusInput {
  node: string;
  version: string;
  runtime: 'podman' | 'none';
  startedAt: number;
  /** `identity`: the fingerprint of record.id_pub (see MemberStatus.identity). */
  members: Array<{ name: string; state: MemberState; incarnation: number; record: MemberRecord; lastSeen: number; identity: string }>;
  containers: ContainerStatusDoc[];
  problems: string[];
  keys?: KeysStatus | null;
}

const STATE_ORDER: Record<MemberState, number> = { alive: 0, suspect: 1, dead: 2, left: 3 };

export function buildStatus(input: StatusInput): StatusDoc {
  const members = [...input.members]
    .sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || byCodePoint(a.name, b.name))
    .map((m): MemberStatus => {
      const own = m.record.containers[m.name];
      const others = Object.fromEntries(Object.entries(m.record.containers).filter(([k]) => k !== m.name));
      const doc: MemberStatus = {
        name: m.name,
        state: m.state,
        role: m.record.role,
        identity: m.identity,
        identity_key: PUBLIC_KEY_PREFIX + m.record.id_pub,
        admitted_at: m.record.admission ? new Date(m.record.admission.at).toISOString() : null,
        keys: m.record.keys ?? null,
        addresses: m.record.addresses,
        overlay_ip: m.record.overlay_ip,
        last_seen: new Date(m.lastSeen).toISOString(),
        incarnation: m.incarnation,
        containers: own ?? {},
        facts: m.record.facts,
      };
      if (Object.keys(others).length > 0) doc.hosted = others;
      if (m.name === input.node) doc.self = true;
      return doc;
    });
  return {
    node: input.node,
    version: input.version,
    runtime: input.runtime,
    started_at: new Date(input.startedAt).toISOString(),
    members,
    containers: input.containers,
    problems: [...new Set(input.problems)],
    keys: input.keys ?? null,
    mesh: buildMesh(input.members),
  };
}

/**
 * `status --json` text: JSON.stringify escapes C0 controls but leaves DEL, C1
 * and the bidirectional overrides raw; these are written as \uNNNN too (the
 * same JSON value), so peer strings cannot drive a terminal it is printed on.
 */
export function statusJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `hepto-agent status --mesh`: the pair matrix as every member sees it. */
export function formatMeshStatus(doc: StatusDoc): string {
  if (!doc.mesh) return printable(`${doc.node}: the running agent (${doc.version}) does not report the mesh; restart it with this version`);
  const states = Object.fromEntries(doc.members.map((m) => [m.name, m.state]));
  return formatMesh(doc.mesh, { self: doc.node, states });
}

/** `mesh 5/6 alive · wesher running · k3s running`, or the first problem: the systemd STATUS line. */
export function statusLine(doc: StatusDoc): string {
  const live = doc.members.filter((m) => m.state !== 'left');
  const alive = live.filter((m) => m.state === 'alive').length;
  const parts = [`mesh ${alive}/${live.length} alive`];
  for (const c of doc.containers.filter((c) => c.node === doc.node)) parts.push(`${c.role} ${c.state}`);
  const line = parts.join(' · ');
  return printable(doc.problems.length > 0 ? `${line} · ${doc.problems.length} problem${doc.problems.length > 1 ? 's' : ''}: ${doc.problems[0]}` : line);
}

function ago(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
}

/** The human form of the status document. */
export function formatStatus(doc: StatusDoc, now: number): string {
  const out: string[] = [];
  out.push(`${doc.node} · hepto-agent ${doc.version} · runtime ${doc.runtime} · ${statusLine({ ...doc, problems: [] })}`);
  out.push('');
  const rows = [['MEMBER', 'STATE', 'ROLE', 'ADDRESSES', 'OVERLAY IP', 'LAST SEEN', 'WESHER', 'K3S', 'IDENTITY']];
  for (const m of doc.members) {
    const c = m.containers as Partial<NodeHealth>;
    rows.push([
      m.self ? `${m.name} (this)` : m.name,
      m.state,
      m.role,
      m.addresses.join(',') || '-',
      m.overlay_ip ?? '-',
      m.self ? 'now' : ago(m.last_seen, now),
      c.wesher ?? '-',
      c.k3s ?? '-',
      m.identity ?? '-',
    ]);
  }
  out.push(...table(rows));
  if (doc.containers.length > 0) {
    out.push('');
    const crow = [['CONTAINER', 'STATE', 'RESTARTS', 'OVERLAY', 'LAST ERROR']];
    const overlay = (c: ContainerStatusDoc): string =>
      c.overlay
        ? `${c.overlay.interface} ${c.overlay.addresses.join(',') || 'no address'} mtu ${c.overlay.mtu ?? '?'}${c.overlay.up ? '' : ' down'}`
        : c.overlay === null
          ? 'not there yet'
          : '-';
    for (const c of doc.containers) crow.push([c.name, c.state, String(c.restarts), overlay(c), c.last_error ?? '-']);
    out.push(...table(crow));
  }
  out.push('');
  if (doc.mesh) out.push(`smallest path MTU: ${minMtuText(doc.mesh)} (every pair: hepto-agent status --mesh)`);
  if (doc.keys) {
    const k = doc.keys;
    out.push(
      k.phase === 'pending'
        ? `keys: rotation ${k.rotation} received; switching at ${k.switch_at}`
        : `keys: rotation ${k.rotation} since ${k.switch_at}${k.phase === 'grace' ? `; the previous overlay key is taken until ${k.grace_until}` : ''}`,
    );
  }
  if (doc.problems.length === 0) out.push('problems: none');
  else {
    out.push('problems:');
    for (const p of doc.problems) out.push(`  - ${p}`);
  }
  // Peer strings (addresses, health, problems that quote them) must not drive root's terminal.
  return out.map(printable).join('\n');
}
