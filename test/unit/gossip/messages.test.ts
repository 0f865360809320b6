import assert from 'node:assert/strict';
import nacl from 'tweetnacl';
import { encodeMessage, sliceUpdates, updateSize } from '../../../agent/gossip/messages';
import { decodeMessage } from '../../../agent/gossip/validate';
import type { GossipMessage, Update } from '../../../agent/gossip/messages';
import { signLeft, signRecord, verifyLeft, verifyRecord } from '../../../agent/gossip/records';
import { canonicalJson } from '../../../shared/canonical-json';
import { isHeptoError } from '../../../shared/errors';
import { identity, recordFor } from './helpers';

const id = identity('codec');
const rec = recordFor('alpha', '127.0.0.1:7947', id);
const signed = signRecord(rec, 7, id.secretKey);
const enc = (x: unknown): Uint8Array => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x));

function rejects(bytes: Uint8Array, why: string): void {
  try {
    decodeMessage(bytes);
  } catch (e) {
    assert.ok(isHeptoError(e), `${why}: threw a non-HeptoError ${String(e)}`);
    assert.equal(e.code, 'FRAME_REJECTED', why);
    assert.match(e.message, /gossip message rejected/);
    return;
  }
  assert.fail(`${why}: was accepted`);
}

describe('gossip: update sizes', () => {
  it('is the JSON length plus a comma, for every kind of update, twice (the record size is cached)', () => {
    const updates: Update[] = [
      { k: 'a', r: signed },
      { k: 'a', r: signed, o: 's', f: 'beta' },
      { k: 'a', r: signed, o: 'l', g: 'c2ln' },
      { k: 's', n: 'alpha', i: 7, f: 'beta' },
      { k: 'd', n: 'alpha', i: 7, f: 'beta' },
      { k: 'l', n: 'alpha', i: 7, g: 'c2ln' },
    ];
    for (let round = 0; round < 2; round++) {
      for (const u of updates) assert.equal(updateSize(u), JSON.stringify(u).length + 1, JSON.stringify({ ...u, r: undefined }));
    }
  });
});

describe('gossip: records', () => {
  it('signs with the identity key; tweetnacl verifies the same bytes', () => {
    assert.ok(verifyRecord(signed));
    const bytes = new TextEncoder().encode(canonicalJson({ record: rec, incarnation: 7 }));
    assert.ok(nacl.sign.detached.verify(bytes, Buffer.from(signed.sig, 'base64'), Buffer.from(id.idPub, 'base64')));
  });

  it('rejects a changed field, incarnation, key or signature', () => {
    assert.equal(verifyRecord({ ...signed, incarnation: 8 }), false);
    assert.equal(verifyRecord({ ...signed, record: { ...rec, addresses: ['192.0.2.9:7947'] } }), false);
    assert.equal(verifyRecord({ ...signed, record: { ...rec, id_pub: identity('other').idPub } }), false);
    assert.equal(verifyRecord({ ...signed, sig: signed.sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }), false);
    assert.equal(verifyRecord({ ...signed, sig: 'not base64!' }), false);
    assert.equal(verifyRecord({ ...signed, record: { ...rec, id_pub: 'short' } }), false);
  });

  it('signs leave notices per name and incarnation', () => {
    const g = signLeft('alpha', 7, id.secretKey);
    assert.ok(verifyLeft('alpha', 7, g, id.idPub));
    assert.equal(verifyLeft('alpha', 8, g, id.idPub), false);
    assert.equal(verifyLeft('beta', 7, g, id.idPub), false);
    assert.equal(verifyLeft('alpha', 7, g, identity('other').idPub), false);
  });
});

