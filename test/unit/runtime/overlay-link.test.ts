import assert from 'node:assert/strict';
import { linkKind, linkReady, OverlayLinks, parseIpJson, type DesiredLink, type ExecResult } from '../../../agent/runtime/overlay-link';

const WANT: DesiredLink = { node: 'n1', container: 'hepto-n1-wesher', ifname: 'wgoverlay', address: '10.1.2.3/32', mtu: 1320 };

/** `ip -j addr show` as iproute2 prints it (trimmed to the fields read). */
const SHOWN = JSON.stringify([
  {
    ifindex: 7,
    ifname: 'wgoverlay',
    flags: ['POINTOPOINT', 'NOARP', 'UP', 'LOWER_UP'],
    mtu: 1420,
    addr_info: [
      { family: 'inet', local: '10.1.2.3', prefixlen: 32, scope: 'global' },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
    ],
  },
]);

function recorder(answers: Array<Partial<ExecResult>>): { calls: string[][]; exec: (cmd: string, args: string[]) => Promise<ExecResult> } {
  const calls: string[][] = [];
  return {
    calls,
    exec: async (cmd, args) => {
      calls.push([cmd, ...args]);
      const a = answers.shift() ?? {};
      return { code: a.code ?? 0, stdout: a.stdout ?? '', stderr: a.stderr ?? '' };
    },
  };
}

describe('runtime/overlay-link', () => {
  it('reads ip -j output: mtu, up, global addresses only', () => {
    const s = parseIpJson(SHOWN);
    assert.deepEqual(s, { exists: true, mtu: 1420, up: true, addresses: ['10.1.2.3/32'] });
    assert.equal(linkReady(s, WANT), false, 'wesher own MTU 1420 is not ready');
    assert.equal(linkReady({ ...s, mtu: 1320 }, WANT), true);
    assert.equal(linkReady({ ...s, mtu: 1320, up: false }, WANT), false);
    assert.throws(() => parseIpJson('not json'), /unreadable output/);
  });

  it('inspect runs ip inside the namespace of the wesher process; a missing device is absent, other failures throw', async () => {
    const r = recorder([
      { stdout: SHOWN },
      { code: 1, stderr: 'Device "wgoverlay" does not exist.' },
      { code: 1, stderr: 'nsenter: cannot open /proc/9/ns/net: No such file' },
    ]);
    const links = new OverlayLinks(r.exec, 'wireguard');
    assert.equal((await links.inspect(4242, 'wgoverlay')).mtu, 1420);
    assert.deepEqual(r.calls[0], ['nsenter', '--target=4242', '--net', '--', 'ip', '-j', 'addr', 'show', 'dev', 'wgoverlay']);
    assert.equal((await links.inspect(4242, 'wgoverlay')).exists, false);
    await assert.rejects(links.inspect(9, 'wgoverlay'), /LINK|cannot read wgoverlay .* process 9: nsenter: cannot open/);
  });

  it('ensure creates a WireGuard link, sets MTU and up, then the address; only what differs', async () => {
    const r = recorder([]);
    const links = new OverlayLinks(r.exec, 'wireguard');
    assert.deepEqual(await links.ensure(7, WANT, { exists: false, mtu: null, up: false, addresses: [] }), ['created', 'mtu 1320 up', 'address 10.1.2.3/32']);
    assert.deepEqual(
      r.calls.map((c) => c.slice(4).join(' ')),
      ['ip link add wgoverlay type wireguard', 'ip link set dev wgoverlay mtu 1320 up', 'ip addr replace 10.1.2.3/32 dev wgoverlay'],
    );
    const again = recorder([]);
    assert.deepEqual(
      await new OverlayLinks(again.exec, 'wireguard').ensure(7, WANT, parseIpJson(SHOWN)),
      ['mtu 1320 up'],
      'wesher reset the MTU: only the MTU is set back',
    );
  });

  it('a link created meanwhile (by wesher) is fine; any other failure names the interface, container and command', async () => {
    const raced = recorder([{ code: 2, stderr: 'RTNETLINK answers: File exists' }]);
    assert.deepEqual(await new OverlayLinks(raced.exec, 'wireguard').ensure(7, WANT, { exists: false, mtu: null, up: false, addresses: [] }), [
      'created',
      'mtu 1320 up',
      'address 10.1.2.3/32',
    ]);
    const nomod = recorder([{ code: 2, stderr: 'Error: Unknown device type.' }]);
    await assert.rejects(
      new OverlayLinks(nomod.exec, 'wireguard').ensure(7, WANT, { exists: false, mtu: null, up: false, addresses: [] }),
      (e: Error & { hint?: string }) => {
        assert.match(
          e.message,
          /cannot set up wgoverlay in hepto-n1-wesher's network namespace \(ip link add wgoverlay type wireguard\): Error: Unknown device type/,
        );
        assert.match(e.hint ?? '', /modprobe wireguard/);
        return true;
      },
    );
  });

  it('the test hook swaps only the link kind, and only for a plain word', () => {
    assert.equal(linkKind({}), 'wireguard');
    assert.equal(linkKind({ HEPTO_TEST_LINK_KIND: 'veth' }), 'veth');
    assert.equal(linkKind({ HEPTO_TEST_LINK_KIND: 'veth peer name x' }), 'wireguard');
  });
});
