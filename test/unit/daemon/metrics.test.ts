/**
 * The agent's metrics (agent/daemon/metrics.ts): Prometheus naming (prefix,
 * units, `_total` on counters), labels from small fixed sets, values read at
 * scrape time from the sources, one registry per agent.
 */
import assert from 'node:assert/strict';
import { AgentMetrics, CONTAINER_STATES, REFUSAL_KINDS, reasonKind, type MetricsSources } from '../../../agent/daemon/metrics';
import { KNOWN_INTERNAL_ERRORS } from '../../../agent/daemon/internal-errors';
import type { MemberRecord, MemberState } from '../../../shared/member';
import type { RuntimeStatus } from '../../../agent/daemon/runtime-seam';

function record(name: string, paths?: MemberRecord['paths']): MemberRecord {
  return {
    name,
    role: 'node',
    addresses: [],
    node_ips: [],
    overlay_ip: null,
    facts: {},
    containers: {},
    id_pub: 'pub',
    created_at: 0,
    ...(paths ? { paths } : {}),
  } as unknown as MemberRecord;
}

function sources(over: Partial<MetricsSources> = {}): MetricsSources {
  const members: { name: string; state: MemberState; record: MemberRecord }[] = [
    { name: 'alpha', state: 'alive', record: record('alpha', { beta: { up: true, rtt_ms: 3, mtu: 1280 }, gamma: { up: false, rtt_ms: null, mtu: null } }) },
    { name: 'beta', state: 'alive', record: record('beta') },
    { name: 'gamma', state: 'dead', record: record('gamma') },
  ];
  const rt: RuntimeStatus = {
    containers: [
      { name: 'hepto-alpha-wesher', node: 'alpha', role: 'wesher', state: 'running', restarts: 2, last_error: null },
      { name: 'hepto-alpha-k3s', node: 'alpha', role: 'k3s', state: 'crashloop', restarts: 5, last_error: 'x' },
    ],
    problems: [],
    health: {},
    k3sCa: null,
  };
  return {
    node: 'alpha',
    version: '0.1.0',
    members: () => members,
    transport: () => ({ bytesSent: 1234, bytesReceived: 5678, connections: 2 }),
    gossipCounters: () => ({ 'bad-signature': 3, 'internal-error': 1 }),
    internalErrors: () => [{ component: 'gossip', kind: 'apply-update', count: 1 }],
    runtime: () => rt,
    backoffs: () => ({ 'hepto-alpha-wesher': 0, 'hepto-alpha-k3s': 12.5 }),
    ...over,
  };
}

/** name → type, from the # TYPE lines. */
function types(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
}