describe('gossip: message codec', () => {
  it('round-trips every message type', () => {
    const msgs: GossipMessage[] = [
      { t: 'p', s: 1 },
      {
        t: 'p',
        s: 2,
        u: [
          { k: 'a', r: signed },
          { k: 's', n: 'alpha', i: 7, f: 'beta' },
        ],
      },
      {
        t: 'k',
        s: 3,
        u: [
          { k: 'd', n: 'alpha', i: 7, f: 'beta' },
          { k: 'l', n: 'alpha', i: 7, g: signLeft('alpha', 7, id.secretKey) },
        ],
      },
      { t: 'r', s: 4, n: 'alpha', a: ['127.0.0.1:7947', '[2001:db8::1]:7947'] },
      { t: 'n', s: 4 },
      { t: 'g', u: [{ k: 'a', r: signed, o: 'l', g: signLeft('alpha', 7, id.secretKey) }] },
      { t: 'g', u: [{ k: 'a', r: signed, o: 'd', f: 'beta' }] },
      { t: 'h', h: 'AAAAAAAAAAAAAAAA' },
      {
        t: 'd',
        d: [
          ['alpha', 7, 0],
          ['beta', 1, 3],
        ],
        u: [{ k: 'a', r: signed }],
      },
      { t: 'y', u: [], w: ['alpha'] },
      {
        t: 'g',
        u: [
          { k: 'm', n: 'alpha', p: id.idPub, t: 1_765_000_000_000, g: 'A'.repeat(86) + '==' },
          { k: 'x', n: 'alpha', p: id.idPub, t: 5, g: 'B'.repeat(86) + '==' },
        ],
      },
      { t: 'h', h: 'AAAAAAAAAAAAAAAA', x: 'AAAAAAAAAAAA' },
      { t: 'g', u: [{ k: 'a', r: { ...signed, record: { ...rec, admission: { at: 7, sig: 'C'.repeat(86) + '==' }, k3s_ca: 'ab'.repeat(32) } } }] },
      {
        t: 'g',
        u: [
          { k: 'a', r: { ...signed, record: { ...rec, paths: { beta: { up: true, rtt_ms: 12, mtu: 1280 }, gamma: { up: false, rtt_ms: null, mtu: null } } } } },
        ],
      },
    ];
    for (const m of msgs) assert.deepEqual(decodeMessage(encodeMessage(m)), m);
    const back = decodeMessage(encodeMessage(msgs[1] as GossipMessage));
    assert.ok(back.t === 'p' && back.u?.[0]?.k === 'a' && verifyRecord(back.u[0].r), 'a decoded record still verifies');
  });

  it('drops unknown extra fields instead of passing them on', () => {
    const m = decodeMessage(enc({ t: 'p', s: 1, evil: 'x'.repeat(100) }));
    assert.deepEqual(m, { t: 'p', s: 1 });
  });

  it('rejects every malformed shape with FRAME_REJECTED (table)', () => {
    const r = (patch: Record<string, unknown>): unknown => ({ ...signed, record: { ...rec, ...patch } });
    const table: [string, unknown][] = [
      ['not JSON', 'hello'],
      ['truncated JSON', '{"t":"p","s":1'],
      ['JSON null', 'null'],
      ['JSON array', [1, 2]],
      ['JSON string', '"p"'],
      ['no type', { s: 1 }],
      ['unknown type', { t: 'zz', s: 1 }],
      ['type not a string', { t: 5 }],
      ['seq missing', { t: 'p' }],
      ['seq negative', { t: 'p', s: -1 }],
      ['seq fractional', { t: 'p', s: 1.5 }],
      ['seq beyond 2^53', { t: 'k', s: 2 ** 60 }],
      ['seq as string', { t: 'p', s: '1' }],
      ['updates not an array', { t: 'g', u: {} }],
      ['too many updates', { t: 'g', u: new Array(3000).fill({ k: 's', n: 'a', i: 1, f: 'b' }) }],
      ['update not an object', { t: 'g', u: [5] }],
      ['update of unknown kind', { t: 'g', u: [{ k: 'zz' }] }],
      ['admission update without time', { t: 'g', u: [{ k: 'm', n: 'a', p: id.idPub, g: 'A'.repeat(86) + '==' }] }],
      ['removal update with a short key', { t: 'g', u: [{ k: 'x', n: 'a', p: 'abc', t: 1, g: 'A'.repeat(86) + '==' }] }],
      ['removal update with a bad name', { t: 'g', u: [{ k: 'x', n: 'a b', p: id.idPub, t: 1, g: 'A'.repeat(86) + '==' }] }],
      ['record with an admission without sig', { t: 'g', u: [{ k: 'a', r: r({ admission: { at: 1 } }) }] }],
      ['record with an admission at a negative time', { t: 'g', u: [{ k: 'a', r: r({ admission: { at: -1, sig: 'A'.repeat(86) + '==' } }) }] }],
      ['record with k3s_ca in uppercase', { t: 'g', u: [{ k: 'a', r: r({ k3s_ca: 'AB'.repeat(32) }) }] }],
      ['record with a short k3s_ca', { t: 'g', u: [{ k: 'a', r: r({ k3s_ca: 'ab' }) }] }],
      ['record with a path to a bad name', { t: 'g', u: [{ k: 'a', r: r({ paths: { 'Bad Name': { up: true, rtt_ms: 1, mtu: 1400 } } }) }] }],
      ['record with a path without up', { t: 'g', u: [{ k: 'a', r: r({ paths: { beta: { rtt_ms: 1, mtu: 1400 } } }) }] }],
      ['record with a negative path MTU', { t: 'g', u: [{ k: 'a', r: r({ paths: { beta: { up: true, rtt_ms: 1, mtu: -1 } } }) }] }],
      ['record with a fractional RTT', { t: 'g', u: [{ k: 'a', r: r({ paths: { beta: { up: true, rtt_ms: 1.5, mtu: 1400 } } }) }] }],
      [
        'record with too many paths',
        { t: 'g', u: [{ k: 'a', r: r({ paths: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`p${i}`, { up: true, rtt_ms: 1, mtu: 1400 }])) }) }] },
      ],
      ['hash with a bad removals hash', { t: 'h', h: 'AAAAAAAAAAAAAAAA', x: 'short' }],
      ['suspect without name', { t: 'g', u: [{ k: 's', i: 1, f: 'b' }] }],
      ['suspect with a bad name', { t: 'g', u: [{ k: 's', n: 'bad name!', i: 1, f: 'b' }] }],
      ['suspect with a 64-char name', { t: 'g', u: [{ k: 's', n: 'a'.repeat(64), i: 1, f: 'b' }] }],
      ['dead with incarnation 2^60', { t: 'g', u: [{ k: 'd', n: 'a', i: 2 ** 60, f: 'b' }] }],
      ['dead with a string incarnation', { t: 'g', u: [{ k: 'd', n: 'a', i: '1', f: 'b' }] }],
      ['left without signature', { t: 'g', u: [{ k: 'l', n: 'a', i: 1 }] }],
      ['left with a short signature', { t: 'g', u: [{ k: 'l', n: 'a', i: 1, g: 'abc' }] }],
      ['alive without record', { t: 'g', u: [{ k: 'a' }] }],
      ['alive with a bad overlay', { t: 'g', u: [{ k: 'a', r: signed, o: 'x' }] }],
      ['alive left overlay without signature', { t: 'g', u: [{ k: 'a', r: signed, o: 'l' }] }],
      ['nack without seq', { t: 'n' }],
      ['record without name', { t: 'g', u: [{ k: 'a', r: r({ name: undefined }) }] }],
      ['record with a bad role', { t: 'g', u: [{ k: 'a', r: r({ role: 'king' }) }] }],
      ['record with addresses not an array', { t: 'g', u: [{ k: 'a', r: r({ addresses: 'x' }) }] }],
      ['record with too many addresses', { t: 'g', u: [{ k: 'a', r: r({ addresses: new Array(17).fill('127.0.0.1:1') }) }] }],
      ['record with a huge address', { t: 'g', u: [{ k: 'a', r: r({ addresses: ['x'.repeat(301)] }) }] }],
      ['record with an empty address', { t: 'g', u: [{ k: 'a', r: r({ addresses: [''] }) }] }],
      ['record with node_ips of numbers', { t: 'g', u: [{ k: 'a', r: r({ node_ips: [1] }) }] }],
      ['record with overlay_ip a number', { t: 'g', u: [{ k: 'a', r: r({ overlay_ip: 5 }) }] }],
      ['record without facts', { t: 'g', u: [{ k: 'a', r: r({ facts: null }) }] }],
      ['record with negative cores', { t: 'g', u: [{ k: 'a', r: r({ facts: { ...rec.facts, cores: -1 } }) }] }],
      ['record with a huge os string', { t: 'g', u: [{ k: 'a', r: r({ facts: { ...rec.facts, os: 'x'.repeat(300) } }) }] }],
      ['record with containers an array', { t: 'g', u: [{ k: 'a', r: r({ containers: [] }) }] }],
      [
        'record with too many containers',
        { t: 'g', u: [{ k: 'a', r: r({ containers: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`n${i}`, { wesher: 'x', k3s: 'y' }])) }) }] },
      ],
      ['record with a bad container name', { t: 'g', u: [{ k: 'a', r: r({ containers: { 'a b': { wesher: 'x', k3s: 'y' } } }) }] }],
      ['record with container health not strings', { t: 'g', u: [{ k: 'a', r: r({ containers: { a: { wesher: 1, k3s: 'y' } } }) }] }],
      ['record with a short id_pub', { t: 'g', u: [{ k: 'a', r: r({ id_pub: 'abc' }) }] }],
      ['record with id_pub not base64', { t: 'g', u: [{ k: 'a', r: r({ id_pub: '!'.repeat(44) }) }] }],
      ['record with created_at negative', { t: 'g', u: [{ k: 'a', r: r({ created_at: -5 }) }] }],
      ['signed record without incarnation', { t: 'g', u: [{ k: 'a', r: { record: rec, sig: signed.sig } }] }],
      ['signed record without sig', { t: 'g', u: [{ k: 'a', r: { record: rec, incarnation: 1 } }] }],
      ['ping-req without target', { t: 'r', s: 1, a: [] }],
      ['ping-req with addresses not strings', { t: 'r', s: 1, n: 'a', a: [1] }],
      ['hash of the wrong length', { t: 'h', h: 'abc' }],
      ['hash not base64', { t: 'h', h: '****************' }],
      ['digest not an array', { t: 'd', d: 'x' }],
      ['digest entry of 2 fields', { t: 'd', d: [['a', 1]] }],
      ['digest entry of 4 fields', { t: 'd', d: [['a', 1, 0, 0]] }],
      ['digest with state 4', { t: 'd', d: [['a', 1, 4]] }],
      ['digest with a bad name', { t: 'd', d: [['-a', 1, 0]] }],
      ['digest too long', { t: 'd', d: new Array(20_001).fill(['a', 1, 0]) }],
      ['sync reply without wanted', { t: 'y', u: [] }],
      ['sync reply wanting a bad name', { t: 'y', u: [], w: ['a..b'] }],
    ];
    for (const [why, shape] of table) rejects(enc(shape), why);
    rejects(new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]), 'invalid UTF-8');
    rejects(new Uint8Array(1024 * 1024 + 1).fill(0x20), 'over the size limit');
    rejects(new Uint8Array(0), 'empty');
  });

  it('ignores a __proto__ key: nothing is polluted', () => {
    const m = decodeMessage(enc('{"t":"p","s":1,"__proto__":{"polluted":true}}'));
    assert.deepEqual(m, { t: 'p', s: 1 });
    assert.equal((m as unknown as { polluted?: boolean }).polluted, undefined);
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  });
});

