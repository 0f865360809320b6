/**
 * The path MTU search (agent/mtu/search.ts) against a model network: a
 * path of links, each with its MTU, whose routers answer "packet too big"
 * or drop the packet silently (a PMTU black hole), to a peer that answers
 * ping or not. Also the parsing of what iputils' ping prints.
 */
import assert from 'node:assert/strict';
import { searchPathMtu, type Family, type ProbeOutcome, type SizeProbe } from '../../../agent/mtu/search';
import { parsePing } from '../../../agent/mtu/ping';

interface Hop {
  mtu: number;
  /** The router before this link answers "too big" (else: black hole). */
  ptb: boolean;
}

/** A model path: the first hop is the local link (the kernel always reports it, as ping's "local error"). */
function model(hops: Hop[], opts: { answers?: boolean; loseEvery?: number } = {}): SizeProbe & { sent: number[] } {
  const sent: number[] = [];
  let n = 0;
  const probe = async (size: number): Promise<ProbeOutcome> => {
    sent.push(size);
    n++;
    if (opts.loseEvery && n % opts.loseEvery === 0) return 'lost';
    for (const h of hops) if (size > h.mtu) return h.ptb ? { tooBig: h.mtu } : 'lost';
    return opts.answers === false ? 'lost' : 'ok';
  };
  return Object.assign(probe, { sent });
}

async function search(hops: Hop[], family: Family, max: number, opts: { answers?: boolean; loseEvery?: number } = {}) {
  const p = model(hops, opts);
  const r = await searchPathMtu(p, { family, max });
  return { ...r, sent: p.sent };
}

describe('mtu/search', () => {
  it('a path as wide as the local link: one probe', async () => {
    const r = await search([{ mtu: 1500, ptb: true }], 6, 1500);
    assert.deepEqual({ mtu: r.mtu, how: r.how, probes: r.probes, bytes: r.bytes }, { mtu: 1500, how: 'first', probes: 1, bytes: 1500 });
  });

  it('packet too big comes back: the reported MTU is taken at once (IPv6 and IPv4)', async () => {
    const r6 = await search(
      [
        { mtu: 1500, ptb: true },
        { mtu: 1280, ptb: true },
      ],
      6,
      1500,
    );
    assert.equal(r6.mtu, 1280);
    assert.equal(r6.how, 'too-big');
    assert.deepEqual(r6.sent, [1500, 1280]);
    const r4 = await search(
      [
        { mtu: 1500, ptb: true },
        { mtu: 1400, ptb: true },
        { mtu: 1300, ptb: true },
      ],
      4,
      1500,
    );
    assert.equal(r4.mtu, 1300);
    assert.deepEqual(r4.sent, [1500, 1400, 1300]);
  });

  it('a black hole (too big dropped silently): the floor, then a binary search down to the exact MTU', async () => {
    for (const mtu of [1280, 1281, 1333, 1420, 1499]) {
      const r = await search(
        [
          { mtu: 1500, ptb: true },
          { mtu, ptb: false },
        ],
        6,
        1500,
      );
      assert.equal(r.mtu, mtu, `path ${mtu}`);
      assert.equal(r.how, 'search');
      assert.equal(r.sent[1], 1500, 'a lost probe is sent twice');
      assert.equal(r.sent[2], 1280, 'then the IPv6 floor');
      // 220 sizes between the floor and the local MTU: about log2(220) steps, lost ones twice.
      assert.ok(r.probes <= 2 + 1 + 2 * 8, `${r.probes} probes for ${mtu}`);
    }
    const v4 = await search(
      [
        { mtu: 1500, ptb: true },
        { mtu: 1000, ptb: false },
      ],
      4,
      1500,
    );
    assert.equal(v4.mtu, 1000);
    assert.equal(v4.sent[2], 576, 'the IPv4 floor');
  });

  it('a too-big answer, then a black hole further on: searches below the reported MTU', async () => {
    const r = await search(
      [
        { mtu: 1500, ptb: true },
        { mtu: 1400, ptb: true },
        { mtu: 1350, ptb: false },
      ],
      6,
      1500,
    );
    assert.equal(r.mtu, 1350);
  });

  it('the peer does not answer at all (even the floor is lost): unknown (null), not 0', async () => {
    const r = await search([{ mtu: 1500, ptb: true }], 6, 1500, { answers: false });
    assert.equal(r.mtu, null);
    assert.equal(r.how, 'unreachable');
    assert.deepEqual(r.sent, [1500, 1500, 1280, 1280]);
    const r4 = await search(
      [
        { mtu: 1500, ptb: true },
        { mtu: 1280, ptb: true },
      ],
      4,
      1500,
      { answers: false },
    );
    assert.equal(r4.mtu, null);
  });

  it('one lost packet does not halve the estimate (a lost probe is retried)', async () => {
    const r = await search([{ mtu: 1500, ptb: true }], 6, 1500, { loseEvery: 1_000_000 });
    assert.equal(r.mtu, 1500);
    const lossy = await search(
      [
        { mtu: 1500, ptb: true },
        { mtu: 1400, ptb: false },
      ],
      6,
      1500,
      { loseEvery: 5 },
    );
    assert.equal(lossy.mtu, 1400);
  });

  it('starts at the local route MTU (a jumbo link, a small one) and ignores nonsense "too big" values', async () => {
    assert.equal(
      (
        await search(
          [
            { mtu: 9000, ptb: true },
            { mtu: 1500, ptb: true },
          ],
          6,
          9000,
        )
      ).mtu,
      1500,
    );
    assert.equal((await search([{ mtu: 1280, ptb: true }], 6, 1280)).probes, 1);
    // An IPv6 "too big" below 1280 is not believed (RFC 8201): treated as lost.
    const liar = async (size: number): Promise<ProbeOutcome> => (size > 1400 ? { tooBig: 600 } : 'ok');
    assert.equal((await searchPathMtu(liar, { family: 6, max: 1500 })).mtu, 1400);
    // A probe that says too big for ever still ends.
    const always = async (): Promise<ProbeOutcome> => ({ tooBig: 1300 });
    assert.equal((await searchPathMtu(always, { family: 6, max: 1500 })).mtu, null);
  });

  it('reads what iputils ping prints (measured on this machine)', () => {
    assert.equal(parsePing(0, 'PING x(x) 1232 data bytes\n1240 bytes from 2001:db8::2: icmp_seq=1 ttl=63 time=0.085 ms\n', ''), 'ok');
    assert.deepEqual(parsePing(1, 'From 2001:db8:77:2::1 icmp_seq=1 Packet too big: mtu=1280\n', ''), { tooBig: 1280 });
    assert.deepEqual(parsePing(1, 'From 192.0.2.17 icmp_seq=1 Frag needed and DF set (mtu = 1280)\n', ''), { tooBig: 1280 });
    assert.deepEqual(parsePing(1, '', 'ping: local error: message too long, mtu: 1280\n'), { tooBig: 1280 });
    assert.deepEqual(parsePing(1, '', 'ping: local error: message too long, mtu=1400\n'), { tooBig: 1400 });
    assert.equal(parsePing(1, '1 packets transmitted, 0 received, 100% packet loss, time 0ms\n', ''), 'lost');
    assert.equal(parsePing(1, 'From 2001:db8::1 icmp_seq=1 Destination unreachable: Address unreachable\n', ''), 'lost');
  });
});
