import assert from 'node:assert/strict';
import { TimerHeap } from '../../../agent/gossip/timers';
import { seededRng } from '../../helpers/sim-router';

describe('gossip: member timers', () => {
  it('hands out due timers earliest first, and none before their time', () => {
    const rng = seededRng(7);
    const h = new TimerHeap();
    const pushed: [number, number][] = [];
    for (let id = 0; id < 500; id++) {
      const at = Math.floor(rng() * 1000);
      h.push(at, id);
      pushed.push([at, id]);
    }
    assert.equal(h.next(), Math.min(...pushed.map((p) => p[0])));
    assert.equal(h.popDue(h.next() - 1), null, 'nothing is due before the earliest time');
    const got: [number, number][] = [];
    for (let now = 0; now <= 1000; now += 100) {
      for (let due = h.popDue(now); due !== null; due = h.popDue(now)) {
        assert.ok(due[0] <= now, `${due[0]} handed out at ${now}`);
        got.push(due);
      }
      assert.ok(h.next() > now, 'everything due was handed out');
    }
    assert.equal(h.size, 0);
    assert.deepEqual(
      got.map((g) => g[0]),
      pushed.map((p) => p[0]).sort((a, b) => a - b),
      'in time order',
    );
    assert.deepEqual(
      got.map((g) => g[1]).sort((a, b) => a - b),
      pushed.map((p) => p[1]),
      'each timer once, with its id',
    );
    assert.equal(h.next(), Number.POSITIVE_INFINITY);
  });
});
