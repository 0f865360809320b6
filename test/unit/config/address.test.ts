import { strict as assert } from 'assert';
import { cidrProblem, formatHostPort, isHostname, isIp, parseCidr, parseHostPort } from '../../../shared/config/address';
import { HeptoError } from '../../../shared/errors';

describe('config/address', () => {
  it('parseHostPort: every accepted form, brackets removed, default port applied', () => {
    const table: Array<[string, string, number]> = [
      ['anchor', 'anchor', 7947],
      ['anchor.example.org.', 'anchor.example.org.', 7947],
      ['anchor.example.org:7000', 'anchor.example.org', 7000],
      ['192.0.2.1', '192.0.2.1', 7947],
      ['192.0.2.1:1', '192.0.2.1', 1],
      ['[2001:db8::1]:65535', '2001:db8::1', 65535],
      ['[2001:db8::1]', '2001:db8::1', 7947],
      ['2001:db8::1', '2001:db8::1', 7947],
      ['::1', '::1', 7947],
      ['[::ffff:192.0.2.1]:80', '::ffff:192.0.2.1', 80],
    ];
    for (const [input, host, port] of table) assert.deepEqual(parseHostPort(input, 7947), { host, port }, input);
  });

  it('parseHostPort: refuses with CONFIG_INVALID naming the input', () => {
    for (const bad of ['', 'a b', '2001:db8::1:7947:x', '[2001:db8::1]:', '[2001:db8::1]x', '[::1', '[192.0.2.1]:80', 'h:0', 'h:65536', 'h:+80', 'h:8o', ':80', '1.2.3', '256.0.0.1', '-bad', 'a..b']) {
      assert.throws(
        () => parseHostPort(bad, 7947),
        (e: unknown) => e instanceof HeptoError && e.code === 'CONFIG_INVALID' && e.message.includes(JSON.stringify(bad)),
        bad,
      );
    }
  });

  it('formatHostPort brackets IPv6 only, and round-trips through parseHostPort', () => {
    assert.equal(formatHostPort('2001:db8::1', 7947), '[2001:db8::1]:7947');
    assert.equal(formatHostPort('192.0.2.1', 80), '192.0.2.1:80');
    assert.equal(formatHostPort('anchor', 1), 'anchor:1');
    for (const h of ['2001:db8::1', '192.0.2.1', 'anchor.example.org']) {
      assert.deepEqual(parseHostPort(formatHostPort(h, 1234), 1), { host: h, port: 1234 });
    }
  });

  it('parseCidr: families, prefixes and refusals', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 4 });
    assert.deepEqual(parseCidr('2001:db8::1/64'), { address: '2001:db8::1', prefix: 64, family: 6 });
    assert.deepEqual(parseCidr('::/0'), { address: '::', prefix: 0, family: 6 });
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '2001:db8::/129', '10.0.0.0/', '/8', '10.0.0.0/-1', '10.0.0.0/8/8', 'fe80::1%eth0/64', 'x/8', '10.0.0.0/ 8']) {
      assert.equal(parseCidr(bad), null, bad);
      assert.ok(cidrProblem(bad), bad);
    }
    assert.equal(cidrProblem('192.0.2.1/24'), null);
  });

  it('isIp and isHostname', () => {
    assert.ok(isIp('2001:db8::1') && isIp('192.0.2.1'));
    assert.ok(!isIp('192.0.2.1/24') && !isIp('[::1]') && !isIp('host'));
    assert.ok(isHostname('a-b.example.org') && !isHostname('a_b') && !isHostname('1.2.3') && !isHostname('x'.repeat(64)));
  });
});
