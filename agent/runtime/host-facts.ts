/**
 * Facts about the host the runtime needs and Podman does not report:
 * the default route's interface (for macvlan/ipvlan without `iface`) and the
 * netavark version next to Podman (Podman 4.3 does not report it; ipvlan
 * needs >= 1.5). Each read is injectable for tests.
 */
import { execFile } from 'child_process';
import fs from 'fs';

/** Interface of the IPv4 default route (else the IPv6 one), from /proc. */
export function defaultRouteIface(read: (p: string) => string = (p) => fs.readFileSync(p, 'utf8')): string | null {
  try {
    for (const line of read('/proc/net/route').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 7 && f[1] === '00000000' && f[7] === '00000000') return f[0];
    }
  } catch {
    // no IPv4 routing table
  }
  try {
    for (const line of read('/proc/net/ipv6_route').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 10 && /^0{32}$/.test(f[0]) && f[1] === '00' && f[9] !== 'lo') return f[9];
    }
  } catch {
    // no IPv6 routing table
  }
  return null;
}

export const NETAVARK_PATHS = [
  '/usr/libexec/podman/netavark',
  '/usr/lib/podman/netavark',
  '/usr/local/libexec/podman/netavark',
  '/usr/local/lib/podman/netavark',
];

/** Runs `netavark --version` from Podman's helper directories; null when none answers. */
export function probeNetavarkVersion(paths: string[] = NETAVARK_PATHS): Promise<string | null> {
  const tryOne = (i: number): Promise<string | null> =>
    i >= paths.length
      ? Promise.resolve(null)
      : new Promise((resolve) => {
          execFile(paths[i], ['--version'], { timeout: 5_000 }, (err, stdout) => {
            const m = /(\d+\.\d+\.\d+)/.exec(String(stdout ?? ''));
            if (!err && m) resolve(m[1]);
            else resolve(tryOne(i + 1));
          });
        });
  return tryOne(0);
}
