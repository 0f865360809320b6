import * as assert from 'assert';
import * as net from 'net';
import { waitFor } from '../../helpers/transport-contract';
import { Cleanup, rawSession, startNode, TcpProxy, text } from './fixtures';

describe('WsTransport against replayed frames (real sockets on loopback)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a frame replayed on the same connection is refused and that connection closed; honest peers carry on', async () => {
    const bravo = await startNode(cleanup, 'bravo');
    const alpha = await startNode(cleanup, 'alpha');
    await alpha.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('honest-1'));

    const s = await rawSession(cleanup, bravo.addr, 'recorder');
    const frame = s.sealer.seal(text('pay me once'));
    s.ws.send(frame);
    await waitFor('first copy delivered', () => bravo.rec.messages.some((m) => m.text === 'pay me once'));
    s.ws.send(frame);
    await waitFor('replay refused', () => bravo.rec.rejections.length === 1);
    assert.match(bravo.rec.rejections[0].reason, /replayed or reordered frame/);
    assert.strictEqual(bravo.rec.rejections[0].peer, 'recorder');
    assert.strictEqual(await s.closed, 1008, 'the replaying connection is closed');
    assert.strictEqual(bravo.rec.messages.filter((m) => m.text === 'pay me once').length, 1, 'delivered exactly once');

    await alpha.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('honest-2'));
    await bravo.t.send({ name: 'alpha', addresses: [] }, text('back'));
    await waitFor('honest traffic continues', () => bravo.rec.messages.some((m) => m.text === 'honest-2') && alpha.rec.messages.length === 1);
    assert.strictEqual(alpha.rec.disconnects.length, 0);
  });

  it('a frame replayed on a new connection does not open', async () => {
    const bravo = await startNode(cleanup, 'bravo');
    const first = await rawSession(cleanup, bravo.addr, 'recorder');
    const frame = first.sealer.seal(text('pay me once'));
    first.ws.send(frame);
    await waitFor('delivered', () => bravo.rec.messages.length === 1);

    // Another member (the same one would replace the first connection) replays the frame.
    const second = await rawSession(cleanup, bravo.addr, 'replayer');
    second.ws.send(frame);
    await waitFor('refused', () => bravo.rec.rejections.length === 1);
    assert.match(bravo.rec.rejections[0].reason, /does not authenticate/);
    assert.strictEqual(await second.closed, 1008);
    assert.strictEqual(bravo.rec.messages.length, 1);
    // The first connection was not hurt by what happened on the second.
    first.ws.send(first.sealer.seal(text('still fine')));
    await waitFor('first connection still works', () => bravo.rec.messages.length === 2);
  });

  it('a whole recorded session replayed byte for byte on a new TCP connection delivers nothing', async () => {
    const bravo = await startNode(cleanup, 'bravo');
    const alpha = await startNode(cleanup, 'alpha');
    const proxy = new TcpProxy(bravo.addr);
    const via = await proxy.start(cleanup);
    await alpha.t.send({ name: 'bravo', addresses: [via] }, text('recorded payload'));
    await waitFor('delivered', () => bravo.rec.messages.length === 1);
    const recorded = proxy.all('c2s');

    const sock = net.connect(Number(bravo.addr.split(':')[1]), '127.0.0.1');
    cleanup.add(() => void sock.destroy());
    sock.on('error', () => undefined);
    sock.resume(); // read (and drop) what the agent answers, so 'close' can fire
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.write(recorded);
    await waitFor('replayed session refused', () => bravo.rec.rejections.length === 1);
    assert.match(bravo.rec.rejections[0].reason, /client identity does not open/);
    await closed;
    assert.strictEqual(bravo.rec.rejections.length, 1, 'one refusal; the frames after it are not even looked at');
    assert.strictEqual(bravo.rec.messages.length, 1, 'the recorded payload is not delivered again');
    await alpha.t.send({ name: 'bravo', addresses: [] }, text('after'));
    await waitFor('honest session unaffected', () => bravo.rec.messages.length === 2);
  });
});
