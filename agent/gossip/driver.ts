/**
 * The one driver of a Membership: every call into the state machine goes
 * through run() (or apply() for a Step already in hand), which hands the
 * Step's events, closes and sends to the effects, then re-arms a single timer
 * on the injected clock at Membership.nextTickAt. The daemon (GossipNode over
 * a Transport), the simulator (World over SimNetwork) and the gossip unit
 * tests (SimRouter) all drive their members with it, so all three tick alike.
 */
import type { Clock, TimerHandle } from '../../shared/clock';
import type { Membership, MemberEvent, Outgoing, Step } from './membership';

/** What a Step asks of the world around the member. */
export interface StepEffects {
  event(ev: MemberEvent): void;
  /** Step.close: close the connection with `name`, as trimmed (the active view is full). */
  close(name: string): void;
  send(out: Outgoing): void;
}

export interface DriverOptions {
  /**
   * A call that throws: the daemon logs it and carries on (a bug must not kill
   * the agent). Without it the error propagates, so a test or simulation fails.
   */
  onError?: (what: string, e: unknown) => void;
  /** Before each call into the state machine (the simulator counts them). */
  onCall?: () => void;
}

export class MembershipDriver {
  private timer: TimerHandle | null = null;
  private timerAt = Number.POSITIVE_INFINITY;
  private running = false;
  /** The timer fired and its tick waits for the I/O already there (Clock.defer): nothing to arm meanwhile. */
  private deferred = false;

  constructor(
    /** Replaceable: a restart keeps the driver's place in the world. */
    public membership: Membership,
    private readonly clock: Clock,
    private readonly effects: StepEffects,
    private readonly opts: DriverOptions = {},
  ) {}

  /** Arms the timer from now on; calls made before only perform their Steps. */
  start(): void {
    this.running = true;
    this.arm();
  }

  /** No more ticks. A call made after still performs its Step (a leave's last words). */
  stop(): void {
    this.running = false;
    this.disarm();
  }

  /** Calls the state machine with the clock's now, performs the Step, re-arms the timer. */
  run(what: string, call: (now: number) => Step): void {
    this.opts.onCall?.();
    let step: Step;
    try {
      step = call(this.clock.now());
    } catch (e) {
      if (!this.opts.onError) throw e;
      this.opts.onError(what, e);
      this.arm();
      return;
    }
    this.apply(step);
  }

  /** Performs a Step returned by a direct call on the member, then re-arms the timer. */
  apply(step: Step): void {
    for (const ev of step.events) this.effects.event(ev);
    for (const name of step.close ?? []) this.effects.close(name);
    for (const out of step.send) this.effects.send(out);
    this.arm();
  }

  /** Re-arms the timer at nextTickAt (the state machine may have changed outside a Step). */
  arm(): void {
    if (!this.running || this.deferred) return;
    const now = this.clock.now();
    const at = this.membership.nextTickAt(now);
    if (this.timer && at === this.timerAt) return; // the armed timer already fires then
    this.disarm();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.timerAt = Number.POSITIVE_INFINITY;
      // Acks already in a socket buffer are read before the tick judges the probes waiting on them:
      // in a join storm of 300 members on 2 cores, loop turns of seconds otherwise failed probes
      // whose answers had arrived, and the refutations of those false suspicions fed the storm.
      if (!this.clock.defer) return this.tick();
      this.deferred = true;
      this.clock.defer(() => {
        this.deferred = false;
        if (this.running) this.tick();
      });
    }, at - now);
  }

  private tick(): void {
    this.run('tick', (t) => this.membership.tick(t));
  }

  private disarm(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
  }
}
