/**
 * MembershipDriver's timer on a clock that defers (Clock.defer): the tick a
 * timer asks for runs only once the I/O already waiting has been handled, and
 * nothing is armed twice meanwhile. Plus the Node fact it stands on: a
 * callback deferred from a timer with setImmediate runs after the sockets
 * whose data was already there have been read.
 */
import assert from 'node:assert/strict';
import * as net from 'net';
import { MembershipDriver } from '../../../agent/gossip/driver';
import { ManualClock, systemClock } from '../../../shared/clock';
import { makeMember } from './helpers';

/** A virtual clock whose deferred callbacks wait until the test flushes them (the "I/O" in between is the test's). */
class DeferringClock extends ManualClock {
  readonly deferred: Array<() => void> = [];
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }
  flush(): void {
    for (const fn of this.deferred.splice(0)) fn();
  }
}

function drivenMember(clock: ManualClock): { driver: MembershipDriver; ticks: number[] } {
  const m = makeMember('a', '127.0.0.1:7947', clock.now());
  const ticks: number[] = [];
  const tick = m.tick.bind(m);
  m.tick = (now) => {
    ticks.push(now);
    return tick(now);
  };
  const driver = new MembershipDriver(m, clock, { event: () => undefined, close: () => undefined, send: () => undefined });
  return { driver, ticks };
}

describe('gossip: the driver waits for pending I/O before a tick', () => {
  it('a timer that fires defers its tick; calls meanwhile arm no second timer; the tick then re-arms', () => {
    const clock = new DeferringClock();
    const { driver, ticks } = drivenMember(clock);
    driver.start();
    assert.equal(clock.pendingCount(), 1, 'one timer armed');
    clock.advance(clock.peekTime() - clock.now());
    assert.deepEqual(ticks, [], 'the timer fired, its tick waits');
    assert.equal(clock.deferred.length, 1);
    // A message handled in between (run → apply → arm): no timer while the tick is deferred.
    driver.arm();
    assert.equal(clock.pendingCount(), 0);
    clock.advance(5);
    clock.flush();
    assert.equal(ticks.length, 1, 'the tick ran once');
    assert.equal(ticks[0], clock.now(), 'at the time it actually ran, after the I/O');
    assert.equal(clock.pendingCount(), 1, 'and armed the next timer');
  });

  it('a driver stopped while its tick is deferred does not tick', () => {
    const clock = new DeferringClock();
    const { driver, ticks } = drivenMember(clock);
    driver.start();
    clock.advance(clock.peekTime() - clock.now());
    driver.stop();
    clock.flush();
    assert.deepEqual(ticks, []);
    assert.equal(clock.pendingCount(), 0);
  });

  it('on a clock without defer (the simulator, ManualClock) the tick runs in the timer itself', () => {
    const clock = new ManualClock();
    const { driver, ticks } = drivenMember(clock);
    driver.start();
    clock.advance(clock.peekTime() - clock.now());
    assert.equal(ticks.length, 1);
  });

  it('Node: a callback deferred from a due timer runs after data already waiting on a socket is read', async () => {
    const order: string[] = [];
    const server = net.createServer((sock) => sock.on('data', () => order.push('data')));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const client = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => client.on('connect', r));
    await new Promise((r) => setTimeout(r, 50)); // the server has accepted
    try {
      await new Promise<void>((resolve) => {
        // From the check phase: the next turn of the loop starts with its timers, then reads sockets.
        setImmediate(() => {
          setTimeout(() => {
            order.push('timer');
            systemClock.defer?.(() => {
              order.push('deferred');
              resolve();
            });
          }, 0);
          client.write('ack');
          // One long turn: by its end the timer is due and the data has arrived.
          const until = Date.now() + 50;
          while (Date.now() < until);
        });
      });
      assert.deepEqual(order, ['timer', 'data', 'deferred']);
    } finally {
      client.destroy();
      server.close();
    }
  });
});
