import * as assert from 'assert';
import { waitFor } from '../../helpers/transport-contract';
import { parseEndpoint } from '../../../agent/net/ws-transport';
import { isHeptoError } from '../../../shared/errors';
import { Cleanup, rawSession, startNode, TcpProxy, text } from './fixtures';

describe('WsTransport on the network (real sockets on loopback)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('listening on :: accepts IPv4 and IPv6 peers and reports plain IPv4 remotes', async () => {
    const bravo = await startNode(cleanup, 'bravo', { host: '::' });
    const port = bravo.t.address()[0].port;
    const v4 = await startNode(cleanup, 'v4peer', { bind: '127.0.0.5' });
    const v6 = await startNode(cleanup, 'v6peer', { host: '::1' });
    await v4.t.send({ name: 'bravo', addresses: [`127.0.0.1:${port}`] }, text('over IPv4'));
    await v6.t.send({ name: 'bravo', addresses: [`[::1]:${port}`] }, text('over IPv6'));
    await waitFor('both delivered', () => bravo.rec.messages.length === 2);
    const byName = new Map(bravo.rec.messages.map((m) => [m.from.name, m.from.remote]));
    assert.match(byName.get('v4peer')!, /^127\.0\.0\.5:\d+$/, 'bindAddress used, IPv4-mapped prefix stripped');
    assert.match(byName.get('v6peer')!, /^\[::1\]:\d+$/);
    await bravo.t.send({ name: 'v6peer', addresses: [] }, text('back over IPv6'));
    await waitFor('reply', () => v6.rec.messages.length === 1);
  });

  it('rejects malformed addresses with a clear error and still tries the next one', async () => {
    const alpha = await startNode(cleanup, 'alpha');
    const bravo = await startNode(cleanup, 'bravo');
    await assert.rejects(alpha.t.send({ addresses: ['no-port-here', '[::1]', '1.2.3.4:99999'] }, text('x')), (e: Error) => {
      assert.match(e.message, /"no-port-here": not host:port/);
      assert.match(e.message, /"1\.2\.3\.4:99999"/);
      return true;
    });
    assert.throws(
      () => parseEndpoint('no-port-here'),
      (e: unknown) => isHeptoError(e) && e.code === 'ADDRESS_INVALID',
    );
    const got = await alpha.t.send({ addresses: ['bad', bravo.addr] }, text('x'));
    assert.strictEqual(got.name, 'bravo');
  });

  /** alpha dialed bravo through a TCP proxy (which records and can swallow the bytes), one message delivered. */
  async function pairThroughProxy(
    keepaliveMs: number,
  ): Promise<{ alpha: Awaited<ReturnType<typeof startNode>>; bravo: Awaited<ReturnType<typeof startNode>>; proxy: TcpProxy }> {
    const limits = { keepaliveMs };
    const alpha = await startNode(cleanup, 'alpha', { limits });
    const bravo = await startNode(cleanup, 'bravo', { limits });
    const proxy = new TcpProxy(bravo.addr);
    const via = await proxy.start(cleanup);
    await alpha.t.send({ name: 'bravo', addresses: [via] }, text('x'));
    await waitFor('delivered', () => bravo.rec.messages.length === 1);
    return { alpha, bravo, proxy };
  }

  it('a peer that goes silent (no FIN, like a cut cable) is dropped by the keepalive', async () => {
    const { alpha, bravo, proxy } = await pairThroughProxy(200);
    // Several keepalive rounds pass while traffic flows: no false alarm.
    const t0 = Date.now();
    await waitFor('quiet period', () => Date.now() - t0 > 1_000);
    assert.strictEqual(alpha.rec.disconnects.length, 0);
    proxy.blackhole = true;
    await waitFor('both sides notice', () => alpha.rec.disconnects.length === 1 && bravo.rec.disconnects.length === 1, 3_000);
    // Whichever side gives up first cuts its socket; the proxy passes that close on to the other.
    const reasons = [...alpha.rec.rejections, ...bravo.rec.rejections].map((r) => r.reason);
    assert.ok(
      reasons.some((r) => /no answer to keepalive within 400 ms/.test(r)),
      JSON.stringify(reasons),
    );
    assert.strictEqual(alpha.t.stats().connections, 0);
  });

  it('an idle connection stays up on the dialer pings alone, every other interval', async () => {
    const keepaliveMs = 100;
    const { alpha, bravo, proxy } = await pairThroughProxy(keepaliveMs);
    const [c0, s0] = [proxy.all('c2s').length, proxy.all('s2c').length];
    const t0 = Date.now();
    await waitFor('ten idle intervals', () => Date.now() - t0 > 1_000, 2_000);
    assert.strictEqual(alpha.rec.disconnects.length + bravo.rec.disconnects.length, 0);
    // Dialer → listener: masked pings only (opcode 0x89, mask bit, empty: 6 bytes each).
    const up = proxy.all('c2s').subarray(c0);
    assert.strictEqual(up.length % 6, 0, up.toString('hex'));
    for (let i = 0; i < up.length; i += 6) assert.deepEqual([up[i], up[i + 1]], [0x89, 0x80], up.toString('hex'));
    const pings = up.length / 6;
    const intervals = (Date.now() - t0) / keepaliveMs;
    assert.ok(pings >= 2 && pings <= Math.ceil(intervals / 2) + 1, `${pings} pings in ${intervals.toFixed(1)} intervals, expected one every other`);
    // Listener → dialer: only the pongs (0x8a, empty), no pings of its own. The
    // pong of the last ping may still be on its way through the proxy.
    await waitFor('a pong for every ping', () => proxy.all('s2c').length - s0 >= 2 * pings, 1_000);
    const down = proxy.all('s2c').subarray(s0);
    const pingsNow = (proxy.all('c2s').length - c0) / 6;
    assert.match(down.toString('hex'), /^(8a00)+$/, 'the listener sent something else than pongs');
    assert.ok(down.length / 2 >= pings && down.length / 2 <= pingsNow, `${down.length / 2} pongs for ${pingsNow} pings`);
  });

  it('a dial to an address that swallows everything fails after the dial timeout', async () => {
    const bravo = await startNode(cleanup, 'bravo');
    const alpha = await startNode(cleanup, 'alpha', { dialTimeoutMs: 300 });
    const proxy = new TcpProxy(bravo.addr);
    const via = await proxy.start(cleanup);
    proxy.blackhole = true;
    const t0 = Date.now();
    await assert.rejects(alpha.t.send({ name: 'bravo', addresses: [via] }, text('x')), /within 300 ms/);
    assert.ok(Date.now() - t0 < 2_000);
  });

  it('stops queueing for a member that does not read, and says so', async () => {
    const bravo = await startNode(cleanup, 'bravo', { limits: { maxBufferedBytes: 256 * 1024 } });
    const s = await rawSession(cleanup, bravo.addr, 'sleeper');
    s.ws.send(s.sealer.seal(text('hi')));
    await waitFor('connected', () => bravo.rec.messages.length === 1);
    s.socket.pause(); // the member stops reading; TCP buffers fill up, then ws queues
    const chunk = new Uint8Array(256 * 1024);
    let error: Error | undefined;
    for (let i = 0; i < 400 && !error; i++) {
      try {
        await bravo.t.send({ name: 'sleeper', addresses: [] }, chunk);
      } catch (e) {
        error = e as Error;
      }
      if (i % 10 === 9) await new Promise((r) => setImmediate(r));
    }
    assert.ok(error, 'a send failed before 100 MiB were queued');
    assert.match(error.message, /sleeper is not reading: \d+ bytes already queued/);
  });

  it('counts bytes on the wire, larger than the payloads (handshake and encryption)', async () => {
    const alpha = await startNode(cleanup, 'alpha');
    const bravo = await startNode(cleanup, 'bravo');
    const payload = new Uint8Array(100_000);
    await alpha.t.send({ name: 'bravo', addresses: [bravo.addr] }, payload);
    await waitFor('delivered', () => bravo.rec.messages.length === 1);
    const a = alpha.t.stats();
    const b = bravo.t.stats();
    assert.ok(a.bytesSent > 100_000 && a.bytesSent < 101_500, `sent ${a.bytesSent}`);
    assert.ok(b.bytesReceived >= a.bytesSent - 10, `received ${b.bytesReceived}`);
    assert.ok(a.bytesReceived > 0 && b.bytesSent > 0, 'handshake answers counted');
  });
});
