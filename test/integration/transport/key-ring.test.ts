/**
 * The transport during a key rotation (docs/trust.md "Key rotation"): a
 * listener takes hellos under the current overlay key and the previous one
 * while both are in its ring; a dialer whose hello is refused under the
 * current key tries the previous one; once the previous key leaves the
 * ring, it is refused like any other.
 */
import * as assert from 'assert';
import { isHeptoError } from '../../../shared/errors';
import { waitFor } from '../../helpers/transport-contract';
import { Cleanup, OTHER_OVERLAY_KEY, startNode, text, TEST_OVERLAY_KEY } from './fixtures';

const OLD = TEST_OVERLAY_KEY;
const NEW = OTHER_OVERLAY_KEY;

describe('WsTransport key ring (key rotation, real sockets on loopback)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a switched listener takes a member still on the old key; a switched dialer reaches it with the old key', async () => {
    const switched = await startNode(cleanup, 'switched');
    switched.t.setKeys({ primary: NEW, accepted: [OLD] });
    const late = await startNode(cleanup, 'late', { key: OLD });
    const fresh = await startNode(cleanup, 'fresh', { key: NEW });

    // The late member dials in under the old key: taken (grace).
    await late.t.send({ name: 'switched', addresses: [switched.addr] }, text('from late'));
    await waitFor('switched to get the late message', () => switched.rec.messages.some((m) => m.from.name === 'late'));
    // A member on the new key too.
    await fresh.t.send({ name: 'switched', addresses: [switched.addr] }, text('from fresh'));
    await waitFor('switched to get the fresh message', () => switched.rec.messages.some((m) => m.from.name === 'fresh'));

    // The switched member dials the late one (its own listener only knows the old key): the new key is refused, the old one works.
    switched.t.disconnect('late');
    await waitFor('the connection to late to close', () => switched.t.stats().connections === 1);
    await switched.t.send({ name: 'late', addresses: [late.addr] }, text('to late'));
    await waitFor('late to get it', () => late.rec.messages.some((m) => m.from.name === 'switched'));
    await waitFor('the dialer to log the fallback', () => switched.logLines.some((l) => l.includes('peer took only a previous overlay key')));
    // The late listener saw one refused hello (the new key) before the old one worked.
    assert.ok(
      late.rec.rejections.some((r) => /probably a different overlay key/.test(r.reason)),
      JSON.stringify(late.rec.rejections),
    );

    for (const line of [...switched.logLines, ...late.logLines, ...fresh.logLines]) {
      assert.ok(!line.includes(OLD) && !line.includes(NEW), `a key in a log line: ${line}`);
    }
  });

  it('after the grace (the old key out of the ring) the old key is refused both ways', async () => {
    const done = await startNode(cleanup, 'done');
    done.t.setKeys({ primary: NEW, accepted: [] });
    const late = await startNode(cleanup, 'late', { key: OLD });
    await assert.rejects(late.t.send({ name: 'done', addresses: [done.addr] }, text('let me in')), (e: unknown) => {
      assert.ok(isHeptoError(e) && e.code === 'PEER_AUTH_FAILED', String(e));
      assert.match(e.message, /rejected the handshake: probably a different overlay key/);
      return true;
    });
    await assert.rejects(done.t.send({ name: 'late', addresses: [late.addr] }, text('hello')), /overlay key/);
    assert.strictEqual(done.rec.messages.length + late.rec.messages.length, 0);
  });

  it('before the switch (old key first, new one taken): dials with the old key, takes both', async () => {
    const pending = await startNode(cleanup, 'pending');
    pending.t.setKeys({ primary: OLD, accepted: [NEW] });
    const early = await startNode(cleanup, 'early', { key: NEW });
    const old = await startNode(cleanup, 'old', { key: OLD });
    await early.t.send({ name: 'pending', addresses: [pending.addr] }, text('early'));
    await old.t.send({ name: 'pending', addresses: [pending.addr] }, text('old'));
    await waitFor('both messages', () => pending.rec.messages.length === 2);
    await pending.t.send({ name: 'old', addresses: [old.addr] }, text('back'));
    await waitFor('old to get it', () => old.rec.messages.length === 1);
    assert.ok(!old.rec.rejections.some((r) => /overlay key/.test(r.reason)), 'the pending node dialed with the new key first');
  });
});
