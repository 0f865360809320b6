/**
 * `hepto-agent doctor`'s pre-flight checks. Each check reads the machine only
 * through `DoctorProbes`, so tests drive them with fakes and the real probes
 * (real-probes.ts) stay a thin shell. Every failure says what to do.
 */
import type { HeptoConfig } from '../../shared/config/types';
import { parseCidr, parseHostPort, formatHostPort } from '../../shared/config/address';
import { errnoCode, errorMessage } from '../../shared/errors';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Short name of what was checked: podman, addresses, mtu, clock, anchors, gossip-port, config-mode. */
  check: string;
  status: CheckStatus;
  /** What was found, one line. */
  detail: string;
  /** What to do about it (warn and fail only). */
  fix?: string;
}

/** One host interface address as the OS reports it. */
export interface HostAddress {
  iface: string;
  address: string;
}

export interface DoctorProbes {
  /** mode and owner of a file. */
  stat(path: string): Promise<{ mode: number; uid: number }>;
  /** Resolves when the Podman API answers GET /_ping on the socket. */
  podmanPing(socketPath: string, timeoutMs: number): Promise<void>;
  /** Every address on every interface. */
  addresses(): HostAddress[];
  /** Interface names that exist. */
  interfaces(): string[];
  /** MTU of an interface, undefined if unknown. */
  mtu(iface: string): Promise<number | undefined>;
  /** Interface of the default route (IPv6 first, then IPv4), undefined if none. */
  defaultIface(): Promise<string | undefined>;
  /** Resolves when a TCP connection to host:port opens within the timeout. */
  tcpConnect(host: string, port: number, timeoutMs: number): Promise<void>;
  /** Resolves when host:port can be bound (then releases it). */
  bind(host: string, port: number): Promise<void>;
  /** True when a hepto-agent answers on the control socket. */
  agentRunning(controlSocket: string): Promise<boolean>;
  /** Whether a program is on the PATH. */
  hasCommand(name: string): boolean;
  /** Whether the kernel has WireGuard: loaded, built in, or a module to load. */
  wireguard(): boolean;
  /** Wall clock, ms. */
  now(): number;
  /** When this agent was built (ms), a floor for a sane clock. */
  buildTime(): number;
}

/** WireGuard over IPv6 adds 80 bytes to every packet (40 IPv6 + 8 UDP + 32 WireGuard). */
export const WIREGUARD_OVERHEAD = 80;
export const CONNECT_TIMEOUT_MS = 3000;

const ok = (check: string, detail: string): CheckResult => ({ check, status: 'ok', detail });
const warn = (check: string, detail: string, fix: string): CheckResult => ({ check, status: 'warn', detail, fix });
const fail = (check: string, detail: string, fix: string): CheckResult => ({ check, status: 'fail', detail, fix });

export async function checkConfigMode(file: string, p: DoctorProbes): Promise<CheckResult> {
  try {
    const { mode, uid } = await p.stat(file);
    const perms = mode & 0o777;
    if (perms & 0o077) {
      return fail('config-mode', `${file} is mode ${perms.toString(8).padStart(3, '0')}: others can read the cluster keys`, `chmod 600 ${file}`);
    }
    if (uid !== 0) return warn('config-mode', `${file} is owned by uid ${uid}, not root`, `chown root:root ${file}`);
    return ok('config-mode', `${file} is 0${perms.toString(8)}, owned by root`);
  } catch (e) {
    return fail('config-mode', `cannot stat ${file}: ${errnoCode(e) ?? errorMessage(e)}`, 'run doctor as root, with --config pointing at the config');
  }
}

export async function checkPodman(c: HeptoConfig, p: DoctorProbes): Promise<CheckResult> {
  if (c.runtime === 'none') return ok('podman', 'runtime is none: this agent runs no containers');
  try {
    await p.podmanPing(c.podman_socket, CONNECT_TIMEOUT_MS);
    return ok('podman', `the Podman API answers on ${c.podman_socket}`);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      return fail('podman', `nothing listens on ${c.podman_socket}`, 'systemctl enable --now podman.socket (install Podman first if needed)');
    }
    if (code === 'EACCES') return fail('podman', `permission denied on ${c.podman_socket}`, 'run as root (the agent uses the rootful Podman socket)');
    return fail(
      'podman',
      `the Podman API on ${c.podman_socket} does not answer: ${code ?? errorMessage(e)}`,
      'systemctl restart podman.socket; journalctl -u podman',
    );
  }
}

