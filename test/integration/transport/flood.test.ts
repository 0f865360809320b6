import * as assert from 'assert';
import * as net from 'net';
import { waitFor } from '../../helpers/transport-contract';
import { Cleanup, rawWs, startNode, text } from './fixtures';

// This suite is about the handshake deadline: the first-bytes deadline (idle
// sockets closed after a second) is pushed past it; outsider.test.ts tests it.
const LIMITS = { handshakeTimeoutMs: 2_000, firstBytesMs: 10_000, maxPendingPerSource: 8, maxPendingTotal: 20 };

function idleSockets(cleanup: Cleanup, port: number, count: number, localAddress: string) {
  const closed: number[] = [];
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    cleanup.add(() => void s.destroy());
    s.on('error', () => undefined);
    s.resume();
    s.on('close', () => closed.push(i));
    sockets.push(s);
  }
  return { closed, sockets };
}

describe('WsTransport under an idle-socket flood (real sockets on loopback)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('caps unauthenticated sockets per source, times the rest out, and still admits honest peers', async () => {
    const bravo = await startNode(cleanup, 'bravo', { limits: LIMITS });
    const port = Number(bravo.addr.split(':')[1]);
    const started = Date.now();
    const flood = idleSockets(cleanup, port, 50, '127.0.0.1');
    await waitFor('42 excess sockets closed at once', () => flood.closed.length === 42, 1_800);
    const capped = bravo.rec.rejections.filter((r) => /too many unauthenticated sockets from 127\.0\.0\.1 \(limit 8\)/.test(r.reason));
    assert.strictEqual(capped.length, 42);
    await assert.rejects(rawWs(cleanup, bravo.addr), /closed before open/, 'a 51st socket from the flooding source is refused');

    // An honest peer from another source connects while the flood holds its 8 sockets.
    const alpha = await startNode(cleanup, 'alpha', { bind: '127.0.0.2', limits: LIMITS });
    await alpha.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('during the flood'));
    await waitFor('honest message delivered', () => bravo.rec.messages.length === 1);
    assert.match(bravo.rec.messages[0].from.remote, /^127\.0\.0\.2:/);
    assert.ok(flood.closed.length < 50, 'the flood still holds its sockets');

    await waitFor('the idle sockets time out', () => flood.closed.length === 50, 6_000);
    assert.ok(Date.now() - started >= 1_900, 'not before the handshake timeout');
    const timedOut = bravo.rec.rejections.filter((r) => /no authenticated handshake within 2000 ms/.test(r.reason));
    assert.ok(timedOut.length >= 8, `${timedOut.length} timed out`);

    // The source is free again, and the honest connection survived it all.
    const { ws } = await rawWs(cleanup, bravo.addr);
    ws.terminate();
    await bravo.t.send({ name: 'alpha', addresses: [] }, text('still here'));
    await waitFor('honest reply', () => alpha.rec.messages.length === 1);
    assert.strictEqual(alpha.rec.disconnects.length, 0);
  });

  it('caps unauthenticated sockets in total across sources (the oldest make room)', async () => {
    const bravo = await startNode(cleanup, 'bravo', { limits: LIMITS });
    const port = Number(bravo.addr.split(':')[1]);
    const floods = ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'].map((src) => idleSockets(cleanup, port, 8, src));
    const closedNow = () => floods.reduce((n, f) => n + f.closed.length, 0);
    await waitFor('12 sockets over the total closed (evicted)', () => closedNow() === 12, 1_800);
    const total = bravo.rec.rejections.filter((r) => /in total \(limit 20\)/.test(r.reason));
    assert.strictEqual(total.length, 12);
    await waitFor('the rest time out', () => closedNow() === 32, 6_000);
    const alpha = await startNode(cleanup, 'alpha', { bind: '127.0.0.7', limits: LIMITS });
    await alpha.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('after the flood'));
    await waitFor('honest message delivered', () => bravo.rec.messages.length === 1);
  });

  it('closes an upgraded WebSocket that never completes the handshake', async () => {
    const bravo = await startNode(cleanup, 'bravo', { limits: LIMITS });
    const started = Date.now();
    const { closed } = await rawWs(cleanup, bravo.addr);
    await closed;
    assert.ok(Date.now() - started >= 1_900, 'closed by the handshake timeout');
    assert.match(bravo.rec.rejections[0].reason, /no authenticated handshake within 2000 ms/);
  });
});
