/**
 * The machine as `hepto-agent doctor` sees it: files, sockets, interfaces
 * (/sys/class/net, /proc/net routes), TCP. Kept thin; the judging is in checks.ts.
 */
import { existsSync, promises as fs, readdirSync, readFileSync, statSync } from 'fs';
import * as http from 'http';
import * as net from 'net';
import { networkInterfaces } from 'os';
import { requestStatus } from '../control/client';
import type { DoctorProbes, HostAddress } from './checks';

function withTimeout<T>(ms: number, what: string, start: (done: (err?: Error, v?: T) => void) => () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let cancel: () => void = () => undefined;
    const timer = setTimeout(() => {
      cancel();
      reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: 'ETIMEDOUT' }));
    }, ms);
    cancel = start((err, v) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(v as T);
    });
  });
}

/** Interface of the default route: IPv6 first (hepto's normal case), then IPv4. */
export function defaultRouteIface(ipv6Route: string, ipv4Route: string): string | undefined {
  for (const line of ipv6Route.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 10 && /^0{32}$/.test(f[0]) && f[1] === '00' && f[9] !== 'lo') return f[9];
  }
  for (const line of ipv4Route.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[1] === '00000000' && f[7] === '00000000') return f[0];
  }
  return undefined;
}

export function realProbes(): DoctorProbes {
  return {
    async stat(path) {
      const s = await fs.stat(path);
      return { mode: s.mode, uid: s.uid };
    },
    podmanPing(socketPath, timeoutMs) {
      return withTimeout<void>(timeoutMs, 'podman', (done) => {
        const req = http.get({ socketPath, path: '/_ping' }, (res) => {
          res.resume();
          if (res.statusCode === 200) done();
          else done(new Error(`GET /_ping answered HTTP ${res.statusCode}`));
        });
        req.on('error', (e) => done(e));
        return () => req.destroy();
      });
    },
    addresses() {
      const out: HostAddress[] = [];
      for (const [iface, list] of Object.entries(networkInterfaces())) {
        for (const a of list ?? []) out.push({ iface, address: a.address });
      }
      return out;
    },
    interfaces() {
      try {
        return readdirSync('/sys/class/net').sort();
      } catch {
        return Object.keys(networkInterfaces()).sort();
      }
    },
    async mtu(iface) {
      if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface)) return undefined;
      try {
        const n = Number((await fs.readFile(`/sys/class/net/${iface}/mtu`, 'utf8')).trim());
        return Number.isInteger(n) && n > 0 ? n : undefined;
      } catch {
        return undefined;
      }
    },
    async defaultIface() {
      const read = (f: string): Promise<string> => fs.readFile(f, 'utf8').catch(() => '');
      return defaultRouteIface(await read('/proc/net/ipv6_route'), await read('/proc/net/route'));
    },
    tcpConnect(host, port, timeoutMs) {
      return withTimeout<void>(timeoutMs, `${host}:${port}`, (done) => {
        const sock = net.connect({ host, port });
        sock.once('connect', () => {
          sock.destroy();
          done();
        });
        sock.once('error', (e) => done(e));
        return () => sock.destroy();
      });
    },
    bind(host, port) {
      return new Promise<void>((resolve, reject) => {
        const srv = net.createServer();
        srv.once('error', reject);
        srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve()));
      });
    },
    async agentRunning(controlSocket) {
      try {
        await requestStatus(controlSocket, 2000);
        return true;
      } catch {
        return false;
      }
    },
    hasCommand(name) {
      return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => d && existsSync(`${d}/${name}`));
    },
    wireguard() {
      // Loaded or built in (/sys/module), or a module modprobe can load.
      if (existsSync('/sys/module/wireguard')) return true;
      try {
        const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
        return readFileSync(`/lib/modules/${release}/modules.dep`, 'utf8').includes('/wireguard.ko');
      } catch {
        return false;
      }
    },
    now: () => Date.now(),
    buildTime() {
      // In a release tarball every file carries the last commit's time.
      try {
        return statSync(__filename).mtimeMs;
      } catch {
        return 0;
      }
    },
  };
}
