import assert from 'node:assert/strict';
import type { DigestEntry, GossipMessage, StateCode, Update } from '../../../agent/gossip/messages';
import { encodeMessage } from '../../../agent/gossip/messages';
import { decodeMessage } from '../../../agent/gossip/validate';
import { signLeft, signRecord } from '../../../agent/gossip/records';
import { seededRng } from '../../helpers/sim-router';
import { addressOf, bootCluster, identity, recordFor } from './helpers';

describe('gossip: hostile but well-formed traffic', () => {
  it('thousands of random valid messages from authenticated peers never break a member', () => {
    const { router, names } = bootCluster(5);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const rng = seededRng(1234);
    const pickOf = <T>(a: T[]): T => a[Math.floor(rng() * a.length)] as T;
    const pool = ['n0', 'n1', 'n2', 'n3', 'n4', 'x1', 'x2'];
    const incs = [0, 1, 2, 3, 1_000, 2 ** 40, Number.MAX_SAFE_INTEGER];
    const update = (): Update => {
      const n = pickOf(pool);
      const i = pickOf(incs);
      // Forgers hold their own keys, never a real member's (x1, x2 are new names, theirs to sign).
      const id = identity(n.startsWith('x') ? n : `forger-${rng() < 0.5 ? 'a' : 'b'}-${n}`);
      switch (pickOf(['a', 's', 'd', 'l', 'ao'])) {
        case 'a':
          return { k: 'a', r: signRecord(recordFor(n, addressOf(7), id), i, id.secretKey) };
        case 'ao':
          return {
            k: 'a',
            r: signRecord(recordFor(n, addressOf(7), id), i, id.secretKey),
            o: pickOf(['s', 'd', 'l'] as const),
            f: pickOf(pool),
            g: signLeft(n, i, id.secretKey),
          };
        case 's':
          return { k: 's', n, i, f: pickOf(pool) };
        case 'd':
          return { k: 'd', n, i, f: pickOf(pool) };
        default:
          return { k: 'l', n, i, g: signLeft(n, i, id.secretKey) };
      }
    };
    const digest = (): DigestEntry[] =>
      Array.from({ length: 1 + Math.floor(rng() * 6) }, () => [pickOf(pool), pickOf(incs), Math.floor(rng() * 4) as StateCode]);
    const message = (): GossipMessage => {
      const u = Array.from({ length: Math.floor(rng() * 4) }, update);
      switch (pickOf(['p', 'k', 'r', 'n', 'g', 'h', 'd', 'y'])) {
        case 'p':
          return { t: 'p', s: Math.floor(rng() * 100), u };
        case 'k':
          return { t: 'k', s: Math.floor(rng() * 100), u };
        case 'r':
          return { t: 'r', s: Math.floor(rng() * 100), n: pickOf(pool), a: [addressOf(Math.floor(rng() * 9))] };
        case 'n':
          return { t: 'n', s: Math.floor(rng() * 100) };
        case 'g':
          return { t: 'g', u };
        case 'h':
          return { t: 'h', h: 'AAAAAAAAAAAAAAAA' };
        case 'd':
          return { t: 'd', d: digest(), u };
        default:
          return { t: 'y', u, w: [pickOf(pool)] };
      }
    };
    const victim = router.node('n0');
    for (let k = 0; k < 2000; k++) {
      const sender = pickOf(['n1', 'n2', 'x1', 'x9']);
      const idPub = identity(rng() < 0.8 ? sender : `forger-${sender}`).idPub;
      const msg = decodeMessage(encodeMessage(message()));
      router.handle(victim, victim.m.receive({ name: sender, idPub, remote: '127.0.0.9:1' }, msg, router.now));
      if (k % 50 === 0) router.run(20);
    }
    assert.equal(victim.m.counters()['internal-error'], undefined, JSON.stringify(victim.m.counters()));
    assert.ok((victim.m.counters()['bad-signature'] ?? 0) > 0 || (victim.m.counters()['name-conflict'] ?? 0) > 0);
    // Real members are still known with their real identities, and the member still works.
    for (const n of ['n1', 'n2', 'n3', 'n4']) {
      assert.equal(victim.m.view().find((v) => v.name === n)?.record.id_pub, identity(n).idPub, n);
    }
    assert.ok(Number.isFinite(victim.m.nextWakeup()));
    assert.ok(victim.m.incarnation() < 1000, `no absurd self incarnation from others' claims: ${victim.m.incarnation()}`);
  });
});
