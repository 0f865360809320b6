/**
 * The real probe around iputils' ping (Debian's iputils-ping): Node cannot
 * set the don't-fragment bit on its own sockets, ping can (`-M do`). Run
 * with execFile (no shell) and a timeout. What iputils 20221126 prints,
 * measured here:
 * - got through: exit 0, "1240 bytes from ADDR: icmp_seq=1 ...";
 * - a router's answer: exit 1, "From R icmp_seq=1 Packet too big: mtu=1280"
 *   (IPv6) or "From R icmp_seq=1 Frag needed and DF set (mtu = 1280)" (IPv4);
 * - the kernel already knows the path MTU: exit 1, on stderr
 *   "ping: local error: message too long, mtu: 1280" (or "mtu=1280");
 * - nothing came back: exit 1, "1 packets transmitted, 0 received".
 */
import { execFile } from 'child_process';
import { readFile } from 'fs/promises';
import { isIP } from 'net';
import { DEFAULT_MAX, PING_HEADERS, searchPathMtu, type Family, type ProbeOutcome, type SearchResult } from './search';

/** How long one probe waits for its answer, in seconds. */
export const PING_WAIT_S = 1;

export interface PingOptions {
  /** The ping executable (default: `ping` on PATH). */
  bin?: string;
  waitS?: number;
}

/** Reads what one `ping -c 1` printed. Exported for tests. */
export function parsePing(exitCode: number, stdout: string, stderr: string): ProbeOutcome {
  const text = `${stdout}\n${stderr}`;
  const m = /(?:Packet too big: mtu\s*=\s*|Frag needed and DF set \(mtu\s*=\s*|message too long, mtu[:=]\s*)(\d+)/i.exec(text);
  if (m) return { tooBig: Number(m[1]) };
  if (exitCode === 0 && /bytes from/.test(stdout)) return 'ok';
  return 'lost';
}

/** One don't-fragment ping of `size` bytes (IP header included) to `address`. */
export function pingProbe(address: string, size: number, opts: PingOptions = {}): Promise<ProbeOutcome> {
  const family = isIP(address) as Family;
  if (family !== 4 && family !== 6) return Promise.reject(new Error(`not an IP address: ${address}`));
  const waitS = opts.waitS ?? PING_WAIT_S;
  const args = ['-n', `-${family}`, '-M', 'do', '-s', String(size - PING_HEADERS[family]), '-c', '1', '-W', String(waitS), address];
  return new Promise((resolve, reject) => {
    execFile(opts.bin ?? 'ping', args, { timeout: waitS * 1000 + 3000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error('ping not found: install iputils-ping'));
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve(parsePing(code, stdout, stderr));
    });
  });
}

/** The MTU of the interface the route to `address` leaves by (`ip route get`, then /sys/class/net); null when unknown. */
export function routeMtu(address: string): Promise<number | null> {
  return new Promise((resolve) => {
    execFile('ip', ['route', 'get', address], { timeout: 3000, encoding: 'utf8' }, (err, stdout) => {
      const dev = err ? null : /\bdev (\S+)/.exec(stdout)?.[1];
      if (!dev || dev.includes('/') || dev === 'lo') return resolve(null);
      readFile(`/sys/class/net/${dev}/mtu`, 'utf8').then(
        (t) => {
          const n = Number(t.trim());
          resolve(Number.isInteger(n) && n >= 68 ? n : null);
        },
        () => resolve(null),
      );
    });
  });
}

/** Measures the path MTU to `address` with real pings: the search starts at the local route's MTU. */
export async function measureWithPing(address: string, opts: PingOptions = {}): Promise<SearchResult> {
  const family = isIP(address) as Family;
  if (family !== 4 && family !== 6) throw new Error(`not an IP address: ${address}`);
  const max = (await routeMtu(address)) ?? DEFAULT_MAX;
  return searchPathMtu((size) => pingProbe(address, size, opts), { family, max });
}
