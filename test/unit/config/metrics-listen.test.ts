/**
 * metrics_listen (issue 15): default loopback at the documented port, "" turns
 * the endpoint off, IPv6 in brackets; a wrong value is refused with a line
 * naming the field and saying what to write.
 */
import { strict as assert } from 'assert';
import { validateConfig } from '../../../shared/config/validate';
import { defaults } from '../../../shared/config/defaults';
import { METRICS_PORT } from '../../../agent/daemon/metrics-server';
import { baseConfig } from './helpers';

function check(v: unknown): { ok: boolean; problems: string[]; value?: string } {
  const r = validateConfig({ ...baseConfig(), metrics_listen: v }, { hostname: 'venus' });
  return r.config ? { ok: true, problems: [], value: r.config.metrics_listen } : { ok: false, problems: r.problems };
}

describe('config/validate: metrics_listen', () => {
  it('defaults to loopback at the documented port', () => {
    const r = validateConfig(baseConfig(), { hostname: 'venus' });
    assert.equal(r.config?.metrics_listen, '127.0.0.1:9947');
    assert.equal(defaults.metrics_listen, `127.0.0.1:${METRICS_PORT}`);
  });

  it('takes "" (off), IPv4 and bracketed IPv6 with a port, or a bare IP', () => {
    for (const v of ['', '127.0.0.1:9947', '[::1]:9947', '0.0.0.0:19947', '[2001:db8::1]:9100', '::1', '127.0.0.1']) {
      const r = check(v);
      assert.ok(r.ok, `${v}: ${r.problems.join('; ')}`);
      assert.equal(r.value, v);
    }
  });

  it('refuses host names, bad ports, unbracketed IPv6 with a port and non-strings, naming the field and the fix', () => {
    for (const v of ['localhost:9947', '127.0.0.1:0', '127.0.0.1:99999', 'not an address', '::1:9947x', 'example.org']) {
      const r = check(v);
      assert.ok(!r.ok, `${v} accepted`);
      const line = r.problems.find((p) => p.startsWith('metrics_listen: '));
      assert.ok(line, `${v}: no line names metrics_listen: ${r.problems.join('; ')}`);
      assert.match(line, /"127\.0\.0\.1:9947"/, 'says what to write');
      assert.match(line, /"" to turn metrics off/);
    }
    const r = check(9947);
    assert.ok(!r.ok);
    assert.ok(
      r.problems.some((p) => p.startsWith('metrics_listen: ')),
      r.problems.join('; '),
    );
  });
});