/** The value of one sample line, exactly as written (labels in prom-client's order). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('daemon/metrics: names, labels and values', () => {
  it('every hepto metric follows the Prometheus naming conventions', async () => {
    const { body, contentType } = await new AgentMetrics(sources()).scrape();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const t = types(body);
    const ours = [...t.entries()].filter(([n]) => n.startsWith('hepto_'));
    assert.ok(ours.length >= 25, `only ${ours.length} hepto metrics`);
    for (const [name, type] of ours) {
      assert.match(name, /^hepto_[a-z]+(_[a-z]+)*$/, `${name}: snake_case under hepto_`);
      if (type === 'counter') assert.ok(name.endsWith('_total'), `${name}: a counter ends with _total`);
      else assert.ok(!name.endsWith('_total'), `${name}: only counters end with _total`);
      if (type === 'histogram') assert.ok(name.endsWith('_seconds'), `${name}: a histogram of durations is in seconds`);
      assert.ok(!/milli|_ms\b|kilo|mega|_kb|_mb/.test(name), `${name}: base units only`);
    }
    for (const [name, type] of [
      ['hepto_members', 'gauge'],
      ['hepto_member_suspicions_total', 'counter'],
      ['hepto_member_refutations_total', 'counter'],
      ['hepto_member_deaths_total', 'counter'],
      ['hepto_member_leaves_total', 'counter'],
      ['hepto_probe_rtt_seconds', 'histogram'],
      ['hepto_transport_sent_bytes_total', 'counter'],
      ['hepto_transport_received_bytes_total', 'counter'],
      ['hepto_transport_sent_frames_total', 'counter'],
      ['hepto_transport_received_frames_total', 'counter'],
      ['hepto_transport_connections', 'gauge'],
      ['hepto_transport_refused_total', 'counter'],
      ['hepto_transport_refused_by_peers_total', 'counter'],
      ['hepto_internal_errors_total', 'counter'],
      ['hepto_containers', 'gauge'],
      ['hepto_container_restarts_total', 'counter'],
      ['hepto_container_backoff_seconds', 'gauge'],
      ['hepto_image_pulls_total', 'counter'],
      ['hepto_image_pull_failures_total', 'counter'],
      ['hepto_image_builds_total', 'counter'],
      ['hepto_image_build_failures_total', 'counter'],
      ['hepto_reconcile_runs_total', 'counter'],
      ['hepto_reconcile_duration_seconds', 'histogram'],
      ['hepto_path_mtu_bytes', 'gauge'],
    ]) {
      assert.equal(t.get(name as string), type, `${name} is a ${type}`);
    }
    for (const [name, type] of t) if (type !== 'counter') assert.ok(!name.endsWith('_total'), `${name}: a ${type} named like a counter (promtool refuses it)`);
    assert.equal(t.get('process_cpu_seconds_total'), 'counter', "the agent's own process metrics");
    assert.equal(t.get('nodejs_heap_size_used_bytes'), 'gauge');
  });

  it('values are read at scrape time: members and containers by state (every state listed), bytes, connections, backoff, path MTU', async () => {
    let members = sources().members();
    const m = new AgentMetrics(sources({ members: () => members }));
    let body = (await m.scrape()).body;
    assert.equal(sample(body, 'hepto_members{state="alive"}'), 2);
    assert.equal(sample(body, 'hepto_members{state="dead"}'), 1);
    assert.equal(sample(body, 'hepto_members{state="suspect"}'), 0, 'a state with no member shows 0');
    assert.equal(sample(body, 'hepto_members{state="left"}'), 0);
    for (const s of CONTAINER_STATES) assert.notEqual(sample(body, `hepto_containers{state="${s}"}`), undefined, s);
    assert.equal(sample(body, 'hepto_containers{state="crashloop"}'), 1);
    assert.equal(sample(body, 'hepto_container_restarts_total{container="hepto-alpha-k3s"}'), 5);
    assert.equal(sample(body, 'hepto_container_backoff_seconds{container="hepto-alpha-k3s"}'), 12.5);
    assert.equal(sample(body, 'hepto_transport_sent_bytes_total'), 1234);
    assert.equal(sample(body, 'hepto_transport_received_bytes_total'), 5678);
    assert.equal(sample(body, 'hepto_transport_connections'), 2);
    assert.equal(sample(body, 'hepto_path_mtu_bytes{peer="beta"}'), 1280, "from this agent's own record");
    assert.equal(sample(body, 'hepto_path_mtu_bytes{peer="gamma"}'), undefined, 'not measured yet: left out');
    assert.equal(sample(body, 'hepto_gossip_dropped_total{reason="bad-signature"}'), 3);
    assert.ok(!body.includes('reason="internal-error"'), 'internal errors have their own metric');
    assert.equal(sample(body, 'hepto_internal_errors_total{component="gossip",kind="apply-update"}'), 1);
    for (const k of KNOWN_INTERNAL_ERRORS)
      assert.notEqual(sample(body, `hepto_internal_errors_total{component="${k.component}",kind="${k.kind}"}`), undefined, `${k.kind} shown before it happens`);
    // A member dies: the next scrape says so, nothing had to be told.
    members = members.map((x) => (x.name === 'beta' ? { ...x, state: 'dead' as MemberState } : x));
    body = (await m.scrape()).body;
    assert.equal(sample(body, 'hepto_members{state="alive"}'), 1);
    assert.equal(sample(body, 'hepto_members{state="dead"}'), 2);
  });

  it('events are counted as they happen: member events, probe round trips, frames, refusals, reconciles, images', async () => {
    const m = new AgentMetrics(sources());
    m.memberEvent({ type: 'suspect', name: 'beta', incarnation: 1 });
    m.memberEvent({ type: 'dead', name: 'beta', incarnation: 1 });
    m.memberEvent({ type: 'left', name: 'gamma', incarnation: 1 });
    m.memberEvent({ type: 'refuted', name: 'alpha', incarnation: 2 });
    m.memberEvent({ type: 'alive', name: 'beta', incarnation: 2, detail: 'refuted' });
    m.memberEvent({ type: 'alive', name: 'delta', incarnation: 1 });
    m.probeRtt(3);
    m.probeRtt(40);
    m.frameSent();
    m.frameReceived();
    m.frameReceived();
    m.refused('client identity does not open: it does not share this overlay key');
    m.refusedBy('it says the admin removed this identity from the cluster');
    m.reconciled(0.2, true);
    m.reconciled(2, false);
    m.image('pull', true);
    m.image('pull', false);
    m.image('build', false);
    const { body } = await m.scrape();
    assert.equal(sample(body, 'hepto_member_suspicions_total'), 1);
    assert.equal(sample(body, 'hepto_member_deaths_total'), 1);
    assert.equal(sample(body, 'hepto_member_leaves_total'), 1);
    assert.equal(sample(body, 'hepto_member_refutations_total{by="self"}'), 1);
    assert.equal(sample(body, 'hepto_member_refutations_total{by="peer"}'), 1);
    assert.equal(sample(body, 'hepto_probe_rtt_seconds_count'), 2);
    assert.equal(sample(body, 'hepto_probe_rtt_seconds_bucket{le="0.005"}'), 1, '3 ms in seconds');
    assert.ok(Math.abs((sample(body, 'hepto_probe_rtt_seconds_sum') ?? 0) - 0.043) < 1e-9);
    assert.equal(sample(body, 'hepto_transport_sent_frames_total'), 1);
    assert.equal(sample(body, 'hepto_transport_received_frames_total'), 2);
    assert.equal(sample(body, 'hepto_transport_refused_total{reason="wrong-key"}'), 1);
    assert.equal(sample(body, 'hepto_transport_refused_by_peers_total{reason="removed"}'), 1);
    assert.equal(sample(body, 'hepto_reconcile_runs_total'), 2);
    assert.equal(sample(body, 'hepto_reconcile_failures_total'), 1);
    assert.equal(sample(body, 'hepto_reconcile_duration_seconds_count'), 2);
    assert.equal(sample(body, 'hepto_image_pulls_total'), 2);
    assert.equal(sample(body, 'hepto_image_pull_failures_total'), 1);
    assert.equal(sample(body, 'hepto_image_builds_total'), 1);
    assert.equal(sample(body, 'hepto_image_build_failures_total'), 1);
  });

  it('refusal reasons fold into a few fixed words; a peer-chosen name cannot pick the word', () => {
    const cases: Array<[string, string]> = [
      ['client identity does not open: it does not share this overlay key', 'wrong-key'],
      ['server hello does not open: probably a different overlay key', 'wrong-key'],
      ['client speaks protocol version 9, this agent speaks 1: upgrade this agent', 'version'],
      ['client "mallory" did not prove its identity (bad signature)', 'bad-signature'],
      [
        'identity 0123456789ab of "beta" is not admitted; if that machine belongs under this name, the admin runs: hepto-agent admit beta --identity x',
        'not-admitted',
      ],
      [
        'identity 0123456789ab of "beta" was removed by the admin; if that machine belongs under this name, the admin runs: hepto-agent admit beta --identity x',
        'removed',
      ],
      ['identity 0123456789ab of "beta" was replaced by a newer admission of another identity; the admin runs: hepto-agent admit', 'superseded'],
      ['it says a newer admission gave this node name to another identity', 'superseded'],
      ['it does not admit our identity under our name', 'not-admitted'],
      ['claims the name "beta" already held by a connected peer with another identity (a, new b)', 'name-conflict'],
      ['handshake not finished within 5000 ms', 'timeout'],
      ['no bytes within 2000 ms of connecting', 'timeout'],
      ['too many unauthenticated sockets from 127.0.0.0/24 (limit 8)', 'limit'],
      ['more than 4096 bytes before authenticating', 'limit'],
      ['frame larger than the limit (1048600 bytes on the wire)', 'limit'],
      ['malformed WebSocket frame (Invalid WebSocket frame: RSV1 must be clear)', 'malformed'],
      ['WebSocket upgrade to an unknown path', 'malformed'],
      ['malformed gossip message', 'malformed'],
      ['something nobody wrote yet', 'other'],
      // The name is the peer's choice: it must not steer the label.
      ['identity 0123456789ab of "removed-overlay-key" is not admitted; the admin runs: hepto-agent admit', 'not-admitted'],
    ];
    for (const [reason, kind] of cases) assert.equal(reasonKind(reason), kind, reason);
    for (const [, kind] of cases) assert.ok((REFUSAL_KINDS as readonly string[]).includes(kind));
  });

  it('one registry per agent: two agents in one process do not clash, and each counts its own', async () => {
    const a = new AgentMetrics(sources());
    const b = new AgentMetrics(sources({ node: 'beta' }));
    a.frameSent();
    a.frameSent();
    b.frameSent();
    assert.equal(sample((await a.scrape()).body, 'hepto_transport_sent_frames_total'), 2);
    assert.equal(sample((await b.scrape()).body, 'hepto_transport_sent_frames_total'), 1);
    assert.equal(sample((await b.scrape()).body, 'hepto_agent_info{node="beta",version="0.1.0"}'), 1);
  });
});
