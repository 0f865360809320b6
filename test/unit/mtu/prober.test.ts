/**
 * When path MTUs are measured (agent/mtu/prober.ts), on a manual clock: a
 * new peer soon after it is seen (with jitter), then every interval, at
 * most two at once, again soon after an address change, never again once
 * gone; and the record's `paths` publication throttle driven by the
 * service (agent/mtu/service.ts).
 */
import assert from 'node:assert/strict';
import { ManualClock } from '../../../shared/clock';
import { DEFAULT_TIMING, FIRST_DELAY_MS, FIRST_JITTER_MS, INTERVAL_MS, PathMtuProber, timingFromEnv } from '../../../agent/mtu/prober';
import type { SearchResult } from '../../../agent/mtu/search';
import { PeerLinks } from '../../../agent/mtu/links';
import { PATHS_CHECK_MS, PathsService, targetAddress } from '../../../agent/mtu/service';
import { PATHS_MIN_GAP_MS, PATHS_PUBLISH_MS } from '../../../agent/mtu/paths';
import type { MemberRecord, MemberState, PathView } from '../../../shared/member';

/** A measurement that ends when the test says so. */
class Manual {
  readonly calls: { address: string; at: number; resolve: (r: SearchResult) => void }[] = [];
  constructor(private readonly clock: ManualClock) {}
  readonly measure = (address: string): Promise<SearchResult> => new Promise((resolve) => this.calls.push({ address, at: this.clock.now(), resolve }));
  finish(i: number, mtu: number | null): void {
    this.calls[i].resolve({ mtu, how: 'first', probes: 1, bytes: mtu ?? 0 });
  }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('mtu/prober', () => {
  it('measures a new peer within the first delay plus jitter, then every interval give or take a tenth', async () => {
    const clock = new ManualClock();
    const m = new Manual(clock);
    const t0 = clock.now();
    const p = new PathMtuProber({ clock, measure: m.measure, rng: () => 0.5 });
    p.setTargets([{ name: 'mars', address: '2001:db8::2' }]);
    clock.advance(FIRST_DELAY_MS - 1);
    assert.equal(m.calls.length, 0);
    clock.advance(FIRST_JITTER_MS);
    assert.equal(m.calls.length, 1);
    assert.equal(m.calls[0].at - t0, FIRST_DELAY_MS + FIRST_JITTER_MS / 2);
    assert.deepEqual([...p.results()], []);
    m.finish(0, 1280);
    await flush();
    assert.deepEqual([...p.results()], [['mars', 1280]]);
    const done = clock.now();
    clock.advance(INTERVAL_MS * 0.9);
    assert.equal(m.calls.length, 1);
    clock.advance(INTERVAL_MS * 0.2);
    assert.equal(m.calls.length, 2);
    assert.equal(m.calls[1].at - done, INTERVAL_MS, 'rng 0.5: exactly the interval');
    m.finish(1, 1280);
    await flush();
    p.stop();
  });

  it('spreads first measurements with jitter and keeps at most two in flight', async () => {
    const clock = new ManualClock();
    const m = new Manual(clock);
    let i = 0;
    const rngs = [0, 0.25, 0.5, 0.75, 0.99];
    const p = new PathMtuProber({ clock, measure: m.measure, rng: () => rngs[i++ % rngs.length] });
    p.setTargets(['a', 'b', 'c', 'd', 'e'].map((n, k) => ({ name: n, address: `2001:db8::${k + 1}` })));
    clock.advance(FIRST_DELAY_MS + FIRST_JITTER_MS);
    assert.equal(m.calls.length, 2, 'two at once');
    assert.deepEqual(
      m.calls.map((c) => c.address),
      ['2001:db8::1', '2001:db8::2'],
    );
    m.finish(0, 1500);
    await flush();
    assert.equal(m.calls.length, 3, 'the next starts when one ends');
    m.finish(1, 1500);
    m.finish(2, 1500);
    await flush();
    assert.equal(m.calls.length, 5);
    m.finish(3, 1500);
    m.finish(4, null);
    await flush();
    assert.equal(p.results().get('e'), null);
    assert.equal(p.results().size, 5);
    p.stop();
  });

  it('a new address is measured again soon; a gone peer is dropped, even mid-measurement', async () => {
    const clock = new ManualClock();
    const m = new Manual(clock);
    const p = new PathMtuProber({ clock, measure: m.measure, rng: () => 0 });
    p.setTargets([{ name: 'a', address: '2001:db8::1' }]);
    clock.advance(FIRST_DELAY_MS);
    m.finish(0, 1500);
    await flush();
    p.setTargets([{ name: 'a', address: '2001:db8::9' }]);
    assert.equal(p.results().size, 0, "the old address's value is not this address's");
    clock.advance(FIRST_DELAY_MS);
    assert.equal(m.calls[1].address, '2001:db8::9');
    p.setTargets([]);
    m.finish(1, 1400);
    await flush();
    assert.equal(p.results().size, 0);
    clock.advance(2 * INTERVAL_MS);
    assert.equal(m.calls.length, 2);
    p.stop();
    assert.equal(clock.pendingCount(), 0, 'stop leaves no timer');
  });

  it('a failed measurement keeps no value and is tried again at the next interval', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const p = new PathMtuProber({ clock, measure: () => (calls++, Promise.reject(new Error('ping not found'))), rng: () => 0 });
    p.setTargets([{ name: 'a', address: '2001:db8::1' }]);
    clock.advance(FIRST_DELAY_MS);
    await flush();
    assert.equal(p.results().size, 0);
    clock.advance(INTERVAL_MS);
    assert.equal(calls, 2);
    p.stop();
  });

  it("the test hook shortens the schedule, a ping's wait and the publication gap, and only that", () => {
    assert.equal(timingFromEnv({}), DEFAULT_TIMING);
    assert.equal(timingFromEnv({ HEPTO_PATH_MTU_INTERVAL_MS: 'x' }), DEFAULT_TIMING);
    assert.deepEqual([DEFAULT_TIMING.pingWaitS, DEFAULT_TIMING.publishGapMs], [1, PATHS_MIN_GAP_MS]);
    assert.deepEqual(timingFromEnv({ HEPTO_PATH_MTU_INTERVAL_MS: '10000' }), {
      ...DEFAULT_TIMING,
      intervalMs: 10000,
      firstDelayMs: 500,
      firstJitterMs: 500,
      pingWaitS: 0.3,
      publishGapMs: 1000,
    });
  });

  it("probes the peer address in the family of this node's own", () => {
    assert.equal(targetAddress(['2001:db8::1'], ['192.0.2.2', '2001:db8::2']), '2001:db8::2');
    assert.equal(targetAddress(['192.0.2.1'], ['2001:db8::2', '192.0.2.2']), '192.0.2.2');
    assert.equal(targetAddress(['2001:db8::1'], ['192.0.2.2']), '192.0.2.2');
    assert.equal(targetAddress([], ['peer.example']), null);
  });
});

