import { strict as assert } from 'assert';
import * as net from 'net';
import { defaults } from '../../../shared/config/defaults';
import type { HeptoConfig } from '../../../shared/config/types';
import {
  checkOverlayTools,
  checkAddresses,
  checkAnchors,
  checkClock,
  checkConfigMode,
  checkGossipPort,
  checkMtu,
  checkPodman,
  formatResult,
  runChecks,
  type CheckResult,
  type DoctorProbes,
} from '../../../agent/doctor/checks';
import { defaultRouteIface, realProbes } from '../../../agent/doctor/real-probes';

const KEY_A = 'Aa3456789012345678901234567890Zz';
const KEY_B = 'Bb3456789012345678901234567890Yy';

function config(over: Partial<HeptoConfig> = {}): HeptoConfig {
  return { ...defaults, node: 'n1', master: 'n1', overlay_key: KEY_A, cluster_key: KEY_B, ...over } as HeptoConfig;
}

const errno = (code: string): Error => Object.assign(new Error(code), { code });

/** A healthy machine; each test breaks one thing. */
function probes(over: Partial<DoctorProbes> = {}): DoctorProbes {
  return {
    stat: async () => ({ mode: 0o100600, uid: 0 }),
    podmanPing: async () => undefined,
    addresses: () => [
      { iface: 'lo', address: '127.0.0.1' },
      { iface: 'eth0', address: '2001:db8::10' },
      { iface: 'eth0', address: '192.0.2.10' },
    ],
    interfaces: () => ['eth0', 'lo'],
    mtu: async () => 1500,
    defaultIface: async () => 'eth0',
    tcpConnect: async () => undefined,
    bind: async () => undefined,
    agentRunning: async () => false,
    hasCommand: () => true,
    wireguard: () => true,
    now: () => Date.parse('2026-06-01T00:00:00Z'),
    buildTime: () => Date.parse('2026-01-01T00:00:00Z'),
    ...over,
  };
}

const statuses = (rs: CheckResult[]): string[] => rs.map((r) => `${r.check}:${r.status}`);

