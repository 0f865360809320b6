import { strict as assert } from 'assert';
import { buildStatus, formatStatus, statusLine } from '../../../shared/status';
import type { MemberRecord } from '../../../shared/member';

function rec(name: string, role: 'master' | 'node', containers: MemberRecord['containers'] = {}): MemberRecord {
  return {
    name,
    role,
    addresses: [`[2001:db8::${name.length}]:7947`],
    node_ips: [],
    overlay_ip: '10.1.2.3',
    facts: { cores: 2, memory_mb: 1024, os: 'Debian 12', agent_version: '0.1.0' },
    containers,
    id_pub: 'AAAA',
    created_at: 0,
  };
}

describe('status document', () => {
  const now = Date.parse('2026-11-23T10:00:00Z');
  const doc = buildStatus({
    node: 'alpha',
    version: '0.1.0',
    runtime: 'podman',
    startedAt: now - 60000,
    members: [
      { name: 'zeta', state: 'dead', incarnation: 4, record: rec('zeta', 'node'), lastSeen: now - 120000, identity: 'ffffffffffff' },
      {
        name: 'alpha',
        state: 'alive',
        incarnation: 9,
        record: rec('alpha', 'master', { alpha: { wesher: 'running', k3s: 'running' }, beta2: { wesher: 'running', k3s: 'crashloop' } }),
        lastSeen: now,
        identity: '0123456789ab',
      },
      { name: 'beta', state: 'alive', incarnation: 2, record: rec('beta', 'node'), lastSeen: now - 1000, identity: 'abcdef012345' },
    ],
    containers: [
      {
        name: 'hepto-alpha-wesher',
        node: 'alpha',
        role: 'wesher',
        state: 'running',
        restarts: 0,
        last_error: null,
        overlay: { interface: 'wgoverlay', addresses: ['10.1.2.3/32'], mtu: 1320, up: true },
      },
      { name: 'hepto-alpha-k3s', node: 'alpha', role: 'k3s', state: 'running', restarts: 1, last_error: null },
    ],
    problems: ['p1', 'p1', 'p2'],
  });

  it('sorts members alive first, marks self, splits own and hosted containers, dedupes problems', () => {
    assert.deepEqual(
      doc.members.map((m) => m.name),
      ['alpha', 'beta', 'zeta'],
    );
    assert.equal(doc.members[0].self, true);
    assert.deepEqual(doc.members[0].containers, { wesher: 'running', k3s: 'running' });
    assert.deepEqual(doc.members[0].hosted, { beta2: { wesher: 'running', k3s: 'crashloop' } });
    assert.deepEqual(doc.members[1].containers, {});
    assert.equal(doc.members[2].last_seen, '2026-11-23T09:58:00.000Z');
    assert.deepEqual(doc.problems, ['p1', 'p2']);
  });

  it('the systemd status line counts live members and names the first problem', () => {
    assert.equal(statusLine(doc), 'mesh 2/3 alive · wesher running · k3s running · 2 problems: p1');
    assert.equal(statusLine({ ...doc, problems: [] }), 'mesh 2/3 alive · wesher running · k3s running');
  });

  it('the table shows every member and container', () => {
    const t = formatStatus(doc, now);
    assert.match(t, /alpha \(this\)\s+alive\s+master/);
    assert.match(t, /zeta\s+dead\s+node.*2m ago/);
    assert.match(t, /hepto-alpha-k3s\s+running\s+1/);
    assert.match(t, /hepto-alpha-wesher\s+running\s+0\s+wgoverlay 10\.1\.2\.3\/32 mtu 1320/, 'the MTU in force');
    assert.match(t, /- p2/);
  });

  it("each member carries its identity fingerprint, in the JSON and in the table's last column", () => {
    assert.deepEqual(
      doc.members.map((m) => [m.name, m.identity]),
      [
        ['alpha', '0123456789ab'],
        ['beta', 'abcdef012345'],
        ['zeta', 'ffffffffffff'],
      ],
    );
    const lines = formatStatus(doc, now).split('\n');
    assert.match(lines[2], /^MEMBER\s+STATE\s+ROLE\s+.*K3S\s+IDENTITY$/);
    assert.match(
      lines.find((l) => l.startsWith('alpha (this)'))!,
      /running\s+0123456789ab$/,
    );
    assert.match(
      lines.find((l) => l.startsWith('zeta'))!,
      /-\s+ffffffffffff$/,
    );
  });
});
