import { strict as assert } from 'assert';
import { cidrProblem, cidrsOverlap, formatHostPort, isHostname, isIp, parseCidr, parseHostPort } from '../../../shared/config/address';
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
    for (const bad of [
      '',
      'a b',
      '2001:db8::1:7947:x',
      '[2001:db8::1]:',
      '[2001:db8::1]x',
      '[::1',
      '[192.0.2.1]:80',
      'h:0',
      'h:65536',
      'h:+80',
      'h:8o',
      ':80',
      '1.2.3',
      '256.0.0.1',
      '-bad',
      'a..b',
    ]) {
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
    for (const bad of [
      '10.0.0.0',
      '10.0.0.0/33',
      '2001:db8::/129',
      '10.0.0.0/',
      '/8',
      '10.0.0.0/-1',
      '10.0.0.0/8/8',
      'fe80::1%eth0/64',
      'x/8',
      '10.0.0.0/ 8',
    ]) {
      assert.equal(parseCidr(bad), null, bad);
      assert.ok(cidrProblem(bad), bad);
    }
    assert.equal(cidrProblem('192.0.2.1/24'), null);
  });

  it('cidrsOverlap: containment either way, host bits ignored, families apart', () => {
    const c = (s: string) => parseCidr(s)!;
    const yes: Array<[string, string]> = [
      ['10.0.0.0/8', '10.42.0.0/16'],
      ['10.42.0.0/16', '10.0.0.0/8'],
      ['192.0.2.10/24', '192.0.2.200/32'],
      ['172.16.0.2/12', '172.28.0.0/16'],
      ['0.0.0.0/0', '203.0.113.1/32'],
      ['fd42:4865:7074:6f00::/56', 'fd42:4865:7074:6f43::/112'],
      ['2001:db8::1/64', '2001:db8::ffff:1/128'],
      ['::ffff:192.0.2.1/128', '::ffff:192.0.2.0/120'],
      ['::/0', '2001:db8::/32'],
    ];
    const no: Array<[string, string]> = [
      ['10.0.0.0/8', '172.28.0.0/16'],
      ['172.28.0.0/16', '172.29.0.0/16'],
      ['192.0.2.0/25', '192.0.2.128/25'],
      ['fd42:4865:7074:6f00::/56', 'fd42:4865:7074:7000::/112'],
      ['2001:db8::/64', '2001:db8:0:1::/64'],
      ['10.0.0.0/8', '::a00:0/104'],
      ['0.0.0.0/0', '::/0'],
    ];
    for (const [a, b] of yes) assert.ok(cidrsOverlap(c(a), c(b)) && cidrsOverlap(c(b), c(a)), `${a} ${b}`);
    for (const [a, b] of no) assert.ok(!cidrsOverlap(c(a), c(b)) && !cidrsOverlap(c(b), c(a)), `${a} ${b}`);
  });

  it('isIp and isHostname', () => {
    assert.ok(isIp('2001:db8::1') && isIp('192.0.2.1'));
    assert.ok(!isIp('192.0.2.1/24') && !isIp('[::1]') && !isIp('host'));
    assert.ok(isHostname('a-b.example.org') && !isHostname('a_b') && !isHostname('1.2.3') && !isHostname('x'.repeat(64)));
  });
});