describe('install/doctor checks', () => {
  it('the overlay tools: nsenter, ip and WireGuard, each failing with its fix; not checked for a gossip-only anchor', () => {
    assert.deepEqual(statuses(checkOverlayTools(config(), probes())), ['overlay-tools:ok', 'wireguard:ok']);
    const noIp = checkOverlayTools(config(), probes({ hasCommand: (n) => n !== 'ip' }));
    assert.equal(noIp[0].status, 'fail');
    assert.match(formatResult(noIp[0]), /ip not found.*apt-get install util-linux iproute2/);
    const noWg = checkOverlayTools(config(), probes({ wireguard: () => false }));
    assert.match(formatResult(noWg[1]), /WARN  wireguard: this kernel has no WireGuard module.*modprobe wireguard/);
    assert.deepEqual(checkOverlayTools(config({ runtime: 'none' }), probes({ wireguard: () => false })), []);
  });

  it('a healthy machine passes every check, and no line carries a key', async () => {
    const c = config({ anchors: ['[2001:db8::1]:7947', 'anchor.example.org'], ip: ['2001:db8::10/64'] });
    const rs = await runChecks(c, '/etc/hepto/hepto.json', probes());
    assert.deepEqual(rs.filter((r) => r.status !== 'ok').map(formatResult), []);
    assert.deepEqual(statuses(rs), [
      'config-mode:ok',
      'podman:ok',
      'overlay-tools:ok',
      'wireguard:ok',
      'addresses:ok',
      'mtu:ok',
      'clock:ok',
      'anchors:ok',
      'anchors:ok',
      'gossip-port:ok',
    ]);
    const text = rs.map(formatResult).join('\n');
    assert.ok(!text.includes(KEY_A) && !text.includes(KEY_B));
  });

  it('config mode: readable by others fails with chmod 600, another owner warns', async () => {
    const open = await checkConfigMode('/etc/hepto/hepto.json', probes({ stat: async () => ({ mode: 0o100644, uid: 0 }) }));
    assert.equal(open.status, 'fail');
    assert.equal(open.fix, 'chmod 600 /etc/hepto/hepto.json');
    const owner = await checkConfigMode('/x', probes({ stat: async () => ({ mode: 0o100600, uid: 1000 }) }));
    assert.equal(owner.status, 'warn');
    assert.match(owner.fix!, /chown root:root/);
  });

  it('podman: a missing socket says to enable podman.socket; runtime none skips it', async () => {
    const missing = await checkPodman(config(), probes({ podmanPing: async () => Promise.reject(errno('ENOENT')) }));
    assert.equal(missing.status, 'fail');
    assert.match(missing.detail, /\/run\/podman\/podman\.sock/);
    assert.match(missing.fix!, /systemctl enable --now podman\.socket/);
    const denied = await checkPodman(config(), probes({ podmanPing: async () => Promise.reject(errno('EACCES')) }));
    assert.match(denied.fix!, /root/);
    let pinged = false;
    const none = await checkPodman(config({ runtime: 'none' }), probes({ podmanPing: async () => void (pinged = true) }));
    assert.equal(none.status, 'ok');
    assert.equal(pinged, false);
  });

  it('addresses: host mode needs them on the host; macvlan needs them off it; iface must exist', () => {
    const missing = checkAddresses(config({ ip: ['2001:db8::99/64'] }), probes());
    assert.deepEqual(statuses(missing), ['addresses:fail']);
    assert.match(missing[0].fix!, /ip addr add 2001:db8::99\/64/);
    const wrongIface = checkAddresses(config({ ip: ['192.0.2.10/24'], iface: 'lo' }), probes());
    assert.deepEqual(statuses(wrongIface), ['addresses:warn']);
    const macvlan = checkAddresses(config({ ip: ['192.0.2.10/24'], network_mode: 'macvlan', iface: 'eth0' }), probes());
    assert.deepEqual(statuses(macvlan), ['addresses:fail']);
    assert.match(macvlan[0].fix!, /ip addr del 192\.0\.2\.10\/24 dev eth0/);
    const noIface = checkAddresses(config({ iface: 'eth9' }), probes());
    assert.deepEqual(statuses(noIface), ['addresses:fail']);
    assert.match(noIface[0].detail, /eth9 does not exist \(have: eth0, lo\)/);
  });

  it('mtu: the cluster mtu is the path MTU (seed 002): a link below it fails with the number to use, a link at it is enough', async () => {
    const low = await checkMtu(config({ mtu: 1400 }), probes({ mtu: async () => 1280 }));
    assert.equal(low.status, 'fail');
    assert.match(low.fix!, /set mtu to 1280 or less/);
    const exact = await checkMtu(config({ mtu: 1400 }), probes({ mtu: async () => 1400 }));
    assert.equal(exact.status, 'ok');
    assert.match(exact.detail, /wesher's interface gets 1320/);
    let asked = '';
    await checkMtu(config({ iface: 'eth1' }), probes({ mtu: async (i) => ((asked = i), 9000) }));
    assert.equal(asked, 'eth1');
    const noRoute = await checkMtu(config(), probes({ defaultIface: async () => undefined }));
    assert.equal(noRoute.status, 'warn');
  });

  it('clock: before the build date or absurdly late fails', () => {
    assert.equal(checkClock(probes({ now: () => 0 })).status, 'fail');
    assert.equal(checkClock(probes({ now: () => Date.parse('2150-01-01T00:00:00Z') })).status, 'fail');
    assert.equal(checkClock(probes()).status, 'ok');
  });

  it('anchors: each is tried on its port (gossip_port by default); an unreachable one names itself', async () => {
    const tried: string[] = [];
    const rs = await checkAnchors(
      config({ anchors: ['[2001:db8::1]:7000', '192.0.2.1'], gossip_port: 7999 }),
      probes({
        tcpConnect: async (h, p) => {
          tried.push(`${h} ${p}`);
          if (h === '192.0.2.1') throw errno('ETIMEDOUT');
        },
      }),
    );
    assert.deepEqual(tried.sort(), ['192.0.2.1 7999', '2001:db8::1 7000']);
    assert.deepEqual(statuses(rs), ['anchors:ok', 'anchors:fail']);
    assert.match(rs[1].detail, /^192\.0\.2\.1:7999 unreachable: ETIMEDOUT$/);
    assert.match(rs[1].fix!, /7999\/tcp/);
    assert.deepEqual(statuses(await checkAnchors(config(), probes())), ['anchors:ok']);
  });

  it('gossip port: in use by our own agent is fine, by another program fails, a foreign address fails', async () => {
    const busy = probes({ bind: async () => Promise.reject(errno('EADDRINUSE')) });
    assert.deepEqual(statuses(await checkGossipPort(config(), { ...busy, agentRunning: async () => true })), ['gossip-port:ok']);
    const other = await checkGossipPort(config(), busy);
    assert.deepEqual(statuses(other), ['gossip-port:fail']);
    assert.match(other[0].fix!, /ss -ltnp 'sport = :7947'/);
    const foreign = await checkGossipPort(config({ gossip_listen: ['192.0.2.77'] }), probes({ bind: async () => Promise.reject(errno('EADDRNOTAVAIL')) }));
    assert.match(foreign[0].detail, /192\.0\.2\.77 \(gossip_listen\) is not an address of this host/);
  });

  it('defaultRouteIface reads /proc/net/ipv6_route first, then /proc/net/route', () => {
    const v6 = [
      '20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     wan6',
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo',
    ].join('\n');
    const v4 = [
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT',
      'eth1\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    ].join('\n');
    assert.equal(defaultRouteIface(v6, v4), 'wan6');
    assert.equal(defaultRouteIface('', v4), 'eth1');
    assert.equal(defaultRouteIface('', ''), undefined);
  });

  it('real probes: bind sees a taken port, connect reaches a listener and times out cleanly', async () => {
    const p = realProbes();
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      await assert.rejects(p.bind('127.0.0.1', port), (e: unknown) => (e as { code?: string }).code === 'EADDRINUSE');
      await p.tcpConnect('127.0.0.1', port, 2000);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
    await assert.rejects(p.tcpConnect('127.0.0.1', port, 2000), (e: unknown) => (e as { code?: string }).code === 'ECONNREFUSED');
    await p.bind('127.0.0.1', port);
    await assert.rejects(p.podmanPing('/nonexistent/podman.sock', 1000), (e: unknown) => (e as { code?: string }).code === 'ENOENT');
    assert.equal(await p.agentRunning('/nonexistent/agent.sock'), false);
  });
});
