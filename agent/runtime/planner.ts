/**
 * The reconcile planner: a pure function from what should run (desired),
 * what Podman and the overlay links report (observed), what happened before
 * (history) and the time, to a list of actions. The supervisor's loop
 * performs them in order and records their outcome in the history. No I/O.
 *
 * Order per node: wesher runs; then its overlay link is made as wanted
 * (overlay-link.ts); only then does k3s start, since flannel exits without an
 * address on its interface. A k3s started before wesher's latest start is
 * restarted once the link is back (flannel never recovers a lost interface).
 * A wesher that has not joined within `joinDeadlineMs` while there are
 * weshers to join is recreated with a fresh join list.
 */
import { backoffDelay, type BackoffPolicy } from './backoff';
import type { DesiredContainer, DesiredNetwork, DesiredState } from './desired';
import { linkReady, type DesiredLink, type LinkState } from './overlay-link';
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
  /** io.hepto.spec-hash-base label (spec-hash.ts BASE_HASH_LABEL); absent or null: none. */
  baseHash?: string | null;
  /** io.hepto.join label (wesher). */
  join: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  exitCode: number | null;
  /** Main process id while running (its network namespace holds the overlay link). */
  pid?: number | null;
}

export interface Observed {
  containers: ObservedContainer[];
  networks: string[];
  /** Image references present locally. */
  images: string[];
  /** Networks hepto created (io.hepto.managed-by label); absent: not listed. */
  managedNetworks?: string[];
  /** Overlay link per node, read in its running wesher's namespace; a missing key means not read. */
  links?: Record<string, LinkState>;
  /** When each node's wesher last wrote its state file (a membership event), ms; null: never. */
  wesherStateAt?: Record<string, number | null>;
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

export interface LinkHistory {
  failures: number;
  nextAt: number;
  lastError: string | null;
}

export interface History {
  containers: Record<string, ContainerHistory>;
  images: Record<string, ImageHistory>;
  /** Overlay link set-up failures, per node. */
  links?: Record<string, LinkHistory>;
}

/** What a handled death changes in a container's history. */
export interface DeathNote {
  key: string;
  failures: number;
  exitCode: number | null;
  nextStartAt: number;
}

/**
 * The container an action is about: its name, and the node and role it
 * serves, so that whoever performs the action never parses them back out of
 * the name (`hepto-<node>-<role>`).
 */
export interface ContainerRef {
  name: string;
  node: string;
  role: Role;
}

export type Action =
  | { type: 'create-network'; network: DesiredNetwork }
  | { type: 'pull'; image: string }
  | { type: 'build-wesher'; image: string; baseUrl: string; sha256: string | null }
  | ({ type: 'create'; spec: ContainerSpec } & ContainerRef)
  | ({ type: 'start'; id: string; death: DeathNote | null } & ContainerRef)
  | ({ type: 'recreate'; id: string; spec: ContainerSpec; reason: string; death: DeathNote | null } & ContainerRef)
  /** role is null for a stale container of ours whose role label is missing or unknown. */
  | { type: 'remove'; name: string; node: string; role: Role | null; id: string; reason: string }
  | { type: 'remove-network'; network: string; reason: string }
  | ({ type: 'restart'; id: string; reason: string } & ContainerRef)
  | ({ type: 'backoff'; id: string; until: number; death: DeathNote | null; fetchLog: boolean } & ContainerRef)
  | ({ type: 'ensure-link'; pid: number; link: DesiredLink; have: LinkState } & ContainerRef)
  /** Not an action on Podman: why a container does not start (or is about to be restarted) now. */
  | ({ type: 'wait'; reason: string } & ContainerRef);

export interface PlanOptions {
  policy: BackoffPolicy;
  /** Uniform in [0, 1), for jitter. */
  random: () => number;
  /** How long a wesher with weshers to join may go without a membership event before it is recreated. */
  joinDeadlineMs?: number;
}

/** wesher tries join addresses one by one, up to ~30 s each when packets are dropped (docs/upstream.md). */
export const JOIN_DEADLINE_MS = 120_000;

export function emptyHistory(): History {
  return { containers: {}, images: {}, links: {} };
}

export function containerHistory(h: History, name: string): ContainerHistory {
  return h.containers[name] ?? { restarts: 0, failures: 0, lastDeath: null, nextStartAt: 0, lastExitCode: null, lastError: null, lastLog: [] };
}

/**
 * Whether a container runs the wanted spec: the same hash, or the same base
 * hash (it differs at most in live files, which the supervisor rewrites in
 * place: specs.ts SecretFile.live).
 */
export function specMatches(o: Pick<ObservedContainer, 'hash' | 'baseHash'>, spec: Pick<ContainerSpec, 'hash' | 'baseHash'>): boolean {
  if (o.hash === spec.hash) return true;
  return spec.baseHash !== null && spec.baseHash !== undefined && o.baseHash === spec.baseHash;
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
  if (!specMatches(o, d.spec)) return { kind: 'recreate', reason: 'spec changed', death: null };
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

/** Whether the image is there, or fetched in this pass: pulled, or built for the default wesher image. */
function imageReady(image: string, desired: DesiredState, observed: Observed, h: History, now: number, actions: Action[], pulled: Set<string>): boolean {
  if (observed.images.includes(image) || pulled.has(image)) return true;
  const ih = h.images[image];
  if (ih && now < ih.nextPullAt) return false;
  const build = desired.builds?.[image];
  actions.push(build ? { type: 'build-wesher', image, baseUrl: build.baseUrl, sha256: build.sha256 } : { type: 'pull', image });
  pulled.add(image);
  return true;
}

/** How long a running wesher with weshers to join has gone without a membership event since it started (ms), or null when that does not apply or is not known. */
function notJoined(w: DesiredContainer, ow: ObservedContainer, observed: Observed, now: number): number | null {
  if (!w.spec || w.spec.join.length === 0 || ow.startedAt === null) return null;
  const stateAt = observed.wesherStateAt?.[w.node];
  if (stateAt === undefined) return null; // not read: no judgement
  if (stateAt !== null && stateAt >= ow.startedAt) return null;
  return now - ow.startedAt;
}

export function planReconcile(desired: DesiredState, observed: Observed, history: History, now: number, opts: PlanOptions): Action[] {
  const actions: Action[] = [];
  const byName = new Map(observed.containers.map((c) => [c.name, c]));
  const pulled = new Set<string>();
  const deadline = opts.joinDeadlineMs ?? JOIN_DEADLINE_MS;

  for (const n of desired.networks) {
    if (!observed.networks.includes(n.name)) actions.push({ type: 'create-network', network: n });
  }

  const nodes = [...new Set(desired.containers.map((c) => c.node))];
  for (const node of nodes) {
    const w = desired.containers.find((c) => c.node === node && c.role === 'wesher')!;
    const k = desired.containers.find((c) => c.node === node && c.role === 'k3s')!;
    const wr: ContainerRef = { name: w.name, node: w.node, role: w.role };
    const kr: ContainerRef = { name: k.name, node: k.node, role: k.role };
    const ow = byName.get(w.name);
    const ok = byName.get(k.name);
    // A container with our name that hepto did not create is left alone (status says so).
    const foreign = (o: ObservedContainer | undefined): boolean => !!o && o.node === null;
    if (foreign(ow)) continue;

    let wd = decide(w, ow, history, now, opts);
    if (wd.kind === 'none' && ow && isRunning(ow)) {
      const waited = notJoined(w, ow, observed, now);
      if (waited !== null && waited >= deadline) {
        wd = { kind: 'recreate', reason: `it had not joined the mesh after ${Math.round(waited / 1000)} s; restarted with a fresh join list`, death: null };
      } else if (waited !== null && waited >= deadline / 4) {
        actions.push({
          type: 'wait',
          ...wr,
          reason: `${w.name} has not joined the mesh for ${Math.round(waited / 1000)} s (join list ${w.spec!.join.join(', ')}); it is restarted with a fresh list at ${Math.round(deadline / 1000)} s`,
        });
      }
    }
    // wesher runs as it should and is not touched in this pass: its link can be checked.
    let wesherSteady = wd.kind === 'none' && isRunning(ow);
    let k3sGone = false;
    if (wd.kind === 'create' || wd.kind === 'recreate') {
      // A wesher recreated with the same spec (a fresh join list) runs the very image: it is there.
      if (ow?.hash === w.spec!.hash || imageReady(w.spec!.image, desired, observed, history, now, actions, pulled)) {
        // k3s lives in wesher's network namespace: it goes first and comes back after.
        if (wd.kind === 'recreate' && ok && !foreign(ok)) {
          actions.push({ type: 'remove', ...kr, id: ok.id, reason: `its network namespace owner ${w.name} is recreated` });
          k3sGone = true;
        }
        actions.push(
          wd.kind === 'create'
            ? { type: 'create', ...wr, spec: w.spec! }
            : { type: 'recreate', ...wr, id: ow!.id, spec: w.spec!, reason: wd.reason, death: wd.death },
        );
      }
    } else if (wd.kind === 'start') {
      actions.push({ type: 'start', ...wr, id: ow!.id, death: wd.death });
    } else if (wd.kind === 'backoff') {
      actions.push({ type: 'backoff', ...wr, id: ow!.id, until: wd.until, death: wd.death, fetchLog: wd.fetchLog });
    }

    // The overlay link, once wesher is steady.
    let linkWait: string | null = null;
    const link = desired.links.find((l) => l.node === node);
    if (!wesherSteady) {
      linkWait = w.spec ? `${k.name} waits for ${w.name} to run` : w.waiting;
    } else if (link) {
      const have = observed.links?.[node];
      const lh = history.links?.[node];
      if (!have) {
        linkWait = `${k.name} waits for ${link.ifname} in ${w.name}'s network namespace to be read${lh?.lastError ? `: ${lh.lastError}` : ''}`;
      } else if (!linkReady(have, link)) {
        linkWait = `${k.name} waits for ${link.ifname} in ${w.name}'s network namespace to carry ${link.address} at MTU ${link.mtu} (flannel needs it)${lh?.lastError ? `: ${lh.lastError}` : ''}`;
        if (ow?.pid && (!lh || now >= lh.nextAt)) actions.push({ type: 'ensure-link', ...wr, pid: ow.pid, link, have });
      }
    }
    wesherSteady = wesherSteady && linkWait === null;

    if (foreign(ok)) continue;
    const okEff = k3sGone ? undefined : ok;
    const kd = decide(k, okEff, history, now, opts);
    if (kd.kind === 'none') {
      // flannel does not recover an interface that went away with a wesher restart: restart k3s once the link is back.
      if (k.spec && okEff && isRunning(okEff) && ow && ow.startedAt !== null && okEff.startedAt !== null && okEff.startedAt < ow.startedAt) {
        if (wesherSteady)
          actions.push({ type: 'restart', ...kr, id: okEff.id, reason: `${w.name} restarted after it, and flannel does not recover its interface` });
        else if (linkWait) actions.push({ type: 'wait', ...kr, reason: `${linkWait}; then it is restarted, as ${w.name} restarted after it` });
      }
      continue;
    }
    if (kd.kind === 'backoff') {
      actions.push({ type: 'backoff', ...kr, id: okEff!.id, until: kd.until, death: kd.death, fetchLog: kd.fetchLog });
      continue;
    }
    if (!wesherSteady) {
      if (linkWait) actions.push({ type: 'wait', ...kr, reason: linkWait });
      continue;
    }
    if (kd.kind === 'create' || kd.kind === 'recreate') {
      if (!imageReady(k.spec!.image, desired, observed, history, now, actions, pulled)) continue;
      actions.push(
        kd.kind === 'create'
          ? { type: 'create', ...kr, spec: k.spec! }
          : { type: 'recreate', ...kr, id: okEff!.id, spec: k.spec!, reason: kd.reason, death: kd.death },
      );
    } else {
      actions.push({ type: 'start', ...kr, id: okEff!.id, death: kd.death });
    }
  }

  // Containers hepto made for nodes this machine no longer hosts; k3s before
  // wesher (it depends on wesher's namespace).
  const wanted = new Set(desired.containers.map((c) => c.name));
  const stale = observed.containers.filter((o): o is ObservedContainer & { node: string } => o.node !== null && !wanted.has(o.name));
  stale.sort((a, b) => (a.role === 'k3s' ? 0 : 1) - (b.role === 'k3s' ? 0 : 1));
  for (const o of stale)
    actions.push({ type: 'remove', name: o.name, node: o.node, role: o.role, id: o.id, reason: `node ${o.node} is no longer configured on this machine` });
  // Their networks too, once no container of ours is left on them (the stale ones just went).
  const wantedNets = new Set(desired.networks.map((n) => n.name));
  for (const n of observed.managedNetworks ?? []) {
    if (!wantedNets.has(n)) actions.push({ type: 'remove-network', network: n, reason: 'no node on this machine uses it any more' });
  }
  return actions;
}
