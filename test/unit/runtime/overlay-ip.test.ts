import assert from 'node:assert/strict';
import { overlayIp, fnv1a128 } from '../../../agent/runtime/overlay-ip';
import { formatIp, networkOf, parseCidr, parseIp, hostOf } from '../../../agent/runtime/ip';
import { HeptoError } from '../../../shared/errors';

describe('runtime/overlay-ip', () => {
  it("matches wesher's own vectors for the name 'test'", () => {
    assert.equal(overlayIp('test', '10.0.0.0/8'), '10.221.153.165');
    assert.equal(overlayIp('test', '10.0.0.0/24'), '10.0.0.165');
    assert.equal(overlayIp('test', '2001:db8::/32'), '2001:db8:c575:7277:b806:e994:13dd:99a5');
  });

  it('FNV-1a 128 of the empty string is the offset basis', () => {
    assert.equal(Buffer.from(fnv1a128('')).toString('hex'), '6c62272e07bb014262b821756295c58d');
  });

  it('keeps the prefix bytes and differs between names', () => {
    const a = overlayIp('node-a', '10.42.0.0/16');
    const b = overlayIp('node-b', '10.42.0.0/16');
    assert.match(a, /^10\.42\.\d+\.\d+$/);
    assert.notEqual(a, b);
  });

  it('refuses a prefix that is not a multiple of 8, naming the field', () => {
    assert.throws(
      () => overlayIp('x', '10.0.0.0/12'),
      (e: unknown) => e instanceof HeptoError && /overlay_net.*multiple of 8/.test(e.message),
    );
    assert.throws(
      () => overlayIp('x', 'nonsense'),
      (e: unknown) => e instanceof HeptoError && e.code === 'CONFIG_INVALID',
    );
  });
});

describe('runtime/ip', () => {
  it('parses and formats IPv4 and IPv6', () => {
    assert.equal(formatIp(parseIp('192.0.2.1')), '192.0.2.1');
    assert.equal(formatIp(parseIp('2001:db8:0:0:0:0:0:1')), '2001:db8::1');
    assert.equal(formatIp(parseIp('::')), '::');
    assert.equal(formatIp(parseIp('2001:db8::1:0:0:1')), '2001:db8::1:0:0:1');
    assert.equal(formatIp(parseIp('::ffff:192.0.2.1')), '::ffff:c000:201');
    assert.throws(() => parseIp('300.1.1.1'));
    assert.throws(() => parseIp('1::2::3'));
  });
  it('derives the network of an address', () => {
    assert.equal(networkOf(parseCidr('192.0.2.10/24')), '192.0.2.0/24');
    assert.equal(networkOf(parseCidr('2001:db8::10/64')), '2001:db8::/64');
  });
  it('takes the host of an endpoint', () => {
    assert.equal(hostOf('[2001:db8::1]:7947'), '2001:db8::1');
    assert.equal(hostOf('192.0.2.1:7947'), '192.0.2.1');
    assert.equal(hostOf('anchor.example'), 'anchor.example');
    assert.equal(hostOf('2001:db8::1'), '2001:db8::1');
  });
});
