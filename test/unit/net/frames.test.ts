import * as assert from 'assert';
import nacl from 'tweetnacl';
import { createCipheriv, createDecipheriv } from 'crypto';
import * as path from 'path';
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
  it('is ChaCha20-Poly1305 as docs/protocol.md says: nonce 4 zero bytes and the counter, the 9-byte header as associated data, the tag last, 25 bytes over the payload', () => {
    const s = new FrameSealer(key);
    s.seal(text('first'));
    const f = Buffer.from(s.seal(text('the second frame')));
    assert.strictEqual(f.length, 'the second frame'.length + 25);
    assert.strictEqual(f[0], 0x10);
    assert.strictEqual(f.readBigUInt64BE(1), 2n);
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(2n, 4);
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    d.setAAD(f.subarray(0, 9), { plaintextLength: f.length - 25 });
    d.setAuthTag(f.subarray(f.length - 16));
    const plain = Buffer.concat([d.update(f.subarray(9, f.length - 16)), d.final()]);
    assert.strictEqual(plain.toString(), 'the second frame');
  });

  it('refuses a key that is not 32 bytes', () => {
    assert.throws(() => new FrameSealer(new Uint8Array(16)), /frame key is 32 bytes, not 16/);
    assert.throws(() => new FrameOpener(new Uint8Array(0)), /frame key is 32 bytes, not 0/);
  });
  it("node:crypto's chacha20-poly1305 is RFC 8439's AEAD: the test vector of its section 2.8.2", () => {
    const k = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x80 + i));
    const c = createCipheriv('chacha20-poly1305', k, Buffer.from('070000004041424344454647', 'hex'), { authTagLength: 16 });
    const plain = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    c.setAAD(Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex'), { plaintextLength: plain.length });
    const sealed = Buffer.concat([c.update(plain), c.final()]);
    assert.strictEqual(sealed.subarray(0, 16).toString('hex'), 'd31a8d34648e60db7b86afbc53ef7ec2');
    assert.strictEqual(c.getAuthTag().toString('hex'), '1ae10b594f09e26a7e902ecbd0600691');
  });
});

describe('net/frames: WebSocket masking (docs/upstream.md W1)', () => {
  it('ws unmasks received frames with bufferutil, not its JavaScript loop', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = require('bufferutil') as { unmask: (b: Buffer, m: Buffer) => void };
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const wsBuffers = require(path.join(path.dirname(require.resolve('ws')), 'lib', 'buffer-util.js')) as { unmask: (b: Buffer, m: Buffer) => void };
    assert.strictEqual(typeof native.unmask, 'function', 'bufferutil has no native unmask');
    assert.ok(String(wsBuffers.unmask).includes('bufferUtil.unmask'), "ws's unmask is its JavaScript fallback: is bufferutil installed?");
    const data = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(data.map((b, i) => b ^ (mask[i & 3] as number)));
    wsBuffers.unmask(masked, mask);
    assert.deepStrictEqual(masked, data);
  });
});
