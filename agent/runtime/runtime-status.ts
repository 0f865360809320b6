/**
 * The supervisor's status, built by a pure function from what should run,
 * what Podman last reported and the restart history: container states as
 * the contract names them, per-node health for the member record, and one
 * sentence per problem with what to do.
 */
import type { NodeHealth } from '../../shared/member';
import type { DesiredContainer, DesiredState } from './desired';
import type { LinkState } from './overlay-link';
import { containerHistory, isRunning, type History, type ObservedContainer } from './planner';
import type { Role } from './specs';

export type ContainerState = 'running' | 'restarting' | 'exited' | 'missing' | 'crashloop' | 'waiting';

export interface ContainerStatus {
  name: string;
  node: string;
  role: Role;
  state: ContainerState;
  restarts: number;
  last_error: string | null;
  last_exit_code?: number | null;
  last_log?: string[];
  /** wesher only: the overlay interface as last read in its namespace (the MTU in force). */
  overlay?: { interface: string; addresses: string[]; mtu: number | null; up: boolean } | null;
}

export interface SupervisorStatus {
  containers: ContainerStatus[];
  problems: string[];
  health: Record<string, NodeHealth>;
  podman: 'connected' | 'unreachable';
  /** The hosted master's k3s server CA hash (sha256, lowercase hex), once read; else null. */
  k3sCa: string | null;
}

export interface StatusInput {
  desired: DesiredState;
  /** null: never observed (Podman not reached yet). */
  observed: ObservedContainer[] | null;
  history: History;
  /** Why containers wait or are about to be restarted, from the last plan. */
  waits?: Record<string, string>;
  /** The overlay link last read per node. */
  links?: Record<string, LinkState>;
  podman: 'connected' | 'unreachable';
  /** Why Podman is unreachable (a sentence with the fix). */
  podmanProblem: string | null;
  now: number;
  /** See SupervisorStatus.k3sCa. */
  k3sCa?: string | null;
}

function stateOf(d: DesiredContainer, o: ObservedContainer | undefined, input: StatusInput): ContainerState {
  const h = containerHistory(input.history, d.name);
  if (isRunning(o)) return 'running';
  if (input.waits?.[d.name]) return 'waiting';
  if (!o) {
    if (!d.spec) return 'waiting';
    return h.failures >= 2 ? 'crashloop' : 'missing';
  }
  if (h.failures >= 2) return 'crashloop';
  if (h.nextStartAt > input.now || h.lastDeath === null) return 'restarting';
  return 'exited';
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

export function buildSupervisorStatus(input: StatusInput): SupervisorStatus {
  const byName = new Map((input.observed ?? []).map((o) => [o.name, o]));
  const problems = [...input.desired.problems];
  if (input.podman === 'unreachable' && input.podmanProblem) problems.unshift(input.podmanProblem);
  const containers: ContainerStatus[] = [];
  const health: Record<string, NodeHealth> = {};

  for (const d of input.desired.containers) {
    const o = byName.get(d.name);
    const h = containerHistory(input.history, d.name);
    const foreign = o !== undefined && o.node === null;
    const state: ContainerState = foreign ? 'missing' : stateOf(d, o, input);
    const wait = input.waits?.[d.name] ?? null;
    let lastError = h.lastError ?? (state === 'waiting' ? (wait ?? d.waiting) : null);
    if (wait) problems.push(wait);
    if (foreign) {
      lastError = `a container named ${d.name} exists that hepto did not create`;
      problems.push(`${lastError}; remove or rename it (podman rm -f ${d.name}) so the agent can create its own`);
    }
    const st: ContainerStatus = { name: d.name, node: d.node, role: d.role, state, restarts: h.restarts, last_error: lastError };
    if (h.lastExitCode !== null) st.last_exit_code = h.lastExitCode;
    if (h.lastLog.length > 0) st.last_log = h.lastLog;
    if (d.role === 'wesher') {
      const link = input.desired.links.find((l) => l.node === d.node);
      const have = input.links?.[d.node];
      if (link) st.overlay = have?.exists ? { interface: link.ifname, addresses: have.addresses, mtu: have.mtu, up: have.up } : null;
      const lh = input.history.links?.[d.node];
      if (lh?.lastError) problems.push(`overlay interface of ${d.name}: ${lh.lastError}`);
    }
    containers.push(st);
    health[d.node] = { ...(health[d.node] ?? { wesher: 'missing', k3s: 'missing' }), [d.role]: state };

    if (state === 'crashloop') {
      const wait = h.nextStartAt > input.now ? `; next try in ${seconds(h.nextStartAt - input.now)}` : '';
      const code = h.lastExitCode !== null ? ` (exit code ${h.lastExitCode})` : '';
      problems.push(
        `${d.name} keeps failing${code}, ${h.failures} times in a row${wait}${h.lastError ? `: ${h.lastError}` : ''}; see last_log in status --json or podman logs ${d.name}`,
      );
    } else if (h.lastError && state !== 'running') {
      problems.push(`${d.name}: ${h.lastError}`);
    }
  }
  for (const [image, ih] of Object.entries(input.history.images)) {
    if (ih.lastError && input.desired.containers.some((c) => c.spec?.image === image)) problems.push(ih.lastError);
  }
  return { containers, problems: [...new Set(problems)], health, podman: input.podman, k3sCa: input.k3sCa ?? null };
}