function rec(name: string, ip: string, paths?: Record<string, PathView>): MemberRecord {
  return {
    name,
    role: 'node',
    addresses: [`[${ip}]:7947`],
    node_ips: [ip],
    overlay_ip: null,
    facts: { cores: 1, memory_mb: 1, os: 'x', agent_version: '0' },
    containers: {},
    id_pub: 'x',
    created_at: 0,
    ...(paths ? { paths } : {}),
  };
}

describe('mtu/service (publication of paths)', () => {
  function setup() {
    const clock = new ManualClock();
    const m = new Manual(clock);
    const links = new PeerLinks();
    const members: { name: string; state: MemberState; record: MemberRecord }[] = [
      { name: 'venus', state: 'alive', record: rec('venus', '2001:db8::1') },
      { name: 'mars', state: 'alive', record: rec('mars', '2001:db8::2') },
    ];
    const published: { at: number; paths: Record<string, PathView> }[] = [];
    const svc = new PathsService({
      clock,
      logger: undefined as never,
      self: 'venus',
      members: () => members,
      links,
      publish: (paths) => published.push({ at: clock.now(), paths }),
      measure: m.measure,
      rng: () => 0,
      timing: { ...DEFAULT_TIMING },
    });
    return { clock, m, links, members, published, svc };
  }

  it('probes only members that talked to this agent directly: a made-up member cannot aim its pings at a third party', () => {
    const { clock, m, links, members, svc } = setup();
    members.push({ name: 'fake', state: 'alive', record: rec('fake', '2001:db8::99') });
    links.heard('mars');
    svc.start();
    clock.advance(FIRST_DELAY_MS + 10 * FIRST_JITTER_MS);
    assert.deepEqual(
      m.calls.map((c) => c.address),
      ['2001:db8::2'],
    );
    // Once it talks to us itself (a real member), it is measured, without waiting for a member event.
    links.heard('fake');
    clock.advance(PATHS_CHECK_MS + FIRST_DELAY_MS + 10 * FIRST_JITTER_MS);
    assert.deepEqual(m.calls.map((c) => c.address).sort(), ['2001:db8::2', '2001:db8::99']);
    svc.stop();
  });

  it('publishes at once, then an mtu or up change within the minimum gap, RTT-only changes at most once a minute', async () => {
    const { clock, m, links, members, published, svc } = setup();
    links.heard('mars');
    svc.start();
    assert.deepEqual(
      published.map((p) => p.paths),
      [{ mars: { up: true, rtt_ms: null, mtu: null } }],
    );
    const t0 = clock.now();
    clock.advance(FIRST_DELAY_MS);
    m.finish(0, 1280);
    await flush();
    // The mtu is new: published after the minimum gap since the first publication, not a minute.
    clock.advance(PATHS_MIN_GAP_MS);
    assert.equal(published.length, 2);
    assert.equal(published[1].at - t0, PATHS_MIN_GAP_MS);
    assert.deepEqual(published[1].paths.mars, { up: true, rtt_ms: null, mtu: 1280 });
    // Round trips only: at most once a minute.
    const t1 = published[1].at;
    links.pingSent('mars', 1, clock.now());
    clock.advance(12);
    links.ackReceived('mars', 1, clock.now());
    clock.advance(t1 + PATHS_PUBLISH_MS - 1 - clock.now());
    assert.equal(published.length, 2);
    clock.advance(5000);
    assert.equal(published.length, 3);
    assert.ok(published[2].at - t1 >= PATHS_PUBLISH_MS && published[2].at - t1 < PATHS_PUBLISH_MS + 5000);
    assert.deepEqual(published[2].paths.mars, { up: true, rtt_ms: 12, mtu: 1280 });
    // A small RTT wobble is not worth a record.
    links.pingSent('mars', 2, clock.now());
    clock.advance(13);
    links.ackReceived('mars', 2, clock.now());
    clock.advance(3 * PATHS_PUBLISH_MS);
    assert.equal(published.length, 3);
    // The link goes down: published soon.
    links.disconnected('mars');
    links.pingSent('mars', 3, clock.now());
    clock.advance(PATHS_MIN_GAP_MS);
    assert.equal(published.length, 4);
    assert.equal(published[3].paths.mars.up, false);
    // A member that left: its entry goes.
    members[1].state = 'left';
    svc.membersChanged();
    clock.advance(PATHS_MIN_GAP_MS);
    assert.deepEqual(published[published.length - 1].paths, {});
    svc.stop();
    assert.equal(clock.pendingCount(), 0);
  });
});
