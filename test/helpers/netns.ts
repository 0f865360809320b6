/**
 * Multi-host test topology: N hosts, each a network namespace with one veth
 * (eth0) plugged into a Linux bridge that lives in a namespace of its own, so
 * nothing is ever added to the root namespace. Each host gets
 * 2001:db8:<run>::<i>/64 (no DAD, usable at once) and 192.0.2.<i>/24.
 *
 * Faults are iptables/ip6tables rules INSIDE the host namespaces (tc netem is
 * not available here). Deleting a namespace removes its links and its rules,
 * so destroy() is: kill what runs inside, delete the namespaces. A sync
 * process-exit hook and cleanupStaleNetns() (namespaces of runs whose pid is
 * gone) catch what an interrupted run left behind.
 *
 * With `services`, the bridge namespace is a host too: br0 holds
 * 2001:db8:<run>::fe/64 and 192.0.2.254/24, so a server started in that
 * namespace (nsenter --net=/run/netns/<bridgeNs>) is reachable from every
 * host, and still nothing is added to the root namespace.
 *
 * Needs root, iproute2 and iptables.
 */
import { execFileSync } from 'child_process';

export const NS_PREFIX = 'hepto-';
export const GOSSIP_PORT = 7947;

export interface NetnsHost {
  /** 1-based. */
  index: number;
  ns: string;
  v6: string;
  v4: string;
  /** `[v6]:7947`, the form an anchor takes in a config. */
  gossip: string;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}`);
  }
}

function tryRun(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    /* best effort: used only while tearing down */
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listNamespaces(): string[] {
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter(Boolean);
}

/** SIGKILLs every process inside a namespace, then deletes it (links and rules go with it). */
function deleteNamespace(ns: string): void {
  let pids: string[] = [];
  try {
    pids = run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean);
  } catch {
    /* namespace already gone */
  }
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* already exited */
    }
  }
  tryRun('ip', ['netns', 'del', ns]);
}

/** Removes `hepto-<pid>-*` namespaces left by runs whose process is gone. Returns what it removed. */
export function cleanupStaleNetns(): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = /^hepto-(\d+)-/.exec(ns);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    deleteNamespace(ns);
    removed.push(ns);
  }
  return removed;
}

/** Fails with what to install when a tool the topology needs is missing. */
export function requireTools(tools: string[] = ['ip', 'iptables', 'ip6tables']): void {
  const missing = tools.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) throw new Error(`multi-host tests need ${missing.join(', ')} (apt-get install iproute2 iptables)`);
  if (process.getuid?.() !== 0) throw new Error('multi-host tests need root (network namespaces, iptables)');
}

/** A routed topology (NetnsTopology.createRouted): each host on its own link to one router namespace. */
export interface RoutedOptions {
  /** MTU of the link between the router and a host, by host index (1-based); others keep 1500. */
  linkMtu?: Record<number, number>;
}

export interface TopologyOptions {
  /** Addresses on the bridge itself, for servers run in the bridge namespace (see the file comment). */
  services?: boolean;
}

/** The bridge namespace as a host for servers: its addresses on br0. */
export interface ServicesHost {
  ns: string;
  v6: string;
  v4: string;
}

export class NetnsTopology {
  readonly hosts: NetnsHost[] = [];
  readonly bridgeNs: string;
  readonly subnet: string;
  /** Set when created with `services`. */
  services: ServicesHost | null = null;
  private destroyed = false;
  /** Set by createRouted: the router namespace (bridgeNs) forwards between the hosts' links. */
  routed = false;
  private readonly onExit = (): void => this.destroy();

  private constructor(readonly tag: string) {
    this.bridgeNs = `${NS_PREFIX}${tag}-br`;
    const pidHex = ((process.pid % 0xfffe) + 1).toString(16);
    this.subnet = `2001:db8:${pidHex}`;
  }

  /** Builds n hosts on one bridge. On any failure, removes what it had made and rethrows. */
  static create(n: number, opts: TopologyOptions = {}): NetnsTopology {
    requireTools();
    cleanupStaleNetns();
    const topo = new NetnsTopology(`${process.pid}-${Date.now().toString(36).slice(-4)}`);
    process.once('exit', topo.onExit);
    try {
      topo.build(n);
      if (opts.services) topo.addServices();
    } catch (e) {
      topo.destroy();
      throw e;
    }
    return topo;
  }

  /**
   * Builds n hosts, each on its own veth link to one router namespace (the
   * bridgeNs, named as usual so destroy() finds it): host i is
   * <subnet>:<i>::2/64 and 192.0.2.<16(i-1)+2>/28, the router ::1 and .1 on
   * that link, the hosts' default routes go through it. A link given a
   * smaller MTU (linkMtu) has it on both ends, so the router sends "packet
   * too big" (ICMPv6 type 2, ICMP type 3 code 4) for what does not fit,
   * unless dropTooBig() makes it a PMTU black hole. At most 15 hosts.
   */
  static createRouted(n: number, opts: RoutedOptions = {}): NetnsTopology {
    requireTools();
    cleanupStaleNetns();
    if (n > 15) throw new Error('a routed topology has at most 15 hosts');
    const topo = new NetnsTopology(`${process.pid}-${Date.now().toString(36).slice(-4)}`);
    topo.routed = true;
    process.once('exit', topo.onExit);
    try {
      topo.buildRouted(n, opts.linkMtu ?? {});
    } catch (e) {
      topo.destroy();
      throw e;
    }
    return topo;
  }

  private buildRouted(n: number, linkMtu: Record<number, number>): void {
    const r = this.bridgeNs;
    const noDad = ['net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0'];
    run('ip', ['netns', 'add', r]);
    run('ip', ['netns', 'exec', r, 'sysctl', '-q', '-w', ...noDad, 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.ip_forward=1']);
    run('ip', ['-n', r, 'link', 'set', 'lo', 'up']);
    for (let i = 1; i <= n; i++) {
      const ns = `${NS_PREFIX}${this.tag}-${i}`;
      const net6 = `${this.subnet}:${i}`;
      const base4 = 16 * (i - 1);
      run('ip', ['netns', 'add', ns]);
      run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...noDad]);
      this.hosts.push({ index: i, ns, v6: `${net6}::2`, v4: `192.0.2.${base4 + 2}`, gossip: `[${net6}::2]:${GOSSIP_PORT}` });
      run('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `h${i}`, 'netns', r]);
      const mtu = linkMtu[i];
      if (mtu !== undefined) {
        run('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', String(mtu)]);
        run('ip', ['-n', r, 'link', 'set', `h${i}`, 'mtu', String(mtu)]);
      }
      run('ip', ['-n', r, 'addr', 'add', `${net6}::1/64`, 'dev', `h${i}`, 'nodad']);
      run('ip', ['-n', r, 'addr', 'add', `192.0.2.${base4 + 1}/28`, 'dev', `h${i}`]);
      run('ip', ['-n', r, 'link', 'set', `h${i}`, 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${net6}::2/64`, 'dev', 'eth0', 'nodad']);
      run('ip', ['-n', ns, 'addr', 'add', `192.0.2.${base4 + 2}/28`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      run('ip', ['-n', ns, '-6', 'route', 'add', 'default', 'via', `${net6}::1`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', `192.0.2.${base4 + 1}`, 'dev', 'eth0']);
    }
  }

  /** Routed topology: the router drops the "packet too big" / "fragmentation needed" it would send (a PMTU black hole). */
  dropTooBig(): void {
    if (!this.routed) throw new Error('dropTooBig() needs a topology made by createRouted()');
    run('ip', ['netns', 'exec', this.bridgeNs, 'ip6tables', '-A', 'OUTPUT', '-p', 'ipv6-icmp', '--icmpv6-type', 'packet-too-big', '-j', 'DROP']);
    run('ip', ['netns', 'exec', this.bridgeNs, 'iptables', '-A', 'OUTPUT', '-p', 'icmp', '--icmp-type', 'fragmentation-needed', '-j', 'DROP']);
  }

  /** Routed topology: packets the router's OUTPUT DROP rules dropped so far (both families). */
  routerDropped(): number {
    let total = 0;
    for (const tool of ['ip6tables', 'iptables']) {
      for (const line of run('ip', ['netns', 'exec', this.bridgeNs, tool, '-L', 'OUTPUT', '-n', '-v', '-x']).split('\n')) {
        const cols = line.trim().split(/\s+/);
        if (cols[2] === 'DROP') total += Number(cols[0]);
      }
    }
    return total;
  }

  private build(n: number): void {
    const br = this.bridgeNs;
    run('ip', ['netns', 'add', br]);
    run('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
    for (let i = 1; i <= n; i++) {
      const ns = `${NS_PREFIX}${this.tag}-${i}`;
      run('ip', ['netns', 'add', ns]);
      // No duplicate address detection at all (link-local included): addresses are usable the moment they are set.
      run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
      this.hosts.push({ index: i, ns, v6: `${this.subnet}::${i}`, v4: `192.0.2.${i}`, gossip: `[${this.subnet}::${i}]:${GOSSIP_PORT}` });
      // Both ends are created straight inside their namespaces: no link ever appears in the root namespace.
      run('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `h${i}`, 'netns', br]);
      run('ip', ['-n', br, 'link', 'set', `h${i}`, 'master', 'br0', 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${this.subnet}::${i}/64`, 'dev', 'eth0', 'nodad']);
      run('ip', ['-n', ns, 'addr', 'add', `192.0.2.${i}/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
  }

  private addServices(): void {
    const br = this.bridgeNs;
    const v6 = `${this.subnet}::fe`;
    const v4 = '192.0.2.254';
    run('ip', [
      'netns',
      'exec',
      br,
      'sysctl',
      '-q',
      '-w',
      'net.ipv6.conf.default.accept_dad=0',
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.br0.accept_dad=0',
    ]);
    run('ip', ['-n', br, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', br, 'addr', 'add', `${v6}/64`, 'dev', 'br0', 'nodad']);
    run('ip', ['-n', br, 'addr', 'add', `${v4}/24`, 'dev', 'br0']);
    this.services = { ns: br, v6, v4 };
  }

  /** Runs a command inside a host's namespace; throws with its stderr on failure. */
  exec(host: NetnsHost, cmd: string, args: string[]): string {
    return run('ip', ['netns', 'exec', host.ns, cmd, ...args]);
  }

  private both(host: NetnsHost, rule: string[]): void {
    this.exec(host, 'ip6tables', rule);
    this.exec(host, 'iptables', rule);
  }

  /** Every packet between the two groups is dropped, both ways (rules on each host's INPUT). */
  partition(a: NetnsHost[], b: NetnsHost[]): void {
    const drop = (on: NetnsHost, from: NetnsHost[]): void => {
      for (const f of from) {
        this.exec(on, 'ip6tables', ['-A', 'INPUT', '-s', f.v6, '-j', 'DROP']);
        this.exec(on, 'iptables', ['-A', 'INPUT', '-s', f.v4, '-j', 'DROP']);
      }
    };
    for (const h of a) drop(h, b);
    for (const h of b) drop(h, a);
  }

  /** Each host drops this fraction of the packets it receives on eth0 (both families). */
  randomLoss(hosts: NetnsHost[], probability: number): void {
    for (const h of hosts)
      this.both(h, ['-A', 'INPUT', '-i', 'eth0', '-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP']);
  }

  /**
   * The host looks powered off from the internet: every TCP packet to it
   * vanishes (no RST, no ICMP), so a dial can only time out.
   */
  blackhole(host: NetnsHost): void {
    this.both(host, ['-A', 'INPUT', '-i', 'eth0', '-p', 'tcp', '-j', 'DROP']);
  }

  /** Removes every fault rule on every host (the namespaces and links stay). */
  clearRules(): void {
    for (const h of this.hosts) this.both(h, ['-F', 'INPUT']);
  }

  /** Rules currently in a host's INPUT chain, for assertions and diagnostics. */
  rules(host: NetnsHost): string[] {
    return [...this.exec(host, 'ip6tables', ['-S', 'INPUT']).split('\n'), ...this.exec(host, 'iptables', ['-S', 'INPUT']).split('\n')].filter(
      (l) => l && !l.startsWith('-P '),
    );
  }

  /** Packets dropped so far by the DROP rules in a host's INPUT chain (both families): proof a fault bit. */
  dropped(host: NetnsHost): number {
    let total = 0;
    for (const tool of ['ip6tables', 'iptables']) {
      for (const line of this.exec(host, tool, ['-L', 'INPUT', '-n', '-v', '-x']).split('\n')) {
        const cols = line.trim().split(/\s+/);
        if (cols[2] === 'DROP') total += Number(cols[0]);
      }
    }
    return total;
  }

  /** Kills whatever still runs in the namespaces and deletes them all. Idempotent, never throws. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    for (const h of this.hosts) deleteNamespace(h.ns);
    // A host whose creation failed half way is not in `hosts` yet.
    for (const ns of listNamespaces()) if (ns.startsWith(`${NS_PREFIX}${this.tag}-`)) deleteNamespace(ns);
  }

  /** Namespaces of this topology that still exist (empty after destroy()). */
  leftovers(): string[] {
    return listNamespaces().filter((ns) => ns.startsWith(`${NS_PREFIX}${this.tag}-`));
  }
}
