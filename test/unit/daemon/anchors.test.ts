import { strict as assert } from 'assert';
import { anchorEndpoints } from '../../../agent/daemon/agent';

describe('anchor endpoints', () => {
  it('gives every anchor an explicit port, brackets IPv6, keeps given ports', () => {
    assert.deepEqual(anchorEndpoints(['2001:db8::1', '192.0.2.1', 'anchor.example.org', '[2001:db8::2]:7000', 'h.example:9000']), [
      '[2001:db8::1]:7947',
      '192.0.2.1:7947',
      'anchor.example.org:7947',
      '[2001:db8::2]:7000',
      'h.example:9000',
    ]);
  });
});
