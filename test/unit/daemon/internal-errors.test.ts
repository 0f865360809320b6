/**
 * Internal errors are seen (issue 15): agent/daemon/internal-errors.ts under
 * a manual clock (first one logged with its detail, repeats rate-limited per
 * kind with a count of those left out, a burst becomes one status problem for
 * a while), and the gossip core hands the errors it catches to its hook.
 */
import assert from 'node:assert/strict';
import { ManualClock } from '../../../shared/clock';
import { memoryLogger } from '../../helpers/memory-logger';
import { BURST_COUNT, BURST_SHOWN_MS, InternalErrors, LOG_EVERY_MS } from '../../../agent/daemon/internal-errors';
import { Membership } from '../../../agent/gossip/membership';
import { generateIdentity } from '../../../agent/net/identity';
import { LAN } from '../../../agent/gossip/timing';
import type { MemberRecord } from '../../../shared/member';
import type { GossipMessage } from '../../../agent/gossip/messages';

const parsed = (lines: string[]): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

describe('daemon/internal-errors: logged once, rate-limited, a burst in status', () => {
  it('logs the first error of a kind with its detail and where it was thrown, and counts it', () => {
    const clock = new ManualClock();
    const mem = memoryLogger('debug', 'json');
    const errs = new InternalErrors(clock, mem.logger);
    errs.report('gossip', 'apply-update', new TypeError('cannot read properties of undefined'), { step: 'receive' });
    const lines = parsed(mem.lines);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, 'error');
    assert.equal(lines[0]?.msg, 'internal error');
    assert.equal(lines[0]?.kind, 'apply-update');
    assert.equal(lines[0]?.component, 'gossip');
    assert.equal(lines[0]?.error, 'cannot read properties of undefined');
    assert.equal(lines[0]?.step, 'receive');
    assert.match(String(lines[0]?.at), /internal-errors\.test\.js/, 'the stack frame where it was thrown');
    assert.deepEqual(errs.counts(), [{ component: 'gossip', kind: 'apply-update', count: 1 }]);
  });

  it('repeats of a kind: at most one line per minute, saying how many were left out; every one counted', () => {
    const clock = new ManualClock();
    const mem = memoryLogger('debug', 'json');
    const errs = new InternalErrors(clock, mem.logger);
    for (let i = 0; i < 5; i++) {
      errs.report('gossip', 'step', new Error(`boom ${i}`));
      clock.advance(1000);
    }
    assert.equal(mem.lines.length, 1, 'only the first of five within a minute');
    // Another kind is not held back by the first.
    errs.report('runtime', 'reconcile', new Error('other'));
    assert.equal(mem.lines.length, 2);
    clock.advance(LOG_EVERY_MS);
    errs.report('gossip', 'step', new Error('boom again'));
    const lines = parsed(mem.lines);
    assert.equal(lines.length, 3);
    assert.equal(lines[2]?.msg, 'internal error, again');
    assert.equal(lines[2]?.not_logged, 4, 'the four left out since the last line');
    assert.equal(lines[2]?.total, 6);
    assert.equal(lines[2]?.error, 'boom again');
    errs.report('gossip', 'step', new Error('and again'));
    assert.equal(mem.lines.length, 3, 'held back again for a minute');
    assert.deepEqual(
      errs.counts().sort((a, b) => a.kind.localeCompare(b.kind)),
      [
        { component: 'runtime', kind: 'reconcile', count: 1 },
        { component: 'gossip', kind: 'step', count: 7 },
      ],
    );
  });

  it(`${BURST_COUNT} of a kind within a minute make one status problem naming the kind and what to do, which goes after ${BURST_SHOWN_MS / 60_000} minutes`, () => {
    const clock = new ManualClock();
    const errs = new InternalErrors(clock, memoryLogger().logger);
    for (let i = 0; i < BURST_COUNT - 1; i++) {
      errs.report('gossip', 'apply-update', new Error('x'));
      clock.advance(5000);
    }
    assert.deepEqual(errs.problems(), [], `${BURST_COUNT - 1} in a minute are no burst`);
    errs.report('gossip', 'apply-update', new Error('x'));
    const problems = errs.problems();
    assert.equal(problems.length, 1, JSON.stringify(problems));
    const p = problems[0] as string;
    assert.match(p, /internal error "apply-update" in the gossip core happened 10 times within a minute/);
    assert.match(p, /report it with this agent's log lines that say "internal error"/);
    assert.ok(!p.includes('\n'), 'one line');
    clock.advance(BURST_SHOWN_MS - 1);
    assert.equal(errs.problems().length, 1, 'still shown');
    clock.advance(1);
    assert.deepEqual(errs.problems(), [], 'gone once the burst is old');
  });

  it('the same number spread over more than a minute is no burst', () => {
    const clock = new ManualClock();
    const errs = new InternalErrors(clock, memoryLogger().logger);
    for (let i = 0; i < 3 * BURST_COUNT; i++) {
      errs.report('runtime', 'reconcile', new Error('x'));
      clock.advance(7000);
    }
    assert.deepEqual(errs.problems(), []);
    assert.equal(errs.counts()[0]?.count, 3 * BURST_COUNT);
  });

  it('a kind that is not one fixed word is folded into "other" (labels stay few)', () => {
    const clock = new ManualClock();
    const errs = new InternalErrors(clock, memoryLogger().logger);
    errs.report('gossip', 'Something With Spaces and a "quote"', new Error('x'));
    assert.deepEqual(errs.counts(), [{ component: 'gossip', kind: 'other', count: 1 }]);
  });

  it('the gossip core hands every error it catches to its hook, by kind, and still counts internal-error', () => {
    const id = generateIdentity(1_000);
    const record: MemberRecord = {
      name: 'alpha',
      role: 'node',
      addresses: ['127.0.0.1:7947'],
      node_ips: [],
      overlay_ip: null,
      facts: {},
      containers: {},
      id_pub: id.idPub,
      created_at: 1,
    } as unknown as MemberRecord;
    const m = new Membership({ record, secretKey: id.secretKey, incarnation: 1, timing: LAN, now: 1_000, rng: () => 0.5 });
    const got: Array<[string, string]> = [];
    m.setHooks({ internalError: (kind, e) => got.push([kind, String(e)]) });
    const peer = { name: 'beta', idPub: id.idPub, remote: '127.0.0.2:4000' };
    // Messages reach the core validated (gossip/validate.ts); these stand for a bug letting a bad one through.
    m.receive(peer, { t: 'g', u: 5 } as unknown as GossipMessage, 2_000);
    const throwing = new Proxy(
      {},
      {
        get: () => {
          throw new Error('update blew up');
        },
      },
    );
    m.receive(peer, { t: 'y', u: [throwing], w: [] } as unknown as GossipMessage, 3_000);
    assert.deepEqual(got.map(([k]) => k).sort(), ['apply-update', 'step'], JSON.stringify(got));
    assert.ok(got.some(([k, e]) => k === 'apply-update' && e.includes('update blew up')));
    assert.equal(m.counters()['internal-error'], 2);
  });
});