export function checkAddresses(c: HeptoConfig, p: DoctorProbes): CheckResult[] {
  const out: CheckResult[] = [];
  const ifaces = p.interfaces();
  if (c.iface !== null && !ifaces.includes(c.iface)) {
    out.push(
      fail('addresses', `interface ${c.iface} does not exist (have: ${ifaces.join(', ')})`, 'set iface to one of those, or remove it to use the default route'),
    );
  }
  const host = p.addresses();
  for (const cidr of c.ip) {
    const addr = parseCidr(cidr)?.address ?? cidr.replace(/\/\d+$/, '');
    const on = host.find((h) => h.address.toLowerCase() === addr.toLowerCase());
    if (c.network_mode === 'host') {
      if (!on)
        out.push(
          fail(
            'addresses',
            `${addr} (ip) is not on any interface of this host`,
            `add it (ip addr add ${cidr} dev ${c.iface ?? 'IFACE'}) or fix ip in the config`,
          ),
        );
      else if (c.iface !== null && on.iface !== c.iface)
        out.push(warn('addresses', `${addr} is on ${on.iface}, not on iface ${c.iface}`, 'set iface to the interface that carries the address'));
    } else if (on) {
      out.push(
        fail(
          'addresses',
          `${addr} is on the host (${on.iface}), but ${c.network_mode} gives it to the node's own interface`,
          `remove it from the host (ip addr del ${cidr} dev ${on.iface})`,
        ),
      );
    }
  }
  if (out.length === 0) {
    out.push(
      ok(
        'addresses',
        c.ip.length === 0
          ? "no node addresses configured: the node uses the host's"
          : `${c.ip.length} node address${c.ip.length > 1 ? 'es' : ''} as ${c.network_mode} mode expects`,
      ),
    );
  }
  return out;
}

export async function checkMtu(c: HeptoConfig, p: DoctorProbes): Promise<CheckResult> {
  const iface = c.iface ?? (await p.defaultIface());
  if (!iface) return warn('mtu', 'no default route, so no interface to check', 'set iface in the config, or give the host a default route');
  const mtu = await p.mtu(iface);
  if (mtu === undefined) return warn('mtu', `cannot read the MTU of ${iface}`, `check: ip link show ${iface}`);
  // The cluster mtu is the path MTU between nodes (seed 002); wesher's interface gets mtu - 80, so
  // its encapsulated packets are mtu bytes: the link needs mtu, not mtu + 80.
  if (mtu < c.mtu)
    return fail('mtu', `${iface} has MTU ${mtu}, below the cluster mtu ${c.mtu}`, `set mtu to ${mtu} or less in every machine's config, or raise the link MTU`);
  return ok('mtu', `${iface} has MTU ${mtu}, room for the cluster mtu ${c.mtu} (wesher's interface gets ${c.mtu - WIREGUARD_OVERHEAD})`);
}

export function checkClock(p: DoctorProbes): CheckResult {
  const now = p.now();
  const built = p.buildTime();
  const iso = new Date(now).toISOString();
  if (now < built) {
    return fail(
      'clock',
      `the clock says ${iso}, before this agent was built (${new Date(built).toISOString()})`,
      'set the time: timedatectl set-ntp true (or date -s)',
    );
  }
  if (new Date(now).getUTCFullYear() >= 2100) return fail('clock', `the clock says ${iso}`, 'set the time: timedatectl set-ntp true (or date -s)');
  return ok('clock', `the clock says ${iso}`);
}