describe('gossip: big messages in slices (sliceUpdates)', () => {
  const id = identity('slice');
  const updates = (n: number): Update[] => Array.from({ length: n }, (_, i) => ({ k: 'l', n: `m${i}`, i: 1, g: 'sig' }) as Update);

  it('cuts a gossip message into slices of at most max updates, in order', () => {
    const u = updates(600);
    const slices = sliceUpdates({ t: 'g', u }, 256);
    assert.deepEqual(
      slices.map((m) => (m.t === 'g' ? m.u.length : -1)),
      [256, 256, 88],
    );
    assert.deepEqual(
      slices.flatMap((m) => (m.t === 'g' ? m.u : [])),
      u,
    );
  });

  it("a sync reply's wanted names go with its first slice only", () => {
    const slices = sliceUpdates({ t: 'y', u: updates(300), w: ['a', 'b'] }, 256);
    assert.deepEqual(
      slices.map((m) => (m.t === 'y' ? [m.u.length, m.w] : null)),
      [
        [256, ['a', 'b']],
        [44, []],
      ],
    );
  });

  it('leaves small messages and messages of other kinds whole', () => {
    const small: GossipMessage = { t: 'g', u: [{ k: 'a', r: signRecord(recordFor('x', '127.0.0.1:7947', id), 1, id.secretKey) }] };
    assert.deepEqual(sliceUpdates(small, 256), [small]);
    const ping: GossipMessage = { t: 'p', s: 1, u: updates(300) };
    assert.deepEqual(sliceUpdates(ping, 256), [ping]);
  });
});
