/**
 * The reconcile planner: a pure function from what should run (desired),
 * what Podman reports (observed), what happened before (history) and the
 * time, to a list of actions. The supervisor's loop performs them in order
 * and records their outcome in the history. No I/O here.
 */
import { backoffDelay, type BackoffPolicy } from './backoff';
import type { DesiredContainer, DesiredNetwork, DesiredState } from './desired';
import type { ContainerSpec, Role } from './specs';

export interface ObservedContainer {
  id: string;
  name: string;
  /** io.hepto.node label; null when the container is not ours. */
  node: string | null;
  role: Role | null;
  /** Podman state: running, exited, created, stopped, paused, ... */
  state: string;
  hash: string | null;
  /** io.hepto.join label (wesher). */
  join: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  exitCode: number | null;
}

export interface Observed {
  containers: ObservedContainer[];
  networks: string[];
  /** Image references present locally. */
  images: string[];
}

export interface ContainerHistory {
  /** Restarts done by the agent (starts after a death). */
  restarts: number;
  /** Consecutive quick deaths (and failed starts). */
  failures: number;
  /** Identity of the last death handled: `<id>@<finishedAt>`. */
  lastDeath: string | null;
  /** No start before this time (backoff). */
  nextStartAt: number;
  lastExitCode: number | null;
  lastError: string | null;
  lastLog: string[];
}

export interface ImageHistory {
  failures: number;
  nextPullAt: number;
  lastError: string | null;
}

export interface History {
  containers: Record<string, ContainerHistory>;
  images: Record<string, ImageHistory>;
}

/** What a handled death changes in a container's history. */
export interface DeathNote {
  key: string;
  failures: number;
  exitCode: number | null;
  nextStartAt: number;
}

export type Action =
  | { type: 'create-network'; network: DesiredNetwork }
  | { type: 'pull'; image: string }
  | { type: 'create'; name: string; spec: ContainerSpec }
  | { type: 'start'; name: string; id: string; death: DeathNote | null }
  | { type: 'recreate'; name: string; id: string; spec: ContainerSpec; reason: string; death: DeathNote | null }
  | { type: 'remove'; name: string; id: string; reason: string }
  | { type: 'restart'; name: string; id: string; reason: string }
  | { type: 'backoff'; name: string; id: string; until: number; death: DeathNote | null; fetchLog: boolean };

export interface PlanOptions {
  policy: BackoffPolicy;
  /** Uniform in [0, 1), for jitter. */
  random: () => number;
}

export function emptyHistory(): History {
  return { containers: {}, images: {} };
}

export function containerHistory(h: History, name: string): ContainerHistory {
  return h.containers[name] ?? { restarts: 0, failures: 0, lastDeath: null, nextStartAt: 0, lastExitCode: null, lastError: null, lastLog: [] };
}

const RUNNING = new Set(['running', 'paused', 'restarting', 'stopping']);

export function isRunning(o: ObservedContainer | undefined): boolean {
  return !!o && RUNNING.has(o.state);
}

type Decision =
  | { kind: 'none' }
  | { kind: 'create' }
  | { kind: 'recreate'; reason: string; death: DeathNote | null }
  | { kind: 'start'; death: DeathNote | null }
  | { kind: 'backoff'; until: number; death: DeathNote | null; fetchLog: boolean };

function decide(d: DesiredContainer, o: ObservedContainer | undefined, h: History, now: number, opts: PlanOptions): Decision {
  if (!d.spec) return { kind: 'none' }; // waiting: never start, never remove what runs
  if (!o) return { kind: 'create' };
  if (o.hash !== d.spec.hash) return { kind: 'recreate', reason: 'spec changed', death: null };
  if (isRunning(o)) return { kind: 'none' };
  // A process that just ended can be reported exited a moment before Podman records its finish
  // time and exit code: counting that as a death (code 0), and the settled one as a second, made
  // the backoff and the status wrong. Its 'died' event, or the next periodic pass, comes back here.
  if (o.startedAt !== null && o.finishedAt === null) return { kind: 'none' };

  const hist = containerHistory(h, d.name);
  const key = `${o.id}@${o.finishedAt ?? 'never'}`;
  let death: DeathNote | null = null;
  let nextStartAt = hist.nextStartAt;
  if (hist.lastDeath !== key) {
    const uptime = o.startedAt !== null && o.finishedAt !== null ? o.finishedAt - o.startedAt : 0;
    const failures = uptime >= opts.policy.resetAfterMs ? 1 : hist.failures + 1;
    nextStartAt = now + backoffDelay(failures, opts.policy, opts.random());
    death = { key, failures, exitCode: o.exitCode, nextStartAt };
  }
  if (now < nextStartAt) return { kind: 'backoff', until: nextStartAt, death, fetchLog: death !== null && death.failures >= 2 };
  // wesher bakes its join list in; when it has to start anyway, give it the current one.
  const desiredJoin = d.spec.join.join(',');
  if (d.role === 'wesher' && (o.join ?? '') !== desiredJoin) return { kind: 'recreate', reason: 'join list refreshed on restart', death };
  return { kind: 'start', death };
}