export async function checkAnchors(c: HeptoConfig, p: DoctorProbes): Promise<CheckResult[]> {
  if (c.anchors.length === 0) return [ok('anchors', 'no anchors: this node starts a new cluster')];
  return Promise.all(
    c.anchors.map(async (a) => {
      let hp;
      try {
        hp = parseHostPort(a, c.gossip_port);
      } catch (e) {
        return fail('anchors', `anchor "${a}" is not host[:port]: ${errorMessage(e)}`, 'fix anchors in the config');
      }
      const where = formatHostPort(hp.host, hp.port);
      try {
        await p.tcpConnect(hp.host, hp.port, CONNECT_TIMEOUT_MS);
        return ok('anchors', `${where} accepts connections`);
      } catch (e) {
        return fail(
          'anchors',
          `${where} unreachable: ${errnoCode(e) ?? errorMessage(e)}`,
          `check that hepto-agent runs there and that ${hp.port}/tcp is open in every firewall between`,
        );
      }
    }),
  );
}

export async function checkGossipPort(c: HeptoConfig, p: DoctorProbes): Promise<CheckResult[]> {
  let running: boolean | undefined;
  const out: CheckResult[] = [];
  for (const host of c.gossip_listen) {
    const where = formatHostPort(host, c.gossip_port);
    try {
      await p.bind(host, c.gossip_port);
      out.push(ok('gossip-port', `${where} is free`));
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'EADDRINUSE') {
        running ??= await p.agentRunning(c.control_socket);
        out.push(
          running
            ? ok('gossip-port', `${where} is in use by the running hepto-agent`)
            : fail('gossip-port', `${where} is in use by another program`, `find it with: ss -ltnp 'sport = :${c.gossip_port}'; or choose another gossip_port`),
        );
      } else if (code === 'EADDRNOTAVAIL') {
        out.push(fail('gossip-port', `${host} (gossip_listen) is not an address of this host`, 'fix gossip_listen, or leave it at the default ::'));
      } else {
        out.push(fail('gossip-port', `cannot listen on ${where}: ${code ?? errorMessage(e)}`, 'run as root, or choose another gossip_port'));
      }
    }
  }
  return out;
}

/**
 * What the agent needs to make wesher's overlay interface before k3s starts
 * (agent/runtime/overlay-link.ts): nsenter and ip, and WireGuard in the kernel.
 */
export function checkOverlayTools(c: HeptoConfig, p: DoctorProbes): CheckResult[] {
  if (c.runtime === 'none') return [];
  const missing = ['nsenter', 'ip'].filter((t) => !p.hasCommand(t));
  const out: CheckResult[] = [
    missing.length === 0
      ? ok('overlay-tools', 'nsenter and ip are installed')
      : fail(
          'overlay-tools',
          `${missing.join(' and ')} not found: the agent cannot make wesher's interface`,
          "apt-get install util-linux iproute2 (or your distribution's packages for nsenter and ip)",
        ),
  ];
  out.push(
    p.wireguard()
      ? ok('wireguard', 'the kernel has WireGuard')
      : // A warning, not a failure: the module may load later, or the link come from elsewhere (a userspace WireGuard).
        warn(
          'wireguard',
          'this kernel has no WireGuard module: wesher cannot make its interface, and k3s will not start',
          'use a kernel with WireGuard (Linux >= 5.6 has it built in; Debian: linux-image-amd64), then modprobe wireguard',
        ),
  );
  return out;
}

/** Every check, in the order an operator fixes things. */
export async function runChecks(config: HeptoConfig, configFile: string, p: DoctorProbes): Promise<CheckResult[]> {
  const [mode, podman, mtu, anchors, port] = await Promise.all([
    checkConfigMode(configFile, p),
    checkPodman(config, p),
    checkMtu(config, p),
    checkAnchors(config, p),
    checkGossipPort(config, p),
  ]);
  return [mode, podman, ...checkOverlayTools(config, p), ...checkAddresses(config, p), mtu, checkClock(p), ...anchors, ...port];
}

/** One line per result: `ok    mtu: eth0 has MTU 1500 ...`, with the fix after an arrow. */
export function formatResult(r: CheckResult): string {
  const tag = r.status === 'ok' ? 'ok  ' : r.status === 'warn' ? 'WARN' : 'FAIL';
  return `${tag}  ${r.check}: ${r.detail}${r.fix ? ` → ${r.fix}` : ''}`;
}
