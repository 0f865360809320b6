/**
 * The order node names were first seen in (agent/daemon/name-ledger.ts):
 * when a hosted node is pinned, that a pinned node is never demoted by a
 * newcomer (issue 14, attack 3), that the order survives a restart, and
 * that the ledger stays bounded.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LEDGER_SLACK, NAME_RETENTION_MS, NameLedger } from '../../../agent/daemon/name-ledger';
import { overlayCollisions } from '../../../agent/runtime/collisions';
import { computeDesired, type ClusterView } from '../../../agent/runtime/desired';
import { overlayIp } from '../../../agent/runtime/overlay-ip';
import { memoryLogger } from '../../helpers/memory-logger';
import { testConfig, view } from '../runtime/fixtures';

const NET = '10.0.0.0/24';
const SETTLE = 1000;
const FACTS = { defaultIface: 'eth0', netavarkVersion: '1.4.0' };

/** A name that hashes to the overlay IP of `name` in NET. */
function collider(name: string): string {
  const ip = overlayIp(name, NET);
  for (let i = 0; ; i++) if (`c${i}` !== name && overlayIp(`c${i}`, NET) === ip) return `c${i}`;
}

describe('daemon/name-ledger', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'names-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const ledger = (): NameLedger => new NameLedger(dir, memoryLogger().logger, SETTLE);

  it('a first machine (no anchors) pins its node once the settle time passed with nobody found', () => {
    const cfg = testConfig({ node: 'venus', master: 'venus', overlay_net: NET });
    const l = ledger();
    const first = l.observe(cfg, view(['venus', 'alive']), 10_000);
    assert.deepEqual(Object.keys(first.view.firstSeen!), []);
    assert.equal(first.recheckAt, 10_000 + SETTLE);
    assert.ok(
      computeDesired(cfg, first.view, FACTS).containers.every((c) => c.spec === null),
      'wesher waits until pinned',
    );
    const later = l.observe(cfg, view(['venus', 'alive']), 10_000 + SETTLE);
    assert.ok('venus' in later.view.firstSeen!);
    assert.equal(later.recheckAt, null);
    assert.ok(computeDesired(cfg, later.view, FACTS).containers.every((c) => c.spec !== null));
  });

  it('a node with anchors is pinned a settle time after another member is alive, not before, and not when it collides', () => {
    const cfg = testConfig({ node: 'mars', master: 'venus', overlay_net: NET, anchors: ['[2001:db8::1]:7947'] });
    const l = ledger();
    assert.equal(l.observe(cfg, view(['mars', 'alive']), 0).recheckAt, null, 'nobody found: nothing to wait for but gossip');
    const found = l.observe(cfg, view(['mars', 'alive'], ['venus', 'alive']), 500);
    assert.equal(found.recheckAt, 500 + SETTLE);
    assert.ok(!('mars' in found.view.firstSeen!));
    assert.ok('mars' in l.observe(cfg, view(['mars', 'alive'], ['venus', 'alive']), 500 + SETTLE).view.firstSeen!);

    // A newcomer whose name collides with a name already in the cluster is never pinned.
    const bad = collider('venus');
    const cfg2 = testConfig({ node: bad, master: 'venus', overlay_net: NET, anchors: ['[2001:db8::1]:7947'] });
    const l2 = new NameLedger(mkdtempSync(path.join(dir, 'b')), memoryLogger().logger, SETTLE);
    l2.observe(cfg2, view([bad, 'alive'], ['venus', 'alive']), 0);
    const after = l2.observe(cfg2, view([bad, 'alive'], ['venus', 'alive']), 5 * SETTLE);
    assert.ok(!(bad in after.view.firstSeen!));
    const d = computeDesired(cfg2, after.view, FACTS);
    assert.ok(d.containers.every((c) => c.spec === null));
    assert.ok(
      d.problems.some((p) => p.includes(`rename ${bad}`)),
      d.problems.join('\n'),
    );
  });

  it('attack 3: a forged colliding name with created_at 0 never demotes a pinned node, before or after a restart', async () => {
    const cfg = testConfig({ node: 'venus', master: 'venus', overlay_net: NET });
    const fake = collider('venus');
    const l = ledger();
    l.observe(cfg, view(['venus', 'alive']), 0);
    l.observe(cfg, view(['venus', 'alive']), SETTLE);
    const attacked = view(
      ['venus', 'alive'],
      ['evil', 'alive', { created_at: 0, containers: { evil: { wesher: 'running', k3s: 'running' }, [fake]: { wesher: 'running', k3s: 'running' } } }],
    );
    const v = l.observe(cfg, attacked, 2 * SETTLE).view;
    assert.equal(overlayCollisions(cfg, v)[0].nodes[0].node, 'venus');
    assert.ok(
      computeDesired(cfg, v, FACTS).containers.every((c) => c.spec !== null),
      "venus's wesher and k3s still start",
    );
    await l.save();
    assert.equal(statSync(l.file).mode & 0o777, 0o600);

    // A restart (or a reboot): the view holds the attacker's name before venus has seen anyone; venus keeps its IP.
    const again = ledger();
    await again.load();
    const v2 = again.observe(cfg, attacked, 0).view;
    assert.equal(overlayCollisions(cfg, v2)[0].nodes[0].node, 'venus');
    assert.ok(computeDesired(cfg, v2, FACTS).containers.every((c) => c.spec !== null));
  });

  it('the order is a counter kept across restarts: a clock set back cannot reorder names', async () => {
    const cfg = testConfig({ node: 'x', master: 'x', overlay_net: NET });
    const a = 'venus';
    const b = collider(a);
    const l = ledger();
    l.observe(cfg, view(['x', 'alive'], [a, 'alive']), 1_000_000);
    l.observe(cfg, view(['x', 'alive'], [a, 'alive'], [b, 'alive']), 2_000_000);
    await l.save();
    const again = ledger();
    await again.load();
    const v = again.observe(cfg, view(['x', 'alive'], [b, 'alive'], [a, 'alive']), 5).view;
    assert.equal(overlayCollisions(cfg, v)[0].nodes[0].node, a);
    assert.ok(v.firstSeen![a] < v.firstSeen![b]);
  });

  it('forgets names an hour after the last member claiming them went, and keeps at most LEDGER_SLACK gone names', async () => {
    const cfg = testConfig({ node: 'x', master: 'x', overlay_net: NET });
    const l = ledger();
    l.observe(cfg, view(['x', 'alive'], ['gone', 'alive']), 0);
    l.observe(cfg, view(['x', 'alive'], ['gone', 'left']), 10);
    assert.ok('gone' in l.observe(cfg, view(['x', 'alive']), NAME_RETENTION_MS).view.firstSeen!, 'kept within the hour');
    assert.ok(!('gone' in l.observe(cfg, view(['x', 'alive']), 10 + NAME_RETENTION_MS).view.firstSeen!));

    const many: ClusterView = { members: [{ name: 'x', state: 'alive', record: view(['x', 'alive']).members[0].record }] };
    const fakes = view(...Array.from({ length: LEDGER_SLACK + 50 }, (_, i) => [`f${i}`, 'alive'] as [string, 'alive']));
    l.observe(cfg, { members: [...many.members, ...fakes.members] }, 20_000);
    const after = l.observe(cfg, many, 30_000).view.firstSeen!;
    assert.ok(Object.keys(after).length <= LEDGER_SLACK + 1, `${Object.keys(after).length} names kept`);
  });

  it('a damaged file is set aside with a warning, and the agent starts a new order', async () => {
    writeFileSync(path.join(dir, 'names.json'), '{"version":1,"next":2,"names":{"a":{"seq":7,"at":0}}}');
    const { logger, lines } = memoryLogger();
    const l = new NameLedger(dir, logger, SETTLE);
    await l.load();
    assert.ok(
      lines.some((x) => /damaged/.test(x) && /seq|bad entry/.test(x)),
      lines.join('\n'),
    );
    assert.ok(readdirSync(dir).some((f) => f.startsWith('names.json.corrupt-')));
    const cfg = testConfig({ node: 'x', master: 'x', overlay_net: NET });
    l.observe(cfg, view(['x', 'alive'], ['a', 'alive']), 0);
    await l.save();
    const saved = JSON.parse(readFileSync(l.file, 'utf8')) as { names: Record<string, { seq: number }> };
    assert.equal(saved.names.a.seq, 1);
  });
});
