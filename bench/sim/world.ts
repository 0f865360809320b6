/**
 * The simulated cluster: one real Membership per member, driven by the
 * daemon's own driver (agent/gossip/driver.ts): bootstrap, receive,
 * sendFailed, disconnected, and one timer re-armed after every call at
 * Membership.nextTickAt. Steps' messages go to the SimNetwork; steps' events
 * feed the Observer, which keeps who-sees-whom for the scenarios.
 */
import { Membership } from '../../agent/gossip/membership';
import { MembershipDriver } from '../../agent/gossip/driver';
import { NameIndex } from '../../agent/gossip/table';
import type { GossipTiming } from '../../agent/gossip/timing';
import type { PeerInfo } from '../../agent/net/transport';
import type { MemberRecord } from '../../shared/member';
import { simIdentity } from './crypto';
import { ManualClock } from '../../shared/clock';
import { LatencyModel, type LatencySpec } from './latency';
import { DrivenEndpoint, SimNetwork, type LossModel } from './network';
import { Observer } from './observer';
import { stream, type Rng } from './rng';

/** Virtual time starts here (like ManualClock): incarnations are wall-clock seconds in the agent. */
export const EPOCH = 1_700_000_000_000;

export interface WorldOptions {
  seed: number;
  timing: GossipTiming;
  latency: LatencySpec;
  /** Most members that will ever exist in this run (initial + joiners). */
  capacity: number;
  loss?: number;
  lossModel?: LossModel;
  wire?: 'decode' | 'shared';
  countBytes?: boolean;
}

export function nameOf(i: number): string {
  return `m${i}`;
}

export function addressOf(i: number): string {
  return `[2001:db8::${(i + 1).toString(16)}]:7947`;
}

function recordOf(i: number, idPub: string): MemberRecord {
  return {
    name: nameOf(i),
    role: i === 0 ? 'master' : 'node',
    addresses: [addressOf(i)],
    node_ips: [`2001:db8::${(i + 1).toString(16)}`],
    overlay_ip: null,
    facts: { cores: 4, memory_mb: 8192, os: 'Debian GNU/Linux 12 (bookworm)', agent_version: '0.1.0' },
    containers: { [nameOf(i)]: { wesher: 'running', k3s: 'running' } },
    id_pub: idPub,
    created_at: EPOCH,
  };
}

class Member extends DrivenEndpoint {
  readonly index: number;
  readonly peer: PeerInfo;
  readonly addresses: string[];
  readonly m: Membership;
  readonly driver: MembershipDriver;
  /** Called leave(): still flushing, but no longer a member. */
  left = false;

  constructor(world: World, index: number, m: Membership, idPub: string) {
    super();
    this.index = index;
    this.m = m;
    this.addresses = [addressOf(index)];
    this.peer = { name: nameOf(index), idPub, remote: `[2001:db8::${(index + 1).toString(16)}]:${40000 + (index % 20000)}` };
    this.driver = new MembershipDriver(
      m,
      world.q,
      {
        event: (ev) => world.obs.event(index, ev, world.now()),
        close: (name) => world.net.trim(index, name),
        send: (out) => world.net.send(index, out.to, out.msg),
      },
      { onCall: () => world.calls++ },
    );
  }
}

export class World {
  readonly q: ManualClock;
  readonly net: SimNetwork;
  readonly obs: Observer;
  readonly latency: LatencyModel;
  readonly timing: GossipTiming;
  readonly seed: number;
  private readonly members: (Member | undefined)[] = [];
  private readonly rngNet: Rng;
  /** Member calls (receive, tick, ...) made so far. */
  calls = 0;
  /**
   * One name index for every member: their member tables line up by id
   * (member i is id i) and none keeps a Map of 10,000 names of its own.
   */
  private readonly names = new NameIndex();

  constructor(opts: WorldOptions) {
    this.seed = opts.seed;
    this.timing = opts.timing;
    this.q = new ManualClock(EPOCH);
    this.latency = new LatencyModel(opts.latency, opts.capacity, stream(opts.seed, 'regions'));
    this.rngNet = stream(opts.seed, 'network');
    this.net = new SimNetwork({
      queue: this.q,
      latency: this.latency,
      rng: this.rngNet,
      loss: opts.loss,
      lossModel: opts.lossModel,
      wire: opts.wire,
      countBytes: opts.countBytes,
    });
    this.obs = new Observer(opts.capacity);
    for (let i = 0; i < opts.capacity; i++) this.names.idOf(nameOf(i));
  }

  now(): number {
    return this.q.now();
  }

  /** Virtual ms since the start of the run. */
  elapsed(): number {
    return this.q.now() - EPOCH;
  }

  get size(): number {
    return this.members.length;
  }

  /** Running and a member (not crashed, not stopped, not leaving). */
  isUp(i: number): boolean {
    const m = this.members[i];
    return !!m && !m.left && this.net.isUp(i);
  }

  membership(i: number): Membership | undefined {
    return this.members[i]?.m;
  }

  /** Starts member i (a fresh process) at the current virtual time, joining through `anchors` (indices). */
  start(i: number, anchors: number[]): void {
    const id = simIdentity(this.seed, i);
    const now = this.now();
    const m = new Membership({
      record: recordOf(i, id.idPub),
      secretKey: id.secretKey,
      incarnation: Math.floor(now / 1000),
      timing: this.timing,
      now,
      rng: stream(this.seed, `member:${i}:${now}`),
      names: this.names,
    });
    const member = new Member(this, i, m, id.idPub);
    this.members[i] = member;
    this.net.attach(member);
    this.obs.started(i);
    member.driver.start();
    member.driver.run('bootstrap', (t) => m.bootstrap(anchors.filter((a) => a !== i).map(addressOf), t));
  }

  /** Starts member i at virtual time `at`. */
  startAt(at: number, i: number, anchors: number[]): void {
    this.q.at(at, () => this.start(i, anchors));
  }

  /** SIGKILL. */
  kill(i: number): void {
    this.stopMember(i);
    this.net.kill(i);
  }

  /** Power cut: the process stops and nothing answers any more (no FIN). */
  powerOff(i: number): void {
    this.stopMember(i);
    this.net.silence(i);
  }

  /** SIGTERM: announce left, let it go out for `flushMs`, then stop. */
  leave(i: number, flushMs = 1500): void {
    const member = this.members[i];
    if (!member || member.left) return;
    member.left = true;
    member.driver.run('leave', (now) => member.m.leave(now));
    this.obs.stopped(i); // no longer a member: its view stops counting at once
    this.q.setTimeout(() => {
      if (this.members[i] === member) this.kill(i);
    }, flushMs);
  }

  private stopMember(i: number): void {
    const member = this.members[i];
    if (!member) return;
    member.driver.stop();
    this.members[i] = undefined;
    this.obs.stopped(i);
  }

  /** Runs until virtual `ms` from now, or until `stop()` holds (checked after each event). Returns true if stopped. */
  runFor(ms: number, stop?: () => boolean): boolean {
    return this.q.runUntil(this.now() + ms, stop);
  }
}
