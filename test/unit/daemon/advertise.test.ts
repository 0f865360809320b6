import { strict as assert } from 'assert';
import type { NetworkInterfaceInfo } from 'os';
import { advertiseAddresses, resolveAdvertised } from '../../../agent/daemon/advertise';
import { isIpEndpoint } from '../../../agent/gossip/newnames';

const ifaces: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
  eth0: [
    { address: '192.0.2.7', netmask: '255.255.255.0', family: 'IPv4', mac: 'aa:bb:cc:dd:ee:ff', internal: false, cidr: '192.0.2.7/24' },
    { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: 'aa:bb:cc:dd:ee:ff', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    { address: '2001:db8::7', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: 'aa:bb:cc:dd:ee:ff', internal: false, cidr: '2001:db8::7/64', scopeid: 0 },
  ],
};

describe('advertised addresses', () => {
  it('explicit advertise wins, with the gossip port implied', () => {
    assert.deepEqual(advertiseAddresses({ advertise: ['2001:db8::9', 'h.example:9000'], gossip_listen: ['::'], gossip_port: 7947 }, ifaces), [
      '[2001:db8::9]:7947',
      'h.example:9000',
    ]);
  });
  it('a specific listen address is advertised', () => {
    assert.deepEqual(advertiseAddresses({ advertise: [], gossip_listen: ['127.0.0.5'], gossip_port: 7000 }, ifaces), ['127.0.0.5:7000']);
  });
  it("never an address the cluster put there: wesher's overlay, k3s's pod and service ranges", () => {
    const withOverlay: NodeJS.Dict<NetworkInterfaceInfo[]> = {
      ...ifaces,
      wgoverlay: [
        { address: '10.221.153.165', netmask: '255.255.255.255', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '10.221.153.165/32' },
      ],
      'flannel.1': [{ address: '172.28.0.0', netmask: '255.255.255.255', family: 'IPv4', mac: 'aa:aa:aa:aa:aa:aa', internal: false, cidr: '172.28.0.0/32' }],
      cni0: [{ address: '172.28.0.1', netmask: '255.255.255.0', family: 'IPv4', mac: 'aa:aa:aa:aa:aa:ab', internal: false, cidr: '172.28.0.1/24' }],
    };
    const c = {
      advertise: [],
      gossip_listen: ['::'],
      gossip_port: 7947,
      overlay_net: '10.0.0.0/8',
      cluster_cidr: '172.28.0.0/16',
      service_cidr: '172.29.0.0/16',
    };
    assert.deepEqual(advertiseAddresses(c, withOverlay), ['[2001:db8::7]:7947', '192.0.2.7:7947']);
    // Outside the configured ranges, an address is the host's own again.
    assert.deepEqual(advertiseAddresses({ ...c, cluster_cidr: '172.30.0.0/16' }, withOverlay), [
      '[2001:db8::7]:7947',
      '192.0.2.7:7947',
      '172.28.0.0:7947',
      '172.28.0.1:7947',
    ]);
  });
  it('otherwise global addresses, IPv6 first, no loopback or link-local', () => {
    assert.deepEqual(advertiseAddresses({ advertise: [], gossip_listen: ['::'], gossip_port: 7947 }, ifaces), ['[2001:db8::7]:7947', '192.0.2.7:7947']);
  });
  it('host names in advertise are resolved once at start, so that peers, who take only IP literals, accept the record', async () => {
    const lookup = async (host: string) =>
      host === 'h.example'
        ? [
            { address: '2001:db8::9', family: 6 },
            { address: '192.0.2.9', family: 4 },
          ]
        : Promise.reject(new Error('ENOTFOUND'));
    const c = { gossip_listen: ['::'], gossip_port: 7947 };
    const got = await resolveAdvertised(advertiseAddresses({ ...c, advertise: ['h.example:9000', '192.0.2.1'] }, ifaces), c, lookup, ifaces);
    assert.deepEqual(got, ['[2001:db8::9]:9000', '192.0.2.9:9000', '192.0.2.1:7947']);
    assert.ok(got.every(isIpEndpoint));
    // Nothing resolves: the host's own addresses, as without advertise.
    assert.deepEqual(await resolveAdvertised(['nowhere.example:7947'], c, lookup, ifaces), ['[2001:db8::7]:7947', '192.0.2.7:7947']);
    // What the agent advertises by itself always passes.
    assert.ok(advertiseAddresses({ advertise: [], gossip_listen: ['::'], gossip_port: 7947 }, ifaces).every(isIpEndpoint));
    assert.ok(advertiseAddresses({ advertise: [], gossip_listen: ['127.0.0.5'], gossip_port: 7000 }, ifaces).every(isIpEndpoint));
  });
});
