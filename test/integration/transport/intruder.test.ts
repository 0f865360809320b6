import * as assert from 'assert';
import type { AddressInfo } from 'net';
import { WebSocketServer } from 'ws';
import { errorMessage, isHeptoError } from '../../../shared/errors';
import { isSelfLoop } from '../../../agent/net/send-errors';
import { waitFor } from '../../helpers/transport-contract';
import { Cleanup, OTHER_OVERLAY_KEY, rawSession, startNode, TcpProxy, text, TEST_OVERLAY_KEY } from './fixtures';

describe('WsTransport against an intruder (real sockets on loopback)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a node with another overlay key cannot connect, and the listener reports it', async () => {
    const honest = await startNode(cleanup, 'honest');
    const intruder = await startNode(cleanup, 'intruder', { key: OTHER_OVERLAY_KEY });
    await assert.rejects(intruder.t.send({ name: 'honest', addresses: [honest.addr] }, text('let me in')), (e: unknown) => {
      assert.ok(isHeptoError(e) && e.code === 'PEER_AUTH_FAILED');
      assert.ok(e.message.includes(honest.addr), e.message);
      assert.match(e.message, /rejected the handshake: probably a different overlay key/);
      return true;
    });
    await waitFor('honest reports the refusal', () => honest.rec.rejections.length === 1);
    assert.match(honest.rec.rejections[0].reason, /probably a different overlay key/);
    assert.match(honest.rec.rejections[0].remote, /^127\.0\.0\.1:\d+$/);
    assert.strictEqual(honest.rec.rejections[0].peer, undefined, 'a stranger has no name');
    assert.strictEqual(honest.rec.messages.length, 0);
    assert.strictEqual(honest.t.stats().connections, 0);

    // The other way round: the honest node dialing the intruder fails as clearly.
    await assert.rejects(honest.t.send({ addresses: [intruder.addr] }, text('hi')), /overlay key/);
    assert.strictEqual(intruder.rec.messages.length, 0);
    for (const line of [...honest.logLines, ...intruder.logLines]) {
      assert.ok(!line.includes(TEST_OVERLAY_KEY) && !line.includes(OTHER_OVERLAY_KEY), `no key in logs: ${line}`);
    }
  });

  it('an eavesdropper on the wire sees no names, identities or payloads', async () => {
    const alpha = await startNode(cleanup, 'alpha-node');
    const bravo = await startNode(cleanup, 'bravo-node');
    const proxy = new TcpProxy(bravo.addr);
    const via = await proxy.start(cleanup);
    const secret = 'the-quick-brown-payload-' + 'x'.repeat(40);
    await alpha.t.send({ name: 'bravo-node', addresses: [via] }, text(secret));
    await waitFor('bravo receives', () => bravo.rec.messages.length === 1);
    await bravo.t.send({ name: 'alpha-node', addresses: [] }, text('reply-' + secret));
    await waitFor('alpha receives', () => alpha.rec.messages.length === 1);
    assert.strictEqual(bravo.rec.messages[0].text, secret);
    const wire = Buffer.concat([proxy.all('c2s'), proxy.all('s2c')]);
    assert.ok(wire.length > 300, 'the proxy really saw the session');
    for (const needle of ['alpha-node', 'bravo-node', 'quick-brown', 'xxxxxxxx', TEST_OVERLAY_KEY]) {
      assert.ok(!wire.includes(needle), `"${needle}" must not appear on the wire`);
    }
    for (const id of [alpha.identity, bravo.identity]) {
      assert.ok(!wire.includes(Buffer.from(id.publicKey)), 'identity key not on the wire in clear');
      assert.ok(!wire.includes(id.idPub), 'identity key (base64) not on the wire');
    }
  });

  it('bytes injected into a live session are refused; the honest peers reconnect', async () => {
    const alpha = await startNode(cleanup, 'alpha');
    const bravo = await startNode(cleanup, 'bravo');
    const proxy = new TcpProxy(bravo.addr);
    const via = await proxy.start(cleanup);
    await alpha.t.send({ name: 'bravo', addresses: [via] }, text('first'));
    await waitFor('first delivered', () => bravo.rec.messages.length === 1);
    // From now on the man in the middle flips one byte of every client→server chunk.
    proxy.tamper = (chunk) => {
      const out = Buffer.from(chunk);
      out[out.length - 1] ^= 0x01;
      return out;
    };
    await alpha.t.send({ name: 'bravo', addresses: [via] }, text('second'));
    await waitFor('bravo refuses the tampered frame', () => bravo.rec.rejections.length === 1);
    assert.match(bravo.rec.rejections[0].reason, /does not authenticate/);
    assert.strictEqual(bravo.rec.rejections[0].peer, 'alpha');
    await waitFor('the session is dropped on both sides', () => alpha.rec.disconnects.length === 1 && bravo.rec.disconnects.length === 1);
    assert.deepStrictEqual(
      bravo.rec.messages.map((m) => m.text),
      ['first'],
    );
    proxy.tamper = undefined;
    await alpha.t.send({ name: 'bravo', addresses: [via] }, text('third'));
    await waitFor('a new session works', () => bravo.rec.messages.length === 2);
    assert.strictEqual(bravo.rec.messages[1].text, 'third');
  });

  it("a member that knows the key cannot take a connected member's name with another identity", async () => {
    const alpha = await startNode(cleanup, 'alpha');
    const bravo = await startNode(cleanup, 'bravo');
    await bravo.t.send({ name: 'alpha', addresses: [alpha.addr] }, text('I am bravo'));
    await waitFor('delivered', () => alpha.rec.messages.length === 1);
    const impostor = await startNode(cleanup, 'bravo');
    await assert.rejects(impostor.t.send({ name: 'alpha', addresses: [alpha.addr] }, text('I am bravo too')), (e: unknown) => {
      assert.ok(isHeptoError(e) && e.code === 'NAME_CONFLICT', String(e));
      assert.match(e.message, /name conflict/);
      assert.match(e.describe(), /rename one of them/);
      return true;
    });
    await waitFor('alpha reports the conflict', () => alpha.rec.rejections.some((r) => r.peer === 'bravo'));
    assert.match(alpha.rec.rejections.find((r) => r.peer === 'bravo')!.reason, /already held by a connected peer with another identity/);
    await bravo.t.send({ name: 'alpha', addresses: [] }, text('still here'));
    await waitFor('the real bravo keeps its connection', () => alpha.rec.messages.length === 2);
    assert.ok(alpha.rec.messages.every((m) => m.from.idPub === bravo.identity.idPub));
  });

  it('dialing its own address fails clearly instead of talking to itself', async () => {
    const alpha = await startNode(cleanup, 'alpha');
    await assert.rejects(alpha.t.send({ addresses: [alpha.addr] }, text('me?')), (e) => /this agent itself/.test(errorMessage(e)) && isSelfLoop(e));
    assert.strictEqual(alpha.rec.messages.length, 0);
    // Gossip learns it from the error (a join that reached itself is no join failure), and only when every address was itself.
    const both = await alpha.t.send({ addresses: [alpha.addr, '127.0.0.1:1'] }, text('me?')).catch((e: unknown) => e);
    assert.ok(both instanceof Error && !isSelfLoop(both), 'an address that is not this agent makes it a plain failure');
    assert.strictEqual(alpha.t.stats().connections, 0);
  });

  it('a listener that closes with "self" (4002) without proving our identity is no self-loop', async () => {
    const alpha = await startNode(cleanup, 'alpha');
    const liar = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    cleanup.add(() => new Promise<void>((r) => liar.close(() => r())));
    await new Promise<void>((r) => liar.once('listening', () => r()));
    liar.on('connection', (ws) => ws.close(4002, 'self'));
    const addr = `127.0.0.1:${(liar.address() as AddressInfo).port}`;
    const e = await alpha.t.send({ addresses: [addr] }, text('hello?')).catch((x: unknown) => x);
    assert.ok(e instanceof Error, 'the send fails');
    assert.ok(!isSelfLoop(e), `a close code alone made it a self-loop: ${errorMessage(e)}`);
  });

  it('an overlay-key holder speaking raw frames reaches the agent only through the handshake', async () => {
    const bravo = await startNode(cleanup, 'bravo');
    const s = await rawSession(cleanup, bravo.addr, 'raw-client');
    s.ws.send(s.sealer.seal(text('hello from raw')));
    await waitFor('delivered', () => bravo.rec.messages.length === 1);
    assert.strictEqual(bravo.rec.messages[0].from.name, 'raw-client');
  });
});
