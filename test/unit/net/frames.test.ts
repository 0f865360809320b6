import * as assert from 'assert';
import nacl from 'tweetnacl';
import { FrameOpener, FrameSealer } from '../../../agent/net/frames';
import { isHeptoError } from '../../../shared/errors';

const key = nacl.randomBytes(32);
const rejected = (re: RegExp) => (e: unknown) => isHeptoError(e) && e.code === 'FRAME_REJECTED' && re.test(e.message);
const text = (s: string) => new Uint8Array(Buffer.from(s));

describe('net/frames', () => {
  it('round-trips payloads in order, with no plaintext on the wire', () => {
    const s = new FrameSealer(key);
    const o = new FrameOpener(key);
    for (const msg of ['one', 'two', '', 'four']) {
      const f = s.seal(text(msg));
      if (msg) assert.ok(!Buffer.from(f).includes(msg));
      assert.strictEqual(Buffer.from(o.open(f)).toString(), msg);
    }
    assert.strictEqual(s.sent, 4n);
  });

  it('rejects a replayed frame', () => {
    const s = new FrameSealer(key);
    const o = new FrameOpener(key);
    const f1 = s.seal(text('a'));
    o.open(f1);
    assert.throws(() => o.open(f1), rejected(/replayed or reordered/));
  });

  it('rejects an older frame after a newer one (reordered)', () => {
    const s = new FrameSealer(key);
    const o = new FrameOpener(key);
    const f1 = s.seal(text('a'));
    const f2 = s.seal(text('b'));
    o.open(f2);
    assert.throws(() => o.open(f1), rejected(/replayed or reordered/));
  });

  it('rejects a tampered payload, a tampered counter and a rewritten type', () => {
    const s = new FrameSealer(key);
    const o = new FrameOpener(key);
    const f = s.seal(text('payload'));
    const body = Uint8Array.from(f);
    body[body.length - 1] ^= 0x80;
    assert.throws(() => o.open(body), rejected(/does not authenticate/));
    const counter = Uint8Array.from(f);
    counter[8] = 9; // counter 9 instead of 1
    assert.throws(() => o.open(counter), rejected(/does not authenticate/));
    const type = Uint8Array.from(f);
    type[0] = 0x11;
    assert.throws(() => o.open(type), rejected(/unexpected frame type/));
    // The genuine frame still opens: failed attempts do not advance the counter.
    assert.strictEqual(Buffer.from(o.open(f)).toString(), 'payload');
  });

  it('rejects a frame under another key, and garbage', () => {
    const f = new FrameSealer(nacl.randomBytes(32)).seal(text('x'));
    assert.throws(() => new FrameOpener(key).open(f), rejected(/does not authenticate/));
    assert.throws(() => new FrameOpener(key).open(new Uint8Array(5)), rejected(/too short/));
  });
});