function imageReady(image: string, observed: Observed, h: History, now: number, actions: Action[], pulled: Set<string>): boolean {
  if (observed.images.includes(image) || pulled.has(image)) return true;
  const ih = h.images[image];
  if (ih && now < ih.nextPullAt) return false;
  actions.push({ type: 'pull', image });
  pulled.add(image);
  return true;
}

export function planReconcile(desired: DesiredState, observed: Observed, history: History, now: number, opts: PlanOptions): Action[] {
  const actions: Action[] = [];
  const byName = new Map(observed.containers.map((c) => [c.name, c]));
  const pulled = new Set<string>();

  for (const n of desired.networks) {
    if (!observed.networks.includes(n.name)) actions.push({ type: 'create-network', network: n });
  }

  const nodes = [...new Set(desired.containers.map((c) => c.node))];
  for (const node of nodes) {
    const w = desired.containers.find((c) => c.node === node && c.role === 'wesher')!;
    const k = desired.containers.find((c) => c.node === node && c.role === 'k3s')!;
    const ow = byName.get(w.name);
    const ok = byName.get(k.name);
    // A container with our name that hepto did not create is left alone (status says so).
    const foreign = (o: ObservedContainer | undefined): boolean => !!o && o.node === null;
    if (foreign(ow)) continue;

    const wd = decide(w, ow, history, now, opts);
    let wesherUp = isRunning(ow);
    let k3sGone = false;
    if (wd.kind === 'create' || wd.kind === 'recreate') {
      if (!imageReady(w.spec!.image, observed, history, now, actions, pulled)) {
        wesherUp = false;
      } else {
        // k3s lives in wesher's network namespace: it goes first and comes back after.
        if (wd.kind === 'recreate' && ok && !foreign(ok)) {
          actions.push({ type: 'remove', name: k.name, id: ok.id, reason: `its network namespace owner ${w.name} is recreated` });
          k3sGone = true;
        }
        actions.push(
          wd.kind === 'create'
            ? { type: 'create', name: w.name, spec: w.spec! }
            : { type: 'recreate', name: w.name, id: ow!.id, spec: w.spec!, reason: wd.reason, death: wd.death },
        );
        wesherUp = true;
      }
    } else if (wd.kind === 'start') {
      actions.push({ type: 'start', name: w.name, id: ow!.id, death: wd.death });
      wesherUp = true;
      // Outside the host network, a restarted wesher has a new namespace; a
      // running k3s is still in the old one and must follow.
      if (w.spec!.create.HostConfig?.NetworkMode !== 'host' && ok && !foreign(ok) && isRunning(ok) && k.spec && ok.hash === k.spec.hash) {
        actions.push({ type: 'restart', name: k.name, id: ok.id, reason: `${w.name} restarted with a new network namespace` });
        continue;
      }
    } else if (wd.kind === 'backoff') {
      actions.push({ type: 'backoff', name: w.name, id: ow!.id, until: wd.until, death: wd.death, fetchLog: wd.fetchLog });
    }

    if (foreign(ok)) continue;
    const okEff = k3sGone ? undefined : ok;
    const kd = decide(k, okEff, history, now, opts);
    if (kd.kind === 'none') continue;
    if (kd.kind === 'backoff') {
      actions.push({ type: 'backoff', name: k.name, id: okEff!.id, until: kd.until, death: kd.death, fetchLog: kd.fetchLog });
      continue;
    }
    if (!wesherUp) continue; // k3s needs wesher's namespace; it comes once wesher runs
    if (kd.kind === 'create' || kd.kind === 'recreate') {
      if (!imageReady(k.spec!.image, observed, history, now, actions, pulled)) continue;
      actions.push(
        kd.kind === 'create' ? { type: 'create', name: k.name, spec: k.spec! } : { type: 'recreate', name: k.name, id: okEff!.id, spec: k.spec!, reason: kd.reason, death: kd.death },
      );
    } else {
      actions.push({ type: 'start', name: k.name, id: okEff!.id, death: kd.death });
    }
  }

  // Containers hepto made for nodes this machine no longer hosts; k3s before
  // wesher (it depends on wesher's namespace).
  const wanted = new Set(desired.containers.map((c) => c.name));
  const stale = observed.containers.filter((o) => o.node !== null && !wanted.has(o.name));
  stale.sort((a, b) => (a.role === 'k3s' ? 0 : 1) - (b.role === 'k3s' ? 0 : 1));
  for (const o of stale) actions.push({ type: 'remove', name: o.name, id: o.id, reason: `node ${o.node} is no longer configured on this machine` });
  return actions;
}
