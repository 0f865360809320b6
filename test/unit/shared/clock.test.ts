import { strict as assert } from 'assert';
import { EarliestTimer, ManualClock } from '../../../shared/clock';

describe('ManualClock', () => {
  it('fires timers in deadline order, at their time, only when advanced', () => {
    const c = new ManualClock(1000);
    const fired: Array<[string, number]> = [];
    c.setTimeout(() => fired.push(['b', c.now()]), 200);
    c.setTimeout(() => fired.push(['a', c.now()]), 100);
    const h = c.setTimeout(() => fired.push(['never', c.now()]), 150);
    c.clearTimeout(h);
    c.clearTimeout(h);
    assert.equal(c.pendingCount(), 2, 'a cleared timer is no longer pending, cleared twice or not');
    c.advance(99);
    assert.deepEqual(fired, []);
    c.advance(200);
    assert.deepEqual(fired, [
      ['a', 1100],
      ['b', 1200],
    ]);
    assert.equal(c.now(), 1299);
    assert.equal(c.pendingCount(), 0);
    assert.equal(c.peekTime(), Infinity);
  });

  it('clearing a timer that already fired changes nothing', () => {
    const c = new ManualClock(0);
    let n = 0;
    const h = c.setTimeout(() => n++, 5);
    c.setTimeout(() => n++, 50);
    c.advance(10);
    c.clearTimeout(h);
    assert.equal(c.pendingCount(), 1);
    c.advance(100);
    assert.equal(n, 2);
  });

  it('runs timers scheduled by timers within the same advance', () => {
    const c = new ManualClock(0);
    const seen: number[] = [];
    const tick = (): void => {
      seen.push(c.now());
      if (seen.length < 3) c.setTimeout(tick, 10);
    };
    c.setTimeout(tick, 10);
    c.advance(100);
    assert.deepEqual(seen, [10, 20, 30]);
  });
});

describe('EarliestTimer', () => {
  it('fires once, at the earliest time asked; later requests merge into it, an earlier one replaces it', () => {
    const c = new ManualClock(0);
    const t = new EarliestTimer(c);
    const fired: Array<[string, number]> = [];
    t.request(100, () => fired.push(['first', c.now()]));
    t.request(150, () => fired.push(['later', c.now()]));
    t.request(60, () => fired.push(['earlier', c.now()]));
    c.advance(200);
    assert.deepEqual(fired, [['earlier', 60]]);
    t.request(300, () => fired.push(['again', c.now()]));
    t.clear();
    c.advance(200);
    assert.equal(fired.length, 1, 'a cleared timer does not fire');
    assert.equal(c.pendingCount(), 0);
  });
});
