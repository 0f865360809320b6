/**
 * The overlay interface (`wgoverlay`) in wesher's network namespace, made and
 * kept by the agent, because wesher v0.2.6 alone does not give k3s what it
 * needs (docs/upstream.md):
 * - wesher creates the interface and gives it its overlay IP only when it
 *   hears of another member, so a lone master would have none and k3s,
 *   pointed at it with --flannel-iface, would exit;
 * - it sets the MTU to 1420 at every membership change (no option), which is
 *   too big for seed 002's path MTU of 1400;
 * - it leaves a pre-created interface alone ("already exists" is ignored)
 *   and, at its first peer, replaces the same address and sets it up.
 * So once wesher runs, the agent creates the link (kind wireguard), gives it
 * the overlay IP wesher would give it, `mtu - 80`, and up, and sets the MTU
 * back whenever wesher resets it.
 *
 * Commands run as `nsenter --target <wesher pid> --net -- ip ...`, so the same
 * path serves the host network and a macvlan/ipvlan namespace. The link kind
 * is `wireguard`; the one test hook, HEPTO_TEST_LINK_KIND (e.g. `veth`),
 * swaps only that word for kernels without WireGuard (the test machines).
 */
import { execFile } from 'child_process';
import { HeptoError } from '../../shared/errors';

export interface LinkState {
  exists: boolean;
  mtu: number | null;
  up: boolean;
  /** Addresses as `ip/prefix`. */
  addresses: string[];
}

export interface DesiredLink {
  node: string;
  /** The wesher container whose namespace holds the link. */
  container: string;
  ifname: string;
  /** `ip/prefix` as wesher assigns it. */
  address: string;
  mtu: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Exec = (cmd: string, args: string[]) => Promise<ExecResult>;

export const ABSENT: LinkState = Object.freeze({ exists: false, mtu: null, up: false, addresses: [] }) as LinkState;

/** The kind of link created: wireguard, unless a test machine swaps it (see the header). */
export function linkKind(env: NodeJS.ProcessEnv = process.env): string {
  const k = env.HEPTO_TEST_LINK_KIND;
  return k && /^[a-z0-9_-]{1,16}$/.test(k) ? k : 'wireguard';
}

export function realExec(cmd: string, args: string[]): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5_000, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ code, stdout: String(stdout ?? ''), stderr: String(stderr ?? '') || (err && code === 127 ? err.message : '') });
    });
  });
}

/** Whether the link is as wanted: present, up, at the MTU, carrying the address. */
export function linkReady(have: LinkState | null | undefined, want: DesiredLink): boolean {
  return !!have && have.exists && have.up && have.mtu === want.mtu && have.addresses.includes(want.address);
}

/** Parses `ip -j addr show dev X`. Exported for tests. */
export function parseIpJson(stdout: string): LinkState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`unreadable output of ip -j addr: ${stdout.slice(0, 200)}`);
  }
  const link = Array.isArray(parsed) ? (parsed[0] as Record<string, unknown> | undefined) : undefined;
  if (!link) return ABSENT;
  const flags = Array.isArray(link.flags) ? (link.flags as unknown[]) : [];
  const addrs = Array.isArray(link.addr_info) ? (link.addr_info as Array<Record<string, unknown>>) : [];
  return {
    exists: true,
    mtu: typeof link.mtu === 'number' ? link.mtu : null,
    up: flags.includes('UP'),
    addresses: addrs.filter((a) => typeof a.local === 'string' && a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`),
  };
}

export class OverlayLinks {
  constructor(
    private readonly exec: Exec = realExec,
    private readonly kind: string = linkKind(),
  ) {}

  private ip(pid: number, args: string[]): Promise<ExecResult> {
    return this.exec('nsenter', [`--target=${pid}`, '--net', '--', 'ip', ...args]);
  }

  /** The link as it is in the namespace of process `pid`. */
  async inspect(pid: number, ifname: string): Promise<LinkState> {
    const r = await this.ip(pid, ['-j', 'addr', 'show', 'dev', ifname]);
    if (r.code !== 0) {
      if (/does not exist|cannot find device/i.test(r.stderr)) return ABSENT;
      throw new HeptoError('LINK_FAILED', `cannot read ${ifname} in the network namespace of process ${pid}: ${r.stderr.trim() || `exit ${r.code}`}`, {
        hint: 'the agent needs nsenter (util-linux) and ip (iproute2), and root',
      });
    }
    return parseIpJson(r.stdout);
  }

  /** Makes the link as wanted; returns what was done, one word each. */
  async ensure(pid: number, want: DesiredLink, have: LinkState): Promise<string[]> {
    const done: string[] = [];
    const step = async (what: string, args: string[]): Promise<void> => {
      const r = await this.ip(pid, args);
      // Another actor (wesher itself) may have created it a moment ago.
      if (r.code !== 0 && !(what === 'created' && /exists/i.test(r.stderr))) {
        throw new HeptoError(
          'LINK_FAILED',
          `cannot set up ${want.ifname} in ${want.container}'s network namespace (ip ${args.join(' ')}): ${r.stderr.trim() || `exit ${r.code}`}`,
          {
            hint:
              this.kind === 'wireguard'
                ? 'the kernel needs WireGuard: modprobe wireguard (Linux >= 5.6 has it built in)'
                : `link kind ${this.kind} comes from HEPTO_TEST_LINK_KIND`,
          },
        );
      }
      done.push(what);
    };
    if (!have.exists) await step('created', ['link', 'add', want.ifname, 'type', this.kind]);
    if (have.mtu !== want.mtu || !have.up || !have.exists) await step(`mtu ${want.mtu} up`, ['link', 'set', 'dev', want.ifname, 'mtu', String(want.mtu), 'up']);
    if (!have.addresses.includes(want.address)) await step(`address ${want.address}`, ['addr', 'replace', want.address, 'dev', want.ifname]);
    return done;
  }
}
