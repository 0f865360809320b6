import * as assert from 'assert';
import * as http from 'http';
import * as net from 'net';
import nacl from 'tweetnacl';
import { waitFor } from '../../helpers/transport-contract';
import { binaryFrameHeader, Cleanup, rawSession, rawWs, startNode, TestNode, text } from './fixtures';
import { PROTOCOL_VERSION } from '../../../agent/net/handshake';

describe('WsTransport against garbage and oversized frames (real sockets on loopback)', function () {
  const cleanup = new Cleanup();
  let alpha: TestNode;
  let bravo: TestNode;

  beforeEach(async () => {
    bravo = await startNode(cleanup, 'bravo', { limits: { maxFrameBytes: 64 * 1024 } });
    alpha = await startNode(cleanup, 'alpha', { limits: { maxFrameBytes: 64 * 1024 } });
    await alpha.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('before'));
    await waitFor('honest session up', () => bravo.rec.messages.length === 1);
  });

  afterEach(async () => {
    // Whatever happened, bravo still serves its honest peer on the same connection.
    await alpha.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('after'));
    await bravo.t.send({ name: 'alpha', addresses: [] }, text('reply'));
    await waitFor('honest traffic', () => bravo.rec.messages.some((m) => m.text === 'after') && alpha.rec.messages.length === 1);
    const honestDrops = [...alpha.rec.disconnects, ...bravo.rec.disconnects].filter((p) => p.name === 'alpha' || p.name === 'bravo');
    assert.strictEqual(honestDrops.length, 0, 'honest connection never dropped');
    assert.strictEqual(bravo.rec.messages.length, 2, 'nothing but honest messages delivered');
    await cleanup.run();
  });

  const port = () => Number(bravo.addr.split(':')[1]);

  it('answers a plain HTTP request with a short 426', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: port(), path: '/status', agent: false }, resolve);
      req.on('error', reject);
    });
    res.resume();
    assert.strictEqual(res.statusCode, 426);
  });

  it('closes a socket that sends bytes that are not HTTP', async () => {
    const sock = net.connect(port(), '127.0.0.1');
    cleanup.add(() => void sock.destroy());
    sock.on('error', () => undefined);
    const reply: Buffer[] = [];
    sock.on('data', (d) => reply.push(d));
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.write(Buffer.concat([Buffer.from([0, 1, 2, 0xff]), nacl.randomBytes(200), Buffer.from('\r\n\r\n')]));
    await closed;
    assert.match(Buffer.concat(reply).toString(), /^HTTP\/1\.1 400/);
    await waitFor('refusal reported', () => bravo.rec.rejections.length === 1);
    assert.match(bravo.rec.rejections[0].reason, /malformed HTTP request/);
  });

  it('refuses random bytes, a text frame and an oversized message instead of a hello', async () => {
    const cases: [Uint8Array | string, RegExp][] = [
      [Uint8Array.of(PROTOCOL_VERSION, 1, ...nacl.randomBytes(74)), /probably a different overlay key/],
      [Uint8Array.of(9, ...nacl.randomBytes(75)), /protocol version 9/],
      [Uint8Array.of(1, 1, ...nacl.randomBytes(74)), /protocol version 1, older than this agent's 2: upgrade the agent on that machine/],
      [nacl.randomBytes(3), /client hello has the wrong length/],
      ['{"hello":"text"}', /text frame/],
      [new Uint8Array(10 * 1024), /exceeds the pre-auth limit/],
    ];
    for (const [i, [data, reason]] of cases.entries()) {
      const { ws, closed } = await rawWs(cleanup, bravo.addr);
      ws.send(data);
      assert.strictEqual(await closed, 1008, `case ${i} closed with policy violation`);
      await waitFor(`case ${i} reported`, () => bravo.rec.rejections.length === i + 1);
      assert.match(bravo.rec.rejections[i].reason, reason);
    }
  });

  it('cuts an unauthenticated socket that streams more than its byte budget', async () => {
    const { socket } = await rawWs(cleanup, bravo.addr);
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    // A frame under ws's size limit (so ws would buffer it), then a steady stream of its body.
    socket.write(binaryFrameHeader(60 * 1024));
    for (let i = 0; i < 8 && !socket.destroyed; i++) socket.write(Buffer.alloc(8 * 1024));
    await closed;
    await waitFor('refusal reported', () => bravo.rec.rejections.length >= 1);
    assert.match(bravo.rec.rejections[0].reason, /bytes before authenticating/, JSON.stringify(bravo.rec.rejections));
  });

  it('refuses an unauthenticated frame over the limit from its header', async () => {
    const { socket, closed } = await rawWs(cleanup, bravo.addr);
    socket.write(binaryFrameHeader(1024 * 1024));
    assert.strictEqual(await closed, 1009);
    await waitFor('refusal reported', () => bravo.rec.rejections.length >= 1);
    assert.match(bravo.rec.rejections[0].reason, /frame larger than the limit/, JSON.stringify(bravo.rec.rejections));
  });

  it('refuses an authenticated frame over the limit from its header, before the body arrives', async () => {
    const s = await rawSession(cleanup, bravo.addr, 'big-sender');
    // Only the header of a 100 MiB frame is ever sent.
    s.socket.write(binaryFrameHeader(100 * 1024 * 1024));
    assert.strictEqual(await s.closed, 1009, 'message too big');
    await waitFor('refusal reported', () => bravo.rec.rejections.length === 1);
    assert.match(bravo.rec.rejections[0].reason, /frame larger than the limit/);
    assert.strictEqual(bravo.rec.rejections[0].peer, 'big-sender');
  });

  it('refuses a whole authenticated frame over the limit, and garbage after the handshake', async () => {
    const big = await rawSession(cleanup, bravo.addr, 'big-sender');
    big.ws.send(big.sealer.seal(new Uint8Array(65 * 1024)));
    assert.strictEqual(await big.closed, 1009);
    const junk = await rawSession(cleanup, bravo.addr, 'junk-sender');
    junk.ws.send(nacl.randomBytes(100));
    assert.strictEqual(await junk.closed, 1008);
    await waitFor('both reported', () => bravo.rec.rejections.length === 2);
    assert.match(bravo.rec.rejections[0].reason, /frame larger than the limit/);
    assert.match(bravo.rec.rejections[1].reason, /unexpected frame type|does not authenticate/);
  });
});
