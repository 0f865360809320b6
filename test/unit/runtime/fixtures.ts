import { defaults } from '../../../shared/config/defaults';
import type { HeptoConfig } from '../../../shared/config/types';
import type { MemberRecord, MemberState } from '../../../shared/member';
import type { ClusterView, DesiredState } from '../../../agent/runtime/desired';
import type { ObservedContainer } from '../../../agent/runtime/planner';

/** Test keys: obviously fake, 32 characters each. */
export const OVERLAY_KEY = 'TESTONLYoverlayKEY0123456789abcd';
export const CLUSTER_KEY = 'TESTONLYclusterKEY0123456789abcd';
export const AGENT_KEY = 'TESTONLYagentKEY0123456789abcdef';

/** The real defaults, plus what the golden specs pin (names, keys, addresses, stand-in images, ulimits). */
export function testConfig(over: Partial<HeptoConfig> = {}): HeptoConfig {
  return {
    ...defaults,
    node: 'master1',
    master: 'master1',
    overlay_key: OVERLAY_KEY,
    cluster_key: CLUSTER_KEY,
    ip: ['2001:db8::1/64'],
    gw: ['2001:db8::ffff'],
    images: { wesher: 'example.invalid/wesher:pinned', k3s: 'example.invalid/k3s:pinned' },
    ulimits: { nofile: { soft: 1024, hard: 1024 }, nproc: { soft: 1024, hard: 1024 } },
    // No metrics endpoint unless a test asks: in-process agents would all want 127.0.0.1:9947.
    metrics_listen: '',
    ...over,
  };
}

export function record(name: string, over: Partial<MemberRecord> = {}): MemberRecord {
  return {
    name,
    role: 'node',
    addresses: [],
    node_ips: [],
    overlay_ip: null,
    facts: { cores: 2, memory_mb: 1024, os: 'test', agent_version: '0' },
    containers: { [name]: { wesher: 'running', k3s: 'running' } },
    id_pub: 'AAAA',
    created_at: 1_000,
    ...over,
  };
}

export function view(...members: Array<[string, MemberState, Partial<MemberRecord>?]>): ClusterView {
  return { members: members.map(([name, state, over]) => ({ name, state, record: record(name, over ?? {}) })) };
}

/** A container of `d` as Podman would show it running since an hour before `now`, exactly as desired. */
export function runningAsDesired(d: DesiredState, name: string, now: number, over: Partial<ObservedContainer> = {}): ObservedContainer {
  const c = d.containers.find((x) => x.name === name)!;
  return {
    id: `id-${name}`,
    name,
    node: c.node,
    role: c.role,
    state: 'running',
    hash: c.spec!.hash,
    baseHash: c.spec!.baseHash,
    join: c.spec!.join.join(','),
    startedAt: now - 3_600_000,
    finishedAt: null,
    exitCode: null,
    pid: 4242,
    ...over,
  };
}
