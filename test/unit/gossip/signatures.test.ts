/**
 * What a peer's signatures may cost (issue 14, item 6; agent/gossip/signatures.ts):
 * a budget of checks per sender and sync interval, and a bad signature reported
 * as such, naming the sender and its address.
 */
import assert from 'node:assert/strict';
import { signRecord } from '../../../agent/gossip/records';
import { verifyCapacity } from '../../../agent/gossip/signatures';
import type { State } from '../../../agent/gossip/state';
import { TEST } from '../../../agent/gossip/timing';
import type { Update } from '../../../agent/gossip/messages';
import { identity, makeMember, recordFor } from './helpers';

const T0 = 1_000_000;
const peer = { name: 'c', idPub: identity('c').idPub, remote: '127.0.0.3:40000' };

describe('gossip: signature checks per sender', () => {
  it('a sender gets a budget of checks per sync interval; past it, its records wait', () => {
    const a = makeMember('a', '127.0.0.1:7947', T0);
    const names = Array.from({ length: 50 }, (_, i) => `m${i}`);
    a.receive(
      peer,
      { t: 'g', u: names.map((n): Update => ({ k: 'a', r: signRecord(recordFor(n, '127.0.0.9:7947', identity(n)), 1, identity(n).secretKey) })) },
      T0,
    );
    const s = (a as unknown as { s: State }).s;
    const cap = verifyCapacity(s);
    // Newer incarnations of known members: each one is a signature to check.
    const updates: Update[] = [];
    for (let inc = 2; updates.length < cap + 100; inc++)
      for (const n of names) updates.push({ k: 'a', r: signRecord(recordFor(n, '127.0.0.9:7947', identity(n)), inc, identity(n).secretKey) });
    a.receive(peer, { t: 'g', u: updates.slice(0, cap + 100) }, T0 + 1);
    const spent = a.counters()['verify-budget-spent'] ?? 0;
    // 50 checks went on the first message, the budget holds `cap`: 150 of these `cap + 100` wait.
    assert.equal(spent, 150, `checks refused past the budget: ${spent}`);
    a.receive(peer, { t: 'g', u: updates.slice(cap + 100 - 10) }, T0 + 1 + TEST.syncInterval);
    assert.equal(a.counters()['verify-budget-spent'], spent, 'a new interval, a new budget');
  });

  it('a bad signature is reported as an event naming the sender, its address and the record', () => {
    const a = makeMember('a', '127.0.0.1:7947', T0);
    const id = identity('forged');
    const good = signRecord(recordFor('forged', '127.0.0.9:7947', id), 1, id.secretKey);
    const step = a.receive(peer, { t: 'g', u: [{ k: 'a', r: { ...good, incarnation: 2 } }] }, T0);
    assert.deepEqual(
      step.events.filter((e) => e.type === 'bad-signature').map((e) => [e.name, e.detail]),
      [['c', '127.0.0.3:40000 sent the record of "forged" with a bad signature']],
    );
    assert.equal(a.counters()['bad-signature'], 1);
  });
});
