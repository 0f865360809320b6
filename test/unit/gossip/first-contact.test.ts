import assert from 'node:assert/strict';
import { TEST } from '../../../agent/gossip/timing';
import { aLearnsBC } from './helpers';

describe('gossip: first contacts while members arrive', () => {
  it('a first contact that fails while members arrive suspects nobody; once they stop arriving, a failure suspects', () => {
    const T0 = 1_000_000;
    // a learns b and c from c's gossip: c has talked to a, b never has. Both arrived just now.
    const { a, c } = aLearnsBC(T0, 'fc');
    // c answers a's pings at once; b answers nothing, and nobody reaches it for a.
    const probesOfB: number[] = [];
    const suspectedAt: number[] = [];
    let t = T0;
    const runTo = (end: number): void => {
      for (; t < end; t++) {
        const step = a.tick(t);
        for (const o of step.send) {
          if (o.msg.t === 'p' && o.to.name === 'c') a.receive(c, { t: 'k', s: o.msg.s }, t);
          if (o.msg.t === 'p' && o.to.name === 'b') probesOfB.push(t);
        }
        for (const e of step.events) if (e.type === 'suspect' && e.name === 'b') suspectedAt.push(t);
      }
    };
    // Members arrive for one sync interval after the last one came alive.
    runTo(T0 + TEST.syncInterval);
    assert.ok(probesOfB.length > 0, 'a probed b while members arrived');
    runTo(T0 + TEST.syncInterval + 2 * 2 * TEST.probeInterval); // the last of those probes has ended (twice the period: a first contact)
    assert.ok((a.counters()['first-contact-failed'] ?? 0) >= 1, 'its failure was counted');
    assert.deepEqual(suspectedAt, [], 'nobody suspected b while members arrived');
    assert.equal(a.view().find((v) => v.name === 'b')?.state, 'alive');
    // Nobody arrives any more: the next probe of b that fails makes it suspect.
    runTo(t + 10 * TEST.probeInterval);
    assert.ok(suspectedAt.length > 0, 'b suspected once members stopped arriving');
    const firstLate = probesOfB.find((p) => p >= T0 + TEST.syncInterval) as number;
    assert.ok(suspectedAt[0]! > firstLate, 'by a probe started after members stopped arriving');
  });
});
